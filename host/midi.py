"""MIDI control of the live console: a CC map (JSON), MIDI learn, filtering, rtmidi input.

Map file::

    {"bindings": [{"channel": 0, "cc": 7, "target": "track:vox:output_gain_db"},
                  {"channel": 0, "cc": 8, "target": "master:gain_db"},
                  {"channel": 0, "cc": 9, "target": "strength"},
                  {"channel": 0, "cc": 20, "target": "transport:toggle"}]}

Targets: ``track:<name>:<param>``, ``master:<param>`` (a live parameter of the table; the CC value
0..127 is scaled through the table's range and scale), ``strength`` (0..1), ``transport:play``,
``transport:stop``, ``transport:toggle``, ``freeze`` (toggle), ``release`` (hand every override
back to the model). Buttons act when the value crosses 64 upwards.

Filtering: only well-formed 3-byte control changes reach the map; everything else (sysex, clock,
notes, malformed or out-of-range bytes) is counted and dropped. Parameter moves are coalesced:
``flush`` sends at most one change per target, the latest, however many CCs arrived.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Protocol

from dsp.ccmap import cc_to_value as convert
from dsp.errors import HostError, ParameterError
from dsp.params import MASTER, TRACK, ParamSpec, spec
from host.control import NOT_LIVE, Control
from host.realtime import make_thread_realtime

BUTTONS = ("transport:play", "transport:stop", "transport:toggle", "freeze", "release")


def cc_to_value(p: ParamSpec, cc: int) -> float:
    """CC 0..127 -> parameter value through the table's range and scale."""
    return float(convert(p, cc))


@dataclass(frozen=True)
class Target:
    """A parsed binding target: kind "param" (track None = master), "strength" or a button."""

    kind: str
    track: str | None = None
    name: str = ""

    @property
    def spec(self) -> ParamSpec:
        return spec(MASTER if self.track is None else TRACK, self.name)

    def __str__(self) -> str:
        if self.kind != "param":
            return self.kind
        return f"master:{self.name}" if self.track is None else f"track:{self.track}:{self.name}"


def parse_target(text: Any, where: str = "MIDI target") -> Target:
    if not isinstance(text, str):
        raise HostError(f"{where}: target must be a string, got {text!r}")
    if text == "strength" or text in BUTTONS:
        return Target(kind=text)
    parts = text.split(":")
    try:
        if parts[0] == "master" and len(parts) == 2:
            t = Target("param", None, parts[1])
        elif parts[0] == "track" and len(parts) >= 3 and parts[1]:
            t = Target("param", ":".join(parts[1:-1]), parts[-1])
        else:
            raise HostError(f"{where}: unknown target {text!r}; expected 'track:<name>:<param>',"
                            f" 'master:<param>', 'strength' or one of {', '.join(BUTTONS)}")
        t.spec  # noqa: B018 - raises ParameterError on an unknown parameter name
    except ParameterError as e:
        raise ParameterError(f"{where}: {e}") from None
    if t.track is None and t.name in NOT_LIVE:
        raise ParameterError(f"{where}: master:{t.name} cannot be changed live")
    return t


@dataclass(frozen=True)
class Binding:
    channel: int
    cc: int
    target: Target

    def to_dict(self) -> dict[str, Any]:
        return {"channel": self.channel, "cc": self.cc, "target": str(self.target)}


