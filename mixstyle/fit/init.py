"""System identification of one song's console setting: the fit's building blocks.

1. ``transfer_functions``: per STFT bin and channel, least squares over frames finds each stem's
   complex transfer to the mix, ``Y_c(t, f) ~ sum_i H_ic(f) X_ic(t, f)``, and its variance.
   Whatever EQ, fader and pan the producer used, ``H`` is its response (magnitude *and* phase).
2. ``prepan_curve``: the pan law is divided out of ``H_L``/``H_R``; what is left is the strip's
   own complex response times its level. ``band_average`` smooths it into 1/24-octave bands and
   weights each band by how well the data pins it down.
3. ``fit_eq``: our parametric EQ (high-pass, shelves, three peaks, low-pass) times a gain is
   fitted to that complex curve by batched Levenberg-Marquardt from several starts (high-/low-pass
   off or on, two peak layouts), on log-magnitude and phase and on log-magnitude only, with
   Cauchy reweighting of outlier bands. The phase of a minimum-phase cascade depends on the
   whole curve (also below 20 Hz), so it tells a 90 Hz high-pass from a deep low shelf that
   looks the same in 20 Hz-20 kHz. ``rank_eq`` keeps the best few for the time-domain choice.
4. ``fit_compressor``: in the time domain, against the stem's own contribution to the mix. For
   given threshold/ratio/knee/attack/release the best left/right gains are a linear least-squares
   problem (variable projection), so only the five compressor parameters are searched: a coarse
   grid, then Nelder-Mead in the table's normalised units.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.optimize
import torch
from numba import njit

from dsp.gain import FASTMATH, fast_exp
from dsp.params import TRACK, spec
from mixstyle.twin.console import TRACK_EQ
from mixstyle.twin.ops import biquad_coeffs

N_FFT = 4096
HOP = 1024
BANDS_PER_OCTAVE = 24
RIDGE = 1e-3              # relative to the mean stem power per bin
EQ_NAMES = tuple(n for band in TRACK_EQ for n in band[1:] if n)
# starts: high-pass off (table min = bypass) or on, low-pass off or on, two peak layouts
EQ_STARTS = tuple(dict(hpf_freq_hz=hp, lpf_freq_hz=lp, peak1_freq_hz=p1, peak2_freq_hz=p2,
                       peak3_freq_hz=p3)
                  for hp in (10.0, 60.0) for lp in (20000.0, 8000.0)
                  for p1, p2, p3 in ((120.0, 700.0, 3500.0), (300.0, 1500.0, 7000.0)))
ROBUST_STAGES = 3         # curve-fit passes; bands are reweighted (Cauchy) between passes
ROBUST_SCALE = 0.25       # log-magnitude (nepers) / phase (rad) error at half weight
_EQ_GAIN_PENALTY = 1e-5   # per dB^2 of shelf/peak gain: unused bands stay at 0 dB
COMP_NAMES = ("comp_threshold_db", "comp_ratio", "comp_knee_db", "comp_attack_ms",
              "comp_release_ms")
GRID_TIMES_MS = ((1.0, 40.0), (10.0, 150.0))   # (attack, release) of the compressor grid
_LN10_20 = math.log(10.0) / 20.0
_NP_TO_DB = 20.0 / math.log(10.0)


# ------------------------------------------------------------------------- transfer and pan

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


# ------------------------------------------------------------------------- EQ curve fit

_SECTIONS = tuple((kind, EQ_NAMES.index(f), EQ_NAMES.index(g) if g else None,
                   EQ_NAMES.index(q) if q else None) for kind, f, g, q in TRACK_EQ)
_GAIN_IDX = [j for j, name in enumerate(EQ_NAMES) if name.endswith("gain_db")]
_HPF, _LPF = EQ_NAMES.index("hpf_freq_hz"), EQ_NAMES.index("lpf_freq_hz")


def _eq_values(theta: torch.Tensor, off: torch.Tensor, specs: list) -> torch.Tensor:
    """Logits (R, P[+1]) -> physical EQ values (R, P); ``off`` (R, 2) pins HPF/LPF to bypass."""
    u = torch.sigmoid(theta[:, :len(specs)])
    cols = [p.denormalise(u[:, j]) for j, p in enumerate(specs)]
    cols[_HPF] = torch.where(off[:, 0], torch.full_like(cols[_HPF], specs[_HPF].min), cols[_HPF])
    cols[_LPF] = torch.where(off[:, 1], torch.full_like(cols[_LPF], specs[_LPF].max), cols[_LPF])
    return torch.stack(cols, dim=1)


def _section_response(s: int, v: torch.Tensor, z1: torch.Tensor, sample_rate: float
                      ) -> torch.Tensor:
    """Complex response (R, F) of EQ section ``s`` for the values ``v`` (R, P)."""
    kind, fi, gi, qi = _SECTIONS[s]
    c = biquad_coeffs(kind, v[:, fi], v[:, gi] if gi is not None else 0.0,
                      v[:, qi] if qi is not None else 1.0, sample_rate)
    z2 = z1 * z1
    num = c[:, 0:1] + c[:, 1:2] * z1 + c[:, 2:3] * z2
    den = 1.0 + c[:, 3:4] * z1 + c[:, 4:5] * z2
    return num / den


def _z1(freqs_hz: np.ndarray, sample_rate: float) -> torch.Tensor:
    w = torch.tensor(-2.0 * math.pi * np.asarray(freqs_hz, dtype=np.float64) / sample_rate)
    return torch.polar(torch.ones_like(w), w)


def eq_response(values: dict[str, float], freqs_hz: np.ndarray, sample_rate: float
                ) -> np.ndarray:
    """Complex response (F,) of the strip EQ ``values`` at ``freqs_hz``."""
    v = torch.tensor([[float(values[n]) for n in EQ_NAMES]], dtype=torch.float64)
    z1 = _z1(freqs_hz, sample_rate)
    return torch.stack([_section_response(s, v, z1, sample_rate)
                        for s in range(len(_SECTIONS))]).prod(dim=0)[0].numpy()


def _eq_state(theta: torch.Tensor, data: dict) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Values (R, P), section responses (S, R, F) and weighted residuals (R, 2F + gains):
    log magnitude, phase (of target / model, so no unwrapping) and the gain penalty."""
    v = _eq_values(theta, data["off"], data["specs"])
    resp = torch.stack([_section_response(s, v, data["z1"], data["sample_rate"])
                        for s in range(len(_SECTIONS))])
    ratio = data["target"] * resp.prod(dim=0).conj()
    mag = 2.0 * data["log_target"] - 0.5 * torch.log(ratio.real ** 2 + ratio.imag ** 2 + 1e-300) \
        - theta[:, -1:]
    phase = torch.atan2(ratio.imag, ratio.real) * data["phase_on"][:, None]
    pen = math.sqrt(_EQ_GAIN_PENALTY) * v[:, _GAIN_IDX]
    return v, resp, torch.cat([data["sqrt_w"] * mag, data["sqrt_w"] * phase, pen], dim=1)


