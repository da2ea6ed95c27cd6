"""VST3 presets (.vstpreset) of a console setting for Debian's zam-plugins 4.1 (/usr/lib/vst3).

Chain per strip: ``ZamEQ2 A -> ZamEQ2 B -> ZamCompX2``. ZamEQ2 is mono: put one instance on each
channel (most hosts do this for a mono plugin on a stereo track). Files are named
``NN-<track>.ZamEQ2-A.vstpreset`` etc. and ``master.*``; ``README.txt`` lists the chain and
everything that was approximated or left to the DAW.

How ZamEQ2 4.1 filters (read from its source, checked by measurement in the tests): its shelves
are RBJ shelves with shelf slope S = 0.707 (ours: S = 1); its peaks are Orfanidis peaking
filters whose bandwidth is set at the half-gain (dB) points, like RBJ's, but which keep an
analogue-like gain at Nyquist where a bilinear RBJ peak returns to 0 dB.

=====================  =====================  ===========================================
mixstyle               ZamEQ2 / ZamCompX2     mapping
=====================  =====================  ===========================================
input_gain_db          A and B ``master``     half each (each instance allows +-12 dB)
low/high shelf         A and B ``boostl/fl``  two S=0.707 shelves of half the gain at the same
                       ``boosth/fh``          corner; worst error 0.91 dB at +-18 dB
peak1, peak2           A ``boost1/f1/bw1``,   same centre and gain; ``bw`` chosen so that the
                       A ``boost2/f2/bw2``    half-gain edges match ours (exact to 0.1 dB for
peak3                  B ``boost1/f1/bw1``    narrow or low bands; see "refit" below)
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
hpf, lpf               (none)                 not representable: use the DAW's filters
output_gain_db, pan    (none)                 the DAW's fader and pan
master gain_db,        (none)                 not representable: set in the DAW (gain before
limiter, target_lufs                          its limiter)
=====================  =====================  ===========================================

Refit: wide peaks high up deviate (up to 4.7 dB for a Q 0.3, 18 dB band at 44.1 kHz) because
ZamEQ2's peaks keep their gain at Nyquist. When the modelled curve of the direct mapping is off
by more than 0.2 dB, all bands of A and B, plus B's free second peak, are refitted (reweighted
least squares on the dB curve) to our EQ curve; the result is kept if it is better. Measured
(tests): within 0.7 dB of ``dsp.eq.eq_curve_db`` over 20 Hz..20 kHz at 44.1/48/96 kHz for
settings inside ZamEQ2's ranges, including +-18 dB shelves and Q 0.3 bands at 6-12 kHz. Over 40
random settings at 44.1 kHz (every band active, anywhere in the table): 90 % within 0.93 dB,
worst 2.5 dB at 20 kHz (a +15 dB, Q 0.5 peak at 14 kHz: our bilinear peak must fall back to
0 dB at Nyquist, ZamEQ2's cannot follow). The README of each export states its modelled error.
Frequencies outside ZamEQ2's 20..14000 Hz are clamped (noted). Bandwidths depend slightly on the
sample rate for high bands, so presets are made for one ``sample_rate_hz``.

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
from typing import Any, Mapping, Sequence

import numpy as np
from scipy.optimize import least_squares

from dsp.eq import eq_curve_db
from dsp.errors import ExportError
from dsp.params import MASTER, TRACK, ConsoleSetting, spec, validate
from dsp.validate import check_sample_rate
from mixstyle.export.safe_zip import safe_file_stem, write_bytes_atomic

ZAMEQ2_CLASS_ID = "2046504473616C633251455A00000000"
ZAMCOMPX2_CLASS_ID = "2046504473616C633250435A00000000"
ZAM_FREQ_MIN_HZ, ZAM_FREQ_MAX_HZ = 20.0, 14000.0
ZAM_BW_MIN, ZAM_BW_MAX = 0.1, 6.0
ZAM_ATTACK_MAX_MS, ZAM_RELEASE_MAX_MS = 100.0, 500.0
EQ_ORDER = ("boost1", "bw1", "f1", "boost2", "bw2", "f2", "boostl", "fl", "boosth", "fh",
            "master", "peaks")
COMP_ORDER = ("att", "rel", "kn", "rat", "thr", "mak", "slew", "stereodet", "sidechain")
_EQ_FLAT = {"boost1": 0.0, "bw1": 1.0, "f1": 500.0, "boost2": 0.0, "bw2": 1.0, "f2": 3000.0,
            "boostl": 0.0, "fl": 250.0, "boosth": 0.0, "fh": 8000.0, "master": 0.0, "peaks": 0.0}


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


# ------------------------------------------------------------------------------- mapping


def _zam_qq(bw: float) -> float:
    """ZamEQ2's internal Q of its 'Bandwidth' knob (its source: 2^(1/bw) / (2^bw - 1))."""
    return 2.0 ** (1.0 / bw) / (2.0 ** bw - 1.0)


