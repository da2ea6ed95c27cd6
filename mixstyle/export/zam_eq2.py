"""ZamEQ2 4.1 (Debian zam-plugins) as a filter model, and a simulation of its arithmetic.

The model (read from ZamEQ2Plugin.cpp of zam-plugins 4.1; tests measure the real plugin against
it to 0.01 dB, also 90 dB down): per instance a low shelf, a high shelf and two peaks, then a
``master`` gain.
- Shelves: RBJ cookbook shelves with shelf slope S = 0.707 (ours: S = 1), corner ``fl``/``fh``.
- Peaks: Orfanidis' peaking EQ (reference gain 1, band-edge gain = half the dB gain, like RBJ's
  definition of Q) whose gain at Nyquist follows the analogue prototype, where a bilinear RBJ
  peak must come back to 0 dB. The ``bw`` knob sets the edge distance ``(f/fs) / qq`` radians with
  ``qq = 2**(1/bw) / (2**bw - 1)``.
- Frequencies 20 .. 14000 Hz, gains -50 .. +20 dB, ``bw`` 0.1 .. 6, ``master`` +-12 dB.

The simulation (``zam_eq2_impulse_response``) runs a chain of instances sample by sample the
way the plugin's ``run()`` does: parameters in float32 (the preset's text is parsed into
floats), coefficients and filter state in double precision, except the second peak's output,
which the plugin writes to its float32 output buffer and feeds back from there (``y1a =
outputs[0][i]``), and the float32 buffers between instances. Where filters of a chain cancel
each other, that rounding shows: the simulation is what states it (measured against the real
plugin: within 0.001 dB where the double-precision model is 0.004 dB off).
"""

from __future__ import annotations

import math
from typing import Mapping, Sequence

import numpy as np
from numba import njit

ZAM_FREQ_MIN_HZ, ZAM_FREQ_MAX_HZ = 20.0, 14000.0
ZAM_BW_MIN, ZAM_BW_MAX = 0.1, 6.0
ZAM_GAIN_MIN_DB, ZAM_GAIN_MAX_DB = -50.0, 20.0
ZAM_MASTER_MAX_DB = 12.0
ZAM_SHELF_SLOPE = float(np.float32(0.707))  # the plugin passes 0.707f
EQ_FLAT = {"boost1": 0.0, "bw1": 1.0, "f1": 500.0, "boost2": 0.0, "bw2": 1.0, "f2": 3000.0,
           "boostl": 0.0, "fl": 250.0, "boosth": 0.0, "fh": 8000.0, "master": 0.0, "peaks": 0.0}
# instance key -> (filter kind, frequency key, gain key, bandwidth key), in the plugin's order
FILTERS = {"l": ("low", "fl", "boostl", None), "h": ("high", "fh", "boosth", None),
           "1": ("peak", "f1", "boost1", "bw1"), "2": ("peak", "f2", "boost2", "bw2")}
RESPONSE_SECONDS = 2.7  # impulse responses at least this long (a Q 8 band at 20 Hz rings 1 s)
ZERO_PAD = 8            # and their spectra this much finer than their length gives


@njit(cache=True)
def zam_qq(bw: float) -> float:
    """ZamEQ2's internal Q of its 'Bandwidth' knob: 2^(1/bw) / (2^bw - 1)."""
    return 2.0 ** (1.0 / bw) / (2.0 ** bw - 1.0)


def zam_bandwidth(freq_hz: float, q: float, sample_rate_hz: float) -> float:
    """ZamEQ2 'Bandwidth' giving the half-gain edges of our RBJ peak (freq_hz, q): the RBJ
    edges are the analogue ones, (+-1/Q + sqrt(1/Q^2 + 4)) / 2, prewarped. Clamped to 0.1 .. 6."""
    k = math.tan(math.pi * freq_hz / sample_rate_hz)
    upper = (1.0 / q + math.sqrt(1.0 / q ** 2 + 4.0)) / 2.0
    width_rad = 2.0 * math.atan(k * upper) - 2.0 * math.atan(k / upper)
    target = (freq_hz / sample_rate_hz) / width_rad
    lo, hi = ZAM_BW_MIN, ZAM_BW_MAX  # zam_qq falls with bw
    if target >= zam_qq(lo):
        return lo
    if target <= zam_qq(hi):
        return hi
    for _ in range(80):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if zam_qq(mid) > target else (lo, mid)
    return 0.5 * (lo + hi)


