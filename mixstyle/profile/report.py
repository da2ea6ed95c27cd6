"""``mixstyle report PROFILE --out DIR``: what a profile learned, as pictures a producer reads.

``report_data(profile)`` collects the numbers (from the song records' recovered settings, the
model card and an optional ``master.json``); ``write_report(profile, out)`` draws them as PNGs
and writes one self-contained ``index.html`` with relative image links. Every file is written
atomically inside ``out`` and nothing else is touched. The network itself is only checked to
load: a report shows the settings recovered from the producer's mixes, which is what it learns.

Track level ("balance") is the fader level of each track relative to the song's loudest one:
the stem's own loudness + input trim + fader + make-up (EQ and compression not included). The
implied gain reduction is the compressor's static curve at the stem's staged peak level.
"""

from __future__ import annotations

import html
import io
import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from dsp.compressor import Compressor
from dsp.files import write_bytes_atomic
from dsp.eq import eq_curve_db, log_freqs
from dsp.params import MASTER, MASTER_NAMES, TRACK, setting_from_dict, spec, validate
from mixstyle.io.audio import write_text_atomic
from mixstyle.train.records import load_records
from mixstyle.errors import ParameterError, ProfileError
from mixstyle.train.features import FEATURE_NAMES
from mixstyle.sessions.roles import ROLES

REPORT_SAMPLE_RATE_HZ = 48000.0   # the curves are drawn as the console would run at 48 kHz
N_FREQS = 200
COMPRESSING_RATIO = 1.05          # below this a track compressor counts as off
CAPTIONS = {  # image -> (section title, caption), in page order
    "eq_curves.png": ("EQ curves", "Whole strip EQ (high-pass, shelves, peaks, low-pass) of "
                      "every track, drawn at 48 kHz; line = median per role."),
    "compressor.png": ("Compressors", "Threshold/ratio and attack/release of the tracks that "
                       "compress; static-curve gain reduction at each stem's staged peak."),
    "balance.png": ("Track balance", "Level of each track relative to the loudest track of "
                    "its song."),
    "pan.png": ("Pan", "Pan position of every track on the left-right axis."),
    "loudness.png": ("Loudness", "Master loudness target and limiter ceiling per song."),
    "fit_quality.png": ("Training songs and fit quality", "How well each recovered console "
                        "reproduces the producer's mix."),
}
IMAGES = tuple(CAPTIONS)
TYPICAL_PARAMS = ("hpf_freq_hz", "low_shelf_gain_db", "peak1_freq_hz", "peak1_gain_db",
                  "peak2_freq_hz", "peak2_gain_db", "peak3_freq_hz", "peak3_gain_db",
                  "high_shelf_gain_db", "lpf_freq_hz", "comp_threshold_db", "comp_ratio",
                  "comp_attack_ms", "comp_release_ms", "output_gain_db", "pan")
_LOUD = FEATURE_NAMES.index("loudness_lufs")
_PEAK = FEATURE_NAMES.index("peak_db")


def _read_json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ProfileError(f"{what} {path}: unreadable ({e})") from None


def _read_master(path: Path) -> dict[str, Any] | None:
    """The producer's typical master (``master.json``): master-bus parameters by table name,
    either at the top level or under ``"master"``."""
    if not path.is_file():
        return None
    data = _read_json(path, "master file")
    if isinstance(data, dict) and isinstance(data.get("master"), dict):
        data = data["master"]
    if not isinstance(data, dict):
        raise ProfileError(f"master file {path}: expected a JSON object of master parameters")
    values = {k: v for k, v in data.items() if k in MASTER_NAMES}
    if not values:
        raise ProfileError(f"master file {path}: no master parameters (known: "
                           f"{', '.join(MASTER_NAMES)})")
    try:
        return validate(MASTER, values, f"master file {path}")
    except ParameterError as e:
        raise ProfileError(str(e)) from None


