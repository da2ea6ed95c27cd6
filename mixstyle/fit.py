"""Recover the console settings that turn a past song's stems into the producer's mix.

Analysis by synthesis: the torch twin of the console renders the stems with bounded parameters
(logits -> sigmoid -> the table's range) and Adam minimises the distance to the producer's mix
(multi-resolution STFT + band levels, plus a waveform term that rewards phase-exact agreement).

The input trim of every track is not fitted: it is the console's gain staging (each stem trimmed
to ``features.STAGE_LUFS``), so that compressor thresholds and faders mean the same thing in
every song. Several starts (no compression / moderate compression on every track) run a few
steps each; the best continues. The master bus of a *mix* is left neutral except its loudness
target and limiter ceiling, which are read off the mix itself.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import torch

from dsp.loudness import integrated_loudness
from dsp.params import (MASTER, TRACK, TRACK_PARAMS, ConsoleSetting, TrackSetting, neutral,
                        spec, validate)
from mixstyle import losses, twin
from mixstyle.features import stage_gain_db
from mixstyle.fit_init import identify

FIT_PARAMS = tuple(p for p in TRACK_PARAMS if p.name != "input_gain_db")
_U_MIN, _U_MAX = 0.004, 0.996


@dataclass(frozen=True)
class FitConfig:
    seconds: float = 6.0        # excerpt length fitted (the most active region of the song)
    steps: int = 90             # Adam steps in all (split between starts and the final run)
    starts: int = 2             # no compression / moderate compression
    lr: float = 0.02            # in logit space (starts are already close)
    waveform_weight: float = 0.5
    seed: int = 0

    def __post_init__(self) -> None:
        if not 0.5 <= self.seconds <= 120:
            raise ValueError(f"FitConfig.seconds = {self.seconds}: allowed 0.5 .. 120 s")
        if self.steps < 1 or self.starts < 1:
            raise ValueError("FitConfig.steps and .starts must be at least 1")


@dataclass(frozen=True)
class FitResult:
    setting: ConsoleSetting
    error_db: float             # 20 log10(rms(render - mix) / rms(mix)) on the fitted excerpt
    mrstft: float
    band_error_db: float        # mean |band level difference| (dB) on the excerpt
    start_s: float
    seconds: float
    loss_history: tuple[float, ...] = field(repr=False, default=())

    def quality(self) -> dict[str, float]:
        return {"error_db": round(self.error_db, 2), "mrstft": round(self.mrstft, 4),
                "band_error_db": round(self.band_error_db, 3),
                "excerpt_start_s": round(self.start_s, 2), "excerpt_s": round(self.seconds, 2)}


def choose_excerpt(stems: np.ndarray, sample_rate: float, seconds: float) -> tuple[int, int]:
    """Window where the most stems play, loudest first. Returns (start, stop) samples."""
    n = stems.shape[-1]
    length = min(n, int(round(seconds * sample_rate)))
    if length >= n:
        return 0, n
    hop = max(1, int(0.25 * sample_rate))
    frames = n // hop
    energy = np.stack([np.add.reduceat((s.astype(np.float64) ** 2).sum(axis=0),
                                       np.arange(0, frames * hop, hop))[:frames] for s in stems])
    active = energy > (energy.max(axis=1, keepdims=True) * 1e-4)
    win = max(1, length // hop)
    best, best_key = 0, (-1.0, -1.0)
    for f in range(0, frames - win + 1):
        key = (float(active[:, f:f + win].mean()), float(energy[:, f:f + win].sum()))
        if key > best_key:
            best, best_key = f, key
    start = min(best * hop, n - length)
    return start, start + length


def _logit(u: np.ndarray) -> np.ndarray:
    u = np.clip(u, _U_MIN, _U_MAX)
    return np.log(u / (1 - u))


def _start_points(identified: list[dict[str, float]], staged_peak_db: np.ndarray,
                  starts: int) -> list[np.ndarray]:
    """Start 0: the identified EQ/fader/pan, no compression; further starts add moderate
    compression (so threshold and ratio have a gradient to follow)."""
    n = len(identified)
    points = []
    for s in range(starts):
        u = np.zeros((n, len(FIT_PARAMS)))
        for i in range(n):
            values = {p.name: p.neutral for p in FIT_PARAMS}
            values.update(identified[i])
            if s >= 1:
                values["comp_threshold_db"] = float(np.clip(staged_peak_db[i] - 6.0 - 4.0 * s,
                                                            -59, -1))
                values["comp_ratio"] = 1.5 + s
            for j, p in enumerate(FIT_PARAMS):
                u[i, j] = p.normalise(values[p.name])
        points.append(_logit(u))
    return points


def _params_from_logits(z: torch.Tensor, stage_db: torch.Tensor) -> dict[str, torch.Tensor]:
    u = torch.sigmoid(z)
    out = {p.name: p.denormalise(u[:, j]).clamp(p.min, p.max)[None, :]
           for j, p in enumerate(FIT_PARAMS)}
    out["input_gain_db"] = stage_db[None, :]
    return out


def fit_mix(stems: np.ndarray, mix: np.ndarray, sample_rate: float,
            names: Sequence[str], roles: Sequence[str], config: FitConfig = FitConfig(),
            progress=None) -> FitResult:
    """Fit one song. ``stems`` (N, 2, T) float32 aligned with ``mix`` (2, T)."""
    torch.manual_seed(config.seed)
    n = stems.shape[0]
    stage = np.array([stage_gain_db(integrated_loudness(s, sample_rate)) for s in stems])
    start, stop = choose_excerpt(stems, sample_rate, config.seconds)
    ex = stems[:, :, start:stop] * (10 ** (stage / 20))[:, None, None].astype(np.float32)
    ref_np = mix[:, start:stop].astype(np.float32)
    identified = identify(ex, ref_np, sample_rate)
    peak_db = 20 * np.log10(np.max(np.abs(ex), axis=(1, 2)) + 1e-9)

    x = torch.from_numpy(np.ascontiguousarray(ex))[None]          # staged; input gain = 0 here
    ref = torch.from_numpy(np.ascontiguousarray(ref_np))[None]
    zero_stage = torch.zeros(n, dtype=torch.float32)
    master = {k: v for k, v in neutral(MASTER).items() if v is not None}

    def loss_of(z: torch.Tensor) -> torch.Tensor:
        y = twin.console(x, sample_rate, _params_from_logits(z, zero_stage), master)
        return losses.mix_distance(y, ref, sample_rate, config.waveform_weight)

    def run(z0: np.ndarray, steps: int, history: list[float]) -> tuple[np.ndarray, float]:
        z = torch.tensor(z0, dtype=torch.float32, requires_grad=True)
        opt = torch.optim.Adam([z], lr=config.lr)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, max(1, steps))
        best_z, best = z0, math.inf
        for _ in range(steps):
            opt.zero_grad()
            loss = loss_of(z)
            loss.backward()
            value = loss.item()
            history.append(value)
            if value < best:
                best, best_z = value, z.detach().numpy().copy()
            opt.step()
            sched.step()
            if progress is not None:
                progress()
        return best_z, best

    history: list[float] = []
    per_start = max(1, config.steps // (config.starts + 1)) if config.starts > 1 else 0
    candidates = [run(z0, per_start, history) if per_start else (z0, math.inf)
                  for z0 in _start_points(identified, peak_db, config.starts)]
    z_best, _ = min(candidates, key=lambda c: c[1])
    z_best, _ = run(z_best, config.steps - per_start * config.starts, history)

    with torch.no_grad():
        params = _params_from_logits(torch.from_numpy(z_best), zero_stage)
        y = twin.console(x, sample_rate, params, master)
        diff = float((y - ref).pow(2).mean())
        error_db = 10 * math.log10(diff / (float(ref.pow(2).mean()) + 1e-20) + 1e-20)
        mr = float(losses.mrstft(y, ref))
        band = float(losses.band_db(y, ref, sample_rate))
    tracks = []
    for i in range(n):
        values = {k: float(v[0, i]) for k, v in params.items()}
        values["input_gain_db"] = float(stage[i])
        tracks.append(TrackSetting(name=names[i], role=roles[i],
                                   params=validate(TRACK, values, f"fit of track {names[i]!r}")))
    setting = ConsoleSetting(tuple(tracks), validate(MASTER, mix_master(mix, sample_rate)))
    return FitResult(setting, error_db, mr, band, start / sample_rate,
                     (stop - start) / sample_rate, tuple(history))


def mix_master(mix: np.ndarray, sample_rate: float) -> dict[str, float | None]:
    """Master settings read off a finished mix: its loudness and its peak as the ceiling."""
    values = dict(neutral(MASTER))
    loud = integrated_loudness(mix, sample_rate)
    target = spec(MASTER, "target_lufs")
    values["target_lufs"] = float(np.clip(loud, target.min, target.max)) if math.isfinite(loud) \
        else None
    peak_db = 20 * math.log10(float(np.max(np.abs(mix))) + 1e-9)
    ceiling = spec(MASTER, "limiter_ceiling_db")
    values["limiter_ceiling_db"] = float(np.clip(math.ceil(peak_db * 10) / 10, ceiling.min,
                                                 ceiling.max))
    return values


def timed_fit(*args, **kwargs) -> tuple[FitResult, float]:
    t0 = time.perf_counter()
    result = fit_mix(*args, **kwargs)
    return result, time.perf_counter() - t0
