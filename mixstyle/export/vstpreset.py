"""VST3 presets (.vstpreset) of a console setting for Debian's zam-plugins 4.1 (/usr/lib/vst3).

Chain per strip: ``ZamEQ2 A -> B -> C -> D (-> E -> F) (-> ZamGEQ31) -> ZamCompX2``; E and F
carry the high- and low-pass and are written only for tracks whose high- or low-pass is on;
ZamGEQ31 (its top bands 8.9 .. 22.4 kHz, fitted together with the ZamEQ2s) only for strips with
a peak3 centred above ZamEQ2's 14 kHz top frequency or a low-pass above 12 kHz (``geq_band``;
a strip without them keeps the four-instance chain; the README names the tracks with each).
ZamEQ2 and ZamGEQ31 are mono: put one instance on each channel (most hosts do this for a mono
plugin on a stereo track). Files are named ``NN-<track>.ZamEQ2-A.vstpreset``,
``NN-<track>.ZamGEQ31.vstpreset`` etc. and ``master.*``; ``README.txt`` lists the chain, the
EQ error of each strip and everything that was approximated or left to the DAW. The stated
error (``stated_error_db``) is what the real plugins measure: the worse of the
double-precision model and a simulation of ZamEQ2's arithmetic (``zam_eq2``: float32
parameters, float32 output fed back into its second peak), on ``check_freqs_hz`` (2000
log-spaced frequencies, at least 8 across the narrowest filter the fit allows; 2000 more from
8 kHz up with a ZamGEQ31), each measured from a 2.7 s impulse response.

=====================  =====================  ===========================================
mixstyle               ZamEQ2 / ZamCompX2     mapping
=====================  =====================  ===========================================
EQ bands, input gain,  ZamEQ2 A..D (E, F),    fitted to our whole EQ curve (``zam_fit``:
hpf, lpf               ZamGEQ31 band26..29    ZamEQ2's filters modelled from its source,
                                              each band on filters of its own, then all
                                              together; ``zam_geq``: ZamGEQ31's model,
                                              its top bands fitted last with the ZamEQ2s'
                                              top filters); input gain = A..D's
                                              ``master``; pass filters = deep shelves +
                                              peaks in E, F
comp threshold, ratio  ``thr``, ``rat``       identical
comp attack/release    ``att``, ``rel``       identical one-pole smoothing of the gain in dB;
                                              clamped to ZamCompX2's 100 ms / 500 ms maxima
comp knee              ``kn`` = 0             ZamCompX2's knee is not a soft knee: a hard knee
                                              is used; the static curves differ only within
                                              +-knee/2 of the threshold, by at most
                                              (1 - 1/ratio) * knee / 8 dB
comp makeup            ``mak``                identical
stereo link            ``stereodet`` = 1      max of the channels' gain reductions = our peak
                                              detector over channels
output_gain_db, pan    (none)                 the DAW's fader and pan
master gain_db,        ZaMaximX2 ``thresh``,  ``zam_maxim``: thresh = ceiling - gain (the
limiter ceiling,       ``ceil``, ``rel``      drive), ceil = ceiling, rel = release (1 .. 100
release                                       ms); given the song's master bus, the drive is
                                              calibrated through the real plug-in to the
                                              loudness the mix reached
target_lufs            (none)                 the loudness the drive was set for (README)
=====================  =====================  ===========================================

Measured (tests/mixstyle/export/test_vstpreset.py: each preset loaded into the real plugin with
pedalboard, an impulse through the chain, against ``dsp.eq.eq_curve_db`` + input gain on the
stated error's frequencies; every strip's stated error equals the measured one within 0.005 dB,
the rounding of the note): all 20 random extreme settings of the test (every band active
anywhere in the table, gains at or near +-18 dB, Q 0.3 .. 8, input gain +-24 dB, at
44.1/48/96 kHz) within 0.04 dB over 20 Hz .. 20 kHz; 60 more such settings within 0.09 dB
(median 0.01 dB). Before the fit (two instances, analytic mapping) 10 % of such settings
missed 1 dB, worst 4.6 dB. With the high- and/or low-pass on anywhere in the table up to
14 kHz (Q 0.5 .. 1.5) on top of such settings, stopband included (down to -100 dB): 8 through
the plugins within 0.08 dB, 60 more within 0.16 dB (median 0.04 dB); the deepest pair (1 kHz
high-pass at Q 1.5, -68 dB at 20 Hz, and 1 kHz low-pass, -79 dB at 20 kHz at 44.1 kHz)
0.35 dB.

Above ZamEQ2's 14 kHz top frequency no ZamEQ2 filter resonates, so a peak3 centred there
(our table goes to 16 kHz) and a resonant low-pass there (its peak lies above every ZamEQ2
filter, and the bilinear low-pass falls to -inf at Nyquist) were 1.8 .. 7.7 dB and 1.4 .. 3.9
dB off with ZamEQ2 alone. ZamGEQ31 adds third-octave bands up there (14.1 .. 17.8 kHz, and
17.8 .. 22.4 kHz except at 44.1 kHz, where that band does not run); they are steep-edged
steps, so they carry a level but not a shape narrower than a band. Stated errors (= measured),
peak3 at 14.5/15/16 kHz, +-18 dB:
- 44.1 kHz: Q 0.7 within 0.54 dB; Q 1.2 0.35 dB at 14.5 .. 15 kHz, 1.6 dB at 16 kHz; Q 2
  0.2 / 1.3 / 3.2 dB; Q 4 .. 8 1.5 .. 7 dB (-16 dB, Q 7.6 at 15.6 kHz: 5.4 dB);
- 96 kHz: Q <= 1.2 within 0.21 dB, Q 2 0.8 dB, Q 4 .. 8 0.3 .. 4.6 dB (Q 7.6: 3.3 dB).
The tested ones (+18 dB Q 1.1 at 14.7 kHz, -18 dB Q 0.7 at 15.2 kHz, +12 dB Q 0.7 at 16 kHz)
are within 0.15 dB at 44.1/48/96 kHz (the first was 1.8 dB with ZamEQ2 alone). A resonant
low-pass at 14, 15, 16, 16.5, 17, 17.5, 18, 19 kHz: at 44.1 kHz Q <= 1 within 0.69 dB, Q 1.5
0.4 .. 0.74 dB up to 16 kHz and 1.37 .. 1.76 dB from 16.5 kHz; at 48 kHz within 1.0 dB (Q 1.5
at 17 .. 19 kHz: 0.74 .. 1.0 dB, the rest within 0.45 dB); at 96 kHz within 0.09 dB. What is
left is the fall of some 15 dB between 18 and 20 kHz at 44.1 kHz, which neither plugin can
shape. 8 random extreme settings with a wide peak3 above 14 kHz and/or a low-pass at
12.5 .. 19.9 kHz (Q <= 0.71) within 0.49 dB.
High shelves above 14 kHz are built from lower filters within the 1 dB. ZamEQ2 rounds its
second peak's output to float32 and feeds that back: a peak low down at 96 kHz amplifies the
rounding some 90 dB (0.3 dB off the model), so the fit leaves such peaks in the first peak
slots (``zam_eq2.quiet_peak_slots``). Presets are made for one ``sample_rate_hz`` (the fit
models the plugins' bilinear filters at that rate). The fit is deterministic and needs no BLAS
(``zam_fit``); refitted from a start nudged by 1e-9, 95 settings (those above) give the same
stated error within 0.01 dB. Fitting takes 0.2 s per strip without pass filters (median, 2.7 s
at worst) and 1.8 s with them (8.5 s at worst), a strip with a ZamGEQ31 2 .. 16 s (measured
on a loaded 2-core machine).

Container (VST3 SDK preset format): ``'VST3'``, int32 version 1, the processor class id as 32
ASCII hex digits, int64 offset of the chunk list; then the chunk data; then ``'List'``, int32
count and per chunk a 4-char id, int64 offset and int64 size. The ``Comp`` chunk is the plugin's
component state (for these DPF plugins: NUL-separated ``key, value`` text pairs ending in 0xFE),
``Cont`` (controller state) is empty.
"""

