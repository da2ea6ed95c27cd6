"""VST3 inserts on a track or the master bus, through pedalboard.

Where inserts run: in the audio callback, right after the track's strip (or after the master bus),
through pedalboard's ``process``. That call allocates its output array (a small numpy array per
block): it is the one allocation on the audio path and it is unavoidable with pedalboard. We chose
it over a worker thread with one block of latency because with Python the hand-over between two
threads per 2.7 ms block goes through the GIL, whose hand-off jitter is larger than the cost of the
allocation; a worker would also shift inserted tracks by a block against the others. An insert
that raises is bypassed (its track keeps playing dry) and reported once by ``take_failures``.

Track inserts run after the track's strip (post-fader, post-pan); master inserts run after the
whole master bus, limiter included, so a plugin there can push the output past the ceiling.

Plugins whose main bus is mono (ZamEQ2) run one instance per channel ("dual-mono"); stereo
plugins (ZamCompX2) run one instance. ``load_insert`` finds out which by asking the plugin.
"""

from __future__ import annotations

import base64
import os
import time
from typing import Any, Mapping, Sequence

import numpy as np

from dsp.errors import HostError, ParameterError
from host.rtkernels import all_finite, copy_block

VST3_DIRS = ("/usr/lib/vst3", "/usr/local/lib/vst3", os.path.expanduser("~/.vst3"))


def find_plugin(name_or_path: str) -> str:
    """A VST3 bundle path from a path or a bare name ("ZamEQ2") looked up in the usual folders."""
    if os.path.exists(name_or_path):
        return name_or_path
    bundle = name_or_path if name_or_path.endswith(".vst3") else name_or_path + ".vst3"
    for folder in VST3_DIRS:
        candidate = os.path.join(folder, bundle)
        if os.path.exists(candidate):
            return candidate
    raise HostError(f"VST3 plugin {name_or_path!r} not found (looked in {', '.join(VST3_DIRS)})")


def _is_channel_error(err: Exception) -> bool:
    text = str(err).lower()
    return "channel" in text and ("support" in text or "expects" in text)


class PluginInsert:
    """One VST3 insert on a stereo signal; ``process_into(buf)`` works in place on (2, n)."""

    def __init__(self, path: str, sample_rate: float, block: int, instances: Sequence[Any],
                 where: str = "") -> None:
        self.path = path
        self.sample_rate = float(sample_rate)
        self.block = int(block)
        self.instances = tuple(instances)
        self.where = where
        self.bypassed = False
        self.failed = False
        self.error: BaseException | None = None
        self._reported = False
        self._synced = True  # processed a block since the last parameter change

    @property
    def name(self) -> str:
        return str(getattr(self.instances[0], "name", os.path.basename(self.path)))

    @property
    def mode(self) -> str:
        return "stereo" if len(self.instances) == 1 else "dual-mono"

    def parameter_names(self) -> list[str]:
        return list(self.instances[0].parameters.keys())

    def set_parameter(self, name: str, value: float) -> None:
        """Set a parameter (pedalboard's Python name, e.g. ``threshold_db``) on every instance."""
        known = self.parameter_names()
        if name not in known:
            raise ParameterError(f"plugin {self.name!r}{self._at()}: unknown parameter {name!r}; "
                                 f"known: {', '.join(known)}")
        for inst in self.instances:
            try:
                setattr(inst, name, value)
            except ValueError as e:  # pedalboard names the range
                raise ParameterError(f"plugin {self.name!r}{self._at()}: {e}") from None
        self._synced = False

    def parameters(self) -> dict[str, Any]:
        inst = self.instances[0]
        return {name: getattr(inst, name) for name in self.parameter_names()}

    def states(self) -> list[bytes]:
        """Each instance's raw state (what the plugin itself saves).

        Some plugins (DPF ones such as the Zam plugins) copy parameter changes into their state
        only when they process audio: if no block ran since the last change, wait a moment for
        the callback, else run one block of silence here (and reset) before reading the state.
        """
        deadline = time.monotonic() + 0.05
        while not self._synced and time.monotonic() < deadline:
            time.sleep(0.005)
        if not self._synced:
            silence = np.zeros((2, self.block), dtype=np.float32)
            bypassed, self.bypassed = self.bypassed, False
            self.process_into(silence)
            self.bypassed = bypassed
            self.reset()
        return [bytes(inst.raw_state) for inst in self.instances]

    def set_states(self, states: Sequence[bytes]) -> None:
        if len(states) != len(self.instances):
            raise HostError(f"plugin {self.name!r}{self._at()}: {len(states)} saved states for "
                            f"{len(self.instances)} instances ({self.mode})")
        for inst, state in zip(self.instances, states):
            inst.raw_state = state

    def reset(self) -> None:
        for inst in self.instances:
            inst.reset()

    def _at(self) -> str:
        return f" on {self.where}" if self.where else ""

    def process_into(self, buf: np.ndarray) -> None:
        """Run the plugin on buf (channels, n) in place; on an exception bypass it from now on."""
        if self.bypassed or self.failed:
            return
        try:
            n = buf.shape[1]
            if len(self.instances) == 1:
                y = self.instances[0].process(buf, self.sample_rate, buffer_size=n, reset=False)
                buf[:, :] = y
            else:
                for ch, inst in enumerate(self.instances):
                    y = inst.process(buf[ch:ch + 1], self.sample_rate, buffer_size=n, reset=False)
                    buf[ch, :] = y[0]
            self._synced = True
        except Exception as e:  # noqa: BLE001 - any plugin failure bypasses that plugin only
            self.error = e
            self.failed = True

    def take_failure(self) -> str | None:
        """Once per failure: a sentence for the user (called outside the audio callback)."""
        if self.failed and not self._reported and self.error is not None:
            self._reported = True
            return (f"plugin {self.name!r}{self._at()} raised {type(self.error).__name__}: "
                    f"{self.error}; it is bypassed, the rest keeps playing")
        return None

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "mode": self.mode, "bypassed": self.bypassed,
                "states": [base64.b64encode(s).decode("ascii") for s in self.states()]}


