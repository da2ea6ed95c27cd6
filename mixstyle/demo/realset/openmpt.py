"""libopenmpt through ctypes: open a module from bytes, solo one instrument or channel, render
float stereo at 44.1 kHz block by block.

Only the C API of ``libopenmpt.so.0`` (Debian ``libopenmpt0``) is used: the ``ext`` module and
its ``interactive`` interface, whose mute switches (per instrument, or per sample when the module
has no instruments, and per channel) select what a render plays. Nothing here changes the
module's own levels: the dry renders get their fields reset in the file bytes (``modfields``)
and a stereo separation of 0 %.
"""

from __future__ import annotations

import ctypes as C
import ctypes.util
import re
from dataclasses import dataclass
from typing import Iterator

import numpy as np

from mixstyle.demo.realset.errors import RealSetToolError

SAMPLE_RATE_HZ = 44100
BLOCK_FRAMES = 8192
LIBRARY = "libopenmpt.so.0"
PACKAGE = "libopenmpt0"

# openmpt_module_render_param (libopenmpt.h)
_RENDER_STEREOSEPARATION_PERCENT = 2

# openmpt_module_ext_interface_interactive (libopenmpt_ext.h), in the header's order
_INTERACTIVE_FIELDS = ("set_current_speed", "set_current_tempo", "set_tempo_factor",
                       "get_tempo_factor", "set_pitch_factor", "get_pitch_factor",
                       "set_global_volume", "get_global_volume", "set_channel_volume",
                       "get_channel_volume", "set_channel_mute_status", "get_channel_mute_status",
                       "set_instrument_mute_status", "get_instrument_mute_status", "play_note",
                       "stop_note")


class _Interactive(C.Structure):
    _fields_ = [(name, C.c_void_p) for name in _INTERACTIVE_FIELDS]


_SET_MUTE = C.CFUNCTYPE(C.c_int, C.c_void_p, C.c_int32, C.c_int)
_LIB: C.CDLL | None = None


def library() -> C.CDLL:
    """The loaded libopenmpt (once per process); RealSetToolError names the package if absent."""
    global _LIB
    if _LIB is not None:
        return _LIB
    try:
        lib = C.CDLL(LIBRARY)
    except OSError:
        found = ctypes.util.find_library("openmpt")
        if found is None:
            raise RealSetToolError(f"the real set's module renderer needs {LIBRARY}: install the "
                                   f"Debian package '{PACKAGE}' (apt-get install {PACKAGE}, or "
                                   f"scripts/setup.sh)") from None
        lib = C.CDLL(found)
    vp, i32 = C.c_void_p, C.c_int32
    lib.openmpt_module_ext_create_from_memory.restype = vp
    lib.openmpt_module_ext_create_from_memory.argtypes = [vp, C.c_size_t] + [vp] * 7
    lib.openmpt_module_ext_get_module.restype = vp
    lib.openmpt_module_ext_get_module.argtypes = [vp]
    lib.openmpt_module_ext_get_interface.restype = C.c_int
    lib.openmpt_module_ext_get_interface.argtypes = [vp, C.c_char_p, vp, C.c_size_t]
    lib.openmpt_module_ext_destroy.argtypes = [vp]
    lib.openmpt_module_read_interleaved_float_stereo.restype = C.c_size_t
    lib.openmpt_module_read_interleaved_float_stereo.argtypes = [vp, i32, C.c_size_t, vp]
    lib.openmpt_module_set_render_param.restype = C.c_int
    lib.openmpt_module_set_render_param.argtypes = [vp, C.c_int, i32]
    for what in ("num_instruments", "num_samples", "num_channels"):
        getattr(lib, f"openmpt_module_get_{what}").restype = i32
        getattr(lib, f"openmpt_module_get_{what}").argtypes = [vp]
    for what in ("instrument_name", "sample_name", "channel_name"):
        getattr(lib, f"openmpt_module_get_{what}").restype = vp
        getattr(lib, f"openmpt_module_get_{what}").argtypes = [vp, i32]
    lib.openmpt_module_get_metadata.restype = vp
    lib.openmpt_module_get_metadata.argtypes = [vp, C.c_char_p]
    lib.openmpt_module_get_duration_seconds.restype = C.c_double
    lib.openmpt_module_get_duration_seconds.argtypes = [vp]
    lib.openmpt_free_string.argtypes = [vp]
    lib.openmpt_get_library_version.restype = C.c_uint32
    _LIB = lib
    return lib


def library_version() -> str:
    v = library().openmpt_get_library_version()
    return f"{v >> 24}.{(v >> 16) & 0xFF}.{v & 0xFFFF}"


def _string(lib: C.CDLL, ptr: int | None) -> str:
    if not ptr:
        return ""
    try:
        return C.string_at(ptr).decode("utf-8", "replace")
    finally:
        lib.openmpt_free_string(ptr)


@dataclass(frozen=True)
class ModuleInfo:
    """What the file says: format, title, artist, duration, the track names."""

    kind: str                  # libopenmpt's format id: "it", "xm", "s3m", "mod", ...
    title: str
    artist: str
    tracker: str
    duration_seconds: float
    instrument_names: tuple[str, ...]   # instruments, or samples when there are none
    by_samples: bool                    # True: the module has no instruments
    channels: int