from __future__ import annotations

import math
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from dsp.biquad import response_db
from dsp.eq import eq_sections
from dsp.errors import ExportError
from dsp.params import MASTER, TRACK, ConsoleSetting, spec, validate
from dsp.validate import check_sample_rate
from mixstyle.export.safe_zip import safe_file_stem, write_bytes_atomic
from mixstyle.export.zam_eq2 import (ZAM_FREQ_MAX_HZ, ZAM_FREQ_MIN_HZ, impulse_response_db,
                                     zam_eq2_curve_db, zam_eq2_impulse_response, zam_qq)
from mixstyle.export.zam_fit import fit_bw_min, fit_zam_eq2
from mixstyle.export.zam_starts import INSTANCES, PASS_INSTANCES
from mixstyle.export.zam_geq import GEQ_ORDER, zam_geq31_curve_db
from mixstyle.export.zam_maxim import (MAXIM_ORDER, VST3_DIR, ZAMAXIMX2_CLASS_ID, calibrate,
                                       load_zamaximx2, zamaximx2_values)

ZAMEQ2_CLASS_ID = "2046504473616C633251455A00000000"
ZAMCOMPX2_CLASS_ID = "2046504473616C633250435A00000000"
ZAMGEQ31_CLASS_ID = "2046504473616C633133475A00000000"
LPF_GEQ_ABOVE_HZ = 12000.0  # a low-pass above this gets the ZamGEQ31 (see geq_band)
ZAM_ATTACK_MAX_MS, ZAM_RELEASE_MAX_MS = 100.0, 500.0
EQ_ORDER = ("boost1", "bw1", "f1", "boost2", "bw2", "f2", "boostl", "fl", "boosth", "fh",
            "master", "peaks")
