"""The compressor search of one stem, in the time domain, against the stem's own contribution
to the mix (``fit_compressor``). For given threshold/ratio/knee/attack/release the best left/right
gains are a linear least-squares problem (variable projection), so only the five compressor
parameters are searched: a coarse grid, then Nelder-Mead in the table's normalised units.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.optimize
from numba import njit

from dsp.compressor import static_gain_db
from dsp.gain import FASTMATH, fast_exp
from dsp.params import TRACK, spec

COMP_NAMES = ("comp_threshold_db", "comp_ratio", "comp_knee_db", "comp_attack_ms",
              "comp_release_ms")
GRID_TIMES_MS = ((1.0, 40.0), (10.0, 150.0))   # (attack, release) of the compressor grid
_LN10_20 = math.log(10.0) / 20.0


@njit(cache=True, fastmath=FASTMATH, error_model="numpy")
def _gain_db_kernel(level_db, t_db, ratio, knee_db, a_att, a_rel, out):
    """Smoothed compressor gain (dB) of the static curve at ``level_db`` (docs/DESIGN.md).

    The static curve is dsp's own (``dsp.compressor.static_gain_db``, bit for bit what was
    written here before). The smoothing is not ``dsp.compressor.smooth_db``/``tick``, on
    purpose: the detector here is the exact ``log10`` level (``level_db``), not dsp's
    polynomial log, there is no idle shortcut or settling to 0 dB, and the attack/release
    step is written as two candidates, ``a gs + (1 - a) gc`` for each coefficient, and a
    select: the loop-carried chain is one multiply-add and the select instead of a subtract,
    the select and a multiply-add. dsp's form ``gc + a (gs - gc)`` rounds differently, and
    the fitted settings (hence learned profiles) are bit-identical only with this one."""
    slope = 1.0 / ratio - 1.0
    inv_2w = 0.5 / knee_db if knee_db > 0.0 else 0.0
    b_att = 1.0 - a_att
    b_rel = 1.0 - a_rel
    gs = 0.0
    for n in range(level_db.shape[0]):
        gc = static_gain_db(level_db[n], t_db, knee_db, slope, inv_2w)
        attack = a_att * gs + b_att * gc
        release = a_rel * gs + b_rel * gc
        gs = attack if gc < gs else release
        out[n] = gs


_SUM = {"reassoc", "contract", "nsz"}   # plain sums: any order, so that they vectorise


@njit(cache=True, fastmath=_SUM, error_model="numpy")
def _weighted_sums(gain_db, prod, energy, sums):
    """With m = 10**(gain_db/20): sums = (sum m prod_L, sum m prod_R, sum m^2 energy_L, .. R)."""
    s0 = s1 = s2 = s3 = 0.0
    for n in range(gain_db.shape[0]):
        m = fast_exp(gain_db[n] * _LN10_20)
        s0 += m * prod[0, n]
        s1 += m * prod[1, n]
        m2 = m * m
        s2 += m2 * energy[0, n]
        s3 += m2 * energy[1, n]
    sums[0] = s0
    sums[1] = s1
    sums[2] = s2
    sums[3] = s3


@njit(cache=True, fastmath=FASTMATH, error_model="numpy")
def _projection_kernel(level_db, prod, energy, t_db, ratio, knee_db, a_att, a_rel, work, sums):
    """``_weighted_sums`` of the compressor's gain; ``work`` (n,) receives g_s in dB. Only the
    gain recursion is serial; the sums are a second pass that vectorises."""
    _gain_db_kernel(level_db, t_db, ratio, knee_db, a_att, a_rel, work)
    _weighted_sums(work, prod, energy, sums)


def _alpha(time_ms: float, sample_rate: float) -> float:
    return math.exp(-1.0 / (time_ms / 1000.0 * sample_rate))


@dataclass(frozen=True)
class CompFit:
    """A stem's compressor and output gains fitted against its contribution to the mix.

    ``values`` holds the COMP_NAMES; ``gains`` the linear L/R gains after the compressor (pan
    law x output gain); ``error``/``baseline`` the squared error with this compressor and with
    none (ratio 1), ``target_energy`` the target's energy (all sums over samples and channels).
    """

    values: dict[str, float]
    gains: tuple[float, float]
    error: float
    baseline: float
    target_energy: float

    @property
    def compressed(self) -> bool:
        return self.values["comp_ratio"] > 1.0


def level_db(audio: np.ndarray) -> np.ndarray:
    """The compressor's detector: stereo-linked sample peak in dB (floor -200 dB)."""
    peak = np.max(np.abs(audio.astype(np.float64)), axis=0)
    return 20.0 * np.log10(np.maximum(peak, 1e-10))


