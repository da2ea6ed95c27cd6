"""zam-plugins presets: files the real plugins load, measured against our DSP.

Each preset is written by our code, loaded back with pedalboard's ``load_preset`` and measured:
an impulse through ZamEQ2 A -> B -> C -> D (-> E -> F with a high- or low-pass) against
``dsp.eq.eq_curve_db`` (+ input gain, pass filters included), DC steps through ZamCompX2 against
``dsp.compressor.Compressor``.
"""

from pathlib import Path

import numpy as np
import pytest

from dsp import params as P
from dsp.compressor import Compressor
from dsp.eq import eq_curve_db
from dsp.errors import AudioInputError, ExportError
from mixstyle.export.vstpreset import (COMP_ORDER, EQ_ORDER, ZAMCOMPX2_CLASS_ID, ZAMEQ2_CLASS_ID,
                                       dpf_state, export_vstpresets, preset_paths,
                                       read_vstpreset, vstpreset_bytes)
from mixstyle.export.zam_fit import ZAM_FREQ_MAX_HZ, zam_eq2_curve_db

VST3 = Path("/usr/lib/vst3")
pedalboard = pytest.importorskip("pedalboard")
if not (VST3 / "ZamEQ2.vst3").is_dir() or not (VST3 / "ZamCompX2.vst3").is_dir():
    pytest.skip("zam-plugins VST3 (Debian package zam-plugins) not installed in /usr/lib/vst3",
                allow_module_level=True)

FREQS = np.geomspace(20.0, 20000.0, 300)
# the plugin keeps its filter state in float32: a chain of wide low-frequency bands at 96 kHz
# measures up to ~0.05 dB off the (double precision) model near 20 Hz, level-dependent (a
# rounding effect, not a filter the model lacks: each instance alone is within 0.01 dB)
PLUGIN_ROUNDING_DB = 0.06


def stated_db(note: str) -> float:
    """The EQ error a README note states ("... EQ curve within 0.12 dB ...")."""
    return float(note.split("within ")[1].split(" dB")[0])


def load(plugin, path):
    p = pedalboard.load_plugin(str(VST3 / f"{plugin}.vst3"))
    p.load_preset(str(path))
    return p


def eq_response_db(files, sr, n=1 << 18):
    """Magnitude (dB) at FREQS of the impulse response of the strip's EQ chain (its ZamEQ2s
    and ZamGEQ31 if any, from its PresetFiles; 2.7 s at 96 kHz: a narrow +18 dB band at 40 Hz
    rings that long)."""
    x = np.zeros((1, n), np.float32)
    x[0, 0] = 1.0
    for f in files:
        if f.plugin != "ZamCompX2":
            x = load(f.plugin, f.path).process(x, sr, reset=True)
    spectrum = np.abs(np.fft.rfft(x[0].astype(np.float64)))
    return np.interp(FREQS, np.fft.rfftfreq(n, 1 / sr), 20 * np.log10(spectrum + 1e-30))


def export_one(tmp_path, params, sr, section=P.TRACK):
    if section == P.TRACK:
        setting = P.ConsoleSetting(tracks=(P.TrackSetting("vox", params),))
    else:
        setting = P.ConsoleSetting(tracks=(), master=params)
    out = export_vstpresets(setting, tmp_path, sr)
    strip = "vox" if section == P.TRACK else "master"
    return out, [f for f in out.files if f.strip == strip]


def test_class_ids_match_what_the_plugins_write():
    for plugin, cid in (("ZamEQ2", ZAMEQ2_CLASS_ID), ("ZamCompX2", ZAMCOMPX2_CLASS_ID)):
        own = pedalboard.load_plugin(str(VST3 / f"{plugin}.vst3")).preset_data
        class_id, chunks = read_vstpreset(own)
        assert class_id == cid
        assert set(chunks) == {"Comp", "Cont"}
        assert chunks["Comp"].endswith(b"__dpf_parameters_end__\x00\xfe\x00")


def test_container_round_trip_and_malformed_files():
    comp = dpf_state({k: 1.5 for k in COMP_ORDER}, COMP_ORDER)
    data = vstpreset_bytes(ZAMCOMPX2_CLASS_ID, comp)
    assert data[:4] == b"VST3" and read_vstpreset(data) == (ZAMCOMPX2_CLASS_ID,
                                                            {"Comp": comp, "Cont": b""})
    with pytest.raises(ExportError, match="not a .vstpreset file"):
        read_vstpreset(b"RIFF" + data[4:])
    with pytest.raises(ExportError, match="chunk list offset .* is invalid"):
        read_vstpreset(data[:40] + (10**6).to_bytes(8, "little") + data[48:])
    with pytest.raises(ExportError, match="class_id must be 32 hex digits"):
        vstpreset_bytes("xyz", comp)


