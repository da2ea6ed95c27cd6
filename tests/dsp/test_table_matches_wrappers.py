"""Every parameter-table entry names a real wrapper argument, and its range is accepted."""

import inspect

import numpy as np
import pytest

from dsp import biquad as bq
from dsp import params as P
from dsp.console import MASTER_SLOT, MasterBus
from dsp.errors import ParameterError
from dsp.render import PROCESSORS
from dsp.strip import SECTIONS, ChannelStrip

CLASS_WRAPPERS = {"gain", "highpass", "lowpass", "low_shelf", "high_shelf", "peak", "compressor",
                  "pan"}


@pytest.mark.parametrize("p", P.TABLE, ids=lambda p: p.key)
def test_processor_and_arg_exist(p):
    assert p.processor in PROCESSORS, f"{p.key}: no wrapper for processor {p.processor!r}"
    params = inspect.signature(PROCESSORS[p.processor]).parameters
    assert p.arg in params, f"{p.key}: {PROCESSORS[p.processor].__name__} has no {p.arg!r}"
    assert params[p.arg].kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD,
                                  inspect.Parameter.KEYWORD_ONLY)


@pytest.mark.parametrize("p", [p for p in P.TABLE if p.processor in CLASS_WRAPPERS],
                         ids=lambda p: p.key)
def test_wrapper_accepts_the_table_range_and_refuses_beyond(p):
    cls = PROCESSORS[p.processor]
    for v in (p.min, p.default, p.max):
        assert getattr(cls(**{p.arg: v}), p.arg) == v
    lo = min(q.min for q in P.TABLE if (q.processor, q.arg) == (p.processor, p.arg))
    with pytest.raises(ParameterError, match=p.arg):
        cls(**{p.arg: lo - 1.0 if lo <= 0 else lo * 0.5})


def test_limiter_and_loudness_arguments():
    lim = PROCESSORS["limiter"](48000, ceiling_db=-2.0, release_ms=80.0, lookahead_ms=3.0)
    assert (lim.ceiling_db, lim.release_ms, lim.lookahead_ms) == (-2.0, 80.0, 3.0)
    assert "target_lufs" in inspect.signature(PROCESSORS["loudness"]).parameters


def test_every_track_and_master_name_is_settable_over_its_range():
    strip, bus = ChannelStrip(48000), MasterBus(48000)
    for p in P.TRACK_PARAMS:
        for v in (p.min, p.max):
            strip.set_params({p.name: v})
            assert strip.params[p.name] == v
    for p in P.MASTER_PARAMS:
        for v in (p.min, p.max):
            bus.set_params({p.name: v})
            assert bus.params[p.name] == v
    x = np.zeros((2, 64), dtype=np.float32)
    strip(x, 48000), bus(x, 48000)


def test_strip_sections_follow_the_table():
    kinds = {bq.HIGHPASS: "highpass", bq.LOWPASS: "lowpass", bq.LOW_SHELF: "low_shelf",
             bq.HIGH_SHELF: "high_shelf", bq.PEAK: "peak"}
    for kind, fi, gi, qi in SECTIONS:
        names = {"freq_hz": fi, "gain_db": gi, "q": qi}
        for arg, idx in names.items():
            if idx >= 0:
                p = P.TRACK_PARAMS[idx]
                assert (p.processor, p.arg) == (kinds[kind], arg), p.name
    # the master bus drives the same slots with its own entries
    for name, slot in MASTER_SLOT.items():
        mp, tp = P.spec("master", name), P.TRACK_PARAMS[slot]
        assert (mp.processor, mp.arg) == (tp.processor, tp.arg)