COMP_ORDER = ("att", "rel", "kn", "rat", "thr", "mak", "slew", "stereodet", "sidechain")
BANDS = ("low_shelf", "peak1", "peak2", "peak3", "high_shelf")   # dsp.eq's master order
TRACK_BANDS = ("hpf",) + BANDS + ("lpf",)                        # dsp.eq's track order
CURVE_POINTS = 320   # the fit's frequencies
CHECK_POINTS = 2000  # the stated error's frequencies (log-spaced: 0.35 % apart), at least
POINTS_PER_WIDTH = 8  # and at least this many across the narrowest filter the fit allows
GEQ_DENSE_FROM_HZ, GEQ_DENSE_POINTS = 8000.0, 240  # the fit's extra frequencies with a ZamGEQ31


# ------------------------------------------------------------------------------ container


def dpf_state(values: Mapping[str, float], order: tuple[str, ...], program: int = 0) -> bytes:
    """Component state of a DPF plugin: program, then ``symbol, value`` pairs, 0xFE, NUL."""
    parts = ["__dpf_program__", str(program), "__dpf_parameters_begin__"]
    for key in order:
        parts += [key, f"{float(values[key]):.9g}"]
    parts.append("__dpf_parameters_end__")
    return ("\x00".join(parts) + "\x00").encode("ascii") + b"\xfe\x00"


def vstpreset_bytes(class_id: str, component: bytes, controller: bytes = b"") -> bytes:
    """A .vstpreset file: header, the 'Comp' and 'Cont' chunks, the chunk list."""
    if len(class_id) != 32 or any(c not in "0123456789ABCDEFabcdef" for c in class_id):
        raise ExportError(f"class_id must be 32 hex digits, got {class_id!r}")
    header_size = 4 + 4 + 32 + 8
    list_offset = header_size + len(component) + len(controller)
    out = bytearray(b"VST3" + struct.pack("<i", 1) + class_id.upper().encode("ascii")
                    + struct.pack("<q", list_offset))
    out += component + controller
    out += b"List" + struct.pack("<i", 2)
    out += b"Comp" + struct.pack("<qq", header_size, len(component))
    out += b"Cont" + struct.pack("<qq", header_size + len(component), len(controller))
    return bytes(out)


