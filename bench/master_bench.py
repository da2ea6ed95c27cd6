"""Benchmark of batch mastering against matchering: ``run() -> list[dict]``.

Material: a demo producer's sessions (``mixstyle.demo.make_sessions``: MMA + fluidsynth songs,
mixed and mastered by the producer with pedalboard effects). A master profile is learned from
their masters; then every mix is mastered by us (profile, its loudness target and true-peak
ceiling) and by matchering (pip ``matchering``; its reference for each song is the producer's
master of another song, so it aims at the same loudness). Both go file -> 24-bit WAV, one
process, in the same run, after an untimed first file each (imports, numba caches, matchering's
own start-up); per file the best of ``ROUNDS`` tries, ours and matchering's interleaved file by
file, so a burst of load on the shared machine hits both sides alike.
Both outputs are measured the same way (dsp.loudness: BS.1770 loudness, 4x true peak).
Also how well ``fit_master`` recovered the producer's own master (EQ curve, loudness).
Then the batch (``bench/batch_bench.py``): the whole command on 16 songs, 1 vs 2 workers,
locally and on Dask, with a worker's start-up apart.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from dsp.eq import eq_curve_db
from dsp.loudness import integrated_loudness, true_peak_dbtp
from dsp.params import MASTER
from mixstyle.io.audio import read_audio
from mixstyle.mastering.batch import Job, batch_settings, master_file, read_report, settings_hash
from mixstyle.mastering.fit import EQ_NAMES
from mixstyle.mastering.learn import learn_master
from mixstyle.mastering.profile import load_master_profile, save_master_profile

PRODUCER = "ben"
SONGS = 4
SECONDS = 60.0
SEED = 4200
ROUNDS = 3
CACHE = Path(os.environ.get("MIXSTYLE_BENCH_CACHE",
                            Path(tempfile.gettempdir()) / "mixstyle_master_bench"))


def _row(name: str, ours: float, reference: float | None, ratio: float | None, target: str,
         unit: str, note: str) -> dict[str, Any]:
    return {"name": name, "ours": ours, "reference": reference, "ratio": ratio,
            "target": target, "unit": unit, "note": note}


def _sessions() -> list[Path]:
    from mixstyle.demo import make_sessions
    root = CACHE / f"{PRODUCER}_{SONGS}x{SECONDS:g}s_{SEED}"
    songs = sorted(p for p in root.glob("*") if (p / "master.wav").is_file()) \
        if root.is_dir() else []
    if len(songs) < SONGS:
        songs = make_sessions(root, PRODUCER, SONGS, SEED, seconds=SECONDS,
                              cache_dir=CACHE / "songs")
    return sorted(songs)[:SONGS]


def _measure(path: str | Path) -> tuple[float, float, float]:
    audio, sr = read_audio(path)
    return integrated_loudness(audio, sr), true_peak_dbtp(audio, sr), audio.shape[1] / sr


def _eq_rms_db(fitted: dict, truth: dict) -> float:
    f = np.geomspace(30.0, 16000.0, 120)
    true_eq = {k: truth[k] for k in EQ_NAMES if k in truth}
    d = eq_curve_db(MASTER, {k: fitted[k] for k in EQ_NAMES}, f, 48000.0) - \
        eq_curve_db(MASTER, true_eq, f, 48000.0)
    return float(np.sqrt(np.mean((d - d.mean()) ** 2)))


def _learn(songs: list[Path], profile: Path) -> tuple[dict, float]:
    pairs = []
    for s in songs:
        mix, sr = read_audio(s / "mix.wav")
        master, _ = read_audio(s / "master.wav")
        pairs.append((mix, master, sr))
    t0 = time.perf_counter()
    doc = learn_master(pairs)
    per_song = (time.perf_counter() - t0) / len(pairs)
    save_master_profile(profile, doc)
    return doc, per_song


def _time_ours(job: Job) -> tuple[float, dict]:
    t0 = time.perf_counter()
    row = master_file(job)
    return time.perf_counter() - t0, row


def _time_matchering(songs: list[Path], i: int, out: Path) -> tuple[float, Path]:
    """Master song ``i`` with matchering; its reference is the next song's master."""
    import matchering as mg
    mg.log(lambda *_: None)
    ref = songs[(i + 1) % len(songs)] / "master.wav"
    o = out / f"{songs[i].name}.wav"
    t0 = time.perf_counter()
    mg.process(target=str(songs[i] / "mix.wav"), reference=str(ref), results=[mg.pcm24(str(o))])
    return time.perf_counter() - t0, o


