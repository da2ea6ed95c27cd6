"""Block-rate model of the brick-wall limiter (``dsp.limiter``): the loudness of the limited
signal for any drive, from one pass over the limiter's input.

Mastering searches the drive (gain into a limiter at 0 dBFS) whose output's true-peak-to-
loudness ratio fits; every real try is a full limiter pass plus measurements. The model lets
the first try land: one pass measures, per block of ``block`` samples (a divisor of the 100 ms
loudness hop, about 1 ms), the K-weighted energy (BS.1770, channel-weighted) and the sample peak
of the input. For a drive the model then runs the limiter's gain law at block rate -- window
peak over the lookahead, instant attack, exponential release, box smoothing over the lookahead
-- weights each block's energy by its gain squared and gates the result as ``dsp.loudness``
does. Measured against the real limiter: within 0.01 LU with the default 5 ms lookahead even
where the limiter takes 6 LU, 0.09 LU with a 1 ms lookahead (about one block); on the demo
mixes within 0.02 LU up to 8 dB of drive (tests/dsp/test_limiter_model.py). Without limiting
it is exact.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from dsp.loudness import (_kweight_pair, channel_weights, integrated_from_subblocks,
                          k_weighting_coeffs)
from dsp.validate import check_audio, check_sample_rate

MAX_BLOCK = 48   # samples per model block at most (the largest divisor of the hop up to this)


def model_block(hop: int) -> int:
    """Samples per block: the largest divisor of ``hop`` that is at most MAX_BLOCK."""
    return max(b for b in range(1, MAX_BLOCK + 1) if hop % b == 0)


@njit(cache=True)
def _measure_blocks(x, coefs, weights, block, energies):
    """K-weighted channel-weighted energy of each complete block of ``x``."""
    nch = x.shape[0]
    zf = np.zeros((nch, 6))
    acc = np.zeros(nch)
    for b in range(energies.shape[0]):
        i0 = b * block
        for ca in range(0, nch, 2):
            _kweight_pair(x, ca, min(ca + 1, nch - 1), i0, i0 + block, coefs, zf, acc)
        e = 0.0
        for c in range(nch):
            e += weights[c] * acc[c]
            acc[c] = 0.0
        energies[b] = e


@njit(cache=True, fastmath={"nnan", "ninf"})
def _block_peaks(x, block, nwin, peaks, window_peaks):
    """Sample peak of each complete block (the audio is finite: the max vectorises), and the
    largest over each block and the ``nwin - 1`` after it (the limiter's lookahead)."""
    nb = peaks.shape[0]
    for b in range(nb):
        p = np.float32(0.0)
        for c in range(x.shape[0]):
            for i in range(b * block, (b + 1) * block):
                p = max(p, abs(x[c, i]))
        peaks[b] = p
    for b in range(nb):
        p = 0.0
        for k in range(b, min(nb, b + nwin)):
            p = max(p, peaks[k])
        window_peaks[b] = p


@njit(cache=True)
def _limited_subblocks(energies, window_peaks, drive, alpha, nbox, per_sub, out):
    """Sub-block energies of the input * ``drive`` (linear) through the block-rate limiter at a
    0 dBFS ceiling: need = min(1, 1 / (drive * window peak)), instant attack, release ``alpha``
    per block, gain = mean of the last ``nbox`` envelope values."""
    out[:] = 0.0
    env = 1.0
    box = np.ones(nbox)
    total = float(nbox)
    pos = 0
    d2 = drive * drive
    for b in range(min(energies.shape[0], out.shape[0] * per_sub)):
        pk = drive * window_peaks[b]
        need = 1.0 if pk <= 1.0 else 1.0 / pk
        env = need if need < env else need + alpha * (env - need)
        total += env - box[pos]
        box[pos] = env
        pos = pos + 1 if pos + 1 < nbox else 0
        g = min(total / nbox, 1.0)
        out[b // per_sub] += energies[b] * d2 * g * g


class LimiterModel:
    """``LimiterModel(audio, sample_rate, release_ms, lookahead_ms)``; ``lufs(drive_db)`` is the
    predicted integrated loudness of ``Limiter(ceiling_db=0)`` fed ``audio * 10**(drive/20)``.

    ``peak_db`` is the input's sample peak (the limiter acts from ``drive_db > -peak_db``),
    ``lufs_unlimited`` its integrated loudness (exact).
    """

    def __init__(self, audio: np.ndarray, sample_rate: float, release_ms: float,
                 lookahead_ms: float) -> None:
        sr = check_sample_rate(sample_rate)
        x = check_audio(audio, "audio")
        if x.shape[0] > 5:
            raise ValueError(f"audio has {x.shape[0]} channels; 1 .. 5 are modelled")
        self.hop = int(round(0.1 * sr))
        self.block = model_block(self.hop)
        nb = x.shape[1] // self.block
        self._energies = np.zeros(nb)
        _measure_blocks(x, k_weighting_coeffs(sr), channel_weights(x.shape[0]), self.block,
                        self._energies)
        lag = max(1, int(round(lookahead_ms * 1e-3 * sr)))   # as dsp.limiter.Limiter
        peaks = np.zeros(nb)
        self._window_peaks = np.zeros(nb)
        _block_peaks(x, self.block, -(-lag // self.block) + 1, peaks, self._window_peaks)
        self._nbox = max(1, int(round((lag + 1) / self.block)))
        self._alpha = math.exp(-1.0 / (release_ms * 1e-3 * sr)) ** self.block
        self._per_sub = self.hop // self.block
        self._sub = np.zeros(x.shape[1] // self.hop)
        top = float(peaks.max()) if nb else 0.0
        self.peak_db = 20.0 * math.log10(top) if top > 0.0 else -math.inf
        self.lufs_unlimited = integrated_from_subblocks(
            self._energies[: self._sub.shape[0] * self._per_sub].reshape(-1, self._per_sub)
            .sum(axis=1), self.hop)

    def lufs(self, drive_db: float) -> float:
        """Predicted integrated loudness (LUFS) of the limited output at ``drive_db``."""
        _limited_subblocks(self._energies, self._window_peaks, 10.0 ** (drive_db / 20.0),
                           self._alpha, self._nbox, self._per_sub, self._sub)
        return integrated_from_subblocks(self._sub, self.hop)
