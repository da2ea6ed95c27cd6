"""DAWproject export: schema-valid XML, the format's units, audio references, import round trip."""

import math
import os
import zipfile
from pathlib import Path
from xml.etree import ElementTree as ET

import numpy as np
import pytest
from pedalboard.io import AudioFile

from dsp import params as P
from dsp.errors import ExportError
from mixstyle.export.dawproject import export_dawproject, import_dawproject

SHARED = Path(__file__).resolve().parents[3].parent / "shared" / "dawproject"


def write_stem(path, seconds, sr=48000, channels=2):
    t = np.arange(int(seconds * sr)) / sr
    audio = np.tile(0.1 * np.sin(2 * np.pi * 440 * t), (channels, 1)).astype(np.float32)
    with AudioFile(str(path), "w", sr, channels) as f:
        f.write(audio)
    return path


def mixed_setting():
    vox = dict(P.neutral(P.TRACK), input_gain_db=-3.0, hpf_freq_hz=90.0, hpf_q=0.9,
               low_shelf_gain_db=-2.0, peak1_freq_hz=300.0, peak1_gain_db=-4.0, peak1_q=2.0,
               peak2_gain_db=2.5, peak3_freq_hz=5000.0, peak3_gain_db=3.0, peak3_q=0.7,
               high_shelf_gain_db=1.5, lpf_freq_hz=16000.0, comp_threshold_db=-22.0,
               comp_ratio=4.0, comp_attack_ms=3.0, comp_release_ms=120.0, comp_knee_db=4.0,
               comp_makeup_db=5.0, output_gain_db=-6.0, pan=-0.4)
    bass = dict(P.neutral(P.TRACK), pan=0.25, output_gain_db=-60.0)
    master = dict(P.neutral(P.MASTER), peak2_gain_db=-1.0, comp_threshold_db=-10.0,
                  comp_ratio=2.0, gain_db=3.5, limiter_ceiling_db=-1.0,
                  limiter_release_ms=80.0, limiter_lookahead_ms=2.0, target_lufs=-12.0)
    return P.ConsoleSetting(tracks=(P.TrackSetting("vox", vox, "vocals"),
                                    P.TrackSetting("bass", bass, "bass")), master=master)


@pytest.fixture
def stems(tmp_path):
    return [("vox", write_stem(tmp_path / "vox.wav", 0.5)),
            ("bass", write_stem(tmp_path / "bass.wav", 0.25, channels=1))]


def assert_settings_close(a, b):
    da, db = P.setting_to_dict(a), P.setting_to_dict(b)
    assert [t["name"] for t in da["tracks"]] == [t["name"] for t in db["tracks"]]
    for ta, tb in zip(da["tracks"], db["tracks"]):
        assert ta["role"] == tb["role"]
        for k, v in ta["params"].items():
            assert math.isclose(v, tb["params"][k], rel_tol=1e-9, abs_tol=1e-9), (ta["name"], k)
    for k, v in da["master"].items():
        assert (v is None and db["master"][k] is None) or math.isclose(v, db["master"][k],
                                                                        rel_tol=1e-9), k


@pytest.mark.parametrize("embed", [False, True])
def test_schema_valid_and_round_trip(tmp_path, stems, embed):
    xmlschema = pytest.importorskip("xmlschema")
    if not SHARED.is_dir():
        pytest.skip(f"DAWproject schemas not found at {SHARED}")
    setting = mixed_setting()
    out = export_dawproject(setting, stems, tmp_path / "song.dawproject", embed_audio=embed)
    with zipfile.ZipFile(out) as z:
        names = z.namelist()
        xmlschema.XMLSchema(str(SHARED / "Project.xsd")).validate(z.read("project.xml").decode())
        xmlschema.XMLSchema(str(SHARED / "MetaData.xsd")).validate(z.read("metadata.xml").decode())
        if embed:
            assert z.read("audio/vox.wav") == stems[0][1].read_bytes()
            assert z.read("audio/bass.wav") == stems[1][1].read_bytes()
    assert ("audio/vox.wav" in names) == embed
    assert_settings_close(import_dawproject(out), setting)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp left


def read_project(path):
    with zipfile.ZipFile(path) as z:
        return ET.fromstring(z.read("project.xml"))


def test_units_are_the_formats(tmp_path, stems):
    root = read_project(export_dawproject(mixed_setting(), stems, tmp_path / "a.dawproject"))
    vox = next(t for t in root.iter("Track") if t.get("name") == "vox")
    ch = vox.find("Channel")
    vol, pan = ch.find("Volume"), ch.find("Pan")
    assert vol.get("unit") == "linear" and math.isclose(float(vol.get("value")), 10 ** (-6 / 20))
    assert pan.get("unit") == "normalized" and math.isclose(float(pan.get("value")), 0.3)
    comp = ch.find("Devices/Compressor")
    assert comp.find("Ratio").get("unit") == "percent"
    assert math.isclose(float(comp.find("Ratio").get("value")), 75.0)  # 4:1 -> 100*(1-1/4)
    assert comp.find("Attack").get("unit") == "seconds"
    assert math.isclose(float(comp.find("Attack").get("value")), 0.003)
    assert math.isclose(float(comp.find("Threshold").get("value")), -22.0)
    assert math.isclose(float(comp.find("OutputGain").get("value")), 5.0)
    bands = ch.findall("Devices/Equalizer/Band")
    assert [b.get("type") for b in bands] == ["highPass", "lowShelf", "bell", "bell", "bell",
                                              "highShelf", "lowPass"]
    hp = bands[0]
    assert hp.find("Freq").get("unit") == "hertz" and float(hp.find("Freq").get("value")) == 90.0
    assert hp.find("Enabled").get("value") == "true"
    bass = next(t for t in root.iter("Track") if t.get("name") == "bass").find("Channel")
    assert bass.find("Devices/Equalizer/Band/Enabled").get("value") == "false"  # HPF at 10 Hz
    assert bass.find("Devices/Compressor/Enabled").get("value") == "false"      # ratio 1
    master = next(c for c in root.iter("Channel") if c.get("role") == "master")
    lim = master.find("Devices/Limiter")
    assert math.isclose(float(lim.find("Threshold").get("value")), -1.0)
    assert math.isclose(float(lim.find("InputGain").get("value")), 3.5)
    assert math.isclose(float(lim.find("Attack").get("value")), 0.002)
    assert ch.get("destination") == master.get("id")


