"""The evaluate metrics and baselines: a mix scores zero against itself, the plain sum is matched
in loudness to the producer's mix, the table names every metric."""

from __future__ import annotations

import pytest

from dsp.loudness import integrated_loudness
from mixstyle.evaluate.metrics import METRICS, automix, metrics, plain_sum
from mixstyle.evaluate.score import format_table, summarise

SR = 44100.0


def test_a_mix_against_itself_scores_zero(make_stems):
    mix = make_stems(seed=3, seconds=2.0, n_stems=3).sum(axis=0)
    got = metrics(mix, mix, SR)
    assert set(got) == set(METRICS)
    assert all(v == pytest.approx(0.0, abs=1e-6) for v in got.values()), got


def test_plain_sum_has_the_mix_loudness_and_automix_its_target(make_stems):
    stems = make_stems(seed=4, seconds=3.0, n_stems=3)
    ref = 0.5 * stems.sum(axis=0)
    assert integrated_loudness(plain_sum(stems, ref, SR), SR) == \
        pytest.approx(integrated_loudness(ref, SR), abs=0.01)
    out = automix(stems, SR)
    assert out.shape == ref.shape and abs(out).max() <= 10 ** (-1.0 / 20) + 1e-6


def test_summary_table_names_every_metric():
    row = {m: 1.0 for m in METRICS}
    per = {"a": {"learned": row, "plain_sum": dict(row, band_error_db=2.0), "automix": row}}
    summary = summarise(per)
    assert summary["closed"] == pytest.approx(0.5) and summary["songs"] == 1
    table = format_table(summary, "t")
    assert all(m in table for m in METRICS) and "closed 50%" in table
