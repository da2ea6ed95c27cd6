"""The studio end to end: the web process (uvicorn, a real WebSocket client from the `websockets`
library) against the real engine playing through the JACK dummy server. Levels are measured on
what the engine recorded; refusals (token, Origin, paths) on the wire."""

from __future__ import annotations

import asyncio
import json
import os
import time
import urllib.error
import urllib.request

import numpy as np
import pytest
from pedalboard.io import AudioFile

from host.engine import Engine, EngineConfig
from host.jack_server import jack_missing_reason
from host.reader import TrackSource
from host.studio.run import Studio, prepare

SR = 48000
BLOCK = 128
pytestmark = [pytest.mark.skipif(jack_missing_reason() is not None,
                                reason=f"no JACK here: {jack_missing_reason()}"),
              pytest.mark.long(35)]   # seconds: scheduled first (tests/conftest.py)


def _write(path, audio):
    with AudioFile(str(path), "w", SR, 2, bit_depth=32) as f:
        f.write(np.asarray(audio, dtype=np.float32))


@pytest.fixture
def song(tmp_path):
    """A song: a steady 440 Hz tone and noise, 20 s."""
    song = tmp_path / "song"
    (song / "stems").mkdir(parents=True)
    t = np.arange(20 * SR) / SR
    tone = (0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    noise = (0.05 * np.random.default_rng(3).normal(size=t.size)).astype(np.float32)
    _write(song / "stems" / "noise.wav", np.stack([noise, -noise]))
    _write(song / "stems" / "tone.wav", np.stack([tone, tone]))
    return song


@pytest.fixture
def studio(jack, song):
    """The song playing live on JACK, its studio served (engine in this process)."""
    from host.io import JACK_API, AudioOutput
    eng = Engine([TrackSource(n, path=str(song / "stems" / f"{n}.wav"))
                  for n in ("noise", "tone")], None,
                 EngineConfig(SR, BLOCK, readahead_s=2.0))
    svc = prepare(eng, str(song), str(song / "stems"))
    with eng, AudioOutput(eng, None, JACK_API), Studio(svc) as st:
        yield st, svc, song


def _connect(url, **kw):
    """A WebSocket client that, like a page, reads every message as it comes: with websockets'
    default (16 unread messages) a client that stops reading leaves the studio's reply to its
    close frame behind the meters and waits ``close_timeout`` (10 s) on leaving."""
    from websockets.asyncio.client import connect
    return connect(url, max_queue=None, **kw)


def _ws_url(st, token=True):
    return f"ws://127.0.0.1:{st.port}/ws" + (f"?token={st.token}" if token else "")


async def _until(ws, kind, timeout=20.0, pred=lambda m: True):
    """The next message of type ``kind`` (skipping meters and others)."""
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        assert left > 0, f"no {kind!r} message within {timeout} s"
        m = json.loads(await asyncio.wait_for(ws.recv(), left))
        if m["type"] == kind and pred(m):
            return m


async def _turn(ws, sender, message, kind, pred=lambda m: True, timeout=10.0):
    """Send the CC ``message`` every 100 ms, as a knob turning does, until the next message of
    type ``kind`` (and ``pred``) arrives: JACK drops the MIDI events of a cycle a client missed
    (the dummy server runs without real-time priority), so one lone CC may never arrive."""
    deadline = time.monotonic() + timeout
    next_send = 0.0
    while True:
        now = time.monotonic()
        assert now < deadline, f"no {kind!r} message within {timeout} s of sending {message}"
        if now >= next_send:
            sender.send_message(message)
            next_send = now + 0.1
        try:
            m = json.loads(await asyncio.wait_for(ws.recv(), 0.1))
        except TimeoutError:
            continue
        if m["type"] == kind and pred(m):
            return m


def _read(path):
    with AudioFile(path) as f:
        return f.read(f.frames)


def _median_block_rms_db(audio, block=BLOCK):
    """Median over blocks of the block RMS in dB: a steady tone's level, even if a block was
    played as silence (a late disk read on a loaded machine)."""
    n = audio.shape[1] // block
    x = audio[:, :n * block].reshape(2, n, block).astype(np.float64)
    return float(np.median(10 * np.log10(np.mean(x ** 2, axis=(0, 2)) + 1e-30)))


def test_fader_from_the_websocket_changes_the_recorded_level_by_the_set_amount(studio):
    st, svc, song = studio

    async def run():
        async with _connect(_ws_url(st)) as ws, _connect(_ws_url(st)) as other:
            hello = await _until(ws, "hello")
            assert [t["name"] for t in hello["tracks"]] == ["noise", "tone"]
            await _until(other, "hello")
            await ws.send(json.dumps({"type": "solo", "track": "tone", "on": True}))
            await _until(ws, "state", pred=lambda m: m.get("solo") == ["tone"])
            await _until(other, "state", pred=lambda m: m.get("solo") == ["tone"])
            await ws.send(json.dumps({"type": "transport", "action": "play"}))
            await _until(ws, "meters", pred=lambda m: m["playing"] and m["position_s"] > 0.3)
            await ws.send(json.dumps({"type": "record", "seconds": 1.0}))
            before = (await _until(ws, "recorded"))["path"]
            await ws.send(json.dumps({"type": "set", "target": "track:tone:output_gain_db",
                                      "value": -6.0}))
            values = await _until(other, "values")          # every page hears the change
            assert values["values"] == {"track:tone:output_gain_db": -6.0}
            await asyncio.sleep(0.3)                         # the strip's glide is over
            await ws.send(json.dumps({"type": "record", "seconds": 1.0}))
            after = (await _until(ws, "recorded"))["path"]
            meters = await _until(other, "meters")           # both pages get the meters
            assert len(meters["peak_db"]) == 2 and meters["playing"]
            return before, after

    before, after = asyncio.run(run())
    a, b = _read(before), _read(after)
    assert a.shape == b.shape == (2, SR)
    level_a = _median_block_rms_db(a)
    assert level_a == pytest.approx(20 * np.log10(0.2 / np.sqrt(2)), abs=0.2)  # tone alone
    assert _median_block_rms_db(b) - level_a == pytest.approx(-6.0, abs=0.1)
    assert st.error is None and st.faults == 0


def test_requests_without_the_token_or_from_a_foreign_origin_are_refused(studio):
    from websockets.exceptions import InvalidStatus
    st, _, _ = studio
    base = f"http://127.0.0.1:{st.port}"

    def status(url, headers=None):
        try:
            with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}),
                                        timeout=10) as r:
                return r.status, dict(r.headers), r.read()
        except urllib.error.HTTPError as e:
            return e.code, dict(e.headers), e.read()

    assert status(f"{base}/")[0] == 403
    assert status(f"{base}/?token=wrong")[0] == 403
    assert status(f"{base}/static/index.html")[0] == 403
    code, headers, body = status(f"{base}/?token={st.token}")
    assert code == 200 and b"<html" in body.lower()
    cookie = headers["set-cookie"].split(";")[0]
    assert "HttpOnly" in headers["set-cookie"] and "SameSite=strict" in headers["set-cookie"]
    assert status(f"{base}/static/index.html", {"Cookie": cookie})[0] == 200
    assert status(f"{base}/static/../web.py", {"Cookie": cookie})[0] in (403, 404)
    assert status(f"{base}/?token={st.token}", {"Origin": "http://evil.example"})[0] == 403
    assert status(f"{base}/?token={st.token}", {"Host": "evil.example"})[0] == 403

    async def refused(url, **kw):
        with pytest.raises(InvalidStatus) as e:
            async with _connect(url, **kw):
                pass
        return e.value.response.status_code

    async def run():
        assert await refused(_ws_url(st, token=False)) == 403
        assert await refused(_ws_url(st).replace(st.token, "nope")) == 403
        assert await refused(_ws_url(st), origin="http://evil.example") == 403
        assert await refused(_ws_url(st), origin=f"http://127.0.0.1:{st.port + 1}") == 403
        async with _connect(_ws_url(st), origin=f"http://localhost:{st.port}") as ws:
            assert (await _until(ws, "hello"))["type"] == "hello"

    asyncio.run(run())


