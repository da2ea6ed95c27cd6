"""The fit of chained ZamEQ2 4.1 instances (``zam_eq2``: four, six with a high- or low-pass,
plus a ZamGEQ31, ``zam_geq``, where a band reaches above 14 kHz) to one of our EQ curves.

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
   pass filters from a fixed list of starts): minimax by Lawson-reweighted least squares on its
   dB curve over 20 Hz .. 20 kHz (or 0.49 fs).
2. If the sum is off by more than ``WIN_TOL_DB``, the filters in use are polished together on
   the whole curve the same way. Filters at 0 dB (those of flat bands) stay out: their
   frequency and width have no say in the curve and would wander anywhere. If that is still
   off (and no step 3 follows), they join from fixed places spread over the range, nearly
   flat (``SPREAD_*``): all gains alone first, then everything (a 1 kHz high- and low-pass
   pair at Q 1.5 at 44.1 kHz, A..D flat: 0.81 -> 0.35 dB).
3. With a ZamGEQ31 (``zam_geq``: fixed third-octave bands, steep edges, gain only) its top
   bands 26..29 (8.9 .. 22.4 kHz, those that run at the rate) are fitted together with the
   ZamEQ2 filters of peak2, the high shelf, peak3 and the low-pass: those in use, and those of
   flat bands placed at fixed places near ZamEQ2's top (``SPARE_SHELVES``, ``SPARE_PEAKS``,
   nearly flat). First all their gains alone (close to a linear problem: one answer), then
   everything from there; from the middle of what the ZamEQ2s left in each GEQ band and from
   flat. Its bands are staircase steps: they carry a level above 14 kHz (a wide peak3 up
   there, the resonance of a low-pass) but cannot follow anything narrower than a band or
   steeper than the smooth ZamEQ2 tails can meet at a band edge.
At the end the peaks are moved between slots (``zam_eq2.quiet_peak_slots``): the same curve,
with the float32 rounding the plugin feeds back in its second peak kept quiet.

The problem is kept well-posed, so that a change in the last bit (another machine's rounding,
a start nudged by 1e-9) cannot move the result by more than ``WIN_TOL_DB``:
- no ZamEQ2 peak is narrower than the table's narrowest peak (Q ``TABLE_Q_MAX``) at ZamEQ2's
  top frequency, where the bilinear transform makes it narrowest (``fit_bw_min``); without
  this a fit parked a -43 dB notch 0.018 Hz wide at 20 Hz between two grid frequencies;
- filters that cancel each other are penalised: where the fitted filters' absolute dB curves
  add up to more than our bands' plus ``CANCEL_ALLOW_DB``, every dB more costs
  ``CANCEL_WEIGHT`` (instances had pulled 44 Hz down to -60 dB and others back up +60 dB).
  The allowance is large because the top end needs it: a steep fall above 14 kHz is the
  difference of two deep, wide shelves; there the plugins' float32 rounding stays far below
  the signal (the exporter's simulation checks it);
- Lawson's weights never fall below ``LAWSON_FLOOR`` (a few points left to carry 40
  parameters is an underdetermined fit), and in steps 2 and 3 each round is a proximal step:
  moving a frequency or a width costs (``SHAPE_RIDGE``), from where the round starts, so a
  round cannot jump to another valley on a rounding difference; steps are at most ``MAX_STEP``;
- every candidate list (starts, polished or not, the GEQ stages) is fixed and ordered, and the
  winner is the first within ``WIN_TOL_DB`` of the best, so a near-tie cannot flip the
  result; a list stops early only where that rule makes the rest moot;
- the least-squares steps solve their normal equations themselves (``bounded_lsq``: no BLAS,
  the same result whatever OpenBLAS kernels a machine has).
The Jacobian recomputes only the filter a parameter belongs to. The modelled error on the fit's
frequencies is returned; the exporter states the honest one (a denser grid, and the plugins'
float32 arithmetic simulated).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
from numba import njit

from dsp.params import TABLE
from mixstyle.export import zam_starts as st
from mixstyle.export.bounded_lsq import bounded_least_squares
from mixstyle.export.zam_eq2 import (FILTERS, ZAM_BW_MAX, ZAM_FREQ_MAX_HZ,
                                     ZAM_FREQ_MIN_HZ, ZAM_GAIN_MAX_DB, ZAM_GAIN_MIN_DB, Grid,
                                     KINDS, quiet_peak_slots, zam_bandwidth, zam_eq2_curve_db)
from mixstyle.export.zam_geq import (BAND_EDGES_HZ, GEQ_FLAT, GEQ_GAIN_MAX_DB, band_active,
                                     band_db)

WIN_TOL_DB = 0.05       # candidates this close to the best count as tied: the first wins
LAWSON_ROUNDS = 10
LAWSON_FLOOR = 0.01     # no frequency weighs less (else a few points carry the whole fit)
DIFF_STEP = 1e-5        # relative finite-difference step of the fit's Jacobian
DONE_DB = 0.02          # a fit this close stops
MAX_NFEV = 100          # least-squares evaluations per round
TABLE_Q_MAX = max(p.max for p in TABLE if p.name.endswith("_q"))  # the narrowest band: Q 8
CANCEL_ALLOW_DB = 96.0  # filters may cancel this much more than our bands do, free
CANCEL_WEIGHT = 0.05    # the cost of every dB of cancellation beyond (as a residual, per point)
# the largest least-squares step per parameter: log frequency, gain dB, bw, ZamGEQ31 gain dB
MAX_STEP = {"f": 0.1, "g": 2.0, "b": 0.2, "G": 2.0}
SHAPE_RIDGE = 0.3       # steps 2 and 3: a round's move of a frequency or bw by MAX_STEP costs
                        # like this much error at one frequency (proximal: from where it starts)


def fit_bw_min(sample_rate_hz: float) -> float:
    """The narrowest ZamEQ2 ``bw`` the fit uses at this rate: that of the table's narrowest
    peak (Q ``TABLE_Q_MAX``) at ZamEQ2's top frequency (0.85 at 44.1 kHz, 1.16 at 96 kHz)."""
    top = min(ZAM_FREQ_MAX_HZ, 0.45 * sample_rate_hz)
    return zam_bandwidth(top, TABLE_Q_MAX, sample_rate_hz)


