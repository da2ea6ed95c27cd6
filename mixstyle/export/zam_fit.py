"""ZamEQ2 4.1 (Debian zam-plugins) as a filter model, and the fit of four chained instances
(six with a high- or low-pass, plus a ZamGEQ31 where a band reaches above 14 kHz) to one of our
EQ curves.

The model (read from ZamEQ2Plugin.cpp of zam-plugins 4.1; tests measure the real plugin against
it to 0.01 dB, also 90 dB down): per instance a low shelf, a high shelf and two peaks, then a
``master`` gain.
- Shelves: RBJ cookbook shelves with shelf slope S = 0.707 (ours: S = 1), corner ``fl``/``fh``.
- Peaks: Orfanidis' peaking EQ (reference gain 1, band-edge gain = half the dB gain, like RBJ's
  definition of Q) whose gain at Nyquist follows the analogue prototype, where a bilinear RBJ
  peak must come back to 0 dB. The ``bw`` knob sets the edge distance ``(f/fs) / qq`` radians with
  ``qq = 2**(1/bw) / (2**bw - 1)``.
- Frequencies 20 .. 14000 Hz, gains -50 .. +20 dB, ``bw`` 0.1 .. 6, ``master`` +-12 dB.

Why a fit and not a formula: an S = 1 shelf of +-18 dB is steeper at its corner than any pair of
S = 0.707 shelves (0.73 dB apart at best), a wide RBJ peak high up falls back to 0 dB at Nyquist
where ZamEQ2's peak keeps its analogue gain (up to 4.6 dB apart at 20 kHz), bands above 14 kHz
must be built from lower ones, and ZamEQ2 has no pass filters. So every band of ours gets
ZamEQ2 filters of its own:

=================  =========================================================================
our band           ZamEQ2 filters (instance.filter)
=================  =========================================================================
low shelf          A.low + B.low + C.low (S = 0.707 shelves) + A.peak1, A.peak2 (the corner)
high shelf         A.high + B.high + C.high + B.peak1, B.peak2
peak1, peak2       C.peak1, C.peak2 (same centre and gain; ``bw`` from the half-gain edges)
peak3              D.peak1, with D.high and D.peak2 for its top end (the fall to Nyquist)
high-pass          E.low + F.low (two deep cuts, -50 dB each at most: a 1 kHz 12 dB/oct
                   high-pass is -68 dB at 20 Hz) + E.peak1 (the corner, its resonance)
low-pass           E.high + F.high + E.peak2 (the corner) + F.peak1, F.peak2 (the top end:
                   a bilinear low-pass falls to -inf at Nyquist, ZamEQ2's filters do not)
peak3 above 14 kHz ZamGEQ31 bands 26..29 (step 3), with D.peak1 etc. at 14 kHz
low-pass > 12 kHz  ZamGEQ31 bands 26..29 (step 3), with the filters above
input gain         A..D ``master``, a quarter each
=================  =========================================================================

E and F exist only when ``band_curves_db`` has ``hpf`` or ``lpf``. A cut shelf's poles sit at
``corner / 10**(gain/80)`` (low) or ``corner * 10**(gain/80)`` (high), with Q 0.33 at -50 dB:
the pass filter's starts put them at the cutoff.

1. Each band is fitted alone (a few parameters, started at the analytic mapping; shelves and
   pass filters from several starts): minimax by Lawson-reweighted least squares on its dB
   curve over 20 Hz .. 20 kHz (or 0.49 fs).
2. If the sum is off by more than ``POLISH_ABOVE_DB``, all parameters (40, or 60 with E and F)
   are polished together on the whole curve the same way; the better of the two is kept.
3. With a ZamGEQ31 (``zam_geq``: fixed third-octave bands, steep edges, gain only) its top
   bands 26..29 (8.9 .. 22.4 kHz, those that run at the rate) are fitted together with the
   ZamEQ2 filters of peak2, the high shelf, peak3 and the low-pass, started from the middle of
   what the ZamEQ2s left in each band and from flat; the best of these and step 2 is kept. Its
   bands are staircase steps: they carry a level above 14 kHz (a wide peak3 up there, the
   resonance of a low-pass) but cannot follow anything narrower than a band or steeper than
   the smooth ZamEQ2 tails can meet at a band edge.
The Jacobian recomputes only the filter a parameter belongs to (the 60-parameter polish: 0.7 s
instead of 7 s). The modelled error is returned (the exporter's README states it per strip).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
from scipy.optimize import least_squares
from threadpoolctl import threadpool_limits

from mixstyle.export.zam_geq import (BAND_EDGES_HZ, GEQ_FLAT, GEQ_GAIN_MAX_DB, band_active,
                                     band_db)

ZAM_FREQ_MIN_HZ, ZAM_FREQ_MAX_HZ = 20.0, 14000.0
ZAM_BW_MIN, ZAM_BW_MAX = 0.1, 6.0
ZAM_GAIN_MIN_DB, ZAM_GAIN_MAX_DB = -50.0, 20.0
ZAM_MASTER_MAX_DB = 12.0
ZAM_SHELF_SLOPE = 0.707
INSTANCES = ("A", "B", "C", "D")
PASS_INSTANCES = ("E", "F")  # only when the strip's high- or low-pass is active
EQ_FLAT = {"boost1": 0.0, "bw1": 1.0, "f1": 500.0, "boost2": 0.0, "bw2": 1.0, "f2": 3000.0,
           "boostl": 0.0, "fl": 250.0, "boosth": 0.0, "fh": 8000.0, "master": 0.0, "peaks": 0.0}
POLISH_ABOVE_DB = 0.3   # per-band result worse than this: polish everything together
NEAR_FLAT_DB = 0.01     # start of a corrector filter (0 dB exactly would be a flat spot)
BAND_GOOD_DB = 0.08     # a band fitted this well needs no further start
LAWSON_ROUNDS = 5
DIFF_STEP = 1e-5        # relative finite-difference step of the fit's Jacobian
DONE_DB = 0.02          # a fit this close stops
MAX_NFEV = 100          # least-squares evaluations per round


# ------------------------------------------------------------------------------- the model

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


def _section_db(ba: tuple[tuple[float, ...], ...], phi: np.ndarray) -> np.ndarray:
    """Magnitude (dB) of b(z)/a(z) with phi = sin^2(w/2): |c0 + c1 z^-1 + c2 z^-2|^2 =
    (c0 + c1 + c2)^2 - 4 (c0 c1 + 4 c0 c2 + c1 c2) phi + 16 c0 c2 phi^2, which keeps its
    precision at low frequencies (the cos(w) form cancels there, and a fit's finite
    differences would see the noise)."""
    def mag2(c: tuple[float, ...]) -> np.ndarray:
        return ((c[0] + c[1] + c[2]) ** 2 - 4.0 * (c[0] * c[1] + 4.0 * c[0] * c[2] + c[1] * c[2])
                * phi + 16.0 * c[0] * c[2] * phi * phi)
    return 10.0 * np.log10(mag2(ba[0]) / mag2(ba[1]))


class _Grid:
    """sin^2(w/2) of the frequencies, computed once per fit."""

    def __init__(self, freqs_hz: np.ndarray, sample_rate_hz: float) -> None:
        w = 2.0 * np.pi * np.asarray(freqs_hz, dtype=np.float64) / sample_rate_hz
        self.freqs, self.sr, self.phi = freqs_hz, sample_rate_hz, np.sin(w / 2.0) ** 2

    def filter_db(self, kind: str, f: float, g: float, bw: float = 1.0) -> np.ndarray:
        if g == 0.0:  # a 0 dB band is exactly flat (the plugin's coefficients become 1, 0, 0)
            return np.zeros_like(self.phi)
        if kind == "peak":
            return _section_db(_peak_ba(f, g, bw, self.sr), self.phi)
        return _section_db(_shelf_ba(kind == "high", f, g, self.sr), self.phi)


# instance key -> (filter kind, frequency key, gain key, bandwidth key)
FILTERS = {"l": ("low", "fl", "boostl", None), "h": ("high", "fh", "boosth", None),
           "1": ("peak", "f1", "boost1", "bw1"), "2": ("peak", "f2", "boost2", "bw2")}


def _instance_db(grid: _Grid, v: Mapping[str, float]) -> np.ndarray:
    out = np.full_like(grid.phi, float(v["master"]))
    for kind, fk, gk, bk in FILTERS.values():
        out += grid.filter_db(kind, v[fk], v[gk], v[bk] if bk else 1.0)
    return out


def zam_eq2_curve_db(instances: Sequence[Mapping[str, float]], freqs_hz: np.ndarray,
                     sample_rate_hz: float) -> np.ndarray:
    """Modelled magnitude (dB) of chained ZamEQ2 4.1 instances with these parameter values."""
    grid = _Grid(np.asarray(freqs_hz, dtype=np.float64), sample_rate_hz)
    return sum((_instance_db(grid, v) for v in instances), np.zeros_like(grid.phi))


# --------------------------------------------------------------------------------- fitting

# a band's share: (instance index, filter key) pairs
SHARES = {"low_shelf": ((0, "l"), (1, "l"), (2, "l"), (0, "1"), (0, "2")),
          "high_shelf": ((0, "h"), (1, "h"), (2, "h"), (1, "1"), (1, "2")),
          "peak1": ((2, "1"),), "peak2": ((2, "2"),),
          "peak3": ((3, "1"), (3, "h"), (3, "2")),
          "hpf": ((4, "l"), (5, "l"), (4, "1")),
          "lpf": ((4, "h"), (5, "h"), (4, "2"), (5, "1"), (5, "2"))}
PASS_BANDS = ("hpf", "lpf")
# shelf starts: (corner ratio, gain share) of the three shelves, then the two peaks' gain share
SHELF_STARTS = (((1.0, 0.34), (1.0, 0.33), (1.0, 0.33), 0.0, 0.0),
                ((0.6, 0.3), (1.0, 0.4), (1.7, 0.3), 0.03, -0.03),
                ((0.6, 0.3), (1.0, 0.4), (1.7, 0.3), -0.03, 0.03),
                ((0.5, 0.5), (1.4, 0.3), (2.5, 0.2), 0.05, -0.05))
# pass filter starts: per shelf (its poles' frequency / the cutoff, share of the stopband
# depth), then per peak (anchor: the cutoff or ZamEQ2's top frequency, ratio to it, gain dB)
F0 = NEAR_FLAT_DB
HPF_STARTS = ((((1.0, 0.5), (0.5, 0.5)), (("cut", 1.0, F0),)),
              (((1.0, 0.6), (0.3, 0.4)), (("cut", 1.0, F0),)))
LPF_STARTS = (
    (((1.0, 0.5), (2.0, 0.5)), (("cut", 1.0, F0), ("top", 1.0, -F0), ("top", 0.5, -F0))),
    (((0.7, 0.5), (1.5, 0.5)), (("cut", 1.0, F0), ("top", 1.0, -3.0), ("cut", 1.5, -F0))),
    (((1.0, 0.6), (4.0, 0.4)), (("cut", 1.0, F0), ("top", 1.0, -F0), ("top", 0.5, -F0))),
    (((1.0, 0.7), (8.0, 0.3)), (("cut", 1.0, F0), ("top", 1.0, -6.0), ("top", 0.7, -3.0))))
PASS_GOOD_DB = 0.25     # a pass filter fitted this well needs no further start
GEQ_FIT_BANDS = (26, 27, 28, 29)  # ZamGEQ31's bands the fit uses: 8.9 .. 22.4 kHz
GEQ_EDGE_MARGIN = 1.02  # a GEQ band's start looks this far inside its edges
TOP_BANDS = ("peak2", "high_shelf", "peak3", "lpf")  # their filters are polished with the GEQ


class _Params:
    """The free parameters of some filters as one vector (log frequency, gain dB, bw), and
    the error of their summed dB curves against ``target_db``. The Jacobian is by forward
    differences that recompute only the filter a parameter belongs to."""

    def __init__(self, grid: _Grid, insts: list[dict[str, float]],
                 filters: Sequence[tuple[int, str]], target_db: np.ndarray) -> None:
        self.grid, self.insts, self.target = grid, insts, target_db
        self.slots: list[tuple[int, str]] = []
        self.filters: list[tuple[str, list[int]]] = []  # (kind, its slots' indices in x)
        fmax = min(ZAM_FREQ_MAX_HZ, 0.45 * grid.sr)
        lo, hi, x0 = [], [], []
        for i, key in filters:
            if key[0] == "g":  # a ZamGEQ31 band: its gain only
                self.filters.append(("geq" + key[1:], [len(self.slots)]))
                self.slots.append((i, "band" + key[1:]))
                lo.append(-GEQ_GAIN_MAX_DB)
                hi.append(GEQ_GAIN_MAX_DB)
                x0.append(insts[i]["band" + key[1:]])
                continue
            kind, fk, gk, bk = FILTERS[key]
            self.filters.append((kind, list(range(len(self.slots), len(self.slots) + 2
                                                   + (1 if bk else 0)))))
            for name in (fk, gk) + ((bk,) if bk else ()):
                self.slots.append((i, name))
                if name == fk:
                    lo.append(math.log(ZAM_FREQ_MIN_HZ))
                    hi.append(math.log(fmax))
                    x0.append(math.log(min(max(insts[i][name], ZAM_FREQ_MIN_HZ), fmax)))
                elif name == gk:
                    lo.append(ZAM_GAIN_MIN_DB)
                    hi.append(ZAM_GAIN_MAX_DB)
                    x0.append(insts[i][name])
                else:
                    lo.append(ZAM_BW_MIN)
                    hi.append(ZAM_BW_MAX)
                    x0.append(insts[i][name])
        self.lo, self.hi = np.array(lo), np.array(hi)
        self.x0 = np.clip(np.array(x0), self.lo + 1e-9, self.hi - 1e-9)

    def apply(self, x: np.ndarray) -> list[dict[str, float]]:
        out = [dict(v) for v in self.insts]
        for (i, name), value in zip(self.slots, x):
            out[i][name] = float(math.exp(value) if name[0] == "f" else value)
        return out

    def _filter_db(self, kind: str, idx: list[int], x: np.ndarray) -> np.ndarray:
        if kind[0] == "g":
            return band_db(int(kind[3:]) - 1, float(x[idx[0]]), self.grid.freqs, self.grid.sr)
        bw = float(x[idx[2]]) if len(idx) == 3 else 1.0
        return self.grid.filter_db(kind, math.exp(x[idx[0]]), float(x[idx[1]]), bw)

    def err(self, x: np.ndarray) -> np.ndarray:
        out = -self.target
        for kind, idx in self.filters:
            out = out + self._filter_db(kind, idx, x)
        return out

    def jac(self, x: np.ndarray) -> np.ndarray:
        out = np.empty((self.grid.phi.size, x.size))
        for kind, idx in self.filters:
            base = self._filter_db(kind, idx, x)
            for j in idx:
                h = DIFF_STEP * max(1.0, abs(x[j]))
                h = -h if x[j] + h > self.hi[j] else h
                y = x.copy()
                y[j] += h
                out[:, j] = (self._filter_db(kind, idx, y) - base) / (y[j] - x[j])
        return out


def _minimax(p: _Params) -> tuple[np.ndarray, float]:
    """Least squares, then Lawson rounds (weights grow where the error stays largest) until
    the largest error is ``DONE_DB`` or stops falling; the best maximum error wins."""
    best_x, best = p.x0, float(np.abs(p.err(p.x0)).max())
    if best <= DONE_DB:
        return best_x, best
    x = least_squares(p.err, p.x0, jac=p.jac, bounds=(p.lo, p.hi), x_scale="jac",
                      max_nfev=MAX_NFEV).x
    w = np.ones_like(p.err(x))
    for _ in range(LAWSON_ROUNDS):
        e = np.abs(p.err(x))
        m = float(e.max())
        if m < best:
            best_x, best = x, m
        elif m > 1.5 * best:
            break  # reweighting went astray
        if best <= DONE_DB:
            break
        w = w * np.maximum(e / max(m, 1e-12), 0.05)
        w = w / w.max()
        sw = np.sqrt(w)
        x = least_squares(lambda y: p.err(y) * sw, x, jac=lambda y: p.jac(y) * sw[:, None],
                          bounds=(p.lo, p.hi), x_scale="jac", max_nfev=MAX_NFEV).x
    m = float(np.abs(p.err(x)).max())
    return (x, m) if m < best else (best_x, best)


def _start(bands: Mapping[str, Mapping[str, float]], input_gain_db: float,
           sr: float) -> list[dict[str, float]]:
    """The analytic mapping: a shelf as three shelves of a third of the gain at its corner,
    peaks at the same centre and gain with ``bw`` from the half-gain edges; correctors flat.
    With a pass filter in ``bands``, instances E and F (flat) follow A..D."""
    fmax = min(ZAM_FREQ_MAX_HZ, 0.45 * sr)
    insts = [dict(EQ_FLAT, master=input_gain_db / len(INSTANCES)) for _ in INSTANCES]
    if any(band in bands for band in PASS_BANDS):
        insts += [dict(EQ_FLAT) for _ in PASS_INSTANCES]
    ls, hs = bands["low_shelf"], bands["high_shelf"]
    for i in (0, 1, 2):
        insts[i].update(boostl=ls["gain"] / 3, fl=_clamp(ls["freq"], sr),
                        boosth=hs["gain"] / 3, fh=_clamp(hs["freq"], sr))
    for i, band in ((0, ls), (1, hs)):  # the shelves' corner correctors
        insts[i].update(boost1=NEAR_FLAT_DB, f1=_clamp(band["freq"] / 1.5, sr), bw1=2.0,
                        boost2=NEAR_FLAT_DB, f2=_clamp(band["freq"] * 1.5, sr), bw2=2.0)
    for (i, slot), band in (((2, "1"), "peak1"), ((2, "2"), "peak2"), ((3, "1"), "peak3")):
        b = bands[band]
        f = _clamp(b["freq"], sr)
        insts[i].update({f"boost{slot}": b["gain"], f"f{slot}": f,
                         f"bw{slot}": zam_bandwidth(f, b["q"], sr)})
    insts[3].update(boosth=NEAR_FLAT_DB, fh=fmax, boost2=NEAR_FLAT_DB, f2=fmax, bw2=1.0)
    return insts


def _clamp(f: float, sr: float) -> float:
    return min(max(f, ZAM_FREQ_MIN_HZ), ZAM_FREQ_MAX_HZ, 0.45 * sr)


def _shelf_starts(insts: list[dict[str, float]], band: str, b: Mapping[str, float],
                  sr: float) -> list[list[dict[str, float]]]:
    """Several starts for a shelf's five filters (the fit has local minima)."""
    fk, gk = ("fl", "boostl") if band == "low_shelf" else ("fh", "boosth")
    first = 0 if band == "low_shelf" else 1
    out = []
    for shelves_and_peaks in SHELF_STARTS:
        v = [dict(u) for u in insts]
        for i, (ratio, share) in enumerate(shelves_and_peaks[:3]):
            v[i][fk], v[i][gk] = _clamp(b["freq"] * ratio, sr), b["gain"] * share
        for slot, share in zip("12", shelves_and_peaks[3:]):
            v[first][f"boost{slot}"] = b["gain"] * share or NEAR_FLAT_DB
        out.append(v)
    return out