def read_vstpreset(data: bytes, where: str = "preset") -> tuple[str, dict[str, bytes]]:
    """(class id, {chunk id: bytes}) of a .vstpreset; malformed files raise ExportError."""
    if len(data) < 48 or data[:4] != b"VST3":
        raise ExportError(f"{where}: not a .vstpreset file (no 'VST3' header)")
    class_id = data[8:40].decode("ascii", "replace")
    (list_offset,) = struct.unpack("<q", data[40:48])
    if not 48 <= list_offset <= len(data) - 8 or data[list_offset:list_offset + 4] != b"List":
        raise ExportError(f"{where}: chunk list offset {list_offset} is invalid")
    (count,) = struct.unpack("<i", data[list_offset + 4:list_offset + 8])
    if not 0 <= count <= (len(data) - list_offset - 8) // 20:
        raise ExportError(f"{where}: chunk count {count} is invalid")
    chunks = {}
    for i in range(count):
        at = list_offset + 8 + 20 * i
        cid = data[at:at + 4].decode("ascii", "replace")
        off, size = struct.unpack("<qq", data[at + 4:at + 20])
        if off < 48 or size < 0 or off + size > list_offset:
            raise ExportError(f"{where}: chunk {cid!r} lies outside the data area")
        chunks[cid] = data[off:off + size]
    return class_id, chunks


def _note_out_of_reach(value: float, what: str, notes: list[str], sample_rate_hz: float,
                       with_geq: bool = False) -> None:
    """Note a band centred where no ZamEQ2 filter can go (it is built from other filters)."""
    f = min(max(value, ZAM_FREQ_MIN_HZ), ZAM_FREQ_MAX_HZ, 0.45 * sample_rate_hz)
    if f != value:
        how = "lower filters and ZamGEQ31's top bands" if with_geq else "lower filters"
        notes.append(f"{what} {value:g} Hz is above ZamEQ2's top frequency ({f:g} Hz): "
                     f"approximated from {how} (see the EQ error below)")


def pass_filters(section: str, p: Mapping[str, Any]) -> tuple[str, ...]:
    """The strip's active pass filters ("hpf", "lpf"): those away from their bypass end."""
    if section != TRACK:
        return ()
    return tuple(band for band, on in (
        ("hpf", p["hpf_freq_hz"] > spec(TRACK, "hpf_freq_hz").min),
        ("lpf", p["lpf_freq_hz"] < spec(TRACK, "lpf_freq_hz").max)) if on)


def geq_band(section: str, p: Mapping[str, Any]) -> str | None:
    """The band that gets the ZamGEQ31's top bands: "peak3" centred above ZamEQ2's top
    frequency, else "lpf" above ``LPF_GEQ_ABOVE_HZ``; None: the strip needs no ZamGEQ31."""
    if p["peak3_freq_hz"] > ZAM_FREQ_MAX_HZ and p["peak3_gain_db"] != 0:
        return "peak3"
    if "lpf" in pass_filters(section, p) and p["lpf_freq_hz"] > LPF_GEQ_ABOVE_HZ:
        return "lpf"
    return None


def eq_instances(section: str, p: Mapping[str, Any]) -> tuple[str, ...]:
    """ZamEQ2 instance letters of a strip: A..D, then E, F if a pass filter is active."""
    return INSTANCES + (PASS_INSTANCES if pass_filters(section, p) else ())


