"""The engine side of the studio: page messages in, replies out (see PROTOCOL.md).

``StudioService`` wraps a ``host.engine.Engine`` (its Control, inserts, transport, A/B, record
tap) and a MIDI map/router. It knows nothing about HTTP or sockets: ``handle(msg)`` takes one
decoded page message (a dict) and returns the replies (dicts); ``hello()`` is the first message
a page gets; ``tick()`` (~20 Hz) returns the meters plus whatever changed by itself (model
updates, MIDI moves, finished recordings, bypassed plugins). Error replies are
``{"type": "message", "level": "error"}`` and belong to the page that sent the message; the rest
is for every page. Each handler does little: a Control call (one RecordQueue push per changed
parameter) or an attribute write the callback reads at the next block.
"""

from __future__ import annotations

import math
import os
import re
import threading
import time
from collections import deque
from typing import Any, Callable, Sequence

import numpy as np

from dsp.errors import HostError, MixstyleError
from dsp.files import atomic_path, write_bytes_atomic, write_text_atomic
from dsp.params import MASTER_PARAMS, TRACK_NAMES, TRACK_PARAMS, dumps
from dsp.validate import check_sample_rate
from host.control import MASTER_TARGET, NOT_LIVE
from host.engine import AB_SOURCES, Engine
from host.midi import Binding, MidiMap, MidiRouter, parse_target
from host.plugins import VST3_DIRS, PluginInsert, load_insert
from host.session import FORMAT as SESSION_FORMAT
from host.session import capture, save_session
from host.studio.analysis import Analysis, Rematch

FLOOR_DB = -120.0
MASTER_LIVE = [p for p in MASTER_PARAMS if p.name not in NOT_LIVE]
MAX_RECORD_S = 600.0


class Refused(HostError):
    """A page message that cannot be applied (the text goes back to that page)."""


def _db(x: float) -> float:
    x = float(x)
    return FLOOR_DB if not math.isfinite(x) or x < FLOOR_DB else round(x, 2)


def _spec(p: Any) -> dict[str, Any]:
    return {"name": p.name, "unit": p.unit, "min": p.min, "max": p.max, "scale": p.scale,
            "default": p.default, "neutral": p.neutral}


def _target(track: str | None, name: str) -> str:
    return f"master:{name}" if track is None else f"track:{track}:{name}"


def vst3_plugins(folders: Sequence[str] = VST3_DIRS) -> list[dict[str, str]]:
    """VST3 bundles in the search folders, by name."""
    found = []
    for folder in folders:
        if os.path.isdir(folder):
            for f in sorted(os.listdir(folder)):
                if f.endswith(".vst3"):
                    found.append({"name": f[:-5], "path": os.path.join(folder, f)})
    return found


def inside(path: str, folders: Sequence[str]) -> bool:
    """True when ``path`` (symlinks resolved) lies in one of ``folders``."""
    real = os.path.realpath(path)
    for folder in folders:
        root = os.path.realpath(folder)
        if real == root or real.startswith(root.rstrip(os.sep) + os.sep):
            return True
    return False


def _is_session_file(path: str) -> bool:
    try:
        with open(path, encoding="utf-8") as f:
            head = f.read(4096)
    except OSError:
        return False
    return re.search(r'"format"\s*:\s*"' + re.escape(SESSION_FORMAT) + '"', head) is not None


def keep_setting(song_dir: str, text: str) -> tuple[str, str | None]:
    """Write ``text`` as <song_dir>/setting.json atomically; an existing one is renamed to
    setting.N.json first (N = the first free number). Returns (written, kept_as or None)."""
    path = os.path.join(song_dir, "setting.json")
    kept = None
    if os.path.lexists(path):
        k = 1
        while os.path.lexists(os.path.join(song_dir, f"setting.{k}.json")):
            k += 1
        kept = os.path.join(song_dir, f"setting.{k}.json")
        try:
            os.link(path, kept)  # the old file stays whole under its new name
        except OSError:  # no hard links here: copy it (the copy is written atomically)
            with open(path, "rb") as f:
                write_bytes_atomic(kept, f.read())
    write_text_atomic(path, text)
    return path, kept


