"""First guess of a song's console setting by system identification, before the audio fit.

1. Transfer: per STFT bin and channel, least squares over time frames finds each stem's complex
   transfer to the mix, ``Y_c(t, f) ~ sum_i H_ic(f) X_ic(t, f)``. Whatever EQ, fader and pan
   the producer used (any plug-in design), ``|H_ic(f)|`` is its magnitude response; a bin is
   trusted in proportion to the stem's energy there.
2. Dynamics: per frame, least squares over bins finds each stem's gain around that average,
   ``Y(t, f) ~ sum_i g_i(t) H_i(f) X_i(t, f)``: a compressor shows as a gain that falls when the
   stem is loud. Threshold and ratio come from a grid search of the static curve against the
   stem's frame peak level; the no-compression offset goes back into the fader.
3. EQ: the curve, in 1/6-octave bands, is fitted by our parametric EQ (high-pass, shelves, three
   peaks, low-pass) plus a fader gain, all stems and several starts at once, by gradient descent
   on the magnitude response (no audio). Pan comes from the L/R ratio of the transfers.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from dsp.params import TRACK, spec
from mixstyle.twin import TRACK_EQ
from mixstyle.twin_ops import biquad_coeffs

N_FFT = 4096
HOP = 1024
BANDS_PER_OCTAVE = 6
RIDGE = 1e-3          # relative to the mean stem power per bin
EQ_NAMES = tuple(n for band in TRACK_EQ for n in band[1:] if n)
_PEAK_STARTS = ((120.0, 700.0, 3500.0), (250.0, 1500.0, 6000.0), (60.0, 400.0, 2500.0))
_EQ_GAIN_PENALTY = 2e-3   # per dB^2: level goes to the fader, not to shelves and peaks


def _stft(x: np.ndarray) -> torch.Tensor:
    """(..., T) -> complex128 (..., F, frames)."""
    t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    flat = t.reshape(-1, t.shape[-1])
    s = torch.stft(flat, N_FFT, HOP, window=torch.hann_window(N_FFT), return_complex=True)
    return s.reshape(*t.shape[:-1], *s.shape[-2:]).to(torch.complex128)


def transfer_functions(xs: torch.Tensor, ys: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """xs (N, 2, F, frames), ys (2, F, frames) -> complex H (N, 2, F), stem power (N, 2, F)."""
    n = xs.shape[0]
    a = xs.permute(1, 2, 3, 0)                         # (2, F, frames, N)
    power = (a.abs() ** 2).mean(dim=2)                 # (2, F, N)
    gram = a.conj().transpose(-1, -2) @ a              # (2, F, N, N)
    lam = RIDGE * power.mean(dim=-1, keepdim=True).clamp_min(1e-20) * a.shape[2]
    gram = gram + torch.diag_embed(lam.expand(-1, -1, n).to(gram.dtype))
    rhs = a.conj().transpose(-1, -2) @ ys[..., None]   # (2, F, N, 1)
    h = torch.linalg.solve(gram, rhs)[..., 0]          # (2, F, N)
    return h.permute(2, 0, 1), power.permute(2, 0, 1).real


def frame_gains(xs: torch.Tensor, ys: torch.Tensor, h: torch.Tensor) -> np.ndarray:
    """Per-frame real gains (N, frames) of each stem's average contribution H X."""
    c = (h[..., None] * xs).permute(3, 0, 1, 2).reshape(xs.shape[3], xs.shape[0], -1)
    y = ys.permute(2, 0, 1).reshape(ys.shape[2], -1)   # (frames, 2F)
    gram = (c.conj() @ c.transpose(1, 2)).real         # (frames, N, N)
    rhs = (c.conj() @ y[..., None]).real               # (frames, N, 1)
    diag = torch.diagonal(gram, dim1=1, dim2=2)
    gram = gram + torch.diag_embed(1e-3 * diag.mean(dim=1, keepdim=True).expand_as(diag) + 1e-20)
    g = torch.linalg.solve(gram, rhs)[..., 0]          # (frames, N)
    return g.T.numpy()


def _static_db(level, t, r, w):
    """Gain (dB, <= 0) of the soft-knee curve (same formula as dsp.compressor)."""
    slope = 1.0 / r - 1.0
    d = level - t
    knee = slope * (d + w / 2) ** 2 / (2 * w) if w > 0 else np.zeros_like(d)
    return np.where(2 * d < -w, 0.0, np.where(2 * np.abs(d) <= w, knee, slope * d))


