"""ZamGEQ31 model (mixstyle/export/zam_geq.py) against the real plugin, loaded with pedalboard
from presets our code writes: an impulse through it, the spectrum against the model. The
model's own shape needs no plugin (never skips); the rest skips without pedalboard and
zam-plugins (fails under CI / MIXSTYLE_REQUIRE_REAL=1)."""

from pathlib import Path

import numpy as np
import pytest

from mixstyle.export.vstpreset import ZAMGEQ31_CLASS_ID, dpf_state, read_vstpreset, vstpreset_bytes
from mixstyle.export.zam_geq import (BAND_EDGES_HZ, GEQ_FLAT, GEQ_ORDER, band_active, band_db,
                                     zam_geq31_curve_db)

VST3 = Path("/usr/lib/vst3")
try:
    import pedalboard
except ImportError:  # pragma: no cover - pedalboard is a dependency
    pedalboard = None
MISSING = ("pedalboard is not installed" if pedalboard is None else
           None if (VST3 / "ZamGEQ31.vst3").is_dir() else
           "ZamGEQ31 VST3 (Debian package zam-plugins) not installed in /usr/lib/vst3")
needs_plugin = pytest.mark.skipif(MISSING is not None, reason=MISSING or "")

FREQS = np.geomspace(20.0, 20000.0, 2000)


def load(values, tmp_path):
    path = tmp_path / "geq.vstpreset"
    path.write_bytes(vstpreset_bytes(ZAMGEQ31_CLASS_ID, dpf_state(values, GEQ_ORDER)))
    plugin = pedalboard.load_plugin(str(VST3 / "ZamGEQ31.vst3"))
    plugin.load_preset(str(path))
    return plugin


def response_db(plugin, sr, n):
    x = np.zeros((1, n), np.float32)
    x[0, 0] = 1.0
    spectrum = np.abs(np.fft.rfft(plugin.process(x, sr, reset=True)[0].astype(np.float64)))
    return np.interp(FREQS, np.fft.rfftfreq(n, 1 / sr), 20 * np.log10(spectrum + 1e-30))


@needs_plugin
def test_class_id_and_parameter_order_match_what_the_plugin_writes():
    class_id, chunks = read_vstpreset(pedalboard.load_plugin(str(VST3 / "ZamGEQ31.vst3"))
                                      .preset_data)
    assert class_id == ZAMGEQ31_CLASS_ID
    fields = chunks["Comp"].split(b"\x00")
    keys = fields[fields.index(b"__dpf_parameters_begin__") + 1:
                  fields.index(b"__dpf_parameters_end__"):2]
    assert tuple(k.decode() for k in keys) == GEQ_ORDER


@needs_plugin
@pytest.mark.parametrize("sr", [44100.0, 48000.0, 96000.0])
def test_model_matches_the_plugin_top_bands(tmp_path, sr):
    """The bands the fit uses (8.9 .. 22.4 kHz), extreme gains, and the master gain."""
    values = dict(GEQ_FLAT, master=-3.0, band26=-7.5, band27=5.0, band28=-12.0, band29=12.0)
    measured = response_db(load(values, tmp_path), sr, 1 << 16)
    assert np.abs(measured - zam_geq31_curve_db(values, FREQS, sr)).max() < 0.01
    top = (FREQS > 18500.0) & (FREQS < 20000.0)
    expected = -3.0 + (12.0 if band_active(28, sr) else 0.0)  # band 29 is off at 44.1 kHz
    assert np.abs(measured[top] - expected).max() < 0.2


@needs_plugin
@pytest.mark.parametrize("sr", [44100.0, 96000.0])
def test_model_matches_the_plugin_every_band(tmp_path, sr):
    """All 29 bands at random gains: the narrow low bands ring for seconds (2^21 samples)."""
    rng = np.random.default_rng(int(sr))
    values = dict(GEQ_FLAT, **{f"band{i}": float(rng.uniform(-12, 12)) for i in range(1, 30)})
    measured = response_db(load(values, tmp_path), sr, 1 << 21)
    assert np.abs(measured - zam_geq31_curve_db(values, FREQS, sr)).max() < 0.02


@pytest.mark.parametrize("sr", [44100.0, 48000.0])
def test_a_band_is_its_gain_inside_half_at_its_edges_and_flat_outside(sr):
    lower, upper = BAND_EDGES_HZ[27]  # 14.1 .. 17.8 kHz
    f = np.array([lower * 0.97, lower, np.sqrt(lower * upper), upper, upper * 1.03])
    db = band_db(27, 6.0, f, sr)
    assert np.allclose(db, [0.0, 3.0, 6.0, 3.0, 0.0], atol=0.15)
