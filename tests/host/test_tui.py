"""run_host: a stems folder rendered offline equals the console render of the model's setting;
keys drive the transport; the view shows what the meters read."""

from __future__ import annotations

import numpy as np
import pytest
from pedalboard.io import AudioFile

from dsp.errors import HostError
from dsp.params import ConsoleSetting, TrackSetting
from dsp.render import render
from host.engine import Engine, EngineConfig
from host.reader import TrackSource
from host.tui import handle_key, load_stems_dir, render_view, run_host

SR = 48000


def predict(stems):
    """Deterministic model stand-in: bass down 6 dB, everything else panned by its index."""
    return ConsoleSetting(tracks=tuple(
        TrackSetting(f"x{i}", {"output_gain_db": -6.0 if role == "bass" else 0.0,
                               "pan": 0.2 * i - 0.2}, role)
        for i, (role, _) in enumerate(stems)), master={"gain_db": -2.0})


def _folder(tmp_path, make_stems):
    stems = make_stems(21, seconds=1.0, n_stems=3, sample_rate=SR)
    for name, s in zip(("bass", "drums", "vocals"), stems):
        with AudioFile(str(tmp_path / f"{name}.wav"), "w", SR, 2, bit_depth=32) as f:
            f.write(s)
    (tmp_path / "notes.txt").write_text("not audio")
    return stems


def test_render_path_equals_the_console_render_of_the_prediction(tmp_path, make_stems):
    stems = _folder(tmp_path, make_stems)
    out = tmp_path / "mix.wav"
    status = run_host(str(tmp_path), predict, render_path=str(out))
    assert status["rendered"] == str(out) and status["late_reads"] == 0
    with AudioFile(str(out)) as f:
        got = f.read(f.frames)
    setting = ConsoleSetting(tracks=(
        TrackSetting("bass", {"output_gain_db": -6.0, "pan": -0.2}, "bass"),
        TrackSetting("drums", {"pan": 0.0}, "drums"),
        TrackSetting("vocals", {"pan": 0.2}, "vocals")), master={"gain_db": -2.0})
    ref = render(stems, SR, setting).audio
    assert got.shape == ref.shape
    assert 20 * np.log10(np.max(np.abs(got - ref)) + 1e-30) <= -90.0


def test_stems_folder_problems_are_named(tmp_path):
    with pytest.raises(HostError, match="'.*nowhere' does not exist"):
        load_stems_dir(str(tmp_path / "nowhere"))
    (tmp_path / "readme.txt").write_text("x")
    with pytest.raises(HostError, match="has no audio files"):
        load_stems_dir(str(tmp_path))


def test_keys_drive_transport_loop_freeze_and_save(make_stems):
    stems = make_stems(2, seconds=20.0, n_stems=1, sample_rate=SR)
    eng = Engine([TrackSource("a", audio=stems[0])], config=EngineConfig(SR, 256))
    saved = []
    buf = np.zeros((2, 256), np.float32)
    with eng:
        assert handle_key(" ", eng, lambda: "x") == "play/stop"
        eng.wait_ready()
        eng.process(buf)
        assert eng.playing
        assert handle_key("\x1b[C", eng, lambda: "x") == "seek 5.0 s"
        eng.wait_ready()
        eng.process(buf)
        assert eng.position_s == pytest.approx(5.0, abs=0.01)
        assert handle_key("l", eng, lambda: "x") == "loop 5.0-13.0 s"
        assert eng.loop_s == (pytest.approx(5.0, abs=0.01), pytest.approx(13.0, abs=0.01))
        assert handle_key("l", eng, lambda: "x") == "loop off" and eng.loop_s is None
        assert handle_key("f", eng, lambda: "x") == "model frozen" and eng.control.frozen
        assert handle_key("s", eng, lambda: saved.append(1) or "/tmp/s.json") == \
            "saved /tmp/s.json" and saved == [1]
        assert handle_key("\x1b[D", eng, lambda: "x").startswith("seek 0.0")
        assert handle_key("q", eng, lambda: "x") is None


def test_view_shows_meters_and_transport(make_stems):
    t = np.arange(SR) / SR
    tone = (0.5 * np.sin(2 * np.pi * 1500 * t)).astype(np.float32)
    eng = Engine([TrackSource("lead", audio=np.stack([tone, tone]))],
                 ConsoleSetting(tracks=(), master={"limiter_ceiling_db": 0.0}),
                 EngineConfig(SR, 128))
    buf = np.zeros((2, 128), np.float32)
    with eng:
        eng.play()
        for _ in range(200):
            eng.wait_ready()
            eng.process(buf)
    view = render_view(eng, "hello")
    lines = view.splitlines()
    assert "PLAY" in lines[0] and "model live" in lines[0]
    lead = next(line for line in lines if line.startswith("lead"))
    assert "pk   -6.0 dB" in lead and "rms   -9.0 dB" in lead
    assert lead.count("#") == 27                   # -6 dB on a 60 dB, 30-character bar
    assert "xruns " in view and "late reads 0" in view and view.endswith("hello")


def _ignore_sigint():
    import signal
    signal.signal(signal.SIGINT, signal.SIG_IGN)   # as a script's background job inherits it


@pytest.mark.parametrize("how", ["SIGINT", "SIGTERM"])
def test_the_terminal_host_quits_on_ctrl_c_and_sigterm_even_started_with_sigint_ignored(
        jack, tmp_path, how):
    """`mixstyle host` playing through JACK, started as a script's background job (SIGINT
    ignored): Ctrl-C and SIGTERM end it cleanly (exit 0) long before its 60 s song ends."""
    import os
    import signal
    import subprocess
    import sys
    import time
    x = (0.1 * np.sin(2 * np.pi * 220 * np.arange(60 * SR) / SR)).astype(np.float32)
    with AudioFile(str(tmp_path / "lead.wav"), "w", SR, 2, bit_depth=16) as f:
        f.write(np.stack([x, x]))
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = dict(os.environ, PYTHONPATH=root, PYTHONFAULTHANDLER="1")
    proc = subprocess.Popen([sys.executable, "-m", "mixstyle.cli", "host", str(tmp_path)],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env, preexec_fn=_ignore_sigint)
    try:
        deadline = time.monotonic() + 120
        seen = b""
        while b"lead" not in seen and time.monotonic() < deadline:  # the view is up
            chunk = os.read(proc.stdout.fileno(), 65536)
            if not chunk:
                break
            seen += chunk
        assert b"lead" in seen, proc.stderr.read().decode()[-2000:]
        proc.send_signal(getattr(signal, how))
        code = proc.wait(timeout=20)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGABRT)   # faulthandler: where it hung
            time.sleep(1)
            proc.kill()
            proc.wait()
    assert code == 0, proc.stderr.read().decode()[-2000:]