def _pick(candidates: Sequence[tuple[float, object]]) -> tuple[float, object]:
    """The first (error, result) within ``WIN_TOL_DB`` of the smallest error."""
    best = min(m for m, _ in candidates)
    return next(c for c in candidates if c[0] <= best + WIN_TOL_DB)


@njit(cache=True)
def _sums(curves: np.ndarray, target: np.ndarray, budget: np.ndarray
          ) -> tuple[np.ndarray, np.ndarray]:
    """(the curves' sum - ``target``, their absolute values' sum - ``budget``), the rows
    added in order."""
    err, excess = -target, -budget
    for r in range(curves.shape[0]):
        err = err + curves[r]
        excess = excess + np.abs(curves[r])
    return err, excess


GEQ_FIT_BANDS = (26, 27, 28, 29)  # ZamGEQ31's bands the fit uses: 8.9 .. 22.4 kHz
GEQ_EDGE_MARGIN = 1.02  # a GEQ band's start looks this far inside its edges
TOP_BANDS = ("peak2", "high_shelf", "peak3", "lpf")  # their filters are polished with the GEQ
class _Params:
    """The free parameters of some filters as one vector (log frequency, gain dB, bw; only the
    gain of the filters in ``gains_only``), the error of their summed dB curves against
    ``target_db``, and the cancellation penalty against ``budget_db`` (what our bands' absolute
    dB curves add up to). The Jacobian is by forward differences that recompute only the
    filter a parameter belongs to."""

    def __init__(self, grid: Grid, insts: list[dict[str, float]],
                 filters: Sequence[tuple[int, str]], target_db: np.ndarray,
                 budget_db: np.ndarray, gains_only: Sequence[tuple[int, str]] = ()) -> None:
        self.grid, self.insts, self.target = grid, insts, target_db
        self.budget = budget_db + CANCEL_ALLOW_DB
        self.slots: list[tuple[int, str]] = []
        fmax = min(ZAM_FREQ_MAX_HZ, 0.45 * grid.sr)
        bounds = {"f": (math.log(ZAM_FREQ_MIN_HZ), math.log(fmax)),
                  "g": (ZAM_GAIN_MIN_DB, ZAM_GAIN_MAX_DB), "b": (fit_bw_min(grid.sr), ZAM_BW_MAX),
                  "G": (-GEQ_GAIN_MAX_DB, GEQ_GAIN_MAX_DB)}
        lo, hi, x0, step, kinds = [], [], [], [], []
        # per filter: its kind code (ZamGEQ31 bands: -1), values (frequency, gain, bw) at the
        # start, the slot of each of them in x (-1: held) and the ZamGEQ31 band (0-based)
        codes, base, where, bands = [], [], [], []
        for i, key in filters:
            if key[0] == "g":  # a ZamGEQ31 band: its gain only
                names, roles = ("band" + key[1:],), "G"
                codes.append(-1)
                bands.append(int(key[1:]) - 1)
                values = [1.0, insts[i][names[0]], 1.0]
                cols = [1]
            else:
                kind, fk, gk, bk = FILTERS[key]
                names, roles = (fk, gk) + ((bk,) if bk else ()), "fgb"
                codes.append(KINDS[kind])
                bands.append(-1)
                values = [insts[i][fk], insts[i][gk], insts[i][bk] if bk else 1.0]
                cols = [0, 1, 2][:len(names)]
            slots = [-1, -1, -1]
            for name, role, col in zip(names, roles, cols):
                if (i, key) in gains_only and role in "fb":
                    continue
                slots[col] = len(self.slots)
                self.slots.append((i, name))
                value = insts[i][name]
                x0.append(math.log(value) if role == "f" else value)
                lo.append(bounds[role][0])
                hi.append(bounds[role][1])
                step.append(MAX_STEP[role])
                kinds.append(role)
            base.append(values)
            where.append(slots)
        self.codes, self.base = np.array(codes, dtype=np.int64), np.array(base, dtype=np.float64)
        self.geq_band = {r: b for r, b in enumerate(bands) if b >= 0}
        where_a = np.array(where, dtype=np.int64).reshape(-1, 3)
        # slot j sets column col[j] of filter row[j] (slots are numbered filter by filter)
        self.row, self.col = (a.astype(np.int64) for a in np.nonzero(where_a >= 0))
        self.is_f = np.array([role == "f" for role in kinds], dtype=bool)
        self.lo, self.hi, self.max_step = np.array(lo), np.array(hi), np.array(step)
        self.x0 = np.clip(np.array(x0), self.lo, self.hi)
        self._last: tuple[bytes, np.ndarray, np.ndarray] = (b"", np.empty(0), np.empty(0))
        self.ridge = np.zeros(len(kinds))  # set by steps 2 and 3 (see SHAPE_RIDGE)
        self.shape = np.array([role in "fb" for role in kinds])
        self.center = self.x0

    def apply(self, x: np.ndarray) -> list[dict[str, float]]:
        out = [dict(v) for v in self.insts]
        for (i, name), value in zip(self.slots, x):
            out[i][name] = float(math.exp(value) if name[0] == "f" else value)
        return out

    def _values(self, x: np.ndarray) -> np.ndarray:
        """(frequency, gain, bw) of every filter at ``x``."""
        v = self.base.copy()
        v[self.row, self.col] = self._natural(x)
        return v

    def _natural(self, x: np.ndarray) -> np.ndarray:
        """Parameters in the plugin's units: log frequencies back to Hz."""
        return np.where(self.is_f, np.exp(np.where(self.is_f, x, 0.0)), x)

    def _curves_of(self, rows: np.ndarray, values: np.ndarray) -> np.ndarray:
        """The dB curves (one row each) of filters ``rows`` with ``values`` (as ``_values``)."""
        out = np.empty((rows.size, self.grid.phi.size))
        geq = self.codes[rows] < 0
        if not geq.all():
            eq2 = np.nonzero(~geq)[0]
            out[eq2] = self.grid.curves(self.codes[rows[eq2]], values[eq2, 0], values[eq2, 1],
                                        values[eq2, 2])
        for r in np.nonzero(geq)[0]:
            out[r] = band_db(self.geq_band[int(rows[r])], float(values[r, 1]), self.grid.freqs,
                             self.grid.sr)
        return out

    def _curves(self, x: np.ndarray) -> np.ndarray:
        key = x.tobytes()  # the Jacobian follows the residuals at the same x: reuse them
        if self._last[0] != key:
            values = self._values(x)
            self._last = (key, values, self._curves_of(np.arange(self.codes.size), values))
        return self._last[2]

    def err(self, x: np.ndarray) -> np.ndarray:
        return _sums(self._curves(x), self.target, self.budget)[0]

    def residuals(self, x: np.ndarray, sw: np.ndarray) -> np.ndarray:
        """The weighted error, then the cancellation penalty (one row per frequency)."""
        err, excess = _sums(self._curves(x), self.target, self.budget)
        return np.concatenate([err * sw,
                               CANCEL_WEIGHT * np.maximum(excess, 0.0),
                               self.ridge * (x - self.center) / self.max_step])

    def jac(self, x: np.ndarray, sw: np.ndarray) -> np.ndarray:
        """Forward differences: every parameter moved alone, only its filter recomputed."""
        curves = self._curves(x)
        over = _sums(curves, self.target, self.budget)[1] > 0.0
        n = self.grid.phi.size
        out = np.empty((2 * n + x.size, x.size))
        if x.size:
            h = DIFF_STEP * np.maximum(1.0, np.abs(x))
            y = x + np.where(x + h > self.hi, -h, h)
            moved = self._last[1][self.row]   # (the values of _curves(x)) a row per parameter
            moved[np.arange(x.size), self.col] = self._natural(y)
            base = curves[self.row]
            d = (self._curves_of(self.row, moved) - base) / (y - x)[:, None]
            out[:n] = (d * sw).T
            out[n:2 * n] = (CANCEL_WEIGHT * np.where(over, np.sign(base), 0.0) * d).T
        out[2 * n:] = np.diag(self.ridge / self.max_step)
        return out


