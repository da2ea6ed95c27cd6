"""Gain and the constant-power pan law, measured on audio."""

import numpy as np
import pytest

from dsp.gain import Gain, Pan, pan_gains


def power_db(x):
    return 10 * np.log10(np.mean(x.astype(np.float64) ** 2))


@pytest.mark.parametrize("channels", (1, 2))
@pytest.mark.parametrize("g", (-60.0, -6.0, 0.0, 12.0, 24.0))
def test_gain_db_is_measured_gain(channels, g):
    x = np.random.default_rng(0).uniform(-0.5, 0.5, (channels, 4000)).astype(np.float32)
    y = Gain(g)(x, 48000)
    assert power_db(y) - power_db(x) == pytest.approx(g, abs=1e-4)
    if g == 0.0:
        np.testing.assert_array_equal(y, x)


def test_pan_law_measured():
    sr = 44100
    mono = np.sin(2 * np.pi * 440 * np.arange(sr) / sr).astype(np.float32)
    x = np.stack([mono, mono])
    ref = power_db(mono)
    centre = Pan(0.0)(x, sr)
    np.testing.assert_array_equal(centre, x)  # 0 dB each side at the centre
    hard_l = Pan(-1.0)(x, sr)
    assert power_db(hard_l[0]) - ref == pytest.approx(3.0103, abs=1e-3)
    assert np.abs(hard_l[1]).max() < 1e-7
    hard_r = Pan(1.0)(x, sr)
    assert power_db(hard_r[1]) - ref == pytest.approx(3.0103, abs=1e-3)
    assert np.abs(hard_r[0]).max() < 1e-7
    half = Pan(-0.5)(x, sr)
    assert power_db(half[0]) > power_db(half[1])
    # a centred mono source keeps its total power at every position
    total_centre = 10 * np.log10(np.sum(np.mean(centre.astype(np.float64) ** 2, axis=1)))
    for pan in np.linspace(-1, 1, 21):
        y = Pan(float(pan))(x, sr).astype(np.float64)
        total = 10 * np.log10(np.sum(np.mean(y ** 2, axis=1)))
        assert total == pytest.approx(total_centre, abs=1e-4)


def test_pan_gains_formula():
    for pan in (-1.0, -0.3, 0.0, 0.7, 1.0):
        gl, gr = pan_gains(pan)
        th = np.pi * (pan + 1) / 4
        assert gl == pytest.approx(np.sqrt(2) * np.cos(th), abs=1e-15)
        assert gr == pytest.approx(np.sqrt(2) * np.sin(th), abs=1e-15)
    assert pan_gains(0.0) == (1.0, 1.0)
