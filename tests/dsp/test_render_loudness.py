"""The loudness target of the offline render and its limiting cap (master.max_limiting_db)."""

import numpy as np
import pytest

from dsp.loudness import integrated_loudness
from dsp.params import ConsoleSetting, TrackSetting, validate
from dsp.render import render

SR = 44100.0


def _setting(**master):
    return ConsoleSetting((TrackSetting("a", validate("track", {})),),
                          validate("master", {"limiter_ceiling_db": -1.0, **master}))


def _drums():
    rng = np.random.default_rng(0)
    x = np.zeros(int(4 * SR))
    x[::11025] = 1.0                                   # spiky: high crest factor
    x = np.convolve(x, np.exp(-np.arange(2000) / 200.0))[:x.size] + 0.01 * rng.normal(size=x.size)
    return (0.5 * np.stack([x, x]))[None].astype(np.float32)


def test_no_cap_reaches_the_target_through_the_limiter():
    out = render(_drums(), SR, _setting(target_lufs=-20.0, max_limiting_db=24.0))
    assert out.loudness_lufs == pytest.approx(-20.0, abs=0.1)
    assert np.max(np.abs(out.audio)) <= 10 ** (-1.0 / 20) + 1e-6


def test_cap_zero_stops_where_the_peak_meets_the_ceiling():
    stems = _drums()
    out = render(stems, SR, _setting(target_lufs=-16.0, max_limiting_db=0.0))
    peak_db = 20 * np.log10(np.max(np.abs(out.audio)))
    assert out.true_peak_dbtp == pytest.approx(-1.0, abs=0.05)   # peak-normalised to the true
    assert -3.0 < peak_db <= -1.0   # peak, not limited (these clicks pass their samples by 1 dB)
    assert out.loudness_lufs < -18.0                          # so the target is not reached
    # the same gain applied without any limiter: identical audio (the limiter did nothing)
    plain = stems[0] * 10 ** (out.master_gain_db / 20)
    assert np.max(np.abs(out.audio - plain)) < 1e-5


def test_reachable_target_is_unaffected_by_the_cap():
    out = render(_drums(), SR, _setting(target_lufs=-30.0, max_limiting_db=0.0))
    assert out.loudness_lufs == pytest.approx(-30.0, abs=0.1)
    assert integrated_loudness(out.audio, SR) == pytest.approx(-30.0, abs=0.1)


def test_a_click_does_not_decide_the_loudness_of_a_limited_song():
    # a producer who limits to a target: a 5 ms drum click on top of the bass changes nothing,
    # while a peak-normalised render of the same song drops by several LU
    rng = np.random.default_rng(1)
    t = np.arange(int(6 * SR)) / SR
    bass = (0.3 * np.sin(2 * np.pi * 60 * t)).astype(np.float32)
    click = bass.copy()
    k = int(3 * SR)
    click[k:k + int(0.005 * SR)] += rng.normal(size=int(0.005 * SR)).astype(np.float32) * 0.2
    limited = _setting(target_lufs=-12.0, max_limiting_db=12.0)
    capped = _setting(target_lufs=-12.0, max_limiting_db=0.0)
    songs = [np.stack([x, x])[None] for x in (bass, click)]
    loud = [render(s, SR, limited).loudness_lufs for s in songs]
    assert loud == pytest.approx([-12.0, -12.0], abs=0.1)
    peaky = [render(s, SR, capped).loudness_lufs for s in songs]
    assert peaky[0] - peaky[1] > 2.0
    assert all(render(s, SR, limited).true_peak_dbtp <= -1.0 + 0.01 for s in songs)


def test_true_peak_allowance_lets_the_samples_between_samples_rise_to_it_and_no_further():
    # a sample-peak limiter at -1 dBFS driven hard: its true peak stands above the ceiling. With
    # no allowance the render holds the true peak at the ceiling too; with 0.6 dB it holds it at
    # -0.4 dBTP; an allowance past 0 dBTP stops at 0 dBTP
    stems = _drums()
    held = render(stems, SR, _setting(target_lufs=-18.0, max_limiting_db=24.0))
    over = render(stems, SR, _setting(target_lufs=-18.0, max_limiting_db=24.0,
                                      true_peak_over_db=0.6))
    capped = render(stems, SR, _setting(target_lufs=-18.0, max_limiting_db=24.0,
                                        limiter_ceiling_db=-0.3, true_peak_over_db=3.0))
    for out in (held, over, capped):
        assert out.loudness_lufs == pytest.approx(-18.0, abs=0.1)
    assert held.true_peak_dbtp <= -1.0 + 0.01
    assert -1.0 + 0.05 < over.true_peak_dbtp <= -0.4 + 0.01
    assert capped.true_peak_dbtp <= 0.0 + 0.01
    for out in (held, over):   # the samples stay under the limiter's ceiling
        assert np.max(np.abs(out.audio)) <= 10 ** (-1.0 / 20) + 1e-6


def test_drive_for_loudness_reaches_the_target_or_the_end_of_its_range():
    from dsp.limiter import Limiter
    from dsp.loudness import drive_for_loudness
    sr = 48000
    t = np.arange(2 * sr) / sr
    x = np.stack([0.05 * np.sin(2 * np.pi * 220 * t) * (1 + np.sign(np.sin(2 * np.pi * 2 * t)))]
                 * 2).astype(np.float32)
    runs = []

    def run(drive):
        runs.append(drive)
        lim = Limiter(sr, -1.0, 50.0, 5.0)
        return lim.process(x * np.float32(10 ** (drive / 20)), sr)

    drive, out, lufs = drive_for_loudness(run, sr, -12.0, 0.0, (0.0, 30.0))
    assert abs(lufs - -12.0) < 0.05 and lufs == integrated_loudness(out, sr)
    assert drive == runs[-1] and len(runs) <= 9
    # out of reach: the end of the range, the closest run
    drive, _, lufs = drive_for_loudness(run, sr, 3.0, 0.0, (0.0, 30.0))
    assert drive == 30.0 and lufs < 3.0
    # silence stops at once
    runs.clear()
    drive, _, lufs = drive_for_loudness(lambda d: np.zeros((2, sr), np.float32), sr, -12.0,
                                        5.0, (0.0, 30.0))
    assert (drive, len(runs)) == (5.0, 0) and not lufs > -70.0
