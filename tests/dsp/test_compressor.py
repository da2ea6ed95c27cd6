"""Compressor: static curve incl. knee, attack/release timing, stereo link, reference parity."""

import math

import numpy as np
import pytest

from dsp.compressor import Compressor

RATES = (44100, 48000)


def reference(x, sr, t, r, w, att, rel, mk):
    """Direct per-sample evaluation of the formulas in docs/DESIGN.md (slow, float64)."""
    aa, ar = math.exp(-1 / (att / 1000 * sr)), math.exp(-1 / (rel / 1000 * sr))
    gs, out = 0.0, np.empty(x.shape)
    for n in range(x.shape[1]):
        xd = 20 * math.log10(max(np.abs(x[:, n]).max(), 1e-10))
        if 2 * (xd - t) < -w:
            y = xd
        elif w > 0 and 2 * abs(xd - t) <= w:
            y = xd + (1 / r - 1) * (xd - t + w / 2) ** 2 / (2 * w)
        else:
            y = t + (xd - t) / r
        gc = y - xd
        a = aa if gc < gs else ar
        gs = a * gs + (1 - a) * gc
        out[:, n] = x[:, n] * 10 ** ((gs + mk) / 20)
    return out


@pytest.mark.parametrize("kw", [dict(threshold_db=-20.0, ratio=4.0, knee_db=6.0),
                                dict(threshold_db=-35.0, ratio=20.0, knee_db=0.0, makeup_db=6.0),
                                dict(threshold_db=-10.0, ratio=2.0, knee_db=24.0, attack_ms=0.1,
                                     release_ms=5.0)])
def test_matches_reference_formulas(kw):
    sr = 48000
    rng = np.random.default_rng(3)
    env = np.repeat(rng.uniform(0.01, 1.0, 12), 400)
    x = (env * rng.standard_normal((2, env.size))).astype(np.float32)
    c = Compressor(**kw)
    ref = reference(x.astype(np.float64), sr, c.threshold_db, c.ratio, c.knee_db, c.attack_ms,
                    c.release_ms, c.makeup_db)
    assert np.abs(c(x, sr) - ref).max() <= 1e-6


@pytest.mark.parametrize("knee_db", (0.0, 6.0, 12.0))
def test_static_curve_with_steady_levels(knee_db):
    sr = 48000
    c = Compressor(threshold_db=-30.0, ratio=4.0, attack_ms=1.0, release_ms=20.0,
                   knee_db=knee_db, makeup_db=2.0)
    levels = np.arange(-60.0, 0.1, 2.0)
    measured_dc, measured_sine = [], []
    t = np.arange(sr) / sr
    for level in levels:
        a = 10 ** (level / 20)
        c.reset()
        y = c(np.full((2, sr // 4), a, dtype=np.float32), sr)
        measured_dc.append(20 * np.log10(y[0, -1]))
        # a slow sine (20 Hz) with slow release: the detector follows the crest of each cycle
        c2 = Compressor(-30.0, 4.0, attack_ms=0.5, release_ms=2000.0, knee_db=knee_db,
                        makeup_db=2.0)
        s = (a * np.sin(2 * np.pi * 20 * t)).astype(np.float32)[None].repeat(2, 0)
        ys = c2(s, sr)
        measured_sine.append(20 * np.log10(np.abs(ys[:, sr // 2:]).max()))
    expected = c.static_curve_db(levels)
    assert np.abs(np.array(measured_dc) - expected).max() < 0.01
    assert np.abs(np.array(measured_sine) - expected).max() < 0.5
    # sanity of the expected curve itself: unity below, 1/ratio slope well above the knee
    assert expected[0] == pytest.approx(-58.0)
    assert expected[-1] - expected[-6] == pytest.approx(10.0 / 4.0)


@pytest.mark.parametrize("sr", RATES)
@pytest.mark.parametrize("attack_ms,release_ms", [(5.0, 100.0), (30.0, 400.0)])
def test_attack_and_release_time_constants(sr, attack_ms, release_ms):
    c = Compressor(threshold_db=-20.0, ratio=4.0, attack_ms=attack_ms, release_ms=release_ms,
                   knee_db=0.0)
    n = int(3 * release_ms / 1000 * sr) + int(8 * attack_ms / 1000 * sr)
    loud = int(8 * attack_ms / 1000 * sr)
    x = np.full((2, loud + n), 10 ** (-40 / 20), dtype=np.float32)
    x[:, :loud] = 1.0  # 0 dBFS: target gain reduction 15 dB, then back under the threshold
    gr = -20 * np.log10(c(x, sr)[0] / x[0])
    assert gr[loud - 1] == pytest.approx(15.0, abs=0.01)
    assert c.gain_reduction_db == pytest.approx(15.0, abs=0.01)
    t63 = np.argmax(gr[:loud] >= 15.0 * (1 - math.exp(-1))) / sr * 1000
    assert t63 == pytest.approx(attack_ms, rel=0.05, abs=0.05)
    rel = gr[loud:]
    t37 = np.argmax(rel <= 15.0 * math.exp(-1)) / sr * 1000
    assert t37 == pytest.approx(release_ms, rel=0.05)


def test_stereo_link_compresses_both_channels_equally():
    sr = 48000
    t = np.arange(sr) / sr
    x = np.stack([0.9 * np.sin(2 * np.pi * 100 * t), 0.01 * np.sin(2 * np.pi * 3000 * t)])
    x = x.astype(np.float32)
    y = Compressor(threshold_db=-20.0, ratio=8.0, attack_ms=5.0, release_ms=50.0)(x, sr)
    settled = slice(sr // 2, sr)
    left_db = 20 * np.log10(np.abs(y[0, settled]).max() / 0.9)
    right_db = 20 * np.log10(np.abs(y[1, settled]).max() / 0.01)
    assert left_db < -10.0
    assert right_db == pytest.approx(left_db, abs=0.3)
    # the per-sample gain is literally the same on both channels
    mask = np.abs(x[1]) > 1e-3
    np.testing.assert_allclose(y[0, mask] / x[0, mask], y[1, mask] / x[1, mask], rtol=1e-5)


def test_ratio_one_is_transparent_and_makeup_is_gain():
    x = np.random.default_rng(4).uniform(-1, 1, (2, 5000)).astype(np.float32)
    np.testing.assert_array_equal(Compressor(threshold_db=-40.0, ratio=1.0)(x, 44100), x)
    y = Compressor(threshold_db=-40.0, ratio=1.0, makeup_db=6.0)(x, 44100)
    np.testing.assert_allclose(y, x * 10 ** (6 / 20), rtol=1e-6)
    quiet = (x * 0.01).astype(np.float32)  # -40 dBFS peak, below a -20 dB threshold
    c = Compressor(threshold_db=-20.0, ratio=10.0, knee_db=6.0)
    np.testing.assert_array_equal(c(quiet, 44100), quiet)
    assert c.gain_reduction_db == 0.0


def test_block_processing_equals_whole_file():
    sr = 44100
    rng = np.random.default_rng(5)
    x = (np.repeat(rng.uniform(0.01, 1, 40), 500) * rng.standard_normal((2, 20000)))
    x = x.astype(np.float32)
    kw = dict(threshold_db=-25.0, ratio=6.0, attack_ms=2.0, release_ms=80.0, knee_db=6.0)
    whole = Compressor(**kw)(x, sr)
    c = Compressor(**kw)
    parts = np.concatenate([c(x[:, i:i + 1000], sr) for i in range(0, x.shape[1], 1000)], 1)
    np.testing.assert_array_equal(parts, whole)
