"""zam-plugins presets: files the real plugins load, measured against our DSP.

Each preset is written by our code, loaded back with pedalboard's ``load_preset`` and measured:
an impulse through ZamEQ2 A -> B -> C -> D (-> E -> F with a high- or low-pass) (-> ZamGEQ31)
against ``dsp.eq.eq_curve_db`` (+ input gain, pass filters included) on the frequencies of the
README's stated error (``check_freqs_hz``), which must be what the plugins measure; DC steps
through ZamCompX2 against ``dsp.compressor.Compressor``. Tests of the container, the files and
the fit's model need no plugin and never skip; the others skip (fail under CI /
MIXSTYLE_REQUIRE_REAL=1) without pedalboard and zam-plugins.
"""

from pathlib import Path

import numpy as np
import pytest

from dsp import params as P
from dsp.compressor import Compressor
from dsp.eq import eq_curve_db
from dsp.errors import AudioInputError, ExportError
from mixstyle.export.vstpreset import (COMP_ORDER, EQ_ORDER, ZAMCOMPX2_CLASS_ID, ZAMEQ2_CLASS_ID,
                                       check_freqs_hz, dpf_state, export_vstpresets,
                                       preset_paths, read_vstpreset, vstpreset_bytes)
from mixstyle.export.zam_eq2 import (ZAM_FREQ_MAX_HZ, impulse_response_db, response_samples,
                                     zam_eq2_curve_db)

pytestmark = pytest.mark.long(200)   # seconds on 2 cores: scheduled first (tests/conftest.py)

VST3 = Path("/usr/lib/vst3")
try:
    import pedalboard
except ImportError:  # pragma: no cover - pedalboard is a dependency
    pedalboard = None


def _missing_plugins():
    if pedalboard is None:
        return "pedalboard is not installed"
    absent = [p for p in ("ZamEQ2", "ZamGEQ31", "ZamCompX2") if not (VST3 / f"{p}.vst3").is_dir()]
    if absent:
        return (f"zam-plugins VST3 ({', '.join(absent)}; Debian package zam-plugins) not "
                f"installed in /usr/lib/vst3")
    return None


MISSING = _missing_plugins()
needs_plugins = pytest.mark.skipif(MISSING is not None, reason=MISSING or "")
# the README's stated error against the plugins' measured one, on the same frequencies: the
# stated error is the worse of the model and a simulation of the plugins' float32 arithmetic
# (within 0.002 dB of them); the double-precision model is within 0.01 dB of them
HONEST_DB = 0.02


def stated_db(out):
    """The EQ error a README note states ("... EQ curve within 0.12 dB ...")."""
    note = next(n for n in out.notes if "EQ curve within" in n)
    return float(note.split("within ")[1].split(" dB")[0])


def load(plugin, path):
    p = pedalboard.load_plugin(str(VST3 / f"{plugin}.vst3"))
    p.load_preset(str(path))
    return p


def eq_response_db(files, sr, freqs):
    """Magnitude (dB) at ``freqs`` of the impulse response of the strip's EQ chain (its
    ZamEQ2s and ZamGEQ31 if any, from its PresetFiles), as long as the exporter's simulation."""
    x = np.zeros((1, response_samples(sr)), np.float32)
    x[0, 0] = 1.0
    for f in files:
        if f.plugin not in ("ZamCompX2", "ZaMaximX2"):
            x = load(f.plugin, f.path).process(x, sr, reset=True)
    return impulse_response_db(x[0], freqs, sr)


def export_one(tmp_path, params, sr, section=P.TRACK):
    if section == P.TRACK:
        setting = P.ConsoleSetting(tracks=(P.TrackSetting("vox", params),))
    else:
        setting = P.ConsoleSetting(tracks=(), master=params)
    out = export_vstpresets(setting, tmp_path, sr)
    strip = "vox" if section == P.TRACK else "master"
    return out, [f for f in out.files if f.strip == strip]


def plugins_of(files):
    return [f.path.name.split(".")[1] for f in files]


