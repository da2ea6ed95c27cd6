"""What corrections teach (mixstyle.train.corrections): per role the weighted median of the
corrected tracks against the network, n/(n+1) of it; applied by Profile.predict."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mixstyle.errors import ProfileError
from mixstyle.profile.predict import corrected
from mixstyle.train.corrections import _weighted_median, describe, network_records
from mixstyle.train.model import MASTER_TARGETS, TRACK_TARGETS
from mixstyle.train.records import SongRecord


def _rec(name, source):
    return SongRecord(name, [], [], [], [], {}, {}, [], source=source)


def test_a_one_off_correction_is_not_a_habit():
    # four songs raised the vocal by 0.1 of the range, one lowered it a lot: the median stays
    values = np.array([0.1, 0.1, 0.1, 0.1, -0.6])
    assert _weighted_median(values, np.ones(5)) == pytest.approx(0.1)
    # a band's frequency counts only where the band does something (its target weight)
    assert _weighted_median(np.array([0.3, -0.2, -0.2]), np.array([1.0, 0.05, 0.05])) == 0.3


def test_the_network_learns_from_the_mixes_unless_there_are_none():
    recs = [_rec("a", "fit"), _rec("b", "correction"), _rec("c", "fit")]
    assert [r.song for r in network_records(recs)] == ["a", "c"]
    only = [_rec("b", "correction")]
    assert network_records(only) == only


def test_offsets_are_added_per_role_and_clamped():
    level = [p.name for p in TRACK_TARGETS].index("level_lu")
    offsets = {"track_targets": [p.name for p in TRACK_TARGETS],
               "master_targets": [p.name for p in MASTER_TARGETS],
               "track": {"vocals": [0.0] * level + [0.05] + [0.0] * (len(TRACK_TARGETS) - level - 1)},
               "master": [0.0] * len(MASTER_TARGETS), "songs": ["x"],
               "songs_per_role": {"vocals": 1}}
    tu = torch.full((1, 2, len(TRACK_TARGETS)), 0.5)
    tu[0, 0, level] = 0.98
    mu = torch.full((1, len(MASTER_TARGETS)), 0.5)
    t2, m2 = corrected(offsets, ["vocals", "bass"], tu, mu)
    assert float(t2[0, 0, level]) == 1.0                 # clamped to the range
    assert torch.equal(t2[0, 1], tu[0, 1]) and torch.equal(m2, mu)   # bass: no offsets
    assert float(tu[0, 0, level]) == pytest.approx(0.98)  # the network's output is not changed
    assert describe(offsets) == ["vocals (1 songs): level_lu +2.80 LU"]   # 0.05 of 56 LU
    with pytest.raises(ProfileError, match="learn the profile again"):
        corrected(dict(offsets, track_targets=["x"]), ["vocals"], tu, mu)



def _noise_features(seed: int, below_hz: float | None = None) -> np.ndarray:
    """The feature vector of 3 s of stereo noise, white or with nothing above ``below_hz``."""
    from mixstyle.train.features import stem_features
    rng = np.random.default_rng(seed)
    spec = np.fft.rfft(rng.standard_normal((2, 44100 * 3)), axis=1)
    if below_hz is not None:
        spec[:, np.fft.rfftfreq(44100 * 3, 1 / 44100.0) > below_hz] = 0.0
    x = np.fft.irfft(spec, axis=1)
    return stem_features((0.1 * x / np.abs(x).max()).astype(np.float32), 44100.0).vector


def test_an_eq_change_makes_the_loudness_its_spectrum_says():
    """A corrected track's level residual is taken without its EQ change's loudness: a 300 Hz
    cut takes more from a stem that lives there than from a bright one; the same EQ on both
    sides makes nothing."""
    from mixstyle.train.corrections import eq_loudness_change_db
    white, low = _noise_features(1), _noise_features(2, below_hz=500.0)
    flat = {"peak1_gain_db": 0.0, "peak1_freq_hz": 300.0, "peak1_q": 1.0}
    cut = dict(flat, peak1_gain_db=-3.0)
    assert eq_loudness_change_db(white, flat, flat) == 0.0
    low_cut, white_cut = eq_loudness_change_db(low, flat, cut), eq_loudness_change_db(white,
                                                                                      flat, cut)
    assert -3.0 < low_cut < -1.0, low_cut
    assert -0.3 < white_cut < 0.0, white_cut


def test_an_eq_change_through_the_strip_keeps_what_the_compressor_takes_back():
    """Through a strip without compression the measured loudness of a 300 Hz cut is what the
    band spectrum says; through a compressor holding the stem down, a smaller part of it."""
    from dsp.params import TRACK, validate
    from mixstyle.train.corrections import eq_loudness_change_db, eq_loudness_through_strip
    from mixstyle.train.features import stem_features
    rng = np.random.default_rng(5)
    spec = np.fft.rfft(rng.standard_normal((2, 44100 * 3)), axis=1)
    spec[:, np.fft.rfftfreq(44100 * 3, 1 / 44100.0) > 600.0] = 0.0
    x = np.fft.irfft(spec, axis=1)
    stem = (0.3 * x / np.abs(x).max()).astype(np.float32)
    flat = {"peak1_gain_db": 0.0, "peak1_freq_hz": 300.0, "peak1_q": 1.0}
    cut = validate(TRACK, dict(flat, peak1_gain_db=-6.0))
    squashed = validate(TRACK, dict(cut, comp_threshold_db=-40.0, comp_ratio=8.0))
    spectrum = eq_loudness_change_db(stem_features(stem, 44100.0).vector, flat, cut)
    plain = eq_loudness_through_strip(stem, 44100.0, flat, cut)
    held = eq_loudness_through_strip(stem, 44100.0, flat, squashed)
    assert plain < -2.0 and abs(plain - spectrum) < 0.5, (plain, spectrum)
    assert 0.5 * plain < held < 0.0, (plain, held)   # less than half of it is left


def test_a_correction_band_makes_room_where_two_bands_do_one_job():
    """A bass strip with a narrow +4.8 dB at 162 Hz and two broad boosts at 2.5 and 2.3 kHz (no
    peak band free; seen on a new song of the corrections bench): the taught -2.6 dB at 307 Hz
    goes into the 2.5 kHz band once its boost is handed to the 2.3 kHz one, so the strip's
    response at 307 Hz moves by the correction. Before, the best of replacing a band or adding
    the gain to one moved it by -0.25 dB (the narrow band at 162 Hz took it)."""
    from dsp.eq import eq_curve_db
    from dsp.params import TRACK, neutral
    from mixstyle.profile.predict import place_band
    values = dict(neutral(TRACK), peak1_freq_hz=162.0, peak1_gain_db=4.8, peak1_q=2.4,
                  peak2_freq_hz=2506.0, peak2_gain_db=2.75, peak2_q=0.6,
                  peak3_freq_hz=2297.0, peak3_gain_db=1.1, peak3_q=0.57)
    before = dict(values)
    place_band(values, {"freq_hz": 307.0, "gain_db": -2.6, "q": 1.0})
    at = np.array([307.0, 2400.0])
    moved = eq_curve_db(TRACK, values, at, 44100.0) - eq_curve_db(TRACK, before, at, 44100.0)
    assert moved[0] == pytest.approx(-2.6, abs=0.3), values
    assert abs(moved[1]) <= 0.5, values      # the boosts up top stay where they were
    assert values["peak1_gain_db"] == 4.8    # the narrow band keeps its job
