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
