"""The differentiable torch twin of the numba console (dsp/strip.py, dsp/console.py).

Same math as docs/DESIGN.md, same names as dsp/params.py. Audio ``x`` is ``(batch, 2, samples)``
(float32 or float64, CPU); parameters are dicts ``name -> tensor (batch,)`` in physical units
(``ParamSpec.denormalise`` maps the model's [0, 1] outputs there). Missing names take the table's
neutral value; values outside the table range raise ``ParameterError``.

Parameters are static over the signal (no ~10 ms parameter smoothing: the numba strip starts at
its parameters, so the two agree for a fixed setting). The master bus here has NO limiter:
training renders skip it (its ``limiter_*`` and ``target_lufs`` entries are accepted and
ignored), so compare with the numba console at a level where its limiter is inactive.

Internals: the 7 strip filters (5 on the master) are one biquad cascade per row (numba kernels,
float64 state, custom autograd with an adjoint backward; ``backend="lfilter"`` runs the same
cascade through torchaudio's lfilter, ~3-4x slower). Coefficients are computed in float64; the
input gain is folded into the first section and the output gain into the compressor's dB offset
(both exact). The compressor's detector and static curve are vectorised torch (dtype of ``x``);
its attack/release recursion is a numba-backed autograd function (mixstyle.twin.ops).
"""

from __future__ import annotations

import math
from typing import Any, Mapping

import torch

from dsp.errors import AudioInputError, ParameterError
from dsp.params import MASTER, TRACK, section_specs, spec
from dsp.validate import check_sample_rate
from mixstyle.twin.ops import (HIGH_SHELF, HIGHPASS, LOW_SHELF, LOWPASS, PEAK, biquad_cascade,
                               biquad_cascade_lfilter, biquad_coeffs, smooth_gain_db,
                               time_to_alpha)

__all__ = ["biquad_coeffs", "compressor", "console", "eq_coeffs", "gain", "gain_curve_db",
           "master", "pan", "pan_gains", "static_gain_db", "strip", "TRACK_EQ", "MASTER_EQ"]

# (kind, freq name, gain name or None, q name or None) in signal order
_SHELVES_AND_PEAKS = (
    (LOW_SHELF, "low_shelf_freq_hz", "low_shelf_gain_db", None),
    (PEAK, "peak1_freq_hz", "peak1_gain_db", "peak1_q"),
    (PEAK, "peak2_freq_hz", "peak2_gain_db", "peak2_q"),
    (PEAK, "peak3_freq_hz", "peak3_gain_db", "peak3_q"),
    (HIGH_SHELF, "high_shelf_freq_hz", "high_shelf_gain_db", None),
)
TRACK_EQ = ((HIGHPASS, "hpf_freq_hz", None, "hpf_q"),) + _SHELVES_AND_PEAKS + (
    (LOWPASS, "lpf_freq_hz", None, "lpf_q"),)
MASTER_EQ = _SHELVES_AND_PEAKS
_COMP = ("comp_threshold_db", "comp_ratio", "comp_attack_ms", "comp_release_ms", "comp_knee_db",
         "comp_makeup_db")
_IGNORED_MASTER = ("limiter_ceiling_db", "limiter_release_ms", "limiter_lookahead_ms",
                   "target_lufs")
_BACKENDS = ("numba", "lfilter")
_RANGE_TOL = 1e-6  # relative slack for float rounding of denormalised values


# ---------------------------------------------------------------------------- checks

def _check_audio(x: Any, name: str, ndim: int) -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    shape = "(batch, stems, 2, samples)" if ndim == 4 else "(batch, 2, samples)"
    if x.dtype not in (torch.float32, torch.float64):
        raise AudioInputError(f"{name} must be float32 or float64, got {x.dtype}")
    if x.ndim != ndim or x.shape[-2] != 2:
        raise AudioInputError(f"{name} must be shaped {shape} (stereo), got {tuple(x.shape)}")
    if x.device.type != "cpu":
        raise AudioInputError(f"{name} must be on the CPU, got device {x.device}")
    if not bool(torch.isfinite(x.detach()).all()):
        raise AudioInputError(f"{name} contains non-finite samples (NaN or inf)")
    return x