def chain_error_db(folder, params, sr, section=P.TRACK):
    """Export ``params`` into ``folder``; return (export, the strip's files, the largest error
    of the real EQ chain against our curve on the stated error's frequencies, our curve
    there). The README states that error: checked to ``HONEST_DB``."""
    folder.mkdir(exist_ok=True)
    out, files = export_one(folder, params, sr, section)
    freqs = check_freqs_hz(sr, "ZamGEQ31" in plugins_of(files))
    ours = eq_curve_db(section, params, freqs, sr) + params.get("input_gain_db", 0.0)
    err = float(np.abs(eq_response_db(files, sr, freqs) - ours).max())
    assert abs(stated_db(out) - err) <= HONEST_DB, (stated_db(out), err)
    return out, files, err, ours


# ---------------------------------------------------------------------- no plugin needed


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


def test_files_names_and_failures(tmp_path):
    setting = P.ConsoleSetting(tracks=(P.TrackSetting("Lead Vox/1", {}),
                                       P.TrackSetting("master", {})))
    out = export_vstpresets(setting, tmp_path, 48000.0)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert "01-Lead Vox_1.ZamEQ2-A.vstpreset" in names and "02-master.ZamCompX2.vstpreset" in names
    assert len(out.files) == 16 and len(names) == 17   # 3 strips of 5, the master's ZaMaximX2
    assert "master.ZaMaximX2.vstpreset" in names and "02-master.ZaMaximX2.vstpreset" not in names
    assert dpf_state(out.files[0].values, EQ_ORDER).startswith(b"__dpf_program__\x000\x00")
    with pytest.raises(ExportError, match="preset folder .*nope does not exist"):
        export_vstpresets(setting, tmp_path / "nope")
    with pytest.raises(AudioInputError, match=r"sample_rate = 1000.0 Hz is out of range"):
        export_vstpresets(setting, tmp_path, 1000.0)


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
                      "master": four + ["ZamGEQ31", "ZamCompX2", "ZaMaximX2"]}
    readme = out.readme.read_text()
    assert "high- or low-pass is on: vox, pad, dark." in readme
    assert "low-pass above 12 kHz: air, dark, master." in readme
    assert "(ZamEQ2-E -> ZamEQ2-F) -> (ZamGEQ31) -> ZamCompX2" in readme
    assert "ZamCompX2 -> ZaMaximX2 (the master gain and limiter" in readme
    assert any("low-pass 8000 Hz (Q 0.7071) built from" in n for n in out.notes)
    assert "float32 rounding" in readme  # how the stated errors were made


# ---------------------------------------------------------------------- the real plugins


@needs_plugins
def test_class_ids_match_what_the_plugins_write():
    for plugin, cid in (("ZamEQ2", ZAMEQ2_CLASS_ID), ("ZamCompX2", ZAMCOMPX2_CLASS_ID)):
        own = pedalboard.load_plugin(str(VST3 / f"{plugin}.vst3")).preset_data
        class_id, chunks = read_vstpreset(own)
        assert class_id == cid
        assert set(chunks) == {"Comp", "Cont"}
        assert chunks["Comp"].endswith(b"__dpf_parameters_end__\x00\xfe\x00")


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


@needs_plugins
@pytest.mark.parametrize("sr", [44100.0, 48000.0, 96000.0])
@pytest.mark.parametrize("case", list(EQ_CASES))
def test_eq_presets_match_our_eq_curve_within_1_db(tmp_path, sr, case):
    params = dict(P.neutral(P.TRACK), hpf_freq_hz=60.0, **EQ_CASES[case])
    out, files, err, ours = chain_error_db(tmp_path, params, sr)
    eqs = [f for f in files if f.plugin == "ZamEQ2"]
    assert [f.path.name.split(".")[1] for f in eqs] == [f"ZamEQ2-{c}" for c in "ABCDEF"]
    assert err < 1.0
    freqs = check_freqs_hz(sr, False)
    without_hpf = eq_curve_db(P.TRACK, dict(params, hpf_freq_hz=10.0), freqs, sr)
    assert ours[0] - params["input_gain_db"] < without_hpf[0] - 18.0  # -19 dB at 20 Hz
    # the exporter's model of ZamEQ2 is what the plugin does
    measured = eq_response_db(eqs, sr, freqs)
    assert np.abs(zam_eq2_curve_db([f.values for f in eqs], freqs, sr) - measured).max() < 0.01
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


