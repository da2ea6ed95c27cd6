"""BS.1770-4 / R128 meter: reference coefficients, pyloudnorm agreement, EBU Tech 3341/3342
style cases, gating, block-by-block equality and true peak."""

from __future__ import annotations

import math

import numpy as np
import pyloudnorm
import pytest
import scipy.signal

from dsp import loudness as L

RNG = np.random.default_rng(1770)


def sine(freq_hz, level_dbfs, seconds, sr, channels=2, phase=0.0):
    t = np.arange(int(round(seconds * sr))) / sr
    x = 10 ** (level_dbfs / 20) * np.sin(2 * np.pi * freq_hz * t + phase)
    return np.tile(x, (channels, 1)).astype(np.float32)


def pink(seconds, sr, channels, level_dbfs=-20.0, seed=0):
    """1/f noise by spectral shaping, scaled to an RMS of ``level_dbfs``."""
    n = int(seconds * sr)
    spec = np.fft.rfft(np.random.default_rng(seed).standard_normal((channels, n)), axis=1)
    f = np.fft.rfftfreq(n, 1 / sr)
    spec[:, f < 20.0] = 0.0  # no sub-audio drift
    spec[:, f >= 20.0] /= np.sqrt(f[f >= 20.0])
    x = np.fft.irfft(spec, n, axis=1)
    x *= 10 ** (level_dbfs / 20) / np.sqrt(np.mean(x ** 2))
    return x.astype(np.float32)


def pyln(x, sr):
    return pyloudnorm.Meter(sr).integrated_loudness(x.T.astype(np.float64))


def kw_response_db(sr, freqs_hz):
    c = L.k_weighting_coeffs(sr)
    h = np.ones(len(freqs_hz), dtype=complex)
    for b0, b1, b2, a1, a2 in c:
        _, hs = scipy.signal.freqz([b0, b1, b2], [1, a1, a2], worN=freqs_hz, fs=sr)
        h *= hs
    return 20 * np.log10(np.abs(h))


# ---------------------------------------------------------------- K-weighting


def test_k_weighting_matches_bs1770_table_at_48k():
    c = L.k_weighting_coeffs(48000)
    ref = [[1.53512485958697, -2.69169618940638, 1.19839281085285, -1.69065929318241,
            0.73248077421585],
           [1.0, -2.0, 1.0, -1.99004745483398, 0.99007225036621]]
    np.testing.assert_allclose(c, ref, rtol=0, atol=1e-12)


@pytest.mark.parametrize("sr", [22050, 44100, 88200, 96000, 192000])
def test_k_weighting_same_analog_curve_at_every_rate(sr):
    f = np.array([20.0, 38.0, 100.0, 500.0, 997.0, 1681.0, 3000.0, 6000.0])
    diff = kw_response_db(sr, f) - kw_response_db(48000, f)
    tol_db = 0.02 if sr >= 44100 else 0.05  # bilinear warping of the shelf near Nyquist
    assert np.max(np.abs(diff)) < tol_db, diff
    k997, k_high = kw_response_db(sr, [997.0, 8000.0])
    if sr >= 44100:
        assert abs(k997 - 0.691) < 0.01  # why -0.691 appears in the loudness formula
        assert 3.7 < k_high < 4.1  # the +4 dB pre-filter shelf
    assert kw_response_db(sr, [10.0])[0] < -10.0  # RLB high-pass


# ---------------------------------------------------------------- agreement with pyloudnorm


def _signals(sr, channels):
    yield "sine100", sine(100, -12, 5, sr, channels)
    yield "sine1k", sine(1000, -20, 5, sr, channels)
    yield "sine5k", sine(5000, -35, 5, sr, channels)
    yield "pink", pink(6, sr, channels, -18)
    gaps = pink(8, sr, channels, -16, seed=3)
    gaps[:, int(1.5 * sr):int(4 * sr)] = 0.0  # silence: removed by the absolute gate
    gaps[:, int(5 * sr):int(6.5 * sr)] *= 10 ** (-25 / 20)  # quiet part: relative gate
    yield "gaps", gaps


@pytest.mark.parametrize("channels", [1, 2])
@pytest.mark.parametrize("sr", [44100, 48000])
def test_integrated_within_0p1_lu_of_pyloudnorm(sr, channels):
    for name, x in _signals(sr, channels):
        ours = L.integrated_loudness(x, sr)
        ref = pyln(x, sr)
        assert abs(ours - ref) < 0.1, (name, ours, ref)


