"""Where a profile's held-out error comes from: each held-out song mixed with its predicted setting
and with parts of it swapped for that song's own fit.

    .venv/bin/python scripts/held_out_parts.py --sessions DIR --profile DIR [--songs a,b,c]
        [--audio-seconds S] [--audio-epochs N] [--seed N]

The held-out model is trained again (as ``mixstyle learn`` does, on the profile's songs minus
its held-out ones, from the records in PROFILE/songs: no fitting). ``--songs`` scores other
songs of the sessions (training songs: how well the network fits what it saw). Prints, per song
and on average, the loudness-matched band error (dB) of: the prediction; the song's own fit; the
fit's strips (EQ, high-pass, compressor) with the predicted levels; the predicted strips with the
fit's levels; the fit's EQ, compressor, high-pass or pan alone; and the prediction's own
loudness re the mix (LU). A swapped-in part keeps each track at its predicted level (the fader
follows), unless the levels are the fit's.
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

# the parts swapped in, by the processor the parameter table gives each track parameter
PARTS = {"EQ": ("low_shelf", "peak", "high_shelf", "lowpass"), "COMP": ("compressor",),
         "HPF": ("highpass",)}


def _part_names() -> dict[str, tuple[str, ...]]:
    from dsp.params import TRACK, TRACK_NAMES, spec
    return {part: tuple(n for n in TRACK_NAMES if spec(TRACK, n).processor in processors)
            for part, processors in PARTS.items()}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sessions", required=True)
    ap.add_argument("--profile", required=True)
    ap.add_argument("--songs", default="", help="comma-separated; default: the held-out songs")
    ap.add_argument("--audio-seconds", type=float, default=None)
    ap.add_argument("--audio-epochs", type=int, default=None)
    ap.add_argument("--seed", type=int, default=None, help="the training seed (default: learn's)")
    args = ap.parse_args()

    import numpy as np
    import torch

    from dsp.loudness import integrated_loudness
    from dsp.params import TRACK, ConsoleSetting, TrackSetting, setting_from_dict, validate
    from dsp.render import render
    from mixstyle.evaluate.metrics import matched_band_error, plain_sum
    from mixstyle.profile.ceiling import level_meta
    from mixstyle.profile.predict import Profile, predict_song
    from mixstyle.sessions.load import load_sessions
    from mixstyle.train.balance import output_gains, track_levels
    from mixstyle.train.config import LearnConfig
    from mixstyle.train.loop import train
    from mixstyle.train.records import load_records, record_features
    from mixstyle.train.songs import staged_excerpt

    parts = _part_names()
    EQ, COMP, HPF = parts["EQ"], parts["COMP"], parts["HPF"]
    profile = Path(args.profile)
    card = json.loads((profile / "model_card.json").read_text())
    held = card["held_out_songs"]
    cfg = LearnConfig()
    changes = {k: v for k, v in (("audio_seconds", args.audio_seconds),
                                 ("audio_epochs", args.audio_epochs),
                                 ("seed", args.seed)) if v is not None}
    cfg = replace(cfg, train=replace(cfg.train, **changes))
    records = {r.song: r for r in load_records(profile / "songs")}
    songs = {s.name: s for s in load_sessions(args.sessions, max_seconds=cfg.max_seconds).songs}
    features = {n: record_features(r) for n, r in records.items()}
    names = [n for n in sorted(records) if n not in held and records[n].source != "correction"]
    torch.manual_seed(cfg.train.seed)
    audio = {n: staged_excerpt(songs[n], records[n], cfg.train.audio_seconds) for n in names}
    model, _ = train([records[n] for n in names], cfg.train, audio)
    prof = Profile(model, level_meta(model, [records[n] for n in names],
                                     [songs[n] for n in names], features))
    rows = {}
    for name in [s for s in args.songs.split(",") if s] or held:
        song, rec = songs[name], records[name]
        stems = np.stack([x.audio for x in song.stems])
        sr = song.sample_rate
        pred = predict_song(prof, song, features=features[name])
        fit = setting_from_dict(rec.setting)
        order = [t.name for t in pred.tracks]
        p = {t.name: dict(t.params) for t in pred.tracks}
        f = {t.name: dict(t.params) for t in fit.tracks}
        p_levels, p_bus = track_levels(stems, sr, [p[n] for n in order])

        def mixed(params: list[dict], levels) -> ConsoleSetting:
            faders = output_gains(stems, sr, params, levels, p_bus)
            return ConsoleSetting(tuple(
                TrackSetting(n, validate(TRACK, dict(v, output_gain_db=g)), pred.track(n).role)
                for n, v, g in zip(order, params, faders)), pred.master)

        def swapped(keys) -> list[dict]:
            return [dict(p[n], **{k: f[n][k] for k in keys}) for n in order]

        variants = {
            "predicted": pred, "own fit": fit,
            "fit's strips": mixed(swapped(EQ + COMP + HPF), p_levels),
            "fit's levels": mixed([p[n] for n in order], list(rec.levels_lu)),
            "fit's EQ": mixed(swapped(EQ), p_levels),
            "fit's compressor": mixed(swapped(COMP), p_levels),
            "fit's high-pass": mixed(swapped(HPF), p_levels),
            "fit's pans": mixed(swapped(("pan",)), p_levels)}
        outs = {k: render(stems, sr, s).audio for k, s in variants.items()}
        row = {k: matched_band_error(x, song.mix, sr) for k, x in outs.items()}
        # the prediction at its own loudness (the profile's level habit): LU re the mix
        row["loudness LU"] = integrated_loudness(outs["predicted"], sr) - \
            integrated_loudness(song.mix, sr)
        row["plain sum"] = matched_band_error(plain_sum(stems, song.mix, sr), song.mix, sr)
        rows[name] = row
        print(name, "  ".join(f"{k} {v:.3f}" for k, v in row.items()), flush=True)
    keys = list(next(iter(rows.values())))
    print("mean", "  ".join(f"{k} {np.mean([r[k] for r in rows.values()]):.3f}" for k in keys))
    return 0


if __name__ == "__main__":
    sys.exit(main())
