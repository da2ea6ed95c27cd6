"""The strip compressor as the network learns it: gain reduction at the stem's loud parts.

A fitted compressor's threshold in dBFS is a noisy target: the same amount of compression sits at
a different threshold on a peakier or a denser stem, and with another ratio. What a producer
sets by ear, and what decides how dense (and, behind a peak normaliser, how loud) the mix comes
out, is how much the compressor takes off the stem's loud parts. So the network predicts
``comp_gain_reduction_db``: the static gain reduction at the staged stem's *loud level* (the 95th
percentile of its 50 ms peak levels, ``loud_level_db``), ``(loud - threshold) (1 - 1/ratio)``.
Training targets come from the fitted setting and the stem; the prediction turns it back into
a threshold on the new stem with the predicted ratio (``threshold_db``), the console and every
export keep the table's threshold.

Where the ratio is near 1 the threshold does not matter to the sound; it is placed no lower
than ``FLOOR_DB`` under the loud level (a compressor working on everything above the stem's
noise). A compressor that is off (ratio 1, or a threshold above the loud level) is trained
toward ``OFF_DB``, under 0 dB, and any prediction of 0 dB or less is off (the table's 0 dBFS
threshold): a producer who never compresses gets no compressor, not the 1 dB of squeeze a
network output near the end of its range would otherwise mean (learn's held-out choice of the
plain sum's loudness for such a producer caught it). Measured (docs/RESULTS.md, "The compressor learned as gain reduction"): in 4-fold
cross-validation the band error fell on cleo (1.229 -> 1.186 dB) and dex (1.802 -> 1.732 dB), and
cleo's loudness error behind her peak normaliser from 0.78 to 0.69 LU.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch

from dsp.params import TRACK, ParamSpec, spec

GAIN_REDUCTION = ParamSpec(TRACK, "comp_gain_reduction_db", "dB", -4.0, 40.0, "lin", 0.0, 0.0,
                           "model", "comp_gain_reduction_db",
                           "the strip compressor's static gain reduction at the staged stem's "
                           "loud level (95th percentile of its 50 ms peaks); 0 or less: off")
# the target of a compressor that does nothing at the loud level: below 0, so that a network
# output near it (a sigmoid never reaches its end) still means off, not a little compression
OFF_DB = GAIN_REDUCTION.min
FLOOR_DB = 40.0          # the lowest threshold: this far under the stem's loud level
WINDOW_S = 0.05          # the peak windows
RANGE_DB = 40.0          # windows this far under the loudest count (the rest is silence)
PERCENTILE = 95.0
SILENT_DB = -90.0        # a stem whose loud level is under this is silent: no loud level
_THRESHOLD = spec(TRACK, "comp_threshold_db")
_RATIO = spec(TRACK, "comp_ratio")


def loud_level_db(audio: np.ndarray, sample_rate: float) -> float | None:
    """The loud level (dBFS) of a stem ``(channels, n)`` as it is: the 95th percentile of its
    50 ms peak levels, over the windows within 40 dB of the loudest. None when silent or shorter
    than one window."""
    x = np.asarray(audio)
    x = x[None] if x.ndim == 1 else x
    hop = max(1, int(round(WINDOW_S * float(sample_rate))))
    k = x.shape[-1] // hop
    if k == 0:
        return None
    peaks = np.abs(x[:, :k * hop]).reshape(x.shape[0], k, hop).max(axis=(0, 2))
    with np.errstate(divide="ignore"):
        levels = 20.0 * np.log10(peaks.astype(np.float64))
    top = float(levels.max())
    if not math.isfinite(top) or top < SILENT_DB:
        return None
    return float(np.percentile(levels[levels > top - RANGE_DB], PERCENTILE))


def gain_reduction_db(loud_db: float, threshold_db: float, ratio: float) -> float:
    """The static gain reduction (dB, >= 0) at ``loud_db`` of a compressor set to
    ``threshold_db`` and ``ratio`` (a ratio of 1 or less: none)."""
    if ratio <= 1.0:
        return 0.0
    return max(loud_db - threshold_db, 0.0) * (1.0 - 1.0 / ratio)


def target_db(loud_db: float, threshold_db: float, ratio: float) -> float:
    """The network's target for a compressor: its gain reduction at ``loud_db``, or ``OFF_DB``
    when it takes nothing off there."""
    gr = gain_reduction_db(loud_db, threshold_db, ratio)
    return min(gr, GAIN_REDUCTION.max) if gr > 0.0 else OFF_DB


def threshold_db(loud_db: float | None, gain_reduction: float, ratio: float) -> float:
    """The threshold (dBFS, within the table's range) at which a compressor of ``ratio`` takes
    ``gain_reduction`` dB off ``loud_db``; no lower than ``FLOOR_DB`` under it. A silent stem
    (``loud_db`` None) or a gain reduction of 0 dB or less gets the table's default (off)."""
    if loud_db is None or gain_reduction <= 0.0:
        return _THRESHOLD.default
    ratio = max(float(ratio), 1.0 + 1e-4)
    thr = max(loud_db - gain_reduction / (1.0 - 1.0 / ratio), loud_db - FLOOR_DB)
    return float(np.clip(thr, _THRESHOLD.min, _THRESHOLD.max))


def threshold_torch(loud_db: torch.Tensor, gain_reduction: torch.Tensor, ratio: torch.Tensor
                    ) -> torch.Tensor:
    """``threshold_db`` on tensors (differentiable where the compressor is on); ``loud_db`` NaN
    where the stem is silent."""
    ratio = ratio.clamp(1.0 + 1e-4, _RATIO.max)
    loud = torch.nan_to_num(loud_db, nan=_THRESHOLD.default + FLOOR_DB)
    thr = torch.maximum(loud - gain_reduction / (1.0 - 1.0 / ratio), loud - FLOOR_DB)
    off = torch.isnan(loud_db) | (gain_reduction <= 0.0)
    thr = torch.where(off, torch.full_like(thr, _THRESHOLD.default), thr)
    return thr.clamp(_THRESHOLD.min, _THRESHOLD.max)


def staged_louds(louds: Sequence[float | None], gains_db: Sequence[float]) -> list[float | None]:
    """The loud levels of stems trimmed by their input gains (dB)."""
    return [None if v is None else float(v) + float(g) for v, g in zip(louds, gains_db)]
