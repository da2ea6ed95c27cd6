"""Real-time path through a real JACK server (dummy driver, no sound card): audio flows for 2 s,
MIDI CCs from a JACK MIDI port move the console, a MIDI flood is filtered."""

from __future__ import annotations

import time

import numpy as np
import pytest

from dsp.params import TRACK_NAMES, ConsoleSetting, TrackSetting
from host.engine import Engine, EngineConfig
from host.jack_server import jack_missing_reason
from host.reader import TrackSource

SR = 48000
BLOCK = 128
pytestmark = pytest.mark.skipif(jack_missing_reason() is not None,
                                reason=f"no JACK here: {jack_missing_reason()}")


def _tone_engine(seconds=5.0):
    t = np.arange(int(seconds * SR)) / SR
    tone = (0.25 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    setting = ConsoleSetting(tracks=(TrackSetting("a", {}), TrackSetting("b", {"pan": 0.5})))
    return Engine([TrackSource("a", audio=np.stack([tone, tone])),
                   TrackSource("b", audio=np.stack([tone, -tone]))], setting,
                  EngineConfig(SR, BLOCK))


def test_audio_flows_through_jack_for_two_seconds(jack):
    from host.io import AudioOutput
    eng = _tone_engine()
    with eng, AudioOutput(eng) as out:
        assert any(p.startswith("PortAudio") for p in jack.ports()), jack.ports()
        eng.wait_ready()
        time.sleep(0.1)
        blocks0, t0 = eng.blocks, time.monotonic()
        eng.play()
        out.run_for(2.0)
        blocks, elapsed = eng.blocks - blocks0, time.monotonic() - t0
        meters = eng.meter_snapshot()
        position = eng.position_s
    expected = elapsed * SR / BLOCK                     # ~750 callbacks in 2 s
    # a loaded machine slows the dummy driver's clock; the callback must still keep up with it
    assert 0.5 * expected <= blocks <= 1.1 * expected, (blocks, expected)
    assert position == pytest.approx(blocks * BLOCK / SR, abs=0.1)   # the transport moved on
    assert meters.track_peak_db[0] == pytest.approx(20 * np.log10(0.25), abs=0.1)
    assert meters.master_peak_db > -20.0 and meters.master_momentary_lufs > -30.0
    assert out.callback_errors == 0 and out.wrong_sizes == 0
    st = eng.timing.stats()
    assert st.callbacks >= blocks and st.p50_ms > 0.0
    assert eng.late_reads == 0


def test_midi_cc_from_a_jack_port_moves_the_fader_and_floods_are_filtered(jack):
    import rtmidi

    from host.io import AudioOutput
    from host.midi import MidiInput, MidiMap, MidiRouter, open_midi_input
    eng = _tone_engine()
    midi_map = MidiMap.from_dict({"bindings": [
        {"channel": 0, "cc": 7, "target": "track:a:output_gain_db"},
        {"channel": 0, "cc": 20, "target": "transport:toggle"}]})
    router = MidiRouter(midi_map, eng.control, eng)
    midi_in = open_midi_input("control", virtual=True, api="jack", client_name="mixstyle")
    sender = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, "tester")
    ports = sender.get_ports()
    target = [i for i, p in enumerate(ports) if "mixstyle" in p and "control" in p]
    assert target, ports
    sender.open_port(target[0])
    idx = TRACK_NAMES.index("output_gain_db")
    with eng, AudioOutput(eng), MidiInput(router, midi_in).start() as mi:
        # JACK drops the MIDI events of a cycle a client missed (the dummy server runs without
        # real-time priority): a controller sends its button and knob again, the test as well
        deadline = time.monotonic() + 10
        while not (eng.strips[0].targets[idx] == -60.0 and eng.playing) \
                and time.monotonic() < deadline:
            sender.send_message([0xB0, 20, 127])        # toggle: play (acts once: held down)
            sender.send_message([0xB0, 7, 0])           # fader to -60 dB
            time.sleep(0.1)
        assert eng.strips[0].targets[idx] == -60.0 and eng.playing
        for i in range(2000):                           # flood: sysex, notes, clock, CCs
            sender.send_message([0xF0, 0x7D] + [i % 128] * 32 + [0xF7])
            sender.send_message([0x90, 60, 100])
            sender.send_message([0xF8])
            sender.send_message([0xB0, 7, i % 128])
            if i % 200 == 0:
                time.sleep(0.005)                       # let the JACK ring drain
        time.sleep(0.2)
        deadline = time.monotonic() + 10
        while eng.strips[0].targets[idx] != 12.0 and time.monotonic() < deadline:
            sender.send_message([0xB0, 7, 127])         # last word: +12 dB
            time.sleep(0.1)
        assert eng.strips[0].targets[idx] == 12.0
        assert eng.playing
    sender.close_port()
    sender.delete()                                     # close the JACK MIDI client now
    assert router.junk > 0                              # notes were dropped by our filter
    assert router.applied < router.accepted             # coalesced: fewer changes than CCs
    assert eng.params.refused == 0


def test_run_host_plays_a_stems_folder_live(jack, tmp_path):
    import io

    from pedalboard.io import AudioFile

    from host.midi import MidiMap
    from host.tui import KeyReader, run_host
    t = np.arange(3 * SR) / SR
    for k, name in enumerate(("bass", "keys")):
        x = (0.2 * np.sin(2 * np.pi * (110 + 330 * k) * t)).astype(np.float32)
        with AudioFile(str(tmp_path / f"{name}.wav"), "w", SR, 2) as f:
            f.write(np.stack([x, x]))
    screen = io.StringIO()
    midi_map = MidiMap.from_dict({"bindings": [
        {"channel": 0, "cc": 10, "target": "track:bass:pan"}]})
    status = run_host(str(tmp_path), None, midi_map, None, BLOCK, None, out=screen,
                      keys=KeyReader(io.StringIO()), max_seconds=1.5)
    assert "no MIDI" not in screen.getvalue()          # the JACK MIDI port opened
    assert status["blocks"] > 0.5 * 1.5 * SR / BLOCK and status["position_s"] > 0.5
    last = screen.getvalue().split("\x1b[H\x1b[J")[-1]
    assert "PLAY" in last and "bass" in last and "keys" in last and "LUFS" in last


def test_a_killed_jackd_leaves_no_entry_in_the_servers_registry():
    """JACK registers at most 8 servers and frees the entry of a killed one only when a server
    of the same name starts again; JackServer names are unique, so each jackd that
    ``end_process`` had to kill (or that crashed) took one for good, until no server started
    ("Too many servers already active"). stop() frees it."""
    import signal

    from host.jack_server import JackServer
    registry = "/dev/shm/jack-shm-registry"
    srv = JackServer(sample_rate_hz=SR, period_frames=BLOCK).start()
    try:
        with open(registry, "rb") as f:
            assert f":{srv.name}:".encode() in f.read()     # "jack-<uid>:<name>:"
        srv._proc.send_signal(signal.SIGKILL)
        srv._proc.wait()
    finally:
        srv.stop()
    with open(registry, "rb") as f:
        assert f":{srv.name}:".encode() not in f.read()
    with JackServer(sample_rate_hz=SR, period_frames=BLOCK) as again:   # and JACK still starts
        assert again.ports()