@needs_plugins
@pytest.mark.parametrize("seed", [11, 12, 13, 14])
def test_random_extreme_settings_all_within_1_db_through_the_plugins(tmp_path, seed):
    """The issue's measure, for every setting: the real plugins with our presets against our EQ
    curve, 20 Hz .. 20 kHz, the README's error honest. The one corner left out (peak3 above
    ZamEQ2's 14 kHz) is measured further down."""
    worst = []
    for i, (params, sr) in enumerate(random_extreme_settings(5, seed)):
        out, files, err, _ = chain_error_db(tmp_path / f"s{i}", params, sr)
        assert plugins_of(files) == [f"ZamEQ2-{c}" for c in "ABCD"] + ["ZamCompX2"]
        worst.append(err)
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


@needs_plugins
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
        out, files, err, ours = chain_error_db(tmp_path / f"s{i}", params, sr)
        assert plugins_of(files)[:6] == [f"ZamEQ2-{c}" for c in "ABCDEF"]
        worst.append(err)
        depth.append(float((ours - ours.max()).min()))
    assert max(worst) <= 1.0, worst
    assert min(depth) < -40.0, depth  # a deep stopband was among them


@needs_plugins
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
        out, files, err, _ = chain_error_db(tmp_path / f"s{i}", params, sr)
        assert "ZamGEQ31" in plugins_of(files)
        worst.append(err)
    assert max(worst) <= 1.0, worst


@needs_plugins
@pytest.mark.parametrize("sr", [44100.0, 96000.0])
def test_deepest_high_and_low_pass(tmp_path, sr):
    """Both pass filters at their most demanding: 1 kHz high-pass (-68 dB at 20 Hz) and 1 kHz
    low-pass (-52 dB at 20 kHz, about -80 dB at 44.1 kHz); resonant (Q 1.5)."""
    params = dict(P.neutral(P.TRACK), hpf_freq_hz=1000.0, hpf_q=1.5, lpf_freq_hz=1000.0,
                  lpf_q=1.5)
    _, _, err, ours = chain_error_db(tmp_path, params, sr)
    assert ours[0] < -65.0 and ours[-1] < -50.0
    assert err < 1.0


@needs_plugins
@pytest.mark.parametrize("sr", [44100.0, 48000.0, 96000.0])
@pytest.mark.parametrize("lpf_hz,q", [(16500.0, 1.5), (16000.0, 1.0)])
def test_resonant_low_pass_above_14_khz_with_the_geq(tmp_path, sr, lpf_hz, q):
    """The resonant low-pass whose peak lies above every ZamEQ2 filter: 16.5 kHz, Q 1.5 was
    3.9 dB off at 44.1 kHz with ZamEQ2 alone; ZamGEQ31's 14.1 .. 17.8 kHz band takes the
    resonance. At 44.1 kHz 16.5 kHz Q 1.5 is on the edge of the documented corner (see the
    next test): 1.4 dB, stated."""
    params = dict(P.neutral(P.TRACK), lpf_freq_hz=lpf_hz, lpf_q=q)
    out, files, err, _ = chain_error_db(tmp_path, params, sr)
    assert plugins_of(files) == [f"ZamEQ2-{c}" for c in "ABCDEF"] + ["ZamGEQ31", "ZamCompX2"]
    assert err < (1.5 if (lpf_hz, q, sr) == (16500.0, 1.5, 44100.0) else 1.0)


@needs_plugins
@pytest.mark.parametrize("sr,lo_db,hi_db", [(44100.0, 1.0, 2.5), (48000.0, 0.3, 1.5)])
def test_low_pass_plunge_above_17_8_khz_is_the_documented_corner(tmp_path, sr, lo_db, hi_db):
    """What is left: a resonant low-pass at 16.5 .. 19 kHz at 44.1/48 kHz falls some 15 dB
    between 18 and 20 kHz (the bilinear low-pass reaches -inf at Nyquist). No ZamEQ2 filter
    reaches above 14 kHz and a ZamGEQ31 band is flat there (its 17.8 .. 22.4 kHz band does
    not even run at 44.1 kHz), so the chain stays off, by the README's stated error."""
    params = dict(P.neutral(P.TRACK), lpf_freq_hz=17500.0, lpf_q=1.5)
    out, files, err, _ = chain_error_db(tmp_path, params, sr)
    assert "ZamGEQ31" in plugins_of(files)
    assert lo_db < err < hi_db


@needs_plugins
def test_master_with_the_geq_through_the_plugins(tmp_path):
    master = dict(P.neutral(P.MASTER), peak3_freq_hz=16000.0, peak3_gain_db=-3.0)
    out, files, err, _ = chain_error_db(tmp_path, master, 48000.0, P.MASTER)
    assert plugins_of(files) == [f"ZamEQ2-{c}" for c in "ABCD"] + ["ZamGEQ31", "ZamCompX2",
                                                                   "ZaMaximX2"]
    assert err < 1.0


