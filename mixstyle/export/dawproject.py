"""DAWproject 1.0 export and import (the open project format of Bitwig, Studio One, Cubase...).

Export writes a ZIP with ``project.xml`` and ``metadata.xml`` (schema: Project.xsd/MetaData.xsd):
one audio track per stem with one clip at 0 s, and a master track. Mapping of the console:

=========================  ===============================================================
mixstyle (dsp.params)      DAWproject
=========================  ===============================================================
input_gain_db              built-in ``Equalizer`` InputGain (dB)
hpf_freq_hz / hpf_q        Equalizer band ``highPass`` Freq (hertz) / Q; disabled at 10 Hz
low/high shelf freq, gain  bands ``lowShelf`` / ``highShelf`` (Q written as 0.7071: RBJ S=1)
peak1..3 freq, gain, q     three ``bell`` bands, ``order`` 2..4; a 0 dB band is disabled
lpf_freq_hz / lpf_q        band ``lowPass``; disabled at 20 kHz
comp_threshold_db          built-in ``Compressor`` Threshold (decibel)
comp_ratio                 Ratio in percent (0-100, as the format says): 100 * (1 - 1/ratio)
comp_attack/release_ms     Attack / Release in seconds
comp_makeup_db             OutputGain (decibel); AutoMakeup false
comp_knee_db               no built-in field: a named RealParameter ``comp_knee_db`` (decibel)
output_gain_db             channel Volume, linear gain 10^(dB/20)
pan (-1..1)                channel Pan, normalised 0..1 (0.5 = centre)
master gain_db             built-in ``Limiter`` InputGain (gain into the limiter)
limiter ceiling/release    Limiter Threshold (decibel) / Release (seconds)
limiter_lookahead_ms       Limiter Attack (seconds): the lookahead is the limiter's attack
target_lufs                no built-in field: RealParameter ``target_lufs`` on the Limiter
                           (omitted when None)
track role                 Track ``comment`` ``role=<role>``
session sample rate        no project-level field (each clip's ``Audio`` ``sampleRate`` is
                           its file's own rate): stated in metadata.xml's ``Comment``
=========================  ===============================================================

A device is disabled when it does nothing (compressor at ratio 1 and 0 dB makeup). Receiving DAWs
use their own filter designs, pan law and detectors, so the sound is close, not sample-identical.

Import (``import_dawproject``) reads these fields back (also from other DAWs' files, converting the
units the schema allows) and refuses unsafe containers: see ``safe_zip``.
"""

from __future__ import annotations

import math
import os
import re
import zipfile
from pathlib import Path
from typing import Any, Callable, Sequence
from xml.etree.ElementTree import Element, SubElement, tostring

from pedalboard.io import AudioFile

from dsp.errors import ExportError, ParameterError
from dsp.params import (MASTER, TRACK, ConsoleSetting, TrackSetting, neutral, spec, validate)
from dsp.validate import check_sample_rate
from mixstyle.export.safe_zip import (SafeZip, ZipLimits, parse_xml, safe_file_stem,
                                      write_atomic)

FORMAT_VERSION = "1.0"
APP_NAME, APP_VERSION = "mixstyle", "0.1.0"
SHELF_Q = 0.7071
_PEAKS = ("peak1", "peak2", "peak3")


def _num(v: float) -> str:
    return repr(float(v))


class _Ids:
    def __init__(self) -> None:
        self.n = 0

    def __call__(self) -> str:
        self.n += 1
        return f"id{self.n}"


def _real(parent: Element, tag: str, value: float, unit: str, ids: _Ids, **attrs: str) -> Element:
    return SubElement(parent, tag, id=ids(), unit=unit, value=_num(value), **attrs)


def _bool(parent: Element, tag: str, on: bool, ids: _Ids, **attrs: str) -> Element:
    return SubElement(parent, tag, id=ids(), value="true" if on else "false", **attrs)