EQ_CASES = {
    "typical": dict(input_gain_db=5.0, low_shelf_freq_hz=100.0, low_shelf_gain_db=-9.0,
                    peak1_freq_hz=300.0, peak1_gain_db=6.0, peak1_q=2.0, peak2_freq_hz=2500.0,
                    peak2_gain_db=-8.0, peak2_q=0.7, peak3_freq_hz=6000.0, peak3_gain_db=4.0,
                    peak3_q=1.5, high_shelf_freq_hz=9000.0, high_shelf_gain_db=7.0),
    "wide_high_peak": dict(peak3_freq_hz=6000.0, peak3_gain_db=18.0, peak3_q=0.3),
    "extreme": dict(input_gain_db=-20.0, low_shelf_freq_hz=300.0, low_shelf_gain_db=18.0,
                    high_shelf_freq_hz=3000.0, high_shelf_gain_db=-18.0, peak1_freq_hz=200.0,
                    peak1_gain_db=-12.0, peak1_q=0.3, peak2_freq_hz=1500.0, peak2_gain_db=9.0,
                    peak2_q=0.5, peak3_freq_hz=12000.0, peak3_gain_db=9.0, peak3_q=0.3),
}


@pytest.mark.parametrize("sr", [44100.0, 48000.0, 96000.0])
@pytest.mark.parametrize("case", list(EQ_CASES))
def test_eq_presets_match_our_eq_curve_within_1_db(tmp_path, sr, case):
    params = dict(P.neutral(P.TRACK), hpf_freq_hz=60.0, **EQ_CASES[case])
    out, files = export_one(tmp_path, params, sr)
    eqs = [f for f in files if f.plugin == "ZamEQ2"]
    assert [f.path.name.split(".")[1] for f in eqs] == [f"ZamEQ2-{c}" for c in "ABCDEF"]
    measured = eq_response_db(files, sr)
    ours = eq_curve_db(P.TRACK, params, FREQS, sr) + params["input_gain_db"]
    assert np.abs(measured - ours).max() < 1.0
    without_hpf = eq_curve_db(P.TRACK, dict(params, hpf_freq_hz=10.0), FREQS, sr)
    assert measured[0] - params["input_gain_db"] < without_hpf[0] - 18.0  # -19 dB at 20 Hz
    # the exporter's model of ZamEQ2 is what the plugin does
    assert np.abs(zam_eq2_curve_db([f.values for f in eqs], FREQS, sr) - measured).max() < 0.01
    assert any("high-pass 60 Hz" in n and "ZamEQ2-E and -F" in n for n in out.notes)


def random_extreme_settings(n: int, seed: int, peak3_max_hz: float = ZAM_FREQ_MAX_HZ):
    """Every EQ band active anywhere in the table (peak3 up to ``peak3_max_hz``), gains at or
    near +-18 dB, Q 0.3 .. 8, input gain +-24 dB, at 44.1, 48 or 96 kHz."""
    rng = np.random.default_rng(seed)
    for _ in range(n):
        p = dict(P.neutral(P.TRACK))
        for spec in P.TRACK_PARAMS:
            if spec.processor not in ("low_shelf", "high_shelf", "peak"):
                continue
            hi = min(spec.max, peak3_max_hz) if spec.name == "peak3_freq_hz" else spec.max
            if spec.name.endswith("gain_db"):
                v = rng.choice([-1.0, 1.0]) * (hi if rng.random() < 0.4 else rng.uniform(3, hi))
            elif spec.scale == "log":
                v = np.exp(rng.uniform(np.log(spec.min), np.log(hi)))
            else:
                v = rng.uniform(spec.min, hi)
            p[spec.name] = float(v)
        p["input_gain_db"] = float(rng.uniform(-24.0, 24.0))
        yield p, float(rng.choice([44100.0, 48000.0, 96000.0]))


