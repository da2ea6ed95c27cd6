"""The live host plays at a running JACK server's rate (a client cannot change it) and otherwise
at the stems' own rate; ``--render`` always renders at the stems' rate."""

from __future__ import annotations

import io
import os

import numpy as np
import pytest

from host.jack_server import JackServer, jack_missing_reason
from host.tui import load_stems_dir, playback_rate, run_host, stems_rate
from mixstyle.io.audio import write_audio_atomic


@pytest.fixture
def stems_48k(tmp_path):
    t = np.arange(24000) / 48000.0
    tone = (0.1 * np.sin(2 * np.pi * 440.0 * t)).astype(np.float32)
    write_audio_atomic(tmp_path / "keys.wav", np.stack([tone, tone]), 48000.0)
    return load_stems_dir(str(tmp_path))


def test_without_jack_the_stems_rate(stems_48k):
    from host.io import JACK_API, host_apis
    if JACK_API in host_apis():
        pytest.skip("a JACK server is running here")
    assert stems_rate(stems_48k) == playback_rate(stems_48k) == 48000.0


@pytest.mark.skipif(jack_missing_reason() is not None,
                    reason=f"no JACK here: {jack_missing_reason()}")
def test_with_jack_the_servers_rate(stems_48k):
    from host.io import JACK_API, host_apis, refresh_portaudio, release_portaudio
    srv = JackServer(sample_rate_hz=96000, period_frames=128)
    srv.start()
    try:
        refresh_portaudio()
        if JACK_API not in host_apis():
            pytest.skip(f"PortAudio has no JACK host API here (have {host_apis()})")
        assert playback_rate(stems_48k) == 96000.0
        assert stems_rate(stems_48k) == 48000.0
        # and the live host opens the server at that rate and plays the 48 kHz stems
        screen = io.StringIO()
        status = run_host(os.path.dirname(stems_48k[0].path), out=screen, max_seconds=1.0)
        assert status["blocks"] > 0
        assert "playing at 96000 Hz; stems at 48000 Hz are resampled" in screen.getvalue()
    finally:
        release_portaudio()
        srv.stop()
        refresh_portaudio()