def _device(parent: Element, tag: str, name: str, on: bool, ids: _Ids,
            extra: dict[str, tuple[float, str]]) -> Element:
    dev = SubElement(parent, tag, id=ids(), deviceName=name, deviceRole="audioFX",
                     deviceVendor=APP_NAME, name=name)
    if extra:
        params = SubElement(dev, "Parameters")
        for pname, (value, unit) in extra.items():
            _real(params, "RealParameter", value, unit, ids, name=pname)
    _bool(dev, "Enabled", on, ids, name="On/Off")
    return dev


def _equalizer(parent: Element, section: str, p: dict[str, Any], ids: _Ids) -> None:
    bands: list[tuple[str, float, float | None, float, bool]] = []
    if section == TRACK:
        bands.append(("highPass", p["hpf_freq_hz"], None, p["hpf_q"],
                      p["hpf_freq_hz"] > spec(TRACK, "hpf_freq_hz").min))
    bands.append(("lowShelf", p["low_shelf_freq_hz"], p["low_shelf_gain_db"], SHELF_Q,
                  p["low_shelf_gain_db"] != 0.0))
    for k in _PEAKS:
        bands.append(("bell", p[f"{k}_freq_hz"], p[f"{k}_gain_db"], p[f"{k}_q"],
                      p[f"{k}_gain_db"] != 0.0))
    bands.append(("highShelf", p["high_shelf_freq_hz"], p["high_shelf_gain_db"], SHELF_Q,
                  p["high_shelf_gain_db"] != 0.0))
    if section == TRACK:
        bands.append(("lowPass", p["lpf_freq_hz"], None, p["lpf_q"],
                      p["lpf_freq_hz"] < spec(TRACK, "lpf_freq_hz").max))
    eq = _device(parent, "Equalizer", "EQ", True, ids, {})
    for order, (kind, freq, gain, q, on) in enumerate(bands):
        band = SubElement(eq, "Band", type=kind, order=str(order))
        _real(band, "Freq", freq, "hertz", ids)
        if gain is not None:
            _real(band, "Gain", gain, "decibel", ids)
        _real(band, "Q", q, "linear", ids)
        _bool(band, "Enabled", on, ids)
    if section == TRACK:
        _real(eq, "InputGain", p["input_gain_db"], "decibel", ids)


def _compressor(parent: Element, p: dict[str, Any], ids: _Ids) -> None:
    on = p["comp_ratio"] > 1.0 or p["comp_makeup_db"] != 0.0
    dev = _device(parent, "Compressor", "Compressor", on, ids,
                  {"comp_knee_db": (p["comp_knee_db"], "decibel")})
    _real(dev, "Attack", p["comp_attack_ms"] / 1000.0, "seconds", ids)
    _bool(dev, "AutoMakeup", False, ids)
    _real(dev, "OutputGain", p["comp_makeup_db"], "decibel", ids)
    _real(dev, "Ratio", 100.0 * (1.0 - 1.0 / p["comp_ratio"]), "percent", ids, min="0", max="100")
    _real(dev, "Release", p["comp_release_ms"] / 1000.0, "seconds", ids)
    _real(dev, "Threshold", p["comp_threshold_db"], "decibel", ids)


def _limiter(parent: Element, m: dict[str, Any], ids: _Ids) -> None:
    extra = {} if m["target_lufs"] is None else {"target_lufs": (m["target_lufs"], "decibel")}
    dev = _device(parent, "Limiter", "Limiter", True, ids, extra)
    _real(dev, "Attack", m["limiter_lookahead_ms"] / 1000.0, "seconds", ids)
    _real(dev, "InputGain", m["gain_db"], "decibel", ids)
    _real(dev, "Release", m["limiter_release_ms"] / 1000.0, "seconds", ids)
    _real(dev, "Threshold", m["limiter_ceiling_db"], "decibel", ids)


def _channel(track: Element, role: str, ids: _Ids, dest: str | None) -> Element:
    ch = SubElement(track, "Channel", audioChannels="2", role=role, solo="false", id=ids(),
                    name=track.get("name", ""))
    if dest:
        ch.set("destination", dest)
    return ch