def fit_compressor(gain: np.ndarray, level_db: np.ndarray, weight: np.ndarray
                   ) -> tuple[float, float, float, float]:
    """Grid search of (threshold, ratio) so ``20 log10 gain ~ offset + static(level)``.
    Returns (threshold_db, ratio, offset_db, improvement in dB^2 over no compression)."""
    ok = (gain > 1e-3) & (weight > 0)
    if ok.sum() < 8:
        return 0.0, 1.0, 0.0, 0.0
    gdb, lvl, w = 20 * np.log10(gain[ok]), level_db[ok], weight[ok]
    w = w / w.sum()
    base_off = float((w * gdb).sum())
    base_err = float((w * (gdb - base_off) ** 2).sum())
    best = (base_err, 0.0, 1.0, base_off)
    for t in np.arange(-60.0, 0.5, 1.5):
        for r in (1.5, 2.0, 3.0, 4.0, 6.0, 10.0, 20.0):
            s = _static_db(lvl, t, r, 6.0)
            off = float((w * (gdb - s)).sum())
            err = float((w * (gdb - off - s) ** 2).sum())
            if err < best[0]:
                best = (err, float(t), float(r), off)
    return best[1], best[2], best[3], base_err - best[0]


def _common_bands(sample_rate: float) -> tuple[np.ndarray, list[np.ndarray]]:
    freqs = np.fft.rfftfreq(N_FFT, 1.0 / sample_rate)
    n_bands = int(round(math.log2(20000 / 20) * BANDS_PER_OCTAVE))
    edges = 20.0 * 2 ** (np.arange(n_bands + 1) / BANDS_PER_OCTAVE)
    centres, sels = [], []
    for lo, hi in zip(edges[:-1], edges[1:]):
        sel = (freqs >= lo) & (freqs < hi)
        if sel.any() and hi <= 0.45 * sample_rate:
            centres.append(math.sqrt(lo * hi))
            sels.append(sel)
    return np.array(centres), sels