def zam_eq2_values(section: str, params: Mapping[str, Any], sample_rate_hz: float,
                   where: str = "") -> tuple[list[dict[str, float]], dict[str, float] | None,
                                             list[str]]:
    """Parameter values of ZamEQ2 instances A..D (E, F with a pass filter) and of the ZamGEQ31
    (None when the strip needs none) for one strip, fitted together to the whole EQ curve
    (pass filters, bands and input gain), and notes."""
    p = validate(section, params, where)
    sr = check_sample_rate(sample_rate_hz)
    notes: list[str] = []
    with_geq = geq_band(section, p)
    for band, what in (("peak3", "peak3"), ("high_shelf", "high shelf"),
                       ("low_shelf", "low shelf"), ("peak1", "peak1"), ("peak2", "peak2")):
        _note_out_of_reach(p[f"{band}_freq_hz"], what, notes, sr, with_geq == band)
    freqs = np.geomspace(20.0, min(20000.0, 0.49 * sr), CURVE_POINTS)
    if with_geq is not None:  # the ZamGEQ31's steep band edges: denser up high
        freqs = np.union1d(freqs, np.linspace(GEQ_DENSE_FROM_HZ, freqs[-1], GEQ_DENSE_POINTS))
    rows = eq_sections(section, p, sr)
    names = TRACK_BANDS if section == TRACK else BANDS
    passes = pass_filters(section, p)
    curves = {band: response_db(row, freqs, sr) for band, row in zip(names, rows)
              if band in BANDS or band in passes}
    bands = {band: {"freq": p[f"{band}_freq_hz"], "gain": p.get(f"{band}_gain_db", 0.0),
                    "q": p.get(f"{band}_q", 0.7071)} for band in BANDS + passes}
    gain = p["input_gain_db"] if section == TRACK else 0.0
    fit = fit_zam_eq2(curves, bands, gain, freqs, sr, with_geq is not None)
    insts, geq = fit.eq2, fit.geq
    worst = stated_error_db(insts, geq, response_db(rows, check_freqs_hz(sr, geq is not None),
                                                    sr) + gain, sr)
    notes.append(f"EQ curve within {worst:.2f} dB of mixstyle's over 20 Hz .. "
                 f"{freqs[-1] / 1000:.3g} kHz (modelled with the plugins' float32 rounding, "
                 f"pass filters included)")
    for band, what in (("hpf", "high-pass"), ("lpf", "low-pass")):
        if band in passes:
            notes.append(f"{what} {p[f'{band}_freq_hz']:g} Hz (Q {p[f'{band}_q']:g}) built "
                         f"from deep shelves and peaks in ZamEQ2-E and -F"
                         + (" and ZamGEQ31's top bands" if with_geq == band else ""))
    return insts, geq, notes


def check_freqs_hz(sample_rate_hz: float, with_geq: bool) -> np.ndarray:
    """The frequencies of the stated error: ``CHECK_POINTS`` log-spaced over 20 Hz .. 20 kHz
    (or 0.49 fs), or more where the narrowest filter the fit allows (``zam_fit.fit_bw_min``)
    would get fewer than ``POINTS_PER_WIDTH`` across its half-gain width (its digital width
    is ``1 / (2 pi qq)`` of its frequency: 5.7 % at 44.1 kHz, 16 points; 1.4 % at 8 kHz), and
    ``CHECK_POINTS`` linear ones from 8 kHz up across the ZamGEQ31's steep band edges when it
    is in the chain."""
    top = min(20000.0, 0.49 * sample_rate_hz)
    width = 1.0 / (2.0 * math.pi * zam_qq(fit_bw_min(sample_rate_hz)))
    points = max(CHECK_POINTS, math.ceil(math.log(top / 20.0)
                                         / math.log1p(width / POINTS_PER_WIDTH)) + 1)
    freqs = np.geomspace(20.0, top, points)
    if with_geq:
        freqs = np.union1d(freqs, np.linspace(GEQ_DENSE_FROM_HZ, top, CHECK_POINTS))
    return freqs


def stated_error_db(eq2: list[dict[str, float]], geq: dict[str, float] | None,
                    ours_db: np.ndarray, sample_rate_hz: float) -> float:
    """The error a README states for a strip: the worse of the double-precision model and a
    simulation of the plugins' arithmetic (``zam_eq2.zam_eq2_impulse_response``: float32
    parameters, output and feedback; what the real chain measures, within 0.002 dB) against
    ``ours_db`` at ``check_freqs_hz``. ZamGEQ31 filters in double precision: its model is
    added to both."""
    freqs = check_freqs_hz(sample_rate_hz, geq is not None)
    extra = zam_geq31_curve_db(geq, freqs, sample_rate_hz) if geq is not None else 0.0
    model = zam_eq2_curve_db(eq2, freqs, sample_rate_hz) + extra
    response = zam_eq2_impulse_response(eq2, sample_rate_hz)
    simulated = impulse_response_db(response, freqs, sample_rate_hz) + extra
    return float(max(np.abs(model - ours_db).max(), np.abs(simulated - ours_db).max()))