def measured_error_db(folder, params, sr, instances):
    """Export ``params``, check the ZamEQ2 instances written, and return (worst |plugin chain -
    our curve| over FREQS, our curve); the strip's stated error must not be below the measured."""
    folder.mkdir()
    out, files = export_one(folder, params, sr)
    eqs = [f for f in files if f.plugin == "ZamEQ2"]
    assert [f.path.name.split(".")[1] for f in eqs] == [f"ZamEQ2-{c}" for c in instances]
    measured = eq_response_db(files, sr)
    ours = eq_curve_db(P.TRACK, params, FREQS, sr) + params["input_gain_db"]
    err = float(np.abs(measured - ours).max())
    stated = next(n for n in out.notes if "EQ curve within" in n)
    assert stated_db(stated) >= err - PLUGIN_ROUNDING_DB  # README is honest
    return err, ours


@pytest.mark.parametrize("seed", [11, 12, 13, 14])
def test_random_extreme_settings_all_within_1_db_through_the_plugins(tmp_path, seed):
    """The issue's measure, for every setting: the real plugins with our presets against our EQ
    curve, 20 Hz .. 20 kHz. The one corner left out (peak3 above ZamEQ2's 14 kHz) is measured
    in the next test."""
    worst = []
    for i, (params, sr) in enumerate(random_extreme_settings(5, seed)):
        worst.append(measured_error_db(tmp_path / f"s{i}", params, sr, "ABCD")[0])
    assert max(worst) <= 1.0, worst


def with_pass_filters(params, rng, lpf_max_hz=19999.0):
    """``params`` with the high-pass, the low-pass or both active anywhere in the table's range
    (low-pass up to ``lpf_max_hz``), Q 0.5 .. 1.5."""
    p = dict(params)
    which = rng.choice(["hpf", "lpf", "both"])
    for band, lo, hi in (("hpf", 10.5, 1000.0), ("lpf", 1000.0, lpf_max_hz)):
        if which in (band, "both"):
            p[f"{band}_freq_hz"] = float(np.exp(rng.uniform(np.log(lo), np.log(hi))))
            p[f"{band}_q"] = float(rng.uniform(0.5, 1.5))
    return p


@pytest.mark.parametrize("seed", [21, 22])
def test_high_and_low_pass_within_1_db_through_the_plugins(tmp_path, seed):
    """Random extreme EQ settings with random high- and/or low-pass (ZamEQ2-E/F: stopbands down
    to -100 dB) through the real plugins: within 1 dB of our whole curve over 20 Hz .. 20 kHz,
    the stopband included. The low-pass stays at or below ZamEQ2's 14 kHz top here; above it
    see the next test."""
    rng = np.random.default_rng(seed)
    worst, depth = [], []
    for i, (params, sr) in enumerate(random_extreme_settings(4, seed)):
        params = with_pass_filters(params, rng, lpf_max_hz=ZAM_FREQ_MAX_HZ)
        err, ours = measured_error_db(tmp_path / f"s{i}", params, sr, "ABCDEF")
        worst.append(err)
        depth.append(float((ours - ours.max()).min()))
    assert max(worst) <= 1.0, worst
    assert min(depth) < -40.0, depth  # a deep stopband was among them


@pytest.mark.parametrize("seed", [31, 32])
def test_random_extreme_settings_with_the_geq_within_1_db(tmp_path, seed):
    """Random extreme settings whose peak3 (wide: Q 0.3 .. 0.7) lies above ZamEQ2's 14 kHz
    and/or whose low-pass (Q 0.5 .. 0.71) lies at 12 .. 19.9 kHz: the ZamGEQ31 path, within
    1 dB of our whole curve through the real plugins."""
    rng = np.random.default_rng(seed)
    worst = []
    for i, (params, sr) in enumerate(random_extreme_settings(4, seed)):
        if i % 2 == 0:
            params.update(peak3_freq_hz=float(rng.uniform(14100.0, 16000.0)),
                          peak3_q=float(rng.uniform(0.3, 0.7)))
        if i > 0:
            params.update(lpf_freq_hz=float(np.exp(rng.uniform(np.log(12500.0),
                                                                np.log(19900.0)))),
                          lpf_q=float(rng.uniform(0.5, 0.71)))
        folder = tmp_path / f"s{i}"
        folder.mkdir()
        out, files, err = chain_error_db(folder, params, sr)
        assert "ZamGEQ31" in plugins_of(files)
        worst.append(err)
        stated = next(n for n in out.notes if "EQ curve within" in n)
        assert stated_db(stated) >= err - PLUGIN_ROUNDING_DB
    assert max(worst) <= 1.0, worst


