"""A small bounded Levenberg-Marquardt least-squares solver for the preset fits, whose linear
algebra (normal equations, Cholesky) is numba loops in one fixed order: no BLAS or LAPACK, so
a fit takes the same steps whichever BLAS kernels (OPENBLAS_CORETYPE) and core count a machine
has. (scipy's least_squares runs SVDs and QRs through LAPACK: the fit's results changed with
the OpenBLAS kernel family.)

Bounds: a step is clipped into the box, and a parameter at a bound whose gradient pushes it out
is held there for that step (a projected Levenberg-Marquardt; the fits have up to ~70
parameters, a few hundred residuals).
"""

from __future__ import annotations

from typing import Callable

import numpy as np
from numba import njit

FTOL = 1e-9         # stop when a step lowers the cost by less than this fraction
XTOL = 1e-10        # or moves the parameters by less than this (relative)
MU_START = 1e-3     # damping, relative to the Jacobian's column norms
ACTIVE_ROUNDS = 4   # re-solves of a step after parameters stop at a bound
SCALE_FLOOR = 1e-3  # no parameter is damped less than this share of the most damped


@njit(cache=True)
def _normal_equations(jac: np.ndarray, res: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(J^T J, J^T r), summed row by row in index order."""
    m, n = jac.shape
    a = np.zeros((n, n))
    g = np.zeros(n)
    for i in range(m):
        ri = res[i]
        for j in range(n):
            v = jac[i, j]
            if v == 0.0:
                continue
            g[j] += v * ri
            for k in range(j, n):
                a[j, k] += v * jac[i, k]
    for j in range(n):
        for k in range(j):
            a[j, k] = a[k, j]
    return a, g


@njit(cache=True)
def _damped_step(a: np.ndarray, g: np.ndarray, scale: np.ndarray, mu: float,
                 free: np.ndarray, fixed: np.ndarray) -> np.ndarray:
    """Solve (A + mu diag(scale)) s = -g for the free parameters (Cholesky), the others'
    steps being ``fixed`` (0 at a bound, or the way to it). A failed factorisation (not
    positive definite) returns NaNs."""
    idx = np.nonzero(free)[0]
    n = idx.size
    low = np.zeros((n, n))
    for p in range(n):
        for q in range(p + 1):
            s = a[idx[p], idx[q]] + (mu * scale[idx[p]] if p == q else 0.0)
            for r in range(q):
                s -= low[p, r] * low[q, r]
            if p == q:
                if s <= 0.0:
                    return np.full(g.size, np.nan)
                low[p, p] = np.sqrt(s)
            else:
                low[p, q] = s / low[q, q]
    rhs = -g.copy()
    for j in range(g.size):
        if not free[j] and fixed[j] != 0.0:
            for p in range(n):
                rhs[idx[p]] -= a[idx[p], j] * fixed[j]
    z = np.zeros(n)
    for p in range(n):
        s = rhs[idx[p]]
        for r in range(p):
            s -= low[p, r] * z[r]
        z[p] = s / low[p, p]
    step = np.where(free, 0.0, fixed)
    for p in range(n - 1, -1, -1):
        s = z[p]
        for r in range(p + 1, n):
            s -= low[r, p] * step[idx[r]]
        step[idx[p]] = s / low[p, p]
    return step


@njit(cache=True)
def _sum_squares(v: np.ndarray) -> float:
    s = 0.0
    for x in v:
        s += x * x
    return s


@njit(cache=True)
def _predicted_drop(a: np.ndarray, g: np.ndarray, d: np.ndarray) -> float:
    """-(g.d + d.A.d / 2): the cost drop the linear model predicts for step d."""
    n = d.size
    lin, quad = 0.0, 0.0
    for j in range(n):
        lin += g[j] * d[j]
        s = 0.0
        for k in range(n):
            s += a[j, k] * d[k]
        quad += d[j] * s
    return -(lin + 0.5 * quad)


def _bounded_step(a: np.ndarray, g: np.ndarray, scale: np.ndarray, mu: float, x: np.ndarray,
                  lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """The damped step within the box: a parameter at a bound that the gradient pushes out
    stays there; one whose step would cross a bound stops at it, and the others are solved
    again with that (a few rounds at most)."""
    free = ~(((x <= lo) & (g > 0.0)) | ((x >= hi) & (g < 0.0)))
    fixed = np.zeros_like(x)
    step = fixed
    for _ in range(ACTIVE_ROUNDS):
        step = _damped_step(a, g, scale, mu, free, fixed)
        if not np.all(np.isfinite(step)):
            return step
        out = free & ((x + step < lo) | (x + step > hi))
        if not out.any():
            return step
        fixed = np.where(out, np.clip(x + step, lo, hi) - x, fixed)
        free = free & ~out
    return step


def _floor(scale: np.ndarray) -> np.ndarray:
    """Damping scale per parameter: its Jacobian column's squared norm, at least
    ``SCALE_FLOOR`` of the largest (a filter near 0 dB has almost no say in its frequency:
    undamped, that frequency would jump)."""
    return np.maximum(scale, max(SCALE_FLOOR * float(scale.max()), 1e-12))


def bounded_least_squares(fun: Callable[[np.ndarray], np.ndarray],
                          jac: Callable[[np.ndarray], np.ndarray], x0: np.ndarray,
                          lo: np.ndarray, hi: np.ndarray, max_nfev: int,
                          max_step: np.ndarray | None = None) -> np.ndarray:
    """Parameters within ``lo`` .. ``hi`` that (locally) minimise ``sum(fun(x)**2)``, from
    ``x0``, with at most ``max_nfev`` evaluations of ``fun``; ``jac(x)`` is its Jacobian."""
    x = np.clip(np.asarray(x0, dtype=np.float64), lo, hi)
    r = np.asarray(fun(x), dtype=np.float64)
    cost = 0.5 * _sum_squares(r)
    a, g = _normal_equations(np.ascontiguousarray(jac(x)), r)
    scale = _floor(np.diag(a).copy())
    mu, grow, nfev = MU_START, 2.0, 1
    while nfev < max_nfev and cost > 0.0:
        step = _bounded_step(a, g, scale, mu, x, lo, hi)
        if not np.all(np.isfinite(step)):
            mu, grow = mu * grow, grow * 2.0
            if mu > 1e12:
                break
            continue
        if max_step is not None:
            over = float(np.max(np.abs(step) / max_step))
            if over > 1.0:
                step = step / over
        x_new = np.clip(x + step, lo, hi)
        d = x_new - x
        if np.sqrt(_sum_squares(d)) <= XTOL * (np.sqrt(_sum_squares(x)) + XTOL):
            break
        r_new = np.asarray(fun(x_new), dtype=np.float64)
        nfev += 1
        cost_new = 0.5 * _sum_squares(r_new)
        predicted = _predicted_drop(a, g, d)
        rho = (cost - cost_new) / predicted if predicted > 0.0 else -1.0
        if rho > 1e-4 and np.isfinite(cost_new):
            done = cost - cost_new <= FTOL * cost
            x, r, cost = x_new, r_new, cost_new
            if done:
                break
            a, g = _normal_equations(np.ascontiguousarray(jac(x)), r)
            scale = _floor(np.maximum(scale, np.diag(a)))
            mu *= max(1.0 / 3.0, 1.0 - (2.0 * rho - 1.0) ** 3)
            grow = 2.0
        else:
            mu, grow = mu * grow, grow * 2.0
            if mu > 1e12:
                break
    return x