def _audio_info(path: Path, name: str) -> tuple[float, int, int]:
    try:
        with AudioFile(str(path)) as f:
            return float(f.frames) / float(f.samplerate), int(f.samplerate), int(f.num_channels)
    except Exception as e:  # pedalboard raises several types for unreadable files
        raise ExportError(f"stem {path.name!r} of track {name!r}: cannot read its audio header "
                          f"({e})") from None


def project_xml(setting: ConsoleSetting, stems: Sequence[tuple[str, Path]],
                ref_for: Callable[[str, Path], tuple[str, bool]]) -> bytes:
    """project.xml bytes; ``ref_for(track, path) -> (file path, external)`` places the audio."""
    ids = _Ids()
    clips = {name: Path(p) for name, p in stems}
    known = {t.name for t in setting.tracks}
    for name in clips:
        if name not in known:
            raise ExportError(f"stem for {name!r} has no track in the setting; tracks: "
                              f"{sorted(known)}")
    root = Element("Project", version=FORMAT_VERSION)
    SubElement(root, "Application", name=APP_NAME, version=APP_VERSION)
    structure = SubElement(root, "Structure")
    master_track = Element("Track", contentType="audio", loaded="true", id=ids(), name="Master")
    master_ch = _channel(master_track, "master", ids, None)
    lanes_root = Element("Lanes", timeUnit="seconds", id=ids())
    for t in setting.tracks:
        p = validate(TRACK, t.params, f"track {t.name!r}")
        tr = SubElement(structure, "Track", contentType="audio", loaded="true", id=ids(),
                        name=t.name, comment=f"role={t.role}")
        ch = _channel(tr, "regular", ids, master_ch.get("id"))
        devices = SubElement(ch, "Devices")
        _equalizer(devices, TRACK, p, ids)
        _compressor(devices, p, ids)
        _bool(ch, "Mute", False, ids, name="Mute")
        _real(ch, "Pan", (p["pan"] + 1.0) / 2.0, "normalized", ids, min="0", max="1", name="Pan")
        _real(ch, "Volume", 10.0 ** (p["output_gain_db"] / 20.0), "linear", ids, min="0",
              max=_num(10.0 ** (spec(TRACK, "output_gain_db").max / 20.0)), name="Volume")
        if t.name in clips:
            duration_s, rate, channels = _audio_info(clips[t.name], t.name)
            file_path, external = ref_for(t.name, clips[t.name])
            lane = SubElement(lanes_root, "Lanes", track=tr.get("id", ""), id=ids())
            clip_list = SubElement(lane, "Clips", id=ids())
            clip = SubElement(clip_list, "Clip", time="0.0", duration=_num(duration_s),
                              playStart="0.0", contentTimeUnit="seconds", name=t.name)
            audio = SubElement(clip, "Audio", channels=str(channels), sampleRate=str(rate),
                               duration=_num(duration_s), id=ids())
            SubElement(audio, "File", path=file_path, external="true" if external else "false")
    m = validate(MASTER, setting.master, "master")
    devices = SubElement(master_ch, "Devices")
    _equalizer(devices, MASTER, m, ids)
    _compressor(devices, m, ids)
    _limiter(devices, m, ids)
    _bool(master_ch, "Mute", False, ids, name="Mute")
    _real(master_ch, "Pan", 0.5, "normalized", ids, min="0", max="1", name="Pan")
    _real(master_ch, "Volume", 1.0, "linear", ids, min="0", max="2", name="Volume")
    structure.append(master_track)
    arrangement = SubElement(root, "Arrangement", id=ids())
    arrangement.append(lanes_root)
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + tostring(root, encoding="unicode").encode()


