"""Brick-wall lookahead limiter, stereo-linked; the output never exceeds the ceiling.

Per sample n (L = lookahead in samples, W = L + 1, c = ceiling, linear):
- peak ``p[n] = max over channels |x[n]|``; window peak ``P[n] = max(p[n-L .. n])`` (van Herk /
  Gil-Werman blocks of W samples, O(1) per sample without branches); required gain
  ``m[n] = min(1, c / P[n])``.
- envelope: instant attack, exponential release in linear gain,
  ``e[n] = min(m[n], alpha * e[n-1] + (1 - alpha) * m[n])`` (= ``m[n]`` when ``m[n] < e[n-1]``),
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

CHUNK = 256  # samples per pass of the kernel (its scratch rows)
# int state: position in the current window block, delay index, box index, non-unity count
_I_POS, _I_DPOS, _I_BPOS, _I_LOW = range(4)
# float state: running max of the current window block, envelope, box sum, min gain of the last
# call, max guard excess (ratio)
_F_PREFIX, _F_ENV, _F_SUM, _F_GMIN, _F_EXCESS = range(5)


@njit(cache=True)
def _window_peak(inp, i0, m, p, blk, suf, pos, prefix):
    """``p[j]`` = max over channels and over the last W samples of ``|inp[:, i0 + j]|``.

    Van Herk / Gil-Werman: the stream is cut into blocks of W samples; the window ending in the
    current block is (suffix max of the previous block from the same offset) max (running max
    of the current block). ``suf[k]`` holds max(previous block[k:]), ``suf[W] = 0``; ``blk``
    the current block's peaks. Branch-free per sample but at block ends; exact.
    """
    nch = inp.shape[0]
    win = blk.shape[0]
    for j in range(m):
        p[j] = abs(np.float64(inp[0, i0 + j]))
    for c in range(1, nch):
        for j in range(m):
            p[j] = max(p[j], abs(np.float64(inp[c, i0 + j])))
    j = 0
    while j < m:  # runs inside one window block
        run = min(m - j, win - pos)
        for k in range(run):
            v = p[j + k]
            blk[pos + k] = v
            prefix = max(prefix, v)
            p[j + k] = max(suf[pos + k + 1], prefix)
        pos += run
        j += run
        if pos == win:
            s = 0.0
            for k in range(win - 1, -1, -1):
                s = max(s, blk[k])
                suf[k] = s
            pos = 0
            prefix = 0.0
    return pos, prefix


@njit(cache=True)
def _limiter_kernel(inp, out, delay, blk, suf, box, work, ist, fst, ceiling, guard, alpha):
    """Limit ``inp`` (ch, n) float32 into ``out`` (may be ``inp``); state mutated in place.

    Works in CHUNK-sample passes over the scratch rows ``work (2, CHUNK)``: window peak ->
    required gain (vectorises) -> envelope and box smoother (the one recurrence: one FMA and a
    min per sample) -> delayed output per channel (vectorises).
    """
    nch, n = inp.shape
    lag = delay.shape[1]
    win = box.shape[0]
    pos, dpos, bpos, low = ist[_I_POS], ist[_I_DPOS], ist[_I_BPOS], ist[_I_LOW]
    prefix, env, total = fst[_F_PREFIX], fst[_F_ENV], fst[_F_SUM]
    gmin, excess = 1.0, fst[_F_EXCESS]
    p = work[0]
    g = work[1]
    i0 = int(0)   # int(): a literal 0 would have numba compile _window_peak for it too
    while i0 < n:
        m = min(CHUNK, n - i0)
        pos, prefix = _window_peak(inp, i0, m, p, blk, suf, pos, prefix)
        for j in range(m):
            peak = p[j]
            need = 1.0 if peak <= ceiling else ceiling / peak
            p[j] = need
            g[j] = (1.0 - alpha) * need
        for j in range(m):
            need = p[j]
            env = min(need, alpha * env + g[j])
            old = box[bpos]
            box[bpos] = env
            bpos = bpos + 1 if bpos + 1 < win else 0
            low += (1 if env < 1.0 else 0) - (1 if old < 1.0 else 0)
            if low == 0:
                total = float(win)
            else:
                total += env - old
            g[j] = min(total / win, 1.0)
        for j in range(m):
            gmin = min(gmin, g[j])
        for c in range(nch):
            dp = dpos
            j = 0
            while j < m:  # runs that do not wrap around the delay line
                run = min(m - j, lag - dp)
                top = 0.0
                for k in range(run):
                    d = delay[c, dp + k]
                    delay[c, dp + k] = inp[c, i0 + j + k]
                    y = np.float64(d) * g[j + k]
                    top = max(top, abs(y))
                    out[c, i0 + j + k] = min(max(y, -guard), guard)
                if top > guard:
                    excess = max(excess, top / guard)
                j += run
                dp = 0 if dp + run == lag else dp + run
        dpos = (dpos + m) % lag
        i0 += m
    ist[_I_POS], ist[_I_DPOS], ist[_I_BPOS], ist[_I_LOW] = pos, dpos, bpos, low
    fst[_F_PREFIX], fst[_F_ENV], fst[_F_SUM] = prefix, env, total
    fst[_F_GMIN], fst[_F_EXCESS] = gmin, excess


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
        self._blk = np.zeros(win)
        self._suf = np.zeros(win + 1)
        self._box = np.ones(win)
        self._work = np.zeros((2, CHUNK))
        self._ist = np.zeros(4, dtype=np.int64)
        self._fst = np.zeros(5)
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
        self._blk[...] = 0.0
        self._suf[...] = 0.0
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
        _limiter_kernel(inp, out, self._delay, self._blk, self._suf, self._box, self._work,
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
