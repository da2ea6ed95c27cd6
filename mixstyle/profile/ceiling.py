"""Learn's calibration of the limiter ceiling: how much lower it must sit for the console's
mixes of peak-normalising producers to be as loud as theirs (``Profile.predict`` applies the
offset, times the strength, from the profile's ``ceiling_offset_db``).
"""

from __future__ import annotations

import math
from typing import Mapping

import numpy as np

from dsp.loudness import integrated_loudness
from dsp.render import render
from mixstyle.profile.predict import Profile, predict_song
from mixstyle.sessions.load import Song
from mixstyle.train.features import SongFeatures
from mixstyle.train.model import MixNet

CALIBRATE_MIN_SONGS = 3


def calibrate_ceiling(model: MixNet, songs: list[Song],
                      features: Mapping[str, SongFeatures] | None = None) -> float:
    """How much lower (dB) the limiter ceiling must sit for this console's mixes to be as loud
    as the producer's where the peak decided the level.

    A producer who normalises to a peak makes a mix whose loudness is its peak minus its crest
    factor, and our renders are not exactly as peaky as theirs (other compressors, other
    transients). Each training song is mixed by the trained network; where the render stopped
    at the ceiling, the loudness difference to the producer's mix is noted; the median is the
    offset (0 when fewer than three songs were peak-bound). ``features``: song name -> the
    features already measured on its stems.
    """
    prof = Profile(model, {})
    features = features or {}
    diffs = []
    for song in songs:
        setting = predict_song(prof, song, features=features.get(song.name))
        target = setting.master.get("target_lufs")
        if target is None:
            continue
        stems = np.stack([s.audio for s in song.stems])
        got = render(stems, song.sample_rate, setting).loudness_lufs
        theirs = integrated_loudness(song.mix, song.sample_rate)
        if math.isfinite(got) and math.isfinite(theirs) and got < target - 0.05:
            diffs.append(theirs - got)
    if len(diffs) < CALIBRATE_MIN_SONGS:
        return 0.0
    return round(float(np.clip(np.median(diffs), -6.0, 3.0)), 3)
