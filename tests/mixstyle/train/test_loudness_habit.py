"""The producer's loudness habit read off their mixes (train.with_loudness_aims): an aim, and a
peak they never pass."""

from __future__ import annotations

import pytest

from dsp.params import MASTER, TRACK, ConsoleSetting, TrackSetting, setting_to_dict, validate
from mixstyle.train.records import SongRecord
from mixstyle.train.loop import with_loudness_aims


def _record(name: str, loud: float, peak: float) -> SongRecord:
    setting = ConsoleSetting((TrackSetting("a", validate(TRACK, {}, "t")),),
                             validate(MASTER, {"target_lufs": loud, "limiter_ceiling_db": peak},
                                      "m"))
    return SongRecord(name, ["a"], ["other"], [[0.0]], [0.0], setting_to_dict(setting), {}, [])


def _masters(pairs):
    return [r.setting["master"] for r in
            with_loudness_aims([_record(f"s{i}", l, p) for i, (l, p) in enumerate(pairs)])]


def test_loudness_normaliser_with_a_peak_limit():
    # -20 LUFS unless the peak would pass -1 dBFS: the peak-bound songs get the aim
    got = _masters([(-20.0, -3.0), (-20.0, -2.5), (-21.5, -1.0), (-22.0, -1.05), (-20.0, -4.0)])
    assert [m["target_lufs"] for m in got] == [-20.0, -20.0, -20.0, -20.0, -20.0]
    assert all(m["limiter_ceiling_db"] == -1.0 and m["max_limiting_db"] == 0.0 for m in got)


def test_peak_normaliser_never_shows_the_aim():
    pairs = [(-17.0 - k, -0.9) for k in range(10)]
    got = _masters(pairs)
    aim = pytest.approx(-17.9)      # 90th percentile of the loudness
    assert all(m["target_lufs"] == aim or m["target_lufs"] > -17.9 for m in got)
    assert min(m["target_lufs"] for m in got) == aim


def test_records_are_not_changed_in_place():
    recs = [_record(f"s{i}", -20.0 - i, -1.0) for i in range(4)]
    with_loudness_aims(recs)
    assert [r.setting["master"]["target_lufs"] for r in recs] == [-20.0, -21.0, -22.0, -23.0]
