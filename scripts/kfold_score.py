"""A learned profile's fits scored by k-fold: every song held out once, not 3-4 of them.

    .venv/bin/python scripts/kfold_score.py --sessions DIR --profile DIR [--folds 4]
        [--seed N] [--json FILE]

A row of the README holds out 3-4 songs of a producer, and those move by +-0.3 dB whenever the
fits change at all; a change to the fits or the training needs more held-out songs to be told
apart from that. Here the network is trained ``--folds`` times from the profile's records (its
fits: no fitting), each time without one fold of the songs (sorted by name, every k-th song),
and each held-out song is mixed by the model that never saw it, as ``mixstyle learn`` trains
(the held-out choices of strengths are not made: the whole style). Printed per song and as the
mean over all songs: loudness-matched band error (dB) of the prediction and of the plain sum,
MR-STFT of the prediction brought to the mix's loudness, and the prediction's own loudness re
the mix (LU).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from dsp.kernels import pin  # noqa: E402

pin()  # the kernels of the mixstyle command (dsp/kernels.py), before numpy and torch load


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sessions", required=True)
    ap.add_argument("--profile", required=True, help="a learned profile: its songs/ records")
    ap.add_argument("--folds", type=int, default=4)
    ap.add_argument("--seed", type=int, default=None, help="the training seed (default: learn's)")
    ap.add_argument("--json", default="", help="write the per-song numbers here")
    args = ap.parse_args()
    if args.folds < 2:
        ap.error("--folds must be >= 2")

    import numpy as np
    import torch

    from dsp.loudness import integrated_loudness
    from dsp.render import render
    from mixstyle.evaluate.metrics import Target, matched_band_error, plain_sum
    from mixstyle.profile.ceiling import level_meta
    from mixstyle.profile.predict import Profile, predict_song
    from mixstyle.sessions.load import load_sessions
    from mixstyle.twin import losses
    from mixstyle.train.config import LearnConfig
    from mixstyle.train.loop import train
    from mixstyle.train.records import load_records, record_features
    from mixstyle.train.songs import staged_excerpt

    cfg = LearnConfig()
    if args.seed is not None:
        cfg = replace(cfg, train=replace(cfg.train, seed=args.seed))
    records = {r.song: r for r in load_records(Path(args.profile) / "songs")
               if r.source != "correction"}
    songs = {s.name: s for s in load_sessions(args.sessions, max_seconds=cfg.max_seconds).songs}
    missing = sorted(set(records) - set(songs))
    if missing:
        sys.exit(f"kfold_score: the profile's songs {missing} are not in {args.sessions}")
    names = sorted(records)
    features = {n: record_features(records[n]) for n in names}
    rows: dict[str, dict[str, float]] = {}
    for k in range(args.folds):
        held = names[k::args.folds]
        trained = [n for n in names if n not in held]
        torch.manual_seed(cfg.train.seed)
        audio = {n: staged_excerpt(songs[n], records[n], cfg.train.audio_seconds)
                 for n in trained}
        model, _ = train([records[n] for n in trained], cfg.train, audio)
        prof = Profile(model, level_meta(model, [records[n] for n in trained],
                                         [songs[n] for n in trained], features))
        for name in held:
            song = songs[name]
            stems, sr = np.stack([x.audio for x in song.stems]), song.sample_rate
            out = render(stems, sr, predict_song(prof, song, features=features[name])).audio
            mix = Target(song.mix, sr)            # measured once for the three comparisons
            n = song.mix.shape[-1]
            gap = integrated_loudness(out, sr) - mix.lufs(n)
            matched = (out * 10.0 ** (-gap / 20.0)).astype(np.float32)
            mr = float(losses.mrstft(torch.from_numpy(matched)[None],
                                     torch.from_numpy(np.ascontiguousarray(song.mix))[None]))
            rows[name] = {"band": matched_band_error(out, mix, sr),
                          "plain": matched_band_error(plain_sum(stems, song.mix, sr), mix, sr),
                          "mrstft": mr, "loudness_lu": float(gap)}
            print(f"fold {k} {name}: " + "  ".join(f"{a} {b:.3f}" for a, b in rows[name].items()),
                  flush=True)
    mean = {key: float(np.mean([r[key] for r in rows.values()])) for key in next(iter(
        rows.values()))}
    mean["abs_loudness_lu"] = float(np.mean([abs(r["loudness_lu"]) for r in rows.values()]))
    mean["closed"] = 1.0 - mean["band"] / mean["plain"]
    print(f"mean of {len(rows)} songs, {args.folds} folds: "
          + "  ".join(f"{a} {b:.3f}" for a, b in mean.items()))
    if args.json:
        Path(args.json).write_text(json.dumps({"songs": rows, "mean": mean}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