@pytest.mark.parametrize("sr", [44100.0, 96000.0])
def test_deepest_high_and_low_pass(tmp_path, sr):
    """Both pass filters at their most demanding: 1 kHz high-pass (-68 dB at 20 Hz) and 1 kHz
    low-pass (-52 dB at 20 kHz, about -80 dB at 44.1 kHz); resonant (Q 1.5)."""
    params = dict(P.neutral(P.TRACK), hpf_freq_hz=1000.0, hpf_q=1.5, lpf_freq_hz=1000.0,
                  lpf_q=1.5)
    _, files = export_one(tmp_path, params, sr)
    measured = eq_response_db(files, sr)
    ours = eq_curve_db(P.TRACK, params, FREQS, sr)
    assert ours[0] < -65.0 and ours[-1] < -50.0
    assert np.abs(measured - ours).max() < 1.0


def chain_error_db(tmp_path, params, sr):
    """(export, the strip's files, largest error of the real EQ chain against our curve)."""
    out, files = export_one(tmp_path, params, sr)
    measured = eq_response_db(files, sr)
    err = float(np.abs(measured - eq_curve_db(P.TRACK, params, FREQS, sr)
                       - params["input_gain_db"]).max())
    return out, files, err


def plugins_of(files):
    return [f.path.name.split(".")[1] for f in files]


@pytest.mark.parametrize("sr", [44100.0, 48000.0, 96000.0])
@pytest.mark.parametrize("lpf_hz,q", [(16500.0, 1.5), (16000.0, 1.0)])
def test_resonant_low_pass_above_14_khz_with_the_geq(tmp_path, sr, lpf_hz, q):
    """The resonant low-pass whose peak lies above every ZamEQ2 filter: 16.5 kHz, Q 1.5 was
    3.9 dB off at 44.1 kHz with ZamEQ2 alone; ZamGEQ31's 14.1 .. 17.8 kHz band takes the
    resonance."""
    params = dict(P.neutral(P.TRACK), lpf_freq_hz=lpf_hz, lpf_q=q)
    out, files, err = chain_error_db(tmp_path, params, sr)
    assert plugins_of(files) == [f"ZamEQ2-{c}" for c in "ABCDEF"] + ["ZamGEQ31", "ZamCompX2"]
    assert err < 1.0
    stated = next(n for n in out.notes if "EQ curve within" in n)
    assert stated_db(stated) >= err - PLUGIN_ROUNDING_DB


@pytest.mark.parametrize("sr,lo_db,hi_db", [(44100.0, 2.0, 3.5), (48000.0, 1.0, 2.0)])
def test_low_pass_plunge_above_17_8_khz_is_the_documented_corner(tmp_path, sr, lo_db, hi_db):
    """What is left: a resonant low-pass at 17 .. 19 kHz at 44.1/48 kHz falls some 15 dB
    between 18 and 20 kHz (the bilinear low-pass reaches -inf at Nyquist). No ZamEQ2 filter
    reaches above 14 kHz and a ZamGEQ31 band is flat there (its 17.8 .. 22.4 kHz band does
    not even run at 44.1 kHz), so the chain stays off by the README's stated error."""
    params = dict(P.neutral(P.TRACK), lpf_freq_hz=17500.0, lpf_q=1.5)
    out, files, err = chain_error_db(tmp_path, params, sr)
    assert "ZamGEQ31" in plugins_of(files)
    assert lo_db < err < hi_db
    stated = next(n for n in out.notes if "EQ curve within" in n)
    assert err - PLUGIN_ROUNDING_DB <= stated_db(stated) <= err + 0.3


def test_geq_only_where_a_band_needs_it(tmp_path):
    setting = P.ConsoleSetting(tracks=(
        P.TrackSetting("kick", {}), P.TrackSetting("vox", dict(hpf_freq_hz=80.0)),
        P.TrackSetting("pad", dict(lpf_freq_hz=8000.0)),
        P.TrackSetting("air", dict(peak3_freq_hz=15000.0, peak3_gain_db=6.0)),
        P.TrackSetting("dark", dict(lpf_freq_hz=17000.0))),
        master=dict(P.neutral(P.MASTER), peak3_freq_hz=16000.0, peak3_gain_db=-3.0))
    out = export_vstpresets(setting, tmp_path, 48000.0)
    assert preset_paths(setting, tmp_path) == [f.path for f in out.files] + [out.readme]
    chains = {name: plugins_of([f for f in out.files if f.strip == name])
              for name in ("kick", "vox", "pad", "air", "dark", "master")}
    four = [f"ZamEQ2-{c}" for c in "ABCD"]
    assert chains == {"kick": four + ["ZamCompX2"],
                      "vox": four + ["ZamEQ2-E", "ZamEQ2-F", "ZamCompX2"],
                      "pad": four + ["ZamEQ2-E", "ZamEQ2-F", "ZamCompX2"],
                      "air": four + ["ZamGEQ31", "ZamCompX2"],
                      "dark": four + ["ZamEQ2-E", "ZamEQ2-F", "ZamGEQ31", "ZamCompX2"],
                      "master": four + ["ZamGEQ31", "ZamCompX2"]}
    readme = out.readme.read_text()
    assert "high- or low-pass is on: vox, pad, dark." in readme
    assert "low-pass above 12 kHz: air, dark, master." in readme
    assert "(ZamEQ2-E -> ZamEQ2-F) -> (ZamGEQ31) -> ZamCompX2" in readme
    assert any("low-pass 8000 Hz (Q 0.7071) built from" in n for n in out.notes)
    master = [f for f in out.files if f.strip == "master" and f.plugin != "ZamCompX2"]
    measured = eq_response_db(master, 48000.0)
    assert np.abs(measured - eq_curve_db(P.MASTER, setting.master, FREQS, 48000.0)).max() < 1.0


