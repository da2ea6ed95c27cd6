"""Offline render of a whole console setting, with optional loudness normalisation.

``render(stems, sample_rate, setting)`` returns audio of the same length as the stems (the
limiter's latency is compensated). With ``master.target_lufs`` set, the strips and the master bus
up to its gain stage are rendered once, their integrated loudness sets the master ``gain_db``
(``target - measured``, clipped to the table range), the limiter runs, and the gain is corrected
from the limited result (the limiter lowers loudness) until it is within ``TOLERANCE_LU``. The
limiter's ceiling is a sample-peak ceiling; a normalised render also keeps its *true* peak (4x
oversampled, BS.1770) at or under it plus ``true_peak_over_db`` (a producer whose sample-peak
limiter lets the samples between samples rise above its ceiling, up to a true peak they accept),
by running the limiter again with its ceiling lowered by the overshoot (``TRUE_PEAK_PASSES``).
``bus_before_limiter`` gives the unlimited bus.

``PROCESSORS`` maps the table's ``processor`` names to the classes (or function) whose keyword
arguments the table's ``arg`` names: a test keeps the two in step.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from types import EllipsisType
from typing import Any, Callable, Mapping

import numpy as np

from dsp.biquad import HighPass, HighShelf, LowPass, LowShelf, Peak
from dsp.compressor import Compressor
from dsp.console import Console
from dsp.gain import Gain, Pan, pan_gains
from dsp.limiter import Limiter
from dsp.loudness import integrated_loudness, true_peak_dbtp
from dsp.params import MASTER, TRACK, ConsoleSetting, spec
from dsp.strip import ChannelStrip
from dsp.validate import check_sample_rate

TOLERANCE_LU = 0.05
MAX_CORRECTIONS = 6
# a loudness-normalised render keeps its true peak (4x oversampled) at or under the ceiling
TRUE_PEAK_PASSES = 4
TRUE_PEAK_TOLERANCE_DB = 0.01
TRUE_PEAK_MARGIN_DB = 0.02
_C_SPEC = spec(MASTER, "limiter_ceiling_db")
_FADER, _PAN = spec(TRACK, "output_gain_db"), spec(TRACK, "pan")


@dataclass(frozen=True)
class RenderResult:
    """The rendered mix and what the render measured/decided."""

    audio: np.ndarray           # (2, n) float32, same length as the stems
    master_gain_db: float       # the master gain used (chosen by the loudness target if set)
    loudness_lufs: float        # integrated loudness of ``audio`` (-inf for silence)
    true_peak_dbtp: float       # true peak of ``audio``
    limiter_ceiling_db: float   # the ceiling the limiter ran at (lowered to hold the true peak)


def _limited(pre: np.ndarray, gain_db: float, console: Console,
             ceiling_db: float | None = None) -> np.ndarray:
    """``pre`` (the master bus before gain and limiter) * gain -> fresh limiter, compensated;
    ``ceiling_db`` overrides the limiter's own (the true-peak correction lowers it)."""
    lim = console.master.limiter
    ceiling = lim.ceiling_db if ceiling_db is None else ceiling_db
    fresh = Limiter(console.sample_rate, ceiling, lim.release_ms, lim.lookahead_ms)
    lat = fresh.latency_samples
    x = np.zeros((2, pre.shape[1] + lat), dtype=np.float32)
    np.multiply(pre, 10.0 ** (gain_db / 20.0), out=x[:, :pre.shape[1]], casting="unsafe")
    fresh.process_into(x, x)
    return np.ascontiguousarray(x[:, lat:])


def _normalise(pre: np.ndarray, target: float, console: Console,
               gain_range: tuple[float, float], ceiling_db: float | None = None,
               start_db: float | None = None) -> tuple[float, np.ndarray]:
    """Master gain so that the limited ``pre * gain`` measures ``target`` LUFS; returns it and
    the limited audio. Secant steps on (gain, loudness); below the meter's -70 LUFS gate the
    gain starts at the top of its range."""
    lo, hi = gain_range
    if not np.any(pre):
        return 0.0, _limited(pre, 0.0, console, ceiling_db)
    measured = integrated_loudness(pre, console.sample_rate)
    gain = float(np.clip(target - measured if math.isfinite(measured) else hi, lo, hi)) \
        if start_db is None else float(np.clip(start_db, lo, hi))
    points: list[tuple[float, float]] = []
    out = _limited(pre, gain, console, ceiling_db)
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
        out = _limited(pre, gain, console, ceiling_db)
    return gain, out


