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

A track's level (its loudness in the mix) moves with its EQ as well as its fader: a bass cut
3 dB at 300 Hz is quieter with the fader untouched, by an amount that depends on how much of the
bass sits at 300 Hz, and on how much of that the strip's compressor takes back. So the level
residual of each corrected track is taken without the loudness its EQ change makes, measured
through its strip on its stems (``eq_loudness_through_strip``: the setting against the same
with the predicted EQ; without the stems, estimated from the record's band spectrum,
``eq_loudness_change_db``), and ``Profile.predict`` adds back what the placed band measures on
each new track through its strip: an EQ correction moves no fader, on a song with much or
little at 300 Hz alike.

The EQ is taught as a change of the *response*, not of band parameters: a producer who cuts the
bass at 300 Hz uses whichever band is free on that song, so the parameter differences scatter
over the bands and their median says little. Per role the pointwise median (over the corrected
tracks, n/(n+1) of it) of (the setting's EQ curve - the predicted one) in dB on ``EQ_FREQS_HZ``
is fitted with one peaking band (``eq_band``: frequency, gain, Q, on a grid); ``Profile.predict``
puts that band where the strip's EQ curve comes closest to its curve plus the band's: into a
peak band in range (replacing it, or after handing its gain to another band near its frequency)
or onto a band's own gain (``profile.predict.place_band``). The EQ parameters get no
offsets of their own.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
import torch

from dsp.biquad import PEAK, design, response_db
from dsp.eq import eq_curve_db
from dsp.loudness import k_weighting_coeffs
from dsp.params import TRACK, spec
from mixstyle.train.balance import LEVEL as LEVEL_SPEC
from mixstyle.train.balance import strip_loudness_change_db
from mixstyle.train.features import ANALYSIS_RATE_HZ, BAND_EDGES_HZ, N_BANDS, SCALAR_NAMES
from mixstyle.train.loudness import habit_from_records, with_habit
from mixstyle.train.model import I_LEVEL, MASTER_TARGETS, TRACK_TARGETS, MixNet
from mixstyle.train.records import SongRecord, collate

MIN_WEIGHT = 0.5    # a parameter with less target weight than this over a role gets no offset
EQ_FREQS_HZ = np.geomspace(30.0, 16000.0, 55)
EQ_QS = (0.5, 0.7, 1.0, 1.4, 2.0, 3.0, 4.0)
MIN_EQ_DB = 0.5     # a median EQ change smaller than this everywhere is no correction
EQ_PARAMS = frozenset(p.name for p in TRACK_TARGETS if p.name.startswith(
    ("hpf_", "low_shelf_", "peak", "high_shelf_", "lpf_")))
BAND_CENTRES_HZ = np.sqrt(BAND_EDGES_HZ[:-1] * BAND_EDGES_HZ[1:])
_K_DB = response_db(k_weighting_coeffs(ANALYSIS_RATE_HZ), BAND_CENTRES_HZ, ANALYSIS_RATE_HZ)
_BAND_MEAN = slice(len(SCALAR_NAMES), len(SCALAR_NAMES) + N_BANDS)   # in the feature vector


def network_records(records: Sequence[SongRecord]) -> list[SongRecord]:
    """The records the network trains on: the fitted songs, or every song if none is fitted."""
    fits = [r for r in records if r.source != "correction"]
    return fits if fits else list(records)


def _weighted_median(values: np.ndarray, weights: np.ndarray) -> float:
    order = np.argsort(values, kind="stable")
    v, w = values[order], weights[order]
    cum = np.cumsum(w)
    return float(v[int(np.searchsorted(cum, 0.5 * cum[-1]))])


def correction_offsets(model: MixNet, records: Sequence[SongRecord],
                       stems: Mapping[str, tuple[np.ndarray, float]] | None = None
                       ) -> dict[str, Any] | None:
    """The offsets the corrections among ``records`` teach ``model`` (trained on the others);
    None when there is nothing to correct (no corrections, or the model was trained on them).
    ``stems``: song name -> (its stems (N, 2, n) in the record's track order, sample rate), for
    the loudness of each corrected track's EQ change through its strip (estimated from the
    record's features for a song not given)."""
    corrected = [r for r in records if r.source == "correction"]
    if not corrected or len(network_records(records)) == len(records):
        return None
    habit = habit_from_records([r for r in records if r.source != "correction"])
    batch = collate(with_habit(corrected, habit))
    model.eval()
    with torch.no_grad():
        tu, mu = model(batch.feats, batch.roles, batch.mask, batch.song_feats)
    res_t = (batch.track_u - tu).numpy()
    for i, r in enumerate(corrected):   # the level without what the EQ change made of it
        audio = (stems or {}).get(r.song)
        for j, t in enumerate(r.setting["tracks"]):
            predicted_eq = _predicted_params(tu[i, j].numpy())
            if audio is not None:
                d = eq_loudness_through_strip(audio[0][j], audio[1], predicted_eq, t["params"])
            else:
                d = eq_loudness_change_db(r.features[j], predicted_eq, t["params"])
            res_t[i, j, I_LEVEL] -= d / (LEVEL_SPEC.max - LEVEL_SPEC.min)
    w_t = (batch.track_w * batch.mask[..., None]).numpy()
    track: dict[str, list[float]] = {}
    eq_bands: dict[str, dict[str, float]] = {}
    songs: dict[str, int] = {}
    roles = sorted({role for r in corrected for role in r.roles})
    for role in roles:
        here = np.array([[j < len(r.roles) and r.roles[j] == role
                          for j in range(batch.mask.shape[1])] for r in corrected])
        n = int(here.any(axis=1).sum())
        songs[role] = n
        offsets = []
        for k, p in enumerate(TRACK_TARGETS):
            v, w = res_t[..., k][here], w_t[..., k][here]
            ok = w > 0
            offsets.append(0.0 if w[ok].sum() < MIN_WEIGHT or p.name in EQ_PARAMS else
                           round(n / (n + 1) * _weighted_median(v[ok], w[ok]), 5))
        track[role] = offsets
        curves = [_eq_change(corrected[i].setting["tracks"][j]["params"], tu[i, j].numpy())
                  for i, j in zip(*np.nonzero(here))]
        band = fit_band(n / (n + 1) * np.median(curves, axis=0))
        if band is not None:
            eq_bands[role] = band
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
            "track": track, "master": master, "eq_band": eq_bands}


