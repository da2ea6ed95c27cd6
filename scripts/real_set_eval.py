"""The real set as a held-out test: learn a profile with ``mixstyle learn`` on the training songs,
then score the held-out songs -- learned mix vs plain sum (loudness-matched) vs generic automix,
each against the author's own mix (docs/REAL_SET.md).

    python scripts/real_set_eval.py [--set /work/realset] [--out build/real_set_eval]
                                    [--split pingus+hydrogen | all] [--jobs N] [--reuse-profile]

The split is fixed: the songs of the chosen sources sorted by name, within each source every
fourth song from the second one (index 1, 5, 9, ...) is held out, the rest trains. ``pingus+
hydrogen`` (default): the Pingus team's Impulse Tracker modules (named instruments, true
per-track faders) and Hydrogen's demo songs; ``all``: every song of the set. Missing songs are
built first (``mixstyle realset``; built songs are kept).

Metrics (lower is better): band error (dB), MR-STFT, loudness error (LU), width error (dB) as in
mixstyle.evaluate.metrics, plus the PLR error: |(true peak - integrated loudness) of the mix
- the same of the author's mix| in dB, and ``band_error_matched_db``: the band error with each
mix brought to the loudness of the author's mix first (the tone and balance alone; the plain sum
is matched anyway).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from dsp.loudness import integrated_loudness, true_peak_dbtp  # noqa: E402
from dsp.render import render  # noqa: E402
from mixstyle.demo.realset.build import HYDROGEN, build_realset  # noqa: E402
from mixstyle.evaluate.metrics import (METRICS, automix, matched_band_error, metrics,
                                       plain_sum)  # noqa: E402
from mixstyle.profile.predict import predict_song  # noqa: E402
from mixstyle.profile.store import load_profile  # noqa: E402
from mixstyle.sessions.load import load_song  # noqa: E402

SPLITS = {"pingus+hydrogen": ("pingus-data", HYDROGEN), "all": None}
SYSTEMS = ("learned", "plain_sum", "automix")
ALL_METRICS = METRICS + ("band_error_matched_db",)
EXCERPT_SECONDS = 30.0


def _sources_of(folder: Path) -> str:
    return json.loads((folder / "source.json").read_text())["package"]


def split(set_dir: Path, sources: tuple[str, ...] | None) -> tuple[list[str], list[str]]:
    """(training songs, held-out songs): per source, sorted by name, index % 4 == 1 held out."""
    by_source: dict[str, list[str]] = {}
    for folder in sorted(p for p in set_dir.iterdir() if (p / "source.json").is_file()):
        package = _sources_of(folder)
        if sources is None or package in sources:
            by_source.setdefault(package, []).append(folder.name)
    train, held = [], []
    for package in sorted(by_source):
        for k, name in enumerate(by_source[package]):
            (held if k % 4 == 1 else train).append(name)
    return train, held


def link_songs(folder: Path, set_dir: Path, names: list[str]) -> Path:
    """A sessions folder of symlinks to the chosen songs (the set itself stays one folder)."""
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.iterdir():
        if old.is_symlink():
            old.unlink()
    for name in names:
        (folder / name).symlink_to((set_dir / name).resolve(), target_is_directory=True)
    return folder


def plr_db(x: np.ndarray, sr: float) -> float:
    lufs = integrated_loudness(x.astype(np.float32), sr)
    return true_peak_dbtp(x.astype(np.float32), sr) - (lufs if math.isfinite(lufs) else -70.0)


def score_song(folder: Path, profile) -> dict[str, dict[str, float]]:
    song = load_song(folder, max_seconds=EXCERPT_SECONDS)
    stems = np.stack([s.audio for s in song.stems])
    sr, ref = song.sample_rate, song.mix
    mixes = {"learned": render(stems, sr, predict_song(profile, song)).audio,
             "plain_sum": plain_sum(stems, ref, sr), "automix": automix(stems, sr)}
    out = {}
    for system, x in mixes.items():
        m = metrics(x, ref, sr)
        n = min(x.shape[-1], ref.shape[-1])
        m["plr_error_db"] = abs(plr_db(x[:, :n], sr) - plr_db(ref[:, :n], sr))
        m["band_error_matched_db"] = matched_band_error(x, ref, sr)
        out[system] = m
    return out


def table(per_song: dict[str, dict[str, dict[str, float]]], title: str) -> str:
    rows = [title, f"{'metric':<20}{'learned':>10}{'plain sum':>11}{'automix':>10}"]
    for m in ALL_METRICS:
        vals = [np.mean([s[sys_][m] for s in per_song.values()]) for sys_ in SYSTEMS]
        rows.append(f"{m:<20}{vals[0]:>10.3f}{vals[1]:>11.3f}{vals[2]:>10.3f}")
    band = {sys_: np.mean([s[sys_]["band_error_db"] for s in per_song.values()])
            for sys_ in SYSTEMS}
    rows.append(f"closed {100 * (1 - band['learned'] / max(band['plain_sum'], 1e-9)):.0f}% of "
                f"the plain sum's band error over {len(per_song)} held-out song(s)")
    rows.append("per song, band error dB (learned / plain sum / automix):")
    for name, s in per_song.items():
        rows.append(f"  {name:<40}" + " / ".join(f"{s[x]['band_error_db']:.2f}" for x in SYSTEMS))
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--set", default="/work/realset", help="the real set (built if incomplete)")
    p.add_argument("--out", default=str(REPO / "build" / "real_set_eval"))
    p.add_argument("--split", choices=sorted(SPLITS), default="pingus+hydrogen")
    p.add_argument("--jobs", type=int, default=0, help="learn's fit processes (0: one per core)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--reuse-profile", action="store_true",
                   help="score the profile already in OUT/profile instead of learning again")
    args = p.parse_args(argv)
    set_dir, out = Path(args.set), Path(args.out)
    sources = SPLITS[args.split]
    t0 = time.perf_counter()
    build_realset(set_dir, EXCERPT_SECONDS, sources=sources,
                  log=lambda m: print(m, file=sys.stderr))
    t_build = time.perf_counter() - t0
    train, held = split(set_dir, sources)
    print(f"split {args.split}: {len(train)} training songs, {len(held)} held out: "
          f"{', '.join(held)}", file=sys.stderr)
    profile_dir = out / "profile"
    t1 = time.perf_counter()
    if not args.reuse_profile:
        # a fresh profile: learn keeps an existing profile's song records, and songs of another
        # split (or no longer in the set) would train too
        if profile_dir.exists():
            shutil.rmtree(profile_dir)
        cmd = [sys.executable, "-m", "mixstyle.cli", "learn",
               str(link_songs(out / "train", set_dir, train)), "--out", str(profile_dir),
               "--quiet", "--seed", str(args.seed), "--jobs", str(args.jobs)]
        subprocess.run(cmd, check=True, cwd=REPO,
                       env=dict(os.environ, PYTHONPATH=str(REPO)))
    t_learn = time.perf_counter() - t1
    t2 = time.perf_counter()
    profile = load_profile(profile_dir)
    held_dir = link_songs(out / "held", set_dir, held)
    per = {name: score_song(held_dir / name, profile) for name in held}
    t_score = time.perf_counter() - t2
    text = table(per, f"real set, split {args.split}: learned on {len(train)} songs, judged on "
                      f"{len(held)} held-out songs")
    choice = {k: profile.meta.get(k) for k in ("balance_strength", "style_strength",
                                               "pan_strength", "loudness_source",
                                               "sum_offset_lu")}
    text += "\nlearn's held-out choice: " + ", ".join(f"{k} {v}" for k, v in choice.items())
    print(text)
    print(f"time: build/check {t_build:.0f} s, learn {t_learn:.0f} s, score {t_score:.0f} s")
    (out / "result.json").write_text(json.dumps(
        {"split": args.split, "train": train, "held_out": held, "per_song": per, "choice": choice,
         "seconds": {"build": t_build, "learn": t_learn, "score": t_score}}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
