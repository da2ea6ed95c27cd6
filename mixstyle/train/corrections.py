"""What the producer's corrections teach: how they consistently change the profile's output.

A corrected song (``setting.json``) is the producer's own decision on a song the profile mixed:
"the vocal 4 dB up, the bass a little thinner at 300 Hz". Its targets are exact, but a handful
of them beside many fitted songs cannot teach the network a habit: measured on the demo
producers (bench/corrections_bench.py), a network trained on 12 fitted songs + 6 corrections
learned each corrected song by itself (its features tell it apart) and moved its predictions on
new songs by -1.5 .. +0.9 dB for a correction of +4 dB; and two trainings that differ only in
those 6 songs moved every other track by up to 3.5 dB.

So the network learns the style from the producer's mixes (the fitted songs), and the
corrections teach what is left over: per role and per predicted parameter (and for the master
bus), the weighted median over the corrected tracks of (their setting - the network's
prediction for them), in the table's normalised units, the target weights of the training loss
as weights (a band's frequency only counts where the band does something). The median keeps a
correction made once, or in opposite directions on different songs, from becoming a habit.
It is taken ``n / (n + 1)`` of the way for a role corrected in ``n`` songs: the profile's own
prediction counts as one more song, left as it was (one correction moves it half way, six 86%).
``Profile.predict`` adds the offsets to the network's output. Where there are no fitted songs at
all, the corrections are the style: the network trains on them and there are no offsets.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch

from mixstyle.train.loudness import habit_from_records, with_habit
from mixstyle.train.model import MASTER_TARGETS, TRACK_TARGETS, MixNet
from mixstyle.train.records import SongRecord, collate

MIN_WEIGHT = 0.5    # a parameter with less target weight than this over a role gets no offset


def network_records(records: Sequence[SongRecord]) -> list[SongRecord]:
    """The records the network trains on: the fitted songs, or every song if none is fitted."""
    fits = [r for r in records if r.source != "correction"]
    return fits if fits else list(records)


def _weighted_median(values: np.ndarray, weights: np.ndarray) -> float:
    order = np.argsort(values, kind="stable")
    v, w = values[order], weights[order]
    cum = np.cumsum(w)
    return float(v[int(np.searchsorted(cum, 0.5 * cum[-1]))])


def correction_offsets(model: MixNet, records: Sequence[SongRecord]) -> dict[str, Any] | None:
    """The offsets the corrections among ``records`` teach ``model`` (trained on the others);
    None when there is nothing to correct (no corrections, or the model was trained on them)."""
    corrected = [r for r in records if r.source == "correction"]
    if not corrected or len(network_records(records)) == len(records):
        return None
    habit = habit_from_records([r for r in records if r.source != "correction"])
    batch = collate(with_habit(corrected, habit))
    model.eval()
    with torch.no_grad():
        tu, mu = model(batch.feats, batch.roles, batch.mask, batch.song_feats)
    res_t = (batch.track_u - tu).numpy()
    w_t = (batch.track_w * batch.mask[..., None]).numpy()
    track: dict[str, list[float]] = {}
    songs: dict[str, int] = {}
    roles = sorted({role for r in corrected for role in r.roles})
    for role in roles:
        here = np.array([[j < len(r.roles) and r.roles[j] == role
                          for j in range(batch.mask.shape[1])] for r in corrected])
        n = int(here.any(axis=1).sum())
        songs[role] = n
        offsets = []
        for k in range(len(TRACK_TARGETS)):
            v, w = res_t[..., k][here], w_t[..., k][here]
            ok = w > 0
            offsets.append(0.0 if w[ok].sum() < MIN_WEIGHT else
                           round(n / (n + 1) * _weighted_median(v[ok], w[ok]), 5))
        track[role] = offsets
    res_m = (batch.master_u - mu).numpy()
    w_m = batch.master_w.numpy()
    n = len(corrected)
    master = []
    for k in range(len(MASTER_TARGETS)):
        ok = w_m[:, k] > 0
        master.append(0.0 if w_m[ok, k].sum() < MIN_WEIGHT else
                      round(n / (n + 1) * _weighted_median(res_m[ok, k], w_m[ok, k]), 5))
    return {"songs": [r.song for r in corrected], "songs_per_role": songs,
            "track_targets": [p.name for p in TRACK_TARGETS],
            "master_targets": [p.name for p in MASTER_TARGETS],
            "track": track, "master": master}


def describe(offsets: dict[str, Any] | None, min_u: float = 0.02) -> list[str]:
    """One line per corrected role (and the master): its offsets in the parameters' units
    (dB/LU as a difference, Hz/ms/Q as a factor), those of at least ``min_u`` of the range."""
    if not offsets:
        return []
    specs = {p.name: p for p in TRACK_TARGETS + MASTER_TARGETS}

    def text(name: str, du: float) -> str:
        p = specs[name]
        if p.scale == "log":
            return f"{name} x{(p.max / p.min) ** du:.2f}"
        return f"{name} {du * (p.max - p.min):+.2f} {p.unit}".rstrip()

    lines = []
    for role, values in sorted(offsets["track"].items()):
        moved = [text(n, d) for n, d in zip(offsets["track_targets"], values) if abs(d) >= min_u]
        if moved:
            lines.append(f"{role} ({offsets['songs_per_role'][role]} songs): " + ", ".join(moved))
    moved = [text(n, d) for n, d in zip(offsets["master_targets"], offsets["master"])
             if abs(d) >= min_u]
    if moved:
        lines.append("master: " + ", ".join(moved))
    return lines