def _minimax(p: _Params, w: np.ndarray | None = None) -> tuple[np.ndarray, float, np.ndarray]:
    """Least squares with weights ``w`` (1 by default), then Lawson rounds (the weights grow
    where the error stays largest, never below ``LAWSON_FLOOR``), each round held near where
    it starts (a proximal step: a tiny change of the start cannot send it elsewhere), until
    the largest error is ``DONE_DB``. Returns the round with the smallest largest error (or
    the start) and the weights reached, for a next stage on the same target."""
    best_x, best = p.x0, float(np.abs(p.err(p.x0)).max())
    w = np.ones_like(p.target) if w is None else w
    if best <= DONE_DB:
        return best_x, best, w
    x = p.x0
    for _ in range(LAWSON_ROUNDS + 1):
        sw = np.sqrt(w)
        p.center = x
        x = bounded_least_squares(lambda y: p.residuals(y, sw), lambda y: p.jac(y, sw), x,
                                  p.lo, p.hi, MAX_NFEV, p.max_step)
        e = np.abs(p.err(x))
        m = float(e.max())
        if m < best:
            best_x, best = x, m
        if best <= DONE_DB:
            break
        w = w * np.maximum(e / max(m, 1e-12), 0.05)
        w = np.maximum(w / w.max(), LAWSON_FLOOR)
    return best_x, best, w


