"""The evaluate metrics and baselines: a mix scores zero against itself, the plain sum is matched
in loudness to the producer's mix, the table names every metric."""

from __future__ import annotations

import pytest

from dsp.loudness import integrated_loudness
from mixstyle.evaluate.metrics import (METRICS, Target, automix, matched_band_error, metrics,
                                      plain_sum)
from mixstyle.evaluate.score import format_table, summarise

SR = 44100.0
SR_LEN = 2 * 44100


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


def test_width_error_of_a_near_mono_reference_is_bounded(make_stems):
    """A reference whose side is near silence (a mono mix) must not make a width error of some
    100 dB: the side/mid ratio is held within +-WIDTH_LIMIT_DB, so a mix with its side 20 dB
    under the mid is 20 dB wider than mono."""
    import numpy as np
    from mixstyle.evaluate.metrics import WIDTH_LIMIT_DB
    mono = make_stems(seed=6, seconds=2.0, n_stems=1)[0, :1].repeat(2, axis=0)
    ref = mono + 1e-7 * np.array([[1.0], [-1.0]], dtype=np.float32) * mono
    side = 0.1 * mono[0]
    wide = np.stack([mono[0] + side, mono[0] - side])   # side/mid = -20 dB
    assert metrics(wide, ref, SR)["width_error_db"] == pytest.approx(WIDTH_LIMIT_DB - 20.0,
                                                                     abs=0.01)
    assert metrics(mono, ref, SR)["width_error_db"] == pytest.approx(0.0, abs=1e-6)


def test_matched_band_error_ignores_loudness_only(make_stems):
    stems = make_stems(seed=7, seconds=2.0, n_stems=3)
    ref = stems.sum(axis=0)
    quiet = 0.25 * ref
    assert metrics(quiet, ref, SR)["band_error_db"] > 10.0
    assert matched_band_error(quiet, ref, SR) == pytest.approx(0.0, abs=1e-3)
    other = stems[0] * 2.0 + stems[1] + stems[2]   # a different balance is still an error
    assert matched_band_error(other, ref, SR) > 0.3


def test_a_subset_of_the_metrics_is_the_same_numbers(make_stems):
    """The held-out choices ask for loudness and width alone (the MR-STFT is most of the
    cost): the same values as in the whole set; an unknown name is refused."""
    stems = make_stems(seed=5, seconds=2.0, n_stems=3)
    est, ref = stems.sum(axis=0), stems[:2].sum(axis=0)
    whole = metrics(est, ref, SR)
    some = metrics(est, ref, SR, ("width_error_db", "loudness_error_lu"))
    assert list(some) == ["loudness_error_lu", "width_error_db"]
    assert all(some[k] == whole[k] for k in some) and some["loudness_error_lu"] > 0.1
    with pytest.raises(ValueError, match="mr_stft"):
        metrics(est, ref, SR, ("mr_stft",))


def test_a_target_measured_once_gives_the_same_numbers_as_the_bare_mix(make_stems):
    # learn's held-out scoring compares a dozen mixes with each producer's mix through a Target;
    # every number must equal the bare array's, also for a mix shorter than the reference
    stems = make_stems(seed=7, seconds=3.0, n_stems=3)
    ref = 0.6 * stems.sum(axis=0)
    target = Target(ref, SR)
    for est in (stems[0] + 0.3 * stems[1], stems[2][:, :SR_LEN], stems.sum(axis=0)):
        assert metrics(est, target, SR) == metrics(est, ref, SR)
        assert matched_band_error(est, target, SR) == matched_band_error(est, ref, SR)