@needs_plugins
@pytest.mark.parametrize("sr", [44100.0, 48000.0, 96000.0])
@pytest.mark.parametrize("case", [(14700.0, 18.0, 1.1), (15200.0, -18.0, 0.7),
                                  (16000.0, 12.0, 0.7)])
def test_peak_above_14_khz_with_the_geq(tmp_path, sr, case):
    """peak3 centred above ZamEQ2's top frequency: +18 dB, Q 1.1 at 14.7 kHz was 1.8 dB off
    with ZamEQ2 alone; with the ZamGEQ31's top bands fitted in, within 1 dB."""
    freq, gain, q = case
    params = dict(P.neutral(P.TRACK), peak3_freq_hz=freq, peak3_gain_db=gain, peak3_q=q)
    out, files, err, _ = chain_error_db(tmp_path, params, sr)
    assert plugins_of(files) == [f"ZamEQ2-{c}" for c in "ABCD"] + ["ZamGEQ31", "ZamCompX2"]
    assert err < 1.0
    assert any(f"peak3 {freq:g} Hz is above ZamEQ2's top frequency" in n and "ZamGEQ31" in n
               for n in out.notes)


@needs_plugins
@pytest.mark.parametrize("sr", [44100.0, 96000.0])
def test_narrow_peak_above_14_khz_is_the_documented_corner(tmp_path, sr):
    """What is left: a narrow peak3 above 14 kHz (here -16 dB, Q 7.6 at 15.6 kHz, 2 kHz wide)
    is narrower than ZamGEQ31's 14.1 .. 17.8 kHz band and no ZamEQ2 filter resonates up there;
    the chain is off by the README's stated error."""
    params = dict(P.neutral(P.TRACK), peak3_freq_hz=15600.0, peak3_gain_db=-16.0, peak3_q=7.6)
    _, _, err, _ = chain_error_db(tmp_path, params, sr)
    assert 1.0 < err < 7.0


@needs_plugins
def test_master_eq_and_notes(tmp_path):
    master = dict(P.neutral(P.MASTER), low_shelf_gain_db=3.0, peak2_gain_db=-2.0,
                  high_shelf_gain_db=2.0, gain_db=4.0, target_lufs=-14.0)
    out, files, err, _ = chain_error_db(tmp_path, master, 48000.0, P.MASTER)
    assert err < 1.0
    # the gain into the limiter is ZaMaximX2's drive: 4 dB into the neutral 0 dBFS ceiling
    assert next(f for f in files if f.plugin == "ZaMaximX2").values == {
        "rel": 50.0, "ceil": 0.0, "thresh": -4.0}
    assert any("master: loudness target -14 LUFS: the drive is the mapping's" in n
               for n in out.notes)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "README.txt", "master.ZaMaximX2.vstpreset", "master.ZamCompX2.vstpreset",
        "master.ZamEQ2-A.vstpreset", "master.ZamEQ2-B.vstpreset", "master.ZamEQ2-C.vstpreset",
        "master.ZamEQ2-D.vstpreset"]
    assert "-14 LUFS" in (tmp_path / "README.txt").read_text()


@needs_plugins
def test_out_of_range_frequencies_are_built_from_lower_filters_and_noted(tmp_path):
    params = dict(P.neutral(P.TRACK), high_shelf_freq_hz=16000.0, high_shelf_gain_db=6.0)
    out, files, err, _ = chain_error_db(tmp_path, params, 48000.0)
    eqs = [f for f in files if f.plugin == "ZamEQ2"]
    assert all(load("ZamEQ2", f.path).frequency_h_hz <= 14000.0 for f in eqs)
    assert any("high shelf 16000 Hz is above ZamEQ2's top frequency" in n for n in out.notes)
    assert err < 1.0


def dc_gain_db(plugin, level_db, sr, seconds=0.4):
    x = np.full((2, int(sr * seconds)), 10 ** (level_db / 20), np.float32)
    x[1] *= 0.5  # the louder channel drives both (stereo link by max)
    return 20 * np.log10(plugin.process(x, sr, reset=True)[0] / x[0])


@needs_plugins
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


@needs_plugins
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
