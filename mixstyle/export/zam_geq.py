"""ZamGEQ31 4.1 (Debian zam-plugins) as a filter model: 29 fixed third-octave bands whose only
free parameters are their gains, plus a ``master`` gain.

Read from ZamGEQ31Plugin.cpp of zam-plugins 4.1 (tests measure the real plugin against it):
- Band ``i`` spans ``BAND_EDGES_HZ[i]`` (the ``omegaL``/``omegaU`` tables, 28.2 .. 22400 Hz);
  its gain ``band<i+1>`` is -12 .. +12 dB, ``master`` -30 .. +30 dB. A 0 dB band is bypassed.
  A band whose upper edge lies above 0.95 Nyquist is switched off (band 29, 17.8 .. 22.4 kHz,
  at 44.1 kHz).
- Each band is Holters and Zoelzer's higher-order graphic-EQ band (DAFx 2006): a Butterworth
  low-shelf prototype of order ``2 m`` (``m = 2 * stack``, stack 8 .. 20 per band, the top bands
  the steepest) moved to the band by the allpass ``s(z) = z^-1 (a - z^-1) / (1 - a z^-1)``,
  ``a = cos(omega_M)`` at the geometric-mean (prewarped) centre; per fourth-order section
  ``j = 1 .. m/2`` with ``c = cos((1/2 - (2j - 1) / (2m)) pi)``,
  ``K = tan(omega_B / 2) / G^(1/(2m))``, ``V = G^(1/m) - 1`` (``G`` the linear gain):

      H_j = 1 + K (2 c V (1 - s^2) + V (2 + V) K (1 + s)^2)
                / ((1 + 2 K c + K^2) + 2 (K^2 - 1) s + (1 - 2 K c + K^2) s^2)

  (this is the plugin's lattice of two allpasses per section written as one transfer function).
  The band is ``G`` inside its edges, half its dB gain at them and 0 dB outside, with edges
  steep enough that neighbouring bands add up to a staircase.
- The plugin computes the band frequencies, ``omega_M``, ``omega_B``, ``G`` and the section
  angles in float32 and runs the filters in double precision; the model does the same.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Mapping

import numpy as np
from numba import njit

GEQ_BANDS = 29
GEQ_GAIN_MAX_DB = 12.0
GEQ_MASTER_MAX_DB = 30.0
_LOWER = (28.2, 35.5, 44.7, 56.2, 70.8, 89.1, 112., 141., 178., 224., 282., 355., 447., 562.,
          708., 891., 1120., 1410., 1780., 2240., 2820., 3550., 4470., 5620., 7080., 8910.,
          11200., 14100., 17800.)
BAND_EDGES_HZ = tuple(zip(_LOWER, _LOWER[1:] + (22400.,)))
STACK = (8, 8, 8, 8, 8, 8, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 10, 11, 12, 15,
         20, 20)
GEQ_ORDER = ("master",) + tuple(f"band{i + 1}" for i in range(GEQ_BANDS))
GEQ_FLAT = {key: 0.0 for key in GEQ_ORDER}


def _f32(x: float) -> float:
    return float(np.float32(x))


def band_active(band: int, sample_rate_hz: float) -> bool:
    """Whether band ``band`` (0-based) runs at all at this rate (upper edge <= 0.95 Nyquist)."""
    w = _f32(2.0 * math.pi / _f32(sample_rate_hz))
    return _f32(w * BAND_EDGES_HZ[band][1]) <= _f32(0.95 * math.pi)


@lru_cache(maxsize=64)
def _band_shape(band: int, sample_rate_hz: float, freqs: bytes) -> tuple[np.ndarray, ...]:
    """What of band ``band`` does not depend on its gain, at the float64 frequencies packed in
    ``freqs``: the allpass ``s`` and its powers, ``omega_B`` and the sections' cosines."""
    f = np.frombuffer(freqs, dtype=np.float64)
    w = _f32(2.0 * math.pi / _f32(sample_rate_hz))
    lower, upper = BAND_EDGES_HZ[band]
    om_u, om_l = _f32(w * upper), _f32(w * lower)
    om_b = _f32(om_u - om_l)
    om_m = _f32(2.0 * math.atan(math.sqrt(math.tan(om_u / 2.0) * math.tan(om_l / 2.0))))
    a = math.cos(om_m)
    zi = np.exp(-1j * 2.0 * np.pi * f / sample_rate_hz)  # z^-1
    s = zi * (a - zi) / (1.0 - a * zi)
    m = 2 * STACK[band]
    c = np.array([math.cos(_f32((0.5 - (2.0 * j - 1.0) / (2.0 * m)) * math.pi))
                  for j in range(1, m // 2 + 1)])
    return s, s * s, (1.0 + s) ** 2, np.array(om_b), c


@njit(cache=True)
def _band_kernel(k: float, v: float, s: np.ndarray, s2: np.ndarray, p1: np.ndarray,
                 c: np.ndarray) -> np.ndarray:
    """20 log10 |prod_j H_j| per frequency (the module's formula; sections in order)."""
    out = np.empty(s.size)
    for i in range(s.size):
        h = 1.0 + 0.0j
        for j in range(c.size):
            den = (1.0 + 2.0 * k * c[j] + k * k) + 2.0 * (k * k - 1.0) * s[i] \
                + (1.0 - 2.0 * k * c[j] + k * k) * s2[i]
            h = h * (1.0 + k * (2.0 * c[j] * v * (1.0 - s2[i]) + v * (2.0 + v) * k * p1[i]) / den)
        out[i] = 20.0 * math.log10(abs(h))
    return out


def band_db(band: int, gain_db: float, freqs_hz: np.ndarray, sample_rate_hz: float) -> np.ndarray:
    """Magnitude (dB) of one ZamGEQ31 band (0-based) set to ``gain_db`` at ``freqs_hz``."""
    freqs = np.ascontiguousarray(freqs_hz, dtype=np.float64)
    if gain_db == 0.0 or not band_active(band, sample_rate_hz):
        return np.zeros_like(freqs)
    s, s2, p1, om_b, c = _band_shape(band, float(sample_rate_hz), freqs.tobytes())
    g = _f32(10.0 ** (0.05 * _f32(gain_db)))
    m = 2 * STACK[band]
    k = g ** (-1.0 / (2.0 * m)) * math.tan(float(om_b) / 2.0)
    v = g ** (1.0 / m) - 1.0
    return _band_kernel(k, v, s, s2, p1, c)


def zam_geq31_curve_db(values: Mapping[str, float], freqs_hz: np.ndarray,
                       sample_rate_hz: float) -> np.ndarray:
    """Modelled magnitude (dB) of one ZamGEQ31 4.1 with these parameter values."""
    freqs = np.asarray(freqs_hz, dtype=np.float64)
    out = np.full_like(freqs, float(values.get("master", 0.0)))
    for band in range(GEQ_BANDS):
        out += band_db(band, float(values.get(f"band{band + 1}", 0.0)), freqs, sample_rate_hz)
    return out
