"""Study: the strip compressor learned as gain reduction instead of threshold, cross-validated.

    .venv/bin/python scripts/gain_reduction_study.py --sessions DIR --profile DIR [--folds 4]
        [--gr]

A profile's songs (its records in PROFILE/songs: no fitting) are cut into ``--folds`` folds;
each fold is mixed by a network trained on the others (learn's training, then the level
metadata as learn makes it). Per song: the loudness error of the mix at its own loudness (LU)
and the loudness-matched band error (dB); then their means.

With ``--gr`` the network's threshold output is trained on the fit's gain reduction at the
staged stem's loud level (95th percentile of its 50 ms peaks; GR = (loud - threshold)(1 - 1 /
ratio), divided by ``GR_MAX_DB``) instead of the threshold itself; the audio phase and the
prediction turn it back into a threshold on each stem with the predicted ratio (never more than
``FLOOR_DB`` under the loud level). Done by replacing ``collate``, ``audio_loss`` and
``output_gains`` in their modules: a study of the target, not the product's code
(docs/RESULTS.md, "Where a peak normaliser's per-song loudness error comes from").
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from dsp.kernels import pin  # noqa: E402

pin()  # the kernels of the mixstyle command (dsp/kernels.py), before numpy and torch load

GR_MAX_DB = 40.0
FLOOR_DB = 40.0


def loud_db(audio, gain_db: float, sample_rate: float) -> float:
    """95th percentile of the 50 ms peak levels (dBFS) of ``audio`` trimmed by ``gain_db``,
    over the windows within 40 dB of the loudest."""
    import numpy as np
    x = audio * 10 ** (gain_db / 20)
    hop = int(0.05 * sample_rate)
    k = x.shape[1] // hop
    peaks = 20 * np.log10(np.abs(x[:, :k * hop]).reshape(x.shape[0], k, hop).max(axis=(0, 2))
                          + 1e-9)
    return float(np.percentile(peaks[peaks > peaks.max() - 40], 95))


def use_gain_reduction(louds: dict) -> None:
    """Train and predict the threshold slot as gain reduction (module docstring)."""
    import numpy as np
    import torch

    import mixstyle.profile.predict as predict
    import mixstyle.train.loop as loop
    from dsp.params import TRACK, setting_from_dict, spec

    names = [p.name for p in loop.PREDICTED_TRACK]
    i_thr, i_rat = names.index("comp_threshold_db"), names.index("comp_ratio")
    s_thr, s_rat = spec(TRACK, "comp_threshold_db"), spec(TRACK, "comp_ratio")
    collate, output_gains = loop.collate, predict.output_gains

    def collate_gr(records):
        batch = collate(records)
        for i, r in enumerate(records):
            for j, t in enumerate(setting_from_dict(r.setting).tracks):
                ratio = max(t.params["comp_ratio"], 1.0)
                gr = max(louds[r.song][j] - t.params["comp_threshold_db"], 0.0) * (1 - 1 / ratio)
                batch.track_u[i, j, i_thr] = float(np.clip(gr / GR_MAX_DB, 0.0, 1.0))
        return batch

    def audio_loss_gr(model, batch, i, song, band_weight, ref=None):
        n = int(batch.mask[i].sum())
        tu, _ = model(batch.feats[i:i + 1, :n], batch.roles[i:i + 1, :n], batch.mask[i:i + 1, :n],
                      batch.song_feats[i:i + 1])
        u = tu[0]
        ratio = s_rat.denormalise(u[:, i_rat]).clamp(1.0001, s_rat.max)
        loud = torch.tensor(song.loud, dtype=u.dtype)
        thr = torch.maximum(loud - u[:, i_thr] * GR_MAX_DB / (1 - 1 / ratio), loud - FLOOR_DB)
        u = torch.cat([u[:, :i_thr], s_thr.normalise(thr.clamp(s_thr.min, s_thr.max))[:, None],
                       u[:, i_thr + 1:]], dim=1)
        offsets = None if song.loudness_offsets is None else \
            torch.from_numpy(song.loudness_offsets).to(torch.float32)
        y = loop.render_levels(torch.from_numpy(song.stems), song.sample_rate, u, offsets)[None]
        mix = torch.from_numpy(song.mix)[None]
        y = y * (mix.pow(2).mean().sqrt() / (y.pow(2).mean().sqrt() + 1e-9))
        ref = ref if ref is not None else loop.reference(song)
        y = loop._mid_side(y)
        return loop.losses.mrstft(y, ref) + band_weight * loop.losses.band_db(y, ref,
                                                                                song.sample_rate)

    def output_gains_gr(stems, sample_rate, full, levels, bus, memo=None):
        for values, audio in zip(full, stems):   # the strips as set, before their faders
            if values["comp_ratio"] > 1.0:
                gr = float(s_thr.normalise(values["comp_threshold_db"])) * GR_MAX_DB
                loud = loud_db(audio, values["input_gain_db"], sample_rate)
                values["comp_threshold_db"] = float(np.clip(
                    loud - gr / (1 - 1 / values["comp_ratio"]), max(s_thr.min, loud - FLOOR_DB),
                    s_thr.max))
        return output_gains(stems, sample_rate, full, levels, bus, memo)

    loop.collate, loop.audio_loss, predict.output_gains = collate_gr, audio_loss_gr, \
        output_gains_gr


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sessions", required=True)
    ap.add_argument("--profile", required=True)
    ap.add_argument("--folds", type=int, default=4)
    ap.add_argument("--gr", action="store_true", help="the threshold learned as gain reduction")
    args = ap.parse_args()

    import numpy as np
    import torch

    from dsp.loudness import integrated_loudness
    from dsp.params import setting_from_dict
    from dsp.render import render
    from mixstyle.evaluate.metrics import matched_band_error
    from mixstyle.profile.ceiling import level_meta
    from mixstyle.profile.predict import Profile, predict_song
    from mixstyle.sessions.load import load_sessions
    from mixstyle.train.config import LearnConfig
    from mixstyle.train.loop import train
    from mixstyle.train.records import load_records, record_features
    from mixstyle.train.songs import staged_excerpt

    cfg = LearnConfig()
    records = {r.song: r for r in load_records(Path(args.profile) / "songs")}
    songs = {s.name: s for s in load_sessions(args.sessions, max_seconds=cfg.max_seconds).songs}
    features = {n: record_features(r) for n, r in records.items()}
    names = [n for n in sorted(records) if records[n].source != "correction"]
    louds = {n: [loud_db(s.audio, t.params["input_gain_db"], songs[n].sample_rate)
                 for t, s in zip(setting_from_dict(records[n].setting).tracks, songs[n].stems)]
             for n in names}
    if args.gr:
        use_gain_reduction(louds)
    loud_err, band = [], []
    for k in range(args.folds):
        fold = names[k::args.folds]
        train_names = [n for n in names if n not in fold]
        torch.manual_seed(cfg.train.seed)
        audio = {n: staged_excerpt(songs[n], records[n], cfg.train.audio_seconds)
                 for n in train_names}
        for n in train_names:
            object.__setattr__(audio[n], "loud", louds[n])
        model, _ = train([records[n] for n in train_names], cfg.train, audio)
        prof = Profile(model, level_meta(model, [records[n] for n in train_names],
                                         [songs[n] for n in train_names], features))
        for name in fold:
            song = songs[name]
            stems = np.stack([s.audio for s in song.stems])
            mixed = render(stems, song.sample_rate,
                           predict_song(prof, song, features=features[name]))
            loud_err.append(mixed.loudness_lufs - integrated_loudness(song.mix, song.sample_rate))
            band.append(matched_band_error(mixed.audio, song.mix, song.sample_rate))
            print(f"{name}: loudness {loud_err[-1]:+.2f} LU, band (matched) {band[-1]:.3f} dB",
                  flush=True)
    e = np.array(loud_err)
    print(f"mean |loudness error| {np.abs(e).mean():.3f} LU (median {np.median(e):+.3f}), "
          f"mean band error {np.mean(band):.3f} dB over {len(band)} songs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
