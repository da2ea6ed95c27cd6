"""Input checks shared by every public DSP wrapper. Kernels never validate; wrappers always do."""

from __future__ import annotations

import math

import numpy as np

from dsp.errors import AudioInputError, ParameterError

MIN_SAMPLE_RATE = 8000.0
MAX_SAMPLE_RATE = 384000.0


def check_sample_rate(sample_rate: object) -> float:
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, (int, float, np.number)):
        raise TypeError(f"sample_rate must be a number in Hz, got {sample_rate!r}")
    sr = float(sample_rate)
    if not (math.isfinite(sr) and MIN_SAMPLE_RATE <= sr <= MAX_SAMPLE_RATE):
        raise AudioInputError(f"sample_rate = {sample_rate} Hz is out of range: allowed "
                              f"{MIN_SAMPLE_RATE:g} .. {MAX_SAMPLE_RATE:g} Hz")
    return sr


def check_audio(audio: object, name: str = "audio", channels: int | None = None) -> np.ndarray:
    """Return ``audio`` if it is finite float32 shaped (channels, samples); raise otherwise.

    float64 input is accepted and converted (a copy); integer audio is refused because its scale
    is ambiguous.
    """
    if not isinstance(audio, np.ndarray):
        raise TypeError(f"{name} must be a numpy array shaped (channels, samples), "
                        f"got {type(audio).__name__}")
    if audio.dtype == np.float64:
        audio = audio.astype(np.float32)
    if audio.dtype != np.float32:
        raise AudioInputError(f"{name} must be float32 audio in [-1, 1] scale, got dtype "
                              f"{audio.dtype}")
    if audio.ndim != 2:
        raise AudioInputError(f"{name} must be shaped (channels, samples), got shape "
                              f"{audio.shape}")
    if channels is not None and audio.shape[0] != channels:
        raise AudioInputError(f"{name} must have {channels} channels, got {audio.shape[0]} "
                              f"(shape {audio.shape}; expected (channels, samples))")
    if audio.shape[0] > 64:
        raise AudioInputError(f"{name} has {audio.shape[0]} channels: is it transposed? "
                              f"expected (channels, samples)")
    if not np.isfinite(audio).all():
        bad = int(np.count_nonzero(~np.isfinite(audio)))
        raise AudioInputError(f"{name} contains {bad} non-finite samples (NaN or inf)")
    return np.ascontiguousarray(audio)


def check_range(name: str, value: object, lo: float, hi: float, unit: str = "") -> float:
    """A number in [lo, hi] or ParameterError naming it and the range."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.number)):
        raise TypeError(f"{name} must be a number{' in ' + unit if unit else ''}, got {value!r}")
    v = float(value)
    if not (math.isfinite(v) and lo <= v <= hi):
        raise ParameterError(f"{name} = {value} is out of range: allowed {lo:g} .. {hi:g} "
                             f"{unit}".rstrip())
    return v
