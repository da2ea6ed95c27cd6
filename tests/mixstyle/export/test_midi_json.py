"""MIDI CC lanes and JSON export: read back with mido / dsp.params, values round-trip."""

import json
import math

import mido
import numpy as np
import pytest

from dsp import params as P
from dsp.errors import ExportError, ParameterError
from dsp import ccmap
from mixstyle.export.json_export import export_json
from mixstyle.export.midi import export_midi


def random_setting(seed, n_tracks=3, target_lufs=-14.0):
    rng = np.random.default_rng(seed)
    tracks = tuple(P.TrackSetting(f"t{i}", P.denormalise_all(P.TRACK, rng.uniform(0, 1, len(
        P.TRACK_NAMES))), "other") for i in range(n_tracks))
    master = P.denormalise_all(P.MASTER, rng.uniform(0, 1, len(P.MASTER_NAMES)))
    master["target_lufs"] = target_lufs
    return P.ConsoleSetting(tracks=tracks, master=master)


def lanes(mid):
    """{track name: (channel, {cc: [(abs tick, value), ...]})}"""
    out = {}
    for track in mid.tracks[1:]:
        name = next(m.name for m in track if m.type == "track_name")
        tick, ccs, chans = 0, {}, set()
        for m in track:
            tick += m.time
            if m.type == "control_change":
                chans.add(m.channel)
                ccs.setdefault(m.control, []).append((tick, m.value))
        assert len(chans) == 1
        out[name] = (chans.pop(), ccs)
    return out


def test_every_lane_present_and_values_within_one_step(tmp_path):
    setting = random_setting(1)
    path = export_midi(setting, tmp_path / "mix.mid")
    mid = mido.MidiFile(path)
    assert mid.type == 1
    got = lanes(mid)
    assert list(got) == ["t0", "t1", "t2", "master"]
    for i, t in enumerate(setting.tracks):
        channel, ccs = got[t.name]
        assert channel == i
        assert set(ccs) == {ccmap.CC_MAP[(P.TRACK, n)] for n in P.TRACK_NAMES}
        for p in P.TRACK_PARAMS:
            (tick, value), = ccs[ccmap.CC_MAP[(P.TRACK, p.name)]]
            back = ccmap.cc_to_value(p, value)
            assert tick == 0
            assert abs(p.normalise(back) - p.normalise(t.params[p.name])) <= 0.5 / 127 + 1e-12
    channel, ccs = got["master"]
    assert channel == ccmap.MASTER_CHANNEL == 15
    assert set(ccs) == {ccmap.CC_MAP[(P.MASTER, n)] for n in P.MASTER_NAMES}
    p = P.spec(P.MASTER, "target_lufs")
    (_, value), = ccs[ccmap.CC_MAP[(P.MASTER, "target_lufs")]]
    assert abs(ccmap.cc_to_value(p, value) - (-14.0)) <= (p.max - p.min) / 127 / 2 + 1e-9


def test_no_loudness_target_sends_no_target_lane(tmp_path):
    mid = mido.MidiFile(export_midi(random_setting(2, 1, None), tmp_path / "m.mid"))
    _, ccs = lanes(mid)["master"]
    assert ccmap.CC_MAP[(P.MASTER, "target_lufs")] not in ccs
    assert len(ccs) == len(P.MASTER_NAMES) - 1


def test_changes_become_automation_at_their_times(tmp_path):
    a = random_setting(3, 2)
    b_tracks = (P.TrackSetting("t0", {**a.tracks[0].params, "output_gain_db": -40.0}),
                a.tracks[1])
    b = P.ConsoleSetting(tracks=b_tracks, master=a.master)
    mid = mido.MidiFile(export_midi(a, tmp_path / "auto.mid", changes=[(2.5, b)],
                                    tempo_bpm=100.0, ticks_per_beat=960))
    got = lanes(mid)
    fader = ccmap.CC_MAP[(P.TRACK, "output_gain_db")]
    events = got["t0"][1][fader]
    expected_tick = round(mido.second2tick(2.5, 960, mido.bpm2tempo(100.0)))
    # 2.5 s at 100 BPM and 960 ticks per beat
    assert len(events) == 2 and events[1][0] == expected_tick == 4000
    assert events[1][1] == ccmap.value_to_cc(P.spec(P.TRACK, "output_gain_db"), -40.0)
    # nothing else changed: every other lane has exactly its initial event
    assert all(len(ev) == 1 for cc, ev in got["t0"][1].items() if cc != fader)
    assert all(len(ev) == 1 for ev in got["t1"][1].values())


def test_midi_failures(tmp_path):
    with pytest.raises(ExportError, match=r"16 tracks, at most 15 fit"):
        export_midi(random_setting(4, 16), tmp_path / "x.mid")
    a = random_setting(5, 1)
    with pytest.raises(ExportError, match=r"changes\[1\] at 1 s comes before .* 2 s"):
        export_midi(a, tmp_path / "x.mid", changes=[(2.0, a), (1.0, a)])
    other = P.ConsoleSetting(tracks=(P.TrackSetting("zz", {}),))
    with pytest.raises(ExportError, match=r"changes\[0\] has tracks \['zz'\]"):
        export_midi(a, tmp_path / "x.mid", changes=[(1.0, other)])
    with pytest.raises(ParameterError,
                       match=r"tempo_bpm = 1000 is out of range: allowed 20 \.\. 400"):
        export_midi(a, tmp_path / "x.mid", tempo_bpm=1000)
    bad = P.ConsoleSetting(tracks=(P.TrackSetting("v", {"pan": 3.0}),))
    with pytest.raises(ParameterError, match=r"track\.pan \(track 'v'\) = 3 is out of range"):
        export_midi(bad, tmp_path / "x.mid")
    assert not list(tmp_path.iterdir())  # nothing half-written


def test_json_round_trip_and_atomic_failure(tmp_path):
    setting = random_setting(6)
    path = export_json(setting, tmp_path / "s.json", sample_rate_hz=44100)
    data = json.loads(path.read_text())
    assert data["sample_rate_hz"] == 44100.0 and data["format"] == P.FORMAT
    back = P.loads(path.read_text())
    assert P.setting_to_dict(back) == P.setting_to_dict(setting)
    before = path.read_bytes()
    bad = P.ConsoleSetting(tracks=(P.TrackSetting("v", {"comp_ratio": 0.5}),))
    with pytest.raises(ParameterError, match=r"track\.comp_ratio .* allowed 1 \.\. 20"):
        export_json(bad, path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.json"]
    with pytest.raises(ExportError, match="folder .* does not exist"):
        export_json(setting, tmp_path / "missing" / "s.json")
    assert math.isclose(json.loads(export_json(setting, path).read_text())["master"]["target_lufs"],
                        -14.0)