def _pass_starts(insts: list[dict[str, float]], band: str, b: Mapping[str, float],
                 depth_db: float, sr: float) -> list[list[dict[str, float]]]:
    """Starts for a pass filter's shelves (poles near the cutoff, ``depth_db`` the stopband's
    deepest point on the grid, shared out) and peaks (the corner; the top end)."""
    high = band == "lpf"
    fk, gk = ("fh", "boosth") if high else ("fl", "boostl")
    top = min(ZAM_FREQ_MAX_HZ, 0.45 * sr)
    shelves = [(i, k) for i, k in SHARES[band] if k in "lh"]
    peaks = [(i, k) for i, k in SHARES[band] if k in "12"]
    out = []
    for shelf_starts, peak_starts in (LPF_STARTS if high else HPF_STARTS):
        v = [dict(u) for u in insts]
        for (i, _), (ratio, share) in zip(shelves, shelf_starts):
            gain = max(min(depth_db * share, -NEAR_FLAT_DB), ZAM_GAIN_MIN_DB)
            half = 10.0 ** (gain / 80.0)  # a cut shelf's poles sit at corner / half (low)
            corner = b["freq"] * ratio * (1.0 / half if high else half)  # or corner * half
            v[i][fk], v[i][gk] = _clamp(corner, sr), gain
        for (i, slot), (anchor, ratio, gain) in zip(peaks, peak_starts):
            f = ratio * (b["freq"] if anchor == "cut" else top)
            v[i].update({f"f{slot}": _clamp(f, sr), f"boost{slot}": gain, f"bw{slot}": 1.0})
        out.append(v)
    return out


