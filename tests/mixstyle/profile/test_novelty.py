"""Know what the profile does not know (mixstyle.profile.novelty): a track like the training
tracks keeps its prediction, one unlike all of them moves toward the producer's safe habit."""

from __future__ import annotations

import numpy as np
import pytest

from dsp.params import MASTER, TRACK, ConsoleSetting, TrackSetting, setting_to_dict, validate
from mixstyle.profile.novelty import novelty_meta, shrink, typical_level, widest_pan
from mixstyle.train.features import N_FEATURES
from mixstyle.train.records import SongRecord


def _records(n_songs: int = 6, seed: int = 0) -> list[SongRecord]:
    rng = np.random.default_rng(seed)
    centres = {"bass": rng.normal(size=N_FEATURES), "vocals": rng.normal(size=N_FEATURES)}
    levels = {"bass": -6.0, "vocals": -3.0}
    out = []
    for k in range(n_songs):
        roles = ["bass", "vocals"]
        feats = [(centres[r] + 0.1 * rng.normal(size=N_FEATURES)).tolist() for r in roles]
        pans = {"bass": 0.0, "vocals": 0.1 * (k % 3)}
        setting = ConsoleSetting(tuple(TrackSetting(r, validate(TRACK, {"pan": -pans[r]}))
                                       for r in roles), validate(MASTER, {}))
        out.append(SongRecord(f"s{k}", roles, roles, feats, [0.0] * N_FEATURES,
                              setting_to_dict(setting), {}, [],
                              [levels[r] + 0.2 * k for r in roles], -20.0))
    return out


def test_known_tracks_keep_their_prediction_and_strangers_move_to_the_habit():
    recs = _records()
    mean, std = np.zeros(N_FEATURES), np.ones(N_FEATURES)
    meta = novelty_meta(recs, mean, std)
    assert meta["radius"] > 0
    like = np.asarray(recs[0].features[0]) + 0.05
    far = np.asarray(recs[0].features[0]) + 5.0
    got = shrink(meta, [like, far], mean, std)
    assert got[0] == 0.0 and got[1] == 1.0
    assert typical_level(meta, "bass") == pytest.approx(np.median([-6.0 + 0.2 * k
                                                                   for k in range(6)]))
    assert typical_level(meta, "keys") == meta["typical_level_any_lu"]


def test_level_features_do_not_make_a_track_new():
    recs = _records()
    mean, std = np.zeros(N_FEATURES), np.ones(N_FEATURES)
    meta = novelty_meta(recs, mean, std)
    louder = np.asarray(recs[1].features[1]).copy()
    louder[:2] += 40.0          # loudness and peak: the same part recorded hotter
    assert shrink(meta, [louder], mean, std)[0] == 0.0


def test_without_novelty_data_nothing_moves():
    assert novelty_meta(_records(2), np.zeros(N_FEATURES), np.ones(N_FEATURES)) is None
    assert shrink(None, [np.zeros(N_FEATURES)], np.zeros(N_FEATURES),
                  np.ones(N_FEATURES)).tolist() == [0.0]


def test_no_track_is_panned_wider_than_the_producer_ever_did():
    meta = novelty_meta(_records(), np.zeros(N_FEATURES), np.ones(N_FEATURES))
    assert widest_pan(meta, "bass") == 0.0
    assert widest_pan(meta, "vocals") == pytest.approx(0.2)
    assert widest_pan(meta, "guitar") == pytest.approx(0.2)   # unseen role: their widest
    assert widest_pan(None, "guitar") == 1.0
