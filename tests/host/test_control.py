"""Parameter control: overrides win, strength scales toward neutral, freeze stops the model."""

from __future__ import annotations

import math

import numpy as np
import pytest

from dsp.errors import HostError, ParameterError
from dsp.params import MASTER_NAMES, TRACK_NAMES, ConsoleSetting, TrackSetting
from host.control import MASTER_TARGET, Control
from host.ringbuffer import RecordQueue


def _setting(gain_db=-6.0, hpf_hz=100.0, master_gain_db=2.0):
    return ConsoleSetting(
        tracks=(TrackSetting("a", {"output_gain_db": gain_db, "hpf_freq_hz": hpf_hz}),
                TrackSetting("b", {"pan": 0.5})),
        master={"gain_db": master_gain_db})


def _drain(q):
    rec, got = np.zeros(3), {}
    while q.pop_into(rec):
        got[(int(rec[0]), int(rec[1]))] = rec[2]
    return got


def _key(track, name):
    if track is None:
        return (MASTER_TARGET, MASTER_NAMES.index(name))
    return (track, TRACK_NAMES.index(name))


def test_override_wins_until_released():
    q = RecordQueue()
    c = Control(["a", "b"], _setting(), q)
    c.set_override("a", "output_gain_db", -20.0)
    assert _drain(q) == {_key(0, "output_gain_db"): -20.0}   # only what changed is sent
    c.update_prediction(_setting(gain_db=-3.0))
    assert c.value("a", "output_gain_db") == -20.0
    assert _key(0, "output_gain_db") not in _drain(q)
    c.release("a", "output_gain_db")
    assert _drain(q) == {_key(0, "output_gain_db"): -3.0}


def test_strength_zero_is_neutral_and_half_is_the_normalised_midpoint():
    q = RecordQueue()
    c = Control(["a", "b"], _setting(hpf_hz=1000.0), q)
    c.set_strength(0.0)
    assert c.value("a", "output_gain_db") == 0.0 and c.value("a", "hpf_freq_hz") == 10.0
    assert c.value(None, "gain_db") == 0.0
    c.set_strength(0.5)
    assert c.value("a", "output_gain_db") == pytest.approx(-3.0)
    # log-scale: halfway between 10 Hz and 1000 Hz is 100 Hz
    assert c.value("a", "hpf_freq_hz") == pytest.approx(100.0, rel=1e-9)
    got = _drain(q)
    assert got[_key(0, "hpf_freq_hz")] == pytest.approx(100.0)
    assert got[_key(None, "gain_db")] == pytest.approx(1.0)


def test_freeze_ignores_predictions_and_smoothing_moves_part_way():
    q = RecordQueue()
    c = Control(["a", "b"], _setting(gain_db=-12.0), q)
    c.freeze()
    assert not c.update_prediction(_setting(gain_db=0.0))
    assert c.value("a", "output_gain_db") == -12.0
    c.freeze(False)
    assert c.update_prediction(_setting(gain_db=0.0), smoothing=0.75)
    assert c.value("a", "output_gain_db") == pytest.approx(-9.0)   # a quarter of the way


def test_setting_round_trips_the_effective_values():
    c = Control(["a", "b"], _setting(), RecordQueue())
    c.set_override(None, "gain_db", -4.0)
    s = c.setting()
    assert s.track("a").params["output_gain_db"] == -6.0
    assert s.master["gain_db"] == -4.0 and s.master["target_lufs"] is None


def test_bad_control_calls_name_the_problem():
    c = Control(["a"], ConsoleSetting(tracks=(TrackSetting("a", {}),)), RecordQueue())
    with pytest.raises(ParameterError, match="no track named 'zz'"):
        c.set_override("zz", "pan", 0.0)
    with pytest.raises(ParameterError, match=r"track.pan .*out of range: allowed -1 .. 1"):
        c.set_override("a", "pan", 3.0)
    with pytest.raises(ParameterError, match="unknown track parameter 'gain'"):
        c.set_override("a", "gain", 0.0)
    with pytest.raises(ParameterError, match="limiter_lookahead_ms cannot change while playing"):
        c.set_override(None, "limiter_lookahead_ms", 2.0)
    with pytest.raises(ParameterError, match="strength = 2 is out of range: allowed 0 .. 1"):
        c.set_strength(2)
    with pytest.raises(HostError, match="smoothing"):
        c.update_prediction(c.setting(), smoothing=1.0)
    assert math.isfinite(c.value("a", "pan"))


def test_blend_is_each_parameters_own_normalised_interpolation():
    """The vector blend equals ParamSpec.normalise/denormalise column by column, to within 4
    units in the last place: numpy's log and power on a vector (SIMD, AVX-512 on some of these
    machines) and on one number are not the same code, and differ by up to 2 ulps on a Xeon
    (bit for bit on an EPYC)."""
    from dsp.params import MASTER_PARAMS, TRACK_PARAMS
    from host.control import _blend
    rng = np.random.default_rng(5)
    for specs, shape in ((TRACK_PARAMS, (16, len(TRACK_PARAMS))),
                         (MASTER_PARAMS, (len(MASTER_PARAMS),))):
        lo = np.array([p.min for p in specs])
        hi = np.array([p.max for p in specs])
        for w in (0.25, 0.5, 0.9):
            a = lo + (hi - lo) * rng.uniform(size=shape)
            b = lo + (hi - lo) * rng.uniform(size=shape)
            want = np.array(a)
            for k, p in enumerate(specs):
                ua, ub = p.normalise(a[..., k]), p.normalise(b[..., k])
                want[..., k] = np.clip(p.denormalise(ua + w * (ub - ua)), p.min, p.max)
            np.testing.assert_array_max_ulp(_blend(specs, a, b, w), want, maxulp=4)
