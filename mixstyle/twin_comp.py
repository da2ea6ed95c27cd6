"""The whole compressor of the twin as ONE autograd op with numba forward and backward.

Same maths as docs/DESIGN.md and ``dsp.compressor`` (stereo-linked peak detector, soft-knee
static curve, dB-domain attack/release smoothing, make-up), but fused: torch would otherwise
materialise a dozen full-length float64 tensors per strip and their gradients, which made the
twin's compressor cost more than all its filters together.

Backward (per row; G = dL/dy, g = linear gain, gs = smoothed gain dB, gc = target gain dB):
    h[n]   = (sum_c G_c[n] x_c[n]) g[n] ln10/20           (dL/dgs[n], direct)
    lam[n] = h[n] + a[n+1] lam[n+1]                       (adjoint of the recursion)
    dL/dgc[n] = (1 - a[n]) lam[n];  dL/d alpha_(attack|release) += lam[n] (gs[n-1] - gc[n])
    dL/dd[n]  = dL/dgc[n] * dgc/dd;  dL/dT, dL/dR, dL/dW from the static curve's partials
    dL/dx_c[n] = G_c[n] g[n] + [c = loudest channel] dL/dd[n] 20/(ln10 |x|) sign(x)
"""

from __future__ import annotations

import math

import numpy as np
import torch
from numba import njit, prange

_LN10_20 = math.log(10.0) / 20.0
_FLOOR = 1e-10


@njit(cache=True, inline="always")
def _static(d, t, r, w):
    """(gc, dgc/dd, dgc/dT, dgc/dR, dgc/dW) of the soft-knee curve at level d (dB)."""
    slope = 1.0 / r - 1.0
    if 2.0 * (d - t) < -w:
        return 0.0, 0.0, 0.0, 0.0, 0.0
    if w > 0.0 and 2.0 * abs(d - t) <= w:
        u = d - t + w / 2.0
        gc = slope * u * u / (2.0 * w)
        dd = slope * u / w
        return gc, dd, -dd, -(u * u / (2.0 * w)) / (r * r), slope * u * (w - u) / (2.0 * w * w)
    return slope * (d - t), slope, -slope, -(d - t) / (r * r), 0.0


@njit(cache=True, parallel=True)
def _forward(x, prm, y, gs, attack):
    """x (R, C, T); prm (R, 6) = T, ratio, knee, alpha_a, alpha_r, makeup_db -> y, gs, attack."""
    rows, chans, n = x.shape
    for r in prange(rows):
        t, ratio, w, aa, ar, mk = prm[r, 0], prm[r, 1], prm[r, 2], prm[r, 3], prm[r, 4], prm[r, 5]
        prev = 0.0
        for i in range(n):
            p = 0.0
            for c in range(chans):
                v = abs(np.float64(x[r, c, i]))
                if v > p:
                    p = v
            d = 20.0 * math.log10(max(p, _FLOOR))
            gc = _static(d, t, ratio, w)[0]
            att = gc < prev
            a = aa if att else ar
            prev = a * prev + (1.0 - a) * gc
            gs[r, i] = prev
            attack[r, i] = att
            g = math.exp((prev + mk) * _LN10_20)
            for c in range(chans):
                y[r, c, i] = x[r, c, i] * g


@njit(cache=True, parallel=True)
def _backward(x, prm, gs, attack, gy, gx, gprm):
    rows, chans, n = x.shape
    for r in prange(rows):
        t, ratio, w, aa, ar, mk = prm[r, 0], prm[r, 1], prm[r, 2], prm[r, 3], prm[r, 4], prm[r, 5]
        lam_next = 0.0
        a_next = 0.0
        d_t = d_r = d_w = d_aa = d_ar = d_mk = 0.0
        for i in range(n - 1, -1, -1):
            g = math.exp((gs[r, i] + mk) * _LN10_20)
            s = 0.0
            p = 0.0
            loud = 0
            for c in range(chans):
                xv = np.float64(x[r, c, i])
                s += np.float64(gy[r, c, i]) * xv
                gx[r, c, i] = gy[r, c, i] * g
                if abs(xv) > p:
                    p = abs(xv)
                    loud = c
            h = s * g * _LN10_20
            d_mk += h
            lam = h + a_next * lam_next
            a = aa if attack[r, i] else ar
            d = 20.0 * math.log10(max(p, _FLOOR))
            gc, dd, dt, dr, dw = _static(d, t, ratio, w)
            prev = gs[r, i - 1] if i > 0 else 0.0
            if attack[r, i]:
                d_aa += lam * (prev - gc)
            else:
                d_ar += lam * (prev - gc)
            g_gc = (1.0 - a) * lam
            d_t += g_gc * dt
            d_r += g_gc * dr
            d_w += g_gc * dw
            if p > _FLOOR and dd != 0.0:
                xv = np.float64(x[r, loud, i])
                sign = 1.0 if xv > 0 else -1.0
                gx[r, loud, i] += g_gc * dd * 20.0 / (math.log(10.0) * p) * sign
            lam_next = lam
            a_next = a
        gprm[r, 0] = d_t
        gprm[r, 1] = d_r
        gprm[r, 2] = d_w
        gprm[r, 3] = d_aa
        gprm[r, 4] = d_ar
        gprm[r, 5] = d_mk


class _Compressor(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, prm: torch.Tensor):  # type: ignore[override]
        xs = x.detach().contiguous().numpy()
        ps = prm.detach().to(torch.float64).contiguous().numpy()
        y = np.empty_like(xs)
        gs = np.empty(xs.shape[::2], dtype=np.float64)
        attack = np.empty(xs.shape[::2], dtype=np.bool_)
        _forward(xs, ps, y, gs, attack)
        ctx.save_for_backward(x, prm)
        ctx.gs, ctx.attack = gs, attack
        out_gs = torch.from_numpy(gs)
        ctx.mark_non_differentiable(out_gs)
        return torch.from_numpy(y), out_gs

    @staticmethod
    def backward(ctx, gy: torch.Tensor, _ggs: torch.Tensor):  # type: ignore[override]
        x, prm = ctx.saved_tensors
        xs = x.detach().contiguous().numpy()
        ps = prm.detach().to(torch.float64).contiguous().numpy()
        gys = gy.detach().to(x.dtype).contiguous().numpy()
        gx = np.empty_like(xs)
        gp = np.empty(ps.shape, dtype=np.float64)
        _backward(xs, ps, ctx.gs, ctx.attack, gys, gx, gp)
        return torch.from_numpy(gx), torch.from_numpy(gp).to(prm.dtype)


def compress(x: torch.Tensor, threshold_db: torch.Tensor, ratio: torch.Tensor,
             knee_db: torch.Tensor, alpha_attack: torch.Tensor, alpha_release: torch.Tensor,
             makeup_db: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """x (rows, channels, samples); parameters (rows,). Returns (y, smoothed gain dB (rows, T)).

    Gradients flow to x and to every parameter (the alphas: map times with
    ``alpha = exp(-1 / (time_s * sample_rate))`` in torch before calling).
    """
    prm = torch.stack([threshold_db, ratio, knee_db, alpha_attack, alpha_release, makeup_db],
                      dim=1)
    return _Compressor.apply(x, prm)
