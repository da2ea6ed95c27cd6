"""Song records carry each stem's loud level (v5); the network's compressor target is the gain
reduction there (mixstyle.train.dynamics), and records written before v5 get theirs measured."""

from __future__ import annotations

import json

import numpy as np
import pytest

from dsp.params import MASTER, TRACK, ConsoleSetting, TrackSetting, setting_to_dict, validate
from mixstyle.errors import ProfileError
from mixstyle.train.dynamics import GAIN_REDUCTION, OFF_DB
from mixstyle.train.features import N_FEATURES
from mixstyle.train.model import I_GR
from mixstyle.train.records import SongRecord, collate, with_loud_levels

SR = 48000.0


def _record(loud_db: list) -> SongRecord:
    tracks = tuple(TrackSetting(n, validate(TRACK, {"input_gain_db": -3.0,
                                                   "comp_threshold_db": -20.0,
                                                   "comp_ratio": 4.0}, n), "bass")
                   for n in ("a", "b"))
    setting = ConsoleSetting(tracks, validate(MASTER, {}, "m"))
    return SongRecord("s", ["a", "b"], ["bass", "bass"], [[0.0] * N_FEATURES] * 2,
                      [0.0] * N_FEATURES, setting_to_dict(setting), {}, [], loud_db=loud_db)


def test_target_is_the_gain_reduction_at_the_staged_loud_level():
    batch = collate([_record([-8.0, None])])
    # staged: -8 - 3 = -11 dBFS, 9 dB over -20 at 4:1 -> 6.75 dB
    assert float(batch.track_u[0, 0, I_GR]) == pytest.approx(GAIN_REDUCTION.normalise(6.75))
    assert float(batch.track_w[0, 0, I_GR]) > 0
    assert float(batch.track_w[0, 1, I_GR]) == 0.0   # silent stem: no target
    # the same stem under its threshold: off
    batch = collate([_record([-25.0, None])])
    assert float(batch.track_u[0, 0, I_GR]) == pytest.approx(GAIN_REDUCTION.normalise(OFF_DB))


def test_record_without_loud_levels_gets_them_from_its_stems():
    rec = _record([])
    data = json.loads(rec.to_json())
    data["version"] = 4
    del data["loud_db"]
    old = SongRecord.from_json(json.dumps(data), "old.json")
    assert old.loud_db == []
    assert float(collate([old]).track_w[0, 0, I_GR]) == 0.0
    t = np.arange(int(SR)) / SR
    stems = np.stack([np.stack([0.5 * np.sin(2 * np.pi * 110 * t)] * 2),
                      np.zeros((2, int(SR)))]).astype(np.float32)
    filled = with_loud_levels(old, stems, SR)
    assert filled.loud_db[0] == pytest.approx(-6.02, abs=0.05)
    assert filled.loud_db[1] is None
    assert SongRecord.from_json(filled.to_json(), "new.json").loud_db == filled.loud_db
    with pytest.raises(ProfileError, match="2 tracks, but the song has 1 stems"):
        with_loud_levels(old, stems[:1], SR)
