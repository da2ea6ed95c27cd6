"""Time alignment of a session: loudest excerpt, offset of the mix against the stems.

The offset is found by FFT cross-correlation with PHAT weighting (every frequency counts by its
phase only), which gives a sharp peak even when the mix is EQ'd, compressed or bass-heavy. The
search covers +-``max_lag`` samples; the sign convention is ``target[n + offset] ~ reference[n]``
(a positive offset means the mix starts late).
"""

from __future__ import annotations

import numpy as np
from scipy.fft import irfft, next_fast_len, rfft

from dsp.errors import ParameterError

OFFSET_SEARCH_SECONDS = 1.0
OFFSET_WINDOW_SECONDS = 20.0   # at most this much audio goes into the cross-correlation
FIT_WINDOW_SECONDS = 10.0      # and into the mix-contains-stems test
_PHAT_FLOOR = 1e-3             # weight floor (relative to the strongest bin) against noise


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
