"""The quality bar, measured: held-out songs of two demo producers, learning curves, A vs B.

    .venv/bin/python scripts/quality_study.py SESSIONS_A PROFILE_A SESSIONS_B PROFILE_B
        [--test 4] [--sizes 3 5 10 20] [--out study.md]

PROFILE_x must come from `mixstyle learn SESSIONS_x --out PROFILE_x` (its songs/ records hold the
per-song fits, reused here). The last --test songs (by name) are held out from every training
run below; the models are retrained here on the first N of the others.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from dsp.kernels import pin  # noqa: E402

pin()  # the kernels of the mixstyle command (dsp/kernels.py), before numpy and torch load


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("sessions_a")
    ap.add_argument("profile_a")
    ap.add_argument("sessions_b")
    ap.add_argument("profile_b")
    ap.add_argument("--test", type=int, default=4)
    ap.add_argument("--sizes", type=int, nargs="+", default=[3, 5, 10, 20])
    ap.add_argument("--out", default="study.md")
    args = ap.parse_args()

    import numpy as np

    from dsp.render import render
    from mixstyle.evaluate.metrics import metrics
    from mixstyle.evaluate.score import song_scores, summarise
    from mixstyle.profile.ceiling import calibrate_ceiling
    from mixstyle.profile.predict import Profile, predict_song
    from mixstyle.sessions.load import load_sessions
    from mixstyle.train.config import LearnConfig
    from mixstyle.train.loop import train
    from mixstyle.train.records import load_records, record_features
    from mixstyle.train.songs import staged_excerpt

    cfg = LearnConfig()
    data = {}
    for key, sess, prof in (("A", args.sessions_a, args.profile_a),
                            ("B", args.sessions_b, args.profile_b)):
        songs = {s.name: s for s in load_sessions(sess, max_seconds=cfg.max_seconds).songs}
        records = {r.song: r for r in load_records(Path(prof) / "songs") if r.song in songs}
        names = sorted(records)
        data[key] = {"songs": songs, "records": records, "test": names[-args.test:],
                     "train": names[:-args.test],
                     "audio": {n: staged_excerpt(songs[n], records[n], cfg.train.audio_seconds)
                               for n in names},
                     "features": {n: record_features(records[n]) for n in names}}
    lines = ["# Quality study", ""]
    results: dict = {}

    def model_for(key: str, n: int):
        d = data[key]
        recs = [d["records"][s] for s in d["train"][:n]]
        model, _ = train(recs, cfg.train, d["audio"])
        offset = calibrate_ceiling(model, [d["songs"][s] for s in d["train"][:n]],
                                   d["features"])
        return Profile(model, {"ceiling_offset_db": offset})

    for key in ("A", "B"):
        d = data[key]
        lines += [f"## Producer {key}: {args.sessions_a if key == 'A' else args.sessions_b}",
                  "", f"Held-out songs: {', '.join(d['test'])}", "",
                  "| training songs | band error (dB) | plain sum | automix | closed | mrstft | "
                  "loudness err (LU) | width err (dB) |", "|---|---|---|---|---|---|---|---|"]
        for n in args.sizes:
            if n > len(d["train"]):
                continue
            prof = model_for(key, n)
            per = {s: song_scores(d["songs"][s], predict_song(prof, d["songs"][s],
                                                              features=d["features"][s]))
                   for s in d["test"]}
            summ = summarise(per)
            results[f"{key}{n}"] = summ
            lr, ps, am = summ["learned"], summ["plain_sum"], summ["automix"]
            lines.append(f"| {n} | {lr['band_error_db']:.2f} | {ps['band_error_db']:.2f} | "
                         f"{am['band_error_db']:.2f} | {100 * summ['closed']:.0f}% | "
                         f"{lr['mrstft']:.3f} (auto {am['mrstft']:.3f}) | "
                         f"{lr['loudness_error_lu']:.2f} (auto {am['loudness_error_lu']:.2f}) | "
                         f"{lr['width_error_db']:.2f} (auto {am['width_error_db']:.2f}) |")
            print(lines[-1], flush=True)
        lines.append("")

    # A vs B: the profile trained on all of A's training songs, its mixes of the held-out songs
    # compared with A's real mixes and with B's real mixes of the same stems
    lines += ["## Is a profile closer to its own producer?", "",
              "| profile | vs A's mixes (band dB) | vs B's mixes (band dB) |", "|---|---|---|"]
    common = sorted(set(data["A"]["test"]) & set(data["B"]["test"]))
    for key in ("A", "B"):
        prof = model_for(key, len(data[key]["train"]))
        errs: dict[str, list[float]] = {"A": [], "B": []}
        for s in common:   # one mix per song, compared with both producers' mixes
            song = data[key]["songs"][s]
            setting = predict_song(prof, song, features=data[key]["features"][s])
            mix = render(np.stack([x.audio for x in song.stems]), song.sample_rate,
                         setting).audio
            for other in ("A", "B"):
                errs[other].append(metrics(mix, data[other]["songs"][s].mix,
                                           song.sample_rate)["band_error_db"])
        to = {other: sum(e) / len(e) for other, e in errs.items()}
        results[f"{key}_vs"] = to
        lines.append(f"| trained on {key} | {to['A']:.2f} | {to['B']:.2f} |")
        print(lines[-1], flush=True)
    Path(args.out).write_text("\n".join(lines) + "\n")
    Path(args.out).with_suffix(".json").write_text(json.dumps(results, indent=2))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
