"""The one parameter table of the mixstyle console.

Every processor parameter of a track strip and of the master bus is described here exactly once:
name (with its unit in the name), unit, range, scale, default and *neutral* value (the value at
which the stage does nothing). The numba DSP, the torch twin, the model's output heads, the host's
MIDI map and every exporter read this table; nothing else names parameters.

Signal flow of a track strip, in order::

    input_gain_db -> high-pass -> low shelf -> peak1 -> peak2 -> peak3 -> high shelf -> low-pass
    -> compressor -> output_gain_db -> pan

Master bus::

    sum of strips -> low shelf -> peak1..3 -> high shelf -> glue compressor (comp_*)
    -> gain_db -> brick-wall limiter -> out

``target_lufs`` is not a processor: the offline renderer sets the master ``gain_db`` so that the
limited output reaches that integrated loudness, driving the limiter by at most
``max_limiting_db``. Its neutral value is ``None`` (no normalisation).

Normalised values (for the model) are in [0, 1]: linear scale maps min..max linearly, log scale
maps log(min)..log(max) linearly.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

import numpy as np

from dsp.errors import ParameterError

TRACK = "track"
MASTER = "master"
SCALES = ("lin", "log")


@dataclass(frozen=True)
class ParamSpec:
    """One parameter: ``section`` ("track" or "master"), ``name`` (with unit), range and scale.

    ``processor``/``arg`` name the DSP wrapper this entry configures and that wrapper's keyword
    argument (a test checks they match the wrapper's signature).
    """

    section: str
    name: str
    unit: str
    min: float
    max: float
    scale: str
    default: float
    neutral: float | None
    processor: str
    arg: str
    doc: str = ""

    def __post_init__(self) -> None:
        if self.section not in (TRACK, MASTER):
            raise ValueError(f"section must be 'track' or 'master', got {self.section!r}")
        if self.scale not in SCALES:
            raise ValueError(f"{self.name}: scale must be one of {SCALES}, got {self.scale!r}")
        if not self.min < self.max:
            raise ValueError(f"{self.name}: min {self.min} must be below max {self.max}")
        if self.scale == "log" and self.min <= 0:
            raise ValueError(f"{self.name}: a log-scale range must be positive")
        for label, v in (("default", self.default), ("neutral", self.neutral)):
            if v is not None and not self.min <= v <= self.max:
                raise ValueError(f"{self.name}: {label} {v} outside [{self.min}, {self.max}]")

    @property
    def key(self) -> str:
        """``section.name``, the name used in error messages and MIDI maps."""
        return f"{self.section}.{self.name}"

    def check(self, value: Any, where: str = "") -> float:
        """Return ``value`` as float, or raise ParameterError naming the parameter and range."""
        at = f" ({where})" if where else ""
        if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
            raise ParameterError(
                f"{self.key}{at} must be a number in {self.unit or 'units'}, got {value!r}"
            )
        v = float(value)
        if not math.isfinite(v):
            raise ParameterError(f"{self.key}{at} must be finite, got {v}")
        if not self.min <= v <= self.max:
            raise ParameterError(
                f"{self.key}{at} = {v:g} is out of range: allowed {self.min:g} .. {self.max:g}"
                f" {self.unit}".rstrip()
            )
        return v

    def normalise(self, value: Any) -> Any:
        """Map a value (float, numpy array or torch tensor) in [min, max] to [0, 1]."""
        if self.scale == "log":
            log = getattr(value, "log", None)
            lv = log() if callable(log) else np.log(value)
            return (lv - math.log(self.min)) / math.log(self.max / self.min)
        return (value - self.min) / (self.max - self.min)

    def denormalise(self, u: Any) -> Any:
        """Map u in [0, 1] (float, numpy array or torch tensor) back to [min, max]."""
        if self.scale == "log":
            return self.min * (self.max / self.min) ** u
        return self.min + (self.max - self.min) * u


def _p(section: str, name: str, unit: str, lo: float, hi: float, scale: str, default: float,
       neutral: float | None, processor: str, arg: str, doc: str) -> ParamSpec:
    return ParamSpec(section, name, unit, lo, hi, scale, default, neutral, processor, arg, doc)


def _eq_bands(section: str) -> list[ParamSpec]:
    s = section
    return [
        _p(s, "low_shelf_freq_hz", "Hz", 30.0, 600.0, "log", 120.0, 120.0, "low_shelf", "freq_hz",
           "low shelf corner frequency (RBJ shelf, slope 1)"),
        _p(s, "low_shelf_gain_db", "dB", -18.0, 18.0, "lin", 0.0, 0.0, "low_shelf", "gain_db",
           "low shelf gain"),
        _p(s, "peak1_freq_hz", "Hz", 40.0, 1000.0, "log", 250.0, 250.0, "peak", "freq_hz",
           "low-mid peaking band centre"),
        _p(s, "peak1_gain_db", "dB", -18.0, 18.0, "lin", 0.0, 0.0, "peak", "gain_db",
           "low-mid peaking band gain"),
        _p(s, "peak1_q", "", 0.3, 8.0, "log", 1.0, 1.0, "peak", "q", "low-mid peaking band Q"),
        _p(s, "peak2_freq_hz", "Hz", 150.0, 6000.0, "log", 1000.0, 1000.0, "peak", "freq_hz",
           "mid peaking band centre"),
        _p(s, "peak2_gain_db", "dB", -18.0, 18.0, "lin", 0.0, 0.0, "peak", "gain_db",
           "mid peaking band gain"),
        _p(s, "peak2_q", "", 0.3, 8.0, "log", 1.0, 1.0, "peak", "q", "mid peaking band Q"),
        _p(s, "peak3_freq_hz", "Hz", 800.0, 16000.0, "log", 4000.0, 4000.0, "peak", "freq_hz",
           "high-mid peaking band centre"),
        _p(s, "peak3_gain_db", "dB", -18.0, 18.0, "lin", 0.0, 0.0, "peak", "gain_db",
           "high-mid peaking band gain"),
        _p(s, "peak3_q", "", 0.3, 8.0, "log", 1.0, 1.0, "peak", "q", "high-mid peaking band Q"),
        _p(s, "high_shelf_freq_hz", "Hz", 1500.0, 16000.0, "log", 8000.0, 8000.0, "high_shelf",
           "freq_hz", "high shelf corner frequency (RBJ shelf, slope 1)"),
        _p(s, "high_shelf_gain_db", "dB", -18.0, 18.0, "lin", 0.0, 0.0, "high_shelf", "gain_db",
           "high shelf gain"),
    ]


def _compressor(section: str, ratio_max: float, attack_ms: float, release_ms: float,
                what: str) -> list[ParamSpec]:
    s = section
    return [
        _p(s, "comp_threshold_db", "dBFS", -60.0, 0.0, "lin", 0.0, 0.0, "compressor",
           "threshold_db", f"{what} threshold (stereo-linked peak detector)"),
        _p(s, "comp_ratio", ":1", 1.0, ratio_max, "log", 1.0, 1.0, "compressor", "ratio",
           f"{what} ratio; 1 = no compression"),
        _p(s, "comp_attack_ms", "ms", 0.1, 200.0, "log", attack_ms, attack_ms, "compressor",
           "attack_ms", f"{what} attack time constant"),
        _p(s, "comp_release_ms", "ms", 5.0, 2000.0, "log", release_ms, release_ms, "compressor",
           "release_ms", f"{what} release time constant"),
        _p(s, "comp_knee_db", "dB", 0.0, 24.0, "lin", 6.0, 6.0, "compressor", "knee_db",
           f"{what} soft-knee width"),
        _p(s, "comp_makeup_db", "dB", 0.0, 24.0, "lin", 0.0, 0.0, "compressor", "makeup_db",
           f"{what} make-up gain"),
    ]


TABLE: tuple[ParamSpec, ...] = tuple(
    [
        _p(TRACK, "input_gain_db", "dB", -24.0, 24.0, "lin", 0.0, 0.0, "gain", "gain_db",
           "trim at the strip input"),
        _p(TRACK, "hpf_freq_hz", "Hz", 10.0, 1000.0, "log", 10.0, 10.0, "highpass", "freq_hz",
           "high-pass cutoff (RBJ 2-pole, 12 dB/oct); at 10 Hz the filter is bypassed"),
        _p(TRACK, "hpf_q", "", 0.5, 1.5, "lin", 0.7071, 0.7071, "highpass", "q",
           "high-pass resonance; 0.7071 = Butterworth (-3 dB at the cutoff)"),
    ]
    + _eq_bands(TRACK)
    + [
        _p(TRACK, "lpf_freq_hz", "Hz", 1000.0, 20000.0, "log", 20000.0, 20000.0, "lowpass",
           "freq_hz", "low-pass cutoff (RBJ 2-pole); at 20 kHz the filter is bypassed"),
        _p(TRACK, "lpf_q", "", 0.5, 1.5, "lin", 0.7071, 0.7071, "lowpass", "q",
           "low-pass resonance; 0.7071 = Butterworth"),
    ]
    + _compressor(TRACK, 20.0, 10.0, 150.0, "track compressor")
    + [
        _p(TRACK, "output_gain_db", "dB", -60.0, 12.0, "lin", 0.0, 0.0, "gain", "gain_db",
           "track fader"),
        _p(TRACK, "pan", "L-1..R+1", -1.0, 1.0, "lin", 0.0, 0.0, "pan", "pan",
           "constant-power pan, 0 dB at centre (see dsp.gain)"),
    ]
    + _eq_bands(MASTER)
    + _compressor(MASTER, 10.0, 30.0, 200.0, "master glue compressor")
    + [
        _p(MASTER, "gain_db", "dB", -24.0, 24.0, "lin", 0.0, 0.0, "gain", "gain_db",
           "master gain into the limiter (set by the loudness target when rendering offline)"),
        _p(MASTER, "limiter_ceiling_db", "dBFS", -12.0, 0.0, "lin", -1.0, 0.0, "limiter",
           "ceiling_db", "brick-wall limiter ceiling (sample peak); at 0 dBFS it only catches overs"),
        _p(MASTER, "limiter_release_ms", "ms", 1.0, 1000.0, "log", 50.0, 50.0, "limiter",
           "release_ms", "limiter release time constant"),
        _p(MASTER, "limiter_lookahead_ms", "ms", 0.5, 10.0, "log", 5.0, 5.0, "limiter",
           "lookahead_ms", "limiter lookahead (also its latency)"),
        _p(MASTER, "target_lufs", "LUFS", -30.0, -5.0, "lin", -14.0, None, "loudness",
           "target_lufs", "integrated loudness the offline render aims for; neutral = none"),
        _p(MASTER, "max_limiting_db", "dB", 0.0, 24.0, "lin", 24.0, 24.0, "loudness",
           "max_limiting_db", "most the loudness target may drive peaks past the limiter "
           "ceiling; 0 = reach the target by gain alone, stopping where the peak meets the "
           "ceiling (a peak-normalised mix)"),
        _p(MASTER, "true_peak_over_db", "dB", 0.0, 3.0, "lin", 0.0, 0.0, "loudness",
           "true_peak_over_db", "how far the true peak (4x oversampled) of a loudness-normalised "
           "render may stand above the limiter's sample-peak ceiling, never past 0 dBTP; 0 = the "
           "ceiling holds the true peak too"),
    ]
)

TRACK_PARAMS: tuple[ParamSpec, ...] = tuple(p for p in TABLE if p.section == TRACK)
MASTER_PARAMS: tuple[ParamSpec, ...] = tuple(p for p in TABLE if p.section == MASTER)
TRACK_NAMES: tuple[str, ...] = tuple(p.name for p in TRACK_PARAMS)
MASTER_NAMES: tuple[str, ...] = tuple(p.name for p in MASTER_PARAMS)
_BY_KEY = {p.key: p for p in TABLE}


def spec(section: str, name: str) -> ParamSpec:
    """Look up one entry; unknown names raise ParameterError listing the known ones."""
    try:
        return _BY_KEY[f"{section}.{name}"]
    except KeyError:
        known = TRACK_NAMES if section == TRACK else MASTER_NAMES
        raise ParameterError(
            f"unknown {section} parameter {name!r}; known: {', '.join(known)}"
        ) from None


def section_specs(section: str) -> tuple[ParamSpec, ...]:
    if section == TRACK:
        return TRACK_PARAMS
    if section == MASTER:
        return MASTER_PARAMS
    raise ParameterError(f"section must be 'track' or 'master', got {section!r}")


def defaults(section: str) -> dict[str, float]:
    return {p.name: p.default for p in section_specs(section)}


def neutral(section: str) -> dict[str, float | None]:
    """The do-nothing setting. ``target_lufs`` is None (no loudness normalisation)."""
    return {p.name: p.neutral for p in section_specs(section)}


def validate(section: str, values: Mapping[str, Any], where: str = "",
             fill: str = "neutral") -> dict[str, Any]:
    """Check names, types and ranges; fill missing names from ``fill`` ('neutral'/'default').

    ``target_lufs`` may be None. Returns a new dict in table order.
    """
    if not isinstance(values, Mapping):
        raise ParameterError(f"{section} parameters{' (' + where + ')' if where else ''} "
                             f"must be a mapping of name -> number, got {type(values).__name__}")
    base = neutral(section) if fill == "neutral" else defaults(section)
    for name in values:
        spec(section, name)  # raises on unknown names
    out: dict[str, Any] = {}
    for p in section_specs(section):
        v = values.get(p.name, base[p.name])
        out[p.name] = None if (v is None and p.neutral is None) else p.check(v, where)
    return out


def normalise_all(section: str, values: Mapping[str, Any]) -> np.ndarray:
    """Table-ordered vector in [0, 1] (None -> the default's normalised value)."""
    return np.array([p.normalise(p.default if values[p.name] is None else values[p.name])
                     for p in section_specs(section)], dtype=np.float64)


def denormalise_all(section: str, u: Iterable[float]) -> dict[str, float]:
    """Inverse of normalise_all; u is clipped to [0, 1] first."""
    u = np.clip(np.asarray(list(u), dtype=np.float64), 0.0, 1.0)
    specs = section_specs(section)
    if u.shape != (len(specs),):
        raise ParameterError(f"{section} vector must have {len(specs)} entries, got {u.shape}")
    return {p.name: float(np.clip(p.denormalise(x), p.min, p.max)) for p, x in zip(specs, u)}


@dataclass(frozen=True)
class TrackSetting:
    name: str
    params: dict[str, Any]
    role: str = "other"


@dataclass(frozen=True)
class ConsoleSetting:
    """A whole console: one parameter dict per track plus the master bus."""

    tracks: tuple[TrackSetting, ...]
    master: dict[str, Any] = field(default_factory=lambda: neutral(MASTER))

    def __post_init__(self) -> None:
        names = [t.name for t in self.tracks]
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise ParameterError(f"track names must be unique, repeated: {sorted(dup)}")

    def track(self, name: str) -> TrackSetting:
        for t in self.tracks:
            if t.name == name:
                return t
        raise ParameterError(f"no track named {name!r}; tracks: {[t.name for t in self.tracks]}")


FORMAT = "mixstyle.console"
VERSION = 1


def setting_from_dict(data: Any, where: str = "console setting") -> ConsoleSetting:
    """Validate a decoded JSON object and build a ConsoleSetting (missing params -> neutral)."""
    if not isinstance(data, Mapping):
        raise ParameterError(f"{where}: expected a JSON object, got {type(data).__name__}")
    if data.get("format") != FORMAT:
        raise ParameterError(f"{where}: 'format' must be {FORMAT!r}, got {data.get('format')!r}")
    if data.get("version") != VERSION:
        raise ParameterError(f"{where}: unsupported version {data.get('version')!r}; "
                             f"this mixstyle reads version {VERSION}")
    unknown = set(data) - {"format", "version", "tracks", "master", "sample_rate_hz", "notes"}
    if unknown:
        raise ParameterError(f"{where}: unknown top-level keys {sorted(unknown)}")
    tracks_in = data.get("tracks", [])
    if not isinstance(tracks_in, list):
        raise ParameterError(f"{where}: 'tracks' must be a list")
    tracks = []
    for i, t in enumerate(tracks_in):
        if not isinstance(t, Mapping) or not isinstance(t.get("name"), str):
            raise ParameterError(f"{where}: track #{i} must be an object with a string 'name'")
        tw = f"{where}, track {t['name']!r}"
        tracks.append(TrackSetting(name=t["name"], role=str(t.get("role", "other")),
                                   params=validate(TRACK, t.get("params", {}), tw)))
    master = validate(MASTER, data.get("master", {}), f"{where}, master")
    return ConsoleSetting(tracks=tuple(tracks), master=master)


def setting_to_dict(setting: ConsoleSetting) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "version": VERSION,
        "tracks": [{"name": t.name, "role": t.role,
                    "params": validate(TRACK, t.params, f"track {t.name!r}")}
                   for t in setting.tracks],
        "master": validate(MASTER, setting.master, "master"),
    }


def dumps(setting: ConsoleSetting) -> str:
    return json.dumps(setting_to_dict(setting), indent=2)


def loads(text: str, where: str = "console setting") -> ConsoleSetting:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise ParameterError(f"{where}: not valid JSON ({e})") from None
    return setting_from_dict(data, where)


def table_markdown() -> str:
    """The table as Markdown (for README and the model card)."""
    rows = ["| section | name | unit | min | max | scale | default | neutral | meaning |",
            "|---|---|---|---|---|---|---|---|---|"]
    for p in TABLE:
        rows.append(f"| {p.section} | `{p.name}` | {p.unit} | {p.min:g} | {p.max:g} | {p.scale} "
                    f"| {p.default:g} | {'off' if p.neutral is None else format(p.neutral, 'g')} "
                    f"| {p.doc} |")
    return "\n".join(rows)
