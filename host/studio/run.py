"""``mixstyle studio``: the engine process (engine, audio output, one control thread) and the
web process it starts (``host.studio.web``), linked by a ``multiprocessing.connection``.

The engine process never serves HTTP: a web server in the same process would hold the GIL the
audio callback needs. Its control thread waits on the link (the wait releases the GIL), applies
each page message through ``StudioService.handle`` and, every 50 ms, sends the meters and
whatever changed by itself.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import tempfile
import threading
import time
from multiprocessing.connection import Connection, Listener
from typing import Any, Callable, TextIO

from dsp.errors import HostError
from dsp.params import ConsoleSetting, TrackSetting
from host.jack_server import end_process
from host.realtime import make_thread_realtime
from host.signals import quit_on_signals
from host.studio.service import StudioService
from host.tui import song_folders

METER_PERIOD_S = 0.05
# page messages applied per meter period at most (a page flooding edits must not keep the control
# thread holding the GIL the audio callback needs; an edit costs ~0.1-0.2 ms at 64 tracks)
MAX_MESSAGES_PER_TICK = 50
MIN_TICK_GAP_S = 0.5 * METER_PERIOD_S  # the control thread rests at least this after a tick
START_TIMEOUT_S = 30.0


def neutral_setting(engine: Any) -> ConsoleSetting:
    """The plain sum: every strip and the master bus neutral (unity, flat, no compression)."""
    return ConsoleSetting(tracks=tuple(TrackSetting(n, {}, r) for n, r in
                                       zip(engine.track_names, engine.control.roles)))


def check_port(port: Any) -> None:
    if port is not None and (isinstance(port, bool) or not isinstance(port, int)
                             or not 0 <= port <= 65535):
        raise HostError(f"--port {port!r}: allowed 1 .. 65535 (0 or none: any free port)")


class Studio:
    """The link to the web process and the control thread; ``start()`` -> ``url``."""

    def __init__(self, service: StudioService, port: int | None = None,
                 token: str | None = None) -> None:
        check_port(port)
        self.service = service
        self.port_asked = port or 0
        self.token = token or secrets.token_urlsafe(24)
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self.conn: Connection | None = None
        self.error: BaseException | None = None
        self.handled = 0
        self.faults = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._clients: set[int] = set()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/?token={self.token}"

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive() and \
            self.proc is not None and self.proc.poll() is None

    def start(self) -> "Studio":
        authkey = secrets.token_bytes(32)
        self._tmp = tempfile.TemporaryDirectory(prefix="mixstyle-studio-")
        address = os.path.join(self._tmp.name, "link")
        listener = Listener(address, family="AF_UNIX", authkey=authkey)
        import host
        root = os.path.dirname(os.path.dirname(os.path.abspath(host.__file__)))
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([root] + [p for p in
                                                      env.get("PYTHONPATH", "").split(os.pathsep)
                                                      if p])
        import json
        self.proc = subprocess.Popen([sys.executable, "-m", "host.studio.web"],
                                     stdin=subprocess.PIPE, env=env)
        assert self.proc.stdin is not None
        self.proc.stdin.write((json.dumps({"link": address, "authkey": authkey.hex(),
                                           "token": self.token, "port": self.port_asked})
                               + "\n").encode())
        self.proc.stdin.close()
        accepted: list[Connection] = []

        def accept() -> None:
            try:
                accepted.append(listener.accept())
            except (OSError, EOFError):
                pass

        t = threading.Thread(target=accept, daemon=True)
        t.start()
        deadline = time.monotonic() + START_TIMEOUT_S
        while t.is_alive() and self.proc.poll() is None and time.monotonic() < deadline:
            t.join(0.05)
        listener.close()
        if not accepted:
            self.stop()
            raise HostError("the studio's web process did not start (see its messages above)")
        self.conn = accepted[0]
        if not self.conn.poll(START_TIMEOUT_S):
            self.stop()
            raise HostError("the studio's web process did not report its port")
        first = self.conn.recv()
        if first[0] != "ready":
            self.stop()
            raise HostError(f"studio web server: {first[1]}")
        self.port = int(first[1])
        self._thread = threading.Thread(target=self._run, name="mixstyle-studio-control",
                                        daemon=True)
        self._thread.start()
        return self

    # the control thread ---------------------------------------------------------------------
    def _send(self, to: int | None, msg: dict[str, Any]) -> None:
        assert self.conn is not None
        self.conn.send((to, msg))

    def _route(self, cid: int, replies: list[dict[str, Any]]) -> None:
        for r in replies:
            private = r.get("type") == "hello" or (r.get("type") == "message"
                                                   and r.get("level") == "error")
            self._send(cid if private else None, r)

    def _run(self) -> None:
        make_thread_realtime(1)  # never preempted by other programs while it holds the GIL
        conn, service = self.conn, self.service
        assert conn is not None
        next_tick = time.monotonic()
        budget = MAX_MESSAGES_PER_TICK
        while not self._stop.is_set():
            try:
                wait = max(0.0, next_tick - time.monotonic())
                if budget > 0 and conn.poll(wait):
                    self._one(conn.recv())
                    budget -= 1
                    continue
                if budget <= 0:  # a flood: the rest waits in the link until the next tick
                    time.sleep(wait)
                budget = MAX_MESSAGES_PER_TICK
                next_tick += METER_PERIOD_S
                replies = service.tick(meters=bool(self._clients))
                if self._clients:
                    for r in replies:
                        self._send(None, r)
                # never catch up on missed ticks: on a machine so busy that a tick takes longer
                # than the period, this real-time thread would run without pause and starve
                # the ordinary threads of its core (the main thread, which must see Ctrl-C)
                next_tick = max(next_tick, time.monotonic() + MIN_TICK_GAP_S)
            except (EOFError, OSError) as e:  # the web process went away
                if not self._stop.is_set():
                    self.error = e
                return
            except Exception as e:  # noqa: BLE001 - a bug must not end the studio: report it
                self.faults += 1
                text = f"internal error in the studio's control thread: {type(e).__name__}: {e}"
                print(text, file=sys.stderr)
                try:
                    self._send(None, {"type": "message", "level": "error", "text": text})
                except (EOFError, OSError):
                    return

    def _one(self, item: Any) -> None:
        kind = item[0]
        if kind == "hello":
            self._clients.add(item[1])
            self._send(item[1], self.service.hello())
        elif kind == "msg":
            self.handled += 1
            self._route(item[1], self.service.handle(item[2]))
        elif kind == "bye":
            self._clients.discard(item[1])

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self.conn is not None:
            self.conn.close()
            self.conn = None
        self._kill()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def _kill(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None:
            end_process(proc)

    def __enter__(self) -> "Studio":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def prepare(engine: Any, song_dir: str, stems_dir: str, **service_kwargs: Any
            ) -> StudioService:
    """Measure (waveform, A/B loudness), set up A/B on ``engine`` (not started yet) and
    build its StudioService."""
    from host.studio.analysis import Rematch, analyse, find_mix, read_whole
    mix_path = find_mix(song_dir, stems_dir)
    mix = read_whole(mix_path, engine.sample_rate) if mix_path else None
    plain = neutral_setting(engine)
    analysis = analyse(engine.sources, engine.sample_rate, engine.control.setting(), plain,
                       mix, engine.length_frames)
    engine.setup_ab(plain, mix)
    rematch = Rematch(engine.sources, engine.sample_rate, engine.length_frames, analysis)
    return StudioService(engine, song_dir, stems_dir=stems_dir, analysis=analysis,
                         rematch=rematch, **service_kwargs)


def run_studio(stems_dir: str, make_predict: Callable[[float], Any] | None = None,
               session: str | None = None, port: int | None = None,
               open_browser: bool = True, device: int | str | None = None, block: int = 128,
               offline: bool = False, sample_rate_hz: float | None = None,
               max_seconds: float | None = None, out: TextIO = sys.stdout) -> int:
    """The ``mixstyle studio`` command: returns its exit status.

    ``make_predict(sample_rate) -> predict`` builds the model's predict function (see
    host.worker) once the engine's rate is known; None: a neutral console, no model thread."""
    from host.engine import Engine, EngineConfig
    from host.io import JACK_API, AudioOutput, host_apis
    from host.midi import MidiInput, MidiMap, open_midi_input
    from host.offline import PacedOutput
    from host.plugins import MainThreadPump
    from host.tui import _initial_setting, load_stems_dir, playback_rate, stems_rate
    from host.worker import ModelWorker
    check_port(port)
    song_dir, stems = song_folders(stems_dir)
    jack = False
    if not offline:
        try:
            jack = JACK_API in host_apis()
        except HostError as e:
            print(f"no audio output: {e}", file=sys.stderr)
            offline = True
    predict = None
    if session is not None:
        from host.session import load_session, open_session
        engine, midi_map = open_session(load_session(session), block)
        if make_predict is not None:
            predict = make_predict(engine.sample_rate)
    else:
        sources = load_stems_dir(stems)
        rate = sample_rate_hz or (stems_rate(sources) if offline else
                                  playback_rate(sources, device))
        predict = None if make_predict is None else make_predict(rate)
        setting = _initial_setting(sources, predict, rate)
        engine = Engine(sources, setting, EngineConfig(rate, block))
        midi_map = MidiMap()
    try:
        print(f"measuring {len(engine.track_names)} tracks (waveform, A/B loudness)...",
              file=out, flush=True)
        service = prepare(engine, song_dir, stems, midi_map=midi_map, session_path=session)
        output: Any = None
        if not offline:
            try:
                output = AudioOutput(engine, device, JACK_API if jack else None)
            except HostError as e:
                print(f"no audio output ({e}); the studio runs with the offline driver: real "
                      f"time, no sound", file=sys.stderr)
        if output is None:
            output = PacedOutput(engine)
        if service.rematch is not None:
            service.rematch.start()
        engine.start()
        try:
            output.start()
        except HostError as e:
            print(f"{e}; the studio runs with the offline driver: real time, no sound",
                  file=sys.stderr)
            output = PacedOutput(engine).start()
        worker = None
        midi_in = None
        try:
            if predict is not None:
                worker = ModelWorker(predict, engine.tap, engine.control, engine.sample_rate,
                                     engine.control.roles).start()
                service.worker = worker
            try:
                port_in = open_midi_input("control", virtual=True,
                                          api="jack" if jack else "alsa")
                midi_in = MidiInput(service.router, port_in).start()
                service.midi_input = midi_in
                service.midi_status = "virtual input mixstyle:control"
            except (HostError, ImportError, OSError) as e:
                service.midi_status = f"no MIDI input: {e}"
            with Studio(service, port) as studio:
                # the handlers go in before the address is out: a SIGTERM sent as soon as the
                # address is read (a script, a service manager) quits cleanly too
                restore = quit_on_signals()
                try:
                    print(f"mixstyle studio: {studio.url}", file=out, flush=True)
                    print("Ctrl-C quits", file=out, flush=True)
                    if open_browser:
                        import webbrowser
                        webbrowser.open(studio.url)
                    started = time.monotonic()
                    told_lost = False
                    with MainThreadPump() as pump:  # plugin loads asked by the page run here
                        while studio.alive and (max_seconds is None
                                                or time.monotonic() - started < max_seconds):
                            pump.serve(0.2)
                            if not told_lost and getattr(output, "lost", False):
                                told_lost = True
                                print("mixstyle studio: the audio output stopped: its JACK "
                                      "server went away (the page still saves; Ctrl-C quits)",
                                      file=sys.stderr, flush=True)
                except KeyboardInterrupt:
                    pass
                finally:
                    restore()
                if studio.error is not None:
                    print(f"mixstyle studio: control link failed: {studio.error}",
                          file=sys.stderr)
                    return 1
        finally:
            if midi_in is not None:
                midi_in.stop()
            if worker is not None:
                worker.stop()
            output.stop()
            service.close()
    finally:
        engine.close()
    return 0
