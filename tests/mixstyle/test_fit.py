"""Analysis by synthesis: a song mixed by our own console with known settings is recovered."""

import numpy as np

from dsp.eq import eq_curve_db, log_freqs
from dsp.params import TRACK, validate
from dsp.strip import ChannelStrip
from mixstyle.fit import FitConfig, fit_mix

SR = 44100.0
KNOWN = [
    {"hpf_freq_hz": 90.0, "low_shelf_gain_db": -3.0, "peak2_freq_hz": 800.0,
     "peak2_gain_db": 5.0, "peak2_q": 1.5, "high_shelf_gain_db": 4.0,
     "output_gain_db": -2.0, "pan": -0.4},
    {"peak1_freq_hz": 300.0, "peak1_gain_db": -6.0, "peak3_freq_hz": 5000.0, "peak3_gain_db": 3.0,
     "comp_threshold_db": -30.0, "comp_ratio": 3.0, "comp_attack_ms": 5.0,
     "comp_release_ms": 120.0, "output_gain_db": 1.0, "pan": 0.3},
    {"lpf_freq_hz": 8000.0, "low_shelf_gain_db": 4.0, "low_shelf_freq_hz": 200.0,
     "output_gain_db": -4.0, "pan": 0.0},
]


def _own_console_mix(stems, settings):
    mix = np.zeros(stems.shape[1:], dtype=np.float32)
    for audio, values in zip(stems, settings):
        mix += ChannelStrip(SR, values).process(audio, SR)
    return mix


def test_fit_recovers_known_settings(make_stems):
    stems = make_stems(seed=3, seconds=3.0, n_stems=3)
    # the fit trims every stem to the staging level first; mix with that same trim
    from dsp.loudness import integrated_loudness
    from mixstyle.features import stage_gain_db
    truth = [validate(TRACK, dict(k, input_gain_db=stage_gain_db(integrated_loudness(s, SR))))
             for k, s in zip(KNOWN, stems)]
    mix = _own_console_mix(stems, truth)
    result = fit_mix(stems, mix, SR, ["a", "b", "c"], ["other"] * 3,
                     FitConfig(seconds=3.0, steps=240, starts=2))
    assert result.error_db <= -30.0, result.quality()
    freqs = log_freqs(120)
    for true, track in zip(truth, result.setting.tracks):
        want = eq_curve_db(TRACK, true, freqs, SR)
        got = eq_curve_db(TRACK, track.params, freqs, SR)
        # overall level belongs to the fader; compare the curve's shape
        diff = (got - got.mean()) - (want - want.mean())
        assert np.sqrt(np.mean(diff ** 2)) <= 1.0, (track.name, track.params)
