"""``render_prefader``: the mix from strips rendered once (faders at 0 dB, pans centred) is
``render``'s mix of the same setting, to float32 rounding, with the master's target or without."""

import numpy as np
import pytest

from dsp.loudness import integrated_loudness
from dsp.params import ConsoleSetting, TrackSetting, validate
from dsp.render import prefader_strips, render, render_prefader

SR = 48000.0


def _stems() -> np.ndarray:
    rng = np.random.default_rng(5)
    n = int(3 * SR)
    t = np.arange(n) / SR
    kick = np.zeros(n)
    kick[::12000] = 1.0
    kick = np.convolve(kick, np.exp(-np.arange(3000) / 300.0) * np.sin(
        2 * np.pi * 55 * np.arange(3000) / SR))[:n]
    keys = 0.2 * np.sin(2 * np.pi * 440 * t) * (1 + 0.5 * np.sin(2 * np.pi * 0.7 * t))
    noise = 0.05 * rng.normal(size=(2, n))
    return np.stack([np.stack([kick, kick]), np.stack([keys, 0.6 * keys]),
                     noise]).astype(np.float32)


def _setting(faders, pans, **master) -> ConsoleSetting:
    strips = ({"comp_threshold_db": -20.0, "comp_ratio": 4.0, "comp_attack_ms": 5.0,
               "comp_makeup_db": 3.0, "hpf_freq_hz": 40.0},
              {"peak1_freq_hz": 800.0, "peak1_gain_db": 4.0, "high_shelf_gain_db": -3.0,
               "input_gain_db": 2.0},
              {"low_shelf_gain_db": -6.0, "lpf_freq_hz": 9000.0})
    tracks = tuple(TrackSetting(name, validate("track", dict(s, output_gain_db=f, pan=p)))
                   for name, s, f, p in zip(("kick", "keys", "air"), strips, faders, pans))
    return ConsoleSetting(tracks, validate("master", {
        "comp_threshold_db": -18.0, "comp_ratio": 2.0, "low_shelf_gain_db": 1.5,
        "limiter_ceiling_db": -1.0, **master}))


@pytest.mark.parametrize("master", [{"target_lufs": -10.0}, {"target_lufs": None,
                                                              "gain_db": 4.0}])
def test_every_balance_from_one_pass_of_the_strips_is_the_render(master):
    stems = _stems()
    strips = prefader_strips(stems, SR, _setting((0.0, 0.0, 0.0), (0.0, 0.0, 0.0), **master))
    for faders, pans in (((-3.0, 2.5, -12.0), (0.0, -0.4, 0.8)),
                         ((6.0, -8.0, 0.0), (1.0, 0.3, -1.0))):
        setting = _setting(faders, pans, **master)
        ref, got = render(stems, SR, setting), render_prefader(strips, SR, setting)
        assert got.audio.shape == ref.audio.shape
        peak = float(np.max(np.abs(ref.audio)))
        assert peak > 0.3
        assert float(np.max(np.abs(got.audio - ref.audio))) < 1e-5 * peak   # a 0.1 dB fader change: 5e-3
        assert got.loudness_lufs == pytest.approx(ref.loudness_lufs, abs=0.01)
        assert got.master_gain_db == pytest.approx(ref.master_gain_db, abs=0.01)
        assert got.true_peak_dbtp == pytest.approx(ref.true_peak_dbtp, abs=0.01)
        if master["target_lufs"] is not None:
            assert integrated_loudness(got.audio, SR) == pytest.approx(-10.0, abs=0.1)