def metadata_xml(title: str, sample_rate_hz: float | None = None) -> bytes:
    root = Element("MetaData")
    SubElement(root, "Title").text = title
    rate = "" if sample_rate_hz is None else (
        f" Session sample rate: {sample_rate_hz:g} Hz (the mix was made at this rate; each "
        f"clip's sampleRate is its file's own).")
    SubElement(root, "Comment").text = (
        "Exported by mixstyle. Compressor knee and loudness target are named device parameters "
        "(comp_knee_db, target_lufs); the master gain is the limiter's input gain." + rate)
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + tostring(root, encoding="unicode").encode()


def export_dawproject(setting: ConsoleSetting, stems: Sequence[tuple[str, str | os.PathLike[str]]],
                      out_path: str | os.PathLike[str], embed_audio: bool = False,
                      sample_rate_hz: float | None = None) -> Path:
    """Write a .dawproject ZIP atomically. Stems are embedded under ``audio/`` or referenced.

    Referenced stems use a path relative to the project's folder when they lie inside it,
    otherwise an absolute path (both ``external="true"``). ``sample_rate_hz`` (the session's
    rate) is stated in the metadata's comment: the format has no project-level rate.
    """
    if not isinstance(setting, ConsoleSetting):
        raise TypeError(f"setting must be a dsp.params.ConsoleSetting, got "
                        f"{type(setting).__name__}")
    out = Path(out_path)
    stem_list = [(str(n), Path(p)) for n, p in stems]
    for name, p in stem_list:
        if not p.is_file():
            raise ExportError(f"stem {p.name!r} of track {name!r} does not exist ({p})")
    embedded: dict[str, Path] = {}
    base = out.resolve().parent

    def ref_for(name: str, path: Path) -> tuple[str, bool]:
        if embed_audio:
            stem, n = safe_file_stem(name), 1
            entry = f"audio/{stem}{path.suffix.lower()}"
            while entry in embedded:
                n += 1
                entry = f"audio/{stem}_{n}{path.suffix.lower()}"
            embedded[entry] = path
            return entry, False
        full = path.resolve()
        if full.is_relative_to(base):
            return full.relative_to(base).as_posix(), True
        return full.as_posix(), True

    project = project_xml(setting, stem_list, ref_for)
    meta = metadata_xml(out.stem, None if sample_rate_hz is None
                        else check_sample_rate(sample_rate_hz))

    def write(f: Any) -> None:
        with zipfile.ZipFile(f, "w", compression=zipfile.ZIP_DEFLATED) as z:
            z.writestr("project.xml", project)
            z.writestr("metadata.xml", meta)
            for entry, src in embedded.items():
                z.write(src, entry, compress_type=zipfile.ZIP_STORED)

    return write_atomic(out, write)


# ----------------------------------------------------------------------------------- import

_VOLUME_FLOOR_DB = spec(TRACK, "output_gain_db").min


def _value(el: Element | None, where: str, kind: str) -> float | None:
    """Read a RealParameter in mixstyle units; ``kind`` picks the accepted unit conversions."""
    if el is None or el.get("value") is None:
        return None
    try:
        v = float(el.get("value", ""))
    except ValueError:
        raise ExportError(f"{where}: value {el.get('value')!r} is not a number") from None
    if not math.isfinite(v):
        raise ExportError(f"{where}: value {v} is not finite")
    unit = el.get("unit", "")
    conv: dict[str, dict[str, Callable[[float], float]]] = {
        "hz": {"hertz": lambda x: x, "": lambda x: x},
        "db": {"decibel": lambda x: x, "": lambda x: x,
               "linear": lambda x: 20 * math.log10(max(x, 1e-12))},
        "q": {"linear": lambda x: x, "": lambda x: x},
        "ms": {"seconds": lambda x: 1000 * x, "": lambda x: 1000 * x},
        "ratio": {"percent": lambda x: 1 / max(1 - x / 100, 1e-9),
                  "normalized": lambda x: 1 / max(1 - x, 1e-9), "linear": lambda x: x,
                  "": lambda x: x},
        "pan": {"normalized": lambda x: 2 * x - 1, "linear": lambda x: x,
                "percent": lambda x: x / 100},
    }[kind]
    if unit not in conv:
        raise ExportError(f"{where}: unit {unit!r} not supported here; expected one of "
                          f"{sorted(u for u in conv if u)}")
    return conv[unit](v)