def eq_loudness_through_strip(stem: np.ndarray, sample_rate: float, before: dict[str, float],
                              setting: dict[str, float]) -> float:
    """How much louder (LU) a stem comes out of its strip as set (``setting``) than with the
    EQ parameters of ``before`` instead: the EQ change's loudness, with what the strip's
    compressor takes back of it."""
    with_before = dict(setting, **{k: v for k, v in before.items() if k in EQ_PARAMS})
    return strip_loudness_change_db(stem, sample_rate, with_before, setting)


def eq_loudness_change_db(features: Sequence[float], before: dict[str, float],
                          after: dict[str, float]) -> float:
    """How much louder (LU) a stem gets when its EQ goes from ``before`` to ``after`` (strip
    parameters; only the EQ's are read), estimated from the stem's band spectrum
    (``features``: its feature vector, the band means) K-weighted: the loudness change of
    stationary sound with that spectrum. The compressor's reaction is left out."""
    def curve(params: dict[str, float]) -> np.ndarray:
        return eq_curve_db(TRACK, {k: v for k, v in params.items() if k in EQ_PARAMS},
                           BAND_CENTRES_HZ, ANALYSIS_RATE_HZ)
    power = 10.0 ** ((np.asarray(features, dtype=np.float64)[_BAND_MEAN] + _K_DB) / 10.0)
    if not np.isfinite(power).all() or power.sum() <= 0.0:
        return 0.0
    through = power * 10.0 ** (curve(before) / 10.0)   # the stem as it sounds through ``before``
    return float(10.0 * np.log10(np.sum(power * 10.0 ** (curve(after) / 10.0))
                                 / np.sum(through)))


def _predicted_params(u: np.ndarray) -> dict[str, float]:
    """The track parameters of normalised network outputs ``u`` (one track)."""
    return {p.name: float(np.clip(p.denormalise(float(u[k])), p.min, p.max))
            for k, p in enumerate(TRACK_TARGETS) if p.name in EQ_PARAMS}


def _eq_change(target: dict[str, float], u: np.ndarray) -> np.ndarray:
    """(the target's EQ curve - the predicted one) in dB on ``EQ_FREQS_HZ``."""
    return (eq_curve_db(TRACK, {k: v for k, v in target.items() if k in EQ_PARAMS},
                        EQ_FREQS_HZ, ANALYSIS_RATE_HZ)
            - eq_curve_db(TRACK, _predicted_params(u), EQ_FREQS_HZ, ANALYSIS_RATE_HZ))


def peak_curve_db(freq_hz: float, gain_db: float, q: float) -> np.ndarray:
    """One peaking band's response (dB) on ``EQ_FREQS_HZ`` (dsp's design and response)."""
    return response_db(np.array(design(PEAK, freq_hz, gain_db, q, ANALYSIS_RATE_HZ)),
                       EQ_FREQS_HZ, ANALYSIS_RATE_HZ)


def fit_band(curve: np.ndarray) -> dict[str, float] | None:
    """The peaking band (frequency on ``EQ_FREQS_HZ`` within the peak bands' reach, Q of
    ``EQ_QS``, gain the curve's value there) whose response comes closest to ``curve`` (dB on
    ``EQ_FREQS_HZ``); None for a curve within ``MIN_EQ_DB`` of flat."""
    if float(np.max(np.abs(curve))) < MIN_EQ_DB:
        return None
    g = spec(TRACK, "peak1_gain_db")
    lo, hi = spec(TRACK, "peak1_freq_hz").min, spec(TRACK, "peak3_freq_hz").max
    best, best_err = None, np.inf
    for f, c in zip(EQ_FREQS_HZ, curve):
        gain = float(np.clip(c, g.min, g.max))
        if not lo <= f <= hi or abs(gain) < 1e-3:
            continue
        for q in EQ_QS:
            err = float(np.sum((peak_curve_db(float(f), gain, q) - curve) ** 2))
            if err < best_err:
                best, best_err = {"freq_hz": round(float(f), 2), "gain_db": round(gain, 3),
                                  "q": q}, err
    return best


def describe(offsets: dict[str, Any] | None, min_u: float = 0.01) -> list[str]:
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
    bands = offsets.get("eq_band", {})
    for role, values in sorted(offsets["track"].items()):
        moved = [text(n, d) for n, d in zip(offsets["track_targets"], values) if abs(d) >= min_u]
        if role in bands:
            b = bands[role]
            moved.append(f"EQ {b['gain_db']:+.1f} dB at {b['freq_hz']:.0f} Hz (Q {b['q']:g})")
        if moved:
            lines.append(f"{role} ({offsets['songs_per_role'][role]} songs): " + ", ".join(moved))
    moved = [text(n, d) for n, d in zip(offsets["master_targets"], offsets["master"])
             if abs(d) >= min_u]
    if moved:
        lines.append("master: " + ", ".join(moved))
    return lines