def test_a_page_that_connects_while_another_is_open_gets_its_hello_first():
    """PROTOCOL.md: on connect a page gets one hello, then meters and changes. The engine sends
    meters to every page; one connecting while another page was open got them before its hello
    when a tick left the engine before the hello it asked for (the studio page test's second
    WebSocket once read 'meters' as its first message). What went out before is in the hello."""
    from host.studio.web import Hub

    class Link:
        def __init__(self):
            self.sent = []

        def send(self, item):
            self.sent.append(item)

    def kinds(q):
        return [json.loads(q.get_nowait())["type"] for _ in range(q.qsize())]

    hub = Hub(Link())
    a, qa = hub.register()
    hub._dispatch(a, {"type": "hello"})
    hub._dispatch(None, {"type": "meters"})
    b, qb = hub.register()                                  # b asks the engine for its hello,
    hub._dispatch(None, {"type": "meters"})                 # but a tick goes out first
    hub._dispatch(None, {"type": "values", "values": {}})
    hub._dispatch(b, {"type": "hello"})
    hub._dispatch(None, {"type": "meters"})
    assert kinds(qb) == ["hello", "meters"]
    assert kinds(qa) == ["hello", "meters", "meters", "values", "meters"]
    assert hub.link.sent == [("hello", a), ("hello", b)]
    hub.unregister(b)
    hub._dispatch(None, {"type": "meters"})
    assert kinds(qa) == ["meters"] and b not in hub.greeted


