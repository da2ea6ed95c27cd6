"""Identification of one song's console from its STFTs (the fit's first steps).

1. ``transfer_functions``: per STFT bin and channel, least squares over frames finds each stem's
   complex transfer to the mix, ``Y_c(t, f) ~ sum_i H_ic(f) X_ic(t, f)``, and its variance.
   Whatever EQ, fader and pan the producer used, ``H`` is its response (magnitude *and* phase).
2. ``prepan_curve``: the pan law is divided out of ``H_L``/``H_R``; what is left is the strip's
   own complex response times its level. ``band_average`` smooths it into 1/24-octave bands and
   weights each band by how well the data pins it down.
The EQ is then fitted to that curve (``mixstyle.fit.eq``).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from dsp.params import TRACK, spec

N_FFT = 4096
HOP = 1024
BANDS_PER_OCTAVE = 24
RIDGE = 1e-3              # relative to the mean stem power per bin


def stft(x: np.ndarray) -> torch.Tensor:
    """(..., T) real -> complex128 (..., F, frames), Hann window N_FFT, hop HOP."""
    t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    flat = t.reshape(-1, t.shape[-1])
    s = torch.stft(flat, N_FFT, HOP, window=torch.hann_window(N_FFT), return_complex=True)
    return s.reshape(*t.shape[:-1], *s.shape[-2:]).to(torch.complex128)


def transfer_functions(xs: torch.Tensor, ys: torch.Tensor
                       ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """xs (N, 2, F, frames), ys (2, F, frames) -> complex H (N, 2, F), stem power per frame
    (N, 2, F) and the variance of each H estimate (N, 2, F): the power the model leaves
    unexplained times the diagonal of the inverse Gram matrix, so a stem that is quiet or
    moves together with another stem in a bin gets a large variance there."""
    n, frames = xs.shape[0], xs.shape[-1]
    a = xs.permute(1, 2, 3, 0)                         # (2, F, frames, N)
    power = (a.abs() ** 2).mean(dim=2)                 # (2, F, N)
    gram = a.conj().transpose(-1, -2) @ a              # (2, F, N, N)
    lam = RIDGE * power.mean(dim=-1, keepdim=True).clamp_min(1e-20) * frames
    gram = gram + torch.diag_embed(lam.expand(-1, -1, n).to(gram.dtype))
    inv = torch.linalg.inv(gram)
    h = (inv @ (a.conj().transpose(-1, -2) @ ys[..., None]))[..., 0]   # (2, F, N)
    resid = (ys - (a @ h[..., None])[..., 0]).abs().pow(2).sum(dim=-1) / max(frames - n, 1)
    var = resid[..., None] * torch.diagonal(inv, dim1=-2, dim2=-1).real
    return h.permute(2, 0, 1), power.permute(2, 0, 1).real, var.permute(2, 0, 1)


def prepan_curve(h: np.ndarray, power: np.ndarray, var: np.ndarray
                 ) -> tuple[float, np.ndarray, np.ndarray]:
    """One stem's H, power and H variance (2, F) -> (pan, complex pre-pan response (F,), its
    variance (F,)). The pan comes from the power-weighted L/R magnitude ratio (constant-power
    law of dsp.gain)."""
    p = power.sum(axis=0) + 1e-30
    g = np.sqrt((np.abs(h) ** 2 * p).sum(axis=1) / p.sum())
    theta = math.atan2(float(g[1]), float(g[0]))
    pan_spec = spec(TRACK, "pan")
    pan = float(np.clip(4.0 * theta / math.pi - 1.0, pan_spec.min, pan_spec.max))
    law = math.sqrt(2.0) * np.array([math.cos(theta), math.sin(theta)])
    norm = max(float((law ** 2).sum()), 1e-12)
    return pan, (law[:, None] * h).sum(axis=0) / norm, (law[:, None] ** 2 * var).sum(axis=0) \
        / norm ** 2


def band_average(curve: np.ndarray, var: np.ndarray, power: np.ndarray, sample_rate: float
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Complex curves, their variances and the stems' power (N, F) at the STFT bins ->
    inverse-variance weighted averages in 1/24-octave bands 20 Hz-20 kHz: (centres_hz (B,),
    curves (N, B), weights (N, B) in 0..1).

    A band's weight is ``snr / (1 + snr)`` (snr = |curve|^2 / variance of the average), times
    a ramp from 0 at 40 dB to 1 at 20 dB under the stem's loudest band: where a stem hardly
    plays, what the transfer model could not explain (other stems, compression) lands on its
    curve and looks certain; it must not steer the EQ fit."""
    freqs = np.fft.rfftfreq(N_FFT, 1.0 / sample_rate)
    top = min(20000.0, 0.45 * sample_rate)
    n_bands = int(math.ceil(math.log2(top / 20.0) * BANDS_PER_OCTAVE))
    edges = 20.0 * 2.0 ** (np.arange(n_bands + 1) / BANDS_PER_OCTAVE)
    band = np.searchsorted(edges, freqs, side="right") - 1
    keep = (band >= 0) & (band < n_bands) & (freqs <= top)
    used = np.unique(band[keep])
    m = np.zeros((used.size, freqs.size))
    m[np.searchsorted(used, band[keep]), np.flatnonzero(keep)] = 1.0
    inv_var = 1.0 / np.maximum(var, 1e-30)
    total = inv_var @ m.T
    out = ((curve * inv_var) @ m.T) / total
    snr = np.abs(out) ** 2 * total
    level = (power @ m.T) / m.sum(axis=1) + 1e-30
    rel_db = 10.0 * np.log10(level / level.max(axis=1, keepdims=True))
    ramp = np.clip((rel_db + 40.0) / 20.0, 0.0, 1.0)
    return (m @ freqs) / m.sum(axis=1), out, ramp * snr / (1.0 + snr)
