"""Session files: save -> open gives the same console, overrides, MIDI map and plugin states;
writes are atomic; broken files are refused with the file and the key named."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from pedalboard.io import AudioFile

from dsp.errors import HostError
from dsp.params import ConsoleSetting, TrackSetting
from host.engine import Engine, EngineConfig
from host.midi import MidiMap
from host.offline import render_engine
from host.reader import TrackSource
from host.session import capture, load_session, open_session, save_session

SR = 48000
HAVE_ZAM = os.path.exists("/usr/lib/vst3/ZamCompX2.vst3")


def _stems_on_disk(tmp_path, make_stems):
    stems = make_stems(7, seconds=1.0, n_stems=2, sample_rate=SR)
    paths = []
    for i, s in enumerate(stems):
        p = str(tmp_path / f"s{i}.wav")
        with AudioFile(p, "w", SR, 2, bit_depth=32) as f:
            f.write(s)
        paths.append(p)
    return paths


def _engine(paths):
    setting = ConsoleSetting(tracks=(TrackSetting("kick", {"output_gain_db": -4.0}, "drums"),
                                     TrackSetting("vox", {"hpf_freq_hz": 120.0}, "vocals")),
                             master={"gain_db": 1.5})
    return Engine([TrackSource("kick", path=paths[0], role="drums"),
                   TrackSource("vox", path=paths[1], role="vocals")], setting,
                  EngineConfig(SR, 128))


def test_save_and_open_give_the_same_mix(tmp_path, make_stems):
    paths = _stems_on_disk(tmp_path, make_stems)
    eng = _engine(paths)
    eng.control.set_strength(0.8)
    eng.control.set_override("vox", "pan", -0.25)
    eng.control.freeze()
    eng.set_loop(0.25, 0.75)
    midi = MidiMap.from_dict({"bindings": [{"channel": 2, "cc": 7, "target": "track:vox:pan"}]})
    if HAVE_ZAM:
        eng.add_insert("vox", "ZamCompX2", {"threshold_db": -24.0, "ratio": 3.0})
    path = str(tmp_path / "live.json")
    save_session(path, capture(eng, midi))
    assert [f for f in os.listdir(tmp_path) if f.endswith(".tmp")] == []  # no leftovers
    eng.settle()
    before = render_engine(eng, seconds=0.4)
    eng.close()

    loaded = load_session(path)
    assert loaded.overrides == {"track:vox:pan": -0.25} and loaded.frozen
    assert loaded.loop_s == (0.25, 0.75) and loaded.strength == 0.8
    eng2, midi2 = open_session(loaded)
    assert midi2.to_dict() == midi.to_dict()
    assert eng2.control.value("vox", "pan") == -0.25
    assert eng2.control.value("kick", "output_gain_db") == pytest.approx(-3.2)  # 0.8 * -4
    if HAVE_ZAM:
        ins = eng2.track_inserts[1].inserts[0]
        assert ins.parameters()["threshold_db"] == pytest.approx(-24.0, abs=0.05)
    after = render_engine(eng2, seconds=0.4)
    eng2.close()
    assert 20 * np.log10(np.max(np.abs(after - before)) + 1e-30) <= -90.0


def test_atomic_write_keeps_the_old_file_when_saving_fails(tmp_path, make_stems):
    paths = _stems_on_disk(tmp_path, make_stems)
    eng = _engine(paths)
    path = str(tmp_path / "s.json")
    save_session(path, capture(eng))
    old = open(path).read()
    bad = capture(eng)
    object.__setattr__(bad, "midi_map", {"bindings": [object()]})   # not JSON-serialisable
    with pytest.raises(TypeError):
        save_session(path, bad)
    assert open(path).read() == old
    assert sorted(os.listdir(tmp_path)) == ["s.json", "s0.wav", "s1.wav"]
    eng.close()


def test_memory_tracks_cannot_be_saved(make_stems):
    stems = make_stems(1, seconds=0.2, n_stems=1, sample_rate=SR)
    eng = Engine([TrackSource("a", audio=stems[0])])
    with pytest.raises(HostError, match="track 'a' was loaded from memory"):
        capture(eng)


@pytest.mark.parametrize("edit, match", [
    (lambda d: d.update(format="x"), "'format' must be 'mixstyle.host_session'"),
    (lambda d: d.update(version=9), "unsupported version 9"),
    (lambda d: d.update(extra=1), r"unknown keys \['extra'\]"),
    (lambda d: d.update(strength=3.0), "strength = 3.0 is out of range"),
    (lambda d: d.update(overrides={"track:vox:pan": "left"}), "'overrides' must map"),
    (lambda d: d.update(inserts={"bus": []}), "'bus' is neither 'master' nor"),
    (lambda d: d["setting"].update(master={"gain_db": 99}), r"master.gain_db .*out of range"),
])
def test_broken_session_files_are_refused(tmp_path, make_stems, edit, match):
    paths = _stems_on_disk(tmp_path, make_stems)
    eng = _engine(paths)
    data = capture(eng).to_dict()
    eng.close()
    edit(data)
    p = tmp_path / "bad.json"
    p.write_text(json.dumps(data))
    with pytest.raises(Exception, match=match) as e:
        load_session(str(p))
    assert "bad.json" in str(e.value) or "master.gain_db" in str(e.value)
