"""What a demo producer listens for in a stem: loudness, low edge, low-mid resonance, levels."""

from __future__ import annotations

import math

import numpy as np
from scipy.signal import sosfilt, welch

from dsp.loudness import integrated_loudness, k_weighting_coeffs

SILENCE_LUFS = -70.0


def loudness_lufs(audio: np.ndarray, sample_rate_hz: float) -> float:
    """Integrated loudness (BS.1770), floored at SILENCE_LUFS for (near) silence."""
    value = integrated_loudness(np.ascontiguousarray(audio, dtype=np.float32), sample_rate_hz)
    return value if math.isfinite(value) and value > SILENCE_LUFS else SILENCE_LUFS


def playing_loudness_lufs(audio: np.ndarray, sample_rate_hz: float,
                          percentile: float = 90.0) -> float:
    """How loud a stem sounds while it plays: a high percentile of its momentary loudness.

    Momentary loudness is BS.1770 over 400 ms windows every 100 ms; windows below
    SILENCE_LUFS are ignored. Unlike integrated loudness this does not fall for sparse parts
    (a snare hit twice a bar), which is how an engineer balances them.
    """
    rows = k_weighting_coeffs(sample_rate_hz)
    sos = np.column_stack([rows[:, :3], np.ones(len(rows)), rows[:, 3:]])
    weighted = sosfilt(sos, np.asarray(audio, dtype=np.float64), axis=-1)
    power = np.sum(weighted ** 2, axis=0)
    win, hop = int(0.4 * sample_rate_hz), int(0.1 * sample_rate_hz)
    if power.size < win:
        return loudness_lufs(audio, sample_rate_hz)
    csum = np.concatenate([[0.0], np.cumsum(power)])
    starts = np.arange(0, power.size - win + 1, hop)
    blocks = -0.691 + 10.0 * np.log10((csum[starts + win] - csum[starts]) / win + 1e-30)
    blocks = blocks[blocks > SILENCE_LUFS]
    return float(np.percentile(blocks, percentile)) if blocks.size else SILENCE_LUFS


def spectrum_db(audio: np.ndarray, sample_rate_hz: float) -> tuple[np.ndarray, np.ndarray]:
    """Average power spectrum of the mono sum: (frequencies in Hz, power in dB)."""
    mono = audio.mean(axis=0).astype(np.float64)
    nper = int(min(8192, max(256, mono.size)))
    freqs, psd = welch(mono, fs=sample_rate_hz, nperseg=nper)
    return freqs, 10.0 * np.log10(psd + 1e-20)


def low_edge_hz(freqs: np.ndarray, power_db: np.ndarray, fraction: float = 0.01) -> float:
    """Frequency below which ``fraction`` of the stem's energy above 20 Hz lies."""
    band = freqs >= 20.0
    f, p = freqs[band], 10.0 ** (power_db[band] / 10.0)
    cum = np.cumsum(p)
    if cum[-1] <= 0:
        return 20.0
    return float(f[int(np.searchsorted(cum, fraction * cum[-1]))])


def strongest_resonance(freqs: np.ndarray, power_db: np.ndarray, lo_hz: float,
                        hi_hz: float) -> tuple[float, float]:
    """(frequency Hz, prominence dB) of the biggest bump in [lo_hz, hi_hz].

    Prominence is the spectrum smoothed over 1/6 octave minus its trend smoothed over 1 octave,
    both on a log-frequency grid.
    """
    grid = np.geomspace(max(lo_hz / 2.0, 20.0), min(hi_hz * 2.0, freqs[-1]), 240)
    on_grid = np.interp(grid, freqs, power_db)
    per_octave = 240 / math.log2(grid[-1] / grid[0])
    fine = _smooth(on_grid, max(1, int(per_octave / 6)))
    trend = _smooth(on_grid, max(1, int(per_octave)))
    prominence = fine - trend
    band = (grid >= lo_hz) & (grid <= hi_hz)
    i = int(np.argmax(np.where(band, prominence, -np.inf)))
    return float(grid[i]), float(prominence[i])


def _smooth(x: np.ndarray, width: int) -> np.ndarray:
    pad = np.pad(x, width, mode="edge")
    kernel = np.ones(2 * width + 1) / (2 * width + 1)
    return np.convolve(pad, kernel, mode="valid")


def loud_level_db(audio: np.ndarray, sample_rate_hz: float, percentile: float = 95.0) -> float:
    """Level of the stem's loud parts: a high percentile of its 50 ms RMS, in dBFS."""
    block = max(1, int(0.05 * sample_rate_hz))
    mono = np.max(np.abs(audio), axis=0) if audio.ndim == 2 else np.abs(audio)
    n = mono.size // block
    if n == 0:
        return -120.0
    rms = np.sqrt(np.mean(mono[:n * block].reshape(n, block).astype(np.float64) ** 2, axis=1))
    return float(20.0 * np.log10(np.percentile(rms, percentile) + 1e-12))


def spectral_centroid_hz(audio: np.ndarray, sample_rate_hz: float) -> float:
    """Power-weighted mean frequency of the mono sum."""
    freqs, p_db = spectrum_db(audio, sample_rate_hz)
    p = 10.0 ** (p_db / 10.0)
    return float(np.sum(freqs * p) / max(np.sum(p), 1e-30))