def run() -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    songs = _sessions()
    work = Path(tempfile.mkdtemp(prefix="master_bench_"))
    doc, fit_s = _learn(songs, work / "profile")
    prof = load_master_profile(work / "profile")
    truth = json.loads((songs[0] / "producer_decisions.json").read_text())["master"]
    rows.append(_row("fit_master per song", fit_s, None, None, "-", "s",
                     f"{SECONDS:g} s songs: EQ curve, glue search by synthesis, loudness"))
    rows.append(_row("learned master EQ vs the producer's (30 Hz-16 kHz)",
                     _eq_rms_db(prof.params, truth), None, None, "<= 1", "dB rms",
                     "their pedalboard shelves/peak vs our median fit, level removed"))
    rows.append(_row("learned loudness target vs the producer's",
                     abs(prof.params["target_lufs"] - truth["target_lufs"]), None, None,
                     "<= 0.2", "LU", f"target {prof.params['target_lufs']:.2f} LUFS"))

    settings = batch_settings(prof, None, None)
    target, ceiling = settings["target_lufs"], settings["ceiling_dbtp"]
    (work / "ours").mkdir()
    jobs = []
    for s in songs:
        st = (s / "mix.wav").stat()
        jobs.append(Job(str(s / "mix.wav"), str(work / "ours" / f"{s.name}.wav"), st.st_size,
                        st.st_mtime_ns, settings, settings_hash(settings)))
    master_file(jobs[0])  # numba caches and imports outside the timings
    try:
        import matchering  # noqa: F401
        have_mg = True
        (work / "mg").mkdir()
        _time_matchering(songs, 0, work / "mg")  # its imports and start-up likewise
    except ImportError:
        have_mg = False
    best_ours, best_mg = [math.inf] * len(songs), [math.inf] * len(songs)
    results: list[dict] = [{}] * len(songs)
    mg_outs: list[Path] = []
    for _ in range(ROUNDS):
        for i, job in enumerate(jobs):
            t, results[i] = _time_ours(job)
            best_ours[i] = min(best_ours[i], t)
            if have_mg:
                t, o = _time_matchering(songs, i, work / "mg")
                best_mg[i] = min(best_mg[i], t)
                mg_outs = mg_outs[:i] + [o] + mg_outs[i + 1:]
    t_ours, t_mg = sum(best_ours), sum(best_mg)
    audio_s = sum(_measure(s / "mix.wav")[2] for s in songs)
    if any(r["status"] != "ok" for r in results):
        raise RuntimeError(f"mastering failed: {[r.get('error') for r in results]}")
    ours = [_measure(r["output"]) for r in results]
    note = (f"{len(songs)} demo mixes of {SECONDS:g} s, file -> 24-bit wav, one process; per file "
            f"best of {ROUNDS}, interleaved with matchering")
    rows.append(_row("master one song (time per file)", t_ours / len(songs),
                     t_mg / len(songs) if have_mg else None,
                     t_mg / t_ours if have_mg else None, ">= 5x matchering", "s",
                     note if have_mg else note + "; matchering not installed"))
    mg_meas = [_measure(o) for o in mg_outs] if have_mg else []
    rows.append(_row("output loudness error vs target (max)",
                     max(abs(L - target) for L, _, _ in ours),
                     max(abs(L - target) for L, _, _ in mg_meas) if have_mg else None, None,
                     "<= 0.5", "LU", f"target {target:.2f} LUFS; matchering matches its "
                     "reference (the producer's master of another song)"))
    rows.append(_row("output true peak (max)", max(tp for _, tp, _ in ours),
                     max(tp for _, tp, _ in mg_meas) if have_mg else None, None,
                     f"<= {ceiling:.2f}", "dBTP", "4x oversampled (BS.1770); ceiling from "
                     "the producer's masters"))
    rows.append(_row("true-peak overshoot of the sample-peak limiter (mean)",
                     float(np.mean([r["tp_overshoot_db"] for r in results])), None, None,
                     "measured", "dB", "compensated by a lower sample ceiling; limiter runs "
                     f"per file: {[r['limiter_passes'] for r in results]}"))

    from batch_bench import batch_rows
    rows += batch_rows(work / "profile", work, CACHE)
    return rows


if __name__ == "__main__":  # the same table as `make bench BENCH=master`
    import run
    run.main(["master"])
