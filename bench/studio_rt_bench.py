"""Real time with the studio open: 64 tracks, 128-sample blocks, edits streaming at 20 a second.

``run() -> list[dict]`` rows (name, ours, reference, ratio, target, unit, note), as the other
benchmarks. Two measurements, each right after the bare server's (a callback that only writes
silence on a fresh JACK dummy server with the same settings, for the same time):

- **engine only**: the engine of bench/host_bench.py (64 tracks from disk, every stage active)
  with, in the same process, the load the studio's control thread puts there: 20 fader edits a
  second through ``Control`` and a meter snapshot every 50 ms turned into lists and pickled as
  it is for the web process, from a thread at SCHED_FIFO 1 as the studio's control thread. No
  web server, no browser.
- **studio**: ``mixstyle studio SONG --session S --no-browser`` as a user starts it (its own
  engine process and web process) at 64 tracks on the JACK dummy server, every stage active (the
  session), the page open and playing in headless Chromium (Playwright, Debian's
  /usr/bin/chromium), and 20 ``set`` messages a second for the track faders sent over the
  studio's WebSocket (token and Origin as the page's; every page gets the values back) for the
  whole window. The page's own fader controls cannot be the source: with 64 strips its main
  thread runs only a few frames a second on this machine (the row's note measures it). The
  callback durations come from the engine process itself: ``MIXSTYLE_TIMING_DUMP`` makes its
  engine write its TimingRing when it closes (host.realtime.dump_timing); the window is cut with
  the ``callbacks`` counter of the meters (else the whole run counts, page start included).

Rows: callback p99 (% of the period; goal <= 30%), late callbacks (> one period) against the
bare server's stalls (its silent callback takes microseconds, so it is almost never late itself;
but when the machine stops its real-time thread for over a period, a callback of ours in its
place would have been late: those stalls are the reference), xruns (late callbacks + the
audio API's under/overflow flags) against the bare server's. The machine is shared: the
notes give the load average and the CPU steal.

Window: 60 s (MIXSTYLE_STUDIO_BENCH_SECONDS to change it).
"""

from __future__ import annotations

import contextlib
import os
import pickle
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any, Iterator

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)
sys.path.insert(0, HERE)

import host_bench as hb  # noqa: E402
from host.jack_server import JackServer, jack_missing_reason  # noqa: E402

SECONDS = float(os.environ.get("MIXSTYLE_STUDIO_BENCH_SECONDS", "60"))
N_TRACKS = 64
BLOCK = 128
EDITS_PER_S = 20.0
P99_TARGET_PCT = 30.0
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
START_TIMEOUT_S = 180.0


# --- engine only ------------------------------------------------------------------------------

