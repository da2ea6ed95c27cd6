"""The strip's parametric EQ fitted to a measured complex curve (``mixstyle.fit.transfer``).

``fit_eq``: our parametric EQ (high-pass, shelves, three peaks, low-pass) times a gain is fitted
to the complex curve by batched Levenberg-Marquardt from several starts (high-/low-pass off or
on, two peak layouts), on log-magnitude and phase and on log-magnitude only, with Cauchy
reweighting of outlier bands. The phase of a minimum-phase cascade depends on the whole curve
(also below 20 Hz), so it tells a 90 Hz high-pass from a deep low shelf that looks the same in
20 Hz-20 kHz. ``rank_eq`` keeps the best few for the time-domain choice (``mixstyle.fit.song``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from dsp.params import TRACK, spec
from mixstyle.twin.console import TRACK_EQ
from mixstyle.twin.ops import biquad_coeffs

EQ_NAMES = tuple(n for band in TRACK_EQ for n in band[1:] if n)
# starts: high-pass off (table min = bypass) or on, low-pass off or on, two peak layouts
EQ_STARTS = tuple(dict(hpf_freq_hz=hp, lpf_freq_hz=lp, peak1_freq_hz=p1, peak2_freq_hz=p2,
                       peak3_freq_hz=p3)
                  for hp in (10.0, 60.0) for lp in (20000.0, 8000.0)
                  for p1, p2, p3 in ((120.0, 700.0, 3500.0), (300.0, 1500.0, 7000.0)))
ROBUST_STAGES = 3         # curve-fit passes; bands are reweighted (Cauchy) between passes
ROBUST_SCALE = 0.25       # log-magnitude (nepers) / phase (rad) error at half weight
# Levenberg-Marquardt's damping is relative (mu x each parameter's own curvature) plus this share
# of the largest curvature: a parameter the curve hardly sees (the frequency of a band at 0 dB)
# would otherwise take full Gauss-Newton steps driven by the last bits of the data.
# Measured (scripts/fit_stability.py, ben's 6 songs, the mix changed by noise 130 dB under it):
# fitted band gains moved 0.33 dB (median; 90th percentile 2.8 dB) without the floor, 0.004 dB
# (0.07) with it, and the fits explain the mix better (band error 0.567 -> 0.536 dB).
DAMPING_FLOOR = 1e-4
_EQ_GAIN_PENALTY = 1e-5   # per dB^2 of shelf/peak gain: unused bands stay at 0 dB
# Beyond FREE_GAIN_DB a band's gain costs EXCESS_PENALTY per dB^2 (a broad peak, Q < 0.7, in
# proportion more): of fits that explain the curve nearly equally, the one with smaller gains
# wins, and a broad boost does not stand in for the fader. The curve's weighted squared error
# sums to about (error in nepers)^2, so 1e-4 per dB^2 is what a 0.1 dB error everywhere costs.
FREE_GAIN_DB = 3.0
EXCESS_PENALTY = 1e-4
BROAD_Q = 0.7
_NP_TO_DB = 20.0 / math.log(10.0)


_SECTIONS = tuple((kind, EQ_NAMES.index(f), EQ_NAMES.index(g) if g else None,
                   EQ_NAMES.index(q) if q else None) for kind, f, g, q in TRACK_EQ)
_GAIN_IDX = [j for j, name in enumerate(EQ_NAMES) if name.endswith("gain_db")]
# per gain: the index of its Q if it is a peak (broad peaks cost more), else -1
_GAIN_Q = [EQ_NAMES.index(EQ_NAMES[j].replace("gain_db", "q")) if EQ_NAMES[j].startswith("peak")
           else -1 for j in _GAIN_IDX]
# the values gain_penalty reads: moving any other one leaves the penalty the same, to the bit
_PENALISED = frozenset(_GAIN_IDX) | frozenset(q for q in _GAIN_Q if q >= 0)


def gain_penalty(v: torch.Tensor) -> torch.Tensor:
    """Penalty residuals (R, 2G) of the EQ values ``v`` (R, P): a small pull of every band gain
    to 0 dB, and a larger one on the part of |gain| beyond FREE_GAIN_DB. For a broad peak
    (Q < BROAD_Q) the free part shrinks and the excess grows by BROAD_Q / Q: a wide, near-flat
    boost is a fader change in disguise."""
    g = v[:, _GAIN_IDX]
    broad = torch.stack([(BROAD_Q / v[:, q]).clamp_min(1.0) if q >= 0
                         else torch.ones_like(v[:, 0]) for q in _GAIN_Q], dim=1)
    excess = (g.abs() - FREE_GAIN_DB / broad).clamp_min(0.0) * torch.sign(g) * broad
    return torch.cat([math.sqrt(_EQ_GAIN_PENALTY) * g, math.sqrt(EXCESS_PENALTY) * excess], dim=1)


def free_gain_db(values: dict[str, float], gain_name: str) -> float:
    """How far band ``gain_name`` may go from 0 dB before ``gain_penalty``'s excess starts,
    for the EQ ``values``: FREE_GAIN_DB, less for a broad peak (Q < BROAD_Q)."""
    if not gain_name.startswith("peak"):
        return FREE_GAIN_DB
    q = float(values[gain_name.replace("gain_db", "q")])
    return FREE_GAIN_DB / max(BROAD_Q / q, 1.0)


POLISH_GROWTH_DB = 1.0   # how much a polish may add to a boost or cut the curve fit chose


def hold_gains(values: dict[str, float], start: dict[str, float]) -> dict[str, float]:
    """``values`` with each band gain named in ``start`` held within +-max(|its gain there| +
    POLISH_GROWTH_DB, its free zone): a polish after the curve fit may refine a boost the
    curve fit judged worth its penalty, and move any band inside the free zone, but not make
    a band much bigger."""
    out = dict(values)
    for name, gain in start.items():
        bound = max(abs(gain) + POLISH_GROWTH_DB, free_gain_db(out, name))
        out[name] = float(np.clip(out[name], -bound, bound))
    return out


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
    pen = gain_penalty(v)
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
        pen = gain_penalty(v)
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
                if j in _PENALISED:   # the others' penalty rows stay 0
                    jac[:, j, 2 * n_f:] = (gain_penalty(v2) - pen) / step
        a = jac @ jac.transpose(1, 2)
        g = (jac @ res[..., None])[..., 0]
        diag = torch.diagonal(a, dim1=1, dim2=2)
        floor = DAMPING_FLOOR * diag.amax(dim=1, keepdim=True)
        damped = a + torch.diag_embed(mu[:, None] * diag + floor + 1e-300)
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
    penalty: float = 0.0        # gain_penalty's squared sum (same units as the curve errors)


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
    pen = res[:, 2 * b:].pow(2).sum(dim=1)
    out: list[list[EqFit]] = [[] for _ in range(n)]
    for r, i in enumerate(rows):
        out[i].append(EqFit({name: float(v[r, j]) for j, name in enumerate(EQ_NAMES)},
                            float(theta[r, -1]) * _NP_TO_DB, float(mag_rms[r]),
                            float(phase_rms[r]), bool(phase_on[r]), float(pen[r])))
    return out


def rank_eq(candidates: list[EqFit], keep: int = 3) -> list[EqFit]:
    """The ``keep`` best fits by log-magnitude and phase error and gain penalty together (the
    fit's own objective: large gains the curve does not need rank lower), near-duplicates (same
    high-/low-pass use and magnitude error within 0.01 dB) dropped."""
    ranked = sorted(candidates, key=lambda c: (c.mag_rms_db / _NP_TO_DB) ** 2
                    + c.phase_rms_rad ** 2 + c.penalty)
    out: list[EqFit] = []
    for c in ranked:
        shape = (c.params["hpf_freq_hz"] > 10.0, c.params["lpf_freq_hz"] < 20000.0)
        if not any(abs(c.mag_rms_db - o.mag_rms_db) < 0.01 and shape == (
                o.params["hpf_freq_hz"] > 10.0, o.params["lpf_freq_hz"] < 20000.0) for o in out):
            out.append(c)
        if len(out) == keep:
            break
    return out