def _int_in(value: Any, lo: int, hi: int, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise HostError(f"{what} = {value!r} is out of range: allowed integers {lo} .. {hi}")
    return value


class MidiMap:
    """(channel, cc) -> Target. One binding per (channel, cc); ``bind`` replaces."""

    def __init__(self, bindings: tuple[Binding, ...] = ()) -> None:
        self._by_cc: dict[tuple[int, int], Binding] = {}
        for b in bindings:
            self._by_cc[(b.channel, b.cc)] = b

    @property
    def bindings(self) -> list[Binding]:
        return list(self._by_cc.values())

    def bind(self, channel: int, cc: int, target: str | Target) -> Binding:
        t = target if isinstance(target, Target) else parse_target(target)
        b = Binding(_int_in(channel, 0, 15, "MIDI channel"), _int_in(cc, 0, 127, "MIDI CC"), t)
        self._by_cc[(b.channel, b.cc)] = b
        return b

    def unbind(self, channel: int, cc: int) -> Binding:
        """Remove the binding of (channel, cc); HostError when there is none."""
        b = self._by_cc.pop((_int_in(channel, 0, 15, "MIDI channel"),
                             _int_in(cc, 0, 127, "MIDI CC")), None)
        if b is None:
            raise HostError(f"no MIDI binding on channel {channel} cc {cc}")
        return b

    def lookup(self, channel: int, cc: int) -> Binding | None:
        return self._by_cc.get((channel, cc))

    def to_dict(self) -> dict[str, Any]:
        return {"bindings": [b.to_dict() for b in self.bindings]}

    @classmethod
    def from_dict(cls, data: Any, where: str = "MIDI map") -> "MidiMap":
        if not isinstance(data, Mapping) or not isinstance(data.get("bindings"), list):
            raise HostError(f"{where}: expected {{\"bindings\": [...]}}, got {str(data)[:80]}")
        m = cls()
        for i, b in enumerate(data["bindings"]):
            at = f"{where}, binding #{i}"
            if not isinstance(b, Mapping) or set(b) != {"channel", "cc", "target"}:
                raise HostError(f"{at}: expected keys channel, cc, target; got {b!r}")
            m.bind(_int_in(b["channel"], 0, 15, f"{at}: channel"),
                   _int_in(b["cc"], 0, 127, f"{at}: cc"), parse_target(b["target"], at))
        return m


def load_midi_map(path: str) -> MidiMap:
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except OSError as e:
        raise HostError(f"MIDI map {path!r}: cannot read it ({e.strerror})") from None
    except json.JSONDecodeError as e:
        raise HostError(f"MIDI map {path!r}: not valid JSON ({e})") from None
    return MidiMap.from_dict(data, f"MIDI map {path!r}")


class Transport(Protocol):
    def play(self) -> None: ...
    def stop(self) -> None: ...
    def toggle(self) -> None: ...


class MidiRouter:
    """Filters raw MIDI, applies the map, coalesces moves; no threads, no rtmidi (testable)."""

    def __init__(self, midi_map: MidiMap, control: Control, transport: Transport) -> None:
        self.map = midi_map
        self.control = control
        self.transport = transport
        self.junk = 0
        self.unbound = 0
        self.accepted = 0
        self.applied = 0
        self.last_learned: Binding | None = None
        self._learning: Target | None = None
        self._pending: dict[Target, int] = {}
        self._button_state: dict[tuple[int, int], bool] = {}
        self._lock = threading.Lock()
        self.on_learn: Callable[[Binding], None] | None = None
        for b in midi_map.bindings:
            if b.target.kind == "param" and b.target.track is not None \
                    and b.target.track not in control.track_names:
                raise HostError(f"MIDI binding channel {b.channel} cc {b.cc} -> {b.target}: no "
                                f"track named {b.target.track!r}; tracks: {control.track_names}")

    def learn(self, target: str) -> None:
        """The next control change that arrives (any channel) gets bound to ``target``."""
        t = parse_target(target)
        if t.kind == "param":
            self.control.address(t.track, t.name)  # raises on an unknown track
        with self._lock:
            self._learning = t

    @property
    def learning(self) -> bool:
        return self._learning is not None

    def feed(self, message: Any) -> bool:
        """One raw message (list of ints). Returns True when it was a bound or learned CC."""
        if (not isinstance(message, (list, tuple)) or len(message) != 3
                or not all(isinstance(x, int) and not isinstance(x, bool) for x in message)
                or not 0xB0 <= message[0] <= 0xBF or not 0 <= message[1] < 128
                or not 0 <= message[2] < 128):
            self.junk += 1
            return False
        channel, cc, value = message[0] & 0x0F, message[1], message[2]
        with self._lock:
            if self._learning is not None:
                self.last_learned = self.map.bind(channel, cc, self._learning)
                self._learning = None
                if self.on_learn is not None:
                    self.on_learn(self.last_learned)
                return True
            b = self.map.lookup(channel, cc)
            if b is None:
                self.unbound += 1
                return False
            self.accepted += 1
            if b.target.kind in BUTTONS:
                pressed = value >= 64
                was = self._button_state.get((channel, cc), False)
                self._button_state[(channel, cc)] = pressed
                if pressed and not was:
                    self._press(b.target.kind)
                return True
            self._pending[b.target] = value
        return True

    def _press(self, kind: str) -> None:
        if kind == "transport:play":
            self.transport.play()
        elif kind == "transport:stop":
            self.transport.stop()
        elif kind == "transport:toggle":
            self.transport.toggle()
        elif kind == "freeze":
            self.control.freeze(not self.control.frozen)
        elif kind == "release":
            self.control.release()

    def flush(self) -> int:
        """Apply the latest value of every moved target; returns how many were applied."""
        with self._lock:
            pending, self._pending = self._pending, {}
        for t, value in pending.items():
            if t.kind == "strength":
                self.control.set_strength(value / 127.0)
            else:
                self.control.set_override(t.track, t.name, cc_to_value(t.spec, value))
        self.applied += len(pending)
        return len(pending)


def open_midi_input(port: str | None = None, virtual: bool = True, api: str = "auto",
                    client_name: str = "mixstyle") -> Any:
    """An rtmidi MidiIn: a virtual input port named ``port`` or the hardware port containing it.

    api "jack" (JACK MIDI), "alsa" or "auto" (rtmidi's default). Sysex, clock and active sensing
    are ignored by rtmidi already.
    """
    import rtmidi
    apis = {"auto": rtmidi.API_UNSPECIFIED, "jack": rtmidi.API_UNIX_JACK,
            "alsa": rtmidi.API_LINUX_ALSA}
    if api not in apis:
        raise HostError(f"MIDI api must be one of {sorted(apis)}, got {api!r}")
    try:
        midi_in = rtmidi.MidiIn(apis[api], client_name)
        midi_in.ignore_types(sysex=True, timing=True, active_sense=True)
        if virtual:
            midi_in.open_virtual_port(port or "control")
        else:
            names = midi_in.get_ports()
            hits = [i for i, n in enumerate(names) if port is None or port in n]
            if not hits:
                raise HostError(f"no MIDI input port matching {port!r}; ports: {names}")
            midi_in.open_port(hits[0])
    except rtmidi.SystemError as e:
        raise HostError(f"cannot open MIDI input ({api}): {e}") from None
    return midi_in


class MidiInput:
    """A thread polling an rtmidi input into a MidiRouter; flushes moves every ``period_s``."""

    def __init__(self, router: MidiRouter, midi_in: Any, period_s: float = 0.005) -> None:
        self.router = router
        self.midi_in = midi_in
        self.period_s = period_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="mixstyle-midi", daemon=True)

    def start(self) -> "MidiInput":
        self._thread.start()
        return self

    def _run(self) -> None:
        make_thread_realtime(1)  # wakes 200 times a second: never preempted holding the GIL
        while not self._stop.is_set():
            got = 0
            while got < 4096:  # bounded drain so a flood cannot starve the flush
                msg = self.midi_in.get_message()
                if msg is None:
                    break
                self.router.feed(msg[0])
                got += 1
            try:
                self.router.flush()
            except (HostError, ParameterError):
                self.router.junk += 1
            time.sleep(self.period_s)

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=2)
        self.midi_in.close_port()
        if hasattr(self.midi_in, "delete"):
            self.midi_in.delete()  # closes the JACK/ALSA client now, not at garbage collection

    def __enter__(self) -> "MidiInput":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