def _bus(console: Console, x: np.ndarray) -> np.ndarray:
    """The master bus before its gain stage and limiter (float32, may pass 0 dBFS)."""
    console.set_master_params({"gain_db": 0.0})
    console.reset()  # no glide: the gain is 0 dB from the first sample
    pre = np.empty((2, x.shape[2]), dtype=np.float32)
    console._mix_into(x, pre)
    return pre


def bus_before_limiter(stems: np.ndarray, sample_rate: float, setting: ConsoleSetting
                       ) -> np.ndarray:
    """What the master bus carries into its gain stage and limiter for ``stems (N, 2, n)``:
    strips, sum, master EQ and glue compressor; no limiting, so it may pass 0 dBFS."""
    console = Console(check_sample_rate(sample_rate), setting)
    return _bus(console, console._check(stems))


def render(stems: np.ndarray, sample_rate: float, setting: ConsoleSetting, *,
           target_lufs: float | None | EllipsisType = ...,
           max_limiting_db: float | EllipsisType = ...,
           true_peak_over_db: float | EllipsisType = ...) -> RenderResult:
    """Mix ``stems (N, 2, n)`` with ``setting``; ``target_lufs`` (LUFS or None),
    ``max_limiting_db`` and ``true_peak_over_db`` override the master's entries when given.
    The master gain never drives the bus's true peak more than ``max_limiting_db`` past the
    limiter ceiling (0: the render stops where the true peak meets the ceiling, a
    peak-normalised mix)."""
    sr = check_sample_rate(sample_rate)
    console = Console(sr, setting)
    x = console._check(stems)
    target = _target(setting, target_lufs)
    if target is None:
        lat = console.latency_samples
        padded = np.zeros((x.shape[0], 2, x.shape[2] + lat), dtype=np.float32)
        padded[:, :, :x.shape[2]] = x
        out = console.process(padded)[:, lat:]
        return _result(out, sr, float(console.master.params["gain_db"]),
                       float(console.master.params["limiter_ceiling_db"]))
    return _to_loudness(_bus(console, x), console, target, max_limiting_db, true_peak_over_db)


def prefader_strips(stems: np.ndarray, sample_rate: float, setting: ConsoleSetting
                    ) -> np.ndarray:
    """Each track of ``stems (N, 2, n)`` through its strip as set, but with its fader at 0 dB
    and its pan centred: ``(N, 2, n)`` float32 for ``render_prefader``. Settings that differ
    only in faders, pans and master share these (learn mixes its held-out songs at several
    balances through the same strips)."""
    sr = check_sample_rate(sample_rate)
    x = Console(sr, setting)._check(stems)
    out = np.empty_like(x)
    for i, track in enumerate(setting.tracks):
        strip = ChannelStrip(sr, dict(track.params, output_gain_db=0.0, pan=0.0), 2)
        strip.process_into(x[i], out[i])
    return out


def render_prefader(strips: np.ndarray, sample_rate: float, setting: ConsoleSetting, *,
                    target_lufs: float | None | EllipsisType = ...,
                    max_limiting_db: float | EllipsisType = ...,
                    true_peak_over_db: float | EllipsisType = ...) -> RenderResult:
    """``render`` from ``prefader_strips`` (made with a setting whose strips, faders and pans
    aside, are ``setting``'s): the faders and pans applied to them, summed, the master bus as in
    ``render``. The same mix as ``render`` to float32 rounding (the fader and pan are one
    multiplication there, two here)."""
    sr = check_sample_rate(sample_rate)
    console = Console(sr, setting)
    x = console._check(strips)
    bus = np.zeros((2, x.shape[2]), dtype=np.float32)
    for i, track in enumerate(setting.tracks):
        for c, g in enumerate(post_fader_gains(track.params)):
            bus[c] += x[i, c] * g
    console.set_master_params({"gain_db": 0.0})
    console.reset()
    console.master._bus_into(bus, bus)
    target = _target(setting, target_lufs)
    if target is None:
        gain = float(setting.master.get("gain_db", 0.0))
        return _result(_limited(bus, gain, console), sr, gain,
                       float(console.master.params["limiter_ceiling_db"]))
    return _to_loudness(bus, console, target, max_limiting_db, true_peak_over_db)


