"""Time alignment of a session: loudest excerpt, region reads, offset of the mix vs the stems.

The offset is found by FFT cross-correlation with PHAT weighting (every frequency counts by its
phase only), which gives a sharp peak even when the mix is EQ'd, compressed or bass-heavy. The
search covers +-``max_lag`` samples; the sign convention is ``target[n + offset] ~ reference[n]``
(a positive offset means the mix starts late).
"""

from __future__ import annotations

import math

import numpy as np
from scipy.fft import irfft, next_fast_len, rfft

from dsp.errors import ParameterError
from mixstyle.io.audio import read_audio, resample, resample_ratio
from mixstyle.sessions.check import FileScan

OFFSET_SEARCH_SECONDS = 1.0
OFFSET_WINDOW_SECONDS = 20.0   # at most this much audio goes into the cross-correlation
FIT_WINDOW_SECONDS = 10.0      # and into the mix-contains-stems test
_PHAT_FLOOR = 1e-3             # weight floor (relative to the strongest bin) against noise
RESAMPLE_GUARD_FRAMES = 64     # > resample_poly's filter half-length (10 * max(up, down) / up)


def loudest_start(block_power: np.ndarray, window_blocks: int) -> int:
    """Index of the first block of the ``window_blocks`` consecutive blocks with most energy
    (ties: the earliest)."""
    if window_blocks < 1:
        raise ParameterError(f"window_blocks = {window_blocks} is out of range: allowed >= 1")
    n = block_power.size
    if n <= window_blocks:
        return 0
    csum = np.concatenate(([0.0], np.cumsum(block_power, dtype=np.float64)))
    sums = csum[window_blocks:] - csum[:-window_blocks]
    return int(np.argmax(sums >= sums.max() * (1.0 - 1e-12)))


def loudest_window(mono: np.ndarray, sample_rate: float, seconds: float) -> tuple[int, int]:
    """``(start, stop)`` sample indices of the loudest ``seconds`` of ``mono`` (whole if shorter),
    found on a 0.1 s block grid."""
    n = mono.shape[-1]
    length = int(round(seconds * sample_rate))
    if n <= length:
        return 0, n
    hop = max(1, int(round(0.1 * sample_rate)))
    full = n // hop * hop
    power = np.mean(mono[:full].astype(np.float64).reshape(-1, hop) ** 2, axis=1)
    start = loudest_start(power, max(1, length // hop)) * hop
    start = min(start, n - length)
    return start, start + length


def detect_offset(reference: np.ndarray, target: np.ndarray, max_lag: int) -> tuple[int, float]:
    """Lag d in [-max_lag, max_lag] maximising the PHAT cross-correlation of
    ``reference[k]`` with ``target[max_lag + d + k]``.

    ``reference`` is mono (L,), ``target`` mono (L + 2*max_lag,) and starts ``max_lag`` samples
    before the reference. Returns ``(lag, peak_ratio)``: the peak height over the median absolute
    correlation (large = trustworthy; about 3..5 for unrelated signals).
    """
    if max_lag < 0:
        raise ParameterError(f"max_lag = {max_lag} is out of range: allowed >= 0")
    length = reference.shape[-1]
    if target.shape[-1] != length + 2 * max_lag:
        raise ParameterError(f"target has {target.shape[-1]} samples: expected reference length "
                             f"+ 2*max_lag = {length + 2 * max_lag}")
    if length == 0:
        return 0, 0.0
    nfft = next_fast_len(length + 2 * max_lag + 1)
    ref = rfft(reference.astype(np.float64), nfft)
    tgt = rfft(target.astype(np.float64), nfft)
    cross = np.conj(ref) * tgt
    mag = np.abs(cross)
    top = float(mag.max())
    if top <= 0.0:
        return 0, 0.0
    corr = irfft(cross / (mag + _PHAT_FLOOR * top), nfft)[: 2 * max_lag + 1]
    j = int(np.argmax(corr))
    spread = float(np.median(np.abs(corr))) + 1e-30
    return j - max_lag, float(corr[j] / spread)


def shift_with_margin(extended: np.ndarray, margin: int, offset: int, length: int) -> np.ndarray:
    """Cut ``length`` samples of ``extended`` (channels, length + 2*margin; sample ``margin`` is
    time 0) starting at time ``offset``: the aligned signal."""
    start = margin + offset
    return np.ascontiguousarray(extended[:, start:start + length])


def read_region(scan: FileScan, start_s: float, n_out: int, sample_rate: float) -> np.ndarray:
    """``n_out`` samples at ``sample_rate`` from time ``start_s`` (may be negative), stereo,
    zero-padded outside the file. When resampling, a guard of whole resampling periods is read on
    both sides so the filter sees real audio at the region's edges."""
    fsr = scan.info.sample_rate
    up, down = (1, 1) if fsr == sample_rate else resample_ratio(fsr, sample_rate)
    guard = 0 if fsr == sample_rate else down * math.ceil(RESAMPLE_GUARD_FRAMES / down)
    first = int(round(start_s * fsr)) - guard
    count = int(math.ceil(n_out * fsr / sample_rate)) + 2 + 2 * guard
    lead = max(0, -first)
    audio, _ = read_audio(scan.info.path, max(0, first), max(0, count - lead))
    if lead:
        audio = np.concatenate([np.zeros((audio.shape[0], lead), np.float32), audio], axis=1)
    audio = resample(audio, fsr, sample_rate)[:, guard * up // down:]
    if audio.shape[0] == 1:
        audio = np.repeat(audio, 2, axis=0)
    out = np.zeros((2, n_out), np.float32)
    k = min(n_out, audio.shape[1])
    out[:, :k] = audio[:, :k]
    return out


def read_aligned(reference: np.ndarray, scan: FileScan, start_s: float, n_out: int,
                 sample_rate: float) -> tuple[np.ndarray, int]:
    """Read ``scan``'s file around the region, find its offset against ``reference`` (2, n)
    and return it aligned, with the offset in samples."""
    margin = int(round(OFFSET_SEARCH_SECONDS * sample_rate))
    extended = read_region(scan, start_s - margin / sample_rate, n_out + 2 * margin,
                           sample_rate)
    mono_ref = reference.mean(axis=0)
    a, b = loudest_window(mono_ref, sample_rate, OFFSET_WINDOW_SECONDS)
    offset, _ = detect_offset(mono_ref[a:b], extended.mean(axis=0)[a:b + 2 * margin], margin)
    return shift_with_margin(extended, margin, offset, n_out), offset
