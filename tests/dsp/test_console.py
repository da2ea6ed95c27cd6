"""Console, MasterBus and render: block invariance, equality with the parts, loudness target."""

import numpy as np
import pytest

from dsp import params as P
from dsp.console import Console, MasterBus
from dsp.limiter import Limiter
from dsp.loudness import integrated_loudness, true_peak_dbtp
from dsp.render import render
from dsp.strip import ChannelStrip

RATES = (44100, 48000)


def setting(n, master=None, **extra):
    tracks = tuple(P.TrackSetting(f"t{i}", P.validate("track", dict(
        hpf_freq_hz=40.0 + 30 * i, peak2_gain_db=2.0 - i, peak2_freq_hz=500.0 * (i + 1),
        comp_threshold_db=-28.0, comp_ratio=2.0 + i, comp_makeup_db=2.0,
        pan=-0.6 + 1.2 * i / max(n - 1, 1), output_gain_db=-3.0, **extra)))
        for i in range(n))
    m = dict(low_shelf_gain_db=1.5, peak3_gain_db=-1.0, comp_threshold_db=-18.0, comp_ratio=2.0,
             gain_db=3.0, limiter_ceiling_db=-1.0)
    return P.ConsoleSetting(tracks, P.validate("master", m | (master or {})))


@pytest.mark.parametrize("sr", RATES)
@pytest.mark.parametrize("block", (32, 128, 1000, 8192))
def test_blocks_equal_whole_file(make_stems, sr, block):
    stems = make_stems(1, seconds=1.5, n_stems=3, sample_rate=float(sr)) * 4
    s = setting(3)
    whole = Console(sr, s).process(stems, sr)
    c = Console(sr, s)
    parts = np.concatenate([c.process(stems[:, :, i:i + block]) for i in
                            range(0, stems.shape[2], block)], axis=1)
    assert np.abs(parts - whole).max() <= 1e-6
    assert c.master.limiter_gain_reduction_db >= 0.0


def test_console_equals_its_parts(make_stems):
    sr = 48000
    stems = make_stems(2, seconds=1.0, n_stems=4, sample_rate=float(sr)) * 4
    s = setting(4)
    out = Console(sr, s).process(stems)
    mix = np.zeros((2, stems.shape[2]), dtype=np.float32)
    for t, x in zip(s.tracks, stems):
        mix += ChannelStrip(sr, t.params)(x, sr)
    ref = MasterBus(sr, s.master)(mix, sr)
    assert np.abs(out - ref).max() <= 1e-6
    assert np.abs(out).max() <= 10 ** (-1 / 20)  # the limiter ceiling holds


def test_neutral_console_is_a_delayed_sum(make_stems):
    sr = 44100
    stems = make_stems(3, seconds=0.5, n_stems=3, sample_rate=float(sr)) * 0.2
    tracks = tuple(P.TrackSetting(f"t{i}", P.neutral("track")) for i in range(3))
    c = Console(sr, P.ConsoleSetting(tracks, P.neutral("master")))
    out = c.process(stems)
    lat = c.latency_samples
    assert lat == round(0.005 * sr)
    expected = stems[0] + stems[1] + stems[2]
    assert np.abs(out[:, :lat]).max() == 0.0
    np.testing.assert_allclose(out[:, lat:], expected[:, :-lat], rtol=0, atol=1e-7)


def test_parameter_changes_reach_strips_and_master(make_stems):
    sr = 48000
    stems = make_stems(4, seconds=0.5, n_stems=2, sample_rate=float(sr))
    c = Console(sr, setting(2))
    c.set_track_params("t1", {"output_gain_db": -60.0})
    c.set_track_params(0, {"pan": -1.0})
    c.set_master_params({"gain_db": -6.0, "limiter_ceiling_db": -3.0, "target_lufs": -16.0})
    c.process(stems)
    assert c.strips[1].current["output_gain_db"] == -60.0
    assert c.strips[0].current["pan"] == -1.0
    assert c.master.params["gain_db"] == -6.0 and c.master.limiter.ceiling_db == -3.0
    assert c.master.target_lufs == -16.0
    c.set_master_params({"limiter_lookahead_ms": 2.0})
    assert c.latency_samples == round(0.002 * sr)


@pytest.mark.parametrize("sr", RATES)
def test_render_is_latency_compensated(make_stems, sr):
    stems = make_stems(5, seconds=1.0, n_stems=3, sample_rate=float(sr))
    s = setting(3)
    r = render(stems, sr, s)
    assert r.audio.shape == (2, stems.shape[2]) and r.audio.dtype == np.float32
    c = Console(sr, s)
    lat = c.latency_samples
    raw = c.process(stems)
    np.testing.assert_array_equal(r.audio[:, :-lat], raw[:, lat:])
    assert r.master_gain_db == 3.0
    assert r.loudness_lufs == pytest.approx(integrated_loudness(r.audio, sr))


@pytest.mark.parametrize("target", (-23.0, -14.0, -9.0))
def test_render_reaches_the_loudness_target(make_stems, target):
    sr = 44100
    stems = make_stems(6, seconds=4.0, n_stems=3, sample_rate=float(sr))
    s = setting(3, master={"target_lufs": target})
    r = render(stems, sr, s)
    # -9 LUFS drives these noise stems 12 dB into the limiter: its ceiling comes down 1.3 dB to
    # hold the true peak, and the 24 dB gain range ends 0.2 LU short of the target
    assert r.loudness_lufs == pytest.approx(target, abs=0.1 if target < -9 else 0.25)
    assert -24.0 <= r.master_gain_db <= 24.0
    assert np.abs(r.audio).max() <= 10 ** (-1 / 20)
    assert r.true_peak_dbtp <= -1.0 + 0.01 and r.true_peak_dbtp == true_peak_dbtp(r.audio, sr)
    assert r.limiter_ceiling_db <= -1.0
    # the render is what the console makes with that master gain and the ceiling the limiter
    # ran at (float32 rounding apart)
    s2 = P.ConsoleSetting(s.tracks, s.master | {"gain_db": r.master_gain_db, "target_lufs": None,
                                                "limiter_ceiling_db": r.limiter_ceiling_db})
    r2 = render(stems, sr, s2)
    assert np.abs(r2.audio - r.audio).max() <= 1e-5
    # an explicit override wins over the setting; None switches normalisation off
    assert render(stems, sr, s, target_lufs=None).master_gain_db == s.master["gain_db"]


@pytest.mark.parametrize("scale", (1e-2, 1e-4))  # measurable / below the meter's -70 LUFS gate
def test_render_clips_the_gain_when_the_target_is_out_of_reach(make_stems, scale):
    sr = 44100
    stems = make_stems(7, seconds=2.0, n_stems=2, sample_rate=float(sr)) * scale
    r = render(stems, sr, setting(2, master={"target_lufs": -5.0}))
    assert r.master_gain_db == 24.0
    assert r.loudness_lufs < -20.0 or r.loudness_lufs == -np.inf


def test_render_of_silence_keeps_the_gain():
    stems = np.zeros((2, 2, 44100), dtype=np.float32)
    r = render(stems, 44100, setting(2, master={"target_lufs": -14.0}))
    assert r.master_gain_db == 0.0 and np.all(r.audio == 0.0)
    assert r.loudness_lufs == -np.inf


def test_limiter_is_the_documented_one():
    assert isinstance(MasterBus(48000).limiter, Limiter)
