"""The producer's loudness habit read off their mixes (mixstyle.train.loudness): the mechanism
(headroom, peak, limiter, clipper), the aim, the ceiling and the limiting a new song may get."""

from __future__ import annotations

import pytest

from dsp.params import MASTER, TRACK, ConsoleSetting, TrackSetting, setting_to_dict, validate
from mixstyle.fit.bus import BusPrint
from mixstyle.train.loudness import LoudnessHabit, habit_from_records, with_habit
from mixstyle.train.records import SongRecord


def _record(name: str, loud: float, peak: float, limiting: float = 0.0, clips: float = 0.0,
            release: float | None = None, tp: float | None = None) -> SongRecord:
    setting = ConsoleSetting((TrackSetting("a", validate(TRACK, {}, "t")),),
                             validate(MASTER, {"target_lufs": loud, "limiter_ceiling_db": peak},
                                      "m"))
    tp = peak + 0.2 if tp is None else tp
    bp = BusPrint(loud, peak, tp, tp - loud, peak - loud + 3, tp - loud + limiting, limiting,
                  clips, release if limiting >= 1.0 else None)
    return SongRecord(name, ["a"], ["other"], [[0.0]], [0.0], setting_to_dict(setting), {}, [],
                      bus_print=bp.to_dict())


def _records(rows):
    return [_record(f"s{i}", *row) for i, row in enumerate(rows)]


def _masters(rows):
    return [r.setting["master"] for r in with_habit(_records(rows))]


def test_loudness_normaliser_with_a_peak_limit():
    # -20 LUFS unless the peak would pass -1 dBFS: the peak-bound songs get the aim
    rows = [(-20.0, -3.0), (-20.0, -2.5), (-21.5, -1.0), (-22.0, -1.05), (-20.0, -4.0)]
    habit = habit_from_records(_records(rows))
    assert habit.mechanism == "headroom" and habit.aim_lufs == -20.0
    assert habit.ceiling_db == -1.0 and habit.max_limiting_db == 0.0
    got = _masters(rows)
    assert [m["target_lufs"] for m in got] == [-20.0] * 5
    assert all(m["limiter_ceiling_db"] == -1.0 and m["max_limiting_db"] == 0.0 for m in got)


def test_peak_normaliser_never_shows_the_aim():
    rows = [(-17.0 - k, -0.9) for k in range(10)]
    habit = habit_from_records(_records(rows))
    assert habit.mechanism == "peak" and habit.max_limiting_db == 0.0
    assert habit.aim_lufs == pytest.approx(-17.9)      # 90th percentile of the loudness
    got = _masters(rows)
    assert min(m["target_lufs"] for m in got) == pytest.approx(-17.9)


def test_loudness_normaliser_whose_peak_limit_binds_on_most_songs():
    # rio and cleo among the demo producers: -19 LUFS unless the peak passes -1 dBFS, and the
    # peak stopped 7 of 10 songs; the loudest 3 sit at -19.00: an aim, not a peak habit
    rows = [(-19.5 - 0.4 * k, -1.0) for k in range(7)] + [(-19.0, -1.6), (-19.0, -2.4),
                                                          (-19.0, -3.1)]
    habit = habit_from_records(_records(rows))
    assert habit.mechanism == "headroom" and habit.aim_lufs == -19.0
    assert "leaves headroom" in habit.describe()
    assert [m["target_lufs"] for m in _masters(rows)] == [-19.0] * 10
    # the same peak-bound songs with unbound songs at loudnesses of their own: a peak normaliser
    rows[-3:] = [(-18.0, -1.6), (-21.0, -2.4), (-23.0, -3.1)]
    assert habit_from_records(_records(rows)).mechanism == "peak"
    # two songs at the top are not yet an aim
    rows[-3:] = [(-19.0, -1.6), (-19.0, -2.4), (-23.0, -3.1)]
    assert habit_from_records(_records(rows)).mechanism == "peak"


