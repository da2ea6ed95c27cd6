"""Diagnostics for the host's late callbacks: what was going on when a callback was late?

Not part of ``make bench`` (it perturbs what it measures a little); used for
docs/studies/realtime_stalls.md. One run: the bare server (a callback writing silence), then the
64-track engine of bench/host_bench.py on a fresh JACK dummy server, with every callback's entry
time, its duration inside ``Engine.process``, the gap since the previous callback and the callback
thread's page faults, plus every garbage collection (gc.callbacks: generation, thread, start,
stop). Late callbacks are matched against collections and faults that overlap them.

    PYTHONPATH=$PWD python bench/rt_probe.py --seconds 20 [--realtime-setup] [--edits 20]
"""

from __future__ import annotations

import argparse
import gc
import os
import resource
import sys
import tempfile
import threading
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)

import host_bench as hb  # noqa: E402
from host.io import AudioOutput, refresh_portaudio, release_portaudio  # noqa: E402
from host.jack_server import JackServer  # noqa: E402

N = 1 << 16


class GcLog:
    """Start/stop times (perf_counter_ns), generation and thread of every collection."""

    def __init__(self) -> None:
        self.events: list[tuple[int, int, int, int, int]] = []  # gen, thread, t0, t1, collected
        self._t0 = 0
        self._gen = 0

    def __call__(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._t0 = time.perf_counter_ns()
            self._gen = info["generation"]
        else:
            self.events.append((self._gen, threading.get_ident(), self._t0,
                                time.perf_counter_ns(), info["collected"]))


class ProbedOutput(AudioOutput):
    """AudioOutput recording per callback: entry time, duration, thread page faults."""

    def __init__(self, engine, faults: bool = True) -> None:
        super().__init__(engine)
        self.entry = np.zeros(N, dtype=np.int64)
        self.dur = np.zeros(N, dtype=np.int64)
        self.minflt = np.zeros(N, dtype=np.int64)
        self.majflt = np.zeros(N, dtype=np.int64)
        self.k = 0
        self.faults = faults
        self.thread = 0
        self.on = False

    def _callback(self, outdata, frames, _time, status) -> None:
        t0 = time.perf_counter_ns()
        if self.faults:
            ru0 = resource.getrusage(resource.RUSAGE_THREAD)
        super()._callback(outdata, frames, _time, status)
        t1 = time.perf_counter_ns()
        if not self.on:
            return
        k = self.k
        if k < N:
            self.thread = threading.get_ident()
            self.entry[k] = t0
            self.dur[k] = t1 - t0
            if self.faults:
                ru1 = resource.getrusage(resource.RUSAGE_THREAD)
                self.minflt[k] = ru1.ru_minflt - ru0.ru_minflt
                self.majflt[k] = ru1.ru_majflt - ru0.ru_majflt
            self.k = k + 1


class Phases:
    """Timestamps inside Engine.process (wrapping its parts on the instance) and the disk
    reader's batches, to tell compute that ran long from waits between the parts."""

    PARTS = ("_apply_queues", "_take_inputs")

    def __init__(self, eng) -> None:
        self.t = np.zeros((N, 8), dtype=np.int64)
        self.k = 0
        self.reads: list[tuple[int, int]] = []
        self.on = False
        console, loud, levels, proc = (eng.console.process_into, eng.loudness.process_into,
                                       eng.master_levels.update, eng.process)
        aq, ti = eng._apply_queues, eng._take_inputs
        ph = self

        def mark(j):
            if ph.on and ph.k < N:
                ph.t[ph.k, j] = time.perf_counter_ns()

        def process(out):
            mark(0)
            proc(out)
            mark(7)
            if ph.on:
                ph.k += 1

        def w(fn, j):
            def inner(*a):
                r = fn(*a)
                mark(j)
                return r
            return inner
        eng._apply_queues = w(aq, 1)
        eng._take_inputs = w(ti, 2)
        eng.console.process_into = w(console, 3)
        eng.loudness.process_into = w(loud, 4)
        eng.master_levels.update = w(levels, 5)
        eng.process = process
        fill = eng.reader.fill_once

        def fill_once():
            t0 = time.perf_counter_ns()
            r = fill()
            if r and ph.on:
                ph.reads.append((t0, time.perf_counter_ns()))
            return r
        eng.reader.fill_once = fill_once


def editor(eng, stop: threading.Event, per_s: float) -> None:
    """Stream fader edits through Control from another thread, as a control thread does."""
    names = eng.track_names
    i = 0
    while not stop.is_set():
        eng.control.set_override(names[i % len(names)], "output_gain_db",
                                 -18.0 + 3.0 * ((i % 7) / 7.0))
        i += 1
        time.sleep(1.0 / per_s)


def analyse(out: ProbedOutput, gclog: GcLog, period_ns: int, label: str) -> dict:
    k = out.k
    entry, dur = out.entry[:k], out.dur[:k]
    gaps = np.diff(entry)
    late = np.flatnonzero(dur > period_ns)
    # a callback entered > 1.5 periods after the previous one: stalled before Python ran it
    stalled = np.flatnonzero(gaps > 1.5 * period_ns) + 1
    ev = [e for e in gclog.events if e[2] >= entry[0]] if k else []
    by_gen = {g: [e for e in ev if e[0] == g] for g in (0, 1, 2)}

    def overlapping(i: int, pre: int = 0) -> list:
        a, b = entry[i] - pre, entry[i] + dur[i]
        return [e for e in ev if e[2] < b and e[3] > a]

    late_gc = [i for i in late if overlapping(i)]
    stalled_gc = [i for i in stalled if overlapping(i, pre=int(gaps[i - 1]))]
    late_flt = [i for i in late if out.minflt[i] + out.majflt[i] > 0]
    res = dict(label=label, callbacks=k, p50=100 * np.percentile(dur, 50) / period_ns,
               p99=100 * np.percentile(dur, 99) / period_ns, max=100 * dur.max() / period_ns,
               late=len(late), late_with_gc=len(late_gc), late_with_faults=len(late_flt),
               stalled_entries=len(stalled), stalled_with_gc=len(stalled_gc),
               max_gap=100 * gaps.max() / period_ns if len(gaps) else 0.0,
               faults_total=int(out.minflt[:k].sum() + out.majflt[:k].sum()),
               callbacks_with_faults=int(np.count_nonzero(out.minflt[:k] + out.majflt[:k])),
               gc={g: (len(v), max(((e[3] - e[2]) / 1e6 for e in v), default=0.0),
                       sum(1 for e in v if e[1] == out.thread)) for g, v in by_gen.items()})
    res["late_detail"] = [
        (round(100 * dur[i] / period_ns), int(out.minflt[i]), int(out.majflt[i]),
         [(e[0], round((e[3] - e[2]) / 1e6, 2), "cb" if e[1] == out.thread else "other")
          for e in overlapping(i)]) for i in late[:12]]
    res["stall_detail"] = [
        (round(100 * gaps[i - 1] / period_ns), round(100 * dur[i] / period_ns),
         [(e[0], round((e[3] - e[2]) / 1e6, 2), "cb" if e[1] == out.thread else "other")
          for e in overlapping(i, pre=int(gaps[i - 1]))]) for i in stalled[:12]]
    return res


def phase_detail(ph: Phases, period_ns: int) -> list:
    """For each late process(): microseconds in queues, inputs, console, loudness, levels, the
    rest; and whether a disk-reader batch ran at the same time."""
    t = ph.t[:ph.k]
    rows = []
    for i in np.flatnonzero(t[:, 7] - t[:, 0] > period_ns)[:12]:
        parts = [int((t[i, j] - t[i, j - 1]) / 1000) for j in (1, 2, 3, 4, 5)]
        parts.append(int((t[i, 7] - t[i, 5]) / 1000))
        reader = any(a < t[i, 7] and b > t[i, 0] for a, b in ph.reads)
        rows.append((parts, "reader" if reader else "-"))
    return rows


def probe_reference(block: int, seconds: float, realtime: bool) -> dict:
    """The bare server with the same per-callback probe (entry gaps, faults)."""
    gclog = GcLog()
    period_ns = int(round(block / hb.SR * 1e9))
    with JackServer(sample_rate_hz=hb.SR, period_frames=block, realtime=realtime) as srv:
        refresh_portaudio()
        try:
            silence = hb.Silence(block)
            out = ProbedOutput(silence)
            with out:
                time.sleep(0.5)
                server0 = srv.log().count("XRun")
                silence.timing.reset()
                out.on = True
                time.sleep(seconds)
                out.on = False
                server = srv.log().count("XRun") - server0
                st = silence.timing.stats()
        finally:
            release_portaudio()
    refresh_portaudio()
    res = analyse(out, gclog, period_ns, "bare server")
    res.update(xruns=st.xruns, flagged=st.flagged_xruns, server_xruns=server)
    return res


def run_once(paths, n_tracks: int, block: int, seconds: float, realtime: bool,
             setup: str, edits: float, faults: bool) -> tuple[dict, dict]:
    ref = probe_reference(block, seconds, realtime)
    gclog = GcLog()
    period_ns = int(round(block / hb.SR * 1e9))
    with JackServer(sample_rate_hz=hb.SR, period_frames=block, realtime=realtime) as srv:
        refresh_portaudio()
        try:
            eng = hb._engine(paths, n_tracks, block, realtime_guard=setup == "all")
            phases = Phases(eng)
            guard = None
            if setup == "malloc":  # glibc: never trim the heap, no mmap for big blocks
                import ctypes
                libc = ctypes.CDLL("libc.so.6")
                libc.mallopt(-1, 0x7FFFFFFF)   # M_TRIM_THRESHOLD
                libc.mallopt(-3, 32 << 20)     # M_MMAP_THRESHOLD (its maximum)
            if setup in ("gc", "mlock"):
                from host.realtime import RealtimeGuard
                guard = RealtimeGuard(**_setup_args(setup))
            with eng:
                if guard is not None:
                    guard.start()
                out = ProbedOutput(eng, faults=faults)
                gc.callbacks.append(gclog)
                stop = threading.Event()
                th = None
                try:
                    with out:
                        eng.wait_ready()
                        eng.play()
                        time.sleep(0.5)
                        if edits > 0:
                            th = threading.Thread(target=editor, args=(eng, stop, edits),
                                                  daemon=True)
                            th.start()
                        server0 = srv.log().count("XRun")
                        eng.timing.reset()
                        cpu0 = hb.cpu_times()
                        out.on = phases.on = True
                        time.sleep(seconds)
                        out.on = phases.on = False
                        steal = hb.steal_pct(cpu0, hb.cpu_times())
                        server = srv.log().count("XRun") - server0
                        st = eng.timing.stats()
                        stop.set()
                        if th is not None:
                            th.join()
                finally:
                    gc.callbacks.remove(gclog)
                    if guard is not None:
                        guard.stop()
        finally:
            release_portaudio()
    refresh_portaudio()
    res = analyse(out, gclog, period_ns, f"{n_tracks} tracks setup={setup} edits={edits}")
    res["late_phases_us"] = phase_detail(phases, period_ns)
    reads = np.array(phases.reads, dtype=np.int64).reshape(-1, 2)
    if len(reads):
        d = (reads[:, 1] - reads[:, 0]) / 1e6
        res["reader_batches"] = (len(d), round(float(np.median(d)), 2), round(float(d.max()), 2))
        entry, gaps = out.entry[:out.k], np.diff(out.entry[:out.k])
        stalled = np.flatnonzero(gaps > 1.5 * period_ns) + 1
        res["stalled_during_reader_batch"] = sum(
            1 for i in stalled if np.any((reads[:, 0] < entry[i]) & (reads[:, 1] > entry[i - 1])))
        busy = float(np.sum(reads[:, 1] - reads[:, 0])) / max(1, entry[-1] - entry[0])
        res["reader_busy_fraction"] = round(busy, 3)
    res.update(xruns=st.xruns, flagged=st.flagged_xruns, server_xruns=server, steal=steal)
    return ref, res


def _setup_args(setup: str) -> dict:
    return {"gc": dict(gc=True, mlock=False), "mlock": dict(gc=False, mlock=True)}[setup]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--tracks", type=int, default=64)
    ap.add_argument("--block", type=int, default=128)
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--setup", default="none", choices=("none", "gc", "mlock", "malloc", "all"),
                    help="none: EngineConfig(realtime_guard=False), as before; all: the engine's "
                         "own guard (the default now); gc / mlock: one half of it; malloc: only "
                         "glibc told to keep freed memory")
    ap.add_argument("--edits", type=float, default=0.0)
    ap.add_argument("--no-faults", action="store_true")
    ap.add_argument("--nonrt", action="store_true", help="jackd -r instead of -R")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="mixstyle-rtprobe-") as folder:
        paths = hb._write_stems(folder)
        for _ in range(a.runs):
            up = open("/proc/loadavg").read().split()[:3]
            ref, res = run_once(paths, a.tracks, a.block, a.seconds, not a.nonrt, a.setup,
                                a.edits, not a.no_faults)
            print(f"load {' '.join(up)}")
            for key in ("xruns", "flagged", "server_xruns", "stalled_entries", "max_gap",
                        "stall_detail", "faults_total"):
                print(f"  bare {key}: {ref[key]}")
            for key, v in res.items():
                print(f"  {key}: {v}")
            sys.stdout.flush()


if __name__ == "__main__":
    main()