def _enabled(el: Element | None) -> bool:
    flag = None if el is None else el.find("Enabled")
    return flag is None or flag.get("value", "true") not in ("false", "0")


def _read_eq(eq: Element | None, section: str, out: dict[str, float], where: str) -> None:
    if eq is None:
        return
    if not _enabled(eq):
        return
    bands = eq.findall("Band")
    if all(b.get("order", "").isdigit() for b in bands):
        bands.sort(key=lambda b: int(b.get("order", "0")))
    bells = 0
    seen: set[str] = set()
    for band in bands:
        kind = band.get("type", "")
        bw = f"{where}, EQ band {kind!r}"
        key = {"highPass": "hpf", "lowPass": "lpf", "lowShelf": "low_shelf",
               "highShelf": "high_shelf"}.get(kind)
        if kind == "bell":
            bells += 1
            if bells > len(_PEAKS):
                raise ExportError(f"{where}: more than {len(_PEAKS)} bell bands")
            key = _PEAKS[bells - 1]
        if key is None or (section == MASTER and key in ("hpf", "lpf")):
            raise ExportError(f"{bw}: band type not representable in the mixstyle "
                              f"{section} EQ")
        if key in seen:
            raise ExportError(f"{bw}: appears twice")
        seen.add(key)
        on = _enabled(band)
        freq = _value(band.find("Freq"), bw, "hz")
        if freq is not None:
            out[f"{key}_freq_hz"] = freq
        if key in ("hpf", "lpf") or key in _PEAKS:
            q = _value(band.find("Q"), bw, "q")
            if q is not None:
                out[f"{key}_q"] = q
        if key == "hpf" and not on:
            out["hpf_freq_hz"] = spec(TRACK, "hpf_freq_hz").min
        elif key == "lpf" and not on:
            out["lpf_freq_hz"] = spec(TRACK, "lpf_freq_hz").max
        elif key not in ("hpf", "lpf"):
            gain = _value(band.find("Gain"), bw, "db")
            out[f"{key}_gain_db"] = gain if (on and gain is not None) else 0.0
    if section == TRACK:
        g = _value(eq.find("InputGain"), f"{where}, EQ input gain", "db")
        if g is not None:
            out["input_gain_db"] = g


_COMP_FIELDS = (("Threshold", "comp_threshold_db", "db"), ("Ratio", "comp_ratio", "ratio"),
                ("Attack", "comp_attack_ms", "ms"), ("Release", "comp_release_ms", "ms"),
                ("OutputGain", "comp_makeup_db", "db"), ("@comp_knee_db", "comp_knee_db", "db"))
_LIMITER_FIELDS = (("Threshold", "limiter_ceiling_db", "db"),
                   ("Release", "limiter_release_ms", "ms"),
                   ("Attack", "limiter_lookahead_ms", "ms"), ("InputGain", "gain_db", "db"),
                   ("@target_lufs", "target_lufs", "db"))


def _read_fields(dev: Element | None, fields: tuple[tuple[str, str, str], ...],
                 out: dict[str, Any], where: str) -> None:
    """Built-in device fields; ``@name`` is a named RealParameter under <Parameters>."""
    if dev is None:
        return
    params = dev.find("Parameters")
    named = {} if params is None else {p.get("name", ""): p for p in params}
    for tag, name, kind in fields:
        el = named.get(tag[1:]) if tag.startswith("@") else dev.find(tag)
        v = _value(el, f"{where}, {dev.tag} {tag.lstrip('@')}", kind)
        if v is not None:
            out[name] = v
    if dev.tag == "Compressor" and not _enabled(dev):
        out["comp_ratio"], out["comp_makeup_db"] = 1.0, 0.0