def _params(section: str, values: Any, shape: tuple[int, ...], where: str
            ) -> dict[str, torch.Tensor]:
    """Table-checked float64 tensors of ``shape`` for every name of ``section`` (neutral fill)."""
    if not isinstance(values, Mapping):
        raise ParameterError(f"{where}: parameters must be a mapping name -> tensor, got "
                             f"{type(values).__name__}")
    for name in values:
        spec(section, name)  # unknown names raise, listing the known ones
    out: dict[str, torch.Tensor] = {}
    for p in section_specs(section):
        if p.name in _IGNORED_MASTER and section == MASTER:
            continue
        v = values.get(p.name, p.neutral)
        if isinstance(v, bool) or not isinstance(v, (int, float, torch.Tensor)):
            raise ParameterError(f"{p.key} ({where}) must be a number or tensor in "
                                 f"{p.unit or 'units'}, got {type(v).__name__}")
        t = torch.as_tensor(v).to(torch.float64)
        if t.ndim and tuple(t.shape) != shape:
            raise ParameterError(f"{p.key} ({where}) must have shape {shape} (or be a scalar), "
                                 f"got {tuple(t.shape)}")
        with torch.no_grad():
            tol = _RANGE_TOL * max(abs(p.min), abs(p.max), 1.0)
            bad = ~torch.isfinite(t) | (t < p.min - tol) | (t > p.max + tol)
            if bool(bad.any()):
                val = float(t[bad].flatten()[0]) if t.ndim else float(t)
                raise ParameterError(f"{p.key} ({where}) = {val:g} is out of range: allowed "
                                     f"{p.min:g} .. {p.max:g} {p.unit}".rstrip())
        out[p.name] = torch.clamp(t, p.min, p.max).expand(shape)
    return out


# ---------------------------------------------------------------------------- stages

def gain(x: torch.Tensor, gain_db: torch.Tensor) -> torch.Tensor:
    """``x`` (batch, channels, samples) times ``10**(gain_db/20)``, gain_db (batch,)."""
    return x * torch.pow(10.0, gain_db / 20.0).to(x.dtype)[:, None, None]


def pan_gains(pan_pos: torch.Tensor) -> torch.Tensor:
    """Constant-power pan, 0 dB at centre: (batch, 2) gains for L and R."""
    angle = (math.pi / 4.0) * (pan_pos + 1.0)
    return math.sqrt(2.0) * torch.stack([torch.cos(angle), torch.sin(angle)], dim=-1)


def pan(x: torch.Tensor, pan_pos: torch.Tensor) -> torch.Tensor:
    """Apply ``pan_gains`` to L and R of a (batch, 2, samples) signal."""
    return x * pan_gains(pan_pos).to(x.dtype)[:, :, None]


def eq_coeffs(bands: tuple, params: Mapping[str, torch.Tensor], sample_rate: float
              ) -> torch.Tensor:
    """Stacked coefficients (batch, len(bands), 5) of an EQ chain in signal order."""
    out = []
    for kind, f_name, g_name, q_name in bands:
        g = params[g_name] if g_name else 0.0
        q = params[q_name] if q_name else 1.0
        out.append(biquad_coeffs(kind, params[f_name], g, q, sample_rate))
    return torch.stack(out, dim=1)


def _filter(x: torch.Tensor, coeffs: torch.Tensor, backend: str) -> torch.Tensor:
    batch, channels, samples = x.shape
    rows = coeffs[:, None].expand(batch, channels, *coeffs.shape[1:])
    rows = rows.reshape(batch * channels, *coeffs.shape[1:])
    flat = x.reshape(batch * channels, samples)
    run = biquad_cascade if backend == "numba" else biquad_cascade_lfilter
    return run(flat, rows).reshape(batch, channels, samples)


def static_gain_db(level_db: torch.Tensor, threshold_db: torch.Tensor, ratio: torch.Tensor,
                   knee_db: torch.Tensor) -> torch.Tensor:
    """Target gain g_c = y - x (dB, <= 0) of the static curve; parameters broadcast (batch, 1).

    With d = x - T + W/2 (distance past the knee start), e = max(d, 0), k = min(e, W):
    g_c = (1/R - 1) (k^2 / 2W + e - k), which is 0 below the knee, the quadratic inside it and
    (1/R - 1)(x - T) above it, as in docs/DESIGN.md.
    """
    excess = torch.relu(level_db - (threshold_db - knee_db / 2.0))
    in_knee = torch.minimum(excess, knee_db)
    w_safe = torch.where(knee_db > 0, knee_db, torch.ones_like(knee_db))
    return (1.0 / ratio - 1.0) * (in_knee * in_knee / (2.0 * w_safe) + (excess - in_knee))


def gain_curve_db(x: torch.Tensor, sample_rate: float, threshold_db: torch.Tensor,
                  ratio: torch.Tensor, attack_ms: torch.Tensor, release_ms: torch.Tensor,
                  knee_db: torch.Tensor) -> torch.Tensor:
    """Smoothed compressor gain g_s in dB (batch, samples), dtype of ``x``, stereo-linked."""
    level_db = 20.0 * torch.log10(torch.clamp(x.abs().amax(dim=1), min=1e-10))
    t, r, w = (v.to(x.dtype)[:, None] for v in (threshold_db, ratio, knee_db))
    return smooth_gain_db(static_gain_db(level_db, t, r, w),
                          time_to_alpha(attack_ms, sample_rate),
                          time_to_alpha(release_ms, sample_rate))


