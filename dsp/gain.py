"""Gain and constant-power pan, plus the small helpers every DSP wrapper shares.

Pan law (0 dB at centre, constant power for a centred mono source)::

    gL = sqrt(2) * cos(pi * (pan + 1) / 4),  gR = sqrt(2) * sin(pi * (pan + 1) / 4)
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from dsp.params import TABLE
from dsp.validate import check_audio, check_range, check_sample_rate

LN10_OVER_20 = math.log(10.0) / 20.0
FASTMATH = {"contract"}  # FMA contraction only: changes results by float64 rounding, nothing more
_LN2_HI, _LN2_LO = 6.93147180369123816490e-01, 1.90821492927058770002e-10  # ln 2 = HI + LO
_LOG2E = 1.4426950408889634
_MANTISSA = 0x000FFFFFFFFFFFFF
_ONE_BITS = 0x3FF0000000000000


def table_range(processor: str, arg: str) -> tuple[float, float, str]:
    """(min, max, unit) that a wrapper accepts for ``arg``: the union of its table entries."""
    specs = [p for p in TABLE if p.processor == processor and p.arg == arg]
    if not specs:
        raise KeyError(f"no table entry for {processor}.{arg}")
    return min(p.min for p in specs), max(p.max for p in specs), specs[0].unit


def check_arg(owner: str, processor: str, arg: str, value: object) -> float:
    """``value`` as float if inside the table range of ``processor.arg``, else ParameterError."""
    lo, hi, unit = table_range(processor, arg)
    return check_range(f"{owner}.{arg}", value, lo, hi, unit)


@njit(inline="always", fastmath=FASTMATH, error_model="numpy")
def fast_exp(x):
    """e**x for x <= 0 (clamped at -700): Cody-Waite reduction by ln 2 and a degree-12 Taylor
    polynomial; relative error < 5e-16. Unlike a libm call it inlines and vectorises."""
    x = max(x, -700.0)
    k = math.floor(x * _LOG2E + 0.5)
    r = (x - k * _LN2_HI) - k * _LN2_LO  # |r| <= ln(2)/2
    p = 1.0 / 479001600.0
    for c in (39916800.0, 3628800.0, 362880.0, 40320.0, 5040.0, 720.0, 120.0, 24.0, 6.0, 2.0,
              1.0, 1.0):
        p = p * r + 1.0 / c
    return p * np.int64((np.int64(k) + 1023) << 52).view(np.float64)


# Near-minimax polynomials for the compressor's per-sample log and exp (numpy Chebyshev fits,
# converted to monomials): log2(1 + t) / t on t in [sqrt(1/2) - 1, sqrt(2) - 1] (degree 10) and
# (2**r - 1) / r on r in [-1/2, 1/2] (degree 6). Max error: 1e-9 in log2 (6e-9 dB), 3e-10
# relative in exp2. No division, so a loop over them vectorises well (tests/dsp/test_gain.py).
_LOG2_Q = (1.442695041511222, -0.7213475155296204, 0.4808980034323042, -0.360674289278275,
           0.2885693207731975, -0.24045501847979114, 0.20517072437040448, -0.17920343198117503,
           0.17140330491633643, -0.16699111365251573, 0.0959689042570443)
_EXP2_Q = (0.6931471805577776, 0.24022650864784414, 0.05550410897691151, 0.009618068329384619,
           0.0013333489506303414, 0.00015456986450393295, 1.5300300685915056e-05)
_HALF_SQRT2_UP = _ONE_BITS - 0x3FE6A09E667F3BCD  # adding it carries a mantissa >= sqrt(2)


@njit(inline="always", fastmath=FASTMATH, error_model="numpy")
def log2_approx(x):
    """log2 of a positive normal float: exponent from the bits, mantissa m in [sqrt(1/2),
    sqrt(2)), log2(m) = t * q(t) with t = m - 1 (exactly 0 at x = 1); abs. error < 1.1e-9."""
    bits = np.float64(x).view(np.int64) + _HALF_SQRT2_UP
    e = np.float64((bits >> 52) - 1023)
    t = np.int64((bits & _MANTISSA) + _ONE_BITS - _HALF_SQRT2_UP).view(np.float64) - 1.0
    q = _LOG2_Q[10]
    for i in range(9, -1, -1):
        q = q * t + _LOG2_Q[i]
    return e + t * q


@njit(inline="always", fastmath=FASTMATH, error_model="numpy")
def exp2_approx(x):
    """2**x for x <= 0 (clamped at -1000): 2**k * (1 + r * q(r)), r = x - round(x) in
    [-1/2, 1/2]; relative error < 3e-10."""
    x = max(x, -1000.0)
    k = math.floor(x + 0.5)
    r = x - k
    q = _EXP2_Q[6]
    for i in range(5, -1, -1):
        q = q * r + _EXP2_Q[i]
    return (1.0 + r * q) * np.int64((np.int64(k) + 1023) << 52).view(np.float64)


@njit(cache=True)
def db_to_lin(gain_db: float) -> float:
    return math.exp(gain_db * LN10_OVER_20)


@njit(cache=True)
def pan_gains(pan: float) -> tuple[float, float]:
    """(gL, gR) of the pan law; exactly (1, 1) at the centre."""
    if pan == 0.0:
        return 1.0, 1.0
    theta = math.pi * (pan + 1.0) / 4.0
    return math.sqrt(2.0) * math.cos(theta), math.sqrt(2.0) * math.sin(theta)


@njit(cache=True)
def _scale_kernel(inp, out, gains):
    """out[c] = inp[c] * gains[c] (float64 gain, float32 audio)."""
    for c in range(inp.shape[0]):
        g = gains[c]
        for i in range(inp.shape[1]):
            out[c, i] = np.float32(inp[c, i] * g)


class Gain:
    """Static gain in dB: ``Gain(gain_db=-6.0).process(audio, sample_rate)``."""

    def __init__(self, gain_db: float = 0.0) -> None:
        self.gain_db = gain_db

    @property
    def gain_db(self) -> float:
        return self._gain_db

    @gain_db.setter
    def gain_db(self, value: float) -> None:
        self._gain_db = check_arg("Gain", "gain", "gain_db", value)

    def __repr__(self) -> str:
        return f"Gain(gain_db={self._gain_db})"

    def process(self, audio: np.ndarray, sample_rate: float) -> np.ndarray:
        check_sample_rate(sample_rate)
        x = check_audio(audio)
        out = np.empty_like(x)
        g = math.pow(10.0, self._gain_db / 20.0)
        _scale_kernel(x, out, np.full(x.shape[0], g))
        return out

    __call__ = process

    def reset(self) -> None:
        """Stateless: nothing to clear."""


class Pan:
    """Constant-power pan of a stereo signal, ``pan`` in [-1 (left), 1 (right)]."""

    def __init__(self, pan: float = 0.0) -> None:
        self.pan = pan

    @property
    def pan(self) -> float:
        return self._pan

    @pan.setter
    def pan(self, value: float) -> None:
        self._pan = check_arg("Pan", "pan", "pan", value)

    def __repr__(self) -> str:
        return f"Pan(pan={self._pan})"

    @property
    def gains(self) -> tuple[float, float]:
        """(gL, gR), linear."""
        return pan_gains(self._pan)

    def process(self, audio: np.ndarray, sample_rate: float) -> np.ndarray:
        check_sample_rate(sample_rate)
        x = check_audio(audio, "audio", channels=2)
        out = np.empty_like(x)
        _scale_kernel(x, out, np.array(self.gains))
        return out

    __call__ = process

    def reset(self) -> None:
        """Stateless: nothing to clear."""
