"""Numba kernels behind the torch twin's custom autograd functions (no validation here).

Biquad cascade: transposed direct form II per section, float64 state, the same structure as
``dsp.biquad``. Coefficients are ``(rows, sections, 5)`` float64 in the order
``b0, b1, b2, a1, a2`` (a0-normalised). The backward kernel recomputes every section's input in
float64 and runs the adjoint (time-reversed) recursions section by section.

Gain smoother: the compressor's attack/release recursion in dB (see docs/DESIGN.md). The forward
kernel records which branch each sample took; the backward kernel runs the time-reversed linear
recursion with those per-sample coefficients.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True)
def cascade_forward(x, coeffs, state, y):
    """Filter each row of ``x`` (rows, samples) through its sections; state (rows, sections, 2)."""
    rows, samples = x.shape
    sections = coeffs.shape[1]
    for r in range(rows):
        for n in range(samples):
            v = np.float64(x[r, n])
            for s in range(sections):
                out = coeffs[r, s, 0] * v + state[r, s, 0]
                state[r, s, 0] = coeffs[r, s, 1] * v - coeffs[r, s, 3] * out + state[r, s, 1]
                state[r, s, 1] = coeffs[r, s, 2] * v - coeffs[r, s, 4] * out
                v = out
            y[r, n] = v


@njit(cache=True)
def cascade_backward(x, coeffs, grad_y, work, grad_x, grad_coeffs):
    """Gradients of a zero-state cascade. ``work`` is float64 (sections + 2, samples) scratch.

    Rows 0..sections of ``work`` hold each section's input (and the last output); the last row
    holds the adjoint signal, overwritten section by section from the output back to the input.
    """
    rows, samples = x.shape
    sections = coeffs.shape[1]
    if samples == 0:
        return
    g = work[sections + 1]
    for r in range(rows):
        for n in range(samples):
            work[0, n] = x[r, n]
        for s in range(sections):
            b0, b1, b2 = coeffs[r, s, 0], coeffs[r, s, 1], coeffs[r, s, 2]
            a1, a2 = coeffs[r, s, 3], coeffs[r, s, 4]
            z1 = 0.0
            z2 = 0.0
            for n in range(samples):
                u = work[s, n]
                out = b0 * u + z1
                z1 = b1 * u - a1 * out + z2
                z2 = b2 * u - a2 * out
                work[s + 1, n] = out
        for n in range(samples):
            g[n] = grad_y[r, n]
        for s in range(sections - 1, -1, -1):
            b0, b1, b2 = coeffs[r, s, 0], coeffs[r, s, 1], coeffs[r, s, 2]
            a1, a2 = coeffs[r, s, 3], coeffs[r, s, 4]
            w1 = 0.0
            w2 = 0.0
            db0 = 0.0
            db1 = 0.0
            db2 = 0.0
            da1 = 0.0
            da2 = 0.0
            # n >= 2 without bounds checks, then the first two samples
            for n in range(samples - 1, 1, -1):
                w = g[n] - a1 * w1 - a2 * w2
                db0 += w * work[s, n]
                db1 += w * work[s, n - 1]
                db2 += w * work[s, n - 2]
                da1 -= w * work[s + 1, n - 1]
                da2 -= w * work[s + 1, n - 2]
                g[n] = b0 * w + b1 * w1 + b2 * w2
                w2 = w1
                w1 = w
            if samples >= 2:
                w = g[1] - a1 * w1 - a2 * w2
                db0 += w * work[s, 1]
                db1 += w * work[s, 0]
                da1 -= w * work[s + 1, 0]
                g[1] = b0 * w + b1 * w1 + b2 * w2
                w2 = w1
                w1 = w
            w = g[0] - a1 * w1 - a2 * w2
            db0 += w * work[s, 0]
            g[0] = b0 * w + b1 * w1 + b2 * w2
            grad_coeffs[r, s, 0] = db0
            grad_coeffs[r, s, 1] = db1
            grad_coeffs[r, s, 2] = db2
            grad_coeffs[r, s, 3] = da1
            grad_coeffs[r, s, 4] = da2
        for n in range(samples):
            grad_x[r, n] = g[n]


@njit(cache=True)
def smooth_forward(target_db, alpha_attack, alpha_release, smoothed_db, attack):
    """g_s[n] = a g_s[n-1] + (1 - a) g_c[n], a = attack alpha if g_c[n] < g_s[n-1], g_s[-1] = 0."""
    rows, samples = target_db.shape
    for r in range(rows):
        prev = 0.0
        aa = alpha_attack[r]
        ar = alpha_release[r]
        for n in range(samples):
            gc = target_db[r, n]
            if gc < prev:
                a = aa
                attack[r, n] = 1
            else:
                a = ar
                attack[r, n] = 0
            prev = a * prev + (1.0 - a) * gc
            smoothed_db[r, n] = prev


@njit(cache=True)
def smooth_backward(target_db, smoothed_db, attack, alpha_attack, alpha_release, grad_smoothed,
                    grad_target, grad_alpha_attack, grad_alpha_release):
    """Adjoint of ``smooth_forward`` with the recorded branches held fixed."""
    rows, samples = target_db.shape
    for r in range(rows):
        aa = alpha_attack[r]
        ar = alpha_release[r]
        lam = 0.0
        a_next = 0.0
        d_aa = 0.0
        d_ar = 0.0
        for n in range(samples - 1, -1, -1):
            lam = grad_smoothed[r, n] + a_next * lam
            a = aa if attack[r, n] else ar
            grad_target[r, n] = (1.0 - a) * lam
            prev = smoothed_db[r, n - 1] if n >= 1 else 0.0
            d = lam * (prev - target_db[r, n])
            if attack[r, n]:
                d_aa += d
            else:
                d_ar += d
            a_next = a
        grad_alpha_attack[r] = d_aa
        grad_alpha_release[r] = d_ar
