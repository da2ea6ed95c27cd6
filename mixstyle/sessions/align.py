"""Time alignment of a session: loudest excerpt, region reads, offset of the mix vs the stems
and of each stem vs its part of the mix (``stem_offset``: a plugin's latency).

The offset is found by FFT cross-correlation with PHAT weighting (every frequency counts by its
phase only), which gives a sharp peak even when the mix is EQ'd, compressed or bass-heavy; it is
taken above ``ALIGN_LOW_HZ``, where the producer's high-passes and shelves hardly turn the phase.
The search covers +-``max_lag`` samples; the sign convention is
``target[n + offset] ~ reference[n]`` (a positive offset means the mix starts late).
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
ALIGN_LOW_HZ = 300.0           # offsets are measured above this (detect_offset)
STEM_OFFSET_SEARCH_SECONDS = 0.1   # a stem's latency against its part of the mix: +-100 ms,
STEM_WINDOW_SECONDS = 5.0      # measured on the stem's loudest 5 s (a PHAT of 5 s: 25 ms)
STEM_SHIFT_BELOW = 0.4         # ... is corrected when the correlation at 0 is under this share
MIN_PEAK = 8.0                 # ... of a peak this far over the correlation's median (a clear
                               # peak: the test beds' 851 stems 8.3-155, unrelated audio 3-5)
STEM_AGREE = 3                 # samples between the whole band's peak and the highs' (stem_offset)
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


def _phat(reference: np.ndarray, target: np.ndarray, max_lag: int,
          low_fraction: float = 0.0) -> np.ndarray:
    """The PHAT cross-correlation of ``reference[k]`` with ``target[max_lag + d + k]`` for d in
    [-max_lag, max_lag] (index ``max_lag + d``), from the frequencies above ``low_fraction``
    of the sample rate; all zeros if either is silent."""
    if max_lag < 0:
        raise ParameterError(f"max_lag = {max_lag} is out of range: allowed >= 0")
    length = reference.shape[-1]
    if target.shape[-1] != length + 2 * max_lag:
        raise ParameterError(f"target has {target.shape[-1]} samples: expected reference length "
                             f"+ 2*max_lag = {length + 2 * max_lag}")
    if length == 0:
        return np.zeros(2 * max_lag + 1)
    nfft = next_fast_len(length + 2 * max_lag + 1)
    ref = rfft(reference.astype(np.float64), nfft)
    tgt = rfft(target.astype(np.float64), nfft)
    cross = np.conj(ref) * tgt
    mag = np.abs(cross)
    top = float(mag.max())
    if top <= 0.0:
        return np.zeros(2 * max_lag + 1)
    weighted = cross / (mag + _PHAT_FLOOR * top)
    weighted[:int(math.ceil(low_fraction * nfft))] = 0.0
    return irfft(weighted, nfft)[: 2 * max_lag + 1]


def _peak(corr: np.ndarray) -> tuple[int, float]:
    """Index of the correlation's peak and its height over the median absolute correlation."""
    j = int(np.argmax(corr))
    if corr[j] <= 0.0:
        return j, 0.0
    return j, float(corr[j] / (float(np.median(np.abs(corr))) + 1e-30))


def _phat_above_lows(reference: np.ndarray, target: np.ndarray, max_lag: int,
                     sample_rate: float) -> np.ndarray:
    """``_phat`` above ``ALIGN_LOW_HZ``, or over every frequency where that gives no clear peak
    (under ``MIN_PEAK``: a session with nothing above the low end)."""
    corr = _phat(reference, target, max_lag, ALIGN_LOW_HZ / sample_rate)
    if _peak(corr)[1] >= MIN_PEAK:
        return corr
    return _phat(reference, target, max_lag)