def _levenberg_marquardt(theta: torch.Tensor, data: dict, iters: int, step: float = 1e-6
                         ) -> torch.Tensor:
    """Batched Levenberg-Marquardt, one EQ fit per row of ``theta`` (logits, log gain).

    A parameter moves only its own section, so each Jacobian column re-evaluates one biquad:
    d log H / d theta = (H_s(theta + step) / H_s(theta) - 1) / step."""
    n_rows, n_par = theta.shape
    n_f = data["target"].shape[1]
    mu = torch.full((n_rows,), 1e-2, dtype=theta.dtype)
    v, resp, res = _eq_state(theta, data)
    cost = (res ** 2).sum(dim=1)
    sw = data["sqrt_w"]
    for _ in range(iters):
        jac = torch.zeros(n_rows, n_par, res.shape[1], dtype=theta.dtype)
        jac[:, -1, :n_f] = -sw
        for s, (_, fi, gi, qi) in enumerate(_SECTIONS):
            for j in (fi, gi, qi):
                if j is None:
                    continue
                moved = theta.clone()
                moved[:, j] += step
                v2 = _eq_values(moved, data["off"], data["specs"])
                d_log = (_section_response(s, v2, data["z1"], data["sample_rate"]) / resp[s]
                         - 1.0) / step
                jac[:, j, :n_f] = -sw * d_log.real
                jac[:, j, n_f:2 * n_f] = -sw * d_log.imag * data["phase_on"][:, None]
                jac[:, j, 2 * n_f:] = math.sqrt(_EQ_GAIN_PENALTY) * (
                    v2[:, _GAIN_IDX] - v[:, _GAIN_IDX]) / step
        a = jac @ jac.transpose(1, 2)
        g = (jac @ res[..., None])[..., 0]
        diag = torch.diagonal(a, dim1=1, dim2=2)
        damped = a + torch.diag_embed(mu[:, None] * diag + 1e-12)
        trial = theta - torch.linalg.solve(damped, g).clamp(-2.0, 2.0)
        v_t, resp_t, res_t = _eq_state(trial, data)
        cost_t = (res_t ** 2).sum(dim=1)
        better = cost_t < cost
        b2, b3 = better[:, None], better[None, :, None]
        theta, v, cost = torch.where(b2, trial, theta), torch.where(b2, v_t, v), \
            torch.where(better, cost_t, cost)
        resp, res = torch.where(b3, resp_t, resp), torch.where(b2, res_t, res)
        mu = torch.where(better, mu / 3.0, mu * 4.0).clamp(1e-9, 1e9)
    return theta


