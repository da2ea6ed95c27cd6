"""The README's results table: every demo producer (and the real set) learned with `mixstyle
learn`'s own held-out songs, one row each.

    .venv/bin/python scripts/producer_table.py [--songs 16] [--seconds 15] [--work DIR]
        [--producers ava,ben,cleo,dex,zed,rio] [--sessions LABEL=DIR ...] [--keep-fits]

Demo sessions are made in --work/<producer> from one shared song cache (the same stems for every
producer, seeded); ``--sessions LABEL=DIR`` adds a row for a folder of sessions made elsewhere
(the real set: ``mixstyle realset``). Each row: learned / plain sum (matched in loudness) /
automix for band error, MR-STFT, loudness, PLR and width, then the share of the plain sum's error
the learned mix closes (band, MR-STFT, PLR, crest). Profiles are kept in --work/profiles.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from dsp.kernels import pin  # noqa: E402

pin()  # the kernels of the mixstyle command (dsp/kernels.py), before numpy and torch load

COLUMNS = (("band_error_db", "band error (dB)", 2), ("mrstft", "MR-STFT", 3),
           ("loudness_error_lu", "loudness error (LU)", 2), ("plr_error_db", "PLR error (dB)", 2),
           ("width_error_db", "width error (dB)", 2))
CLOSED = ("band_error_db", "mrstft", "plr_error_db", "crest_error_db")


def row(label: str, score: dict, songs: int) -> str:
    cells = [f"{label}, {score['songs']} of {songs} held out"]
    for key, _, digits in COLUMNS:
        lr, ps, am = (score[s][key] for s in ("learned", "plain_sum", "automix"))
        plain = "(matched)" if key == "loudness_error_lu" else f"{ps:.{digits}f}"
        cells.append(f"{lr:.{digits}f} / {plain} / {am:.{digits}f}")
    by = score.get("closed_by_metric", {})
    cells.append(" / ".join(f"{by.get(k, float('nan')):.2f}" for k in CLOSED))
    return "| " + " | ".join(cells) + " |"


def header() -> str:
    names = ["songs"] + [c[1] for c in COLUMNS] + ["closed: band / MR-STFT / PLR / crest"]
    return "| " + " | ".join(names) + " |\n|" + "---|" * len(names)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--songs", type=int, default=16)
    ap.add_argument("--seconds", type=float, default=15.0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--producers", default="ava,ben,cleo,dex,zed,rio")
    ap.add_argument("--sessions", action="append", default=[],
                    help="LABEL=DIR: a row for sessions made elsewhere (e.g. the real set)")
    ap.add_argument("--work", default=str(ROOT / "build" / "producer_table"))
    ap.add_argument("--keep-fits", action="store_true",
                    help="keep the song records of profiles learned before in --work/profiles: "
                         "unchanged songs are not fitted again (the training is compared on the "
                         "same fits)")
    args = ap.parse_args()

    from mixstyle.demo.sessions import make_sessions
    from mixstyle.learn import LearnConfig, learn
    work = Path(args.work)
    jobs = []
    for name in [p for p in args.producers.split(",") if p]:
        folder = work / name
        make_sessions(folder, name, args.songs, seed=args.seed, seconds=args.seconds,
                      cache_dir=work / "cache")
        jobs.append((name, folder))
    for item in args.sessions:
        label, _, folder = item.partition("=")
        if not folder:
            ap.error(f"--sessions {item!r}: expected LABEL=DIR")
        jobs.append((label, Path(folder)))
    rows = []
    for label, folder in jobs:
        out = work / "profiles" / label
        if args.keep_fits and (out / "songs").is_dir():
            for item in out.iterdir():
                if item.name != "songs":
                    shutil.rmtree(item) if item.is_dir() else item.unlink()
        else:
            shutil.rmtree(out, ignore_errors=True)
        t0 = time.monotonic()
        card = learn(folder, out, LearnConfig(), log=lambda _: None)
        songs = len(card["trained_on"])
        rows.append(row(label, card["held_out_score"], songs))
        habit = json.loads((out / "profile.json").read_text()).get("loudness_habit") or {}
        print(f"{label}: learned in {time.monotonic() - t0:.0f} s; level habit "
              f"{habit.get('mechanism')} (aim {habit.get('aim_lufs')} LUFS, ceiling "
              f"{habit.get('ceiling_db')} dBFS, limiting {habit.get('limiting_db')} dB)",
              flush=True)
        print(rows[-1], flush=True)
    print()
    print(header())
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
