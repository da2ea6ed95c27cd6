"""Process-wide set-up that keeps the audio callback from being stalled by the rest of Python.

The callback itself runs on preallocated buffers (host.engine); what still stalls it comes from
outside it (measured in docs/studies/realtime_stalls.md):

- **Page faults.** The callback thread faulted on the big buffers it touches first (the model
  tap is zero-filled lazily, and numpy asks for transparent huge pages, so one fault allocates
  and zeroes 2 MB) and, as long as it played, on pages the kernel had taken back (reclaim; this
  VM runs DAMON proactive reclaim); one fault can cost a whole period.
  ``mlockall(MCL_CURRENT)`` makes every page mapped at start resident, and
  ``mlockall(MCL_FUTURE | MCL_ONFAULT)`` keeps every later page once touched; the kernel never
  takes them away. (Not plain ``MCL_FUTURE``: filling every new mapping at once put so much work
  into the kernel that, on this non-preemptible kernel, the JACK server's xruns multiplied.)
- **Garbage collection.** A collection holds the GIL for as long as it walks its generation; a
  full one over the ~10^5 objects of numba, numpy and the application takes tens of ms in any
  thread, the callback waiting for the GIL meanwhile. After warm-up everything alive is moved to
  the permanent generation (``gc.freeze``), so later collections only walk objects made since;
  automatic collection is switched off and a collector thread runs small collections at a steady
  pace instead (each walks only the young objects: well under a block).
- **Threads holding the GIL.** A normal-priority thread that other programs preempt while it
  holds the GIL makes the callback wait for their time slice. Light threads that take the GIL
  often (the studio's control thread, MIDI input, the collector) run at SCHED_FIFO below the
  audio thread (``make_thread_realtime``); the disk reader does so itself.

A bench-only hook, ``MIXSTYLE_TIMING_DUMP=FILE.npz``: when the engine closes it writes its
callback durations there (``dump_timing``), so a benchmark can read the timing of an engine that
ran in another process (``mixstyle studio``).

``MIXSTYLE_REALTIME=0`` switches all of it off (guards and ``make_thread_realtime``), to compare.

``RealtimeGuard`` applies all of this for one engine's lifetime and undoes what it can on
``stop()``; each step that the OS refuses (no CAP_IPC_LOCK, not Linux) is reported in
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
from dataclasses import dataclass
from typing import Any

from dsp.errors import HostError

MCL_CURRENT, MCL_FUTURE, MCL_ONFAULT = 1, 2, 4
TIMING_DUMP_ENV = "MIXSTYLE_TIMING_DUMP"
REALTIME_ENV = "MIXSTYLE_REALTIME"


def enabled() -> bool:
    """False when ``MIXSTYLE_REALTIME=0`` (diagnosis: run the engine without any of this)."""
    return os.environ.get(REALTIME_ENV, "1").strip().lower() not in ("0", "off", "no", "false")


def _libc() -> Any:
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    except OSError:
        return None


def lock_memory() -> str | None:
    """Lock what the process has mapped now (``mlockall(MCL_CURRENT)``) and every later mapping
    as its pages are first touched (``mlockall(MCL_FUTURE | MCL_ONFAULT)``); None when done, else
    why not (a sentence).

    Not ``MCL_FUTURE`` alone: that makes the kernel fill every new mapping when it is made, and
    Python maps and unmaps memory all the time (1 MiB allocator arenas, thread stacks, numpy
    temporaries): each one zeroed and locked in the kernel, in whichever thread allocates, the
    audio thread included (it spent ~4% of the CPU in the kernel that way). On a kernel without
    forced preemption (``PREEMPT_NONE``) that kernel work also holds off the audio thread's
    wake-up: with the studio the JACK server's xruns were 3-10x the bare server's
    (docs/studies/realtime_stalls.md). Where ``MCL_ONFAULT`` is unknown (Linux < 4.4) the
    current mappings are locked alone."""
    libc = _libc()
    if libc is None:
        return f"mlockall is not available on {sys.platform}"
    if libc.mlockall(MCL_CURRENT) != 0:
        err = ctypes.get_errno()
        return (f"mlockall refused ({os.strerror(err)}): raise 'ulimit -l' or grant "
                f"CAP_IPC_LOCK to keep the engine's memory resident")
    libc.mlockall(MCL_FUTURE | MCL_ONFAULT)  # EINVAL on old kernels: current pages only
    return None


def unlock_memory() -> None:
    libc = _libc()
    if libc is not None:
        libc.munlockall()


def make_thread_realtime(priority: int) -> bool:
    """Put the calling thread on SCHED_FIFO at ``priority`` (1 = lowest) where permitted.

    For a Python thread of the engine process that holds the GIL now and then (disk reader,
    control thread, collector): a normal thread can be preempted by other programs while it
    holds the GIL, and the callback then waits for a whole time slice of theirs. A real-time
    thread below the audio thread runs its short GIL hold to the end. Returns whether granted.
    """
    if not enabled():
        return False
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(priority))
        return True
    except (OSError, AttributeError):
        return False


class _ProcessState:
    """What the guards changed in this process; shared by every guard, undone by the last."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.gc_users = 0
        self.mlock_users = 0
        self.gc_was_enabled = True
        self.locked = False
        self.mlock_problems: list[str] = []
        self.collector: threading.Thread | None = None
        self.stop = threading.Event()
        self.collect_every_s = 0.2
        self.collections = 0
        self.longest_collection_ms = 0.0
        self.collector_realtime = False

    def collect_loop(self) -> None:
        self.collector_realtime = make_thread_realtime(1)
        n = 0
        while not self.stop.wait(self.collect_every_s):
            n += 1
            gen = 2 if n % 100 == 0 else 1 if n % 10 == 0 else 0
            t0 = time.perf_counter()
            gc.collect(gen)
            ms = 1000.0 * (time.perf_counter() - t0)
            self.collections += 1
            self.longest_collection_ms = max(self.longest_collection_ms, ms)


