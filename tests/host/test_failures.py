"""Bad input to the host: each refusal names what was wrong and what is allowed."""

from __future__ import annotations

import numpy as np
import pytest

from dsp.errors import HostError, ParameterError
from dsp.params import ConsoleSetting, TrackSetting
from host.control import Control
from host.engine import Engine, EngineConfig
from host.jack_server import JackServer, jack_missing_reason
from host.midi import MidiMap, MidiRouter, open_midi_input
from host.plugins import InsertChain, load_insert
from host.reader import TrackSource
from host.ringbuffer import RecordQueue

SR = 48000


def _control():
    return Control(["a"], ConsoleSetting(tracks=(TrackSetting("a", {}),)), RecordQueue())


@pytest.mark.skipif(jack_missing_reason() is not None, reason=f"{jack_missing_reason()}")
def test_jack_server_that_cannot_start_says_why():
    with pytest.raises(HostError, match="jackd exited at start"):
        JackServer(driver="no_such_driver", start_timeout_s=5).start()


def test_engine_config_ranges():
    with pytest.raises(HostError, match=r"readahead_s = 0.001 is out of range: allowed 0.05"):
        EngineConfig(readahead_s=0.001)
    with pytest.raises(HostError, match=r"block_frames = 128.0 .*integers 16 .. 8192"):
        EngineConfig(block_frames=128.0)
    with pytest.raises(Exception, match="sample_rate = 1000"):
        EngineConfig(sample_rate_hz=1000)
    with pytest.raises(HostError, match="at least one track"):
        Engine([])


def test_loop_and_seek_arguments():
    eng = Engine([TrackSource("a", audio=np.zeros((2, SR), np.float32))])
    with pytest.raises(ParameterError, match="loop end = 5 s is out of range: allowed 0 .. 1.000"):
        eng.set_loop(0.5, 5)
    with pytest.raises(ParameterError, match="seek position = -1"):
        eng.seek(-1)
    with pytest.raises(ParameterError, match="seek position = 'x'"):
        eng.seek("x")


def test_audio_device_not_found():
    from host.io import find_output_device
    with pytest.raises(HostError, match="host API 'Nope' not available"):
        find_output_device(None, "Nope")
    with pytest.raises(HostError, match="no stereo output device matching 'zzz-no-device'"):
        find_output_device("zzz-no-device", None)


def test_plugin_and_chain_arguments():
    with pytest.raises(HostError, match="insert mode must be 'auto', 'stereo' or 'dual-mono'"):
        load_insert("ZamEQ2", SR, 128, mode="quad")
    with pytest.raises(HostError, match="insert index 3 out of range: this bus has 0"):
        InsertChain().remove(3)


def test_midi_arguments():
    with pytest.raises(HostError, match="MIDI api must be one of"):
        open_midi_input(api="coreaudio")
    router = MidiRouter(MidiMap(), _control(), transport=None)
    with pytest.raises(ParameterError, match="no track named 'b'"):
        router.learn("track:b:pan")
    with pytest.raises(HostError, match=r"MIDI channel = 16 .*0 .. 15"):
        MidiMap().bind(16, 1, "strength")
