"""EQ curves of a strip or of the master bus, from a parameter setting (for fits, reports,
exporters and tests). The band layout is the strip's own (``dsp.strip.SECTIONS``); the master
bus has the same shelves and peaks without the high- and low-pass."""

from __future__ import annotations

from typing import Mapping

import numpy as np

from dsp.biquad import design, response_db
from dsp.params import MASTER, TRACK, TRACK_NAMES, validate
from dsp.strip import SECTIONS


def eq_sections(section: str, params: Mapping[str, float], sample_rate: float) -> np.ndarray:
    """(S, 5) a0-normalised coefficients of the section's EQ in signal order."""
    values = validate(section, params, f"{section} EQ")
    rows = SECTIONS if section == TRACK else SECTIONS[1:-1]
    out = []
    for kind, fi, gi, qi in rows:
        freq = values[TRACK_NAMES[fi]]
        gain = values[TRACK_NAMES[gi]] if gi >= 0 else 0.0
        q = values[TRACK_NAMES[qi]] if qi >= 0 else 0.7071
        out.append(design(int(kind), float(freq), float(gain), float(q), float(sample_rate)))
    return np.array(out, dtype=np.float64)


def eq_curve_db(section: str, params: Mapping[str, float], freqs_hz: np.ndarray,
                sample_rate: float) -> np.ndarray:
    """Magnitude (dB) of the whole EQ at ``freqs_hz`` (gains and compressor not included)."""
    return response_db(eq_sections(section, params, sample_rate), freqs_hz, sample_rate)


def log_freqs(n: int = 200, lo_hz: float = 20.0, hi_hz: float = 20000.0) -> np.ndarray:
    return np.geomspace(lo_hz, hi_hz, n)


__all__ = ["eq_sections", "eq_curve_db", "log_freqs", "MASTER", "TRACK"]
