"""Numba kernels behind the torch twin's custom autograd functions (no validation here).

Biquad cascade: transposed direct form II per section, float64 state, the same structure as
``dsp.biquad``. Coefficients are ``(rows, sections, 5)`` float64 in the order
``b0, b1, b2, a1, a2`` (a0-normalised). The backward kernel recomputes every section's input in
float64, then runs the adjoint (time-reversed) recursions of all sections in one backward pass.

Gain smoother: the compressor's attack/release recursion in dB (see docs/DESIGN.md). The forward
kernel records which branch each sample took; the backward kernel runs the time-reversed linear
recursion with those per-sample coefficients.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True)
def cascade_forward(x, coeffs, state, y):
    """Filter each row of ``x`` (rows, samples) through its sections; state (rows, sections, 2).

    The TDF-II step is written out here, not ``dsp.biquad``'s: this is the torch twin's forward
    pass, compiled without fastmath and paired with its own adjoint (``_backward_row``), and a
    parity test holds it to the dsp console. Serial on purpose: on 2 shared cores numba threads next to torch's made training slower."""
    rows, samples = x.shape
    sections = coeffs.shape[1]
    for r in range(rows):
        c = coeffs[r]
        z = state[r]
        for n in range(samples):
            v = np.float64(x[r, n])
            for s in range(sections):
                out = c[s, 0] * v + z[s, 0]
                z[s, 0] = c[s, 1] * v - c[s, 3] * out + z[s, 1]
                z[s, 1] = c[s, 2] * v - c[s, 4] * out
                v = out
            y[r, n] = v


@njit(cache=True)
def _backward_row(x, c, grad_y, grad_x, grad_c):
    """One row of ``cascade_backward`` (allocates its float64 scratch once per row)."""
    samples = x.shape[0]
    sections = c.shape[0]
    # work[n + 2, s]: input of section s at sample n (s = sections: the output), 2 zero rows first
    work = np.zeros((samples + 2, sections + 1))
    w1 = np.zeros(sections)
    w2 = np.zeros(sections)
    acc = np.zeros((sections, 5))
    for n in range(samples):
        v = np.float64(x[n])
        work[n + 2, 0] = v
        for s in range(sections):
            out = c[s, 0] * v + w1[s]
            w1[s] = c[s, 1] * v - c[s, 3] * out + w2[s]
            w2[s] = c[s, 2] * v - c[s, 4] * out
            v = out
            work[n + 2, s + 1] = v
    w1[:] = 0.0
    w2[:] = 0.0
    for n in range(samples - 1, -1, -1):
        g = np.float64(grad_y[n])
        i = n + 2
        for s in range(sections - 1, -1, -1):
            w = g - c[s, 3] * w1[s] - c[s, 4] * w2[s]
            acc[s, 0] += w * work[i, s]
            acc[s, 1] += w * work[i - 1, s]
            acc[s, 2] += w * work[i - 2, s]
            acc[s, 3] -= w * work[i - 1, s + 1]
            acc[s, 4] -= w * work[i - 2, s + 1]
            g = c[s, 0] * w + c[s, 1] * w1[s] + c[s, 2] * w2[s]
            w2[s] = w1[s]
            w1[s] = w
        grad_x[n] = g
    grad_c[:, :] = acc


@njit(cache=True)
def cascade_backward(x, coeffs, grad_y, grad_x, grad_coeffs):
    """Gradients of a zero-state cascade w.r.t. ``x`` and ``coeffs``.

    Each row recomputes every section's input in float64, then runs the adjoint backwards in time
    through all sections at once: per section ``w[n] = g[n] - a1 w[n+1] - a2 w[n+2]``,
    ``dL/db_k += w[n] u[n-k]``, ``dL/da_k -= w[n] y[n-k]``, and the gradient handed to the
    previous section is ``b0 w[n] + b1 w[n+1] + b2 w[n+2]``.
    """
    for r in range(x.shape[0]):
        _backward_row(x[r], coeffs[r], grad_y[r], grad_x[r], grad_coeffs[r])


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
