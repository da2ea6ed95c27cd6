"""The strip compressor as gain reduction at the stem's loud level (mixstyle.train.dynamics): the
measurement, the threshold it places, and what that threshold does to the audio."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dsp.params import TRACK, spec
from dsp.strip import ChannelStrip
from mixstyle.train.dynamics import (FLOOR_DB, GAIN_REDUCTION, OFF_DB, gain_reduction_db,
                                     loud_level_db, target_db, threshold_db, threshold_torch)
from mixstyle.train.model import I_GR, I_RATIO, PREDICTED_TRACK, TRACK_TARGETS, track_values

SR = 48000.0


def _square(amplitude: float, seconds: float = 2.0, freq: float = 100.0) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    x = amplitude * np.sign(np.sin(2 * np.pi * freq * t) + 1e-12)
    return np.stack([x, x]).astype(np.float32)


def test_loud_level_is_the_loud_parts_peak_level():
    # loud bursts (-6 dBFS) a third of the time over a quiet bed (-30 dBFS): the 95th
    # percentile of the 50 ms peaks is the bursts' level, one click does not move it
    x = _square(10 ** (-30 / 20), 6.0)
    x[:, : int(2 * SR)] *= 10 ** (24 / 20)
    x[:, int(3 * SR)] = 1.0
    assert loud_level_db(x, SR) == pytest.approx(-6.02, abs=0.05)
    assert loud_level_db(np.zeros((2, int(SR)), np.float32), SR) is None
    assert loud_level_db(x[:, :100], SR) is None     # shorter than one window


@pytest.mark.parametrize("loud", [-20.0, -6.0])
@pytest.mark.parametrize("gr", [0.5, 4.0, 12.0])
@pytest.mark.parametrize("ratio", [1.5, 4.0, 20.0])
def test_threshold_gives_back_the_gain_reduction(loud, gr, ratio):
    thr = threshold_db(loud, gr, ratio)
    t = spec(TRACK, "comp_threshold_db")
    if thr > max(t.min, loud - FLOOR_DB):   # not at the floor nor the table's end
        assert gain_reduction_db(loud, thr, ratio) == pytest.approx(gr, abs=1e-9)
    torch_thr = threshold_torch(torch.tensor([loud]), torch.tensor([gr]), torch.tensor([ratio]))
    assert float(torch_thr) == pytest.approx(thr, abs=1e-4)


def test_ratio_near_one_and_silence():
    # a ratio near 1 cannot take much off: the threshold stops FLOOR_DB under the loud level
    assert threshold_db(-10.0, 6.0, 1.01) == pytest.approx(-10.0 - FLOOR_DB)
    assert threshold_db(None, 6.0, 4.0) == spec(TRACK, "comp_threshold_db").default
    thr = threshold_torch(torch.tensor([float("nan"), -10.0]), torch.tensor([6.0, 6.0]),
                          torch.tensor([4.0, 4.0]))
    assert thr.tolist() == pytest.approx([spec(TRACK, "comp_threshold_db").default, -18.0])
    assert gain_reduction_db(-10.0, -30.0, 1.0) == 0.0


def test_a_compressor_that_is_off_is_learned_and_set_as_off():
    off = spec(TRACK, "comp_threshold_db").default
    # a ratio of 1, or a threshold over the loud level: the target is under 0 dB
    assert target_db(-10.0, -30.0, 1.0) == OFF_DB < 0
    assert target_db(-10.0, -5.0, 4.0) == OFF_DB
    assert target_db(-10.0, -30.0, 4.0) == pytest.approx(15.0)
    # a network output near the end of its range (a sigmoid's 0.02) still means off, with any
    # ratio it predicts: no squeeze for a producer who never compresses
    near_end = GAIN_REDUCTION.denormalise(0.02)
    assert near_end < 0
    assert threshold_db(-10.0, near_end, 1.06) == off
    assert threshold_db(-10.0, 0.0, 4.0) == off
    thr = threshold_torch(torch.tensor([-10.0, -10.0]), torch.tensor([near_end, 6.0]),
                          torch.tensor([1.06, 4.0]))
    assert thr.tolist() == pytest.approx([off, -18.0])


def test_network_outputs_to_the_table():
    assert TRACK_TARGETS[I_GR] is GAIN_REDUCTION
    assert PREDICTED_TRACK[I_GR].name == "comp_threshold_db"
    u = torch.full((len(TRACK_TARGETS),), 0.5)
    u[I_GR] = GAIN_REDUCTION.normalise(6.0)
    u[I_RATIO] = spec(TRACK, "comp_ratio").normalise(4.0)
    values = track_values(u, -12.0)
    assert list(values) == [p.name for p in PREDICTED_TRACK]
    assert values["comp_threshold_db"] == pytest.approx(-20.0, abs=1e-4)
    assert track_values(u, -2.0)["comp_threshold_db"] == pytest.approx(-10.0, abs=1e-4)


@pytest.mark.parametrize("gr", [3.0, 8.0])
def test_the_placed_threshold_takes_that_much_off_the_loud_parts(gr):
    # measured through the console's strip: a stem whose loud parts sit at -9 dBFS comes out
    # ``gr`` dB lower there with the threshold placed for ``gr`` at 4:1 (knee 0, fast attack)
    x = _square(10 ** (-9 / 20))
    loud = loud_level_db(x, SR)
    params = {"comp_threshold_db": threshold_db(loud, gr, 4.0), "comp_ratio": 4.0,
              "comp_attack_ms": 0.1, "comp_release_ms": 50.0, "comp_knee_db": 0.0}
    y = ChannelStrip(SR, params).process(x, SR)
    tail = slice(int(SR), None)   # settled
    took = 20 * np.log10(np.abs(x[:, tail]).max() / np.abs(y[:, tail]).max())
    assert took == pytest.approx(gr, abs=0.1)