@njit(cache=True)
def _shelf_ba(high: bool, f: float, g: float, sr: float) -> tuple[tuple[float, ...], ...]:
    """RBJ shelf with ZamEQ2's slope S = 0.707 (a0 not normalised)."""
    a = 10.0 ** (g / 40.0)
    w = 2.0 * math.pi * f / sr
    c, sg = math.cos(w), (1.0 if high else -1.0)
    k = 2.0 * math.sqrt(a) * math.sin(w) / 2.0 * math.sqrt(
        (a + 1.0 / a) * (1.0 / ZAM_SHELF_SLOPE - 1.0) + 2.0)
    m = (a - 1.0) * c
    b = (a * (a + 1.0 + sg * m + k), -2.0 * sg * a * (a - 1.0 + sg * (a + 1.0) * c),
         a * (a + 1.0 + sg * m - k))
    den = (a + 1.0 - sg * m + k, 2.0 * sg * (a - 1.0 - sg * (a + 1.0) * c), a + 1.0 - sg * m - k)
    return b, den


@njit(cache=True)
def _peak_ba(f: float, g: float, bw: float, sr: float) -> tuple[tuple[float, ...], ...]:
    """Orfanidis peaking EQ (reference gain 1, band edges at the half-dB gain) as in ZamEQ2."""
    gl = 10.0 ** (g / 20.0)
    gb2, g2 = gl, gl * gl  # bandwidth gain^2 = G (half the dB gain)
    w0, dw = 2.0 * math.pi * f / sr, (f / sr) / zam_qq(bw)
    ff, g00, f00 = abs(g2 - gb2), abs(g2 - 1.0), abs(gb2 - 1.0)
    pi2 = (w0 * w0 - math.pi ** 2) ** 2
    g1 = math.sqrt((pi2 + g2 * f00 * math.pi ** 2 * dw * dw / ff)
                   / (pi2 + f00 * math.pi ** 2 * dw * dw / ff))
    g01, g11 = abs(g2 - g1), abs(g2 - g1 * g1)
    f01, f11 = abs(gb2 - g1), abs(gb2 - g1 * g1)
    w2 = math.sqrt(g11 / g00) * math.tan(w0 / 2.0) ** 2
    dww = (1.0 + math.sqrt(f00 / f11) * w2) * math.tan(dw / 2.0)
    cc = f11 * dww * dww - 2.0 * w2 * (f01 - math.sqrt(f00 * f11))
    dd = 2.0 * w2 * (g01 - math.sqrt(g00 * g11))
    aa, bb = math.sqrt((cc + dd) / ff), math.sqrt((g2 * cc + gb2 * dd) / ff)
    return (g1 + w2 + bb, -2.0 * (g1 - w2), g1 - bb + w2), (1.0 + w2 + aa, -2.0 * (1.0 - w2),
                                                            1.0 + w2 - aa)


LOW, HIGH, PEAK = 0, 1, 2  # filter kinds in ``Grid.curves``
KINDS = {"low": LOW, "high": HIGH, "peak": PEAK}


@njit(cache=True)
def _curves_kernel(kinds: np.ndarray, freqs: np.ndarray, gains: np.ndarray, bws: np.ndarray,
                   sr: float, phi: np.ndarray) -> np.ndarray:
    """Magnitudes (dB, one row per filter) of ZamEQ2 filters; phi = sin^2(w/2). With b(z) =
    c0 + c1 z^-1 + c2 z^-2: |b|^2 = (c0 + c1 + c2)^2 - 4 (c0 c1 + 4 c0 c2 + c1 c2) phi
    + 16 c0 c2 phi^2, which keeps its precision at low frequencies (the cos(w) form cancels
    there, and a fit's finite differences would see the noise). A 0 dB filter is exactly
    flat (the plugin's coefficients: 1, 0, 0). Plain loops without fast-math: the same bits
    for a row alone or among others, on every CPU target."""
    out = np.zeros((kinds.size, phi.size))
    for r in range(kinds.size):
        if gains[r] == 0.0:
            continue
        if kinds[r] == PEAK:
            b, a = _peak_ba(freqs[r], gains[r], bws[r], sr)
        else:
            b, a = _shelf_ba(kinds[r] == HIGH, freqs[r], gains[r], sr)
        n0 = (b[0] + b[1] + b[2]) ** 2
        n1 = 4.0 * (b[0] * b[1] + 4.0 * b[0] * b[2] + b[1] * b[2])
        n2 = 16.0 * b[0] * b[2]
        d0 = (a[0] + a[1] + a[2]) ** 2
        d1 = 4.0 * (a[0] * a[1] + 4.0 * a[0] * a[2] + a[1] * a[2])
        d2 = 16.0 * a[0] * a[2]
        for k in range(phi.size):
            p = phi[k]
            out[r, k] = 10.0 * math.log10((n0 - n1 * p + n2 * p * p) / (d0 - d1 * p + d2 * p * p))
    return out