def _reference_gated(x, sr):
    """BS.1770-4 gating written out directly on every 400 ms block (no histogram)."""
    hop = int(round(0.1 * sr))
    e = (_kweight(x, sr) ** 2).sum(axis=0)
    n_blocks = (x.shape[1] - 4 * hop) // hop + 1
    z = np.array([e[j * hop:j * hop + 4 * hop].mean() for j in range(n_blocks)])
    loud = -0.691 + 10 * np.log10(np.maximum(z, 1e-300))
    z_abs = z[loud >= -70]
    rel = -0.691 + 10 * np.log10(z_abs.mean()) - 10
    return -0.691 + 10 * np.log10(z[(loud >= -70) & (loud > rel)].mean())


def test_gating_matches_direct_formula_and_changes_the_result():
    sr = 48000
    x = pink(8, sr, 2, -16, seed=3)
    x[:, int(1.5 * sr):int(4 * sr)] = 0.0  # silence: removed by the absolute gate
    x[:, int(5 * sr):int(6.5 * sr)] *= 10 ** (-25 / 20)  # quiet part: relative gate
    gated = L.integrated_loudness(x, sr)
    assert abs(gated - _reference_gated(x, sr)) < 0.005
    ungated = -0.691 + 10 * np.log10(np.mean(_kweight(x, sr) ** 2) * 2)
    assert gated - ungated > 2.0


def _kweight(x, sr):
    y = x.astype(np.float64)
    for b0, b1, b2, a1, a2 in L.k_weighting_coeffs(sr):
        y = scipy.signal.lfilter([b0, b1, b2], [1, a1, a2], y, axis=1)
    return y


def test_five_channel_surround_weights():
    sr = 48000
    tone = sine(1000, -20, 3, sr, 1)[0]
    front, surround = np.zeros((5, tone.size), np.float32), np.zeros((5, tone.size), np.float32)
    front[0], surround[3] = tone, tone
    diff = L.integrated_loudness(surround, sr) - L.integrated_loudness(front, sr)
    assert abs(diff - 10 * math.log10(1.41)) < 1e-6
    x = pink(4, sr, 5, -20, seed=5)
    assert abs(L.integrated_loudness(x, sr) - pyln(x, sr)) < 0.1


@pytest.mark.parametrize("sr", [44100, 96000])
def test_same_loudness_at_every_sample_rate(sr):
    for freq_hz in (60.0, 1000.0, 8000.0):
        here = L.integrated_loudness(sine(freq_hz, -20, 4, sr), sr)
        assert abs(here - L.integrated_loudness(sine(freq_hz, -20, 4, 48000), 48000)) < 0.03


# ---------------------------------------------------------------- EBU Tech 3341 / 3342


def test_tech3341_stereo_1k_at_minus23_and_minus33():
    for level in (-23.0, -33.0):
        x = sine(1000, level, 20, 48000)
        m = L.LoudnessMeter(48000)
        m.process(x)
        for v in (m.integrated_lufs, m.momentary_lufs, m.short_term_lufs):
            assert abs(v - level) < 0.1


def test_tech3341_relative_gate_cases():
    sr = 48000

    def seq(parts):
        return np.concatenate([sine(1000, lv, s, sr) for lv, s in parts], axis=1)

    assert abs(L.integrated_loudness(seq([(-36, 10), (-23, 60), (-36, 10)]), sr) + 23) < 0.1
    assert abs(L.integrated_loudness(seq([(-72, 10), (-36, 10), (-23, 60), (-36, 10),
                                          (-72, 10)]), sr) + 23) < 0.1
    assert abs(L.integrated_loudness(seq([(-26, 20), (-20, 20.1), (-26, 20)]), sr) + 23) < 0.1


def test_997hz_full_scale_mono():
    assert abs(L.integrated_loudness(sine(997, 0, 5, 48000, 1), 48000) + 3.01) < 0.05


@pytest.mark.parametrize("lo_db, hi_db, lra_lu", [(-30, -20, 10), (-20, -15, 5), (-40, -20, 20)])
def test_tech3342_loudness_range(lo_db, hi_db, lra_lu):
    sr = 48000
    x = np.concatenate([sine(1000, hi_db, 20, sr), sine(1000, lo_db, 20, sr)], axis=1)
    m = L.LoudnessMeter(sr)
    m.process(x)
    assert abs(m.loudness_range_lu - lra_lu) < 1.0
    assert abs(m.momentary_max_lufs - hi_db) < 0.1


# ---------------------------------------------------------------- streaming, purity, silence


