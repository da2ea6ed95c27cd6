"""Offline master front end (time-split SIMD lanes): the same EQ, loudness and glue compressor as
the sequential kernels, for any length, channel count, sample rate and filter setting."""

from __future__ import annotations

import numpy as np
import pytest

from dsp.biquad import _cascade_kernel
from dsp.eq import eq_sections
from dsp.loudness import integrated_loudness, k_weighting_coeffs
from dsp.offline import eq_and_loudness, glue_in_place, plan, warmup_samples
from dsp.params import MASTER, validate
from dsp.strip import ChannelStrip

EQ = {"low_shelf_freq_hz": 90.0, "low_shelf_gain_db": 4.0, "peak1_freq_hz": 40.0,
      "peak1_gain_db": 9.0, "peak1_q": 8.0, "peak2_freq_hz": 2500.0, "peak2_gain_db": -4.0,
      "peak2_q": 2.0, "peak3_freq_hz": 12000.0, "peak3_gain_db": 3.0, "peak3_q": 0.5,
      "high_shelf_freq_hz": 9000.0, "high_shelf_gain_db": -3.0}
GLUE = {"comp_threshold_db": -18.0, "comp_ratio": 4.0, "comp_attack_ms": 5.0,
        "comp_release_ms": 120.0, "comp_knee_db": 6.0, "comp_makeup_db": 2.0}


def music_like(channels: int, seconds: float, sr: float, seed: int = 0) -> np.ndarray:
    """Noise bursts with a loud/quiet envelope and a low tone (excites the 40 Hz peak)."""
    rng = np.random.default_rng(seed)
    n = int(seconds * sr)
    t = np.arange(n) / sr
    env = 0.05 + 0.3 * (np.sin(2 * np.pi * 0.7 * t) > 0.3)
    x = rng.standard_normal((channels, n)) * env + 0.2 * np.sin(2 * np.pi * 41.0 * t)
    return x.astype(np.float32)


def sequential_eq(x: np.ndarray, coefs: np.ndarray) -> np.ndarray:
    out = np.empty_like(x)
    _cascade_kernel(x, out, coefs, np.zeros((x.shape[0], coefs.shape[0], 2)))
    return out


TYPICAL = {"low_shelf_freq_hz": 120.0, "low_shelf_gain_db": 2.5, "peak2_freq_hz": 2500.0,
           "peak2_gain_db": -1.5, "peak2_q": 0.8, "high_shelf_gain_db": 1.5}


@pytest.mark.parametrize("sr", [44100.0, 48000.0, 96000.0])
@pytest.mark.parametrize("eq, channels, seconds, segments", [
    (TYPICAL, 2, 12.0, 8), (TYPICAL, 1, 7.0, 8), (TYPICAL, 5, 3.0, 3), (TYPICAL, 2, 0.3, 1),
    (EQ, 2, 40.0, 2)])  # EQ: a narrow 40 Hz boost that rings for seconds
def test_eq_and_loudness_equal_the_sequential_kernels(sr, eq, channels, seconds, segments):
    x = music_like(channels, seconds, sr)
    coefs = eq_sections(MASTER, validate(MASTER, eq), sr)
    hop = int(round(0.1 * sr))
    warm = warmup_samples(np.vstack([coefs, k_weighting_coeffs(sr)]), sr)
    assert plan(x.shape[1], channels, warm, hop)[0] >= segments
    out, lufs = eq_and_loudness(x, sr, coefs)
    ref = sequential_eq(x, coefs)
    assert np.max(np.abs(out - ref)) <= 1e-7 * np.max(np.abs(ref))
    assert lufs == pytest.approx(integrated_loudness(x, sr), abs=1e-9)


def test_long_files_run_in_several_segments_and_short_ones_in_one():
    sr, n = 44100.0, int(60 * 44100)
    typical = eq_sections(MASTER, validate(MASTER, {"low_shelf_gain_db": 2.0,
                                                    "peak2_gain_db": -1.0}), sr)
    warm = warmup_samples(typical, sr)
    segs, seg, w = plan(n, 2, warm, 4410)
    assert segs == 8 and seg % 4410 == 0 and w % 4410 == 0 and w >= warm and segs * seg >= n
    assert plan(int(0.3 * sr), 2, warm, 4410)[0] == 1 and plan(int(0.3 * sr), 2, warm, 4410)[2] == 0
    # a narrow boost at 40 Hz rings for seconds: longer warm-ups, fewer (still several) segments
    narrow = warmup_samples(eq_sections(MASTER, validate(MASTER, EQ), sr), sr)
    assert narrow > 10 * warm and 1 < plan(n, 2, narrow, 4410)[0] < 8


def test_warm_up_follows_the_slowest_pole():
    sr = 48000.0
    gentle = eq_sections(MASTER, validate(MASTER, {"peak2_gain_db": 3.0, "peak2_q": 0.7}), sr)
    narrow = eq_sections(MASTER, validate(MASTER, {"peak1_freq_hz": 40.0, "peak1_q": 8.0,
                                                   "peak1_gain_db": 6.0}), sr)
    assert warmup_samples(narrow, sr) > 5 * warmup_samples(gentle, sr)
    with pytest.raises(ValueError, match="unstable"):
        warmup_samples(np.array([[1.0, 0.0, 0.0, -2.5, 1.2]]), sr)


@pytest.mark.parametrize("sr", [44100.0, 96000.0])
@pytest.mark.parametrize("trim_db", [0.0, 7.5])
def test_glue_equals_the_channel_strip(sr, trim_db):
    x = music_like(2, 6.0, sr, seed=3)
    x[:, : int(sr)] *= 0.01  # a quiet start: the idle path, then compression
    p = validate(MASTER, {**EQ, **GLUE})
    e, _ = eq_and_loudness(x, sr, eq_sections(MASTER, p, sr))
    peak, gr = glue_in_place(e, sr, trim_db, p)
    strip = ChannelStrip(sr, {"input_gain_db": trim_db, **EQ, **GLUE})
    ref = strip.process(x, sr)
    assert gr > 3.0 and gr == pytest.approx(strip.gain_reduction_db, abs=1e-6)
    assert 20 * np.log10(peak) == pytest.approx(strip.peak_db, abs=1e-5)
    assert np.max(np.abs(e - ref)) <= 4e-7 * np.max(np.abs(ref))


def test_glue_refuses_what_it_cannot_process_in_place():
    p = validate(MASTER, GLUE)
    with pytest.raises(ValueError, match="float32 stereo"):
        glue_in_place(np.zeros((2, 100)), 44100.0, 0.0, p)
    with pytest.raises(ValueError, match="float32 stereo"):
        glue_in_place(np.zeros((1, 100), np.float32), 44100.0, 0.0, p)