@dataclass(frozen=True)
class ZamFit:
    """Fitted parameter values: ZamEQ2 instances A..D (E, F), the ZamGEQ31's (None when the
    fit had none) and the modelled largest error (dB) of the whole chain."""
    eq2: list[dict[str, float]]
    geq: dict[str, float] | None
    worst_db: float


def geq_keys(sample_rate_hz: float) -> tuple[str, ...]:
    """Filter keys of the ZamGEQ31 bands the fit may use: the top ones that run at this rate."""
    return tuple(f"g{b}" for b in GEQ_FIT_BANDS if band_active(b - 1, sample_rate_hz))


def _geq_start(grid: _Grid, residual_db: np.ndarray) -> dict[str, float]:
    """ZamGEQ31 values that take the middle of ``residual_db`` within each of its fit bands."""
    geq = dict(GEQ_FLAT)
    for key in geq_keys(grid.sr):
        lower, upper = BAND_EDGES_HZ[int(key[1:]) - 1]
        inside = residual_db[(grid.freqs > lower * GEQ_EDGE_MARGIN)
                             & (grid.freqs < upper / GEQ_EDGE_MARGIN)]
        if inside.size:
            mid = 0.5 * (float(inside.max()) + float(inside.min()))
            geq["band" + key[1:]] = min(max(mid, -GEQ_GAIN_MAX_DB), GEQ_GAIN_MAX_DB)
    return geq