def gain_curve_db(level: np.ndarray, values: dict[str, float], sample_rate: float) -> np.ndarray:
    """Smoothed gain (dB, <= 0) per sample of the compressor ``values`` (COMP_NAMES)."""
    out = np.empty_like(level)
    if values["comp_ratio"] > 1.0:
        _gain_db_kernel(level, values["comp_threshold_db"], values["comp_ratio"],
                        values["comp_knee_db"], _alpha(values["comp_attack_ms"], sample_rate),
                        _alpha(values["comp_release_ms"], sample_rate), out)
    else:
        out[:] = 0.0
    return out


def uncompressed() -> dict[str, float]:
    """The neutral compressor (ratio 1) with the table's neutral times and knee."""
    return {name: float(spec(TRACK, name).neutral) for name in COMP_NAMES}


# The plausible region of a track compressor (what an engineer would set, docs/LEARNING.md):
# the search may leave it only where the audio demands it (see fit_compressor).
PLAUSIBLE = {"comp_ratio": (1.5, 10.0), "comp_attack_ms": (1.0, 50.0),
             "comp_release_ms": (30.0, 500.0)}
PLAUSIBLE_GR_DB = 15.0    # gain reduction at the loud parts (dB)
# inside the region a much weaker pull toward a typical setting: where the audio cannot tell
# ratios apart (it rarely can once the gain reduction is fixed), 4:1 rather than 18:1
TYPICAL = {"comp_ratio": 4.0, "comp_attack_ms": 10.0, "comp_release_ms": 120.0}
CENTRE_WEIGHT = 0.1       # relative to the out-of-region penalty
GR_MAX_DB = 40.0          # the search's range of gain reduction at the loud parts
PRIOR_WEIGHT = 0.05       # penalty per (octave of ratio, decade of time, 10 dB of GR)^2,
                          # relative to the uncompressed squared error
TOLERANCE = 0.5           # a more plausible fit may have this much more squared error
                          # (+1.8 dB of this stem's residual) ...
TOLERANCE_FLOOR = 0.002   # ... plus this fraction of the uncompressed squared error
GRID_GR_DB = (1.0, 2.0, 4.0, 6.0, 9.0, 12.0, 16.0, 20.0, 26.0, 34.0)


def loud_level_db(level: np.ndarray, sample_rate: float) -> float:
    """The detector's level at the stem's loud parts: the 95th percentile of the 50 ms blocks'
    peaks (dB). Gain reduction is searched at this level, so that ratio and amount are apart."""
    block = max(1, int(0.05 * sample_rate))
    n = level.shape[0] // block
    if n == 0:
        return float(level.max())
    return float(np.percentile(level[:n * block].reshape(n, block).max(axis=1), 95.0))


def threshold_db(gr_db: float, ratio: float, loud_db: float) -> float:
    """The threshold (dBFS, table range) whose static curve (hard knee) takes ``gr_db`` off the
    level ``loud_db``: gr = (loud - T)(1 - 1/R)."""
    if ratio <= 1.0 + 1e-9:
        return 0.0
    return float(np.clip(loud_db - gr_db * ratio / (ratio - 1.0), -60.0, 0.0))


def loud_gain_reduction_db(values: dict[str, float], loud_db: float) -> float:
    """The static gain reduction (dB, hard knee) of ``values`` at the level ``loud_db``."""
    if values["comp_ratio"] <= 1.0:
        return 0.0
    return max(loud_db - values["comp_threshold_db"], 0.0) * (1.0 - 1.0 / values["comp_ratio"])