@dataclass(frozen=True)
class EqFit:
    """One stem's fitted EQ: parameters, gain (dB), magnitude and phase RMS errors."""

    params: dict[str, float]
    gain_db: float
    mag_rms_db: float
    phase_rms_rad: float
    used_phase: bool


def fit_eq(centres: np.ndarray, curves: np.ndarray, weights: np.ndarray, sample_rate: float,
           iters: int = 30, starts: list[list[dict[str, float]]] | None = None
           ) -> list[list[EqFit]]:
    """Fit our EQ x gain to each complex curve (N, B) by Levenberg-Marquardt, from every start
    (default ``EQ_STARTS``; or per curve a list of EQ parameter dicts; an HPF at the table min
    or LPF at the table max stays bypassed) for both objectives (log magnitude + phase, log
    magnitude only). Returns per curve all its candidate fits."""
    n = curves.shape[0]
    specs = [spec(TRACK, name) for name in EQ_NAMES]
    w = weights + 1e-6
    w = w / w.sum(axis=1, keepdims=True)
    per_curve = starts if starts is not None else [list(EQ_STARTS)] * n
    rows, thetas, phase_on, off = [], [], [], []
    for i in range(n):
        gain0 = float((w[i] * np.log(np.abs(curves[i]) + 1e-12)).sum())
        for use_phase in (1.0, 0.0):
            for start in per_curve[i]:
                values = {p.name: p.default for p in specs}
                values.update(start)
                off.append((values["hpf_freq_hz"] <= specs[_HPF].min,
                            values["lpf_freq_hz"] >= specs[_LPF].max))
                u = np.clip([p.normalise(values[p.name]) for p in specs], 0.004, 0.996)
                thetas.append(np.append(np.log(u / (1 - u)), gain0))
                rows.append(i)
                phase_on.append(use_phase)
    target = torch.from_numpy(np.ascontiguousarray(curves))[torch.tensor(rows)]
    data = {"specs": specs, "sample_rate": sample_rate, "off": torch.tensor(off),
            "z1": _z1(centres, sample_rate), "target": target,
            "log_target": target.abs().clamp_min(1e-12).log(),
            "sqrt_w": torch.from_numpy(np.sqrt(w))[torch.tensor(rows)],
            "phase_on": torch.tensor(phase_on, dtype=torch.float64)}
    theta = torch.tensor(np.array(thetas))
    w0, b = data["sqrt_w"] ** 2, curves.shape[1]
    for stage in range(ROBUST_STAGES):
        theta = _levenberg_marquardt(theta, data, max(1, iters // ROBUST_STAGES))
        if stage + 1 < ROBUST_STAGES:  # Cauchy reweighting: outlier bands stop pulling
            _, _, res = _eq_state(theta, data)
            r2 = (res[:, :b] ** 2 + res[:, b:2 * b] ** 2) / w0.clamp_min(1e-30)
            w = w0 / (1.0 + r2 / ROBUST_SCALE ** 2)
            data["sqrt_w"] = (w / w.sum(dim=1, keepdim=True)).sqrt()
    data["phase_on"] = torch.ones_like(data["phase_on"])
    v, _, res = _eq_state(theta, data)
    mag_rms = res[:, :b].pow(2).sum(dim=1).sqrt() * _NP_TO_DB
    phase_rms = res[:, b:2 * b].pow(2).sum(dim=1).sqrt()
    out: list[list[EqFit]] = [[] for _ in range(n)]
    for r, i in enumerate(rows):
        out[i].append(EqFit({name: float(v[r, j]) for j, name in enumerate(EQ_NAMES)},
                            float(theta[r, -1]) * _NP_TO_DB, float(mag_rms[r]),
                            float(phase_rms[r]), bool(phase_on[r])))
    return out


def rank_eq(candidates: list[EqFit], keep: int = 3) -> list[EqFit]:
    """The ``keep`` best fits by log-magnitude and phase error together, near-duplicates (same
    high-/low-pass use and magnitude error within 0.01 dB) dropped."""
    ranked = sorted(candidates, key=lambda c: (c.mag_rms_db / _NP_TO_DB) ** 2
                    + c.phase_rms_rad ** 2)
    out: list[EqFit] = []
    for c in ranked:
        shape = (c.params["hpf_freq_hz"] > 10.0, c.params["lpf_freq_hz"] < 20000.0)
        if not any(abs(c.mag_rms_db - o.mag_rms_db) < 0.01 and shape == (
                o.params["hpf_freq_hz"] > 10.0, o.params["lpf_freq_hz"] < 20000.0) for o in out):
            out.append(c)
        if len(out) == keep:
            break
    return out


# ------------------------------------------------------------------------- compressor

@njit(cache=True, fastmath=FASTMATH, error_model="numpy")
def _gain_db_kernel(level_db, t_db, ratio, knee_db, a_att, a_rel, out):
    """Smoothed compressor gain (dB) of the static curve at ``level_db`` (docs/DESIGN.md).

    The attack/release step is written as two candidates, ``a gs + (1 - a) gc`` for each
    coefficient, and a select: the loop-carried chain is one multiply-add and the select
    instead of a subtract, the select and a multiply-add."""
    slope = 1.0 / ratio - 1.0
    inv_2w = 0.5 / knee_db if knee_db > 0.0 else 0.0
    half = 0.5 * knee_db
    b_att = 1.0 - a_att
    b_rel = 1.0 - a_rel
    gs = 0.0
    for n in range(level_db.shape[0]):
        d = level_db[n] - t_db
        e = min(max(d + half, 0.0), knee_db)
        gc = slope * (e * e * inv_2w + max(d - half, 0.0))
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


def fit_compressor(eq_out: np.ndarray, target: np.ndarray, sample_rate: float,
                   start: dict[str, float] | None = None, max_evals: int = 240,
                   accept: float = 0.1) -> CompFit:
    """Compressor + L/R gains so that ``gains * 10**(g_s/20) * eq_out ~ target`` (both (2, n)).

    ``eq_out`` is the stem after the strip's EQ (what the compressor's detector sees). A grid over
    threshold x ratio (or a compressing ``start``) seeds Nelder-Mead over the five compressor
    parameters in normalised units, at most ``max_evals`` evaluations. Compression is kept only
    if it removes more than the fraction ``accept`` of the uncompressed squared error and more
    than 1e-4 of the target's energy (else ratio 1): a compressor must not soak up what other
    stages left unexplained."""
    e = eq_out.astype(np.float64)
    r = target.astype(np.float64)
    level = level_db(e)
    prod = np.ascontiguousarray(r * e)
    energy = np.ascontiguousarray(e * e)
    total = float((r * r).sum())
    sums, work = np.zeros(4), np.empty_like(level)
    specs = [spec(TRACK, name) for name in COMP_NAMES]

    def explained(values: dict[str, float]) -> tuple[float, tuple[float, float]]:
        _projection_kernel(level, prod, energy, values["comp_threshold_db"],
                           values["comp_ratio"], values["comp_knee_db"],
                           _alpha(values["comp_attack_ms"], sample_rate),
                           _alpha(values["comp_release_ms"], sample_rate), work, sums)
        g = tuple(max(sums[c], 0.0) / max(sums[2 + c], 1e-30) for c in (0, 1))
        return sum(max(sums[c], 0.0) * g[c] for c in (0, 1)), g  # type: ignore[return-value]

    def values_of(u: np.ndarray) -> dict[str, float]:
        return {p.name: float(np.clip(p.denormalise(float(x)), p.min, p.max))
                for p, x in zip(specs, np.clip(u, 0.0, 1.0))}

    def cost(u: np.ndarray) -> float:
        return -explained(values_of(u))[0] / max(total, 1e-30)

    neutral_values = uncompressed()
    base, base_gains = explained(neutral_values)
    need = max(accept * (total - base), 1e-4 * total)   # improvement that keeps a compressor
    neutral_fit = CompFit(neutral_values, (float(base_gains[0]), float(base_gains[1])),
                          total - base, total - base, total)
    if start is not None and start["comp_ratio"] > 1.0:
        seeds, step = [dict(start)], 0.03
    else:  # threshold below the peak x ratio; no promise there, no search
        peak_db = float(level.max())
        grid = []
        for drop in (2.0, 5.0, 8.0, 12.0, 16.0, 20.0, 25.0, 30.0, 36.0, 44.0):
            for ratio in (2.0, 4.0, 10.0):
                for attack_ms, release_ms in GRID_TIMES_MS:
                    v = dict(neutral_values, comp_ratio=ratio, comp_attack_ms=attack_ms,
                             comp_release_ms=release_ms,
                             comp_threshold_db=float(np.clip(peak_db - drop, -60.0, 0.0)))
                    grid.append((explained(v)[0], v))
        grid.sort(key=lambda item: -item[0])
        if grid[0][0] - base < 0.25 * need:
            return neutral_fit
        seeds, step = [v for _, v in grid[:2]], 0.08
    best_u, best_cost = None, math.inf
    for seed in seeds:
        u0 = np.array([p.normalise(seed[p.name]) for p in specs])
        res = scipy.optimize.minimize(cost, u0, method="Nelder-Mead", bounds=[(0.0, 1.0)] * 5,
                                      options={"maxfev": max(20, max_evals // len(seeds)),
                                               "xatol": 2e-4, "fatol": 1e-7 * base / total,
                                               "initial_simplex": _simplex(u0, step)})
        if res.fun < best_cost:
            best_u, best_cost = res.x, float(res.fun)
    values = values_of(best_u)
    gain, gains = explained(values)
    if gain - base <= need or values["comp_ratio"] <= 1.0 + 1e-6:
        return neutral_fit
    return CompFit(values, (float(gains[0]), float(gains[1])), total - gain, total - base, total)


def _simplex(u0: np.ndarray, step: float = 0.08) -> np.ndarray:
    """Nelder-Mead start simplex inside [0, 1]: steps away from the nearer bound."""
    pts = [u0.copy()]
    for j in range(u0.size):
        p = u0.copy()
        p[j] = p[j] + step if p[j] + step <= 1.0 else p[j] - step
        pts.append(p)
    return np.array(pts)