def test_file_paths_outside_the_song_are_refused_on_the_wire(studio, tmp_path):
    st, _, song = studio

    async def run():
        async with _connect(_ws_url(st)) as ws:
            await _until(ws, "hello")
            await ws.send(json.dumps({"type": "save", "path": str(tmp_path / "out.json")}))
            err = await _until(ws, "message", pred=lambda m: m["level"] == "error")
            assert "outside the song folder" in err["text"]
            await ws.send(json.dumps({"type": "insert_add", "where": "track:tone",
                                      "plugin": "/etc/passwd"}))
            err = await _until(ws, "message", pred=lambda m: m["level"] == "error")
            assert "outside the VST3 folders" in err["text"]
            await ws.send("{not json")
            err = await _until(ws, "message", pred=lambda m: m["level"] == "error")
            assert "not valid JSON" in err["text"]
            await ws.send(json.dumps({"type": "save"}))
            state = await _until(ws, "state", pred=lambda m: "session_path" in m)
            return state["session_path"]

    path = asyncio.run(run())
    assert not (tmp_path / "out.json").exists()
    assert path == str(song / "studio_session.json") and os.path.isfile(path)


def _ignore_sigint():
    import signal
    signal.signal(signal.SIGINT, signal.SIG_IGN)   # as a script's background job inherits it


class StudioProcess:
    """``mixstyle studio SONG --no-browser [args]`` as a child process; ``ws`` is its socket URL.
    JACK: the child finds the test's server through the inherited JACK_DEFAULT_SERVER."""

    def __init__(self, song, *args, jack=True, ignore_sigint=False):
        import subprocess
        import sys
        root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(
            [root] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]),
            PYTHONFAULTHANDLER="1")   # a studio that does not quit shows where it hangs
        if not jack:
            env.pop("JACK_DEFAULT_SERVER", None)
        self.proc = subprocess.Popen([sys.executable, "-m", "mixstyle.cli", "studio", str(song),
                                      "--no-browser", "--seconds", "120", *args],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                     env=env, preexec_fn=_ignore_sigint if ignore_sigint else None)
        url = None
        deadline = time.monotonic() + 120
        while url is None and time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                self.stop()
                pytest.fail(f"studio ended early: {self.proc.stderr.read()}")
            if line.startswith("mixstyle studio: http://127.0.0.1:"):
                url = line.split(": ", 1)[1].strip()
        assert url is not None
        self.port = int(url.split(":")[2].split("/")[0])
        self.token = url.split("token=")[1]
        self.ws = f"ws://127.0.0.1:{self.port}/ws?token={self.token}"

    def stop(self):
        import signal
        import subprocess
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.send_signal(signal.SIGABRT)   # faulthandler: every thread's stack
                try:
                    self.proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
        return self.proc.returncode


def test_mixstyle_studio_offline_serves_the_page_and_plays_in_real_time(tmp_path):
    """The command itself, with no audio device: the paced offline driver plays in real time."""
    song = tmp_path / "song"
    (song / "stems").mkdir(parents=True)
    t = np.arange(10 * SR) / SR
    for i, name in enumerate(("lead", "pad")):
        x = (0.1 * np.sin(2 * np.pi * (220 + 110 * i) * t)).astype(np.float32)
        _write(song / "stems" / f"{name}.wav", np.stack([x, x]))
    studio = StudioProcess(song, "--offline", jack=False)
    port, token = studio.port, studio.token
    try:
        async def run():
            async with _connect(f"ws://127.0.0.1:{port}/ws?token={token}") as ws:
                hello = await _until(ws, "hello")
                assert [tr["name"] for tr in hello["tracks"]] == ["lead", "pad"]
                await ws.send(json.dumps({"type": "transport", "action": "play"}))
                m1 = await _until(ws, "meters", pred=lambda m: m["position_s"] > 0.2)
                t1 = time.monotonic()
                m2 = m1
                while time.monotonic() - t1 < 1.0:   # keep reading: the meters stay fresh
                    m2 = await _until(ws, "meters")
                t2 = time.monotonic()
                return m2["position_s"] - m1["position_s"], t2 - t1, m2

        moved, elapsed, meters = asyncio.run(run())
        assert 0.2 * elapsed < moved <= elapsed + 0.2   # paced: about real time, never faster
        assert meters["peak_db"][0] == pytest.approx(-20.0, abs=0.5)   # 0.1 amplitude sine
    finally:
        code = studio.stop()
    assert code == 0, studio.proc.stderr.read()


