"""Live meters and callback timing: written by the audio callback, read by anyone.

The callback writes into preallocated arrays (numba kernels, no allocation); readers take copies
(``snapshot``). A reader may see a value from this block and its neighbour from the previous
one; for meters that is harmless and it keeps the callback free of locks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numba import njit

FLOOR_DB = -150.0


@njit(cache=True)
def sum_tracks(outs, mix):
    """mix = sum over tracks of outs (tracks, channels, n), float32 accumulate in track order
    (the order and precision of dsp.console's fused kernel, so both paths give equal output)."""
    for c in range(mix.shape[0]):
        for i in range(mix.shape[1]):
            mix[c, i] = 0.0
    for t in range(outs.shape[0]):
        for c in range(mix.shape[0]):
            for i in range(mix.shape[1]):
                mix[c, i] += outs[t, c, i]


@njit(cache=True)
def _block_levels(x, peak_db, rms_db, k):
    """Peak and RMS (dB re full scale, over all channels) of block x into slot k."""
    peak = 0.0
    acc = 0.0
    for c in range(x.shape[0]):
        for i in range(x.shape[1]):
            v = abs(x[c, i])
            acc += v * v
            if v > peak:
                peak = v
    n = x.shape[0] * x.shape[1]
    peak_db[k] = 20.0 * math.log10(peak) if peak > 3.2e-8 else FLOOR_DB  # -150 dB floor
    ms = acc / n
    rms_db[k] = 10.0 * math.log10(ms) if ms > 1e-15 else FLOOR_DB


class MasterLevels:
    """Peak and RMS of the engine's output block (after limiter and master inserts)."""

    def __init__(self) -> None:
        self.peak_db = np.full(1, FLOOR_DB)
        self.rms_db = np.full(1, FLOOR_DB)

    def update(self, out: np.ndarray) -> None:
        _block_levels(out, self.peak_db, self.rms_db, 0)


@dataclass(frozen=True)
class MeterSnapshot:
    """Levels of the last block per track, and the master's loudness (LUFS) and peaks."""

    track_names: tuple[str, ...]
    track_peak_db: np.ndarray
    track_rms_db: np.ndarray
    track_gr_db: np.ndarray
    master_peak_db: float
    master_rms_db: float
    master_gr_db: float
    master_momentary_lufs: float
    master_short_term_lufs: float
    master_true_peak_dbtp: float


class TimingRing:
    """Callback durations in ns (the last ``slots`` callbacks) and late-callback counts."""

    def __init__(self, period_s: float, slots: int = 16384) -> None:
        self.period_ns = int(round(period_s * 1e9))
        self.ns = np.zeros(slots, dtype=np.int64)
        self.count = np.zeros(1, dtype=np.int64)
        self.late = np.zeros(1, dtype=np.int64)      # callback took longer than a block period
        self.flagged = np.zeros(1, dtype=np.int64)   # the audio API reported an under/overflow

    def record(self, elapsed_ns: int) -> None:
        k = int(self.count[0])
        self.ns[k % self.ns.shape[0]] = elapsed_ns
        self.count[0] = k + 1
        if elapsed_ns > self.period_ns:
            self.late[0] += 1

    def reset(self) -> None:
        self.count[0] = 0
        self.late[0] = 0
        self.flagged[0] = 0

    def stats(self) -> "CallbackStats":
        n = int(self.count[0])
        k = min(n, self.ns.shape[0])
        ns = np.sort(self.ns[:k]) if n <= self.ns.shape[0] else np.sort(self.ns.copy())
        period_ms = self.period_ns / 1e6
        if k == 0:
            p50 = p99 = mx = 0.0
        else:
            p50 = float(np.percentile(ns, 50)) / 1e6
            p99 = float(np.percentile(ns, 99)) / 1e6
            mx = float(ns[-1]) / 1e6
        late, flagged = int(self.late[0]), int(self.flagged[0])
        return CallbackStats(callbacks=n, period_ms=period_ms, p50_ms=p50, p99_ms=p99,
                             max_ms=mx, late_callbacks=late, flagged_xruns=flagged,
                             xruns=late + flagged)


@dataclass(frozen=True)
class CallbackStats:
    """How long callbacks took (over the last ring of them) and how many were xruns."""

    callbacks: int
    period_ms: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    late_callbacks: int
    flagged_xruns: int
    xruns: int

    def pct(self, ms: float) -> float:
        """A duration as % of the block period."""
        return 100.0 * ms / self.period_ms if self.period_ms > 0 else 0.0