def _fit_with_geq(grid: _Grid, insts: list[dict[str, float]], total_db: np.ndarray,
                  worst: float) -> ZamFit:
    """3. The ZamGEQ31's top bands on what the ZamEQ2s left (started at its middle per band,
    and flat), polished together with the ZamEQ2 filters of the top bands; the best wins."""
    best = ZamFit(insts, dict(GEQ_FLAT), worst)
    eq2_db = zam_eq2_curve_db(insts, grid.freqs, grid.sr)
    filters = sorted({f for band in TOP_BANDS for f in SHARES[band] if f[0] < len(insts)})
    gi = len(insts)
    rest = [dict(u) for u in insts]  # the filters that stay as they are (and the masters)
    for i, key in filters:
        rest[i][FILTERS[key][2]] = 0.0
    rest_db = zam_eq2_curve_db(rest, grid.freqs, grid.sr)
    filters += [(gi, key) for key in geq_keys(grid.sr)]
    for geq in (_geq_start(grid, total_db - eq2_db), dict(GEQ_FLAT)):
        v = [dict(u) for u in insts] + [geq]
        p = _Params(grid, v, filters, total_db - rest_db)
        x, m = _minimax(p)
        if m < best.worst_db:
            fitted = p.apply(x)
            best = ZamFit(fitted[:gi], fitted[gi], m)
        if best.worst_db <= DONE_DB:
            break
    return best