def _fit(section: str, values: dict[str, Any], where: str) -> dict[str, Any]:
    """Absorb float round-off at the range ends, then validate through the table."""
    out = dict(values)
    for name, v in values.items():
        if v is None:
            continue
        p = spec(section, name)
        tol = 1e-9 * (p.max - p.min)
        if p.min - tol <= v <= p.max + tol:
            out[name] = min(p.max, max(p.min, v))
    if section == TRACK and out.get("output_gain_db", 0.0) < _VOLUME_FLOOR_DB:
        out["output_gain_db"] = _VOLUME_FLOOR_DB  # a fader below -60 dB: as low as we go
    return validate(section, out, where)


def _channel_settings(ch: Element, section: str, where: str) -> dict[str, Any]:
    values: dict[str, Any] = {}
    devices = ch.find("Devices")
    devs = [] if devices is None else list(devices)
    first = {tag: next((d for d in devs if d.tag == tag), None)
             for tag in ("Equalizer", "Compressor", "Limiter")}
    _read_eq(first["Equalizer"], section, values, where)
    _read_fields(first["Compressor"], _COMP_FIELDS, values, where)
    if section == TRACK:
        vol = _value(ch.find("Volume"), f"{where}, volume", "db")
        pan = _value(ch.find("Pan"), f"{where}, pan", "pan")
        if vol is not None:
            values["output_gain_db"] = vol
        if pan is not None:
            values["pan"] = pan
    elif first["Limiter"] is not None:
        _read_fields(first["Limiter"], _LIMITER_FIELDS, values, where)
    else:  # no limiter (another DAW's file): its master fader is the nearest thing to gain_db
        vol = _value(ch.find("Volume"), f"{where}, volume", "db")
        if vol is not None:
            values["gain_db"] = vol
    return _fit(section, values, where)


def import_dawproject(path: str | os.PathLike[str], *,
                      limits: ZipLimits = ZipLimits()) -> ConsoleSetting:
    """Read a .dawproject's mixer back into a ConsoleSetting (audio is not read)."""
    label = Path(path).name
    with SafeZip(path, limits) as z:
        names = z.names()
        if "project.xml" not in names:
            raise ExportError(f"{label}: no project.xml in the container (not a DAWproject)")
        root = parse_xml(z.read("project.xml"), f"{label}: project.xml")
        if "metadata.xml" in names:
            parse_xml(z.read("metadata.xml"), f"{label}: metadata.xml")
    if root.tag != "Project":
        raise ExportError(f"{label}: project.xml root is <{root.tag}>, expected <Project>")
    if not re.match(r"^1(\.|$)", root.get("version", "")):
        raise ExportError(f"{label}: DAWproject version {root.get('version')!r} not supported; "
                          f"this reader reads 1.x")
    structure = root.find("Structure")
    owners = {} if structure is None else {
        ch: tr for tr in structure.iter("Track") for ch in tr.findall("Channel")}
    tracks: list[TrackSetting] = []
    master: dict[str, Any] | None = None
    try:
        for ch in ([] if structure is None else structure.iter("Channel")):
            owner = owners.get(ch)
            name = (owner.get("name") if owner is not None else None) or ch.get("name") \
                or f"track {len(tracks) + 1}"
            role = ch.get("role", "regular")
            if role == "master":
                if master is not None:
                    raise ExportError(f"{label}: more than one master channel")
                master = _channel_settings(ch, MASTER, f"{label}, master")
            elif role == "regular":
                found = re.search(r"\brole=([\w-]+)", (owner.get("comment", "")
                                                       if owner is not None else ""))
                tracks.append(TrackSetting(
                    name=name, role=found.group(1) if found else "other",
                    params=_channel_settings(ch, TRACK, f"{label}, track {name!r}")))
        return ConsoleSetting(tracks=tuple(tracks),
                              master=master if master is not None else neutral(MASTER))
    except ParameterError as e:
        raise ExportError(f"{label}: {e}") from None