@dataclass(frozen=True)
class ZamFit:
    """Fitted parameter values: ZamEQ2 instances A..D (E, F), the ZamGEQ31's (None when the
    fit had none) and the modelled largest error (dB) of the whole chain on the fit's grid."""
    eq2: list[dict[str, float]]
    geq: dict[str, float] | None
    worst_db: float


def geq_keys(sample_rate_hz: float) -> tuple[str, ...]:
    """Filter keys of the ZamGEQ31 bands the fit may use: the top ones that run at this rate."""
    return tuple(f"g{b}" for b in GEQ_FIT_BANDS if band_active(b - 1, sample_rate_hz))


def _geq_start(grid: Grid, residual_db: np.ndarray) -> dict[str, float]:
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


def _gains_then_all(grid: Grid, insts: list[dict[str, float]],
                    filters: Sequence[tuple[int, str]], target_db: np.ndarray,
                    budget_db: np.ndarray, weights: np.ndarray | None
                    ) -> list[tuple[float, object]]:
    """Two candidates: the gains of ``filters`` alone (close to a linear problem: one
    answer), then everything from there (shapes held by ``SHAPE_RIDGE``)."""
    out: list[tuple[float, object]] = []
    v, w = insts, weights
    for gains_only in (filters, ()):
        p = _Params(grid, v, filters, target_db, budget_db, gains_only)
        p.ridge = SHAPE_RIDGE * p.shape
        x, m, w = _minimax(p, w)
        v = p.apply(x)
        out.append((m, v))
    return out