def implausibility(values: dict[str, float], gr_db: float) -> float:
    """0 inside the plausible region, else the squared distance out of it: octaves of ratio,
    decades of attack/release, tens of dB of gain reduction."""
    def out(x: float, lo: float, hi: float) -> float:
        return max(lo - x, 0.0, x - hi)
    r_lo, r_hi = PLAUSIBLE["comp_ratio"]
    d = [out(math.log2(max(values["comp_ratio"], 1.0)), math.log2(r_lo), math.log2(r_hi))]
    for name in ("comp_attack_ms", "comp_release_ms"):
        lo, hi = PLAUSIBLE[name]
        d.append(out(math.log10(values[name]), math.log10(lo), math.log10(hi)))
    d.append(max(gr_db - PLAUSIBLE_GR_DB, 0.0) / 10.0)
    c = [math.log2(max(values["comp_ratio"], 1.0) / TYPICAL["comp_ratio"])] + [
        math.log10(values[n] / TYPICAL[n]) for n in ("comp_attack_ms", "comp_release_ms")]
    return float(sum(x * x for x in d) + CENTRE_WEIGHT * sum(x * x for x in c))


def gain_envelope_floor(eq_outs: np.ndarray, target: np.ndarray, sample_rate: float,
                        block_s: float = 0.01) -> float:
    """The squared error of ``target`` (2, n) left by the best gains per channel and block of
    ``block_s``, one per stem of ``eq_outs`` (N, 2, n) (least squares, float64): what no gain
    envelope of these stems, so no compressor on them, explains (a reverb return, a noise)."""
    b = max(1, int(round(block_s * sample_rate)))
    n = target.shape[-1] // b * b
    e = eq_outs[..., :n].reshape(eq_outs.shape[0], eq_outs.shape[1], -1, b).transpose(1, 2, 0, 3)
    r = target[:, :n].reshape(target.shape[0], -1, b)
    gram = np.einsum("cbik,cbjk->cbij", e, e)                  # (2, blocks, N, N)
    gram += np.eye(e.shape[2]) * (1e-9 * np.trace(gram, axis1=-2, axis2=-1)[..., None, None]
                                  + 1e-30)
    proj = np.einsum("cbik,cbk->cbi", e, r)
    g = np.linalg.solve(gram, proj[..., None])[..., 0]
    left = float((target * target).sum() - np.einsum("cbi,cbi->", g, proj))
    return max(left, 0.0)