def fit_zam_eq2(band_curves_db: Mapping[str, np.ndarray], bands: Mapping[str, Mapping[str, float]],
                input_gain_db: float, freqs_hz: np.ndarray, sample_rate_hz: float,
                with_geq: bool = False) -> ZamFit:
    """ZamEQ2 instances A..D (and E, F if ``hpf`` or ``lpf`` is given) whose chain follows the
    sum of ``band_curves_db`` (our bands' curves in dB at ``freqs_hz``) plus ``input_gain_db``;
    with ``with_geq`` a ZamGEQ31's top bands follow, fitted in step 3 (``freqs_hz`` should then
    be dense enough above 8 kHz for its steep band edges, ~50 Hz apart). ``bands[name]`` holds
    ``freq``, ``gain`` (and ``q`` for peaks and pass filters); the pass filters are optional."""
    # one BLAS thread: the least-squares steps then sum in one order on every machine, and the
    # fit lands in the same solution whatever the core count (a resonant low-pass at 16.5 kHz
    # came out within 1 dB with one thread and 2.4 dB off with two)
    with threadpool_limits(limits=1):
        return _fit(band_curves_db, bands, input_gain_db, freqs_hz, sample_rate_hz, with_geq)


def _fit(band_curves_db, bands, input_gain_db, freqs_hz, sample_rate_hz, with_geq):
    grid = _Grid(np.asarray(freqs_hz, dtype=np.float64), sample_rate_hz)
    insts = _start(bands, input_gain_db, sample_rate_hz)
    for band, share in SHARES.items():  # 1. each band alone, on its own filters
        if band not in band_curves_db:  # a pass filter that is off
            continue
        target = band_curves_db[band]
        if not np.any(np.abs(target) > 1e-9):  # a flat band: its filters off
            for i, key in share:
                insts[i][FILTERS[key][2]] = 0.0
            continue
        good = BAND_GOOD_DB
        if band in PASS_BANDS:
            starts = _pass_starts(insts, band, bands[band], float(target.min()), sample_rate_hz)
            good = PASS_GOOD_DB
        elif band.endswith("shelf"):
            starts = _shelf_starts(insts, band, bands[band], sample_rate_hz)
        else:
            starts = [insts]
        best: tuple[float, list[dict[str, float]]] | None = None
        for v0 in starts:
            p = _Params(grid, v0, share, target)
            x, m = _minimax(p)
            if best is None or m < best[0]:
                best = (m, p.apply(x))
            if m < good:
                break
        insts = best[1]
    total = sum(band_curves_db.values(), np.zeros_like(grid.phi)) + input_gain_db
    every = [(i, key) for i in range(len(insts)) for key in FILTERS]
    p = _Params(grid, insts, every, total - sum(v["master"] for v in insts))
    worst = float(np.abs(p.err(p.x0)).max())
    if worst > POLISH_ABOVE_DB:  # 2. everything together
        x, polished = _minimax(p)
        if polished < worst:
            insts, worst = p.apply(x), polished
    if with_geq:
        return _fit_with_geq(grid, insts, total, worst)
    return ZamFit(insts, None, worst)
