"""What a profile keeps beside its network about the producer's level: their loudness habit
(``mixstyle.train.loudness``) and learn's calibration of the limiter ceiling, how much lower it
must sit for the console's mixes of peak-normalising producers to be as loud as theirs
(``Profile.predict`` applies both, the offset times the strength). ``level_meta`` makes both.
"""

from __future__ import annotations

import math
from typing import Mapping

import numpy as np

from dsp.loudness import integrated_loudness
from mixstyle.profile.novelty import novelty_meta
from mixstyle.profile.predict import Profile, predict_song
from mixstyle.sessions.load import Song
from mixstyle.train.balance import mix_predicted
from mixstyle.train.features import SongFeatures
from mixstyle.train.loudness import LoudnessHabit, habit_from_records
from mixstyle.train.model import MixNet
from mixstyle.train.records import SongRecord

CALIBRATE_MIN_SONGS = 3


def level_meta(model: MixNet, records: list[SongRecord], songs: list[Song],
               features: Mapping[str, SongFeatures] | None = None) -> dict:
    """The profile metadata about level: ``loudness_habit`` (read off ``records``),
    ``ceiling_offset_db`` (calibrated on ``songs`` with the habit applied; 0 for a producer who
    limits or clips: they reach their aim through the limiter, not by the ceiling) and
    ``novelty`` (``mixstyle.profile.novelty``: the training tracks and the typical levels) and
    ``sum_offset_lu`` (``sum_offset``)."""
    habit = habit_from_records(records)
    meta: dict = {"loudness_habit": habit.to_dict() if habit is not None else None}
    limits = habit is not None and habit.mechanism in ("limiter", "clipper")
    meta["ceiling_offset_db"] = 0.0 if limits else calibrate_ceiling(model, songs, features,
                                                                     habit)
    meta["novelty"] = novelty_meta(records, model.feat_mean.numpy(), model.feat_std.numpy())
    meta["sum_offset_lu"] = sum_offset(songs)
    return meta


def sum_offset(songs: list[Song]) -> float | None:
    """The producer's median loudness of their mix over that of the plain sum of its stems
    (LU): where their loudness follows the stems' own sum (no normalising, a fixed master gain),
    a new song's mix is its plain sum's loudness plus this (``Profile.predict`` with
    ``loudness_source`` "sum"). None with fewer than ``CALIBRATE_MIN_SONGS`` songs."""
    diffs = []
    for song in songs:
        theirs = integrated_loudness(song.mix, song.sample_rate)
        plain = integrated_loudness(np.sum([s.audio for s in song.stems], axis=0)
                                    .astype(np.float32), song.sample_rate)
        if math.isfinite(theirs) and math.isfinite(plain):
            diffs.append(theirs - plain)
    if len(diffs) < CALIBRATE_MIN_SONGS:
        return None
    return round(float(np.median(diffs)), 3)


def calibrate_ceiling(model: MixNet, songs: list[Song],
                      features: Mapping[str, SongFeatures] | None = None,
                      habit: LoudnessHabit | None = None) -> float:
    """How much lower (dB) the limiter ceiling must sit for this console's mixes to be as loud
    as the producer's where the peak decided the level.

    A producer who normalises to a peak makes a mix whose loudness is its peak minus its crest
    factor, and our renders are not exactly as peaky as theirs (other compressors, other
    transients). Each training song is mixed by the trained network; where the render stopped
    at the ceiling, the loudness difference to the producer's mix is noted; the median is the
    offset (0 when fewer than three songs were peak-bound). ``features``: song name -> the
    features already measured on its stems.
    """
    prof = Profile(model, {"loudness_habit": habit.to_dict() if habit is not None else None})
    features = features or {}
    diffs = []
    for song in songs:
        memo: dict = {}
        setting = predict_song(prof, song, features=features.get(song.name), memo=memo)
        target = setting.master.get("target_lufs")
        if target is None:
            continue
        got = mix_predicted([s.audio for s in song.stems], song.sample_rate, setting,
                            memo).loudness_lufs
        theirs = integrated_loudness(song.mix, song.sample_rate)
        if math.isfinite(got) and math.isfinite(theirs) and got < target - 0.05:
            diffs.append(theirs - got)
    if len(diffs) < CALIBRATE_MIN_SONGS:
        return 0.0
    return round(float(np.clip(np.median(diffs), -6.0, 3.0)), 3)