def test_a_slow_tick_never_keeps_the_real_time_control_thread_from_resting(song):
    """On a machine so busy that a tick takes longer than the meter period, the control thread
    (SCHED_FIFO) still rests after every tick: were it to catch up without pause it would
    starve the ordinary threads of its core, the main thread among them (Ctrl-C unseen)."""
    from host.studio.run import MIN_TICK_GAP_S
    eng = Engine([TrackSource(n, path=str(song / "stems" / f"{n}.wav"))
                  for n in ("noise", "tone")], None, EngineConfig(SR, BLOCK))
    svc = prepare(eng, str(song), str(song / "stems"))
    spans = []
    real_tick = svc.tick

    def slow_tick(meters):
        t0 = time.monotonic()
        while time.monotonic() - t0 < 0.08:   # 80 ms of work: longer than the 50 ms period
            pass
        out = real_tick(meters=meters)
        spans.append((t0, time.monotonic()))
        return out

    svc.tick = slow_tick
    try:
        with Studio(svc):
            time.sleep(1.5)
    finally:
        svc.close()
        eng.close()
    gaps = [b0 - a1 for (_, a1), (b0, _) in zip(spans, spans[1:])]
    assert len(gaps) >= 5
    assert min(gaps) >= 0.9 * MIN_TICK_GAP_S, gaps


def test_a_taken_port_is_a_clear_error_and_stopping_ends_the_web_process(studio):
    from dsp.errors import HostError
    st, svc, _ = studio
    with pytest.raises(HostError, match=f"cannot listen on 127.0.0.1:{st.port}"):
        Studio(svc, port=st.port).start()
    other = Studio(svc).start()
    proc = other.proc
    assert other.alive and proc.poll() is None
    other.stop()
    assert proc.poll() is not None and not other.alive


@pytest.mark.skipif(not os.path.exists("/usr/lib/vst3/ZamEQ2.vst3"),
                    reason="zam-plugins VST3 (Debian package zam-plugins) not installed")
def test_a_vst3_insert_added_over_the_websocket_processes_the_live_audio(jack, song):
    """`mixstyle studio` on JACK (its own process: plugins load on its main thread while the
    page's messages arrive on the control thread)."""
    studio = StudioProcess(song, "--block", str(BLOCK))

    async def send(ws, msg, kind="state"):
        await ws.send(json.dumps(msg))
        return await _until(ws, kind)

    async def record(ws):
        await ws.send(json.dumps({"type": "record", "seconds": 1.0}))
        return (await _until(ws, "recorded"))["path"]

    async def run():
        async with _connect(studio.ws) as ws:
            hello = await _until(ws, "hello")
            eq = [p for p in hello["plugins"] if p["name"] == "ZamEQ2"]
            assert eq, hello["plugins"]
            await send(ws, {"type": "solo", "track": "tone", "on": True})
            await ws.send(json.dumps({"type": "transport", "action": "play"}))
            await _until(ws, "meters", pred=lambda m: m["playing"] and m["position_s"] > 0.3)
            dry = await record(ws)
            state = await send(ws, {"type": "insert_add", "where": "track:tone",
                                    "plugin": eq[0]["path"]})
            assert [i["name"] for i in state["inserts"]["track:tone"]] == ["ZamEQ2"]
            for name, value in (("frequency_1_hz", 440.0), ("bandwidth_1", 1.0),
                                ("boost_cut_1_db", 6.0)):
                await send(ws, {"type": "insert_param", "where": "track:tone", "index": 0,
                                "name": name, "value": value})
            await asyncio.sleep(0.3)
            wet = await record(ws)
            await send(ws, {"type": "insert_bypass", "where": "track:tone", "index": 0,
                            "on": True})
            await asyncio.sleep(0.1)
            bypassed = await record(ws)
            return dry, wet, bypassed

    try:
        paths = asyncio.run(run())
    finally:
        assert studio.stop() == 0, studio.proc.stderr.read()
    dry, wet, bypassed = (_median_block_rms_db(_read(p)) for p in paths)
    assert wet - dry == pytest.approx(6.0, abs=0.2)
    assert bypassed - dry == pytest.approx(0.0, abs=0.1)


