"""Mastering in the producer's style: the master profile and the mastering chain.

A profile's ``master.json`` (parameter-table JSON, ``dsp.params`` format, master section) is the
producer's typical master bus, learned from songs that have ``master.<ext>`` next to
``mix.<ext>`` (``fit_master`` per song, then the median over songs in the table's normalised
space; the EQ as the median *curve*, refitted). Without masters it keeps a neutral bus and the
loudness targets of their mixes. ``notes.input_lufs`` is the loudness of the mixes the producer
fed their master bus: new mixes are trimmed to it first, so the glue compressor's threshold
(dBFS) works as it did for them.

``master_audio`` is the chain: input trim -> EQ -> glue compressor (the master bus kernel) ->
gain chosen for the loudness target -> brick-wall limiter. The limiter holds *sample* peaks, so
the true peak is measured (4x oversampled, BS.1770) and, if it is over the ceiling, the limiter
ceiling is lowered by the overshoot and the limiter runs again.

``master_command`` (batch, resumable, local processes or Dask) lives in ``master_batch``.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np

from dsp.errors import AudioInputError, ParameterError, ProfileError
from dsp.limiter import Limiter
from dsp.loudness import integrated_loudness, true_peak_dbtp
from dsp.params import (FORMAT, MASTER, VERSION, ConsoleSetting, denormalise_all, neutral,
                        normalise_all, setting_from_dict, setting_to_dict, spec, validate)
from dsp.strip import ChannelStrip
from dsp.validate import check_audio, check_range, check_sample_rate
from mixstyle.audio_io import write_text_atomic

MASTER_FILE = "master.json"
TOLERANCE_LU = 0.05          # loudness loop stops within this of the target
MAX_LOUDNESS_STEPS = 6
MAX_CEILING_PASSES = 4       # limiter re-runs with a lower ceiling for true peak
EQ_REFERENCE_HZ = 48000.0    # sample rate of the median EQ curve
TP_MARGIN_DB = 0.05          # extra ceiling drop per re-run
_STRIP_NAMES = ("low_shelf_freq_hz", "low_shelf_gain_db", "peak1_freq_hz", "peak1_gain_db",
                "peak1_q", "peak2_freq_hz", "peak2_gain_db", "peak2_q", "peak3_freq_hz",
                "peak3_gain_db", "peak3_q", "high_shelf_freq_hz", "high_shelf_gain_db",
                "comp_threshold_db", "comp_ratio", "comp_attack_ms", "comp_release_ms",
                "comp_knee_db", "comp_makeup_db")


@dataclass(frozen=True)
class MasterProfile:
    """The producer's typical master: ``params`` (validated master section), the loudness of
    the mixes it was fed (``input_lufs``, None = no trim), how many songs and from what."""

    params: dict[str, Any]
    input_lufs: float | None = None
    songs: int = 0
    source: str = "masters"              # "masters", "mixes" or "given"
    song_names: tuple[str, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        object.__setattr__(self, "params", validate(MASTER, self.params, "master profile"))
        if self.input_lufs is not None:
            check_range("master profile input_lufs", self.input_lufs, -70.0, 0.0, "LUFS")

    def to_dict(self) -> dict[str, Any]:
        """The ``master.json`` document (dsp.params JSON, no tracks, plus notes)."""
        tidy = {k: v if v is None else float(f"{v:.9g}") for k, v in self.params.items()}
        doc = setting_to_dict(ConsoleSetting(tracks=(), master=tidy))
        doc["notes"] = {"kind": "master_profile", "source": self.source, "songs": self.songs,
                        "input_lufs": self.input_lufs, "song_names": list(self.song_names)}
        return doc

    @classmethod
    def from_dict(cls, data: Any, where: str = MASTER_FILE) -> "MasterProfile":
        if isinstance(data, MasterProfile):
            return data
        if not isinstance(data, Mapping):
            raise ProfileError(f"{where}: expected a JSON object, got {type(data).__name__}")
        if "format" not in data:  # a bare master section
            try:
                return cls(params=dict(data), source="given")
            except ParameterError as e:
                raise ProfileError(f"{where}: {e}") from None
        try:
            setting = setting_from_dict(data, where)
            notes = data.get("notes") or {}
            if not isinstance(notes, Mapping):
                raise ProfileError(f"{where}: 'notes' must be an object")
            lufs = notes.get("input_lufs")
            return cls(params=setting.master, input_lufs=None if lufs is None else float(lufs),
                       songs=int(notes.get("songs", 0)), source=str(notes.get("source", "given")),
                       song_names=tuple(str(s) for s in notes.get("song_names", ())))
        except (ParameterError, TypeError, ValueError) as e:
            raise ProfileError(f"{where}: {e}") from None


def save_master_profile(profile_dir: str | Path, master: Mapping[str, Any] | MasterProfile
                        ) -> Path:
    """Write ``PROFILE/master.json`` atomically (a document from ``learn_master``, a
    MasterProfile or a bare master section); returns its path."""
    folder = Path(profile_dir)
    folder.mkdir(parents=True, exist_ok=True)
    prof = MasterProfile.from_dict(master, "master profile to save")
    return write_text_atomic(folder / MASTER_FILE, json.dumps(prof.to_dict(), indent=2) + "\n")


def load_master_profile(profile_dir: str | Path) -> MasterProfile:
    """Read and validate ``PROFILE/master.json``; ProfileError names the file if it cannot."""
    path = Path(profile_dir) / MASTER_FILE
    if not Path(profile_dir).is_dir():
        raise ProfileError(f"profile folder '{profile_dir}' does not exist")
    if not path.is_file():
        raise ProfileError(f"profile '{profile_dir}' has no {MASTER_FILE}: learn one with "
                           f"'mixstyle learn SESSIONS --out {profile_dir}' (songs with "
                           f"master.<ext> teach the master bus)")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ProfileError(f"{path}: not readable JSON ({e})") from None
    return MasterProfile.from_dict(data, str(path))


def fit_master(mix: np.ndarray, master: np.ndarray, sample_rate: float) -> dict[str, Any]:
    """Master section that turns ``mix`` into ``master`` (see ``mixstyle.master_fit``)."""
    from mixstyle.master_fit import fit_master as fit
    return fit(mix, master, sample_rate)


def _pairs(items: Iterable[Any], sample_rate: float | None
           ) -> list[tuple[str, np.ndarray, np.ndarray | None, float]]:
    out = []
    for i, it in enumerate(items):
        if hasattr(it, "mix"):
            out.append((str(getattr(it, "name", f"song {i}")), it.mix, getattr(it, "master", None),
                        float(it.sample_rate)))
            continue
        if not isinstance(it, (tuple, list)) or len(it) not in (2, 3):
            raise ParameterError(f"learn_master item #{i}: expected a Song or a (mix, master[, "
                                 f"sample_rate]) tuple, got {type(it).__name__}")
        sr = it[2] if len(it) == 3 else sample_rate
        if sr is None:
            raise ParameterError(f"learn_master item #{i}: no sample_rate (pass sample_rate=)")
        out.append((f"song {i}", it[0], it[1], check_sample_rate(sr)))
    return out


def learn_master(items: Iterable[Any], sample_rate: float | None = None) -> dict[str, Any]:
    """The producer's typical master (``master.json`` document) from Songs or (mix, master)
    pairs. Songs without a master only count when none has one (loudness targets only)."""
    from mixstyle.master_fit import EQ_NAMES, band_centres, fit_master_eq, master_eq_db
    songs = _pairs(items, sample_rate)
    if not songs:
        raise ProfileError("learn_master: no songs given")
    with_master = [s for s in songs if s[2] is not None]
    used = with_master or songs
    lufs = [integrated_loudness(check_audio(m, f"mix of {n}", 2), sr) for n, m, _, sr in used]
    ok = [v for v in lufs if math.isfinite(v)]
    input_lufs = float(np.clip(np.median(ok), -70.0, 0.0)) if ok else None
    if not with_master:
        tgt, lim = spec(MASTER, "target_lufs"), spec(MASTER, "limiter_ceiling_db")
        tps = [true_peak_dbtp(m, sr) for _, m, _, sr in used]
        params: dict[str, Any] = dict(neutral(MASTER))
        if ok:
            params["target_lufs"] = float(np.clip(np.median(ok), tgt.min, tgt.max))
        params["limiter_ceiling_db"] = float(np.clip(np.median(tps), lim.min, lim.max))
        return MasterProfile(params, input_lufs, len(used), "mixes",
                             tuple(s[0] for s in used)).to_dict()
    fits = [fit_master(m, y, sr) for _, m, y, sr in with_master]
    u = np.median(np.stack([normalise_all(MASTER, f) for f in fits]), axis=0)
    params = denormalise_all(MASTER, u)
    if len(fits) > 1:  # EQ: the median *curve* over songs, refitted
        centres, _ = band_centres(EQ_REFERENCE_HZ)
        curves = np.stack([master_eq_db(f, centres, EQ_REFERENCE_HZ) for f in fits])
        eq, _, _ = fit_master_eq(centres, np.median(curves, axis=0), np.ones(len(centres)),
                                 EQ_REFERENCE_HZ)
        params.update({k: eq[k] for k in EQ_NAMES})
    return MasterProfile(params, input_lufs, len(fits), "masters",
                         tuple(s[0] for s in with_master)).to_dict()


def learn_master_from_sessions(report_songs: Iterable[Any]) -> dict[str, Any] | None:
    """``learn_master`` over loaded sessions (``mixstyle.sessions.Song``); None if no songs."""
    songs = list(report_songs)
    return learn_master(songs) if songs else None


@dataclass(frozen=True)
class MasterResult:
    """A mastered file and what the chain measured and decided (dB, LUFS, dBTP)."""

    audio: np.ndarray
    trim_db: float
    master_gain_db: float
    limiter_ceiling_db: float      # sample-peak ceiling finally used
    input_lufs: float
    input_true_peak_dbtp: float
    loudness_lufs: float
    true_peak_dbtp: float
    glue_gain_reduction_db: float
    limiter_gain_reduction_db: float
    ceiling_passes: int
    first_overshoot_db: float      # true peak over the ceiling after the first limiter pass


def _limited(pre: np.ndarray, gain_db: float, ceiling_db: float, params: Mapping[str, Any],
             sr: float) -> tuple[np.ndarray, float]:
    lim = Limiter(sr, ceiling_db, params["limiter_release_ms"], params["limiter_lookahead_ms"])
    lat, n = lim.latency_samples, pre.shape[1]
    buf = np.zeros((2, n + lat), dtype=np.float32)
    np.multiply(pre, 10.0 ** (gain_db / 20.0), out=buf[:, :n], casting="unsafe")
    lim.process_into(buf, buf)
    return buf[:, lat:], lim.gain_reduction_db


def _to_target(pre: np.ndarray, gain: float, target: float, ceiling_db: float,
               params: Mapping[str, Any], sr: float) -> tuple[np.ndarray, float, float]:
    """Secant steps on (gain, loudness of the limited output) until within TOLERANCE_LU."""
    g_spec = spec(MASTER, "gain_db")
    out, gr = _limited(pre, gain, ceiling_db, params, sr)
    last: tuple[float, float] | None = None
    for _ in range(MAX_LOUDNESS_STEPS):
        got = integrated_loudness(out, sr)
        if not math.isfinite(got) or abs(target - got) <= TOLERANCE_LU:
            break
        slope = 1.0
        if last is not None and last[0] != gain:
            slope = min(max((got - last[1]) / (gain - last[0]), 0.05), 1.0)
        last = (gain, got)
        new = float(np.clip(gain + (target - got) / slope, g_spec.min, g_spec.max))
        if new == gain:
            break
        gain = new
        out, gr = _limited(pre, gain, ceiling_db, params, sr)
    return out, gain, gr


def master_audio(audio: np.ndarray, sample_rate: float, params: Mapping[str, Any], *,
                 target_lufs: float | None = None, ceiling_dbtp: float | None = None,
                 trim_to_lufs: float | None = None) -> MasterResult:
    """Master ``audio`` (1 or 2, n) with the master section ``params``.

    ``target_lufs``/``ceiling_dbtp`` override ``params['target_lufs']`` and the true-peak
    ceiling (default ``params['limiter_ceiling_db']``). Target None: ``params['gain_db']``.
    ``trim_to_lufs`` (a profile's ``input_lufs``) trims the input to that loudness first.
    """
    sr = check_sample_rate(sample_rate)
    x = check_audio(audio, "audio")
    if x.shape[0] == 1:
        x = np.repeat(x, 2, axis=0)
    elif x.shape[0] != 2:
        raise AudioInputError(f"audio has {x.shape[0]} channels: mastering takes mono or stereo")
    p = validate(MASTER, params, "master")
    target = p["target_lufs"] if target_lufs is None else \
        spec(MASTER, "target_lufs").check(target_lufs, "master target_lufs")
    ceiling = p["limiter_ceiling_db"] if ceiling_dbtp is None else \
        spec(MASTER, "limiter_ceiling_db").check(ceiling_dbtp, "master ceiling_dbtp")
    in_lufs, in_tp = integrated_loudness(x, sr), true_peak_dbtp(x, sr)
    if target is not None and not math.isfinite(in_lufs):
        raise AudioInputError("audio is silent (below the -70 LUFS gate): nothing to master")
    trim_db = _trim_db(trim_to_lufs, in_lufs)
    strip = ChannelStrip(sr, {"input_gain_db": trim_db, **{n: p[n] for n in _STRIP_NAMES}})
    pre = strip.process(x, sr)
    lim_spec = spec(MASTER, "limiter_ceiling_db")
    lim_ceiling, gain = ceiling, p["gain_db"]
    if target is not None:
        measured = integrated_loudness(pre, sr)
        g = spec(MASTER, "gain_db")
        gain = float(np.clip(target - measured if math.isfinite(measured) else g.max,
                             g.min, g.max))
    passes, first_over, prev = 0, math.nan, None
    while True:
        passes += 1
        if target is None:
            out, lim_gr = _limited(pre, gain, lim_ceiling, p, sr)
        else:
            out, gain, lim_gr = _to_target(pre, gain, target, lim_ceiling, p, sr)
        tp = true_peak_dbtp(out, sr)
        if passes == 1:
            first_over = tp - ceiling
        if tp <= ceiling or passes >= MAX_CEILING_PASSES or lim_ceiling <= lim_spec.min:
            break
        # secant on (limiter ceiling -> true peak): more limiting also overshoots more
        slope = 1.0 if prev is None else \
            min(max((tp - prev[1]) / (lim_ceiling - prev[0]), 0.7), 1.0)
        prev = (lim_ceiling, tp)
        lim_ceiling = max(lim_spec.min, lim_ceiling - (tp - ceiling + TP_MARGIN_DB) / slope)
    if tp > ceiling:  # the limiter could not hold it: scale down (true peak is linear)
        out = (out * np.float32(10.0 ** ((ceiling - tp - 0.01) / 20.0))).astype(np.float32)
        tp = true_peak_dbtp(out, sr)
    out = np.ascontiguousarray(out)
    return MasterResult(out, float(trim_db), float(gain), float(lim_ceiling), float(in_lufs),
                        float(in_tp), float(integrated_loudness(out, sr)), float(tp),
                        strip.gain_reduction_db, float(lim_gr), passes, float(first_over))


def _trim_db(to_lufs: float | None, input_lufs: float) -> float:
    """Input trim (dB, within the strip's input gain range) from ``input_lufs`` to ``to_lufs``."""
    if to_lufs is None or not math.isfinite(input_lufs):
        return 0.0
    g = spec("track", "input_gain_db")
    return float(np.clip(float(to_lufs) - input_lufs, g.min, g.max))


def master_command(inputs: list[str], profile_dir: str | Path, out_dir: str | Path,
                   target_lufs: float | None = None, ceiling_dbtp: float | None = None,
                   workers: int | None = None, scheduler: str | None = None,
                   progress: Any = None) -> int:
    """``mixstyle master``: see ``mixstyle.master_batch.run_batch``; returns the exit code."""
    from mixstyle.master_batch import master_command as run
    return run(inputs, profile_dir, out_dir, target_lufs=target_lufs, ceiling_dbtp=ceiling_dbtp,
               workers=workers, scheduler=scheduler, progress=progress)