def band_curves(mag: np.ndarray, power: np.ndarray, sample_rate: float
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(N, F) magnitude and power -> centres (B,), levels dB (N, B), weights 0..1 (N, B)."""
    centres, sels = _common_bands(sample_rate)
    n = mag.shape[0]
    level = np.zeros((n, len(sels)))
    weight = np.zeros((n, len(sels)))
    for i in range(n):
        top = float(power[i].max()) + 1e-30
        for b, sel in enumerate(sels):
            p = power[i, sel]
            psum = float(p.sum())
            if psum <= 0:
                continue
            level[i, b] = 10 * math.log10(float((mag[i, sel] ** 2 * p).sum() / psum) + 1e-20)
            rel_db = 10 * math.log10(float(p.mean()) / top + 1e-30)
            weight[i, b] = float(np.clip((rel_db + 60.0) / 40.0, 0.0, 1.0))
    return centres, level, weight


def _response_db(coeffs: torch.Tensor, freqs: torch.Tensor, sample_rate: float) -> torch.Tensor:
    """coeffs (B, S, 5) -> dB magnitude (B, F) of each cascade at freqs."""
    w = 2 * math.pi * freqs / sample_rate
    z1 = torch.polar(torch.ones_like(w), -w)
    z2 = z1 * z1
    b0, b1, b2, a1, a2 = (coeffs[..., k, None] for k in range(5))
    num = (b0 + b1 * z1 + b2 * z2).abs().clamp_min(1e-12)
    den = (1 + a1 * z1 + a2 * z2).abs().clamp_min(1e-12)
    return (20 * torch.log10(num / den)).sum(dim=-2)


def _eq_db(values: dict, freqs: torch.Tensor, sample_rate: float) -> torch.Tensor:
    coeffs = [biquad_coeffs(kind, values[f], values[g] if g else 0.0, values[q] if q else 1.0,
                            sample_rate) for kind, f, g, q in TRACK_EQ]
    return _response_db(torch.stack(coeffs, dim=-2).to(torch.float64), freqs, sample_rate)


def fit_eq_curves(centres: np.ndarray, level_db: np.ndarray, weight: np.ndarray,
                  sample_rate: float, steps: int = 250
                  ) -> tuple[list[dict[str, float]], np.ndarray, np.ndarray]:
    """Our EQ + a gain per curve (N, B). Returns (eq params per curve, gain_db (N,), rms (N,))."""
    n, starts = level_db.shape[0], len(_PEAK_STARTS)
    f = torch.tensor(centres)
    target = torch.tensor(level_db).repeat(starts, 1)            # (starts*N, B)
    w = torch.tensor(weight).repeat(starts, 1) + 1e-3
    specs = [spec(TRACK, name) for name in EQ_NAMES]
    u0 = np.zeros((starts * n, len(specs)))
    for s, peaks in enumerate(_PEAK_STARTS):
        start = {p.name: p.default for p in specs}
        start.update(peak1_freq_hz=peaks[0], peak2_freq_hz=peaks[1], peak3_freq_hz=peaks[2],
                     hpf_freq_hz=12.0, lpf_freq_hz=19500.0)
        u0[s * n:(s + 1) * n] = [p.normalise(start[p.name]) for p in specs]
    u0 = np.clip(u0, 0.004, 0.996)
    z = torch.tensor(np.log(u0 / (1 - u0)), requires_grad=True)
    gain = ((w * target).sum(1) / w.sum(1)).clone().requires_grad_(True)
    opt = torch.optim.Adam([z, gain], lr=0.05)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)

    def curves(zz: torch.Tensor) -> tuple[torch.Tensor, dict]:
        values = {p.name: p.denormalise(torch.sigmoid(zz[:, j])) for j, p in enumerate(specs)}
        return _eq_db(values, f, sample_rate), values

    for _ in range(steps):
        opt.zero_grad()
        eq, values = curves(z)
        err = (w * (eq + gain[:, None] - target) ** 2).sum(1) / w.sum(1)
        pen = sum(values[k] ** 2 for k in values if k.endswith("gain_db"))
        (err + _EQ_GAIN_PENALTY * pen).sum().backward()
        opt.step()
        sched.step()
    with torch.no_grad():
        eq, values = curves(z)
        rms = torch.sqrt((w * (eq + gain[:, None] - target) ** 2).sum(1) / w.sum(1))
    rms = rms.reshape(starts, n).numpy()
    best = rms.argmin(axis=0)
    params, gains = [], np.zeros(n)
    for i in range(n):
        row = best[i] * n + i
        params.append({k: float(v[row]) for k, v in values.items()})
        gains[i] = float(gain[row])
    return params, gains, rms[best, np.arange(n)]


def identify(stems: np.ndarray, mix: np.ndarray, sample_rate: float) -> list[dict[str, float]]:
    """Per stem: EQ, compressor threshold/ratio, ``output_gain_db`` and ``pan`` (stems staged).
    """
    xs, ys = _stft(stems), _stft(mix)
    h, power = transfer_functions(xs, ys)
    g = frame_gains(xs, ys, h)                              # (N, frames)
    mag = h.abs().numpy()
    pw = power.numpy()
    n = stems.shape[0]
    pan_spec, gain_spec = spec(TRACK, "pan"), spec(TRACK, "output_gain_db")
    curves, pans = [], []
    for i in range(n):
        p = pw[i].sum(axis=0) + 1e-30
        gl = math.sqrt(float((mag[i, 0] ** 2 * p).sum() / p.sum()))
        gr = math.sqrt(float((mag[i, 1] ** 2 * p).sum() / p.sum()))
        theta = math.atan2(gr, gl)
        pans.append(float(np.clip(4 * theta / math.pi - 1, pan_spec.min, pan_spec.max)))
        pan_gain = (math.sqrt(2) * math.cos(theta), math.sqrt(2) * math.sin(theta))
        # divide the pan law out so the curve is the strip's own (pre-pan) response
        used = [c for c in (0, 1) if pan_gain[c] > 0.1]
        curves.append(np.sqrt(sum(mag[i, c] ** 2 / pan_gain[c] ** 2 for c in used) / len(used)))
    centres, level, weight = band_curves(np.array(curves), pw.sum(axis=1), sample_rate)
    eqs, gains, _ = fit_eq_curves(centres, level, weight, sample_rate)

    # dynamics: frame gain vs the frame peak level of the stem as the compressor sees it
    frames = g.shape[1]
    out = []
    for i in range(n):
        peaks = np.array([np.max(np.abs(stems[i, :, max(0, k * HOP - N_FFT // 2):
                                                    k * HOP + N_FFT // 2]), initial=0.0)
                          for k in range(frames)])
        level_db = 20 * np.log10(np.maximum(peaks, 1e-9))
        energy = np.abs(xs[i]).pow(2).sum(dim=(0, 1)).numpy()
        weight_t = (energy > energy.max() * 1e-3).astype(float) * energy / (energy.max() + 1e-30)
        t, r, off, gain_db = 0.0, 1.0, 0.0, 0.0
        if g.shape[0] > 0:
            t, r, off, better = fit_compressor(np.clip(g[i], 0, None), level_db, weight_t)
            if better < 0.25:  # under 0.5 dB rms explained: call it uncompressed
                t, r, off = 0.0, 1.0, 0.0
        gain_db = gains[i] + off
        values = dict(eqs[i])
        values.update(comp_threshold_db=t, comp_ratio=r,
                      output_gain_db=float(np.clip(gain_db, gain_spec.min, gain_spec.max)),
                      pan=pans[i])
        out.append(values)
    return out