_STATE = _ProcessState()


def dump_timing(timing: Any, path: str | None = None) -> str | None:
    """Write a TimingRing (host.meters) to ``path`` (default: $MIXSTYLE_TIMING_DUMP; nothing
    when neither is set) as .npz: ``ns`` the durations of the last callbacks in the order they
    ran, ``count`` callbacks in all (``ns[-1]`` is callback ``count - 1``), ``late``, ``flagged``,
    ``period_ns``. Atomic. Returns the path written or None."""
    path = path or os.environ.get(TIMING_DUMP_ENV) or None
    if path is None:
        return None
    import io

    import numpy as np

    from dsp.files import write_bytes_atomic
    n = int(timing.count[0])
    slots = timing.ns.shape[0]
    k = min(n, slots)
    ns = timing.ns[np.arange(n - k, n) % slots]
    buf = io.BytesIO()
    np.savez(buf, ns=ns, count=n, late=int(timing.late[0]), flagged=int(timing.flagged[0]),
             period_ns=timing.period_ns)
    write_bytes_atomic(path, buf.getvalue())
    return path


@dataclass
class RealtimeGuard:
    """``start()`` after the engine's warm-up (kernels compiled, buffers allocated), ``stop()``
    when the engine closes. ``gc``: freeze what is alive, switch automatic collection off and
    collect on a steady pace from a real-time collector thread (a young collection every
    ``collect_every_s``, the older generations every 10th / 100th time); ``mlock``: lock
    memory. Guards nest (several engines in one process): the first one applies the set-up,
    the last one to stop undoes it."""

    gc: bool = True
    mlock: bool = True
    collect_every_s: float = 0.2

    def __post_init__(self) -> None:
        if not 0.01 <= self.collect_every_s <= 60.0:
            raise HostError(f"collect_every_s = {self.collect_every_s} is out of range: allowed "
                            f"0.01 .. 60 s")
        self._started = False

    def start(self) -> "RealtimeGuard":
        st = _STATE
        if not enabled():
            return self
        with st.lock:
            if self._started:
                return self
            self._started = True
            if self.mlock:
                st.mlock_users += 1
                if st.mlock_users == 1:
                    why = lock_memory()
                    st.locked = why is None
                    st.mlock_problems = [] if why is None else [why]
            if self.gc:
                st.gc_users += 1
                if st.gc_users == 1:
                    st.gc_was_enabled = gc.isenabled()
                    gc.disable()
                    gc.collect()
                    gc.freeze()  # all alive now (modules, kernels, buffers): never walked again
                    st.collect_every_s = self.collect_every_s
                    st.stop.clear()
                    st.collector = threading.Thread(target=st.collect_loop, name="mixstyle-gc",
                                                    daemon=True)
                    st.collector.start()
        return self

    def stop(self) -> None:
        st = _STATE
        with st.lock:
            if not self._started:
                return
            self._started = False
            if self.gc:
                st.gc_users -= 1
                if st.gc_users == 0:
                    st.stop.set()
                    if st.collector is not None:
                        st.collector.join(timeout=5)
                        st.collector = None
                    gc.unfreeze()
                    if st.gc_was_enabled:
                        gc.enable()
            if self.mlock:
                st.mlock_users -= 1
                if st.mlock_users == 0 and st.locked:
                    unlock_memory()
                    st.locked = False

    @staticmethod
    def status() -> dict[str, Any]:
        """Process-wide: what is in force now, and the collector's work so far."""
        st = _STATE
        return {"gc_frozen": st.gc_users > 0, "gc_frozen_objects": gc.get_freeze_count(),
                "memory_locked": st.locked, "collections": st.collections,
                "longest_collection_ms": round(st.longest_collection_ms, 3),
                "collector_realtime": st.collector_realtime,
                "problems": list(st.mlock_problems)}

    def __enter__(self) -> "RealtimeGuard":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