def test_clips_reference_the_stems(tmp_path, stems):
    inside = tmp_path / "proj"
    inside.mkdir()
    write_stem(inside / "vox.wav", 0.5)
    st = [("vox", inside / "vox.wav"), ("bass", stems[1][1])]
    root = read_project(export_dawproject(mixed_setting(), st, inside / "a.dawproject"))
    clips = {a.find("File").get("path"): (c, a) for c in root.iter("Clip") for a in c.iter("Audio")}
    assert set(clips) == {"vox.wav", stems[1][1].resolve().as_posix()}  # relative / absolute
    clip, audio = clips["vox.wav"]
    assert audio.find("File").get("external") == "true"
    assert float(clip.get("duration")) == 0.5 and float(audio.get("duration")) == 0.5
    assert audio.get("sampleRate") == "48000" and audio.get("channels") == "2"
    assert clips[stems[1][1].resolve().as_posix()][1].get("channels") == "1"


def test_volume_below_fader_range_and_foreign_units(tmp_path):
    xml = b"""<?xml version="1.0"?><Project version="1.0"><Application name="x" version="1"/>
    <Structure><Track name="gtr" id="t1"><Channel role="regular" id="c1"><Devices>
      <Compressor deviceName="C" deviceRole="audioFX"><Ratio unit="normalized" value="0.5"/>
      <Attack unit="seconds" value="0.02"/></Compressor></Devices>
      <Pan unit="linear" value="0.5"/><Volume unit="linear" value="0.0"/></Channel></Track>
    <Track name="Master" id="t2"><Channel role="master" id="c2">
      <Volume unit="decibel" value="-2.5"/></Channel></Track></Structure></Project>"""
    path = tmp_path / "foreign.dawproject"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("project.xml", xml)
    s = import_dawproject(path)
    gtr = s.track("gtr").params
    assert gtr["output_gain_db"] == -60.0  # silence -> the bottom of our fader
    assert math.isclose(gtr["pan"], 0.5) and math.isclose(gtr["comp_ratio"], 2.0)
    assert math.isclose(gtr["comp_attack_ms"], 20.0)
    assert math.isclose(s.master["gain_db"], -2.5)  # no limiter: its master fader


def test_export_failures(tmp_path, stems):
    out = tmp_path / "a.dawproject"
    out.write_bytes(b"old")
    with pytest.raises(ExportError, match=r"stem for 'drums' has no track in the setting"):
        export_dawproject(mixed_setting(), stems + [("drums", stems[0][1])], out)
    with pytest.raises(ExportError, match=r"stem 'gone.wav' of track 'vox' does not exist"):
        export_dawproject(mixed_setting(), [("vox", tmp_path / "gone.wav")], out)
    (tmp_path / "text.wav").write_text("not audio")
    with pytest.raises(ExportError, match=r"stem 'text.wav' of track 'vox': cannot read"):
        export_dawproject(mixed_setting(), [("vox", tmp_path / "text.wav")], out)
    assert out.read_bytes() == b"old"
    with pytest.raises(TypeError, match="ConsoleSetting"):
        export_dawproject({"tracks": []}, stems, out)


def test_import_rejects_values_out_of_range(tmp_path):
    xml = b"""<Project version="1.0"><Application name="x" version="1"/><Structure>
    <Track name="v"><Channel role="regular"><Devices><Equalizer deviceName="E" deviceRole="audioFX">
    <Band type="bell"><Freq unit="hertz" value="5"/><Gain unit="decibel" value="3"/></Band>
    </Equalizer></Devices></Channel></Track></Structure></Project>"""
    path = tmp_path / "bad.dawproject"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("project.xml", xml)
    with pytest.raises(ExportError, match=r"bad.dawproject: track\.peak1_freq_hz .*= 5 is out of "
                                          r"range: allowed 40 \.\. 1000 Hz"):
        import_dawproject(path)
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("project.xml", xml.replace(b'type="bell"', b'type="notch"'))
    with pytest.raises(ExportError, match=r"EQ band 'notch': band type not representable"):
        import_dawproject(path)
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("project.xml", xml.replace(b'version="1.0"', b'version="2.0"'))
    with pytest.raises(ExportError, match=r"version '2.0' not supported"):
        import_dawproject(path)
