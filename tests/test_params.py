"""The parameter table: ranges, normalisation round trips, JSON validation."""

import json
import math

import numpy as np
import pytest

from dsp import params as P
from dsp.errors import ParameterError


@pytest.mark.parametrize("p", P.TABLE, ids=lambda p: p.key)
def test_normalise_round_trip_and_bounds(p):
    for v in (p.min, p.default, p.max):
        u = p.normalise(v)
        assert -1e-12 <= u <= 1 + 1e-12
        assert math.isclose(p.denormalise(u), v, rel_tol=1e-9, abs_tol=1e-9)
    assert math.isclose(p.normalise(p.min), 0.0, abs_tol=1e-12)
    assert math.isclose(p.normalise(p.max), 1.0, abs_tol=1e-12)


def test_log_scale_midpoint_is_geometric_mean():
    p = P.spec("track", "hpf_freq_hz")
    assert math.isclose(p.denormalise(0.5), math.sqrt(p.min * p.max), rel_tol=1e-12)


def test_names_carry_units_and_are_unique_per_section():
    for section in ("track", "master"):
        names = [p.name for p in P.section_specs(section)]
        assert len(names) == len(set(names))
    for p in P.TABLE:
        if p.unit in ("dB", "dBFS"):
            assert p.name.endswith("_db"), p.name
        if p.unit == "Hz":
            assert p.name.endswith("_hz"), p.name
        if p.unit == "ms":
            assert p.name.endswith("_ms"), p.name


def test_json_round_trip():
    t = P.TrackSetting("kick", P.validate("track", {"output_gain_db": -3.5, "pan": 0.25}), "kick")
    s = P.ConsoleSetting((t,), P.validate("master", {"target_lufs": -12.0}))
    back = P.loads(P.dumps(s))
    assert back.track("kick").params["output_gain_db"] == -3.5
    assert back.master["target_lufs"] == -12.0
    assert back.track("kick").params["hpf_freq_hz"] == P.spec("track", "hpf_freq_hz").neutral


def _doc(**track_params):
    return json.dumps({"format": "mixstyle.console", "version": 1,
                       "tracks": [{"name": "vox", "params": track_params}], "master": {}})


@pytest.mark.parametrize("params, match", [
    ({"gain_dbb": 1.0}, r"unknown track parameter 'gain_dbb'"),
    ({"output_gain_db": 99.0}, r"track.output_gain_db \(.*'vox'\) = 99 is out of range: allowed -60 .. 12 dB"),
    ({"pan": "left"}, r"track.pan .* must be a number"),
    ({"comp_ratio": None}, r"track.comp_ratio .* must be a number"),
])
def test_bad_json_is_named(params, match):
    with pytest.raises(ParameterError, match=match):
        P.loads(_doc(**params))


def test_nan_in_json_is_refused():
    text = _doc(output_gain_db=0.0).replace("0.0", "NaN")
    with pytest.raises(ParameterError, match=r"output_gain_db .* must be finite"):
        P.loads(text)


def test_vectors():
    v = P.normalise_all("track", P.neutral("track"))
    back = P.denormalise_all("track", v)
    for k, val in P.neutral("track").items():
        assert math.isclose(back[k], val, rel_tol=1e-9, abs_tol=1e-9)
    assert np.all((v >= 0) & (v <= 1))
