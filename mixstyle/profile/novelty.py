"""Know what the profile does not know: how unlike the training tracks a new track is, and how far
its prediction is pulled back toward the producer's safest habit.

The profile keeps every training track's level-independent features (standardised as the
network sees them) and the producer's typical level per role. A new track's *novelty* is its
distance (root mean square over the features, in standard deviations) to the nearest training
track, over ``radius``: the distance within which 90 % of the training tracks find a neighbour
in *another* song (leave-one-song-out). Up to the radius the prediction stands; from there to
twice the radius it moves linearly toward the safe habit: a neutral strip (no EQ, no
compression, centred) at the producer's typical level for the role (their median over all
songs). ``Profile.predict`` applies it per track (``shrink``). Stereo: no track is panned wider
than the producer ever panned its role (``widest_pan``).
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import numpy as np

from mixstyle.train.features import FEATURE_NAMES
from mixstyle.train.records import SongRecord

# level-dependent features say nothing about what kind of track it is
_USED = np.array([n not in ("loudness_lufs", "peak_db") for n in FEATURE_NAMES])
QUANTILE = 90.0
MIN_SONGS = 3


def _standardised(vectors: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    return ((vectors - mean) / np.maximum(std, 1e-3))[:, _USED]


def _nearest(x: np.ndarray, pool: np.ndarray) -> np.ndarray:
    """RMS distance of each row of ``x`` to its nearest row of ``pool``."""
    d2 = (x * x).sum(1)[:, None] + (pool * pool).sum(1)[None, :] - 2.0 * x @ pool.T
    return np.sqrt(np.maximum(d2.min(axis=1), 0.0) / x.shape[1])


def novelty_meta(records: Sequence[SongRecord], mean: np.ndarray, std: np.ndarray
                 ) -> dict[str, Any] | None:
    """What the profile keeps to measure novelty (None with fewer than ``MIN_SONGS`` songs):
    the standardised training tracks, the radius and the typical level per role. ``mean`` and
    ``std`` are the network's feature statistics."""
    if len(records) < MIN_SONGS:
        return None
    vecs, song_of, levels, pans = [], [], {}, {}
    for k, r in enumerate(records):
        tracks = r.setting.get("tracks", []) if isinstance(r.setting, dict) else []
        for j, (v, role) in enumerate(zip(r.features, r.roles)):
            vecs.append(v)
            song_of.append(k)
            if j < len(r.levels_lu) and r.levels_lu[j] is not None:
                levels.setdefault(role, []).append(float(r.levels_lu[j]))
            if j < len(tracks):
                pans.setdefault(role, []).append(abs(float(tracks[j]["params"].get("pan", 0.0))))
    x = _standardised(np.asarray(vecs, dtype=np.float64), mean, std)
    song_of_a = np.array(song_of)
    own = np.array([_nearest(x[i:i + 1], x[song_of_a != song_of_a[i]])[0]
                    for i in range(len(x))])
    every = [v for vs in levels.values() for v in vs]
    typical = {role: round(float(np.median(vs)), 2) for role, vs in levels.items()}
    every_pan = [v for vs in pans.values() for v in vs]
    return {"tracks": np.round(x, 2).tolist(),
            "widest_pan": {role: round(float(max(vs)), 3) for role, vs in pans.items()},
            "widest_pan_any": round(float(max(every_pan)), 3) if every_pan else 1.0,
            "radius": round(float(np.percentile(own, QUANTILE)), 4),
            "typical_level_lu": typical,
            "typical_level_any_lu": round(float(np.median(every)), 2) if every else -10.0}


def shrink(meta: Mapping[str, Any] | None, vectors: Sequence[np.ndarray], mean: np.ndarray,
           std: np.ndarray) -> np.ndarray:
    """Per new track (feature ``vectors``), how far (0 .. 1) its prediction moves toward the
    safe habit; zeros without novelty data."""
    n = len(vectors)
    if not meta or not meta.get("tracks") or n == 0:
        return np.zeros(n)
    pool = np.asarray(meta["tracks"], dtype=np.float64)
    radius = float(meta.get("radius", 0.0))
    if radius <= 0 or not math.isfinite(radius):
        return np.zeros(n)
    d = _nearest(_standardised(np.asarray(vectors, dtype=np.float64), mean, std), pool)
    return np.clip(d / radius - 1.0, 0.0, 1.0)


def typical_level(meta: Mapping[str, Any], role: str) -> float:
    """The producer's median level (LU re the bus) for ``role`` (over all roles if unseen)."""
    return float(meta.get("typical_level_lu", {}).get(role, meta.get("typical_level_any_lu",
                                                                     -10.0)))


def widest_pan(meta: Mapping[str, Any] | None, role: str) -> float:
    """The widest |pan| the producer gave ``role`` in any training song (their widest for any
    role where they never used this one; 1 without data): no new track is panned wider."""
    if not meta:
        return 1.0
    return float(meta.get("widest_pan", {}).get(role, meta.get("widest_pan_any", 1.0)))