@pytest.mark.parametrize("sr", [44100.0, 48000.0, 96000.0])
@pytest.mark.parametrize("case", [(14700.0, 18.0, 1.1), (15200.0, -18.0, 0.7),
                                  (16000.0, 12.0, 0.7)])
def test_peak_above_14_khz_with_the_geq(tmp_path, sr, case):
    """peak3 centred above ZamEQ2's top frequency: +18 dB, Q 1.1 at 14.7 kHz was 1.8 dB off
    with ZamEQ2 alone; with the ZamGEQ31's top bands fitted in, within 1 dB."""
    freq, gain, q = case
    params = dict(P.neutral(P.TRACK), peak3_freq_hz=freq, peak3_gain_db=gain, peak3_q=q)
    out, files, err = chain_error_db(tmp_path, params, sr)
    assert plugins_of(files) == [f"ZamEQ2-{c}" for c in "ABCD"] + ["ZamGEQ31", "ZamCompX2"]
    assert err < 1.0
    assert any(f"peak3 {freq:g} Hz is above ZamEQ2's top frequency" in n and "ZamGEQ31" in n
               for n in out.notes)
    stated = next(n for n in out.notes if "EQ curve within" in n)
    assert stated_db(stated) >= err - PLUGIN_ROUNDING_DB


@pytest.mark.parametrize("sr", [44100.0, 96000.0])
def test_narrow_peak_above_14_khz_is_the_documented_corner(tmp_path, sr):
    """What is left: a narrow peak3 above 14 kHz (here -16 dB, Q 7.6 at 15.6 kHz, 2 kHz wide)
    is narrower than ZamGEQ31's 14.1 .. 17.8 kHz band and no ZamEQ2 filter resonates up there;
    the chain is off by the README's stated error."""
    params = dict(P.neutral(P.TRACK), peak3_freq_hz=15600.0, peak3_gain_db=-16.0, peak3_q=7.6)
    out, files, err = chain_error_db(tmp_path, params, sr)
    assert 1.0 < err < 7.0  # 5.7 dB at 44.1 kHz, 3.2 dB at 96 kHz
    stated = next(n for n in out.notes if "EQ curve within" in n)
    assert err - PLUGIN_ROUNDING_DB <= stated_db(stated) <= err + 0.3  # on a denser grid


def test_master_eq_and_notes(tmp_path):
    master = dict(P.neutral(P.MASTER), low_shelf_gain_db=3.0, peak2_gain_db=-2.0,
                  high_shelf_gain_db=2.0, gain_db=4.0, target_lufs=-14.0)
    out, files = export_one(tmp_path, master, 48000.0, P.MASTER)
    measured = eq_response_db(files, 48000.0)
    assert np.abs(measured - eq_curve_db(P.MASTER, master, FREQS, 48000.0)).max() < 1.0
    assert any("master: gain 4 dB into a limiter" in n and "-14 LUFS" in n for n in out.notes)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "README.txt", "master.ZamCompX2.vstpreset", "master.ZamEQ2-A.vstpreset",
        "master.ZamEQ2-B.vstpreset", "master.ZamEQ2-C.vstpreset", "master.ZamEQ2-D.vstpreset"]
    assert "-14 LUFS" in (tmp_path / "README.txt").read_text()


