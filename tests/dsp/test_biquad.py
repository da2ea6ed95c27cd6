"""RBJ biquads: measured levels at the defining frequencies, bypass rules, scipy parity."""

import numpy as np
import pytest
import scipy.signal as ss

from dsp import biquad as bq
from dsp.biquad import HighPass, HighShelf, LowPass, LowShelf, Peak, response_db

RATES = (44100, 48000)


def sine(freq_hz, sr, seconds=1.0, channels=2, amp=0.5):
    t = np.arange(int(seconds * sr)) / sr
    return np.tile(amp * np.sin(2 * np.pi * freq_hz * t), (channels, 1)).astype(np.float32)


def gain_db(y, x, skip):
    """Level change in dB (RMS over the settled part)."""
    return 20 * np.log10(np.sqrt(np.mean(y[:, skip:].astype(np.float64) ** 2))
                         / np.sqrt(np.mean(x[:, skip:].astype(np.float64) ** 2)))


@pytest.mark.parametrize("sr", RATES)
@pytest.mark.parametrize("channels", (1, 2))
@pytest.mark.parametrize("cls,freq", [(HighPass, 100.0), (HighPass, 1000.0),
                                      (LowPass, 1000.0), (LowPass, 8000.0)])
def test_minus_3_db_at_cutoff(sr, channels, cls, freq):
    x = sine(freq, sr, channels=channels)
    y = cls(freq_hz=freq, q=0.7071)(x, sr)
    assert y.shape == x.shape and y.dtype == np.float32
    assert gain_db(y, x, sr // 5) == pytest.approx(-3.01, abs=0.1)


@pytest.mark.parametrize("sr", RATES)
def test_highpass_and_lowpass_slopes(sr):
    # two octaves into the stop band a 2-pole Butterworth is down ~24 dB; the pass band is flat
    x_lo, x_hi = sine(250.0, sr), sine(4000.0, sr)
    assert gain_db(HighPass(1000.0)(x_lo, sr), x_lo, sr // 5) == pytest.approx(-24.1, abs=0.3)
    assert gain_db(HighPass(1000.0)(x_hi, sr), x_hi, sr // 5) == pytest.approx(0.0, abs=0.1)
    lp = LowPass(1000.0)
    measured = gain_db(lp(x_hi, sr), x_hi, sr // 5)
    assert measured == pytest.approx(response_db(lp.coefficients(sr), [4000.0], sr)[0], abs=0.05)
    assert measured == pytest.approx(-24.1, abs=0.6)  # bilinear warping adds a little


def test_bypass_at_the_table_ends_is_exact():
    x = np.random.default_rng(0).standard_normal((2, 4000)).astype(np.float32)
    for f in (HighPass(10.0), LowPass(20000.0), Peak(1000.0, 0.0, 2.0), LowShelf(100.0, 0.0),
              HighShelf(8000.0, 0.0)):
        np.testing.assert_array_equal(f(x, 48000), x)
    # just inside the ends the filters act
    assert not np.array_equal(HighPass(10.5)(x, 48000), x)
    assert not np.array_equal(LowPass(19000.0)(x, 48000), x)


@pytest.mark.parametrize("sr", RATES)
@pytest.mark.parametrize("g", (-12.0, -3.0, 6.0, 18.0))
def test_shelf_gain_at_dc_and_nyquist(sr, g):
    n = sr // 2
    dc = np.full((2, n), 0.25, dtype=np.float32)
    nyq = np.tile(0.25 * (-1.0) ** np.arange(n), (2, 1)).astype(np.float32)
    low, high = LowShelf(120.0, g), HighShelf(8000.0, g)
    settled = slice(n - 100, n)

    def settled_db(filt, x):
        return 20 * np.log10(np.abs(filt(x, sr)[:, settled]).mean() / 0.25)

    assert settled_db(low, dc) == pytest.approx(g, abs=0.1)
    assert settled_db(high, nyq) == pytest.approx(g, abs=0.1)
    # the other side stays at 0 dB
    assert settled_db(LowShelf(120.0, g), nyq) == pytest.approx(0.0, abs=0.1)
    assert settled_db(HighShelf(8000.0, g), dc) == pytest.approx(0.0, abs=0.1)
    # slope 1 shelf: half the gain (in dB) at the corner frequency
    x = sine(120.0, sr)
    assert gain_db(LowShelf(120.0, g)(x, sr), x, sr // 5) == pytest.approx(g / 2, abs=0.1)


@pytest.mark.parametrize("sr", RATES)
@pytest.mark.parametrize("freq,g,q", [(250.0, 6.0, 1.0), (1000.0, -9.0, 4.0),
                                      (4000.0, 12.0, 0.5), (12000.0, -18.0, 8.0)])
def test_peak_gain_at_centre(sr, freq, g, q):
    x = sine(freq, sr)
    assert gain_db(Peak(freq, g, q)(x, sr), x, sr // 2) == pytest.approx(g, abs=0.1)
    far = sine(freq / 16 if freq > 1000 else freq * 16, sr)
    assert abs(gain_db(Peak(freq, g, q)(far, sr), far, sr // 2)) < 0.6


@pytest.mark.parametrize("f", [HighPass(150.0, 1.2), LowPass(3000.0, 0.6), LowShelf(200.0, 5.0),
                               HighShelf(5000.0, -7.0), Peak(700.0, 9.0, 2.5)], ids=repr)
def test_parity_with_scipy_lfilter(f):
    sr = 44100
    x = np.random.default_rng(1).uniform(-1, 1, (2, 20000)).astype(np.float32)
    c = f.coefficients(sr)
    ref = ss.lfilter(c[:3], [1.0, c[3], c[4]], x.astype(np.float64), axis=1)
    assert np.abs(f(x, sr) - ref).max() <= 1e-6


def test_cascade_parity_with_sosfilt_and_block_processing():
    sr = 48000
    filters = [HighPass(80.0), LowShelf(150.0, 4.0), Peak(400.0, -6.0, 2.0),
               Peak(2500.0, 3.0, 1.0), Peak(9000.0, 5.0, 3.0), HighShelf(7000.0, -4.0),
               LowPass(15000.0)]
    coefs = np.array([f.coefficients(sr) for f in filters])
    sos = np.column_stack([coefs[:, :3], np.ones(len(coefs)), coefs[:, 3:]])
    x = np.random.default_rng(2).uniform(-1, 1, (2, 30000)).astype(np.float32)
    ref = ss.sosfilt(sos, x.astype(np.float64), axis=1)
    out = np.empty_like(x)
    bq._cascade_kernel(x, out, coefs, np.zeros((2, len(coefs), 2)))
    assert np.abs(out - ref).max() <= 1e-6
    # measured response matches response_db at a few frequencies
    for freq in (100.0, 1000.0, 9000.0):
        s = sine(freq, sr)
        o = np.empty_like(s)
        bq._cascade_kernel(s, o, coefs, np.zeros((2, len(coefs), 2)))
        assert gain_db(o, s, sr // 5) == pytest.approx(response_db(coefs, [freq], sr)[0], abs=0.05)
    # state carries over between calls of one wrapper
    f = Peak(1000.0, 6.0, 1.0)
    whole = Peak(1000.0, 6.0, 1.0)(x, sr)
    parts = np.concatenate([f(x[:, i:i + 777], sr) for i in range(0, x.shape[1], 777)], axis=1)
    np.testing.assert_array_equal(parts, whole)
    f.reset()
    np.testing.assert_array_equal(f(x, sr), whole)


def test_frequency_is_clamped_to_045_fs():
    sr = 22050.0
    np.testing.assert_array_equal(LowPass(15000.0).coefficients(sr),
                                  LowPass(0.45 * sr).coefficients(sr))
    np.testing.assert_array_equal(Peak(16000.0, 6.0, 1.0).coefficients(sr),
                                  Peak(0.45 * sr, 6.0, 1.0).coefficients(sr))
    assert not np.array_equal(Peak(9000.0, 6.0, 1.0).coefficients(sr),
                              Peak(0.45 * sr, 6.0, 1.0).coefficients(sr))


def test_design_matches_cookbook_reference_values():
    # independent numpy evaluation of the cookbook peaking EQ at one point
    sr, f0, g, q = 48000.0, 1000.0, 6.0, 2.0
    a = 10 ** (g / 40)
    w0 = 2 * np.pi * f0 / sr
    al = np.sin(w0) / (2 * q)
    b = np.array([1 + al * a, -2 * np.cos(w0), 1 - al * a]) / (1 + al / a)
    aa = np.array([-2 * np.cos(w0), 1 - al / a]) / (1 + al / a)
    np.testing.assert_allclose(bq.design(bq.PEAK, f0, g, q, sr), np.r_[b, aa], rtol=1e-12)