class Grid:
    """sin^2(w/2) of the frequencies, computed once per fit."""

    def __init__(self, freqs_hz: np.ndarray, sample_rate_hz: float) -> None:
        w = 2.0 * np.pi * np.asarray(freqs_hz, dtype=np.float64) / sample_rate_hz
        self.freqs, self.sr, self.phi = freqs_hz, sample_rate_hz, np.sin(w / 2.0) ** 2

    def filter_db(self, kind: str, f: float, g: float, bw: float = 1.0) -> np.ndarray:
        return self.filters_db([(kind, f, g, bw)])[0]

    def filters_db(self, filters: Sequence[tuple[str, float, float, float]]) -> np.ndarray:
        """``filter_db`` of many filters (kind, frequency, gain, bw): one row each."""
        return self.curves(np.array([KINDS[k] for k, _, _, _ in filters], dtype=np.int64),
                           *(np.array([v[c] for v in filters], dtype=np.float64)
                             for c in (1, 2, 3)))

    def curves(self, kinds: np.ndarray, freqs: np.ndarray, gains: np.ndarray,
               bws: np.ndarray) -> np.ndarray:
        """``filters_db`` from arrays: kinds (``KINDS``' codes), frequencies, gains, bws."""
        return _curves_kernel(kinds, freqs, gains, bws, float(self.sr), self.phi)


def _instance_db(grid: Grid, v: Mapping[str, float]) -> np.ndarray:
    out = np.full_like(grid.phi, float(v["master"]))
    for kind, fk, gk, bk in FILTERS.values():
        out += grid.filter_db(kind, v[fk], v[gk], v[bk] if bk else 1.0)
    return out


def zam_eq2_curve_db(instances: Sequence[Mapping[str, float]], freqs_hz: np.ndarray,
                     sample_rate_hz: float) -> np.ndarray:
    """Modelled magnitude (dB) of chained ZamEQ2 4.1 instances with these parameter values."""
    grid = Grid(np.asarray(freqs_hz, dtype=np.float64), sample_rate_hz)
    return sum((_instance_db(grid, v) for v in instances), np.zeros_like(grid.phi))


# ----------------------------------------------------------------------------- simulation

def feedback_noise_gain(freq_hz: float, gain_db: float, bw: float, sample_rate_hz: float) -> float:
    """Power gain of 1 / A(z) of a ZamEQ2 peak: how much the plugin's float32 rounding of a
    second peak's output, fed back, is amplified (0 for a 0 dB peak; 1e4 and more for a
    peak low down at 96 kHz)."""
    if gain_db == 0.0:
        return 0.0
    _, a = _peak_ba(freq_hz, gain_db, bw, sample_rate_hz)
    a1, a2 = a[1] / a[0], a[2] / a[0]
    return (1.0 + a2) / ((1.0 - a2) * ((1.0 + a2) ** 2 - a1 * a1))


def quiet_peak_slots(instances: Sequence[Mapping[str, float]],
                     sample_rate_hz: float) -> list[dict[str, float]]:
    """The same chain (the same curve: peaks commute) with its peaks moved between slots so
    that those whose feedback amplifies the rounding most sit in the 'peak 1' slots, whose
    state the plugin keeps in double precision, and the quietest in 'peak 2' (ties: in the
    order they come)."""
    out = [dict(v) for v in instances]
    slots = [(i, s) for s in "12" for i in range(len(out))]  # every peak 1, then every peak 2
    peaks = [(instances[i][f"f{s}"], instances[i][f"boost{s}"], instances[i][f"bw{s}"])
             for i, s in slots]
    noise = [feedback_noise_gain(f, g, bw, sample_rate_hz) for f, g, bw in peaks]
    order = sorted(range(len(peaks)), key=lambda k: (-noise[k], k))
    for (i, s), k in zip(slots, order):
        out[i].update({f"f{s}": peaks[k][0], f"boost{s}": peaks[k][1], f"bw{s}": peaks[k][2]})
    return out