def test_midi_learn_from_the_page_binds_the_next_cc_from_a_jack_midi_port(studio):
    """The page asks to learn, a controller on a JACK MIDI port moves: bound, and it moves the
    fader from then on."""
    import rtmidi

    from host.midi import MidiInput, open_midi_input
    st, svc, _ = studio
    port = open_midi_input("control", virtual=True, api="jack", client_name="mixstyle-studio")
    sender = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, "controller")
    names = sender.get_ports()
    target = [i for i, p in enumerate(names) if "mixstyle-studio" in p and "control" in p]
    assert target, names
    sender.open_port(target[0])

    async def run():
        async with _connect(_ws_url(st)) as ws:
            await _until(ws, "hello")
            await ws.send(json.dumps({"type": "midi_learn",
                                      "target": "track:tone:output_gain_db"}))
            info = await _until(ws, "message")
            assert info["level"] == "info" and "move a control" in info["text"]
            state = await _turn(ws, sender, [0xB3, 74, 64], "state",
                                pred=lambda m: "midi_map" in m)
            assert state["midi_map"] == [{"channel": 3, "cc": 74,
                                          "target": "track:tone:output_gain_db"}]
            values = await _turn(ws, sender, [0xB3, 74, 0], "values",   # knob down: -60 dB
                                 pred=lambda m: m["values"].get(
                                     "track:tone:output_gain_db") == -60.0)
            return values

    try:
        with MidiInput(svc.router, port).start() as mi:
            svc.midi_input = mi
            asyncio.run(run())
    finally:
        svc.midi_input = None
        sender.close_port()
        sender.delete()
    assert svc.engine.control.value("tone", "output_gain_db") == -60.0


@pytest.mark.parametrize("how", ["SIGINT", "SIGTERM"])
def test_the_studio_quits_on_ctrl_c_and_sigterm_even_started_with_sigint_ignored(tmp_path, how):
    """A studio started in the background by a script inherits SIGINT ignored; Ctrl-C (and a
    service manager's SIGTERM) must still end it cleanly (it hung until killed, twice in CI)."""
    import signal
    song = tmp_path / "song"
    (song / "stems").mkdir(parents=True)
    x = (0.1 * np.sin(2 * np.pi * 220 * np.arange(2 * SR) / SR)).astype(np.float32)
    _write(song / "stems" / "lead.wav", np.stack([x, x]))
    studio = StudioProcess(song, "--offline", jack=False, ignore_sigint=True)
    studio.proc.send_signal(getattr(signal, how))
    try:
        code = studio.proc.wait(timeout=20)
    except Exception:
        code = studio.stop()
    assert code == 0, studio.proc.stderr.read()


def test_the_studio_quits_on_sigterm_after_its_jack_server_went_away(tmp_path):
    """A studio playing on a JACK server that stops under it says so, and still quits at once on
    SIGTERM: PortAudio's JACK host waits ten minutes to stop or close a stream whose server is
    gone (a studio whose jackd had been killed did not exit within 7 s of SIGTERM)."""
    import select
    import signal
    from host.jack_server import JackServer
    song = tmp_path / "song"
    (song / "stems").mkdir(parents=True)
    x = (0.1 * np.sin(2 * np.pi * 220 * np.arange(2 * SR) / SR)).astype(np.float32)
    _write(song / "stems" / "lead.wav", np.stack([x, x]))
    with JackServer(sample_rate_hz=SR, period_frames=BLOCK) as srv:  # its own: this one goes
        studio = StudioProcess(song)                                  # away under the studio
        srv.stop()                                   # jackd ends (its clients are told)
    err = ""
    deadline = time.monotonic() + 20
    while "audio output stopped" not in err and time.monotonic() < deadline:
        if select.select([studio.proc.stderr], [], [], 0.5)[0]:
            chunk = os.read(studio.proc.stderr.fileno(), 65536).decode(errors="replace")
            if not chunk:
                break
            err += chunk
    try:
        assert "audio output stopped: its JACK server went away" in err, err[-2000:]
        studio.proc.send_signal(signal.SIGTERM)
        code = studio.proc.wait(timeout=10)
    except Exception:
        code = studio.stop()                         # SIGABRT if it hangs: the stacks
        raise AssertionError(f"exit {code}: {err[-1000:]}{studio.proc.stderr.read()[-3000:]}")
    assert code == 0, err[-2000:] + studio.proc.stderr.read()[-2000:]
