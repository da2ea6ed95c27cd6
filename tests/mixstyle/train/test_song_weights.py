"""A song whose fit explains the producer's mix worse than their typical song counts less in
training (train.records.song_weights): what the console cannot make must not teach it."""

from __future__ import annotations

import pytest

from mixstyle.train.records import SongRecord, song_weights


def _rec(error_db):
    return SongRecord("s", [], [], [], [], {}, {"error_db": error_db}, [])


def test_worse_explained_songs_count_less():
    w = song_weights([_rec(-14.0), _rec(-14.0), _rec(-14.0), _rec(-11.0), _rec(-20.0)])
    assert list(w[:3]) == [1.0, 1.0, 1.0]
    assert w[3] == pytest.approx(0.5, abs=0.01)      # 3 dB more unexplained energy: half
    assert w[4] == 1.0                                # better than typical: never above 1


def test_few_or_unknown_fits_count_fully():
    assert list(song_weights([_rec(-5.0), _rec(-20.0)])) == [1.0, 1.0]
    w = song_weights([_rec(-14.0), _rec(-14.0), _rec(-14.0), _rec(float("nan"))])
    assert w[3] == 1.0
    assert song_weights([_rec(-14.0)] * 3 + [_rec(30.0)])[3] == pytest.approx(0.1)
