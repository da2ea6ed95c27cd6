"""Real-time host benchmark: the engine driven by a real JACK server (dummy driver, 48 kHz).

``run() -> list[dict]`` rows (name, ours, reference, ratio, target, unit, note).

Setup: 64 tracks streamed from disk (8 distinct 16-bit WAV files of 24 s, each opened by 8
tracks, so the reader really decodes 64 streams), every strip with all stages active (EQ bands,
filters, compressor compressing) and the master bus with its glue compressor and limiter, played
through PortAudio's JACK host API. Callback time is wall time inside ``Engine.process`` as a % of
the block period; xruns are callbacks longer than the period plus PortAudio's under/overflow
flags (PortAudio raises those for every xrun the JACK server reports, including its own timer
waking late; the note gives the server's count).

Scheduling: when the machine allows SCHED_FIFO the main rows use ``jackd -R`` (how a live host
runs: the JACK cycle and the PortAudio callback thread are real-time); one extra row repeats
64 tracks at 128 samples with ``jackd -r`` as in the tests, where on a shared machine the
neighbours' load shows. The notes record the load average.

Reference: right before each main measurement the same JACK server settings play a callback
that only writes silence (no tracks, no engine); its xruns are what the bare server and this
machine produce, so the table shows how many the engine adds. On this 2-vCPU VM the bare server
already reports xruns: "client PortAudio was not finished" while the client thread (SCHED_FIFO)
had not even been woken, and the dummy driver's own timer waking late.

Run length: 20 s per main measurement (60 s made the benchmark suite too long; set
MIXSTYLE_HOST_BENCH_SECONDS=60 for the full length) and 5 s per step of the track-count search.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from dsp.params import ConsoleSetting, TrackSetting  # noqa: E402
from host.engine import Engine, EngineConfig  # noqa: E402
from host.jack_server import JackServer, jack_missing_reason  # noqa: E402
from host.meters import TimingRing  # noqa: E402
from host.reader import TrackSource  # noqa: E402

SR = 48000
MAIN_SECONDS = float(os.environ.get("MIXSTYLE_HOST_BENCH_SECONDS", "20"))
SEARCH_SECONDS = 5.0
P99_TARGET_PCT = 30.0
FILE_SECONDS = 24.0
N_FILES = 8
STRIP = dict(input_gain_db=2.0, hpf_freq_hz=80.0, low_shelf_gain_db=3.0, peak1_gain_db=-2.0,
             peak2_gain_db=2.0, peak3_gain_db=3.0, high_shelf_gain_db=2.0, lpf_freq_hz=16000.0,
             comp_threshold_db=-30.0, comp_ratio=4.0, output_gain_db=-18.0)
MASTER = dict(low_shelf_gain_db=1.0, peak2_gain_db=-1.0, high_shelf_gain_db=1.5,
              comp_threshold_db=-20.0, comp_ratio=2.0, gain_db=0.0, limiter_ceiling_db=-1.0)


def _write_stems(folder: str) -> list[str]:
    from pedalboard.io import AudioFile
    rng = np.random.default_rng(0)
    n = int(FILE_SECONDS * SR)
    t = np.arange(n) / SR
    paths = []
    for k in range(N_FILES):
        noise = np.cumsum(rng.standard_normal((2, n)), axis=1)
        noise -= np.convolve(noise[0], np.ones(64) / 64, mode="same")[None]
        noise /= np.abs(noise).max()
        env = 0.3 + 0.7 * (np.sin(2 * np.pi * (1 + k / 3) * t) > 0)
        x = (0.3 * noise + 0.3 * np.sin(2 * np.pi * (60 + 40 * k) * t)) * env
        path = os.path.join(folder, f"stem{k}.wav")
        with AudioFile(path, "w", SR, 2, bit_depth=16) as f:
            f.write(x.astype(np.float32))
        paths.append(path)
    return paths


def _engine(paths: list[str], n_tracks: int, block: int, **config) -> Engine:
    names = [f"t{i:03d}" for i in range(n_tracks)]
    setting = ConsoleSetting(
        tracks=tuple(TrackSetting(nm, dict(STRIP, pan=((i % 9) - 4) / 4.0))
                     for i, nm in enumerate(names)), master=dict(MASTER))
    sources = [TrackSource(nm, path=paths[i % len(paths)]) for i, nm in enumerate(names)]
    return Engine(sources, setting, EngineConfig(SR, block, readahead_s=1.0, **config))


def cpu_times() -> list[int]:
    """The aggregate ``cpu`` line of /proc/stat (user nice system idle iowait irq softirq steal
    ...), in ticks; empty where there is no /proc."""
    try:
        with open("/proc/stat") as f:
            return [int(v) for v in f.readline().split()[1:]]
    except (OSError, ValueError):
        return []


def steal_pct(before: list[int], after: list[int]) -> float:
    """CPU time the hypervisor took from this VM between two ``cpu_times`` (% of all CPU time;
    a vCPU that is not running cannot run our real-time threads either)."""
    if len(before) < 8 or len(after) < 8:
        return float("nan")
    total = sum(after[:8]) - sum(before[:8])
    return 100.0 * (after[7] - before[7]) / total if total > 0 else float("nan")


def _window(srv, timing, seconds: float, counters: dict) -> tuple:
    """Settle 0.5 s, then measure ``seconds`` from zero: the callback timing stats, the server's
    own xruns, the CPU steal (%) and how far each counter (name -> callable) moved."""
    time.sleep(0.5)
    timing.reset()
    server0 = srv.log().count("XRun")
    start = {k: f() for k, f in counters.items()}
    cpu0 = cpu_times()
    time.sleep(seconds)
    steal = steal_pct(cpu0, cpu_times())
    st = timing.stats()
    server = srv.log().count("XRun") - server0
    return st, server, steal, {k: f() - start[k] for k, f in counters.items()}


def measure(paths: list[str], n_tracks: int, block: int, seconds: float,
            realtime: bool = False) -> dict:
    """Play n_tracks for ``seconds`` through a fresh JACK server with period = block."""
    from host.io import AudioOutput, refresh_portaudio, release_portaudio
    with JackServer(sample_rate_hz=SR, period_frames=block, realtime=realtime) as srv:
        refresh_portaudio()
        try:
            eng = _engine(paths, n_tracks, block)
            with eng, AudioOutput(eng) as out:
                eng.wait_ready()
                eng.play()
                st, server, steal, moved = _window(
                    srv, eng.timing, seconds,
                    {"blocks": lambda: eng.blocks, "late": lambda: eng.late_reads})
                blocks, late = moved["blocks"], moved["late"]
                gr = float(np.max(eng.meter_snapshot().track_gr_db))
                errors = out.callback_errors
        finally:
            release_portaudio()
    refresh_portaudio()
    return dict(p50=st.pct(st.p50_ms), p99=st.pct(st.p99_ms), max=st.pct(st.max_ms),
                xruns=st.xruns, late_callbacks=st.late_callbacks, flagged=st.flagged_xruns,
                blocks=blocks, expected=seconds * SR / block, late_reads=late, gr_db=gr,
                errors=errors, server_xruns=server, steal=steal)


class Silence:
    """The trivial callback of the reference measurement: what AudioOutput needs of an engine
    (block, sample_rate, timing, process), writing zeros."""

    def __init__(self, block: int) -> None:
        self.block = block
        self.sample_rate = float(SR)
        self.timing = TimingRing(block / SR, slots=1 << 17)
        self.blocks = 0
        self.starts = np.zeros(1 << 17, dtype=np.int64)  # entry times: the machine's stalls

    def process(self, out: np.ndarray) -> None:
        t0 = time.perf_counter_ns()
        out.fill(0.0)
        self.starts[self.blocks % self.starts.shape[0]] = t0
        self.blocks += 1
        self.timing.record(time.perf_counter_ns() - t0)

    def stalls(self, first: int, last: int) -> int:
        """Callbacks first..last-1 that started more than two periods after the one before: the
        real-time thread did not run for over a period, as it happens to a callback of ours that
        is then late (the machine's own stalls: the hypervisor, the JACK server)."""
        n = self.starts.shape[0]
        idx = np.arange(max(first, last - n + 1), last) % n
        gaps = np.diff(self.starts[idx])
        return int(np.count_nonzero(gaps > 2 * self.timing.period_ns))


def measure_reference(block: int, seconds: float, realtime: bool = False) -> dict:
    """The bare server: same settings as ``measure``, a callback that writes silence."""
    from host.io import AudioOutput, refresh_portaudio, release_portaudio
    with JackServer(sample_rate_hz=SR, period_frames=block, realtime=realtime) as srv:
        refresh_portaudio()
        try:
            silence = Silence(block)
            with AudioOutput(silence):
                st, server, steal, moved = _window(srv, silence.timing, seconds,
                                                   {"blocks": lambda: silence.blocks})
                blocks = moved["blocks"]
                end = silence.blocks
                stalls = silence.stalls(end - blocks, end)
        finally:
            release_portaudio()
    refresh_portaudio()
    return dict(xruns=st.xruns, late_callbacks=st.late_callbacks, flagged=st.flagged_xruns,
                blocks=blocks, server_xruns=server, steal=steal, stalls=stalls)


def _ok(m: dict) -> bool:
    """Within budget: p99 <= 30% of the period and no callback longer than the period."""
    return m["p99"] <= P99_TARGET_PCT and m["late_callbacks"] == 0


COUNTS = (8, 16, 32, 48, 64, 96, 128, 192, 256)


def largest_track_count(paths: list[str], block: int, ok64: bool,
                        realtime: bool) -> tuple[int, list[str]]:
    """Walk COUNTS up from 64 (when 64 was within budget) or down from 48 until it flips."""
    tried: list[str] = []
    at = COUNTS.index(64)
    best = 64 if ok64 else 0
    for n in (COUNTS[at + 1:] if ok64 else COUNTS[at - 1::-1]):
        m = measure(paths, n, block, SEARCH_SECONDS, realtime)
        tried.append(f"{n}: p99 {m['p99']:.0f}% late {m['late_callbacks']}")
        if ok64 and not _ok(m):
            break
        if ok64 or _ok(m):
            best = n
            if not ok64:
                break
    return best, tried


def realtime_allowed() -> bool:
    """Can this process family use SCHED_FIFO (jackd -R)?"""
    try:
        return subprocess.run(["chrt", "-f", "10", "true"], capture_output=True,
                              timeout=5).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def _note(m: dict, mode: str) -> str:
    return (f"{mode}; {m['blocks']} callbacks of {m['expected']:.0f} expected; xruns = "
            f"{m['late_callbacks']} late callbacks + {m['flagged']} PortAudio flags (the JACK "
            f"server logged {m['server_xruns']} xruns of its own dummy-driver timer in that "
            f"time); late disk reads {m['late_reads']}; max track GR {m['gr_db']:.1f} dB; "
            f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores, "
            f"{m['steal']:.1f}% of CPU time stolen by the hypervisor")


def _rows_for(paths: list[str], block: int, realtime: bool, mode: str,
              search: bool = True) -> list[dict]:
    period_ms = 1000.0 * block / SR
    ref = measure_reference(block, MAIN_SECONDS, realtime)
    m = measure(paths, 64, block, MAIN_SECONDS, realtime)
    base = (f"64 tracks, {block}-sample blocks ({period_ms:.2f} ms), {MAIN_SECONDS:.0f} s via "
            f"JACK dummy{'' if realtime else ', no real-time scheduling (jackd -r)'}")
    note = _note(m, mode)
    rows = [
        dict(name=f"host callback p50, {base}", ours=round(m["p50"], 1), reference=None,
             ratio=None, target=None, unit="% of block period", note=note),
        dict(name=f"host callback p99, {base}", ours=round(m["p99"], 1), reference=None,
             ratio=None, target=P99_TARGET_PCT, unit="% of block period (<= target)",
             note=note),
        dict(name=f"host callback max, {base}", ours=round(m["max"], 1), reference=None,
             ratio=None, target=None, unit="% of block period", note=note),
        dict(name=f"host xruns, {base}", ours=m["xruns"], reference=ref["xruns"], ratio=None,
             target=0, unit="count (<= target; reference = bare server)",
             note=f"the engine adds {m['xruns'] - ref['xruns']:+d} xruns over the bare server "
                  f"measured just before (next row); " + note),
        dict(name=f"host xruns of the bare server (callback writes silence), {base}",
             ours=ref["xruns"], reference=None, ratio=None, target=None, unit="count",
             note=f"{mode}; {ref['blocks']} callbacks; {ref['late_callbacks']} late callbacks + "
                  f"{ref['flagged']} PortAudio flags (the JACK server logged "
                  f"{ref['server_xruns']} xruns); same server settings, no engine; "
                  f"{ref['steal']:.1f}% of CPU time stolen by the hypervisor"),
    ]
    if search:
        best, tried = largest_track_count(paths, block, _ok(m), realtime)
        rows.append(dict(
            name=f"host largest track count within budget, {block}-sample blocks",
            ours=best, reference=None, ratio=None, target=64, unit="tracks (>= target)",
            note=f"{mode}; budget: p99 <= {P99_TARGET_PCT:.0f}% and no callback over the "
                 f"period during {SEARCH_SECONDS:.0f} s; 64: p99 {m['p99']:.0f}% late "
                 f"{m['late_callbacks']}; tried " + "; ".join(tried)))
    return rows


def run() -> list[dict]:
    reason = jack_missing_reason()
    if reason is not None:
        return [dict(name="host real-time benchmark", ours=None, reference=None, ratio=None,
                     target=None, unit="", note=f"skipped: {reason}")]
    rt = realtime_allowed()
    mode = ("jackd -R: SCHED_FIFO for the JACK cycle and the PortAudio callback thread, as a "
            "live host runs" if rt else "real-time scheduling not permitted here: jackd -r")
    with tempfile.TemporaryDirectory(prefix="mixstyle-hostbench-") as folder:
        paths = _write_stems(folder)
        rows = _rows_for(paths, 128, rt, mode) + _rows_for(paths, 32, rt, mode)
        if rt:  # the brief's server command, for comparison: the neighbours' load shows here
            rows += _rows_for(paths, 128, False, "jackd -r (as in the tests)", search=False)
    return rows


if __name__ == "__main__":
    for row in run():
        print(row)
