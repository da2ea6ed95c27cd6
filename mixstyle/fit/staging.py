"""The console's gain staging: every stem is trimmed at its strip input to ``STAGE_LUFS``, so
compressor thresholds and faders mean the same thing in every song. The fit, the network's
predictions and the automix baseline all stage this way.
"""

from __future__ import annotations

import math

import numpy as np

SILENCE_LUFS = -70.0
STAGE_LUFS = -23.0  # every stem is trimmed to this loudness at the strip input (gain staging)


def stage_gain_db(stem_lufs: float) -> float:
    """Input trim that brings a stem to STAGE_LUFS (the console's gain staging), clipped."""
    if not math.isfinite(stem_lufs) or stem_lufs <= SILENCE_LUFS:
        return 0.0
    return float(np.clip(STAGE_LUFS - stem_lufs, -24.0, 24.0))