def _apply_db(x: torch.Tensor, g_db: torch.Tensor, offset_db: torch.Tensor,
              channel_gain: torch.Tensor | None = None) -> torch.Tensor:
    """x (batch, ch, n) * 10**((g_db (batch, n) + offset_db (batch,)) / 20) [* gain (batch, ch)]."""
    lin = torch.exp((g_db + offset_db.to(x.dtype)[:, None]) * (math.log(10.0) / 20.0))
    if channel_gain is None:
        return x * lin[:, None, :]
    return x * channel_gain.to(x.dtype)[:, :, None] * lin[:, None, :]


def compressor(x: torch.Tensor, sample_rate: float, threshold_db: torch.Tensor,
               ratio: torch.Tensor, attack_ms: torch.Tensor, release_ms: torch.Tensor,
               knee_db: torch.Tensor, makeup_db: torch.Tensor) -> torch.Tensor:
    """Feed-forward log-domain stereo-linked compressor (docs/DESIGN.md), parameters (batch,)."""
    g_db = gain_curve_db(x, sample_rate, threshold_db, ratio, attack_ms, release_ms, knee_db)
    return _apply_db(x, g_db, makeup_db)


def _curve(x: torch.Tensor, sr: float, p: Mapping[str, torch.Tensor]) -> torch.Tensor:
    return gain_curve_db(x, sr, *(p[n] for n in _COMP[:5]))


def _check_backend(backend: str) -> None:
    if backend not in _BACKENDS:
        raise ParameterError(f"backend must be one of {_BACKENDS}, got {backend!r}")


# ---------------------------------------------------------------------------- strip / master

def strip(x: torch.Tensor, sample_rate: float, params: Mapping[str, Any],
          backend: str = "numba") -> torch.Tensor:
    """Channel strip: input gain -> HPF -> low shelf -> peak1..3 -> high shelf -> LPF ->
    compressor -> output gain -> pan. ``x`` (batch, 2, samples); returns the same shape."""
    sr = check_sample_rate(sample_rate)
    _check_audio(x, "strip input x", 3)
    _check_backend(backend)
    p = _params(TRACK, params, (x.shape[0],), "strip")
    return _strip(x, sr, p, backend)


def _strip(x: torch.Tensor, sr: float, p: Mapping[str, torch.Tensor], backend: str
           ) -> torch.Tensor:
    coeffs = eq_coeffs(TRACK_EQ, p, sr)
    # input gain is linear and comes first: fold it into the first section's b coefficients
    g_in = torch.pow(10.0, p["input_gain_db"] / 20.0)[:, None, None]
    first = torch.cat([coeffs[:, :1, :3] * g_in, coeffs[:, :1, 3:]], dim=2)
    coeffs = torch.cat([first, coeffs[:, 1:]], dim=1)
    y = _filter(x, coeffs, backend)
    # compressor, then output gain (folded into the dB offset) and pan
    return _apply_db(y, _curve(y, sr, p), p["comp_makeup_db"] + p["output_gain_db"],
                     pan_gains(p["pan"]))


def master(x: torch.Tensor, sample_rate: float, params: Mapping[str, Any],
           backend: str = "numba") -> torch.Tensor:
    """Master bus without limiter: EQ (low shelf, peak1..3, high shelf) -> glue compressor ->
    gain_db. ``x`` (batch, 2, samples). Training renders skip the limiter."""
    sr = check_sample_rate(sample_rate)
    _check_audio(x, "master input x", 3)
    _check_backend(backend)
    p = _params(MASTER, params, (x.shape[0],), "master")
    return _master(x, sr, p, backend)


def _master(x: torch.Tensor, sr: float, p: Mapping[str, torch.Tensor], backend: str
            ) -> torch.Tensor:
    y = _filter(x, eq_coeffs(MASTER_EQ, p, sr), backend)
    return _apply_db(y, _curve(y, sr, p), p["comp_makeup_db"] + p["gain_db"])


def console(stems: torch.Tensor, sample_rate: float, track_params: Mapping[str, Any],
            master_params: Mapping[str, Any], backend: str = "numba") -> torch.Tensor:
    """Whole console: stems (batch, N, 2, samples) through N strips, summed, master bus
    (no limiter). ``track_params`` name -> (batch, N); ``master_params`` name -> (batch,).
    Returns (batch, 2, samples)."""
    sr = check_sample_rate(sample_rate)
    _check_audio(stems, "console stems", 4)
    _check_backend(backend)
    batch, n_stems, channels, samples = stems.shape
    if n_stems < 1:
        raise AudioInputError("console stems: need at least one stem, got shape "
                              f"{tuple(stems.shape)}")
    tp = _params(TRACK, track_params, (batch, n_stems), "console tracks")
    mp = _params(MASTER, master_params, (batch,), "console master")
    flat = {k: v.reshape(batch * n_stems) for k, v in tp.items()}
    y = _strip(stems.reshape(batch * n_stems, channels, samples), sr, flat, backend)
    mix = y.reshape(batch, n_stems, channels, samples).sum(dim=1)
    return _master(mix, sr, mp, backend)
