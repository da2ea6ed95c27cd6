"""VST3 inserts through pedalboard: ZamEQ2 (mono, one instance per channel) and ZamCompX2 (stereo).
Measured gains, parameter errors, state save/restore and a failing plugin that gets bypassed."""

from __future__ import annotations

import os

import numpy as np
import pytest

from dsp.errors import HostError, ParameterError
from dsp.params import ConsoleSetting, TrackSetting
from dsp.render import render
from host.engine import Engine, EngineConfig, HostWarning
from host.offline import render_engine
from host.plugins import insert_from_dict, load_insert
from host.reader import TrackSource

SR = 48000
HAVE_ZAM = os.path.exists("/usr/lib/vst3/ZamEQ2.vst3") and \
    os.path.exists("/usr/lib/vst3/ZamCompX2.vst3")
pytestmark = pytest.mark.skipif(not HAVE_ZAM, reason="zam-plugins VST3 (Debian package "
                                "zam-plugins) not installed in /usr/lib/vst3")


def _sine(freq_hz, seconds=0.5, amp=0.1):
    t = np.arange(int(seconds * SR)) / SR
    x = (amp * np.sin(2 * np.pi * freq_hz * t)).astype(np.float32)
    return np.stack([x, 0.5 * x])


def _run(insert, x, block=128):
    y = x.copy()
    for i in range(0, x.shape[1], block):
        b = np.ascontiguousarray(y[:, i:i + block])
        insert.process_into(b)
        y[:, i:i + block] = b
    return y


def _gain_db(x, y):
    h = x.shape[1] // 2  # skip the settling half
    return 10 * np.log10(np.mean(y[:, h:] ** 2, axis=1) / np.mean(x[:, h:] ** 2, axis=1))


def test_zameq2_runs_dual_mono_and_boosts_its_band_on_both_channels():
    eq = load_insert("ZamEQ2", SR, 128, "track 'vox'",
                     {"boost_cut_1_db": 6.0, "frequency_1_hz": 1000.0, "bandwidth_1": 1.0})
    assert eq.mode == "dual-mono" and len(eq.instances) == 2
    g1k = _gain_db(_sine(1000), _run(eq, _sine(1000)))
    g100 = _gain_db(_sine(100), _run(eq, _sine(100)))
    np.testing.assert_allclose(g1k, [6.0, 6.0], atol=0.1)
    np.testing.assert_allclose(g100, [0.0, 0.0], atol=0.1)


def test_zamcompx2_is_stereo_and_compresses_a_loud_tone():
    comp = load_insert("ZamCompX2", SR, 128, "master",
                       {"threshold_db": -30.0, "ratio": 4.0, "knee_db": 0.0})
    assert comp.mode == "stereo"
    x = _sine(1000, seconds=1.0, amp=0.5)
    g = _gain_db(x, _run(comp, x))
    assert np.all(g < -6.0)                # -6 dBFS peak tone, 24 dB over: strongly reduced
    assert abs(g[0] - g[1]) < 0.5          # linked: both channels get the same reduction


def test_state_save_and_restore_brings_parameters_back():
    comp = load_insert("ZamCompX2", SR, 128, parameters={"threshold_db": -17.0, "ratio": 6.0})
    saved = comp.to_dict()
    fresh = insert_from_dict(saved, SR, 128, "master")
    assert fresh.parameters()["threshold_db"] == pytest.approx(-17.0, abs=0.05)
    assert fresh.parameters()["ratio"] == pytest.approx(6.0, abs=0.05)
    eq = load_insert("ZamEQ2", SR, 128, parameters={"boost_cut_2_db": -4.0})
    eq2 = insert_from_dict(eq.to_dict(), SR, 128)
    assert len(eq2.instances) == 2
    assert all(abs(i.boost_cut_2_db + 4.0) < 0.05 for i in eq2.instances)


def test_bad_plugin_calls_name_plugin_and_range():
    comp = load_insert("ZamCompX2", SR, 128, "master")
    with pytest.raises(ParameterError, match="'ZamCompX2' on master: unknown parameter 'thresh'"):
        comp.set_parameter("thresh", -10.0)
    with pytest.raises(ParameterError, match=r"ZamCompX2.*out of range \[-80"):
        comp.set_parameter("threshold_db", 50.0)
    with pytest.raises(HostError, match="'NoSuchPlugin' not found"):
        load_insert("NoSuchPlugin", SR, 128)
    with pytest.raises(HostError, match="not base64"):
        insert_from_dict({"path": "ZamCompX2", "states": ["***"]}, SR, 128)
    with pytest.raises(HostError, match="2 saved states for 1 instances"):
        comp.set_states([b"", b""])


def test_a_plugin_that_raises_in_the_callback_is_bypassed(make_stems):
    """ZamEQ2 forced to one stereo instance refuses 2 channels at its first block."""
    stems = make_stems(5, seconds=0.5, n_stems=2, sample_rate=SR)
    setting = ConsoleSetting(tracks=(TrackSetting("a", {"output_gain_db": -3.0}),
                                     TrackSetting("b", {"pan": 0.4})))
    eng = Engine([TrackSource("a", audio=stems[0]), TrackSource("b", audio=stems[1])], setting,
                 EngineConfig(SR, 128))
    bad = eng.add_insert("b", "ZamEQ2", {"boost_cut_1_db": 12.0}, mode="stereo")
    good = eng.add_insert("master", "ZamCompX2", {"threshold_db": 0.0, "ratio": 1.0})
    out = render_engine(eng)
    assert bad.failed and not good.failed
    with pytest.warns(HostWarning, match="'ZamEQ2' on track 'b' raised .*bypassed"):
        eng.take_warnings()
    ref = render(stems, SR, setting).audio
    # track b plays dry; the master compressor at ratio 1 passes the mix through
    assert 20 * np.log10(np.max(np.abs(out - ref)) + 1e-30) < -90.0
