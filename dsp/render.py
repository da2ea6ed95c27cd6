"""Offline render of a whole console setting, with optional loudness normalisation.

``render(stems, sample_rate, setting)`` returns audio of the same length as the stems (the
limiter's latency is compensated). With ``master.target_lufs`` set, the strips and the master bus
up to its gain stage are rendered once, their integrated loudness sets the master ``gain_db``
(``target - measured``, clipped to the table range), the limiter runs, and the gain is corrected
from the limited result (the limiter lowers loudness) until it is within ``TOLERANCE_LU``.

``PROCESSORS`` maps the table's ``processor`` names to the classes (or function) whose keyword
arguments the table's ``arg`` names: a test keeps the two in step.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from types import EllipsisType
from typing import Any, Callable

import numpy as np

from dsp.biquad import HighPass, HighShelf, LowPass, LowShelf, Peak
from dsp.compressor import Compressor
from dsp.console import Console
from dsp.gain import Gain, Pan
from dsp.limiter import Limiter
from dsp.loudness import integrated_loudness, true_peak_dbtp
from dsp.params import MASTER, ConsoleSetting, spec
from dsp.validate import check_sample_rate

TOLERANCE_LU = 0.05
MAX_CORRECTIONS = 6


@dataclass(frozen=True)
class RenderResult:
    """The rendered mix and what the render measured/decided."""

    audio: np.ndarray           # (2, n) float32, same length as the stems
    master_gain_db: float       # the master gain used (chosen by the loudness target if set)
    loudness_lufs: float        # integrated loudness of ``audio`` (-inf for silence)
    true_peak_dbtp: float       # true peak of ``audio``


def _limited(pre: np.ndarray, gain_db: float, console: Console) -> np.ndarray:
    """``pre`` (the master bus before gain and limiter) * gain -> fresh limiter, compensated."""
    lim = console.master.limiter
    fresh = Limiter(console.sample_rate, lim.ceiling_db, lim.release_ms, lim.lookahead_ms)
    lat = fresh.latency_samples
    x = np.zeros((2, pre.shape[1] + lat), dtype=np.float32)
    np.multiply(pre, 10.0 ** (gain_db / 20.0), out=x[:, :pre.shape[1]], casting="unsafe")
    fresh.process_into(x, x)
    return np.ascontiguousarray(x[:, lat:])


def _normalise(pre: np.ndarray, target: float, console: Console,
               gain_range: tuple[float, float]) -> tuple[float, np.ndarray]:
    """Master gain so that the limited ``pre * gain`` measures ``target`` LUFS; returns it and
    the limited audio. Secant steps on (gain, loudness); below the meter's -70 LUFS gate the
    gain starts at the top of its range."""
    lo, hi = gain_range
    if not np.any(pre):
        return 0.0, _limited(pre, 0.0, console)
    measured = integrated_loudness(pre, console.sample_rate)
    gain = float(np.clip(target - measured if math.isfinite(measured) else hi, lo, hi))
    points: list[tuple[float, float]] = []
    out = _limited(pre, gain, console)
    for _ in range(MAX_CORRECTIONS):
        got = integrated_loudness(out, console.sample_rate)
        if not math.isfinite(got) or abs(target - got) <= TOLERANCE_LU:
            break
        slope = 1.0
        if points and points[-1][0] != gain:
            slope = (got - points[-1][1]) / (gain - points[-1][0])
            slope = min(max(slope, 0.05), 1.0)  # louder with more gain, never by more than 1:1
        points.append((gain, got))
        new = float(np.clip(gain + (target - got) / slope, lo, hi))
        if new == gain:
            break  # out of reach at the end of the gain range
        gain = new
        out = _limited(pre, gain, console)
    return gain, out


def render(stems: np.ndarray, sample_rate: float, setting: ConsoleSetting, *,
           target_lufs: float | None | EllipsisType = ...,
           max_limiting_db: float | EllipsisType = ...) -> RenderResult:
    """Mix ``stems (N, 2, n)`` with ``setting``; ``target_lufs`` (LUFS or None) and
    ``max_limiting_db`` override the master's entries when given. The master gain never drives
    the bus peak more than ``max_limiting_db`` past the limiter ceiling."""
    sr = check_sample_rate(sample_rate)
    console = Console(sr, setting)
    x = console._check(stems)
    target = setting.master.get("target_lufs") if target_lufs is ... else target_lufs
    if target is not None:
        target = spec(MASTER, "target_lufs").check(target, "render")
    g_spec = spec(MASTER, "gain_db")
    if target is None:
        gain = float(console.master.params["gain_db"])
        lat = console.latency_samples
        padded = np.zeros((x.shape[0], 2, x.shape[2] + lat), dtype=np.float32)
        padded[:, :, :x.shape[2]] = x
        out = console.process(padded)[:, lat:]
    else:
        console.set_master_params({"gain_db": 0.0})
        console.reset()  # no glide: the gain is 0 dB from the first sample
        pre = np.empty((2, x.shape[2]), dtype=np.float32)
        console._mix_into(x, pre)
        cap = setting.master.get("max_limiting_db", 24.0) if max_limiting_db is ... \
            else spec(MASTER, "max_limiting_db").check(max_limiting_db, "render")
        peak = float(np.max(np.abs(pre))) if pre.size else 0.0
        hi = g_spec.max
        if peak > 0:
            ceiling = float(console.master.params["limiter_ceiling_db"])
            hi = min(hi, ceiling - 20.0 * math.log10(peak) + float(cap))
        gain, out = _normalise(pre, target, console, (g_spec.min, max(g_spec.min, hi)))
    out = np.ascontiguousarray(out)
    return RenderResult(audio=out, master_gain_db=gain, loudness_lufs=integrated_loudness(out, sr),
                        true_peak_dbtp=true_peak_dbtp(out, sr))


PROCESSORS: dict[str, Callable[..., Any]] = {
    "gain": Gain, "highpass": HighPass, "lowpass": LowPass, "low_shelf": LowShelf,
    "high_shelf": HighShelf, "peak": Peak, "compressor": Compressor, "pan": Pan,
    "limiter": Limiter, "loudness": render,
}
