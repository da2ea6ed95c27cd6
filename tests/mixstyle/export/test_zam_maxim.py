"""The master's gain and limiter as a ZaMaximX2 preset (mixstyle.export.zam_maxim), measured
through the real plug-in (Debian's zam-plugins, loaded with pedalboard): the preset our code
writes, loaded by the plug-in, plays a song's master bus at the loudness our own limiter gives
it and under the same ceiling. The mapping's own tests need no plug-in; the others skip (fail
under CI / MIXSTYLE_REQUIRE_REAL=1) without pedalboard and zam-plugins."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from dsp.loudness import integrated_loudness, true_and_sample_peak_db
from dsp.params import MASTER, TRACK, ConsoleSetting, TrackSetting, validate
from dsp.render import render
from mixstyle.export.vstpreset import export_vstpresets, read_vstpreset
from mixstyle.export.zam_maxim import (MAXIM_ORDER, ZAMAXIMX2_CLASS_ID, calibrate,
                                       zamaximx2_values)

VST3 = Path("/usr/lib/vst3")
SR = 48000
try:
    import pedalboard
except ImportError:  # pragma: no cover - pedalboard is a dependency
    pedalboard = None
MISSING = ("pedalboard is not installed" if pedalboard is None else
           None if (VST3 / "ZaMaximX2.vst3").is_dir() else
           "zam-plugins VST3 ZaMaximX2 (Debian package zam-plugins) not installed in /usr/lib/vst3")
needs_plugin = pytest.mark.skipif(MISSING is not None, reason=MISSING or "")


def master(**values):
    return validate(MASTER, dict(values, target_lufs=None))


def bus(seconds=8.0, seed=3):
    """A song-like master bus (2, n): a kick every half second with a click, a bass line,
    a noisy pad, panned apart; about -18 LUFS with peaks near -1.5 dBFS."""
    rng = np.random.default_rng(seed)
    n = int(seconds * SR)
    t = np.arange(n) / SR
    kick = np.zeros(n)
    for start in range(0, n, SR // 2):
        k = np.arange(min(SR // 5, n - start)) / SR
        kick[start:start + len(k)] = np.sin(2 * np.pi * 55 * k * (1 + 2 * np.exp(-k * 40))) \
            * np.exp(-k * 12)
        kick[start:start + 48] += np.hanning(48) * 0.9
    bass = 0.3 * np.sin(2 * np.pi * 82.4 * t) * (0.6 + 0.4 * np.sin(2 * np.pi * 0.5 * t))
    pad = np.convolve(rng.normal(size=n), np.ones(8) / 8, mode="same") * 0.08
    x = np.stack([kick + bass + pad, kick + bass + np.roll(pad, 300)]) * 0.5
    return x.astype(np.float32)


def ours(x, m):
    """Our master (gain into the limiter at its ceiling) on the bus ``x``."""
    one = ConsoleSetting((TrackSetting("bus", validate(TRACK, {})),), m)
    return render(x[None], SR, one)


def through_preset(path, x):
    p = pedalboard.load_plugin(str(VST3 / "ZaMaximX2.vst3"))
    p.load_preset(str(path))
    return p(x, SR, reset=True)


# ------------------------------------------------------------------ the mapping, no plug-in


def test_the_drive_is_the_gain_over_the_ceiling():
    values, notes = zamaximx2_values(master(gain_db=8.0, limiter_ceiling_db=-1.0,
                                            limiter_release_ms=50.0))
    assert values == {"rel": 50.0, "ceil": -1.0, "thresh": -9.0}
    assert any("lookahead" in n for n in notes)


def test_what_zamaximx2_cannot_hold_is_noted():
    values, notes = zamaximx2_values(master(gain_db=24.0, limiter_ceiling_db=-12.0,
                                            limiter_release_ms=400.0))
    assert values == {"rel": 100.0, "ceil": -12.0, "thresh": -30.0}
    assert any("release 400 ms clamped" in n for n in notes)
    assert any("drive 36.00 dB" in n and "raise the level before it by 6.00 dB" in n
               for n in notes)
    # a master that turns the bus down under its ceiling: no drive, the ceiling is the gain
    values, notes = zamaximx2_values(master(gain_db=-4.0, limiter_ceiling_db=-1.0))
    assert values["thresh"] == 0.0 and values["ceil"] == -4.0
    assert any("under the -1 dBFS ceiling" in n for n in notes)


def test_no_master_bus_means_no_calibration(tmp_path):
    setting = ConsoleSetting((TrackSetting("a", validate(TRACK, {})),),
                             master(gain_db=6.0, limiter_ceiling_db=-1.0))
    out = export_vstpresets(setting, tmp_path, SR)
    (maxim,) = [f for f in out.files if f.plugin == "ZaMaximX2"]
    assert maxim.path.name == "master.ZaMaximX2.vstpreset"
    assert maxim.values["thresh"] == -7.0
    class_id, chunks = read_vstpreset(maxim.path.read_bytes())
    assert class_id == ZAMAXIMX2_CLASS_ID
    assert b"thresh\x00-7\x00" in chunks["Comp"]
    assert any("not calibrated" in n for n in out.notes)
    assert "ZamCompX2 -> ZaMaximX2" in out.readme.read_text()


# ------------------------------------------------------------------------ the real plug-in


@needs_plugin
def test_class_id_and_parameters_are_the_plugins():
    own = pedalboard.load_plugin(str(VST3 / "ZaMaximX2.vst3")).preset_data
    class_id, chunks = read_vstpreset(own)
    assert class_id == ZAMAXIMX2_CLASS_ID
    words = chunks["Comp"].split(b"\x00")
    begin, end = words.index(b"__dpf_parameters_begin__"), words.index(b"__dpf_parameters_end__")
    assert tuple(w.decode() for w in words[begin + 1:end:2]) == MAXIM_ORDER


@needs_plugin
@pytest.mark.parametrize("gain_db, ceiling_db", [(3.0, -1.0), (8.0, -0.3)])
def test_the_mapping_alone_plays_a_light_drive_at_our_loudness(tmp_path, gain_db, ceiling_db):
    x = bus()
    m = master(gain_db=gain_db, limiter_ceiling_db=ceiling_db, limiter_release_ms=60.0)
    want = ours(x, m)
    out = export_vstpresets(ConsoleSetting((TrackSetting("a", validate(TRACK, {})),), m),
                            tmp_path, SR)
    y = through_preset(tmp_path / "master.ZaMaximX2.vstpreset", x)
    got = integrated_loudness(y, SR)
    assert abs(got - want.loudness_lufs) <= 0.15, (got, want.loudness_lufs, out.notes)
    _, peak = true_and_sample_peak_db(y, SR)
    assert peak <= ceiling_db + 0.05


@needs_plugin
def test_a_hard_drive_is_calibrated_through_the_plugin(tmp_path):
    x = bus()
    m = master(gain_db=16.0, limiter_ceiling_db=-0.5, limiter_release_ms=40.0)
    want = ours(x, m).loudness_lufs
    setting = ConsoleSetting((TrackSetting("a", validate(TRACK, {})),), m)
    (tmp_path / "plain").mkdir()
    plain = export_vstpresets(setting, tmp_path / "plain", SR)
    off = integrated_loudness(through_preset(tmp_path / "plain" / "master.ZaMaximX2.vstpreset",
                                             x), SR) - want
    (tmp_path / "cal").mkdir()
    out = export_vstpresets(setting, tmp_path / "cal", SR, master_bus=(x, want))
    y = through_preset(tmp_path / "cal" / "master.ZaMaximX2.vstpreset", x)
    got = integrated_loudness(y, SR)
    # the preset the plug-in loads plays at our loudness, under our ceiling
    assert abs(got - want) <= 0.06, (got, want, off, out.notes)
    assert abs(got - want) < abs(off)
    _, peak = true_and_sample_peak_db(y, SR)
    assert peak <= -0.5 + 0.05
    (note,) = [n for n in out.notes if "calibrated on the song" in n]
    assert f"{want:.2f} LUFS" in note
    assert plain.files[-1].values["thresh"] == -16.5


@needs_plugin
def test_calibrate_stops_at_the_end_of_the_drive():
    x = bus() * 0.01                      # -58 LUFS: 30 dB of drive cannot reach -10 LUFS
    p = pedalboard.load_plugin(str(VST3 / "ZaMaximX2.vst3"))
    values, got = calibrate({"rel": 50.0, "ceil": -1.0, "thresh": -10.0}, x, SR, -10.0, p)
    assert values["thresh"] == -30.0
    assert got < -20.0
