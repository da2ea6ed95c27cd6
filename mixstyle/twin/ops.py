"""Differentiable building blocks of the torch twin: RBJ biquad design, biquad cascade, smoother.

``biquad_cascade`` runs numba kernels (float64 state) inside a ``torch.autograd.Function``;
``biquad_cascade_lfilter`` is the same cascade through ``torchaudio.functional.lfilter`` (the
reference the tests compare values and gradients against, and a fallback). ``smooth_gain_db`` is
the compressor's attack/release recursion, also a numba-backed autograd function.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torchaudio.functional as AF

from dsp.errors import ParameterError
from mixstyle.twin import kernels as K

HIGHPASS = "highpass"
LOWPASS = "lowpass"
LOW_SHELF = "low_shelf"
HIGH_SHELF = "high_shelf"
PEAK = "peak"
KINDS = (HIGHPASS, LOWPASS, LOW_SHELF, HIGH_SHELF, PEAK)

FREQ_CLAMP = 0.45        # fraction of the sample rate
HPF_BYPASS_HZ = 10.0     # high-pass is identity at or below this (table min)
LPF_BYPASS_HZ = 20000.0  # low-pass is identity at or above this (table max)


def biquad_coeffs(kind: str, freq_hz: torch.Tensor, gain_db: torch.Tensor | float,
                  q: torch.Tensor | float, sample_rate: float) -> torch.Tensor:
    """RBJ cookbook coefficients ``[..., (b0, b1, b2, a1, a2)]`` normalised by a0.

    ``kind`` is one of ``KINDS`` (the ``processor`` names of dsp/params.py). Shelves use slope
    S = 1 and ignore ``q``; pass/peak filters ignore ``gain_db`` where it has no meaning.
    Frequencies are clamped to 0.45 * sample_rate; the high-pass is identity at <= 10 Hz and the
    low-pass at >= 20 kHz (selected with ``torch.where``, so gradients stay finite). Peak and
    shelf at 0 dB are identity up to rounding (b == a), keeping a gradient w.r.t. the gain.
    """
    if kind not in KINDS:
        raise ParameterError(f"biquad kind must be one of {KINDS}, got {kind!r}")
    f = torch.as_tensor(freq_hz)
    dtype = f.dtype if f.is_floating_point() else torch.float64
    f = f.to(dtype)
    g = torch.as_tensor(gain_db, dtype=dtype)
    qq = torch.as_tensor(q, dtype=dtype)
    f, g, qq = torch.broadcast_tensors(f, g, qq)
    fc = torch.clamp(f, max=FREQ_CLAMP * sample_rate)
    w0 = (2.0 * math.pi / sample_rate) * fc
    cw, sw = torch.cos(w0), torch.sin(w0)
    one = torch.ones_like(cw)
    if kind in (HIGHPASS, LOWPASS, PEAK):
        alpha = sw / (2.0 * qq)
    if kind == HIGHPASS:
        b = ((1 + cw) / 2, -(1 + cw), (1 + cw) / 2)
        a = (1 + alpha, -2 * cw, 1 - alpha)
    elif kind == LOWPASS:
        b = ((1 - cw) / 2, 1 - cw, (1 - cw) / 2)
        a = (1 + alpha, -2 * cw, 1 - alpha)
    elif kind == PEAK:
        amp = torch.pow(10.0, g / 40.0)
        b = (1 + alpha * amp, -2 * cw, 1 - alpha * amp)
        a = (1 + alpha / amp, -2 * cw, 1 - alpha / amp)
    else:
        amp = torch.pow(10.0, g / 40.0)
        k = 2.0 * torch.sqrt(amp) * sw / 2.0 * math.sqrt(2.0)  # 2 sqrt(A) alpha, S = 1
        ap, am = amp + 1, amp - 1
        if kind == LOW_SHELF:
            b = (amp * (ap - am * cw + k), 2 * amp * (am - ap * cw), amp * (ap - am * cw - k))
            a = (ap + am * cw + k, -2 * (am + ap * cw), ap + am * cw - k)
        else:
            b = (amp * (ap + am * cw + k), -2 * amp * (am + ap * cw), amp * (ap + am * cw - k))
            a = (ap - am * cw + k, 2 * (am - ap * cw), ap - am * cw - k)
    coeffs = torch.stack([b[0] / a[0], b[1] / a[0], b[2] / a[0], a[1] / a[0], a[2] / a[0]], -1)
    bypass = None
    if kind == HIGHPASS:
        bypass = f <= HPF_BYPASS_HZ
    elif kind == LOWPASS:
        bypass = f >= LPF_BYPASS_HZ
    if bypass is not None:
        ident = torch.stack([one, 0 * one, 0 * one, 0 * one, 0 * one], -1)
        coeffs = torch.where(bypass.unsqueeze(-1), ident, coeffs)
    return coeffs


class _Cascade(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, coeffs):  # type: ignore[override]
        xn = x.detach().contiguous().numpy()
        cn = coeffs.detach().to(torch.float64).contiguous().numpy()
        y = np.empty_like(xn)
        state = np.zeros(cn.shape[:2] + (2,), dtype=np.float64)
        K.cascade_forward(xn, cn, state, y)
        ctx.save_for_backward(x, coeffs)
        return torch.from_numpy(y)

    @staticmethod
    def backward(ctx, grad_y):  # type: ignore[override]
        x, coeffs = ctx.saved_tensors
        xn = x.detach().contiguous().numpy()
        cn = coeffs.detach().to(torch.float64).contiguous().numpy()
        gy = grad_y.detach().contiguous().to(x.dtype).numpy()
        gx = np.empty_like(xn)
        gc = np.empty(cn.shape, dtype=np.float64)
        K.cascade_backward(xn, cn, gy, gx, gc)
        return torch.from_numpy(gx), torch.from_numpy(gc).to(coeffs.dtype)


def biquad_cascade(x: torch.Tensor, coeffs: torch.Tensor) -> torch.Tensor:
    """Filter ``x`` (rows, samples) through ``coeffs`` (rows, sections, 5), zero initial state.

    Float64 state inside numba kernels; output has the dtype of ``x``. Differentiable w.r.t.
    ``x`` and ``coeffs``. CPU tensors only.
    """
    return _Cascade.apply(x, coeffs)


def biquad_cascade_lfilter(x: torch.Tensor, coeffs: torch.Tensor) -> torch.Tensor:
    """Same cascade through ``torchaudio.functional.lfilter`` (clamp off, one filter per row)."""
    y = x
    ones = torch.ones_like(coeffs[:, 0, :1])
    for s in range(coeffs.shape[1]):
        c = coeffs[:, s].to(x.dtype)
        a = torch.cat([ones.to(x.dtype), c[:, 3:5]], dim=1)
        y = AF.lfilter(y, a, c[:, 0:3], clamp=False, batching=True)
    return y


class _Smoother(torch.autograd.Function):
    @staticmethod
    def forward(ctx, target_db, alpha_attack, alpha_release):  # type: ignore[override]
        gc = target_db.detach().to(torch.float64).contiguous().numpy()
        aa = alpha_attack.detach().to(torch.float64).contiguous().numpy()
        ar = alpha_release.detach().to(torch.float64).contiguous().numpy()
        gs = np.empty_like(gc)
        attack = np.empty(gc.shape, dtype=np.uint8)
        K.smooth_forward(gc, aa, ar, gs, attack)
        out = torch.from_numpy(gs)
        ctx.save_for_backward(target_db, alpha_attack, alpha_release, out,
                              torch.from_numpy(attack))
        return out.to(target_db.dtype)

    @staticmethod
    def backward(ctx, grad_out):  # type: ignore[override]
        target_db, alpha_attack, alpha_release, gs, attack = ctx.saved_tensors
        gc = target_db.detach().to(torch.float64).contiguous().numpy()
        aa = alpha_attack.detach().to(torch.float64).contiguous().numpy()
        ar = alpha_release.detach().to(torch.float64).contiguous().numpy()
        go = grad_out.detach().to(torch.float64).contiguous().numpy()
        g_target = np.empty_like(gc)
        g_aa = np.empty_like(aa)
        g_ar = np.empty_like(ar)
        K.smooth_backward(gc, gs.numpy(), attack.numpy(), aa, ar, go, g_target, g_aa, g_ar)
        return (torch.from_numpy(g_target).to(target_db.dtype),
                torch.from_numpy(g_aa).to(alpha_attack.dtype),
                torch.from_numpy(g_ar).to(alpha_release.dtype))


def smooth_gain_db(target_db: torch.Tensor, alpha_attack: torch.Tensor,
                   alpha_release: torch.Tensor) -> torch.Tensor:
    """Attack/release smoothing of a gain curve in dB: ``target_db`` (rows, samples), alphas (rows,).

    ``a = alpha_attack if g_c[n] < g_s[n-1] else alpha_release``; ``g_s[n] = a g_s[n-1] +
    (1 - a) g_c[n]``; ``g_s[-1] = 0``. Gradients flow to the curve and to both alphas (the
    branch taken at each sample is held fixed, as for any piecewise-smooth function).
    """
    return _Smoother.apply(target_db, alpha_attack, alpha_release)


def time_to_alpha(time_ms: torch.Tensor, sample_rate: float) -> torch.Tensor:
    """One-pole coefficient ``exp(-1 / (time_ms / 1000 * sample_rate))``."""
    return torch.exp(-1000.0 / (time_ms * sample_rate))