def zam_bandwidth(freq_hz: float, q: float, sample_rate_hz: float) -> float:
    """ZamEQ2 'Bandwidth' giving the half-gain edges of our RBJ peak (freq_hz, q).

    The RBJ peak's half-gain edges are the analogue edges (+-1/Q + sqrt(1/Q^2 + 4)) / 2,
    prewarped; ZamEQ2 takes ``(f/fs) / qq`` as the edge distance in radians. Clamped to the
    knob's 0.1 .. 6.
    """
    k = math.tan(math.pi * freq_hz / sample_rate_hz)
    upper = (1.0 / q + math.sqrt(1.0 / q ** 2 + 4.0)) / 2.0
    width_rad = 2.0 * math.atan(k * upper) - 2.0 * math.atan(k / upper)
    target = (freq_hz / sample_rate_hz) / width_rad
    lo, hi = ZAM_BW_MIN, ZAM_BW_MAX  # _zam_qq decreases with bw
    if target >= _zam_qq(lo):
        return lo
    if target <= _zam_qq(hi):
        return hi
    for _ in range(80):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if _zam_qq(mid) > target else (lo, mid)
    return 0.5 * (lo + hi)


# ---------------------------------------------------- ZamEQ2 4.1 filter model and refinement

ZAM_SHELF_SLOPE = 0.707
_FIT_KEYS = ("fl", "boostl", "fh", "boosth", "f1", "boost1", "bw1", "f2", "boost2", "bw2")
_FIT_TOL_DB = 0.2


def _shelf_ba(high: bool, f: float, g: float, sr: float) -> tuple[tuple[float, ...], ...]:
    """RBJ shelf with ZamEQ2's slope S = 0.707 (a0 not normalised)."""
    a = 10.0 ** (g / 40.0)
    w = 2.0 * math.pi * f / sr
    c, sg = math.cos(w), (1.0 if high else -1.0)
    k = 2.0 * math.sqrt(a) * math.sin(w) / 2.0 * math.sqrt(
        (a + 1.0 / a) * (1.0 / ZAM_SHELF_SLOPE - 1.0) + 2.0)
    m = (a - 1.0) * c
    b = (a * (a + 1.0 + sg * m + k), -2.0 * sg * a * (a - 1.0 + sg * (a + 1.0) * c),
         a * (a + 1.0 + sg * m - k))
    den = (a + 1.0 - sg * m + k, 2.0 * sg * (a - 1.0 - sg * (a + 1.0) * c), a + 1.0 - sg * m - k)
    return b, den


def _peak_ba(f: float, g: float, bw: float, sr: float) -> tuple[tuple[float, ...], ...]:
    """Orfanidis peaking EQ (reference gain 1, band edges at the half-dB gain) as in ZamEQ2."""
    gl = 10.0 ** (g / 20.0)
    gb2, g2 = gl, gl * gl  # bandwidth gain^2 = G (half the dB gain)
    w0, dw = 2.0 * math.pi * f / sr, (f / sr) / _zam_qq(bw)
    ff, g00, f00 = abs(g2 - gb2), abs(g2 - 1.0), abs(gb2 - 1.0)
    pi2 = (w0 * w0 - math.pi ** 2) ** 2
    g1 = math.sqrt((pi2 + g2 * f00 * math.pi ** 2 * dw * dw / ff)
                   / (pi2 + f00 * math.pi ** 2 * dw * dw / ff))
    g01, g11 = abs(g2 - g1), abs(g2 - g1 * g1)
    f01, f11 = abs(gb2 - g1), abs(gb2 - g1 * g1)
    w2 = math.sqrt(g11 / g00) * math.tan(w0 / 2.0) ** 2
    dww = (1.0 + math.sqrt(f00 / f11) * w2) * math.tan(dw / 2.0)
    cc = f11 * dww * dww - 2.0 * w2 * (f01 - math.sqrt(f00 * f11))
    dd = 2.0 * w2 * (g01 - math.sqrt(g00 * g11))
    aa, bb = math.sqrt((cc + dd) / ff), math.sqrt((g2 * cc + gb2 * dd) / ff)
    return (g1 + w2 + bb, -2.0 * (g1 - w2), g1 - bb + w2), (1.0 + w2 + aa, -2.0 * (1.0 - w2),
                                                            1.0 + w2 - aa)


def _mag2(c: tuple[float, ...], cos1: np.ndarray, cos2: np.ndarray) -> np.ndarray:
    return (c[0] ** 2 + c[1] ** 2 + c[2] ** 2 + 2.0 * (c[0] * c[1] + c[1] * c[2]) * cos1
            + 2.0 * c[0] * c[2] * cos2)