def _card_files(card: dict[str, Any] | None, records: list) -> list[dict[str, Any]]:
    if card is not None:
        try:
            return [{"song": str(s["song"]), "path": str(f["path"]), "sha256": str(f["sha256"]),
                     "seconds": f.get("seconds")} for s in card["trained_on"] for f in s["files"]]
        except (KeyError, TypeError) as e:
            raise ProfileError(f"model card: bad 'trained_on' list ({e})") from None
    return [{"song": r.song, "path": f.path, "sha256": f.sha256, "seconds": f.seconds}
            for r in records for f in r.files]


def _gain_reduction_db(params: dict[str, float], peak_db: float) -> float:
    comp = Compressor(threshold_db=params["comp_threshold_db"], ratio=params["comp_ratio"],
                      knee_db=params["comp_knee_db"])
    x = peak_db + params["input_gain_db"]
    return float(x - comp.static_curve_db(np.array([x]))[0])


def _number(v: Any) -> float:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else math.nan


def _song_rows(rec: Any, where: str, freqs: np.ndarray) -> tuple[dict, list[dict]]:
    """One song's summary row and its tracks' rows (level, gain reduction, EQ curve)."""
    setting = setting_from_dict(rec.setting, where)   # validated once already by load_records
    if len(setting.tracks) != len(rec.features) or any(
            len(f) != len(FEATURE_NAMES) for f in rec.features):
        raise ProfileError(f"{where}: {len(setting.tracks)} track settings but feature rows "
                           f"of shape {[len(f) for f in rec.features]}; expected "
                           f"{len(FEATURE_NAMES)} features per track")
    # the measured loudness in the mix where the record has it, else an estimate from the
    # stem's loudness and the gains
    levels = [rec.levels_lu[j] if j < len(rec.levels_lu) and rec.levels_lu[j] is not None
              else f[_LOUD] + t.params["input_gain_db"] + t.params["output_gain_db"]
              + t.params["comp_makeup_db"]
              for j, (t, f) in enumerate(zip(setting.tracks, rec.features))]
    tracks = [{"song": rec.song, "track": t.name, "params": t.params,
               "role": t.role if t.role in ROLES else "other",
               "level_rel_db": level - max(levels),
               "gain_reduction_db": _gain_reduction_db(t.params, f[_PEAK]),
               "eq_db": eq_curve_db(TRACK, t.params, freqs, REPORT_SAMPLE_RATE_HZ)}
              for t, f, level in zip(setting.tracks, rec.features, levels)]
    song = {"song": rec.song, "tracks": len(setting.tracks),
            "error_db": _number(rec.quality.get("error_db")),
            "band_error_db": _number(rec.quality.get("band_error_db")),
            "target_lufs": setting.master["target_lufs"],
            "limiter_ceiling_db": setting.master["limiter_ceiling_db"]}
    return song, tracks


def _role_summary(mine: list[dict[str, Any]]) -> dict[str, Any]:
    """Per-role arrays (one entry per track) and the EQ median / quartile curves."""
    curves = np.stack([t["eq_db"] for t in mine])
    entry: dict[str, Any] = {
        "n": len(mine), "eq_median_db": np.percentile(curves, 50, axis=0),
        "eq_p25_db": np.percentile(curves, 25, axis=0),
        "eq_p75_db": np.percentile(curves, 75, axis=0),
        "level_rel_db": np.array([t["level_rel_db"] for t in mine]),
        "gain_reduction_db": np.array([t["gain_reduction_db"] for t in mine]),
        "compressing": np.array([t["params"]["comp_ratio"] > COMPRESSING_RATIO for t in mine])}
    for name in ("comp_threshold_db", "comp_ratio", "comp_attack_ms", "comp_release_ms", "pan"):
        entry[name] = np.array([t["params"][name] for t in mine])
    entry["typical"] = {n: float(np.median([t["params"][n] for t in mine]))
                        for n in TYPICAL_PARAMS}
    return entry