def _fit_with_geq(grid: Grid, insts: list[dict[str, float]], total_db: np.ndarray,
                  budget_db: np.ndarray, worst: float, weights: np.ndarray | None) -> ZamFit:
    """3. The ZamGEQ31's top bands on what the ZamEQ2s left (started at its middle per band,
    and flat), fitted together with the ZamEQ2 filters of the top bands: those in use, and the
    flat ones placed near ZamEQ2's top. Candidates in order: step 2 as it is, then per GEQ
    start the gains-only fit and the full one."""
    eq2_db = zam_eq2_curve_db(insts, grid.freqs, grid.sr)
    top = sorted({f for band in TOP_BANDS for f in st.SHARES[band] if f[0] < len(insts)})
    placed = st.placed(insts, st.flat(insts, top), *st.near_top(grid.sr))
    filters = st.in_use(placed, top)
    gi = len(insts)
    rest = [dict(u) for u in placed]  # the filters that stay as they are (and the masters)
    for i, key in filters:
        rest[i][FILTERS[key][2]] = 0.0
    rest_db = zam_eq2_curve_db(rest, grid.freqs, grid.sr)
    filters += [(gi, key) for key in geq_keys(grid.sr)]
    candidates: list[tuple[float, object]] = [(worst, insts + [dict(GEQ_FLAT)])]
    for geq in (_geq_start(grid, total_db - eq2_db), dict(GEQ_FLAT)):
        if candidates[0][0] <= WIN_TOL_DB:
            break  # nothing can beat it by more than the tolerance
        candidates += _gains_then_all(grid, placed + [geq], filters, total_db - rest_db,
                                      budget_db, weights)
    m, fitted = _pick(candidates)
    return ZamFit(fitted[:gi], fitted[gi], m)  # type: ignore[index]


def fit_zam_eq2(band_curves_db: Mapping[str, np.ndarray], bands: Mapping[str, Mapping[str, float]],
                input_gain_db: float, freqs_hz: np.ndarray, sample_rate_hz: float,
                with_geq: bool = False) -> ZamFit:
    """ZamEQ2 instances A..D (and E, F if ``hpf`` or ``lpf`` is given) whose chain follows the
    sum of ``band_curves_db`` (our bands' curves in dB at ``freqs_hz``) plus ``input_gain_db``;
    with ``with_geq`` a ZamGEQ31's top bands follow, fitted in step 3 (``freqs_hz`` should then
    be dense enough above 8 kHz for its steep band edges, ~50 Hz apart). ``bands[name]`` holds
    ``freq``, ``gain`` (and ``q`` for peaks and pass filters); the pass filters are optional.
    Deterministic: no BLAS, no thread count and no tie can change the result."""
    grid = Grid(np.asarray(freqs_hz, dtype=np.float64), sample_rate_hz)
    insts = st.start(bands, input_gain_db, sample_rate_hz)
    for band, share in st.SHARES.items():  # 1. each band alone, on its own filters
        if band not in band_curves_db:  # a pass filter that is off
            continue
        target = band_curves_db[band]
        if not np.any(np.abs(target) > 1e-9):  # a flat band: its filters off
            for i, key in share:
                insts[i][FILTERS[key][2]] = 0.0
            continue
        if band in st.PASS_BANDS:
            starts = st.pass_starts(insts, band, bands[band], float(target.min()), sample_rate_hz)
        elif band.endswith("shelf"):
            starts = st.shelf_starts(insts, band, bands[band], sample_rate_hz)
        else:
            starts = [insts]
        candidates: list[tuple[float, object]] = []
        for v0 in starts:
            p = _Params(grid, v0, share, target, np.abs(target))
            x, m, _ = _minimax(p)
            candidates.append((m, p.apply(x)))
            if m <= WIN_TOL_DB:
                break  # the rest cannot win
        insts = _pick(candidates)[1]  # type: ignore[assignment]
    total = sum(band_curves_db.values(), np.zeros_like(grid.phi)) + input_gain_db
    budget = sum((np.abs(c) for c in band_curves_db.values()), np.zeros_like(grid.phi))
    every = st.in_use(insts, [(i, key) for i in range(len(insts)) for key in FILTERS])
    p = _Params(grid, insts, every, total - sum(v["master"] for v in insts), budget)
    p.ridge = SHAPE_RIDGE * p.shape
    worst = float(np.abs(p.err(p.x0)).max())
    weights = None
    if worst > WIN_TOL_DB:  # 2. everything together; the unpolished result first
        x, polished, weights = _minimax(p)
        candidates = [(worst, insts), (polished, p.apply(x))]
        all_filters = [(i, key) for i in range(len(insts)) for key in FILTERS]
        spare = st.flat(insts, all_filters)
        if spare and not with_geq and min(m for m, _ in candidates) > WIN_TOL_DB:
            # the flat bands' filters join, spread out (step 3 has its own near the top)
            placed = st.placed(candidates[1][1], spare, *st.spread(spare, sample_rate_hz))
            candidates += _gains_then_all(grid, placed, all_filters, p.target, budget,
                                          weights)
        worst, insts = _pick(candidates)  # type: ignore[assignment]
    fit = _fit_with_geq(grid, insts, total, budget, worst, weights) if with_geq else \
        ZamFit(insts, None, worst)
    return ZamFit(quiet_peak_slots(fit.eq2, sample_rate_hz), fit.geq, fit.worst_db)