class Module:
    """One open module (``with Module(data) as m``); a fresh one per render, so that each
    render starts from the song's beginning with the same state."""

    def __init__(self, data: bytes, name: str = "module") -> None:
        self.lib = library()
        self._data = C.create_string_buffer(bytes(data), len(data))
        self.ext = self.lib.openmpt_module_ext_create_from_memory(self._data, len(data),
                                                                  *[None] * 7)
        if not self.ext:
            raise RealSetToolError(f"libopenmpt cannot open '{name}' as a module")
        self.mod = self.lib.openmpt_module_ext_get_module(self.ext)
        self._interactive = _Interactive()
        if not self.lib.openmpt_module_ext_get_interface(
                self.ext, b"interactive", C.byref(self._interactive),
                C.sizeof(self._interactive)):
            self.close()
            raise RealSetToolError(f"this libopenmpt has no 'interactive' interface (needs "
                                   f"0.3 or newer) for '{name}'")

    def __enter__(self) -> "Module":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self.ext:
            self.lib.openmpt_module_ext_destroy(self.ext)
            self.ext = self.mod = None

    def info(self) -> ModuleInfo:
        lib, mod = self.lib, self.mod
        n_inst = lib.openmpt_module_get_num_instruments(mod)
        if n_inst:
            names = [_string(lib, lib.openmpt_module_get_instrument_name(mod, k))
                     for k in range(n_inst)]
        else:
            names = [_string(lib, lib.openmpt_module_get_sample_name(mod, k))
                     for k in range(lib.openmpt_module_get_num_samples(mod))]
        meta = {key: _string(lib, lib.openmpt_module_get_metadata(mod, key.encode()))
                for key in ("type", "title", "artist", "tracker")}
        return ModuleInfo(meta["type"], meta["title"].strip(), meta["artist"].strip(),
                          meta["tracker"].strip(), lib.openmpt_module_get_duration_seconds(mod),
                          tuple(names), not n_inst, lib.openmpt_module_get_num_channels(mod))

    def credits(self) -> list[str]:
        """Lines of the song message (or, for formats without one, of the instrument and sample
        names, where trackers write their credits) that name an author: "by", "(c)",
        "composed", "tracked", with the next line when a line ends in "by"."""
        text = _string(self.lib, self.lib.openmpt_module_get_metadata(self.mod, b"message"))
        lines = [ln.strip() for ln in text.splitlines()]
        out: list[str] = []
        for k, line in enumerate(lines):
            if re.search(r"\bby\b|\(c\)|\xa9|compos|tracked|written", line, re.I):
                out.append(line)
                if re.search(r"\bby$", line, re.I) and k + 1 < len(lines) and lines[k + 1]:
                    out.append(lines[k + 1])
        return list(dict.fromkeys(x for x in out if re.search(r"[A-Za-z]{3}", x)))

    def solo(self, index: int, by: str) -> None:
        """Mute everything but instrument (or sample) ``index`` (``by="instrument"``) or channel
        ``index`` (``by="channel"``)."""
        if by == "instrument":
            fn, count = self._interactive.set_instrument_mute_status, len(self.info().
                                                                          instrument_names)
        elif by == "channel":
            fn, count = (self._interactive.set_channel_mute_status,
                         self.lib.openmpt_module_get_num_channels(self.mod))
        else:
            raise ValueError(f"by = {by!r}: expected 'instrument' or 'channel'")
        set_mute = _SET_MUTE(fn)
        for k in range(count):
            set_mute(self.ext, k, int(k != index))

    def stereo_separation(self, percent: int) -> None:
        self.lib.openmpt_module_set_render_param(self.mod, _RENDER_STEREOSEPARATION_PERCENT,
                                                 int(percent))

    def blocks(self, max_frames: int, rate: int = SAMPLE_RATE_HZ) -> Iterator[np.ndarray]:
        """Render blocks (2, n) float32 at ``rate`` Hz until the song ends or ``max_frames``
        are out."""
        buf = np.zeros((BLOCK_FRAMES, 2), np.float32)
        done = 0
        while done < max_frames:
            want = min(BLOCK_FRAMES, max_frames - done)
            got = self.lib.openmpt_module_read_interleaved_float_stereo(
                self.mod, rate, want, buf.ctypes.data)
            if got == 0:
                return
            done += got
            yield buf[:got].T.copy()


def render(data: bytes, max_frames: int, solo: int | None = None, by: str = "instrument",
           dry: bool = False, start_frame: int = 0) -> np.ndarray:
    """The module (or one track of it) from its start, frames ``start_frame .. max_frames``,
    as (2, n) float32; ``dry``: stereo separation 0 % (every source in the middle)."""
    with Module(data) as m:
        if solo is not None:
            m.solo(solo, by)
        if dry:
            m.stereo_separation(0)
        parts, pos = [], 0
        for block in m.blocks(max_frames):
            end = pos + block.shape[1]
            if end > start_frame:
                parts.append(block[:, max(0, start_frame - pos):])
            pos = end
    return np.concatenate(parts, axis=1) if parts else np.zeros((2, 0), np.float32)


def block_energy(data: bytes, max_frames: int, block_frames: int, solo: int | None = None,
                 by: str = "instrument", rate: int = SAMPLE_RATE_HZ) -> tuple[np.ndarray, int]:
    """Mean square (both channels) of each ``block_frames`` block of a render, without keeping
    the audio (the activity map the excerpt is chosen from), and the render's length in
    frames (both at ``rate``)."""
    with Module(data) as m:
        if solo is not None:
            m.solo(solo, by)
        sums: list[float] = []
        acc, filled, frames = 0.0, 0, 0
        for block in m.blocks(max_frames, rate):
            frames += block.shape[1]
            sq = (block.astype(np.float64) ** 2).sum(axis=0)
            i = 0
            while i < sq.size:
                take = min(block_frames - filled, sq.size - i)
                acc += float(sq[i:i + take].sum())
                filled += take
                i += take
                if filled == block_frames:
                    sums.append(acc / (2 * block_frames))
                    acc, filled = 0.0, 0
        if filled:
            sums.append(acc / (2 * block_frames))
    return np.asarray(sums), frames
