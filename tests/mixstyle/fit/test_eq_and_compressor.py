"""The fit's identification pieces: transfer and pan of a known strip, the phase-aware EQ curve
fit, band weights, and the compressor's static curve recovered from audio."""

import numpy as np
import pytest
import scipy.signal
import torch

from dsp.eq import eq_curve_db, log_freqs
from dsp.params import TRACK, validate
from dsp.strip import ChannelStrip
from mixstyle.fit import compressor as fc
from mixstyle.fit import eq as feq
from mixstyle.fit import transfer as tf
from mixstyle.twin import console as twin

SR = 44100.0
EQ_A = {"hpf_freq_hz": 90.0, "peak2_freq_hz": 800.0, "peak2_gain_db": 5.0, "peak2_q": 1.5,
        "high_shelf_gain_db": 4.0}
STRIP_A = dict(EQ_A, output_gain_db=-2.0, pan=-0.4)
STRIP_B = {"peak1_freq_hz": 300.0, "peak1_gain_db": -6.0, "lpf_freq_hz": 6000.0, "pan": 0.5}


def _mix(stems, settings):
    return sum(ChannelStrip(SR, s).process(a, SR) for a, s in zip(stems, settings))


@pytest.fixture
def measured(make_stems):
    stems = make_stems(seed=8, seconds=3.0, n_stems=2)
    mix = _mix(stems, [STRIP_A, STRIP_B])
    h, power, var = (t.numpy() for t in tf.transfer_functions(tf.stft(stems), tf.stft(mix)))
    return stems, h, power, var


def test_transfer_of_a_known_strip_and_its_pan(measured):
    _, h, power, var = measured
    freqs = np.fft.rfftfreq(tf.N_FFT, 1.0 / SR)
    sel = (freqs >= 50.0) & (freqs <= 8000.0)                     # where both stems play
    for i, strip in enumerate((STRIP_A, STRIP_B)):
        pan, curve, _ = tf.prepan_curve(h[i], power[i], var[i])
        assert pan == pytest.approx(strip["pan"], abs=0.005)
        values = validate(TRACK, strip)
        want = feq.eq_response(values, freqs[sel], SR) * 10 ** (values["output_gain_db"] / 20)
        ratio = curve[sel] / want
        mag_db = 20 * np.log10(np.abs(ratio))
        assert np.median(np.abs(mag_db)) <= 0.1, np.percentile(np.abs(mag_db), [50, 90])
        assert np.percentile(np.abs(mag_db), 90) <= 0.5
        assert np.median(np.abs(np.angle(ratio))) <= 0.02        # phase too, not only |H|


def test_eq_curve_fit_tells_a_high_pass_by_its_phase(measured):
    """A 90 Hz high-pass and a deep low shelf look alike in magnitude over 20 Hz-20 kHz; the
    measured phase decides, and the fitted curve is the true one."""
    _, h, power, var = measured
    pan, curve, variance = tf.prepan_curve(h[0], power[0], var[0])
    centres, bands, weights = tf.band_average(curve[None], variance[None], power[0].sum(0)[None],
                                              SR)
    best = feq.rank_eq(feq.fit_eq(centres, bands, weights, SR)[0])[0]
    assert best.params["hpf_freq_hz"] > 60.0, best.params
    assert best.mag_rms_db <= 0.3 and best.phase_rms_rad <= 0.03, best
    freqs = log_freqs(120)
    want = eq_curve_db(TRACK, validate(TRACK, EQ_A), freqs, SR)
    got = eq_curve_db(TRACK, validate(TRACK, best.params), freqs, SR)
    diff = (got - got.mean()) - (want - want.mean())
    assert np.sqrt(np.mean(diff ** 2)) <= 0.5


def test_band_weights_follow_where_a_stem_plays(make_stems):
    """Stem B has no content above ~3 kHz: its measured curve there is noise and gets (almost)
    no weight, while its pass band counts (about) fully."""
    stems = make_stems(seed=9, seconds=3.0, n_stems=2)
    sos = scipy.signal.butter(8, 2000.0, fs=SR, output="sos")
    stems[1] = scipy.signal.sosfilt(sos, stems[1], axis=-1).astype(np.float32)
    mix = _mix(stems, [STRIP_A, STRIP_B])
    h, power, var = (t.numpy() for t in tf.transfer_functions(tf.stft(stems), tf.stft(mix)))
    curves, variances = zip(*(tf.prepan_curve(h[i], power[i], var[i])[1:] for i in (0, 1)))
    centres, _, weights = tf.band_average(np.array(curves), np.array(variances),
                                          power.sum(axis=1), SR)
    pass_band = (centres > 100) & (centres < 1500)
    assert np.median(weights[1, pass_band]) >= 0.85 and weights[1, pass_band].min() >= 0.5
    assert weights[1, centres > 6000].max() <= 0.1
    assert np.median(weights[0, centres > 6000]) >= 0.75


def test_gain_curve_matches_the_twin(make_stems):
    audio = make_stems(seed=4, seconds=1.0, n_stems=1)[0] * 4.0
    values = {"comp_threshold_db": -30.0, "comp_ratio": 4.0, "comp_knee_db": 6.0,
              "comp_attack_ms": 3.0, "comp_release_ms": 80.0}
    ours = fc.gain_curve_db(fc.level_db(audio), values, SR)
    x = torch.from_numpy(audio.astype(np.float64))[None]
    args = [torch.tensor([values[k]], dtype=torch.float64) for k in
            ("comp_threshold_db", "comp_ratio", "comp_attack_ms", "comp_release_ms",
             "comp_knee_db")]
    with torch.no_grad():
        theirs = twin.gain_curve_db(x, SR, *args)[0].numpy()
    assert ours.min() < -6.0                      # it does compress
    assert np.max(np.abs(ours - theirs)) <= 1e-9


