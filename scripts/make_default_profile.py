"""Rebuild presets/default: the shipped profile, trained on demo songs of demo producer 'ava'.

    .venv/bin/python scripts/make_default_profile.py [--songs 20] [--seconds 20] [--work DIR]
        [--producer NAME] [--out DIR] [--records DIR]

Reproducible (seeded). The demo sessions are made in --work/<producer> with the songs cached in
--work/cache (kept, so a rerun reuses them). --producer is any demo producer (mixstyle.demo
PRODUCERS: ava, ben, cleo, and dex, zed, rio who print bus effects into their mixes).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from dsp.kernels import pin  # noqa: E402

pin()  # the kernels of the mixstyle command (dsp/kernels.py), before numpy and torch load


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--songs", type=int, default=20)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--producer", default="ava",
                    help="demo producer whose sessions to learn (ava, ben, cleo, dex, zed, rio)")
    ap.add_argument("--work", default=str(ROOT / "build" / "default_profile"))
    ap.add_argument("--fit-steps", type=int, default=None)
    ap.add_argument("--out", default=str(ROOT / "presets" / "default"))
    ap.add_argument("--records", default=None,
                    help="start from these song records (e.g. presets/default/songs): the fits "
                         "of unchanged song files are reused, not made again")
    args = ap.parse_args()

    from dataclasses import replace

    from mixstyle.demo.sessions import make_sessions
    from mixstyle.learn import LearnConfig, learn
    work = Path(args.work)
    sessions = work / args.producer
    make_sessions(sessions, args.producer, args.songs, seed=1, seconds=args.seconds,
                  cache_dir=work / "cache")
    cfg = LearnConfig()
    if args.fit_steps:
        cfg = replace(cfg, fit=replace(cfg.fit, steps=args.fit_steps))
    out = Path(args.out)
    tmp = out.with_name(out.name + ".new")
    shutil.rmtree(tmp, ignore_errors=True)
    if args.records:
        shutil.copytree(args.records, tmp / "songs")
    card = learn(sessions, tmp, cfg)
    meta_path = tmp / "profile.json"
    meta = json.loads(meta_path.read_text())
    meta["demo_producer"] = args.producer
    meta_path.write_text(json.dumps(meta, indent=2))
    # the shipped profile names demo files relative to the work folder, not this machine's paths
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    print(f"{out}: {len(card['trained_on'])} songs; held-out {card['held_out_score']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