def _as_plugin_reads(value: float) -> float:
    """A preset value as the plugin holds it: our 9-digit text, parsed into a float32."""
    return float(np.float32(float(f"{float(value):.9g}")))


def _plugin_sections(v: Mapping[str, float], sr: float) -> np.ndarray:
    """(4, 5) a0-normalised (b0, b1, b2, a1, a2) of one instance in the plugin's order (low
    shelf, high shelf, peak 1, peak 2); a 0 dB filter is the identity, as in the plugin."""
    out = np.zeros((4, 5))
    for row, (kind, fk, gk, bk) in enumerate(FILTERS.values()):
        f, g = _as_plugin_reads(v[fk]), _as_plugin_reads(v[gk])
        if g == 0.0:
            out[row, 0] = 1.0
            continue
        if kind == "peak":  # the plugin's centre is the float32 quotient f / fs
            f = float(np.float32(f) / np.float32(sr)) * sr
            b, a = _peak_ba(f, g, _as_plugin_reads(v[bk]), sr)
        else:  # and a shelf's linear gain is float32 (powf)
            g = 20.0 * math.log10(float(np.float32(10.0 ** float(np.float32(g / 20.0)))))
            b, a = _shelf_ba(kind == "high", f, g, sr)
        out[row] = (b[0] / a[0], b[1] / a[0], b[2] / a[0], a[1] / a[0], a[2] / a[0])
    return out


@njit(cache=True)
def _chain_kernel(x: np.ndarray, sections: np.ndarray, masters: np.ndarray) -> np.ndarray:
    """Run float32 ``x`` through instances ``sections`` (k, 4, 5) with linear ``masters`` (k,):
    direct form I in double precision, each instance's last output rounded to float32 before
    it is fed back and before the master gain (both as ZamEQ2's run() does)."""
    y = x.copy()
    state = np.zeros((4, 4))  # per section: x1, x2, y1, y2
    for k in range(sections.shape[0]):
        state[:] = 0.0
        for i in range(y.size):
            v = np.float64(y[i])
            for j in range(4):
                c = sections[k, j]
                out = v * c[0] + state[j, 0] * c[1] + state[j, 1] * c[2] - state[j, 2] * c[3] \
                    - state[j, 3] * c[4]
                if j == 3:
                    out = np.float64(np.float32(out))
                state[j, 1], state[j, 3] = state[j, 0], state[j, 2]
                state[j, 0], state[j, 2] = v, out
                v = out
            y[i] = np.float32(v * masters[k])
    return y


def response_samples(sample_rate_hz: float) -> int:
    """Length of an impulse response measurement: the power of two that covers
    ``RESPONSE_SECONDS`` (2^17 at 44.1/48 kHz, 2^18 at 96 kHz)."""
    return 1 << math.ceil(math.log2(RESPONSE_SECONDS * sample_rate_hz))


def zam_eq2_impulse_response(instances: Sequence[Mapping[str, float]], sample_rate_hz: float,
                             samples: int | None = None) -> np.ndarray:
    """Impulse response (float32 values, ``response_samples`` long by default) of chained
    ZamEQ2 4.1 instances, simulated the way the plugin computes it (float32 parameters, its
    float32 output and feedback)."""
    samples = response_samples(sample_rate_hz) if samples is None else samples
    sr = float(np.float32(sample_rate_hz))
    sections = np.stack([_plugin_sections(v, sr) for v in instances]) if instances else \
        np.zeros((0, 4, 5))
    masters = np.array([math.exp(0.05 * _as_plugin_reads(v["master"]) * math.log(10.0))
                        for v in instances])
    x = np.zeros(samples, np.float32)
    x[0] = 1.0
    return _chain_kernel(x, sections, masters)


def impulse_response_db(response: np.ndarray, freqs_hz: np.ndarray,
                        sample_rate_hz: float) -> np.ndarray:
    """Magnitude (dB) of an impulse response at ``freqs_hz``: its FFT, zero-padded
    ``ZERO_PAD`` times, interpolated (as the tests measure the real plugins; unpadded, the
    interpolation across a narrow peak at 30 Hz at 96 kHz is 0.16 dB off, padded 0.003 dB)."""
    n = len(response) * ZERO_PAD
    spectrum = np.abs(np.fft.rfft(np.asarray(response, dtype=np.float64), n=n))
    bins = np.fft.rfftfreq(n, 1.0 / sample_rate_hz)
    return np.interp(freqs_hz, bins, 20.0 * np.log10(spectrum + 1e-30))
