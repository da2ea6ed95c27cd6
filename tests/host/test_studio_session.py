"""A studio session saved from page messages opens again exactly: rendered offline by the studio
engine, by `mixstyle host --session FILE --render` and by a reopened studio (<= -90 dB apart).
`mixstyle host --insert TRACK=PLUGIN[:PRESET]`: plugins with presets, clear errors."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from pedalboard.io import AudioFile

from host.engine import Engine, EngineConfig
from host.offline import render_engine
from host.reader import TrackSource
from host.session import load_session, open_session
from host.studio.run import prepare
from mixstyle.cli import main

SR = 48000
HAVE_ZAM = os.path.exists("/usr/lib/vst3/ZamEQ2.vst3") and \
    os.path.exists("/usr/lib/vst3/ZamCompX2.vst3")
pytestmark = pytest.mark.skipif(not HAVE_ZAM, reason="zam-plugins VST3 (Debian package "
                                "zam-plugins) not installed in /usr/lib/vst3")
NAMES = ("bass", "keys", "vox")


def _write(path, audio):
    with AudioFile(str(path), "w", SR, 2, bit_depth=32) as f:
        f.write(np.asarray(audio, dtype=np.float32))


def _read(path):
    with AudioFile(str(path)) as f:
        return f.read(f.frames)


def _db(x):
    return 20 * np.log10(np.max(np.abs(x)) + 1e-30)


@pytest.fixture
def song(tmp_path, make_stems):
    stems = make_stems(11, seconds=1.5, n_stems=3, sample_rate=SR)
    folder = tmp_path / "song"
    (folder / "stems").mkdir(parents=True)
    for name, s in zip(NAMES, stems):
        _write(folder / "stems" / f"{name}.wav", s)
    return folder


def _engine(folder):
    return Engine([TrackSource(n, path=str(folder / "stems" / f"{n}.wav")) for n in NAMES],
                  None, EngineConfig(SR, 128))


def test_save_and_reopen_in_host_and_studio_render_the_same(song, tmp_path):
    svc = prepare(_engine(song), str(song), str(song / "stems"))
    for msg in ({"type": "set", "target": "track:vox:output_gain_db", "value": 3.5},
                {"type": "set", "target": "track:bass:peak1_gain_db", "value": -4.0},
                {"type": "set", "target": "master:comp_ratio", "value": 3.0},
                {"type": "set", "target": "master:comp_threshold_db", "value": -20.0},
                {"type": "strength", "value": 0.7},
                {"type": "mute", "track": "keys", "on": True},
                {"type": "insert_add", "where": "track:vox", "plugin": "ZamCompX2"},
                {"type": "insert_param", "where": "track:vox", "index": 0,
                 "name": "threshold_db", "value": -30.0},
                {"type": "insert_add", "where": "master", "plugin": "ZamEQ2"},
                {"type": "insert_param", "where": "master", "index": 0,
                 "name": "boost_cut_2_db", "value": 5.0},
                {"type": "save"}):
        replies = svc.handle(msg)
        assert not [r for r in replies if r.get("level") == "error"], replies
    path = song / "studio_session.json"
    saved = json.loads(path.read_text())
    assert saved["mute"] == ["keys"] and saved["overrides"]["master:comp_ratio"] == 3.0
    svc.engine.settle()
    studio_out = render_engine(svc.engine)

    out = tmp_path / "host.wav"
    assert main(["host", "--session", str(path), "--render", str(out)]) == 0
    host_out = _read(out)
    assert host_out.shape == studio_out.shape
    assert _db(studio_out) > -30.0                     # a real mix, not silence
    assert _db(host_out - studio_out) <= -90.0

    eng2, midi = open_session(load_session(str(path)))  # what `mixstyle studio --session` does
    svc2 = prepare(eng2, str(song), str(song / "stems"), midi_map=midi,
                   session_path=str(path))
    h = svc2.hello()
    assert h["mute"] == ["keys"] and h["strength"] == 0.7
    assert [i["name"] for i in h["inserts"]["track:vox"]] == ["ZamCompX2"]
    assert h["overrides"]["track:vox:output_gain_db"] == 3.5
    assert _db(render_engine(eng2) - studio_out) <= -90.0


def test_a_version_1_session_still_opens(song, tmp_path):
    svc = prepare(_engine(song), str(song), str(song / "stems"))
    svc.handle({"type": "save"})
    data = json.loads((song / "studio_session.json").read_text())
    del data["mute"], data["solo"]
    data["version"] = 1
    old = tmp_path / "v1.json"
    old.write_text(json.dumps(data))
    assert load_session(str(old)).mute == ()


def test_host_insert_with_a_state_file_preset_and_its_errors(song, tmp_path, capsys):
    from host.plugins import load_insert
    eq = load_insert("ZamEQ2", SR, 128, parameters={"boost_cut_2_db": -6.0,
                                                    "frequency_2_hz": 2000.0})
    state = tmp_path / "eq.state"
    state.write_bytes(eq.states()[0])
    plain = tmp_path / "plain.wav"
    with_eq = tmp_path / "eq.wav"
    stems = str(song / "stems")
    assert main(["host", stems, "--render", str(plain)]) == 0
    assert main(["host", stems, "--render", str(with_eq),
                 "--insert", f"master=ZamEQ2:{state}"]) == 0
    # the same as the engine with that EQ set by hand
    eng = _engine(song)
    ins = eng.add_insert("master", "ZamEQ2", {"boost_cut_2_db": -6.0, "frequency_2_hz": 2000.0})
    assert ins.mode == "dual-mono"
    ref = render_engine(eng)
    got = _read(with_eq)
    assert _db(got - ref) <= -90.0 and _db(got - _read(plain)) > -40.0

    capsys.readouterr()
    assert main(["host", stems, "--render", str(tmp_path / "x.wav"),
                 "--insert", "drums=ZamEQ2"]) == 2
    err = capsys.readouterr().err
    assert "--insert 'drums=ZamEQ2'" in err and "no track named 'drums'" in err
    assert main(["host", stems, "--render", str(tmp_path / "x.wav"),
                 "--insert", "vox=NoSuchPlugin"]) == 2
    assert "'NoSuchPlugin' not found" in capsys.readouterr().err
    assert main(["host", stems, "--render", str(tmp_path / "x.wav"),
                 "--insert", "vox"]) == 2
    assert "expected TRACK=PLUGIN[:PRESET]" in capsys.readouterr().err
    assert main(["host", stems, "--render", str(tmp_path / "x.wav"),
                 "--insert", f"vox=ZamEQ2:{tmp_path / 'none.vstpreset'}"]) == 2
    assert "file not found" in capsys.readouterr().err
    assert not (tmp_path / "x.wav").exists()