def fit_compressor(eq_out: np.ndarray, target: np.ndarray, sample_rate: float,
                   start: dict[str, float] | None = None, max_evals: int = 240,
                   accept: float = 0.1, floor: float = 0.0) -> CompFit:
    """Compressor + L/R gains so that ``gains * 10**(g_s/20) * eq_out ~ target`` (both (2, n)).

    ``eq_out`` is the stem after the strip's EQ (what the compressor's detector sees). The
    search runs over gain reduction at the loud parts, ratio, knee, attack and release (the
    threshold follows from the first two), so that ratio and amount are separate questions.
    A grid (or a compressing ``start``) seeds two Nelder-Mead searches, half of ``max_evals``
    each: one on the squared error alone, one with a mild prior that grows outside the
    plausible region (``PLAUSIBLE``). Of the two, the more plausible is kept unless its squared
    error exceeds the other's by more than ``TOLERANCE`` of it (plus ``TOLERANCE_FLOOR`` of the
    uncompressed error): a tolerance, not an exact comparison, so that rounding on another CPU
    cannot flip the choice, and a setting the audio pins down exactly (our own compressor) is
    still found exactly. Our compressor is
    not the producer's: several settings of ours sound alike, and the plausible one is the one
    an engineer reads as theirs. Compression is kept only if it removes more than the fraction
    ``accept`` of the uncompressed squared error less ``floor`` (what no gain envelope of any
    stem explains, ``gain_envelope_floor``: a reverb return printed in the mix) and more than
    1e-4 of the target's energy (else ratio 1): a compressor must not soak up what other
    stages left unexplained, nor be hidden by what no compressor could explain."""
    e = eq_out.astype(np.float64)
    r = target.astype(np.float64)
    level = level_db(e)
    loud = loud_level_db(level, sample_rate)
    prod = np.ascontiguousarray(r * e)
    energy = np.ascontiguousarray(e * e)
    total = float((r * r).sum())
    sums, work = np.zeros(4), np.empty_like(level)
    specs = [spec(TRACK, name) for name in COMP_NAMES[1:]]   # ratio, knee, attack, release

    def explained(values: dict[str, float]) -> tuple[float, tuple[float, float]]:
        _projection_kernel(level, prod, energy, values["comp_threshold_db"],
                           values["comp_ratio"], values["comp_knee_db"],
                           _alpha(values["comp_attack_ms"], sample_rate),
                           _alpha(values["comp_release_ms"], sample_rate), work, sums)
        g = tuple(max(sums[c], 0.0) / max(sums[2 + c], 1e-30) for c in (0, 1))
        return sum(max(sums[c], 0.0) * g[c] for c in (0, 1)), g  # type: ignore[return-value]

    def values_of(u: np.ndarray) -> tuple[dict[str, float], float]:
        u = np.clip(u, 0.0, 1.0)
        v = {p.name: float(np.clip(p.denormalise(float(x)), p.min, p.max))
             for p, x in zip(specs, u[1:])}
        gr = float(u[0]) * GR_MAX_DB
        v["comp_threshold_db"] = threshold_db(gr, v["comp_ratio"], loud)
        return v, gr

    def u_of(values: dict[str, float]) -> np.ndarray:
        gr = min(loud_gain_reduction_db(values, loud), GR_MAX_DB)
        return np.array([gr / GR_MAX_DB] + [p.normalise(values[p.name]) for p in specs])

    neutral_values = uncompressed()
    base, base_gains = explained(neutral_values)
    # what a compressor could explain at most: the uncompressed squared error less ``floor``,
    # the part of the target no gain envelope of any stem explains (``gain_envelope_floor``)
    room = max(total - base - floor, 0.0)
    need = max(accept * room, 1e-4 * total)   # improvement that keeps a compressor
    neutral_fit = CompFit(neutral_values, (float(base_gains[0]), float(base_gains[1])),
                          total - base, total - base, total)
    scale = max(room, 1e-30)

    def cost(u: np.ndarray, weight: float) -> float:
        v, gr = values_of(u)
        return (total - explained(v)[0]) / scale + weight * implausibility(v, gr)

    if start is not None and start["comp_ratio"] > 1.0:
        seeds, step = [u_of(start)] * 2, 0.03
    else:  # gain reduction x ratio x times; no promise there, no search
        grid = []
        for gr in GRID_GR_DB:
            for ratio in (2.0, 4.0, 10.0):
                for attack_ms, release_ms in GRID_TIMES_MS:
                    v = dict(neutral_values, comp_ratio=ratio, comp_attack_ms=attack_ms,
                             comp_release_ms=release_ms,
                             comp_threshold_db=threshold_db(gr, ratio, loud))
                    u = u_of(dict(v))
                    u[0] = gr / GR_MAX_DB
                    grid.append((explained(v)[0], gr, u))
        if max(g[0] for g in grid) - base < 0.25 * need:
            return neutral_fit
        best = max(grid, key=lambda g: g[0])
        plausible = max(grid, key=lambda g: g[0] - PRIOR_WEIGHT * scale
                        * (max(g[1] - PLAUSIBLE_GR_DB, 0.0) / 10.0) ** 2)
        seeds, step = [best[2], plausible[2]], 0.08
    found = []
    for seed, weight in zip(seeds, (0.0, PRIOR_WEIGHT)):
        res = scipy.optimize.minimize(cost, seed, args=(weight,), method="Nelder-Mead",
                                      bounds=[(0.0, 1.0)] * 5,
                                      options={"maxfev": max(10, max_evals // 2),
                                               "xatol": 2e-4, "fatol": 1e-7 * base / scale,
                                               "initial_simplex": _simplex(seed, step)})
        values, gr = values_of(res.x)
        gain, gains = explained(values)
        found.append((total - gain, implausibility(values, gr), values, gains))
    least = min(f[0] for f in found)
    slack = TOLERANCE * least + TOLERANCE_FLOOR * scale
    within = [f for f in found if f[0] - least <= slack]
    err, _, values, gains = min(within, key=lambda f: (f[1], f[0]))
    if total - err - base <= need or values["comp_ratio"] <= 1.0 + 1e-6:
        return neutral_fit
    return CompFit(values, (float(gains[0]), float(gains[1])), err, total - base, total)


def _simplex(u0: np.ndarray, step: float = 0.08) -> np.ndarray:
    """Nelder-Mead start simplex inside [0, 1]: steps away from the nearer bound."""
    pts = [u0.copy()]
    for j in range(u0.size):
        p = u0.copy()
        p[j] = p[j] + step if p[j] + step <= 1.0 else p[j] - step
        pts.append(p)
    return np.array(pts)
