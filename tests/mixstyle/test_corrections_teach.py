"""Corrections teach (the quick version of bench/corrections_bench.py): a demo producer's profile
learned together with 6 songs the simulated producer corrected (vocal +4 dB on its fader, bass
-3 dB at 300 Hz) against the same 6 songs left as the profile predicted them: on new songs the
vocal comes 4 +- 1 dB higher, the bass's EQ response at 300 Hz within 1 dB of -3 dB, every other
track's fader within 1 dB. Short songs and short training: what is measured is what the
corrections add on top of whatever the network learned, not how good the network is."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

from mixstyle.demo import tools_missing

pytestmark = pytest.mark.long(165)   # seconds on 2 cores: scheduled first (tests/conftest.py)

TOOLS_MISSING = tools_missing()
BENCH = Path(__file__).resolve().parents[2] / "bench" / "corrections_bench.py"


def _bench():
    spec = importlib.util.spec_from_file_location("corrections_bench", BENCH)
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("corrections_bench", module)   # its dataclasses look themselves up
    spec.loader.exec_module(sys.modules["corrections_bench"])
    return sys.modules["corrections_bench"]


@pytest.mark.skipif(bool(TOOLS_MISSING), reason=TOOLS_MISSING or "tools found")
def test_corrections_move_new_songs_by_what_the_producer_corrected(tmp_path):
    cb = _bench()
    study = cb.Study("ava", seed=4, train=8, corrections=6, new=3, seconds=6.0, epochs=60,
                     audio_epochs=1, pool=13, fit_steps=2)
    result = cb.run_study(study, tmp_path)
    s = result.summary()
    assert len(result.lead_db) == 3 and len(result.bass_300_db) == 3
    assert abs(s["lead_db"] - cb.VOCAL_DB) <= 1.0, s
    assert all(abs(v - cb.VOCAL_DB) <= 1.5 for v in result.lead_db), result.lead_db
    assert abs(s["bass_300_db"] - cb.BASS_CUT_DB) <= 1.0, s
    assert s["others_max_abs_db"] < 1.0, s
    assert result.passed()


def test_the_simulated_correction_is_what_it_says():
    """The bench's producer: the vocal's fader +4 dB, the bass's EQ response at 300 Hz exactly
    3 dB lower (a free band moved there, or the nearest one), nothing else changed."""
    from dsp.params import TRACK, ConsoleSetting, TrackSetting, validate
    cb = _bench()
    busy = {"peak1_gain_db": 2.0, "peak1_freq_hz": 120.0, "peak2_gain_db": -1.5,
            "peak2_freq_hz": 900.0, "peak3_gain_db": 2.0}
    setting = ConsoleSetting((
        TrackSetting("vox", validate(TRACK, {"output_gain_db": -3.0}), "vocals"),
        TrackSetting("bass", validate(TRACK, {"peak1_gain_db": 0.2}), "bass"),
        TrackSetting("bass2", validate(TRACK, busy), "bass"),
        TrackSetting("gtr", validate(TRACK, {"output_gain_db": 1.0}), "guitar")))
    out = cb.corrected(setting)
    assert out.tracks[0].params["output_gain_db"] == -3.0 + 4.0
    for before, after in zip(setting.tracks[1:3], out.tracks[1:3]):
        assert cb.bass_response_db(after.params) - cb.bass_response_db(before.params) == \
            pytest.approx(-3.0, abs=1e-6)
        assert after.params["output_gain_db"] == before.params["output_gain_db"]
    assert out.tracks[1].params["peak1_freq_hz"] == 300.0 and out.tracks[1].params["peak1_q"] == 1.0
    assert out.tracks[3].params == setting.tracks[3].params
    assert np.isclose(out.tracks[2].params["peak1_freq_hz"], 120.0)   # none free: nearest band