class StudioService:
    """Applies page messages to a live engine; see the module docstring."""

    def __init__(self, engine: Engine, song_dir: str, *, stems_dir: str | None = None,
                 midi_map: MidiMap | None = None, session_path: str | None = None,
                 analysis: Analysis | None = None, rematch: Rematch | None = None,
                 worker: Any = None,
                 midi_input: Any = None, midi_status: str | None = None,
                 record_dir: str | None = None,
                 vst3_dirs: Sequence[str] = VST3_DIRS,
                 plugin_loader: Callable[..., Any] | None = None) -> None:
        self.engine = engine
        self.control = engine.control
        self.song_dir = os.path.abspath(song_dir)
        self.stems_dir = os.path.abspath(stems_dir or song_dir)
        self.session_path = os.path.abspath(session_path) if session_path else None
        self.map = midi_map if midi_map is not None else MidiMap()
        self.router = MidiRouter(self.map, self.control, engine)
        self.router.on_learn = self._learned
        self.midi_input = midi_input
        self.midi_status = midi_status
        self.analysis = analysis or Analysis()
        self.rematch = rematch
        self.worker = worker
        self.record_dir = os.path.abspath(record_dir or os.path.join(self.song_dir,
                                                                     "recordings"))
        self.vst3_dirs = tuple(vst3_dirs)
        self._loader = plugin_loader
        self.plugins = vst3_plugins(self.vst3_dirs)
        self._pending: deque[dict[str, Any]] = deque()  # from other threads (MIDI learn)
        self._lock = threading.Lock()
        self._recording: tuple[np.ndarray, str, float] | None = None
        self._page_t, self._page_m = self.control.sent_tracks.copy(), \
            self.control.sent_master.copy()
        self._seen = (-1, -1)
        for source, gain in self.analysis.gain_db.items():
            if source in engine.ab_available:
                engine.set_ab_gain(source, gain)
        self._handlers: dict[str, Callable[[dict[str, Any]], list[dict[str, Any]]]] = {
            "set": self._set, "release": self._release, "mute": self._mute_solo,
            "solo": self._mute_solo, "strength": self._strength, "ab": self._ab,
            "transport": self._transport, "insert_add": self._insert_add,
            "insert_bypass": self._insert_bypass, "insert_remove": self._insert_remove,
            "insert_param": self._insert_param, "midi_learn": self._midi_learn,
            "midi_unbind": self._midi_unbind, "save": self._save, "keep": self._keep,
            "record": self._record, "freeze": self._freeze,
        }
        self._rematch()   # the setting the analysis measured: the one the match is of

    # the page's view --------------------------------------------------------------------
    def values(self) -> dict[str, float]:
        t, m = self.control.effective()
        return self._as_values(t, m)

    def _as_values(self, t: np.ndarray, m: np.ndarray) -> dict[str, float]:
        out = {}
        for i, name in enumerate(self.engine.track_names):
            for k, p in enumerate(TRACK_NAMES):
                out[_target(name, p)] = float(t[i, k])
        for k, p in enumerate(MASTER_PARAMS):
            if p.name not in NOT_LIVE:
                out[_target(None, p.name)] = float(m[k])
        return out

    def predicted(self) -> dict[str, float]:
        """The model's (smoothed) prediction, before strength and overrides."""
        c = self.control
        with c._lock:
            t, m = c.tracks.copy(), c.master.copy()
        return self._as_values(t, m)

    def overrides(self) -> dict[str, float]:
        c = self.control
        return {(_target(None, MASTER_PARAMS[i].name) if t == MASTER_TARGET
                 else _target(c.track_names[t], TRACK_NAMES[i])): float(v)
                for (t, i), v in list(c.overrides.items())}

    def inserts(self) -> dict[str, list[dict[str, Any]]]:
        e = self.engine
        out = {}
        for name, chain in zip(e.track_names, e.track_inserts):
            if chain.inserts:
                out[f"track:{name}"] = [self._describe(i, ins)
                                        for i, ins in enumerate(chain.inserts)]
        if e.master_inserts.inserts:
            out["master"] = [self._describe(i, ins)
                             for i, ins in enumerate(e.master_inserts.inserts)]
        return out

    @staticmethod
    def _describe(index: int, ins: Any) -> dict[str, Any]:
        params: dict[str, Any] = {}
        if isinstance(ins, PluginInsert):
            inst = ins.instances[0]
            for name, p in inst.parameters.items():
                try:
                    v = getattr(inst, name)
                    value: Any = float(v) if isinstance(v, (int, float)) else str(v)
                    lo, hi = (p.range[0], p.range[1]) if p.range else (None, None)
                    params[name] = {"value": value, "text": str(p.string_value),
                                    "unit": (getattr(p, "label", "") or "").strip(),
                                    "min": lo, "max": hi}
                except Exception:  # noqa: BLE001 - a parameter a plugin cannot describe
                    continue
        return {"index": index, "name": str(getattr(ins, "name", type(ins).__name__)),
                "path": str(getattr(ins, "path", "")),
                "bypassed": bool(getattr(ins, "bypassed", False)),
                "failed": bool(getattr(ins, "failed", False)), "parameters": params}

    def midi_map_list(self) -> list[dict[str, Any]]:
        return [b.to_dict() for b in self.map.bindings]

    def hello(self) -> dict[str, Any]:
        e, c = self.engine, self.control
        return {
            "type": "hello", "sample_rate_hz": e.sample_rate, "block_frames": e.block,
            "length_s": e.length_frames / e.sample_rate,
            "tracks": [{"name": n, "role": r} for n, r in zip(e.track_names, c.roles)],
            "params": {"track": [_spec(p) for p in TRACK_PARAMS],
                       "master": [_spec(p) for p in MASTER_LIVE]},
            "values": self.values(), "predicted": self.predicted(),
            "overrides": self.overrides(), "strength": c.strength, "frozen": c.frozen,
            "mute": sorted(e.muted, key=e.track_names.index),
            "solo": sorted(e.soloed, key=e.track_names.index),
            "ab": AB_SOURCES[e.ab], "ab_available": e.ab_available,
            "ab_gain_db": {k: v for k, v in self.analysis.gain_db.items()
                           if k in e.ab_available},
            "waveform": self.analysis.waveform, "loop_s": list(e.loop_s) if e.loop_s else None,
            "inserts": self.inserts(), "plugins": self.plugins,
            "midi_map": self.midi_map_list(), "midi_input": self.midi_status,
            "session_path": self.session_path, "song_dir": self.song_dir,
        }

    def meters(self) -> dict[str, Any]:
        e = self.engine
        m = e.meter_snapshot()
        return {"type": "meters", "position_s": round(e.position_s, 4), "playing": e.playing,
                "peak_db": [_db(x) for x in m.track_peak_db],
                "rms_db": [_db(x) for x in m.track_rms_db],
                "gr_db": [round(float(x), 2) for x in m.track_gr_db],
                "master": {"peak_db": _db(m.master_peak_db), "rms_db": _db(m.master_rms_db),
                           "gr_db": round(float(m.master_gr_db), 2),
                           "momentary_lufs": _db(m.master_momentary_lufs),
                           "short_term_lufs": _db(m.master_short_term_lufs),
                           "integrated_lufs": _db(e.loudness.integrated_lufs),
                           "true_peak_dbtp": _db(m.master_true_peak_dbtp)},
                "xruns": int(e.timing.late[0] + e.timing.flagged[0]), "late": e.late_reads,
                "callbacks": int(e.timing.count[0]), "late_callbacks": int(e.timing.late[0])}

    # messages -----------------------------------------------------------------------------
    def handle(self, msg: Any) -> list[dict[str, Any]]:
        """One page message -> replies (an error reply names what was wrong)."""
        if not isinstance(msg, dict) or not isinstance(msg.get("type"), str):
            return [_error(f"a message must be a JSON object with a string 'type', got "
                           f"{str(msg)[:80]}")]
        kind = msg["type"]
        if kind == "hello":
            return [self.hello()]
        handler = self._handlers.get(kind)
        if handler is None:
            return [_error(f"unknown message type {kind!r}; known: "
                           f"{', '.join(sorted(self._handlers))}")]
        try:
            return handler(msg)
        except MixstyleError as e:
            return [_error(f"{kind}: {e}")]
        except (KeyError, TypeError, ValueError) as e:
            return [_error(f"{kind}: bad message {str(msg)[:120]} ({type(e).__name__}: {e})")]

    def _changed_values(self) -> list[dict[str, Any]]:
        """What the console's parameters are now (as sent to the callback) against what the
        pages were told last: only the changed ones."""
        c = self.control
        with c._lock:
            t, m = c.sent_tracks.copy(), c.sent_master.copy()
        changed = {}
        names = self.engine.track_names
        for ti, pi in zip(*np.nonzero(t != self._page_t)):
            changed[_target(names[ti], TRACK_NAMES[pi])] = float(t[ti, pi])
        for pi in np.nonzero(m != self._page_m)[0]:
            if MASTER_PARAMS[pi].name not in NOT_LIVE:
                changed[_target(None, MASTER_PARAMS[pi].name)] = float(m[pi])
        self._page_t, self._page_m = t, m
        return [{"type": "values", "values": changed}] if changed else []

    def _param(self, msg: dict[str, Any]) -> Any:
        target = parse_target(msg.get("target"), "target")
        if target.kind != "param":
            raise Refused(f"target {msg.get('target')!r} is not a console parameter")
        return target

    def _set(self, msg: dict[str, Any]) -> list[dict[str, Any]]:
        t = self._param(msg)
        self.control.set_override(t.track, t.name, msg.get("value"))
        return self._changed_values() + [self._state("overrides")]

    def _release(self, msg: dict[str, Any]) -> list[dict[str, Any]]:
        if msg.get("target") in (None, "all"):
            self.control.release()
        else:
            t = self._param(msg)
            self.control.release(t.track, t.name)
        return self._changed_values() + [self._state("overrides")]

    def _mute_solo(self, msg: dict[str, Any]) -> list[dict[str, Any]]:
        kind, track, on = msg["type"], msg.get("track"), msg.get("on")
        if not isinstance(on, bool):
            raise Refused(f"'on' must be true or false, got {on!r}")
        if track not in self.engine.track_names:
            raise Refused(f"no track named {track!r}; tracks: {self.engine.track_names}")
        e = self.engine
        muted, soloed = set(e.muted), set(e.soloed)
        group = muted if kind == "mute" else soloed
        (group.add if on else group.discard)(track)
        e.set_mute_solo(sorted(muted), sorted(soloed))
        return [self._state("mute", "solo")]

    def _strength(self, msg: dict[str, Any]) -> list[dict[str, Any]]:
        self.control.set_strength(msg.get("value"))
        return self._changed_values() + [self._state("strength")]

    def _freeze(self, msg: dict[str, Any]) -> list[dict[str, Any]]:
        on = msg.get("on")
        if not isinstance(on, bool):
            raise Refused(f"'on' must be true or false, got {on!r}")
        self.control.freeze(on)
        return [self._state("frozen")]

    def _ab(self, msg: dict[str, Any]) -> list[dict[str, Any]]:
        self.engine.set_ab(msg.get("source"))
        return [self._state("ab")]

    def _transport(self, msg: dict[str, Any]) -> list[dict[str, Any]]:
        e, action = self.engine, msg.get("action")
        if action == "play":
            e.play()
        elif action == "stop":
            e.stop()
        elif action == "seek":
            e.seek(_number(msg.get("s"), "s"))
        elif action == "loop":
            e.set_loop(_number(msg.get("a"), "a"), _number(msg.get("b"), "b"))
        elif action == "clear_loop":
            e.clear_loop()
        else:
            raise Refused(f"unknown transport action {action!r}; known: play, stop, seek, "
                          f"loop, clear_loop")
        return [self._state("loop_s")] if action in ("seek", "loop", "clear_loop") else []

    # inserts
    def _bus(self, where: Any) -> str:
        if where == "master":
            return "master"
        if isinstance(where, str) and where.startswith("track:") \
                and where[6:] in self.engine.track_names:
            return where[6:]
        raise Refused(f"insert place {where!r}: expected 'master' or 'track:<name>' of "
                      f"{self.engine.track_names}")

    def _insert_at(self, msg: dict[str, Any]) -> Any:
        chain = self.engine.chain(self._bus(msg.get("where")))
        index = msg.get("index")
        if isinstance(index, bool) or not isinstance(index, int) \
                or not 0 <= index < len(chain.inserts):
            raise Refused(f"insert index {index!r} on {msg.get('where')}: allowed 0 .. "
                          f"{len(chain.inserts) - 1}" if chain.inserts else
                          f"{msg.get('where')} has no inserts")
        return chain.inserts[index]

    def _plugin_path(self, plugin: Any) -> str:
        if not isinstance(plugin, str) or not plugin:
            raise Refused(f"plugin must be a name or path from the plugin list, got {plugin!r}")
        for p in self.plugins:
            if plugin in (p["name"], p["path"]):
                return p["path"]
        if os.sep in plugin or plugin.endswith(".vst3"):
            if not inside(plugin, self.vst3_dirs):
                raise Refused(f"plugin path {plugin!r} is outside the VST3 folders "
                              f"({', '.join(self.vst3_dirs)}): refused")
            if not os.path.exists(plugin):
                raise Refused(f"plugin {plugin!r} does not exist")
            return plugin
        raise Refused(f"no VST3 plugin named {plugin!r} in {', '.join(self.vst3_dirs)}")

    def _insert_add(self, msg: dict[str, Any]) -> list[dict[str, Any]]:
        bus = self._bus(msg.get("where"))
        path = self._plugin_path(msg.get("plugin"))
        e = self.engine
        label = "master" if bus == "master" else f"track {bus!r}"
        kwargs = {} if self._loader is None else {"loader": self._loader}
        ins = load_insert(path, e.sample_rate, e.block, label, **kwargs)
        e.add_loaded_insert(bus, ins)
        return [self._state("inserts"),
                _info(f"{ins.name} added on {label}")]

    def _insert_bypass(self, msg: dict[str, Any]) -> list[dict[str, Any]]:
        ins = self._insert_at(msg)
        on = msg.get("on")
        if not isinstance(on, bool):
            raise Refused(f"'on' must be true or false, got {on!r}")
        ins.bypassed = on
        return [self._state("inserts")]

    def _insert_remove(self, msg: dict[str, Any]) -> list[dict[str, Any]]:
        self._insert_at(msg)
        ins = self.engine.remove_insert(self._bus(msg["where"]), msg["index"])
        return [self._state("inserts"),
                _info(f"{getattr(ins, 'name', 'insert')} removed from {msg['where']}")]

    def _insert_param(self, msg: dict[str, Any]) -> list[dict[str, Any]]:
        ins = self._insert_at(msg)
        if not isinstance(ins, PluginInsert):
            raise Refused(f"insert {msg.get('index')} on {msg.get('where')} has no parameters")
        ins.set_parameter(msg.get("name"), msg.get("value"))
        return [self._state("inserts")]

    # MIDI
    def _midi_learn(self, msg: dict[str, Any]) -> list[dict[str, Any]]:
        self.router.learn(msg.get("target"))
        text = f"MIDI learn: move a control to bind it to {msg.get('target')}"
        if self.midi_input is None:
            return [_warning(f"{text}; but no MIDI input is open"
                             f"{' (' + self.midi_status + ')' if self.midi_status else ''}")]
        return [_info(text)]

    def _learned(self, binding: Binding) -> None:  # MIDI thread, under the router's lock
        self._pending.append({"type": "_learned", "binding": binding.to_dict()})

    def _midi_unbind(self, msg: dict[str, Any]) -> list[dict[str, Any]]:
        with self.router._lock:
            self.map.unbind(msg.get("channel"), msg.get("cc"))
        return [self._state("midi_map")]

    # files
    def _allowed_folders(self) -> list[str]:
        folders = [self.song_dir, self.stems_dir]
        if self.session_path:
            folders.append(os.path.dirname(self.session_path))
        return folders

    def _save(self, msg: dict[str, Any]) -> list[dict[str, Any]]:
        path = msg.get("path")
        if path is None:
            path = self.session_path or os.path.join(self.song_dir, "studio_session.json")
        if not isinstance(path, str) or not path:
            raise Refused(f"save path must be a string, got {path!r}")
        if not os.path.isabs(path):
            path = os.path.join(self.song_dir, path)
        path = os.path.abspath(path)
        if not inside(os.path.dirname(path), self._allowed_folders()):
            raise Refused(f"save path {path!r} is outside the song folder {self.song_dir!r}"
                          f"{' and the session folder' if self.session_path else ''}: refused")
        if not path.endswith(".json"):
            raise Refused(f"save path {path!r}: a session file must end in .json")
        if os.path.exists(path) and not _is_session_file(path):
            raise Refused(f"{path!r} exists and is not a mixstyle session: not overwritten")
        save_session(path, capture(self.engine, self.map))
        self.session_path = path
        return [self._state("session_path"), _info(f"session saved to {path}")]

    def _keep(self, msg: dict[str, Any]) -> list[dict[str, Any]]:
        text = setting_json_text(self.control.setting(), self.engine.sample_rate)
        path, kept = keep_setting(self.song_dir, text)
        return [_info(f"kept as your mix: {path}" +
                      (f" (the previous one is now {os.path.basename(kept)})" if kept else ""))]

    def _record(self, msg: dict[str, Any]) -> list[dict[str, Any]]:
        seconds = _number(msg.get("seconds"), "seconds")
        if not 0.0 < seconds <= MAX_RECORD_S:
            raise Refused(f"record seconds = {seconds:g} is out of range: allowed 0 .. "
                          f"{MAX_RECORD_S:g} s")
        if self._recording is not None:
            raise Refused("a recording is already running")
        done = self.engine.start_record(seconds)
        os.makedirs(self.record_dir, exist_ok=True)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        path = os.path.join(self.record_dir, f"studio_{stamp}.wav")
        k = 1
        while os.path.exists(path):
            path = os.path.join(self.record_dir, f"studio_{stamp}_{k}.wav")
            k += 1
        self._recording = (done, path, seconds)
        return [_info(f"recording {seconds:g} s to {path}")]

    def _finish_record(self) -> list[dict[str, Any]]:
        if self._recording is None or not self._recording[0][0]:
            return []
        _, path, seconds = self._recording
        self._recording = None
        audio = self.engine.record_take()
        from pedalboard.io import AudioFile
        with atomic_path(path) as tmp:
            with AudioFile(str(tmp), "w", self.engine.sample_rate, 2, bit_depth=32) as f:
                f.write(audio)
        return [{"type": "recorded", "path": path, "seconds": seconds}]

    # periodic ---------------------------------------------------------------------------
    def _state(self, *keys: str) -> dict[str, Any]:
        e, c = self.engine, self.control
        getters: dict[str, Callable[[], Any]] = {
            "overrides": self.overrides, "strength": lambda: c.strength,
            "frozen": lambda: c.frozen,
            "mute": lambda: sorted(e.muted, key=e.track_names.index),
            "solo": lambda: sorted(e.soloed, key=e.track_names.index),
            "ab": lambda: AB_SOURCES[e.ab], "inserts": self.inserts,
            "loop_s": lambda: list(e.loop_s) if e.loop_s else None,
            "midi_map": self.midi_map_list, "session_path": lambda: self.session_path,
            "predicted": self.predicted,
            "ab_gain_db": lambda: {k: v for k, v in self.analysis.gain_db.items()
                                   if k in e.ab_available},
        }
        return {"type": "state", **{k: getters[k]() for k in keys}}

    def tick(self, meters: bool = True) -> list[dict[str, Any]]:
        """Meters (unless ``meters`` is False: no page is listening), plus what changed without
        a page message (call ~20 times a second)."""
        out: list[dict[str, Any]] = [self.meters()] if meters else []
        seen = (getattr(self.worker, "updates", 0), self.router.applied)
        if seen != self._seen:
            if seen[0] != self._seen[0]:
                out.append(self._state("predicted"))
            self._seen = seen
            out += self._changed_values()
        while self._pending:
            item = self._pending.popleft()
            if item["type"] == "_learned":
                b = item["binding"]
                out += [self._state("midi_map"),
                        _info(f"MIDI channel {b['channel']} cc {b['cc']} -> {b['target']}")]
            else:
                out.append(item)
        for text in self.engine.take_warnings():
            out += [_warning(text), self._state("inserts")]
        if self.worker is not None:
            failure = self.worker.take_failure()
            if failure:
                out.append(_warning(failure))
        out += self._finish_record()
        out += self._rematch()
        return out

    def _rematch(self) -> list[dict[str, Any]]:
        """The learned mix edited: its A/B match measured again (``analysis.Rematch``)."""
        if self.rematch is None:
            return []
        t, m = self.control.effective()
        gains = self.rematch.poll((t.tobytes(), m.tobytes()), self.control.setting)
        if not gains:
            return []
        for source, gain in gains.items():
            if source in self.engine.ab_available:
                self.engine.set_ab_gain(source, gain)
        return [self._state("ab_gain_db")]

    def close(self) -> None:
        """Stop what the service started besides the engine (the A/B measuring process)."""
        if self.rematch is not None:
            self.rematch.close()


def setting_json_text(setting: Any, sample_rate_hz: float) -> str:
    """The setting as ``mixstyle mix --params`` writes it (the table's JSON + the rate)."""
    import json
    data = json.loads(dumps(setting))
    data["sample_rate_hz"] = check_sample_rate(sample_rate_hz)
    return json.dumps(data, indent=2) + "\n"


def _number(v: Any, what: str) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise Refused(f"{what!r} must be a finite number (seconds), got {v!r}")
    return float(v)


def _error(text: str) -> dict[str, Any]:
    return {"type": "message", "level": "error", "text": text}


def _warning(text: str) -> dict[str, Any]:
    return {"type": "message", "level": "warning", "text": text}


def _info(text: str) -> dict[str, Any]:
    return {"type": "message", "level": "info", "text": text}
