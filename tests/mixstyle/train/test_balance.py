"""Track balance as loudness (mixstyle.train.balance): the measure, its inverse, its torch twin, and
how pans get their sides."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from dsp.loudness import integrated_loudness
from dsp.params import TRACK, ConsoleSetting, TrackSetting, validate
from dsp.render import render, render_prefader
from mixstyle.train.balance import (PREFADER, assign_sides, memo_strips, output_gains,
                                    strip_loudness, torch_loudness, track_levels)

SR = 44100.0


def _stems(seed: int = 0, n: int = 3, seconds: float = 3.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 2, int(SR * seconds))).astype(np.float32) * 0.05
    x[1, :, : x.shape[2] // 2] = 0.0          # a part that enters halfway
    x[2] *= np.float32(0.2)
    return x


TRACKS = [
    {"input_gain_db": 3.0, "output_gain_db": -4.0, "hpf_freq_hz": 120.0, "pan": -0.5,
     "comp_threshold_db": -30.0, "comp_ratio": 4.0},
    {"input_gain_db": -2.0, "output_gain_db": 2.5, "peak2_gain_db": 6.0, "pan": 0.7},
    {"output_gain_db": -9.0, "high_shelf_gain_db": -6.0, "comp_makeup_db": 3.0},
]


def test_levels_are_loudness_in_the_mix():
    stems = _stems()
    levels, bus = track_levels(stems, SR, TRACKS)
    setting = ConsoleSetting(tuple(TrackSetting(f"t{i}", validate(TRACK, p, "t"))
                                   for i, p in enumerate(TRACKS)))
    mix = render(stems, SR, setting).audio
    assert bus == pytest.approx(integrated_loudness(mix, SR), abs=1e-3)
    for i, level in enumerate(levels):
        alone = ConsoleSetting((setting.tracks[i],))
        out = render(stems[i:i + 1], SR, alone).audio
        assert level == pytest.approx(integrated_loudness(out, SR) - bus, abs=1e-3)


def test_output_gains_invert_the_levels():
    """Faders from the measured levels put every track back where it was, whatever its EQ,
    compressor and make-up did to its level."""
    stems = _stems(1)
    levels, bus = track_levels(stems, SR, TRACKS)
    gains = output_gains(stems, SR, [{k: v for k, v in t.items() if k != "output_gain_db"}
                                     for t in TRACKS], levels, bus)
    assert gains == pytest.approx([t["output_gain_db"] for t in TRACKS], abs=0.01)


def test_silent_track_has_no_level_and_keeps_unity():
    stems = _stems(2)
    stems[2] = 0.0
    levels, bus = track_levels(stems, SR, TRACKS)
    assert levels[2] is None and math.isfinite(bus)
    assert output_gains(stems, SR, TRACKS, [-6.0, -6.0, -6.0], bus)[2] == 0.0
    assert np.isneginf(strip_loudness(stems, SR, TRACKS)[2])


def test_torch_loudness_matches_the_meter_and_has_gradients():
    x = _stems(3)
    x[0] *= np.linspace(0.0, 1.0, x.shape[2], dtype=np.float32)[None]   # gating matters
    t = torch.from_numpy(x.astype(np.float64)).requires_grad_(True)
    got = torch_loudness(t, SR)
    for i in range(len(x)):
        assert float(got[i].detach()) == pytest.approx(integrated_loudness(x[i], SR), abs=0.01)
    got.sum().backward()
    assert t.grad is not None and float(t.grad.abs().sum()) > 0


def test_sides_keep_habits_and_balance_the_rest():
    # two guitars with the same width and no side habit: one each side, louder one first left
    assert assign_sides([0.6, 0.6, 0.0], [0.1, -0.2, 0.0], [-6.0, -8.0, -3.0]) == \
        [-0.6, 0.6, 0.0]
    # a habit wins even against balance
    assert assign_sides([0.5, 0.5], [0.9, 0.8], [-6.0, -6.0]) == [0.5, 0.5]
    # the quieter of three goes to the side with less panned loudness
    pans = assign_sides([0.5, 0.5, 0.3], [0.0, 0.0, 0.0], [-4.0, -10.0, -6.0])
    assert pans[0] == -0.5 and pans[2] == 0.3 and pans[1] == 0.5


def test_a_memo_measures_each_strip_setting_once_and_gives_the_same_loudness():
    """The held-out songs are mixed at several strengths with the same strips: a memo kept per
    song gives what measuring again gives, a changed fader reuses the strip it ran, and a
    changed strip is run anew."""
    stems = _stems(3)
    memo: dict = {}

    def counts() -> tuple[int, int]:
        runs = sum(1 for k in memo if k[0] == PREFADER)
        return len(memo) - runs, runs

    plain = strip_loudness(stems, SR, TRACKS)   # each strip run as set: float32 rounding apart
    first = strip_loudness(stems, SR, TRACKS, memo)
    assert np.allclose(first, plain, rtol=0, atol=1e-5) and counts() == (3, 3)
    assert np.array_equal(strip_loudness(stems, SR, TRACKS, memo), first) and counts() == (3, 3)
    louder = [dict(TRACKS[0], output_gain_db=2.0)] + TRACKS[1:]
    got = strip_loudness(stems, SR, louder, memo)
    assert counts() == (4, 3) and got[0] == pytest.approx(plain[0] + 6.0, abs=1e-3)
    assert np.array_equal(got[1:], first[1:])
    brighter = [dict(TRACKS[0], high_shelf_gain_db=4.0)] + TRACKS[1:]
    assert strip_loudness(stems, SR, brighter, memo)[0] > plain[0] + 0.5 and counts() == (5, 4)
    # the strips kept are the render's: mixed by render_prefader, the render of the setting
    setting = ConsoleSetting(tuple(TrackSetting(f"t{i}", validate("track", p))
                                   for i, p in enumerate(louder)), validate("master", {}))
    strips = memo_strips(memo, [s.shape for s in stems], [t.params for t in setting.tracks])
    ref = render(stems, SR, setting).audio
    assert np.max(np.abs(render_prefader(strips, SR, setting).audio - ref)) < 1e-5 * \
        np.max(np.abs(ref))
    assert memo_strips(memo, [s.shape for s in stems],
                       [validate("track", dict(TRACKS[0], lpf_freq_hz=5000.0))] +
                       [t.params for t in setting.tracks[1:]]) is None
