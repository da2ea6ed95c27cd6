"""Host session files: tracks, parameters, overrides, MIDI map and plugin states in one JSON.

Written atomically (temporary file in the same folder, then rename), so a crash never leaves a
half-written session. Plugin states are the plugins' own bytes, base64 in the JSON.

    {"format": "mixstyle.host_session", "version": 2, "sample_rate_hz": 48000,
     "tracks": [{"name": "vox", "role": "vocals", "path": "/stems/vox.wav"}],
     "setting": {...mixstyle.console setting: the model's (smoothed) prediction...},
     "overrides": {"track:vox:output_gain_db": -3.0}, "strength": 1.0, "frozen": false,
     "loop_s": [10.0, 20.0] or null, "midi_map": {"bindings": [...]},
     "inserts": {"track:vox": [{"path": ..., "mode": ..., "bypassed": ..., "states": [...]}],
                 "master": [...]},
     "mute": ["bass"], "solo": []}

Version 2 added "mute" and "solo" (track names); version 1 files (no mute/solo) still open.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any, Mapping

from dsp.errors import HostError
from dsp.files import write_text_atomic
from dsp.params import (MASTER_NAMES, TRACK_NAMES, ConsoleSetting, setting_from_dict,
                        setting_to_dict)
from host.control import MASTER_TARGET

FORMAT = "mixstyle.host_session"
VERSION = 2
READS = (1, 2)
_KEYS = {"format", "version", "sample_rate_hz", "tracks", "setting", "overrides", "strength",
         "frozen", "loop_s", "midi_map", "inserts", "mute", "solo"}


@dataclass(frozen=True)
class TrackEntry:
    name: str
    path: str
    role: str = "other"


@dataclass(frozen=True)
class HostSession:
    """Everything needed to reopen a live mix where it was left."""

    tracks: tuple[TrackEntry, ...]
    setting: ConsoleSetting
    sample_rate_hz: float = 48000.0
    overrides: dict[str, float] = field(default_factory=dict)
    strength: float = 1.0
    frozen: bool = False
    loop_s: tuple[float, float] | None = None
    midi_map: dict[str, Any] = field(default_factory=lambda: {"bindings": []})
    inserts: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    mute: tuple[str, ...] = ()
    solo: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not 0.0 <= self.strength <= 1.0:
            raise HostError(f"session strength = {self.strength} is out of range: allowed 0 .. 1")
        if self.loop_s is not None and not 0.0 <= self.loop_s[0] < self.loop_s[1]:
            raise HostError(f"session loop_s = {self.loop_s}: need 0 <= start < end (seconds)")
        names = [t.name for t in self.tracks]
        for where in self.inserts:
            if where != "master" and not (where.startswith("track:") and where[6:] in names):
                raise HostError(f"session inserts: {where!r} is neither 'master' nor "
                                f"'track:<name>' of a track in {names}")
        for key, listed in (("mute", self.mute), ("solo", self.solo)):
            unknown = [n for n in listed if n not in names]
            if unknown:
                raise HostError(f"session {key}: no tracks named {unknown}; tracks: {names}")

    def to_dict(self) -> dict[str, Any]:
        return {"format": FORMAT, "version": VERSION, "sample_rate_hz": self.sample_rate_hz,
                "tracks": [{"name": t.name, "role": t.role, "path": t.path}
                           for t in self.tracks],
                "setting": setting_to_dict(self.setting),
                "overrides": dict(self.overrides), "strength": self.strength,
                "frozen": self.frozen,
                "loop_s": list(self.loop_s) if self.loop_s is not None else None,
                "midi_map": self.midi_map, "inserts": self.inserts,
                "mute": list(self.mute), "solo": list(self.solo)}


def session_from_dict(data: Any, where: str = "session") -> HostSession:
    if not isinstance(data, Mapping):
        raise HostError(f"{where}: expected a JSON object, got {type(data).__name__}")
    if data.get("format") != FORMAT:
        raise HostError(f"{where}: 'format' must be {FORMAT!r}, got {data.get('format')!r}")
    if data.get("version") not in READS:
        raise HostError(f"{where}: unsupported version {data.get('version')!r}; this host reads "
                        f"versions {', '.join(map(str, READS))}")
    unknown = set(data) - _KEYS
    if unknown:
        raise HostError(f"{where}: unknown keys {sorted(unknown)}")
    tracks = []
    for i, t in enumerate(data.get("tracks") or []):
        if not isinstance(t, Mapping) or not isinstance(t.get("name"), str) \
                or not isinstance(t.get("path"), str):
            raise HostError(f"{where}: track #{i} needs string 'name' and 'path', got {t!r}")
        tracks.append(TrackEntry(t["name"], t["path"], str(t.get("role", "other"))))
    overrides = data.get("overrides") or {}
    if not isinstance(overrides, Mapping) or not all(
            isinstance(k, str) and isinstance(v, (int, float)) and not isinstance(v, bool)
            for k, v in overrides.items()):
        raise HostError(f"{where}: 'overrides' must map target strings to numbers")
    loop = data.get("loop_s")
    if loop is not None and (not isinstance(loop, list) or len(loop) != 2):
        raise HostError(f"{where}: 'loop_s' must be [start, end] in seconds or null")
    inserts = data.get("inserts") or {}
    if not isinstance(inserts, Mapping) or not all(isinstance(v, list) for v in inserts.values()):
        raise HostError(f"{where}: 'inserts' must map 'master'/'track:<name>' to lists")
    names_lists = {}
    for key in ("mute", "solo"):
        v = data.get(key) or []
        if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
            raise HostError(f"{where}: {key!r} must be a list of track names")
        names_lists[key] = tuple(v)
    setting = setting_from_dict(data.get("setting"), f"{where}, setting")
    try:
        return HostSession(
            tracks=tuple(tracks), setting=setting,
            sample_rate_hz=float(data.get("sample_rate_hz", 48000.0)),
            overrides={k: float(v) for k, v in overrides.items()},
            strength=float(data.get("strength", 1.0)), frozen=bool(data.get("frozen", False)),
            loop_s=None if loop is None else (float(loop[0]), float(loop[1])),
            midi_map=dict(data.get("midi_map") or {"bindings": []}),
            inserts={k: list(v) for k, v in inserts.items()},
            mute=names_lists["mute"], solo=names_lists["solo"])
    except (HostError, TypeError, ValueError) as e:
        raise HostError(f"{where}: {e}") from None


def save_session(path: str, session: HostSession) -> None:
    """Write the session as JSON atomically (never leaves a partial file at ``path``)."""
    text = json.dumps(session.to_dict(), indent=2)
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise HostError(f"cannot save session {path!r}: folder {folder!r} does not exist")
    write_text_atomic(path, text)


def load_session(path: str) -> HostSession:
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except OSError as e:
        raise HostError(f"session {path!r}: cannot read it ({e.strerror})") from None
    except json.JSONDecodeError as e:
        raise HostError(f"session {path!r}: not valid JSON ({e})") from None
    return session_from_dict(data, f"session {path!r}")


def capture(engine: Any, midi_map: Any = None) -> HostSession:
    """The session of a running ``host.engine.Engine`` (and its MIDI map, if any)."""
    tracks = []
    for s in engine.sources:
        if s.path is None:
            raise HostError(f"track {s.name!r} was loaded from memory, not a file: a session "
                            f"can only refer to stems on disk")
        tracks.append(TrackEntry(s.name, os.path.abspath(s.path), s.role))
    c = engine.control
    overrides = {}
    for (target, index), value in c.overrides.items():
        key = f"master:{MASTER_NAMES[index]}" if target == MASTER_TARGET else \
            f"track:{c.track_names[target]}:{TRACK_NAMES[index]}"
        overrides[key] = float(value)
    inserts: dict[str, list[dict[str, Any]]] = {}
    for name, chain in zip(engine.track_names, engine.track_inserts):
        if chain.inserts:
            inserts[f"track:{name}"] = [i.to_dict() for i in chain.inserts]
    if engine.master_inserts.inserts:
        inserts["master"] = [i.to_dict() for i in engine.master_inserts.inserts]
    predicted = c.setting_predicted()
    return HostSession(tracks=tuple(tracks), setting=predicted,
                       sample_rate_hz=engine.sample_rate, overrides=overrides,
                       strength=c.strength, frozen=c.frozen, loop_s=engine.loop_s,
                       midi_map=midi_map.to_dict() if midi_map is not None else {"bindings": []},
                       inserts=inserts, mute=tuple(n for n in engine.track_names
                                                   if n in engine.muted),
                       solo=tuple(n for n in engine.track_names if n in engine.soloed))


def open_session(session: HostSession, block_frames: int = 128) -> tuple[Any, Any]:
    """Build an Engine (not started) and a MidiMap from a session; plugins get their states."""
    from host.engine import Engine, EngineConfig
    from host.midi import MidiMap, parse_target
    from host.plugins import insert_from_dict
    from host.reader import TrackSource
    sources = [TrackSource(t.name, path=t.path, role=t.role) for t in session.tracks]
    engine = Engine(sources, session.setting,
                    EngineConfig(sample_rate_hz=session.sample_rate_hz, block_frames=block_frames))
    try:
        c = engine.control
        c.set_strength(session.strength)
        for key, value in session.overrides.items():
            t = parse_target(key, f"session override {key!r}")
            if t.kind != "param":
                raise HostError(f"session override {key!r} is not a parameter")
            c.set_override(t.track, t.name, value)
        c.freeze(session.frozen)
        for where, entries in session.inserts.items():
            bus = "master" if where == "master" else where[len("track:"):]
            label = "master" if where == "master" else f"track {bus!r}"
            for d in entries:
                engine.add_loaded_insert(bus, insert_from_dict(d, engine.sample_rate,
                                                               engine.block, label))
        if session.loop_s is not None:
            engine.set_loop(*session.loop_s)
        if session.mute or session.solo:
            engine.set_mute_solo(session.mute, session.solo)
        engine.settle()
        midi_map = MidiMap.from_dict(session.midi_map, "session MIDI map")
    except BaseException:
        engine.close()
        raise
    return engine, midi_map