def test_out_of_range_frequencies_are_built_from_lower_filters_and_noted(tmp_path):
    params = dict(P.neutral(P.TRACK), high_shelf_freq_hz=16000.0, high_shelf_gain_db=6.0)
    out, files = export_one(tmp_path, params, 48000.0)
    eqs = [f for f in files if f.plugin == "ZamEQ2"]
    assert all(load("ZamEQ2", f.path).frequency_h_hz <= 14000.0 for f in eqs)
    assert any("high shelf 16000 Hz is above ZamEQ2's top frequency" in n for n in out.notes)
    measured = eq_response_db(files, 48000.0)
    assert np.abs(measured - eq_curve_db(P.TRACK, params, FREQS, 48000.0)).max() < 1.0


def dc_gain_db(plugin, level_db, sr, seconds=0.4):
    x = np.full((2, int(sr * seconds)), 10 ** (level_db / 20), np.float32)
    x[1] *= 0.5  # the louder channel drives both (stereo link by max)
    return 20 * np.log10(plugin.process(x, sr, reset=True)[0] / x[0])


@pytest.mark.parametrize("sr", [44100.0, 96000.0])
def test_compressor_static_curve_and_envelope_match(tmp_path, sr):
    params = dict(P.neutral(P.TRACK), comp_threshold_db=-24.0, comp_ratio=4.0,
                  comp_attack_ms=5.0, comp_release_ms=80.0, comp_knee_db=0.0, comp_makeup_db=3.0)
    _, files = export_one(tmp_path, params, sr)
    zam = load("ZamCompX2", next(f.path for f in files if f.plugin == "ZamCompX2"))
    ours = Compressor(threshold_db=-24.0, ratio=4.0, attack_ms=5.0, release_ms=80.0,
                      knee_db=0.0, makeup_db=3.0)
    for level in (-40.0, -30.0, -20.0, -12.0, -6.0, 0.0):
        g_zam = dc_gain_db(zam, level, sr)
        static = ours.static_curve_db(np.array([level]))[0] - level
        assert abs(g_zam[-1] - static) < 0.01, level  # settled: the static curve
        ours.reset()
        x = np.full((2, g_zam.size), 10 ** (level / 20), np.float32)
        x[1] *= 0.5
        g_ours = 20 * np.log10(ours.process(x, sr)[0] / x[0])
        assert np.abs(g_zam - g_ours).max() < 0.01, level  # attack trajectory too


def test_soft_knee_is_documented_hard_knee(tmp_path):
    params = dict(P.neutral(P.TRACK), comp_threshold_db=-20.0, comp_ratio=4.0,
                  comp_knee_db=6.0, comp_attack_ms=150.0, comp_release_ms=900.0)
    out, files = export_one(tmp_path, params, 48000.0)
    zam = load("ZamCompX2", next(f.path for f in files if f.plugin == "ZamCompX2"))
    assert (zam.knee_db, zam.attack_ms, zam.release_ms) == (0.0, 100.0, 500.0)
    ours = Compressor(threshold_db=-20.0, ratio=4.0, knee_db=6.0)
    bound = (1 - 1 / 4) * 6 / 8  # 0.56 dB, at the threshold
    for level in (-30.0, -23.0, -20.0, -17.0, -10.0):
        diff = dc_gain_db(zam, level, 48000.0, seconds=3.0)[-1] - (
            ours.static_curve_db(np.array([level]))[0] - level)
        assert abs(diff) <= (bound + 0.01 if abs(level + 20) <= 3 else 0.01), level
    assert any("soft knee 6 dB not representable" in n and "0.56 dB" in n for n in out.notes)
    assert any("attack 150 ms clamped to 100 ms" in n for n in out.notes)
    assert any("release 900 ms clamped to 500 ms" in n for n in out.notes)


def test_files_names_and_failures(tmp_path):
    setting = P.ConsoleSetting(tracks=(P.TrackSetting("Lead Vox/1", {}),
                                       P.TrackSetting("master", {})))
    out = export_vstpresets(setting, tmp_path, 48000.0)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert "01-Lead Vox_1.ZamEQ2-A.vstpreset" in names and "02-master.ZamCompX2.vstpreset" in names
    assert len(out.files) == 15 and len(names) == 16
    assert dpf_state(out.files[0].values, EQ_ORDER).startswith(b"__dpf_program__\x000\x00")
    with pytest.raises(ExportError, match="preset folder .*nope does not exist"):
        export_vstpresets(setting, tmp_path / "nope")
    with pytest.raises(AudioInputError, match=r"sample_rate = 1000.0 Hz is out of range"):
        export_vstpresets(setting, tmp_path, 1000.0)
