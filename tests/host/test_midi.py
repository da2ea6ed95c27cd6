"""MIDI map, learn and filtering (no MIDI ports here; the JACK MIDI path is in test_jack.py)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from dsp.errors import HostError, ParameterError
from dsp.params import TRACK_NAMES, ConsoleSetting, TrackSetting
from host.control import Control
from host.midi import MidiMap, MidiRouter, load_midi_map, parse_target
from host.ringbuffer import RecordQueue


class Transport:
    def __init__(self):
        self.calls = []

    def play(self):
        self.calls.append("play")

    def stop(self):
        self.calls.append("stop")

    def toggle(self):
        self.calls.append("toggle")


def _router(bindings, queue=None):
    setting = ConsoleSetting(tracks=(TrackSetting("vox", {}), TrackSetting("bass", {})))
    control = Control(["vox", "bass"], setting, queue or RecordQueue(1 << 16))
    m = MidiMap.from_dict({"bindings": bindings})
    return MidiRouter(m, control, Transport()), control


FADER = {"channel": 0, "cc": 7, "target": "track:vox:output_gain_db"}


def test_cc_is_scaled_through_the_table_range_and_scale():
    r, c = _router([FADER, {"channel": 1, "cc": 10, "target": "track:bass:hpf_freq_hz"},
                    {"channel": 0, "cc": 9, "target": "strength"}])
    for value, expect in ((127, 12.0), (0, -60.0)):
        r.feed([0xB0, 7, value])
        r.flush()
        assert c.value("vox", "output_gain_db") == pytest.approx(expect)
    r.feed([0xB1, 10, 64])          # log scale: the middle CC is near the geometric mean
    r.flush()
    assert c.value("bass", "hpf_freq_hz") == pytest.approx(10 * 100 ** (64 / 127), rel=1e-9)
    r.feed([0xB0, 9, 0])
    r.flush()
    assert c.strength == 0.0


def test_flood_of_junk_sysex_and_ccs_reaches_the_queue_as_one_record():
    q = RecordQueue(1 << 16)
    r, c = _router([FADER], q)
    q_before = q.pending()
    rng = np.random.default_rng(1)
    sysex = [0xF0] + [int(x) for x in rng.integers(0, 128, 200)] + [0xF7]
    for i in range(5000):
        r.feed(sysex)                                   # sysex flood
        r.feed([0xF8])                                  # clock
        r.feed([0x90, 60, 100])                         # note on
        r.feed([0xB0, 7, 200])                          # data byte out of range
        r.feed([0xB0, 7])                               # truncated
        r.feed("junk")                                  # not even a list
        r.feed([0xB3, 7, 5])                            # unbound channel
        r.feed([0xB0, 7, i % 128])                      # the real fader, 5000 moves
    assert r.junk == 6 * 5000 and r.unbound == 5000 and r.accepted == 5000
    assert r.flush() == 1
    assert q.pending() - q_before == 1                  # one record for 5000 moves
    rec = np.zeros(3)
    q.pop_into(rec)
    assert int(rec[1]) == TRACK_NAMES.index("output_gain_db")
    assert rec[2] == pytest.approx(-60 + 72 * (4999 % 128) / 127)


def test_buttons_act_on_press_only():
    r, c = _router([{"channel": 0, "cc": 20, "target": "transport:toggle"},
                    {"channel": 0, "cc": 21, "target": "freeze"}])
    for v in (127, 127, 0, 100, 0):
        r.feed([0xB0, 20, v])
    assert r.transport.calls == ["toggle", "toggle"]
    r.feed([0xB0, 21, 127])
    assert c.frozen


def test_learn_binds_the_next_cc():
    r, c = _router([])
    r.learn("master:gain_db")
    assert r.learning
    r.feed([0xB5, 33, 0])
    assert not r.learning and r.map.lookup(5, 33).target == parse_target("master:gain_db")
    r.feed([0xB5, 33, 127])
    r.flush()
    assert c.value(None, "gain_db") == pytest.approx(24.0)
    assert r.map.to_dict()["bindings"] == [{"channel": 5, "cc": 33, "target": "master:gain_db"}]


def test_map_file_round_trip(tmp_path):
    p = tmp_path / "map.json"
    p.write_text(json.dumps({"bindings": [FADER]}))
    m = load_midi_map(str(p))
    assert m.to_dict() == {"bindings": [FADER]}


@pytest.mark.parametrize("binding, error, match", [
    ({"channel": 16, "cc": 7, "target": "strength"}, HostError, r"channel = 16 .*0 \.\. 15"),
    ({"channel": 0, "cc": 128, "target": "strength"}, HostError, r"cc = 128 .*0 \.\. 127"),
    ({"channel": 0, "cc": 1, "target": "fader"}, HostError, "unknown target 'fader'"),
    ({"channel": 0, "cc": 1, "target": "track:vox:volume"}, ParameterError,
     "unknown track parameter 'volume'"),
    ({"channel": 0, "cc": 1, "target": "master:target_lufs"}, ParameterError, "cannot be changed"),
    ({"channel": 0, "cc": 1}, HostError, "expected keys channel, cc, target"),
])
def test_bad_bindings_are_refused_with_their_number(binding, error, match):
    with pytest.raises(error, match=match):
        MidiMap.from_dict({"bindings": [binding]})


def test_bad_map_files_and_unknown_tracks(tmp_path):
    with pytest.raises(HostError, match="cannot read"):
        load_midi_map(str(tmp_path / "none.json"))
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(HostError, match="not valid JSON"):
        load_midi_map(str(tmp_path / "bad.json"))
    with pytest.raises(HostError, match="no track named 'drums'"):
        _router([{"channel": 0, "cc": 1, "target": "track:drums:pan"}])