def zam_compx2_values(params: Mapping[str, Any], section: str = TRACK,
                      where: str = "") -> tuple[dict[str, float], list[str]]:
    """ZamCompX2 parameter values for one strip's compressor, and notes."""
    p = validate(section, params, where)
    notes: list[str] = []
    attack = min(p["comp_attack_ms"], ZAM_ATTACK_MAX_MS)
    release = min(p["comp_release_ms"], ZAM_RELEASE_MAX_MS)
    if attack != p["comp_attack_ms"]:
        notes.append(f"compressor attack {p['comp_attack_ms']:g} ms clamped to {attack:g} ms")
    if release != p["comp_release_ms"]:
        notes.append(f"compressor release {p['comp_release_ms']:g} ms clamped to {release:g} ms")
    if p["comp_knee_db"] > 0 and p["comp_ratio"] > 1:
        worst = (1 - 1 / p["comp_ratio"]) * p["comp_knee_db"] / 8
        notes.append(f"compressor soft knee {p['comp_knee_db']:g} dB not representable: hard "
                     f"knee used (static curve differs by up to {worst:.2f} dB at the threshold)")
    values = {"att": attack, "rel": release, "kn": 0.0, "rat": p["comp_ratio"],
              "thr": p["comp_threshold_db"], "mak": p["comp_makeup_db"], "slew": 1.0,
              "stereodet": 1.0, "sidechain": 0.0}
    return values, notes


# -------------------------------------------------------------------------------- export


@dataclass(frozen=True)
class PresetFile:
    strip: str   # track name or "master"
    plugin: str  # "ZamEQ2", "ZamGEQ31", "ZamCompX2" or (master) "ZaMaximX2"
    path: Path
    values: dict[str, float]


@dataclass(frozen=True)
class PresetExport:
    files: tuple[PresetFile, ...]
    notes: tuple[str, ...]  # "<strip>: <what was approximated or left to the DAW>"
    readme: Path


def preset_paths(setting: ConsoleSetting, out_dir: str | os.PathLike[str]) -> list[Path]:
    """Every file ``export_vstpresets`` would write (for overwrite checks)."""
    out = Path(out_dir)
    strips = [(f"{i + 1:02d}-{safe_file_stem(t.name)}", TRACK, t.params)
              for i, t in enumerate(setting.tracks)] + [("master", MASTER, setting.master)]
    paths = []
    for name, section, params in strips:
        p = validate(section, params, "master" if section == MASTER else f"track {name!r}")
        kinds = [f"ZamEQ2-{i}" for i in eq_instances(section, p)]
        kinds += ["ZamGEQ31"] * (geq_band(section, p) is not None) + ["ZamCompX2"]
        kinds += ["ZaMaximX2"] * (section == MASTER)
        paths += [out / f"{name}.{kind}.vstpreset" for kind in kinds]
    return paths + [out / "README.txt"]