def test_limiter_to_a_target_gets_its_limiting_and_release():
    rows = [(-10.0 + 0.1 * k, -0.3, 3.0 + 0.5 * k, 0.0, 30.0) for k in range(6)]
    habit = habit_from_records(_records(rows))
    assert habit.mechanism == "limiter"
    assert habit.aim_lufs == pytest.approx(-9.75)
    assert habit.ceiling_db == -0.3                     # the sample peak, under the true peak
    assert habit.true_peak_dbtp == pytest.approx(-0.1)  # the most any calibration may raise it
    assert habit.max_limiting_db == pytest.approx(5.5 + 3.0)
    assert habit.release_ms == pytest.approx(30.0)
    got = _masters(rows)
    # every song keeps its own loudness as the target; the cap lets a new song reach the aim
    assert [m["target_lufs"] for m in got] == pytest.approx([-10.0 + 0.1 * k for k in range(6)])
    assert all(m["max_limiting_db"] == pytest.approx(8.5) for m in got)


def test_clipper_shows_flat_tops():
    rows = [(-9.0, -0.1, 4.0, 400.0, 1.0) for _ in range(4)]
    assert habit_from_records(_records(rows)).mechanism == "clipper"


def test_ceiling_never_above_their_true_peak_nor_zero():
    rows = [(-12.0, -0.5, 2.0, 0.0, 50.0, -0.8), (-12.0, -0.6, 2.0, 0.0, 50.0, -0.9),
            (-12.0, -0.5, 2.0, 0.0, 50.0, -0.85)]
    assert habit_from_records(_records(rows)).ceiling_db == -0.8
    rows = [(-8.0, 0.0, 5.0, 0.0, 10.0, 0.7)] * 3
    assert habit_from_records(_records(rows)).ceiling_db == 0.0


def test_too_few_songs_stop_at_the_peak():
    recs = _records([(-20.0, -1.0), (-21.0, -1.0)])
    assert habit_from_records(recs) is None
    assert all(r.setting["master"]["max_limiting_db"] == 0.0 for r in with_habit(recs))


def test_records_are_not_changed_in_place_and_the_habit_round_trips():
    recs = _records([(-20.0 - i, -1.0) for i in range(4)])
    habit = habit_from_records(recs)
    with_habit(recs)
    assert [r.setting["master"]["target_lufs"] for r in recs] == [-20.0, -21.0, -22.0, -23.0]
    assert LoudnessHabit.from_dict(habit.to_dict()) == habit
    assert LoudnessHabit.from_dict({"mechanism": "louder"}) is None


def test_limiter_whose_true_peak_rose_above_its_ceiling_gets_that_allowance_up_to_0_dbtp():
    # a sample-peak limiter at -0.8 dBFS whose true peaks reached -0.3 dBTP: the render may let
    # ours rise 0.5 dB over the ceiling; one whose true peaks passed 0 dBTP: to 0 dBTP only
    rows = [(-12.0, -0.8, 4.0, 0.0, 30.0, -0.3 - 0.1 * k) for k in range(4)]
    habit = habit_from_records(_records(rows))
    assert habit.mechanism == "limiter" and habit.ceiling_db == -0.8
    assert habit.true_peak_over_db == pytest.approx(0.5)
    assert all(m["true_peak_over_db"] == pytest.approx(0.5) for m in _masters(rows))
    assert "true peak up to -0.30 dBTP" in habit.describe()
    rows = [(-10.0, -0.3, 6.0, 0.0, 30.0, 1.5 + 0.2 * k) for k in range(4)]
    assert habit_from_records(_records(rows)).true_peak_over_db == pytest.approx(0.3)
    # a peak normaliser's peak is its level: no allowance
    rows = [(-17.0 - k, -0.9, 0.0, 0.0, None, -0.5) for k in range(5)]
    assert habit_from_records(_records(rows)).true_peak_over_db == 0.0
