"""What every real-set song goes through after rendering: the section where the most tracks
play, short fades at its ends, near-silent tracks dropped, and the check that the tracks as
mixed add up to the author's mix."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

BLOCK_SECONDS = 0.5
ACTIVE_BELOW_PEAK_DB = -40.0     # a block plays if within this of the track's loudest block
ACTIVE_FLOOR_DBFS = -80.0        # ... and above this mean-square level
AUDIBLE_BELOW_MIX_DB = -70.0     # tracks quieter than this, as mixed, in the excerpt are dropped
MAX_RESIDUAL_DB = -60.0          # mix - sum of the tracks as mixed, relative to the mix
MAX_SIDE_OVER_MID_DB = 20.0      # a mix whose side outweighs its mid this much is anti-phase
FADE_MS = 10.0


def choose_window(energy: np.ndarray, window_blocks: int) -> int:
    """First block of the ``window_blocks`` blocks where the most tracks play (track-blocks
    summed; earliest of equals). ``energy``: (tracks, blocks) mean squares."""
    if energy.size == 0 or energy.shape[1] <= window_blocks:
        return 0
    peak = energy.max(axis=1, keepdims=True)
    active = (energy > peak * 10 ** (ACTIVE_BELOW_PEAK_DB / 10)) & \
        (energy > 10 ** (ACTIVE_FLOOR_DBFS / 10))
    per_block = active.sum(axis=0).astype(np.int64)
    sums = np.convolve(per_block, np.ones(window_blocks, np.int64), mode="valid")
    return int(np.argmax(sums))


def fade(x: np.ndarray, sample_rate: float) -> np.ndarray:
    """Linear fades of FADE_MS at both ends (the same on every track: sums stay sums)."""
    n = min(int(sample_rate * FADE_MS / 1000), x.shape[-1] // 2)
    if n < 1:
        return x
    ramp = (np.arange(n, dtype=np.float32) + 0.5) / n
    y = x.copy()
    y[..., :n] *= ramp
    y[..., -n:] *= ramp[::-1]
    return y


def energy_db(x: np.ndarray) -> float:
    e = float(np.sum(x.astype(np.float64) ** 2))
    return 10 * math.log10(e) if e > 0 else -math.inf


def residual_db(mix: np.ndarray, tracks: list[np.ndarray]) -> float:
    """Energy of mix - sum(tracks) relative to the mix's, in dB (-inf when exact)."""
    total = np.sum([t.astype(np.float64) for t in tracks], axis=0) if tracks else 0.0
    res = energy_db(mix.astype(np.float64) - total)
    return res - energy_db(mix)


@dataclass
class Track:
    index: int                  # instrument/sample/channel number in the file (0-based)
    raw_name: str
    mixed: np.ndarray           # (2, n): alone, as the author mixed it
    dry: np.ndarray | None = None
    name: str = ""              # file stem


@dataclass
class Checked:
    kept: list[Track]
    dropped: list[Track]
    residual_db: float
    ok: bool
    notes: list[str] = field(default_factory=list)


def check_tracks(mix: np.ndarray, tracks: list[Track]) -> Checked:
    """Drop tracks under AUDIBLE_BELOW_MIX_DB (as mixed); do the kept ones add up to the mix?"""
    floor = energy_db(mix) + AUDIBLE_BELOW_MIX_DB
    kept = [t for t in tracks if energy_db(t.mixed) >= floor]
    dropped = [t for t in tracks if energy_db(t.mixed) < floor]
    res = residual_db(mix, [t.mixed for t in kept])
    return Checked(kept, dropped, res, res <= MAX_RESIDUAL_DB)


def antiphase(mix: np.ndarray) -> str:
    """Why the mix cannot serve (its channels in opposite polarity, e.g. every IT channel on
    "surround": mono playback cancels it, and no console of gains and pans makes it), or ''."""
    side = energy_db(0.5 * (mix[0].astype(np.float64) - mix[1]))
    mid = energy_db(0.5 * (mix[0].astype(np.float64) + mix[1]))
    if side - mid > MAX_SIDE_OVER_MID_DB:
        return (f"the author's mix is in anti-phase (side {side - mid:+.1f} dB over mid, e.g. "
                f"surround channels): not a balance of gains and pans")
    return ""


def is_mono(x: np.ndarray) -> bool:
    return x.shape[0] == 2 and bool(np.array_equal(x[0], x[1]))