def load_insert(name_or_path: str, sample_rate: float, block: int, where: str = "",
                parameters: Mapping[str, float] | None = None, mode: str = "auto",
                loader: Any = None) -> PluginInsert:
    """Load a VST3 insert for a stereo bus.

    ``mode``: "auto" (ask the plugin whether it takes two channels), "stereo" or "dual-mono".
    ``loader`` defaults to ``pedalboard.load_plugin`` (tests may pass another callable).
    """
    if mode not in ("auto", "stereo", "dual-mono"):
        raise HostError(f"insert mode must be 'auto', 'stereo' or 'dual-mono', got {mode!r}")
    path = find_plugin(name_or_path)
    if loader is None:
        import pedalboard
        loader = pedalboard.load_plugin
    try:
        first = loader(path)
    except Exception as e:  # noqa: BLE001 - the plugin's own error, named with its path
        raise HostError(f"cannot load VST3 plugin {path!r}{' on ' + where if where else ''}: "
                        f"{e}") from None
    if mode == "auto":
        mode = "stereo"
        try:
            first.process(np.zeros((2, block), np.float32), float(sample_rate),
                          buffer_size=block, reset=True)
        except Exception as e:  # noqa: BLE001
            if not _is_channel_error(e):
                raise HostError(f"VST3 plugin {path!r} cannot process stereo audio: {e}") from None
            mode = "dual-mono"
        first.reset()
    instances = [first] if mode == "stereo" else [first, loader(path)]
    insert = PluginInsert(path, sample_rate, block, instances, where)
    for name, value in (parameters or {}).items():
        insert.set_parameter(name, value)
    return insert


def parse_insert_arg(text: str) -> tuple[str, str, str | None]:
    """``TRACK=PLUGIN[:PRESET]`` (``mixstyle host --insert``) -> (track or "master", plugin,
    preset path or None)."""
    where, sep, rest = str(text).partition("=")
    plugin, _, preset = rest.partition(":")
    if not sep or not where or not plugin:
        raise HostError(f"--insert {text!r}: expected TRACK=PLUGIN[:PRESET], e.g. "
                        f"vox=ZamCompX2 or master=/usr/lib/vst3/ZamEQ2.vst3:bright.vstpreset "
                        f"(TRACK is a track name or 'master')")
    return where, plugin, preset or None