def report_data(profile_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """Every number the report draws, from the profile folder (ProfileError if unusable)."""
    from mixstyle.profile.store import load_profile
    folder = Path(profile_dir)
    if not folder.is_dir():
        raise ProfileError(f"profile {folder}: no such folder")
    profile = load_profile(folder)
    records = load_records(folder / "songs")
    if not records:
        raise ProfileError(f"profile {folder}: no training songs in {folder / 'songs'} "
                           f"(re-run 'mixstyle learn')")
    card_path = folder / "model_card.json"
    card = _read_json(card_path, "model card") if card_path.is_file() else None
    if card is not None and not isinstance(card, dict):
        raise ProfileError(f"model card {card_path}: expected a JSON object")
    freqs = log_freqs(N_FREQS)
    songs, tracks = [], []
    for rec in records:
        song, rows = _song_rows(rec, f"song record {folder / 'songs' / rec.song}.json", freqs)
        songs.append(song)
        tracks += rows
    roles = [r for r in ROLES if any(t["role"] == r for t in tracks)]
    by_role = {r: _role_summary([t for t in tracks if t["role"] == r]) for r in roles}
    master = _read_master(folder / "master.json")
    return {
        "profile": {"folder": str(folder), "created": profile.meta.get("created", "?"),
                    "model_parameters": (card or {}).get("model_parameters"),
                    "held_out_songs": (card or {}).get("held_out_songs", []),
                    "held_out_score": (card or {}).get("held_out_score")},
        "sample_rate_hz": REPORT_SAMPLE_RATE_HZ, "freqs_hz": freqs, "roles": roles,
        "tracks": tracks, "by_role": by_role, "songs": songs,
        "files": _card_files(card, records), "images": IMAGES,
        "master": None if master is None else {
            "params": master,
            "eq_db": eq_curve_db(MASTER, master, freqs, REPORT_SAMPLE_RATE_HZ)},
    }


def _colour(role: str) -> tuple[float, float, float, float]:
    """Strong colours first (tab20's even entries), the pale ones only past ten roles."""
    from matplotlib import colormaps
    i = ROLES.index(role)
    return colormaps["tab20"]((2 * i) % 20 + (2 * i) // 20)


def _figure(width_in: float, height_in: float) -> Figure:
    fig = Figure(figsize=(width_in, height_in), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def _freq_axis(ax: Any) -> None:
    ax.set_xscale("log")
    ax.set_xlim(20, 20000)
    ax.set_xticks([20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000],
                  ["20", "50", "100", "200", "500", "1k", "2k", "5k", "10k", "20k"])
    ax.grid(True, which="major", alpha=0.3)
    ax.axhline(0.0, color="0.5", lw=0.8)


def _eq_figure(d: dict[str, Any]) -> bytes:
    panels = [(r, d["by_role"][r]) for r in d["roles"]]
    extra = 1 if d["master"] is not None else 0
    cols = 3 if len(panels) + extra <= 6 else 4
    rows = math.ceil((len(panels) + extra) / cols)
    fig = _figure(4.0 * cols, 2.8 * rows + 0.5)
    axes = np.atleast_1d(fig.subplots(rows, cols, sharey=True)).ravel()
    top = max([6.0] + [float(np.max(e["eq_p75_db"])) + 3.0 for _, e in panels])
    bottom = min([-6.0] + [float(np.min(e["eq_p25_db"])) - 3.0 for _, e in panels])
    top, bottom = min(24.0, math.ceil(top / 3) * 3), max(-24.0, math.floor(bottom / 3) * 3)
    f = d["freqs_hz"]
    for ax, (role, e) in zip(axes, panels):
        c = _colour(role)
        ax.fill_between(f, e["eq_p25_db"], e["eq_p75_db"], color=c, alpha=0.3, lw=0,
                        label="25-75 %")
        ax.plot(f, e["eq_median_db"], color=c, lw=2.0, label="median")
        ax.set_title(f"{role} ({e['n']} track{'s' if e['n'] != 1 else ''})")
        _freq_axis(ax)
    if extra:
        ax = axes[len(panels)]
        ax.plot(f, d["master"]["eq_db"], color="k", lw=2.0)
        ax.set_title("master (master.json)")
        _freq_axis(ax)
    for ax in axes[len(panels) + extra:]:
        ax.set_visible(False)
    axes[0].set_ylim(bottom, top)
    axes[0].legend(loc="lower left", fontsize=8)
    for ax in axes[::cols]:
        ax.set_ylabel("EQ gain (dB)")
    fig.suptitle("EQ per role: median of the training songs, shaded 25-75 % (Hz)")
    return _png(fig)


def _box_by_role(ax: Any, d: dict[str, Any], key: str) -> None:
    """Horizontal box per role (quartiles, whiskers 1.5 IQR) with every track as a dot."""
    roles = d["roles"]
    parts = ax.boxplot([d["by_role"][r][key] for r in roles], orientation="horizontal",
                       patch_artist=True, widths=0.6, showfliers=False,
                       medianprops={"color": "k", "lw": 2})
    rng = np.random.default_rng(0)
    for i, (patch, r) in enumerate(zip(parts["boxes"], roles)):
        patch.set_facecolor((*_colour(r)[:3], 0.45))
        v = d["by_role"][r][key]
        ax.scatter(v, i + 1 + rng.uniform(-0.12, 0.12, v.size), color=_colour(r), s=18,
                   edgecolors="k", linewidths=0.3, zorder=3)
    ax.set_yticks(range(1, len(roles) + 1), roles)
    ax.invert_yaxis()
    ax.grid(True, axis="x", alpha=0.3)


def _plain_log_axis(axis: Any, ticks: list[float]) -> None:
    from matplotlib.ticker import FixedLocator, NullFormatter
    axis.set_major_locator(FixedLocator(ticks))
    axis.set_major_formatter(lambda v, _: f"{v:g}")
    axis.set_minor_formatter(NullFormatter())


def _compressor_figure(d: dict[str, Any]) -> bytes:
    fig = _figure(14.0, 4.8)
    a1, a2, a3 = fig.subplots(1, 3)
    for r in d["roles"]:
        e = d["by_role"][r]
        on = e["compressing"]
        if on.any():
            a1.scatter(e["comp_threshold_db"][on], e["comp_ratio"][on], color=_colour(r),
                       label=r, s=36, edgecolors="k", linewidths=0.4)
            a2.scatter(e["comp_attack_ms"][on], e["comp_release_ms"][on], color=_colour(r),
                       s=36, edgecolors="k", linewidths=0.4)
    a1.set(xlabel="threshold (dBFS)", ylabel="ratio (:1)", yscale="log",
           title=f"compressing tracks (ratio > {COMPRESSING_RATIO:g})")
    r, a, rel = (spec(TRACK, n) for n in ("comp_ratio", "comp_attack_ms", "comp_release_ms"))
    a1.set_xlim(spec(TRACK, "comp_threshold_db").min, 0)
    a1.set_ylim(r.min, r.max)
    _plain_log_axis(a1.yaxis, [1, 1.5, 2, 3, 4, 6, 10, 20])
    a2.set(xlabel="attack (ms)", ylabel="release (ms)", xscale="log", yscale="log",
           title="timing of compressing tracks", xlim=(a.min, a.max), ylim=(rel.min, rel.max))
    _plain_log_axis(a2.xaxis, [0.1, 0.3, 1, 3, 10, 30, 100, 200])
    _plain_log_axis(a2.yaxis, [5, 10, 20, 50, 100, 200, 500, 1000, 2000])
    for ax in (a1, a2):
        ax.grid(True, alpha=0.3)
    if a1.get_legend_handles_labels()[0]:
        a1.legend(fontsize=8)
    _box_by_role(a3, d, "gain_reduction_db")
    a3.set(xlabel="gain reduction at the stem's peaks (dB)", title="implied gain reduction")
    return _png(fig)


def _balance_figure(d: dict[str, Any]) -> bytes:
    fig = _figure(9.0, max(3.0, 1.5 + 0.4 * len(d["roles"])))
    ax = fig.subplots()
    _box_by_role(ax, d, "level_rel_db")
    ax.set(xlabel="level relative to the song's loudest track (dB)",
           title="track balance per role (fader + trim + make-up)")
    return _png(fig)


def _pan_figure(d: dict[str, Any]) -> bytes:
    roles = d["roles"]
    fig = _figure(9.0, max(3.0, 1.5 + 0.4 * len(roles)))
    ax = fig.subplots()
    rng = np.random.default_rng(0)
    for i, r in enumerate(roles):
        pans = d["by_role"][r]["pan"]
        ax.scatter(pans, i + rng.uniform(-0.15, 0.15, pans.size), color=_colour(r), s=30,
                   edgecolors="k", linewidths=0.4, zorder=3)
        ax.plot([np.median(pans)] * 2, [i - 0.3, i + 0.3], color="k", lw=2, zorder=2)
    ax.set_yticks(range(len(roles)), roles)
    ax.invert_yaxis()
    ax.set_xlim(-1.05, 1.05)
    ax.set_xticks([-1, -0.5, 0, 0.5, 1], ["L", "-0.5", "C", "+0.5", "R"])
    ax.axvline(0, color="0.5", lw=0.8, zorder=0)
    ax.grid(True, axis="x", alpha=0.3)
    ax.set(xlabel="pan (bar = median)", title="pan per role")
    return _png(fig)


def _loudness_figure(d: dict[str, Any]) -> bytes:
    fig = _figure(11.0, 4.2)
    a1, a2 = fig.subplots(1, 2)
    targets = [s["target_lufs"] for s in d["songs"] if s["target_lufs"] is not None]
    ceilings = [s["limiter_ceiling_db"] for s in d["songs"]]
    master = d["master"]["params"] if d["master"] else None
    if targets:
        a1.hist(targets, bins=np.arange(math.floor(min(targets)) - 1.5,
                                        math.ceil(max(targets)) + 2.0, 1.0),
                color="tab:blue", edgecolor="k")
    else:
        a1.text(0.5, 0.5, "no loudness targets in the records", ha="center",
                transform=a1.transAxes)
    a1.set(xlabel="target loudness (LUFS)", ylabel="songs", title="loudness target per song")
    a2.hist(ceilings, bins=np.arange(-12.25, 0.5, 0.5), color="tab:orange", edgecolor="k")
    a2.set(xlabel="limiter ceiling (dBFS)", ylabel="songs", title="limiter ceiling per song")
    if master is not None:
        if master["target_lufs"] is not None:
            a1.axvline(master["target_lufs"], color="k", ls="--", label="master.json")
            a1.legend(fontsize=8)
        a2.axvline(master["limiter_ceiling_db"], color="k", ls="--", label="master.json")
        a2.legend(fontsize=8)
    from matplotlib.ticker import MaxNLocator
    for ax in (a1, a2):
        ax.grid(True, alpha=0.3)
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    return _png(fig)


def _fit_figure(d: dict[str, Any]) -> bytes:
    songs = d["songs"]
    fig = _figure(11.0, max(3.0, 2.0 + 0.4 * len(songs)))
    a1, a2 = fig.subplots(1, 2, sharey=True)
    y = np.arange(len(songs))
    for ax, key, colour in ((a1, "error_db", "tab:red"), (a2, "band_error_db", "tab:purple")):
        bars = ax.barh(y, [s[key] for s in songs], color=colour)
        ax.bar_label(bars, fmt="%.2f", padding=3, fontsize=8)
        ax.margins(x=0.15)
    a1.set_yticks(y, [s["song"] for s in songs])
    a1.invert_yaxis()
    a1.set(xlabel="fit error re the mix (dB, lower is better)", title="waveform fit error")
    a2.set(xlabel="mean band level error (dB)", title="band error")
    for ax in (a1, a2):
        ax.grid(True, axis="x", alpha=0.3)
    return _png(fig)


def _fmt(v: Any) -> str:
    if v is None:
        return "–"
    if isinstance(v, (float, np.floating)):
        return "–" if not math.isfinite(v) else f"{v:.{1 if abs(v) >= 100 else 2}f}"
    return str(v)


def _table(head: list[str], rows: list[list[Any]]) -> str:
    th = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(_fmt(c))}</td>" for c in r) + "</tr>"
                   for r in rows)
    return f"<table><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>"


_CSS = ("body{font-family:sans-serif;max-width:1400px;margin:2em auto;padding:0 1em;"
        "color:#222}img{max-width:100%;border:1px solid #ddd}table{border-collapse:collapse;"
        "margin:1em 0;font-size:0.9em}td,th{border:1px solid #ccc;padding:3px 8px;"
        "text-align:left}th{background:#f0f0f0}code{font-size:0.85em}")


def _html(d: dict[str, Any]) -> str:
    p, esc = d["profile"], html.escape
    n_tracks = len(d["tracks"])
    parts = [f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
             f"<title>mixstyle profile report</title><style>{_CSS}</style></head><body>",
             f"<h1>What the profile learned</h1><p>Profile <code>{esc(p['folder'])}</code>, "
             f"created {esc(str(p['created']))}: {len(d['songs'])} training songs, {n_tracks} "
             f"tracks, {esc(_fmt(p['model_parameters']))} network parameters.</p>",
             "<h2>A typical song</h2><p>Median recovered setting per role (what the network "
             "was trained to give a track of that role).</p>",
             _table(["parameter"] + d["roles"],
                    [["tracks"] + [d["by_role"][r]["n"] for r in d["roles"]]]
                    + [[k] + [d["by_role"][r]["typical"][k] for r in d["roles"]]
                       for k in TYPICAL_PARAMS])]
    for name in d["images"]:
        title, text = CAPTIONS[name]
        parts.append(f"<h2>{esc(title)}</h2><p>{esc(text)}</p>"
                     f"<img src='{esc(name)}' alt='{esc(title)}'>")
        if name == "fit_quality.png":
            parts.append(_table(["song", "tracks", "fit error (dB)", "band error (dB)",
                                 "target (LUFS)", "ceiling (dBFS)"],
                                [[s["song"], s["tracks"], s["error_db"], s["band_error_db"],
                                  s["target_lufs"], s["limiter_ceiling_db"]]
                                 for s in d["songs"]]))
    hs = p["held_out_score"]
    if isinstance(hs, dict) and isinstance(hs.get("learned"), dict):
        parts.append(f"<h2>Held-out score</h2><p>Songs kept out of training: "
                     f"{esc(', '.join(map(str, p['held_out_songs'])))}.</p>")
        parts.append(_table(["metric", "learned", "plain sum"],
                            [[k, v, (hs.get("plain_sum") or {}).get(k)]
                             for k, v in hs["learned"].items()]))
    if d["master"] is not None:
        parts.append("<h2>Typical master (master.json)</h2>")
        parts.append(_table(["parameter", "value"], [[k, v] for k, v in
                                                     d["master"]["params"].items()]))
    parts.append("<h2>Training files</h2>")
    parts.append(_table(["song", "file", "SHA-256", "seconds"],
                        [[f["song"], f["path"], f["sha256"], f["seconds"]] for f in d["files"]]))
    parts.append("</body></html>\n")
    return "\n".join(parts)


def write_report(profile_dir: str | os.PathLike[str], out_dir: str | os.PathLike[str]) -> Path:
    """Draw the report of ``profile_dir`` into ``out_dir`` (created); return its index.html."""
    folder, out = Path(profile_dir), Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ProfileError(f"report folder {out}: exists and is not a folder")
    if folder.is_dir() and out.is_dir() and os.path.samefile(folder, out):
        raise ProfileError(f"report folder {out}: is the profile folder; choose another --out")
    d = report_data(folder)
    out.mkdir(parents=True, exist_ok=True)
    draw = {"eq_curves.png": _eq_figure, "compressor.png": _compressor_figure,
            "balance.png": _balance_figure, "pan.png": _pan_figure,
            "loudness.png": _loudness_figure, "fit_quality.png": _fit_figure}
    for name in IMAGES:
        write_bytes_atomic(out / name, draw[name](d))
    return write_text_atomic(out / "index.html", _html(d))
