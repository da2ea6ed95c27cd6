"""Brick-wall lookahead limiter, stereo-linked; the output never exceeds the ceiling.

Per sample n (L = lookahead in samples, W = L + 1, c = ceiling, linear):
- peak ``p[n] = max over channels |x[n]|``; window peak ``P[n] = max(p[n-L .. n])`` (monotonic
  deque, O(1) amortised); required gain ``m[n] = min(1, c / P[n])``.
- envelope: instant attack, exponential release in linear gain,
  ``e[n] = m[n]`` if ``m[n] < e[n-1]`` else ``m[n] + alpha * (e[n-1] - m[n])``,
  ``alpha = exp(-1 / (release_ms / 1000 * sample_rate))``. Always ``e[n] <= m[n]``.
- gain ``g[n] = mean(e[n-L .. n])`` (box smoother of W samples): the gain ramps down linearly
  over the lookahead instead of stepping, and every term of the mean is <= c / p[n-L].
- output ``y[n] = x[n-L] * g[n]`` (latency L samples). Hence ``|y[n]| <= c`` in exact arithmetic;
  a final guard clamps only what floating-point rounding leaves over (``guard_excess_db``).
When nothing in the box is below unity the sum is reset to exactly W, so a signal under the
ceiling passes bit-transparent (only delayed).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from dsp.errors import AudioInputError
from dsp.params import MASTER, spec
from dsp.validate import check_audio, check_range, check_sample_rate

# int state: deque head, deque size, sample counter, delay index, box index, non-unity count
_I_HEAD, _I_SIZE, _I_N, _I_DPOS, _I_BPOS, _I_LOW = range(6)
# float state: envelope, box sum, min gain of the last call, max guard excess (ratio)
_F_ENV, _F_SUM, _F_GMIN, _F_EXCESS = range(4)


@njit(cache=True, inline="always")
def _wrap(i, n):
    """i mod n for 0 <= i < 2n (cheaper than %)."""
    return i - n if i >= n else i


@njit(cache=True)
def _limiter_kernel(inp, out, delay, dq_val, dq_pos, box, ist, fst, ceiling, guard, alpha):
    """Limit ``inp`` (ch, n) float32 into ``out`` (may be ``inp``); state mutated in place."""
    nch, n = inp.shape
    lag = delay.shape[1]
    win = box.shape[0]
    head, size, count = ist[_I_HEAD], ist[_I_SIZE], ist[_I_N]
    dpos, bpos, low = ist[_I_DPOS], ist[_I_BPOS], ist[_I_LOW]
    env, total = fst[_F_ENV], fst[_F_SUM]
    gmin, excess = 1.0, fst[_F_EXCESS]
    for i in range(n):
        p = 0.0
        for c in range(nch):
            p = max(p, abs(np.float64(inp[c, i])))
        # sliding maximum of the peak over the last `win` samples (expire, drop smaller, push)
        if size > 0 and dq_pos[head] <= count - win:
            head = head + 1 if head + 1 < win else 0
            size -= 1
        while size > 0 and dq_val[_wrap(head + size - 1, win)] <= p:
            size -= 1
        tail = _wrap(head + size, win)
        dq_val[tail] = p
        dq_pos[tail] = count
        size += 1
        peak = dq_val[head]
        need = 1.0 if peak <= ceiling else ceiling / peak
        if need < env:
            env = need
        else:
            env = need + alpha * (env - need)
        # box smoother over the last `win` envelope values
        old = box[bpos]
        box[bpos] = env
        bpos = bpos + 1 if bpos + 1 < win else 0
        low += (1 if env < 1.0 else 0) - (1 if old < 1.0 else 0)
        if low == 0:
            total = float(win)
        else:
            total += env - old
        g = min(total / win, 1.0)
        gmin = min(gmin, g)
        for c in range(nch):
            d = delay[c, dpos]
            delay[c, dpos] = inp[c, i]
            y = np.float64(d) * g
            ay = abs(y)
            if ay > guard:
                excess = max(excess, ay / guard)
                y = guard if y > 0.0 else -guard
            out[c, i] = y
        dpos = dpos + 1 if dpos + 1 < lag else 0
        count += 1
    ist[_I_HEAD], ist[_I_SIZE], ist[_I_N] = head, size, count
    ist[_I_DPOS], ist[_I_BPOS], ist[_I_LOW] = dpos, bpos, low
    fst[_F_ENV], fst[_F_SUM], fst[_F_GMIN], fst[_F_EXCESS] = env, total, gmin, excess


def _guard_value(ceiling: float) -> float:
    """Largest float32 value that is <= ``ceiling`` (so float32 output never exceeds it)."""
    g = np.float32(ceiling)
    if float(g) > ceiling:
        g = np.nextafter(g, np.float32(0.0))
    return float(g)


class Limiter:
    """Lookahead brick-wall limiter; ``process`` streams (state carries across calls).

    The audio is delayed by ``latency_samples``; the first ``latency_samples`` outputs of a
    fresh limiter are silence. ``lookahead_ms`` is fixed at construction.
    """

    def __init__(self, sample_rate: float, ceiling_db: float = -1.0, release_ms: float = 50.0,
                 lookahead_ms: float = 5.0, channels: int = 2) -> None:
        self.sample_rate = check_sample_rate(sample_rate)
        if isinstance(channels, bool) or not isinstance(channels, (int, np.integer)):
            raise TypeError(f"channels must be an int (1..64), got {channels!r}")
        self.channels = int(check_range("channels", channels, 1, 64))
        self.lookahead_ms = spec(MASTER, "limiter_lookahead_ms").check(lookahead_ms, "Limiter")
        self.latency_samples = max(1, int(round(self.lookahead_ms * 1e-3 * self.sample_rate)))
        self.ceiling_db = -1.0
        self.release_ms = 50.0
        self.set_params(ceiling_db=ceiling_db, release_ms=release_ms)
        win = self.latency_samples + 1
        self._delay = np.zeros((self.channels, self.latency_samples), dtype=np.float32)
        self._dq_val = np.zeros(win)
        self._dq_pos = np.zeros(win, dtype=np.int64)
        self._box = np.ones(win)
        self._ist = np.zeros(6, dtype=np.int64)
        self._fst = np.zeros(4)
        self.reset()

    def set_params(self, ceiling_db: float | None = None, release_ms: float | None = None) -> None:
        """Change ceiling and/or release (validated against dsp.params); takes effect at once.

        After lowering the ceiling, samples already inside the lookahead window are hard-clamped
        by the guard (``guard_excess_db`` then shows it); later samples are limited normally.
        """
        if ceiling_db is not None:
            self.ceiling_db = spec(MASTER, "limiter_ceiling_db").check(ceiling_db, "Limiter")
        if release_ms is not None:
            self.release_ms = spec(MASTER, "limiter_release_ms").check(release_ms, "Limiter")
        self._ceiling, self._guard, self._alpha = self._coefficients()

    def _coefficients(self) -> tuple[float, float, float]:
        """User units -> kernel constants (the one place where dB and ms are converted)."""
        ceiling = 10.0 ** (self.ceiling_db / 20.0)
        alpha = math.exp(-1.0 / (self.release_ms * 1e-3 * self.sample_rate))
        return ceiling, _guard_value(ceiling), alpha

    def reset(self) -> None:
        """Clear the delay line and gain state; keeps the parameters."""
        self._delay[...] = 0.0
        self._dq_val[...] = 0.0
        self._dq_pos[...] = 0
        self._box[...] = 1.0
        self._ist[...] = 0
        self._fst[...] = 0.0
        self._fst[_F_ENV] = 1.0
        self._fst[_F_SUM] = float(self._box.shape[0])
        self._fst[_F_GMIN] = 1.0

    def process(self, audio: np.ndarray, sample_rate: float) -> np.ndarray:
        """Validate, then limit ``audio`` (channels, samples) float32; returns a new array."""
        sr = check_sample_rate(sample_rate)
        if sr != self.sample_rate:
            raise AudioInputError(f"sample_rate = {sr:g} Hz but this Limiter was built for "
                                  f"{self.sample_rate:g} Hz; make a new Limiter")
        x = check_audio(audio, "audio", channels=self.channels)
        out = np.empty_like(x)
        self.process_into(x, out)
        return out

    __call__ = process

    def process_into(self, inp: np.ndarray, out: np.ndarray) -> None:
        """Real-time path: no validation, no allocation; ``out`` may be ``inp``."""
        _limiter_kernel(inp, out, self._delay, self._dq_val, self._dq_pos, self._box,
                        self._ist, self._fst, self._ceiling, self._guard, self._alpha)

    @property
    def gain_reduction_db(self) -> float:
        """Largest gain reduction (dB, >= 0) during the last processed block."""
        g = float(self._fst[_F_GMIN])
        return 0.0 if g >= 1.0 else -20.0 * math.log10(max(g, 1e-30))

    @property
    def guard_excess_db(self) -> float:
        """Largest amount the final guard had to clamp since reset (dB; rounding only)."""
        e = float(self._fst[_F_EXCESS])
        return 0.0 if e <= 1.0 else 20.0 * math.log10(e)
