"""The export() dispatcher: every format by name, clear errors, never overwrites an input."""

import json
import zipfile

import mido
import numpy as np
import pytest
from pedalboard.io import AudioFile

from dsp import params as P
from dsp.errors import ExportError
from mixstyle.export import FORMATS, export


@pytest.fixture
def song(tmp_path):
    path = tmp_path / "vox.wav"
    with AudioFile(str(path), "w", 44100, 2) as f:
        f.write(np.zeros((2, 4410), np.float32))
    setting = P.ConsoleSetting(tracks=(P.TrackSetting("vox", dict(P.neutral(P.TRACK),
                                                                  pan=0.5)),))
    return setting, [("vox", path)]


def test_every_format_by_name(tmp_path, song):
    setting, stems = song
    assert FORMATS == ("dawproject", "vstpreset", "midi", "json")
    with zipfile.ZipFile(export(setting, stems, "dawproject", tmp_path / "a.dawproject")) as z:
        assert {"project.xml", "metadata.xml"} <= set(z.namelist())
    (tmp_path / "presets").mkdir()
    presets = export(setting, stems, "vstpreset", tmp_path / "presets", sample_rate_hz=44100)
    assert len(presets.files) == 11 and presets.readme.is_file()   # + the master's ZaMaximX2
    mid = mido.MidiFile(export(setting, stems, "MIDI", tmp_path / "a.mid"))
    assert [t.name for t in mid.tracks] == ["mixstyle console", "vox", "master"]
    data = json.loads(export(setting, stems, "json", tmp_path / "a.json",
                             sample_rate_hz=44100).read_text())
    assert data["sample_rate_hz"] == 44100.0 and data["tracks"][0]["params"]["pan"] == 0.5


def test_unknown_format(tmp_path, song):
    with pytest.raises(ExportError, match=r"unknown export format 'wav'; known: dawproject, "
                                          r"vstpreset, midi, json"):
        export(song[0], song[1], "wav", tmp_path / "x.wav")


@pytest.mark.parametrize("fmt", ["dawproject", "midi", "json"])
def test_refuses_to_overwrite_a_stem(tmp_path, song, fmt):
    setting, stems = song
    before = stems[0][1].read_bytes()
    with pytest.raises(ExportError, match=rf"refusing to export {fmt} to .*vox.wav: it is the "
                                          r"input stem 'vox.wav' and would be overwritten"):
        export(setting, stems, fmt, tmp_path / "sub" / ".." / "vox.wav")
    assert stems[0][1].read_bytes() == before


def test_existing_output_that_is_not_an_input_is_replaced(tmp_path, song):
    out = tmp_path / "a.json"
    out.write_text("old")
    export(song[0], song[1], "json", out)
    assert json.loads(out.read_text())["format"] == P.FORMAT
