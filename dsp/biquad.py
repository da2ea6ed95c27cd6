"""RBJ cookbook biquads (Audio EQ Cookbook, R. Bristow-Johnson), transposed direct form II.

Coefficients are a0-normalised ``(b0, b1, b2, a1, a2)``; frequencies are clamped to at most
``0.45 * sample_rate``; shelves use shelf slope S = 1. The high-pass is bypassed at
``freq_hz <= 10`` and the low-pass at ``freq_hz >= 20000`` (the table's ends); a peak or shelf at
0 dB is exactly the identity. Audio is float32, filter state float64.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from dsp.gain import FASTMATH, check_arg
from dsp.validate import check_audio, check_sample_rate

HIGHPASS, LOWPASS, LOW_SHELF, HIGH_SHELF, PEAK, IDENTITY = 0, 1, 2, 3, 4, 5
KIND_NAMES = ("highpass", "lowpass", "low_shelf", "high_shelf", "peak", "identity")
HPF_BYPASS_HZ = 10.0
LPF_BYPASS_HZ = 20000.0
MAX_FREQ_RATIO = 0.45


@njit(cache=True)
def design(kind: int, freq_hz: float, gain_db: float, q: float,
           sample_rate: float) -> tuple[float, float, float, float, float]:
    """a0-normalised (b0, b1, b2, a1, a2) of one RBJ biquad."""
    if (kind == IDENTITY or (kind == HIGHPASS and freq_hz <= HPF_BYPASS_HZ)
            or (kind == LOWPASS and freq_hz >= LPF_BYPASS_HZ)
            or ((kind == PEAK or kind == LOW_SHELF or kind == HIGH_SHELF) and gain_db == 0.0)):
        return 1.0, 0.0, 0.0, 0.0, 0.0
    f = min(freq_hz, MAX_FREQ_RATIO * sample_rate)
    w0 = 2.0 * math.pi * f / sample_rate
    cw = math.cos(w0)
    sw = math.sin(w0)
    if kind == HIGHPASS or kind == LOWPASS or kind == PEAK:
        alpha = sw / (2.0 * q)
        if kind == HIGHPASS:
            b0, b1, b2 = (1.0 + cw) / 2.0, -(1.0 + cw), (1.0 + cw) / 2.0
            a0, a1, a2 = 1.0 + alpha, -2.0 * cw, 1.0 - alpha
        elif kind == LOWPASS:
            b0, b1, b2 = (1.0 - cw) / 2.0, 1.0 - cw, (1.0 - cw) / 2.0
            a0, a1, a2 = 1.0 + alpha, -2.0 * cw, 1.0 - alpha
        else:
            a = math.pow(10.0, gain_db / 40.0)
            b0, b1, b2 = 1.0 + alpha * a, -2.0 * cw, 1.0 - alpha * a
            a0, a1, a2 = 1.0 + alpha / a, -2.0 * cw, 1.0 - alpha / a
    else:
        a = math.pow(10.0, gain_db / 40.0)
        # shelf slope S = 1: alpha = sin(w0)/2 * sqrt((A + 1/A)(1/S - 1) + 2)
        two_sqrt_a_alpha = 2.0 * math.sqrt(a) * (sw / 2.0 * math.sqrt(2.0))
        ap, am = a + 1.0, a - 1.0
        if kind == LOW_SHELF:
            b0 = a * (ap - am * cw + two_sqrt_a_alpha)
            b1 = 2.0 * a * (am - ap * cw)
            b2 = a * (ap - am * cw - two_sqrt_a_alpha)
            a0 = ap + am * cw + two_sqrt_a_alpha
            a1 = -2.0 * (am + ap * cw)
            a2 = ap + am * cw - two_sqrt_a_alpha
        else:
            b0 = a * (ap + am * cw + two_sqrt_a_alpha)
            b1 = -2.0 * a * (am + ap * cw)
            b2 = a * (ap + am * cw - two_sqrt_a_alpha)
            a0 = ap - am * cw + two_sqrt_a_alpha
            a1 = 2.0 * (am - ap * cw)
            a2 = ap - am * cw - two_sqrt_a_alpha
    return b0 / a0, b1 / a0, b2 / a0, a1 / a0, a2 / a0


@njit(inline="always", fastmath=FASTMATH)
def tick(x, b0, b1, b2, a1, a2, s1, s2):
    """One TDF-II step: returns (y, new s1, new s2). Written so that the state's dependency
    chain is two fused multiply-adds per sample (``b1*x + s2`` is ready before ``y``)."""
    y = b0 * x + s1
    return y, (b1 * x + s2) - a1 * y, b2 * x - a2 * y


@njit(inline="always", fastmath=FASTMATH)
def tick_state_last(x, b0, b1, b2, a1, a2, s1, s2):
    """``tick`` with the state added last, ``(b1*x - a1*y) + s2``: the same filter, rounded
    differently (about 1e-13 relative). ``dsp.offline`` (the master front end) and
    ``mixstyle.fit`` (the EQ refinement) were built on this order, and the masters and fitted
    settings -- hence learned profiles -- are bit-identical only with it; moving them to
    ``tick`` is a change of results and belongs in its own commit. The other copies of the step
    are justified: ``dsp.lanes`` runs ``tick`` itself in SIMD lanes, the torch twin's adjoint
    kernels (``mixstyle.twin.kernels``) need their own backward pass, and ``dsp.loudness``'s
    K-weighting is direct form I (one FMA per stage on the critical path), not TDF-II."""
    y = b0 * x + s1
    return y, b1 * x - a1 * y + s2, b2 * x - a2 * y


@njit(cache=True, fastmath=FASTMATH)
def _cascade_kernel(inp, out, coefs, z):
    """Sections ``coefs (S, 5)`` in series over ``inp (C, n)``; state ``z (C, S, 2)``."""
    for c in range(inp.shape[0]):
        for i in range(inp.shape[1]):
            x = np.float64(inp[c, i])
            for k in range(coefs.shape[0]):
                x, z[c, k, 0], z[c, k, 1] = tick(x, coefs[k, 0], coefs[k, 1], coefs[k, 2],
                                                 coefs[k, 3], coefs[k, 4], z[c, k, 0], z[c, k, 1])
            out[c, i] = np.float32(x)


def response_db(coeffs: np.ndarray, freqs_hz: np.ndarray, sample_rate: float) -> np.ndarray:
    """Magnitude response in dB of one section ``(5,)`` or a cascade ``(S, 5)`` at ``freqs_hz``."""
    c = np.atleast_2d(np.asarray(coeffs, dtype=np.float64))
    z1 = np.exp(-2j * np.pi * np.asarray(freqs_hz, dtype=np.float64) / float(sample_rate))
    z2 = z1 * z1
    h = np.ones_like(z1)
    for b0, b1, b2, a1, a2 in c:
        h = h * (b0 + b1 * z1 + b2 * z2) / (1.0 + a1 * z1 + a2 * z2)
    return 20.0 * np.log10(np.maximum(np.abs(h), 1e-30))


class _Biquad:
    """One filter section with the processor call shape; subclasses set ``kind`` and args."""

    kind = IDENTITY
    _processor = ""
    _args: tuple[str, ...] = ()

    def __init__(self, **values: float) -> None:
        for name in self._args:
            setattr(self, name, values[name])
        self.reset()

    def __setattr__(self, name: str, value: object) -> None:
        if name in self._args:
            value = check_arg(type(self).__name__, self._processor, name, value)
        object.__setattr__(self, name, value)

    def __repr__(self) -> str:
        args = ", ".join(f"{a}={getattr(self, a)!r}" for a in self._args)
        return f"{type(self).__name__}({args})"

    def coefficients(self, sample_rate: float) -> np.ndarray:
        """a0-normalised ``[b0, b1, b2, a1, a2]`` at ``sample_rate``."""
        sr = check_sample_rate(sample_rate)
        return np.array(design(self.kind, float(getattr(self, "freq_hz")),
                               float(getattr(self, "gain_db", 0.0)),
                               float(getattr(self, "q", 0.7071)), sr))

    def process(self, audio: np.ndarray, sample_rate: float) -> np.ndarray:
        x = check_audio(audio)
        coefs = self.coefficients(sample_rate)[None, :]
        if self._z is None or self._z.shape[0] != x.shape[0] or self._sample_rate != sample_rate:
            self._z = np.zeros((x.shape[0], 1, 2))
            self._sample_rate = sample_rate
        out = np.empty_like(x)
        _cascade_kernel(x, out, coefs, self._z)
        return out

    __call__ = process

    def reset(self) -> None:
        """Clear the filter state; parameters are kept."""
        object.__setattr__(self, "_z", None)
        object.__setattr__(self, "_sample_rate", None)


class HighPass(_Biquad):
    """2-pole high-pass (12 dB/oct); bypassed at ``freq_hz <= 10``."""

    kind, _processor, _args = HIGHPASS, "highpass", ("freq_hz", "q")

    def __init__(self, freq_hz: float = 10.0, q: float = 0.7071) -> None:
        super().__init__(freq_hz=freq_hz, q=q)


class LowPass(_Biquad):
    """2-pole low-pass (12 dB/oct); bypassed at ``freq_hz >= 20000``."""

    kind, _processor, _args = LOWPASS, "lowpass", ("freq_hz", "q")

    def __init__(self, freq_hz: float = 20000.0, q: float = 0.7071) -> None:
        super().__init__(freq_hz=freq_hz, q=q)


class LowShelf(_Biquad):
    """Low shelf, slope 1: ``gain_db`` below ``freq_hz``."""

    kind, _processor, _args = LOW_SHELF, "low_shelf", ("freq_hz", "gain_db")

    def __init__(self, freq_hz: float = 120.0, gain_db: float = 0.0) -> None:
        super().__init__(freq_hz=freq_hz, gain_db=gain_db)


class HighShelf(_Biquad):
    """High shelf, slope 1: ``gain_db`` above ``freq_hz``."""

    kind, _processor, _args = HIGH_SHELF, "high_shelf", ("freq_hz", "gain_db")

    def __init__(self, freq_hz: float = 8000.0, gain_db: float = 0.0) -> None:
        super().__init__(freq_hz=freq_hz, gain_db=gain_db)


class Peak(_Biquad):
    """Peaking band: ``gain_db`` at ``freq_hz``, bandwidth set by ``q``."""

    kind, _processor, _args = PEAK, "peak", ("freq_hz", "gain_db", "q")

    def __init__(self, freq_hz: float = 1000.0, gain_db: float = 0.0, q: float = 1.0) -> None:
        super().__init__(freq_hz=freq_hz, gain_db=gain_db, q=q)