def detect_offset(reference: np.ndarray, target: np.ndarray, max_lag: int,
                  sample_rate: float | None = None) -> tuple[int, float]:
    """Lag d in [-max_lag, max_lag] maximising the PHAT cross-correlation of
    ``reference[k]`` with ``target[max_lag + d + k]``.

    ``reference`` is mono (L,), ``target`` mono (L + 2*max_lag,) and starts ``max_lag`` samples
    before the reference. Returns ``(lag, peak_ratio)``: the peak height over the median absolute
    correlation (large = trustworthy; about 3..5 for unrelated signals). With ``sample_rate``
    the correlation is taken above ``ALIGN_LOW_HZ`` where that gives a clear peak: the low end
    is where the producer's high-pass filters and shelves turn the phase (a bass high-passed at
    60 Hz put a mix's peak 12 samples early), and timing lives in the rest.
    """
    corr = _phat(reference, target, max_lag) if sample_rate is None else \
        _phat_above_lows(reference, target, max_lag, sample_rate)
    j, ratio = _peak(corr)
    return (j - max_lag, ratio) if ratio > 0.0 else (0, 0.0)


def stem_offset(mix: np.ndarray, stem: np.ndarray, margin: int,
                sample_rate: float) -> tuple[int, bool]:
    """How late (samples, within +-``margin``) the ``stem`` (2, n) is against its own part of
    the (aligned) ``mix`` (2, n), and whether that part is the stem turned over (polarity):
    ``(0, False)`` unless the evidence is clear.

    A stem whose plugin added latency the DAW did not compensate sits a few samples to a few
    ms off its part of the mix, and a producer turns a microphone's polarity over (a snare's
    bottom mic, a bass DI against its amp); the fit, a least-squares match of waveforms, then
    bends that stem's EQ and level, and the other stems' compressors, to explain it (one
    guitar 64 samples late or turned over took the song's fit from 0.56 to 3.3 dB band error,
    docs/RESULTS.md). The PHAT correlation of the stem with the mix (on the stem's loudest
    ``STEM_WINDOW_SECONDS``) has its largest magnitude at the stem's lag, negative if turned
    over. An aligned stem's peak sits at 0 or a few samples off it (the producer's EQ delays
    the low end), with the correlation at 0 still >= 0.58 of the peak on every stem of the
    test beds (851 stems; none of the 112 songs' stems moves or turns over); so the stem
    moves only when the correlation where it is falls under
    ``STEM_SHIFT_BELOW`` of the peak, and the peak stands ``MIN_PEAK`` over the correlation's
    spread (a stem that hardly plays in the mix has no clear peak). The lag is then taken
    above ``ALIGN_LOW_HZ`` (sharper, and clear of the EQ's low-end phase) if that peak is clear
    and within ``STEM_AGREE`` samples of the whole band's; if it is clear and elsewhere, the
    two disagree and the stem stays (a kick's few highs gave a peak 92 ms off)."""
    mono = stem.mean(axis=0)
    a, b = loudest_window(mono, sample_rate, STEM_WINDOW_SECONDS)
    # the stem's window against the mix around it (the mix's own audio beyond the window, so
    # the stem is read once; zeros past the song's ends): _phat's index margin - d is lag d,
    # reversed margin + d
    n, lo, hi = mix.shape[-1], a - margin, b + margin
    target = np.zeros(hi - lo)
    target[max(0, -lo):hi - lo - max(0, hi - n)] = mix[:, max(lo, 0):min(hi, n)].mean(axis=0)
    reference = mono[a:b]
    corr = _phat(reference, target, margin)[::-1]
    j, ratio = _peak(np.abs(corr))
    if ratio < MIN_PEAK:
        return 0, False
    sign = 1.0 if corr[j] > 0.0 else -1.0
    if abs(corr[margin]) >= STEM_SHIFT_BELOW * abs(corr[j]):
        return 0, bool(sign < 0.0 and corr[margin] < 0.0)
    high, high_ratio = _peak(sign * _phat(reference, target, margin,
                                          ALIGN_LOW_HZ / sample_rate)[::-1])
    if high_ratio < MIN_PEAK:     # nothing above the low end: the whole band's peak
        return j - margin, sign < 0.0
    return (high - margin, sign < 0.0) if abs(high - j) <= STEM_AGREE else (0, False)


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
    offset, _ = detect_offset(mono_ref[a:b], extended.mean(axis=0)[a:b + 2 * margin], margin,
                              sample_rate)
    return shift_with_margin(extended, margin, offset, n_out), offset
