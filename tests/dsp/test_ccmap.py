"""The shared MIDI CC map: every parameter has a controller, values round-trip within one step."""

import math
import zlib

import numpy as np
import pytest

from dsp import params as P
from dsp.errors import ParameterError
from dsp import ccmap

# MIDI 1.0 controllers without a defined meaning
UNDEFINED = set([3, 9, *range(14, 32), *range(85, 91), *range(102, 120)])


def test_every_parameter_has_an_undefined_controller():
    for p in P.TABLE:
        cc = ccmap.CC_MAP[(p.section, p.name)]
        assert cc in UNDEFINED, f"{p.key} -> CC {cc} is a defined controller"
    assert len(ccmap.CC_MAP) == len(P.TABLE)


def test_numbers_unique_per_section_and_shared_between_sections():
    for section in (P.TRACK, P.MASTER):
        ccs = [ccmap.CC_MAP[(section, n)] for n in (P.TRACK_NAMES if section == P.TRACK
                                                    else P.MASTER_NAMES)]
        assert len(ccs) == len(set(ccs))
    for name in set(P.TRACK_NAMES) & set(P.MASTER_NAMES):
        assert ccmap.CC_MAP[(P.TRACK, name)] == ccmap.CC_MAP[(P.MASTER, name)]
    assert ccmap.param_for_cc(P.TRACK, 109).name == "pan"
    assert ccmap.param_for_cc(P.MASTER, 109) is None


def test_ends_and_log_midpoint():
    hpf = P.spec(P.TRACK, "hpf_freq_hz")
    assert ccmap.value_to_cc(hpf, hpf.min) == 0
    assert ccmap.value_to_cc(hpf, hpf.max) == 127
    # log scale: the geometric mean (100 Hz) sits in the middle of the controller range
    assert abs(ccmap.value_to_cc(hpf, 100.0) - 63.5) <= 0.5
    assert math.isclose(ccmap.cc_to_value(hpf, 0), 10.0)
    assert math.isclose(ccmap.cc_to_value(hpf, 127), 1000.0)
    # one CC step of a log parameter is a constant frequency ratio (1000/10)^(1/127)
    r1 = ccmap.cc_to_value(hpf, 11) / ccmap.cc_to_value(hpf, 10)
    r2 = ccmap.cc_to_value(hpf, 101) / ccmap.cc_to_value(hpf, 100)
    assert math.isclose(r1, r2, rel_tol=1e-9) and math.isclose(r1, 100 ** (1 / 127), rel_tol=1e-9)


@pytest.mark.parametrize("p", P.TABLE, ids=lambda p: p.key)
def test_round_trip_within_one_step(p):
    rng = np.random.default_rng(zlib.crc32(p.key.encode()))
    for u in np.concatenate([[0.0, 1.0], rng.uniform(0, 1, 50)]):
        v = float(np.clip(p.denormalise(u), p.min, p.max))
        back = ccmap.cc_to_value(p, ccmap.value_to_cc(p, v))
        assert abs(p.normalise(back) - p.normalise(v)) <= 0.5 / 127 + 1e-12


def test_bad_values_raise_naming_the_parameter():
    pan = P.spec(P.TRACK, "pan")
    with pytest.raises(ParameterError, match=r"track\.pan .*out of range: allowed -1 \.\. 1"):
        ccmap.value_to_cc(pan, 1.5)
    with pytest.raises(ParameterError,
                       match=r"CC value for track\.pan must be an integer 0 \.\. 127"):
        ccmap.cc_to_value(pan, 128)
    with pytest.raises(ParameterError, match=r"CC value .* got 1\.5"):
        ccmap.cc_to_value(pan, 1.5)
    with pytest.raises(ParameterError,
                       match=r"track index 15 has no MIDI channel: allowed 0 \.\. 14"):
        ccmap.channel_for_track(15)
    with pytest.raises(ParameterError, match="unknown track parameter 'gain'"):
        ccmap.cc_number(P.TRACK, "gain")


def test_markdown_lists_every_controller():
    md = ccmap.table_markdown()
    for cc in set(ccmap.CC_MAP.values()):
        assert f"| {cc} |" in md