def export_vstpresets(setting: ConsoleSetting, out_dir: str | os.PathLike[str],
                      sample_rate_hz: float = 48000.0,
                      master_bus: tuple[np.ndarray, float] | None = None) -> PresetExport:
    """Write the presets of every strip (ZamEQ2 A..D, E/F with a pass filter, a ZamGEQ31 where
    needed, ZamCompX2; the master's gain and limiter as a ZaMaximX2) and a README into
    ``out_dir``. ``master_bus``: the song's master bus before its gain ((2, n) at
    ``sample_rate_hz``, ``dsp.render.bus_before_limiter``) and the loudness the mix reached:
    the ZaMaximX2's drive is then calibrated through the real plug-in to that loudness
    (``zam_maxim.calibrate``; where the plug-in is not installed, the mapping alone, noted)."""
    if not isinstance(setting, ConsoleSetting):
        raise TypeError(f"setting must be a dsp.params.ConsoleSetting, got "
                        f"{type(setting).__name__}")
    sr = check_sample_rate(sample_rate_hz)
    folder = Path(out_dir)
    if not folder.is_dir():
        raise ExportError(f"preset folder {folder} does not exist")
    paths = iter(preset_paths(setting, folder))
    strips = [(t.name, TRACK, t.params) for t in setting.tracks] + [("master", MASTER,
                                                                      setting.master)]
    files: list[PresetFile] = []
    notes: list[str] = []
    with_passes: list[str] = []
    with_geq: list[str] = []
    for name, section, params in strips:
        where = "master" if section == MASTER else f"track {name!r}"
        eqs, geq, eq_notes = zam_eq2_values(section, params, sr, where)
        comp, comp_notes = zam_compx2_values(params, section, where)
        p = validate(section, params, where)
        extra = []
        if section == TRACK and (p["output_gain_db"] != 0 or p["pan"] != 0):
            extra.append(f"fader {p['output_gain_db']:g} dB and pan {p['pan']:+g} (-1..1, "
                         f"constant power): set in the DAW")
        maxim = None
        if section == MASTER:
            maxim, maxim_notes = zamaximx2_values(p, where)
            extra += maxim_notes + _calibrated(maxim, p, master_bus, sr)
        notes += [f"{name}: {n}" for n in eq_notes + comp_notes + extra]
        if len(eqs) > len(INSTANCES):
            with_passes.append(name)
        chain = [("ZamEQ2", ZAMEQ2_CLASS_ID, v, EQ_ORDER) for v in eqs]
        if geq is not None:
            with_geq.append(name)
            chain.append(("ZamGEQ31", ZAMGEQ31_CLASS_ID, geq, GEQ_ORDER))
        chain.append(("ZamCompX2", ZAMCOMPX2_CLASS_ID, comp, COMP_ORDER))
        if maxim is not None:
            chain.append(("ZaMaximX2", ZAMAXIMX2_CLASS_ID, maxim, MAXIM_ORDER))
        for plugin, cid, values, order in chain:
            path = next(paths)
            write_bytes_atomic(path, vstpreset_bytes(cid, dpf_state(values, order)))
            files.append(PresetFile(name, plugin, path, values))
    readme = next(paths)
    text = ["mixstyle -> zam-plugins presets, made for %g Hz" % sr, "",
            "Chain per track: ZamEQ2-A -> ZamEQ2-B -> ZamEQ2-C -> ZamEQ2-D -> (ZamEQ2-E -> "
            "ZamEQ2-F) -> (ZamGEQ31) -> ZamCompX2 (ZamEQ2 and ZamGEQ31 are mono: one per "
            "channel), then the DAW's fader and pan. ZamEQ2-E and -F (the high- and low-pass) "
            "exist only for tracks whose high- or low-pass is on: "
            + (", ".join(with_passes) or "none") + ". "
            "ZamGEQ31 (its top bands, fitted together with the ZamEQ2s) exists only for strips "
            "with a peak3 above 14 kHz or a low-pass above %g kHz: " % (LPF_GEQ_ABOVE_HZ / 1000)
            + (", ".join(with_geq) or "none") + ". "
            "Master: ZamEQ2-A..D -> (ZamGEQ31) -> ZamCompX2 -> ZaMaximX2 (the master gain "
            "and limiter: its threshold is the drive into the limiter, its ceiling ours).",
            "", "Approximations and settings left to the DAW:"]
    text += [f"- {n}" for n in notes] or ["- none"]
    write_bytes_atomic(readme, ("\n".join(text) + "\n").encode("utf-8"))
    return PresetExport(tuple(files), tuple(notes), readme)


def _calibrated(values: dict[str, float], master: Mapping[str, Any],
                master_bus: tuple[np.ndarray, float] | None, sample_rate: float) -> list[str]:
    """Calibrate the ZaMaximX2 ``values`` in place where the song's master bus is given (a
    drive to set: the master gain at or above its ceiling); the notes saying what was done."""
    target = "none" if master["target_lufs"] is None else f"{master['target_lufs']:g} LUFS"
    if master_bus is None:
        return [f"loudness target {target}: the drive is the mapping's, not calibrated on the "
                f"song (ZaMaximX2 limits harder than ours: up to 0.7 LU quieter at 10-24 dB of "
                f"drive)"]
    bus, lufs = master_bus
    if values["thresh"] >= 0.0 or not math.isfinite(lufs):
        return []
    plugin = load_zamaximx2()
    if plugin is None:
        return [f"ZaMaximX2 not found in {VST3_DIR}: the drive is the mapping's, not calibrated "
                f"on the song"]
    before = values["thresh"]
    new, got = calibrate(values, bus, sample_rate, lufs, plugin)
    values.update(new)
    return [f"ZaMaximX2 drive calibrated on the song through the plug-in: threshold "
            f"{values['thresh']:.2f} dB (mapping {before:.2f} dB) reaches {got:.2f} LUFS, the "
            f"mix {lufs:.2f} LUFS (loudness target {target})"]