def zam_eq2_curve_db(instances: Sequence[Mapping[str, float]], freqs_hz: np.ndarray,
                     sample_rate_hz: float) -> np.ndarray:
    """Modelled magnitude (dB) of chained ZamEQ2 4.1 instances with these parameter values."""
    w = 2.0 * np.pi * np.asarray(freqs_hz, dtype=np.float64) / sample_rate_hz
    cos1, cos2 = np.cos(w), np.cos(2.0 * w)
    out = np.zeros_like(w)
    for v in instances:
        filters = [_shelf_ba(False, v["fl"], v["boostl"], sample_rate_hz) if v["boostl"] else None,
                   _shelf_ba(True, v["fh"], v["boosth"], sample_rate_hz) if v["boosth"] else None]
        for s in ("1", "2"):
            if v[f"boost{s}"]:
                filters.append(_peak_ba(v[f"f{s}"], v[f"boost{s}"], v[f"bw{s}"], sample_rate_hz))
        for ba in filters:
            if ba is not None:
                out += 10.0 * np.log10(_mag2(ba[0], cos1, cos2) / _mag2(ba[1], cos1, cos2))
        out += v["master"]
    return out


def _refine(a: dict[str, float], b: dict[str, float], target_db: np.ndarray,
            freqs: np.ndarray, sr: float) -> float:
    """Fit both instances' bands (in place) to ``target_db``; returns the max error in dB.

    Starts from the analytic mapping and uses B's free peak as a corrector; a few reweighted
    least-squares rounds approach the minimax fit. Kept only if it beats the start.
    """
    insts = (a, b)
    fmax = min(ZAM_FREQ_MAX_HZ, 0.45 * sr)

    def err(x: np.ndarray) -> np.ndarray:
        trial = [dict(v) for v in insts]
        for i, (inst, key) in enumerate((i, k) for i in range(2) for k in _FIT_KEYS):
            trial[inst][key] = float(np.exp(x[i]) if key[0] == "f" else x[i])
        return zam_eq2_curve_db(trial, freqs, sr) - target_db

    start = float(np.abs(zam_eq2_curve_db(insts, freqs, sr) - target_db).max())
    if start <= _FIT_TOL_DB:
        return start
    spare = dict(b, boost2=0.01, f2=0.5 * fmax, bw2=2.0)  # B's free peak, nearly flat
    x0, lo, hi = [], [], []
    for v in (a, spare):
        for key in _FIT_KEYS:
            if key[0] == "f":
                x0.append(math.log(v[key]))
                lo.append(math.log(ZAM_FREQ_MIN_HZ))
                hi.append(math.log(fmax))
            else:
                x0.append(v[key])
                lo.append(ZAM_BW_MIN if key.startswith("bw") else -50.0)
                hi.append(ZAM_BW_MAX if key.startswith("bw") else 20.0)
    x = np.clip(np.array(x0), np.array(lo) + 1e-9, np.array(hi) - 1e-9)
    weight = np.ones_like(freqs)
    for _ in range(3):
        x = least_squares(lambda y: err(y) * weight, x, bounds=(lo, hi), x_scale="jac",
                          max_nfev=150).x
        e = np.abs(err(x))
        weight = 1.0 + 4.0 * (e / max(float(e.max()), 1e-9)) ** 2
    best = float(np.abs(err(x)).max())
    if best >= start:
        return float(start)
    for i, (inst, key) in enumerate((i, k) for i in range(2) for k in _FIT_KEYS):
        insts[inst][key] = float(np.exp(x[i]) if key[0] == "f" else x[i])
    return best


def _freq(value: float, what: str, notes: list[str], sample_rate_hz: float) -> float:
    f = min(max(value, ZAM_FREQ_MIN_HZ), ZAM_FREQ_MAX_HZ, 0.45 * sample_rate_hz)
    if f != value:
        notes.append(f"{what} {value:g} Hz clamped to {f:g} Hz (ZamEQ2 allows "
                     f"{ZAM_FREQ_MIN_HZ:g} .. {ZAM_FREQ_MAX_HZ:g} Hz, below 0.45 * fs)")
    return f