def post_fader_gains(params: Mapping[str, Any]) -> tuple[np.float32, np.float32]:
    """(left, right) gains that a strip's fader and pan (``params``; the table's defaults where
    absent) apply to its ``prefader_strips`` output."""
    fader = 10.0 ** (float(params.get("output_gain_db", _FADER.default)) / 20.0)
    gl, gr = pan_gains(float(params.get("pan", _PAN.default)))
    return np.float32(fader * gl), np.float32(fader * gr)


def _target(setting: ConsoleSetting, target_lufs: float | None | EllipsisType) -> float | None:
    target = setting.master.get("target_lufs") if target_lufs is ... else target_lufs
    return None if target is None else spec(MASTER, "target_lufs").check(target, "render")


def _result(out: np.ndarray, sr: float, gain: float, ceiling: float) -> RenderResult:
    out = np.ascontiguousarray(out)
    return RenderResult(audio=out, master_gain_db=gain, loudness_lufs=integrated_loudness(out, sr),
                        true_peak_dbtp=true_peak_dbtp(out, sr), limiter_ceiling_db=ceiling)


def _to_loudness(pre: np.ndarray, console: Console, target: float,
                 max_limiting_db: float | EllipsisType,
                 true_peak_over_db: float | EllipsisType) -> RenderResult:
    """The master gain and limiter that bring the bus ``pre`` to ``target`` LUFS (``render``)."""
    sr = console.sample_rate
    g_spec = spec(MASTER, "gain_db")
    params = console.master.params
    cap = params.get("max_limiting_db", 24.0) if max_limiting_db is ... \
        else spec(MASTER, "max_limiting_db").check(max_limiting_db, "render")
    peak_db = true_peak_dbtp(pre, sr) if pre.size else -math.inf
    ceiling = float(params["limiter_ceiling_db"])
    # the allowance never takes the true peak past 0 dBTP
    allowance = params["true_peak_over_db"] if true_peak_over_db is ... \
        else spec(MASTER, "true_peak_over_db").check(true_peak_over_db, "render")
    tp_ceiling = max(ceiling, min(ceiling + float(allowance), 0.0))
    hi = g_spec.max
    if math.isfinite(peak_db):
        hi = min(hi, tp_ceiling - peak_db + float(cap))
    gain_range = (g_spec.min, max(g_spec.min, hi))
    gain, out = _normalise(pre, target, console, gain_range)
    # the ceiling (plus the true-peak allowance) holds for the true peak too: where the
    # samples between samples pass it, the limiter runs again with its ceiling lowered by
    # the overshoot
    inner = ceiling
    for _ in range(TRUE_PEAK_PASSES):
        over = true_peak_dbtp(out, sr) - tp_ceiling
        if not math.isfinite(over) or over <= TRUE_PEAK_TOLERANCE_DB:
            break
        inner = max(_C_SPEC.min, inner - over - TRUE_PEAK_MARGIN_DB)
        gain, out = _normalise(pre, target, console, gain_range, inner, gain)
    return _result(out, sr, gain, inner)


PROCESSORS: dict[str, Callable[..., Any]] = {
    "gain": Gain, "highpass": HighPass, "lowpass": LowPass, "low_shelf": LowShelf,
    "high_shelf": HighShelf, "peak": Peak, "compressor": Compressor, "pan": Pan,
    "limiter": Limiter, "loudness": render,
}