def test_block_by_block_equals_whole_file():
    sr = 44100
    x = np.concatenate([pink(4, sr, 2, -14, seed=9), sine(3000, -6, 3, sr)], axis=1)
    x[:, 1000] = 0.99  # a sharp sample for the true peak
    whole = L.LoudnessMeter(sr)
    whole.process(x)
    blocks = L.LoudnessMeter(sr)
    i, sizes = 0, [0, 1, 2, 7]
    while i < x.shape[1]:
        b = sizes.pop() if sizes else int(RNG.integers(1, 5000))
        blocks.process(x[:, i:i + b])
        i += b
    for name in ("integrated_lufs", "momentary_lufs", "short_term_lufs", "momentary_max_lufs",
                 "loudness_range_lu", "sample_peak_db", "true_peak_dbtp"):
        assert getattr(blocks, name) == getattr(whole, name), name
    assert whole.integrated_lufs == L.integrated_loudness(x, sr)
    assert whole.true_peak_dbtp == L.true_peak_dbtp(x, sr)


def test_reading_values_changes_nothing():
    sr = 48000
    x = pink(5, sr, 2, -20, seed=11)
    a, b = L.LoudnessMeter(sr), L.LoudnessMeter(sr)
    a.process(x[:, :100000])
    first = (a.true_peak_dbtp, a.integrated_lufs, a.loudness_range_lu)
    assert first == (a.true_peak_dbtp, a.integrated_lufs, a.loudness_range_lu)
    a.process(x[:, 100000:])
    b.process(x)
    assert (a.true_peak_dbtp, a.integrated_lufs) == (b.true_peak_dbtp, b.integrated_lufs)
    assert L.integrated_loudness(x, sr) == L.integrated_loudness(x, sr)
    a.reset()
    assert a.integrated_lufs == -math.inf and a.true_peak_dbtp == -math.inf


def test_silence_and_short_input_give_minus_inf_not_nan():
    sr = 48000
    z = np.zeros((2, sr * 2), np.float32)
    m = L.LoudnessMeter(sr)
    m.process(z)
    for v in (m.integrated_lufs, m.momentary_lufs, m.short_term_lufs, m.sample_peak_db,
              m.true_peak_dbtp, L.integrated_loudness(z, sr), L.true_peak_dbtp(z, sr),
              L.sample_peak_db(z), L.momentary_max_lufs(z, sr)):
        assert v == -math.inf
    assert m.loudness_range_lu == 0.0
    short = sine(1000, -20, 0.3, sr)  # shorter than one 400 ms block
    assert L.integrated_loudness(short, sr) == -math.inf
    assert abs(L.sample_peak_db(short) + 20) < 0.01
    below = sine(1000, -75, 3, sr)  # every block under the -70 LUFS absolute gate
    assert L.integrated_loudness(below, sr) == -math.inf


# ---------------------------------------------------------------- true peak


def _faded(x, sr, fade_s=0.1):
    n = int(fade_s * sr)
    w = np.hanning(2 * n)
    x = x.copy()
    x[:, :n] *= w[:n]
    x[:, -n:] *= w[n:]
    return x


@pytest.mark.parametrize("sr", [44100, 48000])
def test_inter_sample_peak_fs_over_4_at_45_degrees(sr):
    x = _faded(sine(sr / 4, 0, 2, sr, 2, phase=np.pi / 4), sr)
    x /= np.abs(x).max()  # sample peak exactly 0 dBFS
    assert L.sample_peak_db(x) == 0.0
    assert abs(L.true_peak_dbtp(x, sr) - 20 * math.log10(math.sqrt(2))) < 0.05  # +3.01 dBTP


def test_true_peak_of_tones_is_their_amplitude():
    sr = 48000
    for f in (997.0, 6000.0, 11025.0, 15000.0, 19000.0):
        for ph in (0.1, 0.7):
            x = _faded(sine(f, -3, 1, sr, 1, phase=ph), sr)
            assert abs(L.true_peak_dbtp(x, sr) + 3.0) < 0.1, (f, ph)


def test_true_peak_tracks_oversampled_reference_and_never_below_sample_peak():
    sr = 48000
    b, a = scipy.signal.butter(8, 0.8)
    for seed in range(4):
        x = scipy.signal.lfilter(b, a, np.random.default_rng(seed).standard_normal((2, sr)))
        x = (0.5 * x / np.abs(x).max()).astype(np.float32)
        ref = 20 * np.log10(np.abs(scipy.signal.resample_poly(x.astype(np.float64), 32, 1,
                                                              axis=1)).max())
        tp = L.true_peak_dbtp(x, sr)
        assert tp >= L.sample_peak_db(x)
        assert abs(tp - ref) < 0.3, (tp, ref)
