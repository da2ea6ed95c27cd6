"""Learning speed: `learn` on 20 songs x 6 stems x 30 s (synthetic songs mixed with pedalboard
effects), split into the per-song fits and the network's training. Target: <= 5 min on 2 cores.
The reference is that 300 s budget (ratio > 1 means faster than the budget)."""

from __future__ import annotations

import math
import tempfile
import time
from pathlib import Path

from dsp.kernels import pin

pin()  # the kernels of the mixstyle command (dsp/kernels.py), before numpy and torch load
import numpy as np  # noqa: E402
import pedalboard
import scipy.signal

SR = 44100.0
ROLES = ("kick", "snare", "bass", "keys", "guitar", "vocals")


def _song(seed: int, seconds: float) -> np.ndarray:
    rng = np.random.default_rng(seed)
    n = int(seconds * SR)
    t = np.arange(n) / SR
    out = []
    for _ in ROLES:
        x = scipy.signal.lfilter([1.0], [1.0, rng.uniform(-0.7, 0.3)], rng.normal(size=n))
        env = 0.6 + 0.4 * np.sign(np.sin(2 * np.pi * rng.uniform(1, 5) * t))
        x = (x / np.std(x) + np.sin(2 * np.pi * rng.uniform(60, 1500) * t)) * env
        x *= 10 ** (rng.uniform(-30, -14) / 20) / np.sqrt(np.mean(x ** 2))
        out.append(np.stack([x, x]))
    return np.asarray(out, dtype=np.float32)


def _write(root: Path, songs: int, seconds: float) -> None:
    from mixstyle.io.audio import write_audio_atomic
    for k in range(songs):
        stems = _song(k, seconds)
        folder = root / f"song{k:02d}"
        (folder / "stems").mkdir(parents=True)
        mix = np.zeros(stems.shape[1:], dtype=np.float32)
        for i, (role, audio) in enumerate(zip(ROLES, stems)):
            write_audio_atomic(folder / "stems" / f"{role}.wav", audio, SR)
            board = pedalboard.Pedalboard([pedalboard.HighpassFilter(40 + 30 * i),
                                           pedalboard.Compressor(-24, 3, 5, 100),
                                           pedalboard.Gain(-2.0 * i)])
            ang = math.pi * (((i % 3) - 1) * 0.4 + 1) / 4
            mix += board(audio, SR) * np.array([[math.sqrt(2) * math.cos(ang)],
                                                [math.sqrt(2) * math.sin(ang)]], np.float32)
        write_audio_atomic(folder / "mix.wav", mix, SR)


def run(songs: int = 20, seconds: float = 30.0) -> list[dict]:
    from mixstyle.learn import LearnConfig, learn
    stages: dict[str, list[float]] = {}
    last = {"t": time.perf_counter(), "stage": None}

    def progress(stage: str, done: int, total: int) -> None:
        now = time.perf_counter()
        stages.setdefault(stage, []).append(now - last["t"])
        last["t"] = now

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        _write(root / "sessions", songs, seconds)
        t0 = time.perf_counter()
        learn(root / "sessions", root / "profile", LearnConfig(), progress=progress,
              log=lambda m: None)
        total = time.perf_counter() - t0
    fit_s = sum(stages.get("fit", []))
    train_s = total - fit_s
    budget = 300.0
    return [
        {"name": f"learn {songs} songs x 6 stems x {seconds:.0f} s (fit + train)",
         "ours": total, "reference": budget, "ratio": budget / total, "target": ">= 1",
         "unit": "s", "note": "reference = the 5-minute budget"},
        {"name": "  of which per-song fits", "ours": fit_s, "unit": "s",
         "note": f"{fit_s / songs:.1f} s per song"},
        {"name": "  of which network training (incl. held-out run)", "ours": train_s,
         "unit": "s"},
    ]


if __name__ == "__main__":  # the same table as `make bench BENCH=learn`
    import run
    run.main(["learn"])