@pytest.mark.parametrize("ratio, threshold_db", [(4.0, -30.0), (2.0, -36.0)])
def test_compressor_static_curve_is_recovered(make_stems, ratio, threshold_db):
    audio = make_stems(seed=6, seconds=2.0, n_stems=1)[0] * 3.0
    truth = {"comp_threshold_db": threshold_db, "comp_ratio": ratio, "comp_attack_ms": 5.0,
             "comp_release_ms": 120.0, "output_gain_db": -3.0, "pan": 0.25}
    target = ChannelStrip(SR, truth).process(audio, SR)
    fit = fc.fit_compressor(audio, target, SR)
    assert fit.compressed
    assert fit.error <= 1e-4 * fit.target_energy < fit.baseline     # -40 dB, and better than none
    levels = fc.level_db(audio)
    grid = torch.linspace(float(np.percentile(levels, 50)), float(levels.max()), 25,
                          dtype=torch.float64)
    full = validate(TRACK, truth)

    def static(v):
        return twin.static_gain_db(grid, *(torch.tensor(float(v[k]), dtype=torch.float64) for k in
                                           ("comp_threshold_db", "comp_ratio", "comp_knee_db")))

    assert torch.max(torch.abs(static(fit.values) - static(full))) <= 0.5
    assert fit.values["comp_attack_ms"] == pytest.approx(5.0, rel=0.3)
    assert fit.values["comp_release_ms"] == pytest.approx(120.0, rel=0.3)
    # the L/R gains carry the fader and the pan law
    law = twin.pan_gains(torch.tensor([0.25]))[0].numpy() * 10 ** (-3.0 / 20)
    assert np.allclose(fit.gains, law, rtol=0.02)


def test_uncompressed_stem_gets_no_compressor(make_stems):
    audio = make_stems(seed=7, seconds=2.0, n_stems=1)[0] * 3.0
    target = ChannelStrip(SR, {"peak2_gain_db": 0.0, "output_gain_db": 2.0}).process(audio, SR)
    noisy = target + 0.01 * np.random.default_rng(1).normal(size=target.shape).astype(np.float32)
    fit = fc.fit_compressor(audio, noisy, SR)
    assert not fit.compressed and fit.values == fc.uncompressed()
    assert np.allclose(fit.gains, 10 ** (2.0 / 20), rtol=0.01)


@pytest.mark.parametrize("return_db", [0.0, -6.0])
def test_a_compressor_under_a_reverb_return_is_still_found(make_stems, return_db):
    """The mix holds a reverb return (the stem itself and another one, through pedalboard's
    Reverb, 100 % wet) that no strip makes: its energy is in the stem's target but no gain
    envelope of either stem explains it (the floor), so it must not hide the compressor.
    Judged on the whole uncompressed error, mostly the return when it is as loud as the stem,
    the compressor is dropped."""
    import pedalboard as pb
    audio, other = make_stems(seed=6, seconds=3.0, n_stems=2) * 3.0
    truth = {"comp_threshold_db": -30.0, "comp_ratio": 4.0, "comp_attack_ms": 5.0,
             "comp_release_ms": 120.0, "output_gain_db": -3.0}
    dry = ChannelStrip(SR, truth).process(audio, SR)
    room = pb.Reverb(room_size=0.8, damping=0.5, wet_level=1.0, dry_level=0.0)
    wet = room(np.ascontiguousarray(dry + other * 0.5), SR)
    wet *= np.sqrt(np.mean(dry.astype(np.float64) ** 2) / np.mean(wet.astype(np.float64) ** 2))
    target = dry + wet * 10.0 ** (return_db / 20.0)
    if return_db == 0.0:   # judged on the whole uncompressed error (half of it the return): dropped
        assert not fc.fit_compressor(audio, target, SR).compressed
    floor = fc.gain_envelope_floor(np.stack([audio, other]), target, SR)
    fit = fc.fit_compressor(audio, target, SR, floor=floor)
    assert fit.compressed, fit
    levels = fc.level_db(audio)
    grid = torch.linspace(float(np.percentile(levels, 50)), float(levels.max()), 25,
                          dtype=torch.float64)

    def static(v):
        return twin.static_gain_db(grid, *(torch.tensor(float(v[k]), dtype=torch.float64) for k in
                                           ("comp_threshold_db", "comp_ratio", "comp_knee_db")))

    # 10-29 dB of gain reduction over the stem's upper half, recovered within 30 % of it
    # (the return holds the stem's own reverb too: its early part follows the stem and blurs
    # the curve)
    true_gr = static(validate(TRACK, truth))
    assert torch.all(torch.abs(static(fit.values) - true_gr) <= 0.3 * torch.abs(true_gr))
    assert fit.values["comp_ratio"] >= 2.0


def test_gain_envelope_floor_is_what_no_gain_of_the_stem_explains(make_stems):
    """A target that is the stem under a slow gain leaves almost nothing; added noise that is not in
    the stem stays (all but the 1/441 a free gain per 10 ms block fits of it)."""
    audio = make_stems(seed=9, seconds=2.0, n_stems=1)[0].astype(np.float64)
    t = np.arange(audio.shape[-1]) / SR
    ridden = audio * (0.5 + 0.4 * np.sin(2 * np.pi * 3.0 * t))
    assert fc.gain_envelope_floor(audio[None], ridden, SR) <= 1e-3 * np.sum(ridden ** 2)   # -30 dB
    noise = np.random.default_rng(2).normal(size=audio.shape) * 0.05
    left = fc.gain_envelope_floor(audio[None], ridden + noise, SR)
    assert left == pytest.approx(np.sum(noise ** 2), rel=0.02)