def zam_eq2_values(section: str, params: Mapping[str, Any], sample_rate_hz: float,
                   where: str = "") -> tuple[dict[str, float], dict[str, float], list[str]]:
    """Parameter values of ZamEQ2 instances A and B for one strip, and notes."""
    p = validate(section, params, where)
    sr = check_sample_rate(sample_rate_hz)
    notes: list[str] = []
    a, b = dict(_EQ_FLAT), dict(_EQ_FLAT)
    for inst in (a, b):  # each shelf = two S=0.707 shelves of half the gain
        inst["boostl"], inst["boosth"] = p["low_shelf_gain_db"] / 2, p["high_shelf_gain_db"] / 2
        inst["fl"] = _freq(p["low_shelf_freq_hz"], "low shelf", notes if inst is a else [], sr)
        inst["fh"] = _freq(p["high_shelf_freq_hz"], "high shelf", notes if inst is a else [], sr)
        if section == TRACK:
            inst["master"] = p["input_gain_db"] / 2
    for inst, slot, band in ((a, "1", "peak1"), (a, "2", "peak2"), (b, "1", "peak3")):
        f = _freq(p[f"{band}_freq_hz"], band, notes, sr)
        inst[f"boost{slot}"] = p[f"{band}_gain_db"]
        inst[f"f{slot}"] = f
        inst[f"bw{slot}"] = zam_bandwidth(f, p[f"{band}_q"], sr)
    flat_ends = {} if section == MASTER else {"hpf_freq_hz": spec(TRACK, "hpf_freq_hz").min,
                                              "lpf_freq_hz": spec(TRACK, "lpf_freq_hz").max}
    freqs = np.geomspace(20.0, min(20000.0, 0.49 * sr), 120)
    target = eq_curve_db(section, {**p, **flat_ends}, freqs, sr) + (a["master"] + b["master"])
    worst = _refine(a, b, target, freqs, sr)
    notes.append(f"EQ curve within {worst:.2f} dB of mixstyle's over 20 Hz .. "
                 f"{freqs[-1] / 1000:.3g} kHz (modelled)")
    if section == TRACK:
        if p["hpf_freq_hz"] > spec(TRACK, "hpf_freq_hz").min:
            notes.append(f"high-pass {p['hpf_freq_hz']:g} Hz (Q {p['hpf_q']:g}) not "
                         f"representable: use the DAW's high-pass")
        if p["lpf_freq_hz"] < spec(TRACK, "lpf_freq_hz").max:
            notes.append(f"low-pass {p['lpf_freq_hz']:g} Hz (Q {p['lpf_q']:g}) not "
                         f"representable: use the DAW's low-pass")
    return a, b, notes


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
    plugin: str  # "ZamEQ2" or "ZamCompX2"
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
    names = [f"{i + 1:02d}-{safe_file_stem(t.name)}" for i, t in enumerate(setting.tracks)]
    names.append("master")
    return [out / f"{n}.{kind}.vstpreset" for n in names
            for kind in ("ZamEQ2-A", "ZamEQ2-B", "ZamCompX2")] + [out / "README.txt"]


def export_vstpresets(setting: ConsoleSetting, out_dir: str | os.PathLike[str],
                      sample_rate_hz: float = 48000.0) -> PresetExport:
    """Write three presets per strip (EQ A, EQ B, compressor) and a README into ``out_dir``."""
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
    for name, section, params in strips:
        where = "master" if section == MASTER else f"track {name!r}"
        eq_a, eq_b, eq_notes = zam_eq2_values(section, params, sr, where)
        comp, comp_notes = zam_compx2_values(params, section, where)
        p = validate(section, params, where)
        extra = []
        if section == TRACK and (p["output_gain_db"] != 0 or p["pan"] != 0):
            extra.append(f"fader {p['output_gain_db']:g} dB and pan {p['pan']:+g} (-1..1, "
                         f"constant power): set in the DAW")
        if section == MASTER:
            target = "none" if p["target_lufs"] is None else f"{p['target_lufs']:g} LUFS"
            extra.append(f"gain {p['gain_db']:g} dB into a limiter (ceiling "
                         f"{p['limiter_ceiling_db']:g} dBFS, release {p['limiter_release_ms']:g}"
                         f" ms, lookahead {p['limiter_lookahead_ms']:g} ms), loudness target "
                         f"{target}: not representable, use the DAW's limiter")
        notes += [f"{name}: {n}" for n in eq_notes + comp_notes + extra]
        for plugin, cid, values, order in (("ZamEQ2", ZAMEQ2_CLASS_ID, eq_a, EQ_ORDER),
                                           ("ZamEQ2", ZAMEQ2_CLASS_ID, eq_b, EQ_ORDER),
                                           ("ZamCompX2", ZAMCOMPX2_CLASS_ID, comp, COMP_ORDER)):
            path = next(paths)
            write_bytes_atomic(path, vstpreset_bytes(cid, dpf_state(values, order)))
            files.append(PresetFile(name, plugin, path, values))
    readme = next(paths)
    text = ["mixstyle -> zam-plugins presets, made for %g Hz" % sr, "",
            "Chain per track: ZamEQ2-A -> ZamEQ2-B -> ZamCompX2 (ZamEQ2 is mono: one per "
            "channel), then the DAW's fader and pan. Master: the same chain, then a limiter.",
            "", "Approximations and settings left to the DAW:"]
    text += [f"- {n}" for n in notes] or ["- none"]
    write_bytes_atomic(readme, ("\n".join(text) + "\n").encode("utf-8"))
    return PresetExport(tuple(files), tuple(notes), readme)