def apply_preset(insert: PluginInsert, path: str) -> None:
    """Load a ``.vstpreset`` file, or a plugin state file (the plugin's own raw state bytes, as
    a session stores them), into every instance of ``insert``."""
    if not os.path.isfile(path):
        raise HostError(f"preset {path!r} for plugin {insert.name!r}{insert._at()}: file not "
                        f"found")
    try:
        if path.lower().endswith(".vstpreset"):
            for inst in insert.instances:
                inst.load_preset(path)
        else:
            with open(path, "rb") as f:
                state = f.read()
            if not state:
                raise ValueError("the file is empty")
            insert.set_states([state] * len(insert.instances))
    except HostError:
        raise
    except Exception as e:  # noqa: BLE001 - the plugin's own error, named with the file
        raise HostError(f"preset {path!r} for plugin {insert.name!r}{insert._at()}: cannot "
                        f"load it ({e})") from None
    insert._synced = False


def insert_from_dict(data: Mapping[str, Any], sample_rate: float, block: int,
                     where: str = "") -> PluginInsert:
    """Rebuild an insert saved by ``PluginInsert.to_dict`` (a session file entry)."""
    if not isinstance(data, Mapping) or not isinstance(data.get("path"), str):
        raise HostError(f"insert{' on ' + where if where else ''}: expected an object with a "
                        f"'path' string, got {data!r}")
    insert = load_insert(data["path"], sample_rate, block, where, mode=data.get("mode", "auto"))
    states = data.get("states") or []
    try:
        raw = [base64.b64decode(s, validate=True) for s in states]
    except (ValueError, TypeError) as e:
        raise HostError(f"insert {data['path']!r}{' on ' + where if where else ''}: "
                        f"a saved state is not base64 ({e})") from None
    if raw:
        insert.set_states(raw)
    insert.bypassed = bool(data.get("bypassed", False))
    return insert


class InsertChain:
    """The inserts of one bus, run in order. The tuple is replaced whole, never mutated.

    Each insert is guarded: the block is kept before it runs, and an insert that raises or puts
    out NaN/inf gets that block back (its bus plays on dry) and is bypassed from then on, on its
    own bus only. ``take_failures()`` gives one sentence per such failure (outside the callback).
    Inserts are objects with ``process_into(buf)`` working in place on (2, n); a PluginInsert,
    or any object with that method (its ``failed`` attribute is set when it fails).
    """

    def __init__(self, inserts: Sequence[Any] = (), block: int = 0, where: str = "") -> None:
        self.inserts: tuple[Any, ...] = tuple(inserts)
        self.where = where
        self._keep = np.zeros((2, block), dtype=np.float32) if block else None
        self._failures: list[str] = []  # appended by the callback (rarely), drained by others

    def process_into(self, buf: np.ndarray) -> None:
        keep = self._keep
        if keep is None or keep.shape != buf.shape:  # only when built without a block size
            keep = self._keep = np.zeros(buf.shape, dtype=np.float32)
        for ins in self.inserts:
            if getattr(ins, "bypassed", False) or getattr(ins, "failed", False):
                continue
            copy_block(buf, keep)
            try:
                ins.process_into(buf)
            except Exception as e:  # noqa: BLE001 - any insert failure bypasses that insert only
                self._fail(ins, f"raised {type(e).__name__}: {e}")
                copy_block(keep, buf)
                continue
            if getattr(ins, "failed", False):  # a PluginInsert caught its own exception
                copy_block(keep, buf)
            elif not all_finite(buf):
                self._fail(ins, "put out NaN/inf samples")
                copy_block(keep, buf)

    def _fail(self, ins: Any, what: str) -> None:
        try:
            ins.failed = True
        except AttributeError:
            self.inserts = tuple(i for i in self.inserts if i is not ins)
        name = getattr(ins, "name", type(ins).__name__)
        at = getattr(ins, "where", "") or self.where
        self._failures.append(f"plugin {name!r}{' on ' + at if at else ''} {what}; it is "
                              f"bypassed, the rest keeps playing")

    def take_failures(self) -> list[str]:
        """New failures as sentences for the user (each once)."""
        out = []
        while self._failures:
            out.append(self._failures.pop(0))
        for ins in self.inserts:
            take = getattr(ins, "take_failure", None)
            m = take() if take is not None else None
            if m:
                out.append(m)
        return out

    def add(self, insert: Any) -> None:
        self.inserts = self.inserts + (insert,)

    def remove(self, index: int) -> Any:
        if isinstance(index, bool) or not isinstance(index, int) \
                or not 0 <= index < len(self.inserts):
            raise HostError(f"insert index {index!r} out of range: this bus has "
                            f"{len(self.inserts)} inserts")
        ins = self.inserts[index]
        self.inserts = self.inserts[:index] + self.inserts[index + 1:]
        return ins