def control_thread(eng: Any, stop: threading.Event, per_s: float, counts: dict,
                   realtime_priority: int | None = None) -> None:
    """What the studio's control thread does in the engine process: apply edits (Control), and
    every 50 ms a meter snapshot as plain lists, pickled as for the web process."""
    if realtime_priority is not None:
        from host.realtime import make_thread_realtime
        make_thread_realtime(realtime_priority)
    names = eng.track_names
    i = 0
    next_edit = next_meter = time.monotonic()
    while not stop.is_set():
        now = time.monotonic()
        if now >= next_edit:
            eng.control.set_override(names[i % len(names)], "output_gain_db",
                                     -18.0 + 0.5 * (i // len(names) % 2))
            i += 1
            next_edit += 1.0 / per_s
        if now >= next_meter:
            m = eng.meter_snapshot()
            msg = {"type": "meters", "position_s": eng.position_s, "playing": eng.playing,
                   "peak_db": m.track_peak_db.tolist(), "rms_db": m.track_rms_db.tolist(),
                   "gr_db": m.track_gr_db.tolist(),
                   "master": {"peak_db": m.master_peak_db, "rms_db": m.master_rms_db,
                              "momentary_lufs": m.master_momentary_lufs},
                   "xruns": int(eng.timing.late[0] + eng.timing.flagged[0])}
            counts["bytes"] += len(pickle.dumps(msg))
            counts["meters"] += 1
            next_meter += 0.05
        stop.wait(max(0.0, min(next_edit, next_meter) - time.monotonic()))
    counts["edits"] = i


def measure_engine_only(paths: list[str], seconds: float, realtime: bool,
                        control_rt: int | None = None, guard: bool = True) -> dict:
    from host.io import AudioOutput, refresh_portaudio, release_portaudio
    with JackServer(sample_rate_hz=hb.SR, period_frames=BLOCK, realtime=realtime) as srv:
        refresh_portaudio()
        try:
            eng = hb._engine(paths, N_TRACKS, BLOCK, realtime_guard=guard)
            with eng, AudioOutput(eng):
                eng.wait_ready()
                eng.play()
                counts = {"edits": 0, "meters": 0, "bytes": 0}
                stop = threading.Event()
                th = threading.Thread(target=control_thread,
                                      args=(eng, stop, EDITS_PER_S, counts, control_rt),
                                      name="bench-control", daemon=True)
                th.start()
                try:
                    st, server, steal, moved = hb._window(
                        srv, eng.timing, seconds, {"blocks": lambda: eng.blocks})
                finally:
                    stop.set()
                    th.join()
        finally:
            release_portaudio()
    refresh_portaudio()
    return dict(p99=st.pct(st.p99_ms), max=st.pct(st.max_ms), late=st.late_callbacks,
                xruns=st.xruns, flagged=st.flagged_xruns, server_xruns=server, steal=steal,
                blocks=moved["blocks"], edits=counts["edits"], meters=counts["meters"])


# --- the studio -------------------------------------------------------------------------------

def studio_available() -> str | None:
    """None when ``mixstyle studio`` and Playwright + Chromium are here, else why not."""
    try:
        import host.studio.run as run
    except ImportError as e:
        return f"mixstyle studio is not in this checkout ({e})"
    if not hasattr(run, "run_studio"):
        return "mixstyle studio is not in this checkout (host.studio.run.run_studio)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (pip install playwright)"
    if not os.path.exists(CHROMIUM):
        return f"{CHROMIUM} is missing (Debian package chromium)"
    return None


def make_song(folder: str, paths: list[str]) -> tuple[str, str | None]:
    """A song folder with stems/ of N_TRACKS files (links to the benchmark's stems, so the
    reader decodes 64 streams) and a host session with every stage active (host_bench.STRIP);
    returns (song folder, session path or None when sessions cannot be written here)."""
    song = os.path.join(folder, "song")
    stems = os.path.join(song, "stems")
    os.makedirs(stems)
    lines = []
    for i in range(N_TRACKS):
        name = f"t{i:03d}"
        os.symlink(paths[i % len(paths)], os.path.join(stems, name + ".wav"))
        lines.append(f'{name} = "other"')
    with open(os.path.join(stems, "roles.toml"), "w") as f:
        f.write("\n".join(lines) + "\n")
    try:
        from host.session import capture, save_session
        eng = hb._engine([os.path.join(stems, f"t{i:03d}.wav") for i in range(N_TRACKS)],
                         N_TRACKS, BLOCK, realtime_guard=False)
        path = os.path.join(folder, "session.json")
        save_session(path, capture(eng))
        eng.close()
        return song, path
    except Exception as e:  # noqa: BLE001 - the studio also runs without a session
        print(f"studio bench: no session ({type(e).__name__}: {e}); neutral console",
              file=sys.stderr)
        return song, None





def _drain(proc: subprocess.Popen, lines: list[str], found: threading.Event) -> None:
    assert proc.stdout is not None
    for line in proc.stdout:
        lines.append(line.rstrip())
        if "http://127.0.0.1:" in line:
            found.set()


@contextlib.contextmanager
def studio_page(song: str, session: str | None, dump: str,
                offline: bool = False) -> Iterator[tuple[Any, str]]:
    """``mixstyle studio`` started as a user starts it (on the JACK server this process points
    at), its page open in headless Chromium and playing: yields (page, url). Leaving sends the
    studio Ctrl-C (it closes its engine, which writes the timing dump) and waits for it."""
    from playwright.sync_api import sync_playwright
    env = dict(os.environ, MIXSTYLE_TIMING_DUMP=dump, PYTHONUNBUFFERED="1",
               PYTHONPATH=os.pathsep.join([ROOT] + [p for p in os.environ.get(
                   "PYTHONPATH", "").split(os.pathsep) if p]))
    cmd = [sys.executable, "-m", "mixstyle.cli", "studio", song, "--no-browser",
           "--block", str(BLOCK)] + (["--session", session] if session else []) + \
        (["--offline"] if offline else [])
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, text=True, env=env)
    lines: list[str] = []
    found = threading.Event()
    threading.Thread(target=_drain, args=(proc, lines, found), daemon=True).start()
    try:
        if not found.wait(START_TIMEOUT_S):
            raise RuntimeError(f"mixstyle studio printed no URL in {START_TIMEOUT_S:.0f} s: "
                               + " | ".join(lines[-8:]))
        hit = re.search(r"http://127\.0\.0\.1:\d+/\?token=\S+",
                        next(x for x in lines if "http://127.0.0.1:" in x))
        assert hit is not None
        url = hit.group(0)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                page = browser.new_page(viewport={"width": 1600, "height": 1000})
                page.goto(url)
                page.wait_for_selector('.fader[data-target^="track:"]', timeout=120_000)
                page.wait_for_function("() => window.studio && window.studio.state.meters",
                                       timeout=60_000)
                _play(page)
                yield page, url
            finally:
                browser.close()
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


PAGE_RATE_JS = """
(seconds) => new Promise((resolve) => {
  // the page's own frames (window.studio.state.frames): no requestAnimationFrame loop of ours,
  // which would make the browser draw 60 frames a second the page does not ask for
  let ticks = 0, lag = 0;
  const f0 = window.studio.state.frames;
  const t0 = performance.now();
  let last = t0;
  const id = setInterval(() => {
    const now = performance.now(); lag = Math.max(lag, now - last - 50); last = now; ticks++;
    if (now - t0 >= seconds * 1000) {
      clearInterval(id);
      resolve([(window.studio.state.frames - f0) / seconds, ticks / seconds, lag]);
    }
  }, 50);
})
"""


class WsEditor:
    """A second client of the studio's WebSocket (token and Origin as the page's): streams
    ``set`` messages for track faders at ``per_s`` and keeps the latest meters. The page's own
    controls can only send as fast as its main thread runs (see the note of the row)."""

    def __init__(self, url: str) -> None:
        from urllib.parse import parse_qs, urlparse
        from websockets.sync.client import connect
        u = urlparse(url)
        token = parse_qs(u.query)["token"][0]
        self.ws = connect(f"ws://127.0.0.1:{u.port}/ws?token={token}",
                          origin=f"http://127.0.0.1:{u.port}", max_size=None)  # type: ignore
        self.meters: dict | None = None
        self.values = 0
        self.errors: list[str] = []
        hello = self._recv_type("hello")
        self.tracks = [t["name"] for t in hello["tracks"]]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _recv_type(self, kind: str) -> dict:
        import json
        while True:
            msg = json.loads(self.ws.recv(timeout=60))
            if msg.get("type") == kind:
                return msg

    def _read(self) -> None:
        import json
        while not self._stop.is_set():
            try:
                msg = json.loads(self.ws.recv(timeout=0.5))
            except TimeoutError:
                continue
            except Exception:  # noqa: BLE001 - closed
                return
            kind = msg.get("type")
            if kind == "meters":
                self.meters = msg
            elif kind == "values":
                self.values += 1
            elif kind == "message" and msg.get("level") == "error":
                self.errors.append(msg.get("text", ""))

    def stream(self, seconds: float, per_s: float) -> int:
        import json
        n = 0
        t0 = time.monotonic()
        while time.monotonic() - t0 < seconds:
            name = self.tracks[n % len(self.tracks)]
            value = -18.0 + 0.5 * (n // len(self.tracks) % 2)
            self.ws.send(json.dumps({"type": "set", "target": f"track:{name}:output_gain_db",
                                     "value": value}))
            n += 1
            time.sleep(max(0.0, t0 + n / per_s - time.monotonic()))
        return n

    def close(self) -> None:
        self._stop.set()
        self.ws.close()
        self._thread.join(timeout=5)


def _counters(m: dict | None) -> dict:
    m = m or {}
    return {k: m.get(k) for k in ("xruns", "callbacks", "late_callbacks", "playing")}


def measure_studio(song: str, session: str | None, seconds: float, realtime: bool) -> dict:
    with JackServer(sample_rate_hz=hb.SR, period_frames=BLOCK, realtime=realtime) as srv, \
            tempfile.TemporaryDirectory(prefix="mixstyle-studiobench-") as tmp:
        dump = os.path.join(tmp, "timing.npz")
        with studio_page(song, session, dump) as (page, url):
            ed = WsEditor(url)
            try:
                time.sleep(1.0)
                m0 = _counters(ed.meters)
                log0 = srv.log()
                server0 = log0.count("XRun")
                cpu0 = hb.cpu_times()
                got: dict = {}
                th = threading.Thread(target=lambda: got.update(
                    sent=ed.stream(seconds, EDITS_PER_S)), daemon=True)
                t_start = time.monotonic()
                when: list[float] = []   # seconds into the window of each xrun JACK logged
                watching = threading.Event()

                def watch() -> None:
                    seen = server0
                    while not watching.wait(0.1):
                        now = srv.log().count("XRun")
                        when.extend([round(time.monotonic() - t_start, 1)] * (now - seen))
                        seen = now
                watcher = threading.Thread(target=watch, daemon=True)
                watcher.start()
                th.start()
                fps, ticks, lag_ms = page.evaluate(PAGE_RATE_JS, seconds)  # the page meanwhile
                th.join()
                watching.set()
                watcher.join()
                m1 = _counters(ed.meters)
                steal = hb.steal_pct(cpu0, hb.cpu_times())
                log1 = srv.log()
                server = log1.count("XRun") - server0
                # what JACK said about each xrun of the window (which client it waited for)
                said = [ln.strip() for ln in log1[len(log0):].splitlines()
                        if "xrun" in ln.lower() or "not finished" in ln]
                if when:
                    said.insert(0, "at " + ", ".join(f"{t:.1f}" for t in when[:8])
                                + " s into the window")
                sent, values, errors = got.get("sent", 0), ed.values, ed.errors
            finally:
                ed.close()
        if not os.path.exists(dump):
            raise RuntimeError("the studio's engine wrote no timing (MIXSTYLE_TIMING_DUMP)")
        d = np.load(dump)
        ns, count, period_ns = d["ns"], int(d["count"]), int(d["period_ns"])
    window = "the 60 s window"
    if m0["callbacks"] is not None and m1["callbacks"] is not None:
        a, b = int(m0["callbacks"]), int(m1["callbacks"])
        first = count - len(ns)
        w = ns[max(0, a - first):max(0, b - first)]
        window = f"callbacks {a}..{b} (the edit window, cut by the meters' counter)"
    else:
        w = ns
        window = f"the whole run ({count} callbacks: page start, edits, quit)"
    late = int(np.count_nonzero(w > period_ns))
    if m0["xruns"] is not None and m1["xruns"] is not None:
        xruns = int(m1["xruns"]) - int(m0["xruns"])
    else:
        xruns = int(d["late"]) + int(d["flagged"])
    return dict(p99=100.0 * float(np.percentile(w, 99)) / period_ns,
                max=100.0 * float(w.max()) / period_ns, late=late, xruns=xruns,
                server_xruns=server, jack_said=said[:4], steal=steal, edits=sent, values=values,
                errors=errors[:3], blocks=len(w), window=window, playing=bool(m1["playing"]),
                fps=fps, ticks=ticks, lag_ms=lag_ms)


def measure_reference_under_studio(song: str, session: str | None, seconds: float,
                                  realtime: bool) -> dict:
    """The bare server (the silent callback, in this process) while the studio runs beside it
    with its offline driver (its engine plays in real time into no device), its page open in
    Chromium and the same edits streaming: what the machine does to a JACK client that does no
    work when the studio and the browser load it as in the studio measurement."""
    from host.io import AudioOutput, refresh_portaudio, release_portaudio
    with JackServer(sample_rate_hz=hb.SR, period_frames=BLOCK, realtime=realtime) as srv, \
            tempfile.TemporaryDirectory(prefix="mixstyle-studiobench-") as tmp:
        refresh_portaudio()
        try:
            silence = hb.Silence(BLOCK)
            with AudioOutput(silence), \
                    studio_page(song, session, os.path.join(tmp, "t.npz"), offline=True) as (
                        page, url):
                ed = WsEditor(url)
                try:
                    time.sleep(1.0)
                    silence.timing.reset()
                    first = silence.blocks
                    server0 = srv.log().count("XRun")
                    th = threading.Thread(target=ed.stream, args=(seconds, EDITS_PER_S),
                                          daemon=True)
                    th.start()
                    page.evaluate(PAGE_RATE_JS, seconds)
                    th.join()
                    st = silence.timing.stats()
                    last = silence.blocks
                    server = srv.log().count("XRun") - server0
                finally:
                    ed.close()
        finally:
            release_portaudio()
    refresh_portaudio()
    return dict(xruns=st.xruns, late_callbacks=st.late_callbacks, flagged=st.flagged_xruns,
                server_xruns=server, stalls=silence.stalls(first, last))


def _play(page: Any) -> None:
    """Start playback with the page's own transport (the protocol's play message)."""
    if page.evaluate("() => !!(window.studio && window.studio.state.meters "
                     "&& window.studio.state.meters.playing)"):
        return
    btn = page.query_selector("#play, button[data-action='play'], button.play")
    if btn is not None:
        btn.click()
    else:
        page.keyboard.press("Space")
    page.wait_for_function("() => window.studio.state.meters && "
                           "window.studio.state.meters.playing", timeout=30_000)


# --- rows -------------------------------------------------------------------------------------

def _rows(label: str, m: dict, ref: dict, mode: str, extra: str) -> list[dict]:
    base = (f"{label}, {N_TRACKS} tracks, {BLOCK}-sample blocks, {SECONDS:.0f} s, "
            f"{EDITS_PER_S:.0f} edits/s")
    note = (f"{mode}; {extra}; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} "
            f"cores, {m['steal']:.1f}% CPU stolen by the hypervisor; JACK logged "
            f"{m['server_xruns']} xruns (bare server: {ref['server_xruns']})")
    return [
        dict(name=f"{base}: callback p99", ours=round(m["p99"], 1), reference=None, ratio=None,
             target=P99_TARGET_PCT, unit="% of block period (<= target)",
             note=f"max {m['max']:.0f}%; " + note),
        dict(name=f"{base}: late callbacks", ours=m["late"], reference=ref["stalls"],
             ratio=None, target=ref["stalls"],
             unit="count (<= target: the bare server's own stalls over a period)",
             note=f"reference: the bare server's callback (measured just before, same time) "
                  f"was itself late {ref['late_callbacks']} times, and its thread stalled "
                  f"{ref['stalls']} times for over a period (started > 2 periods after the "
                  f"previous callback: it would have missed those cycles with any work); "
                  + note),
        dict(name=f"{base}: xruns", ours=m["xruns"], reference=ref["xruns"], ratio=None,
             target=ref["xruns"], unit="count (<= target = the bare server's)",
             note=f"bare server: {ref['late_callbacks']} late + {ref['flagged']} flags; "
                  + note + ("; JACK's messages: " + " | ".join(m["jack_said"])
                            if m.get("jack_said") else "")),
    ]


def run() -> list[dict]:
    reason = jack_missing_reason()
    if reason is not None:
        return [dict(name="studio real-time benchmark", note=f"skipped: {reason}")]
    rt = hb.realtime_allowed()
    mode = "jackd -R (SCHED_FIFO)" if rt else "jackd -r (real-time scheduling not permitted)"
    rows: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="mixstyle-studiobench-") as folder:
        hb.FILE_SECONDS = SECONDS + 20.0  # the song outlasts the window: it plays throughout
        paths = hb._write_stems(folder)
        ref = hb.measure_reference(BLOCK, SECONDS, rt)
        m = measure_engine_only(paths, SECONDS, rt, control_rt=1)  # as the studio's thread
        rows += _rows("studio RT, engine only (no web process)", m, ref, mode,
                      f"{m['edits']} edits and {m['meters']} pickled meter snapshots by a "
                      f"control thread in the engine process (SCHED_FIFO 1 as the studio's); "
                      f"{m['blocks']} callbacks")
        why = studio_available()
        if why is not None:
            rows.append(dict(name="studio RT with the page open", note=f"skipped: {why}"))
            return rows
        song, session = make_song(folder, paths)
        ref = hb.measure_reference(BLOCK, SECONDS, rt)
        s = measure_studio(song, session, SECONDS, rt)
        loaded = measure_reference_under_studio(song, session, SECONDS, rt)
        errors = f"; errors: {s['errors']}" if s["errors"] else ""
        rows += _rows("studio RT, page open in headless Chromium", s, ref, mode,
                      f"{s['edits']} set messages over the studio's WebSocket ({s['values']} "
                      f"value updates came back{errors}); "
                      f"the page meanwhile drew {s['fps']:.1f} frames/s, its 50 ms timer ran "
                      f"{s['ticks']:.1f}/s (longest lag {s['lag_ms']:.0f} ms); timing over "
                      f"{s['window']}; "
                      f"{'all stages active (session)' if session else 'neutral console'}; "
                      f"playing at the end: {s['playing']}")
        rows.append(dict(
            name="studio RT: the bare server while the studio (offline driver) and its page run "
                 "beside it, same edits", ours=loaded["xruns"], reference=s["xruns"],
            ratio=None, target=None, unit="xruns (reference: the studio's own, row above)",
            note=f"{mode}; the silent callback was late {loaded['late_callbacks']} times, its "
                 f"thread stalled {loaded['stalls']} times for over a period; JACK logged "
                 f"{loaded['server_xruns']} xruns; the machine's xruns with the browser and "
                 f"the studio's processes busy (this kernel is not preemptible: "
                 f"PREEMPT_NONE delays real-time wake-ups while others run in the kernel)"))
    return rows


if __name__ == "__main__":
    for row in run():
        print(row)
