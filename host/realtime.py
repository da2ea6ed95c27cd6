"""Process-wide set-up that keeps the audio callback from being stalled by the rest of Python.

The callback itself runs on preallocated buffers (host.engine); what still stalls it comes from
outside it (measured in docs/studies/realtime_stalls.md):

- **Page faults.** Memory Python, numpy and glibc hand back to the kernel (empty pymalloc arenas,
  trimmed heaps, freed large arrays) is mapped again on next use, one fault per page, and every
  ``mmap``/``munmap`` takes the address-space lock the faulting callback thread then waits on.
  ``mlockall(MCL_CURRENT | MCL_FUTURE)`` keeps every page resident (future mappings are faulted
  in by the thread that maps them, not by whoever touches them first), and glibc is told to keep
  freed memory instead of trimming or unmapping it (``mallopt``).
- **Garbage collection.** A collection holds the GIL for as long as it walks its generation; a
  full one over the ~10^5 objects of numba, numpy and the application takes tens of ms in any
  thread, the callback waiting for the GIL meanwhile. After warm-up everything alive is moved to
  the permanent generation (``gc.freeze``), so later collections only walk objects made since;
  automatic collection is switched off and a collector thread runs small collections at a steady
  pace instead (each walks only the young objects: well under a block).

``RealtimeGuard`` applies all of this for one engine's lifetime and undoes what it can on
``stop()``; each step that the OS refuses (no CAP_IPC_LOCK, no glibc) is reported in
``status()`` and skipped, never fatal.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import os
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from dsp.errors import HostError

MCL_CURRENT, MCL_FUTURE = 1, 2
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD, M_MMAP_MAX = -1, -3, -4


def _libc() -> Any:
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    except OSError:
        return None


def lock_memory() -> str | None:
    """mlockall(MCL_CURRENT | MCL_FUTURE); None when done, else why not (a sentence)."""
    libc = _libc()
    if libc is None:
        return f"mlockall is not available on {sys.platform}"
    if libc.mlockall(MCL_CURRENT | MCL_FUTURE) != 0:
        err = ctypes.get_errno()
        return (f"mlockall refused ({os.strerror(err)}): raise 'ulimit -l' or grant "
                f"CAP_IPC_LOCK to keep the engine's memory resident")
    return None


def unlock_memory() -> None:
    libc = _libc()
    if libc is not None:
        libc.munlockall()


def keep_freed_memory() -> str | None:
    """Tell glibc never to trim its heap nor to serve big blocks with their own mmap: freed
    memory stays mapped and is reused without page faults. None when done, else why not."""
    libc = _libc()
    if libc is None or not hasattr(libc, "mallopt"):
        return "mallopt is not available (not glibc)"
    ok = (libc.mallopt(M_TRIM_THRESHOLD, 0x7FFFFFFF) == 1
          and libc.mallopt(M_MMAP_THRESHOLD, 0x7FFFFFFF) == 1)
    return None if ok else "mallopt refused the settings"


@dataclass
class RealtimeGuard:
    """``start()`` after the engine's warm-up (kernels compiled, buffers allocated), ``stop()``
    when the engine closes. ``gc``: freeze what is alive and collect on our own schedule;
    ``mlock``: lock memory and keep freed memory mapped. ``collect_every_s``: the collector
    thread's pace (a young collection each time, the older generations every 10th / 100th)."""

    gc: bool = True
    mlock: bool = True
    collect_every_s: float = 0.2
    problems: list[str] = field(default_factory=list)
    collections: int = 0
    longest_collection_ms: float = 0.0

    def __post_init__(self) -> None:
        if not 0.01 <= self.collect_every_s <= 60.0:
            raise HostError(f"collect_every_s = {self.collect_every_s} is out of range: allowed "
                            f"0.01 .. 60 s")
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._was_enabled = True
        self._locked = False
        self._started = False

    def start(self) -> "RealtimeGuard":
        if self._started:
            return self
        self._started = True
        self.problems = []
        if self.mlock:
            for step in (keep_freed_memory, lock_memory):
                why = step()
                if why is None:
                    self._locked = self._locked or step is lock_memory
                else:
                    self.problems.append(why)
        if self.gc:
            self._was_enabled = gc.isenabled()
            gc.disable()
            gc.collect()
            gc.freeze()  # everything alive now (modules, kernels, buffers) is never walked again
            self._stop.clear()
            self._thread = threading.Thread(target=self._collector, name="mixstyle-gc",
                                            daemon=True)
            self._thread.start()
        return self

    def _collector(self) -> None:
        n = 0
        while not self._stop.wait(self.collect_every_s):
            n += 1
            gen = 2 if n % 100 == 0 else 1 if n % 10 == 0 else 0
            t0 = time.perf_counter()
            gc.collect(gen)
            ms = 1000.0 * (time.perf_counter() - t0)
            self.collections += 1
            self.longest_collection_ms = max(self.longest_collection_ms, ms)

    def stop(self) -> None:
        if not self._started:
            return
        self._started = False
        if self._thread is not None:
            self._stop.set()
            self._thread.join(timeout=5)
            self._thread = None
        if self.gc:
            gc.unfreeze()
            if self._was_enabled:
                gc.enable()
        if self._locked:
            unlock_memory()
            self._locked = False

    def status(self) -> dict[str, Any]:
        return {"gc_frozen": self.gc and self._started, "memory_locked": self._locked,
                "collections": self.collections,
                "longest_collection_ms": round(self.longest_collection_ms, 3),
                "problems": list(self.problems)}

    def __enter__(self) -> "RealtimeGuard":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
