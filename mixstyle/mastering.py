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
MAX_PASSES = 8               # limiter runs at most, searching the drive
MAX_DRIVE_DB = 30.0          # drive into the limiter at most, over where it starts to act
PLR_WINDOW_DB = 0.4          # the search aims half this under the true-peak ceiling
PLR_CURVE = 0.03             # typical bend of PLR vs drive (measured on demo mixes)
TYPICAL_OVERSHOOT_DB = 0.3   # true peak over sample peak assumed when not measured
EXTRA_DRIVE_DB = 0.75        # accepted drive beyond the least that meets the ceiling
EQ_REFERENCE_HZ = 48000.0    # sample rate of the median EQ curve
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
    master_gain_db: float          # gain into the limiter
    limiter_ceiling_db: float      # the limiter's sample-peak ceiling that this gain needs
    input_lufs: float
    input_true_peak_dbtp: float
    loudness_lufs: float
    true_peak_dbtp: float
    glue_gain_reduction_db: float
    limiter_gain_reduction_db: float
    limiter_passes: int            # limiter runs to find the drive (0: no limiting needed)
    tp_overshoot_db: float         # true peak over the sample-peak ceiling (what it let through)


@dataclass(frozen=True)
class _Point:
    drive_db: float
    audio: np.ndarray
    lufs: float
    tp_dbtp: float
    gr_db: float

    @property
    def plr_db(self) -> float:
        return self.tp_dbtp - self.lufs


def _limited(pre: np.ndarray, gain_db: float, ceiling_db: float, params: Mapping[str, Any],
             sr: float) -> tuple[np.ndarray, float]:
    """``pre * gain`` through a fresh limiter, latency removed (contiguous)."""
    lim = Limiter(sr, ceiling_db, params["limiter_release_ms"], params["limiter_lookahead_ms"])
    lat, n = lim.latency_samples, pre.shape[1]
    buf = np.empty((2, n + lat), dtype=np.float32)
    buf[:, n:] = 0.0
    np.multiply(pre, 10.0 ** (gain_db / 20.0), out=buf[:, :n], casting="unsafe")
    lim.process_into(buf, buf)
    return np.ascontiguousarray(buf[:, lat:]), lim.gain_reduction_db


def _drive(pre: np.ndarray, drive_db: float, params: Mapping[str, Any], sr: float) -> _Point:
    out, gr = _limited(pre, drive_db, 0.0, params, sr)
    return _Point(drive_db, out, integrated_loudness(out, sr), true_peak_dbtp(out, sr), gr)


def _drive_for(drop_db: float, curve: float) -> float:
    """Drive over the limiter's start that lowers the PLR by ``drop_db`` when the PLR falls as
    ``d - curve * d^2`` (1:1 at first, then less: limiting also costs loudness); inf if that
    curve never gets there."""
    if drop_db <= 0.0:
        return 0.0
    if curve <= 1e-6:
        return drop_db
    disc = 1.0 - 4.0 * curve * drop_db
    return (1.0 - math.sqrt(disc)) / (2.0 * curve) if disc > 0 else math.inf


def _solve_drive(pre: np.ndarray, unlimited: _Point, start_db: float, plr_max_db: float,
                 params: Mapping[str, Any], sr: float) -> tuple[_Point, int]:
    """The least drive into the limiter (ceiling 0 dBFS) whose output's peak-to-loudness ratio
    (true peak - loudness) is at most ``plr_max_db``, give or take ``EXTRA_DRIVE_DB``.

    Up to ``start_db`` (the sample peak reaches the ceiling) the limiter does nothing; beyond,
    the PLR falls with drive d about as ``d - curve * d^2``, ``curve`` refitted to each point,
    or along the local slope past the model's reach; once a point above and one below bracket
    the goal (``PLR_WINDOW_DB / 2`` under the maximum), regula falsi. A point under the
    maximum is accepted when, by the local slope, it has at most ``EXTRA_DRIVE_DB`` more drive
    than needed.
    """
    plr0 = unlimited.plr_db
    goal = plr_max_db - PLR_WINDOW_DB / 2
    above = _Point(start_db, unlimited.audio, unlimited.lufs + start_db,
                   unlimited.tp_dbtp + start_db, 0.0)
    below: _Point | None = None
    curve, last, passes = PLR_CURVE, above, 0
    drive = start_db + min(_drive_for(plr0 - goal, curve), 0.5 / curve, MAX_DRIVE_DB)
    while passes < MAX_PASSES:
        passes += 1
        pt = _drive(pre, drive, params, sr)
        step = pt.drive_db - last.drive_db
        slope = (pt.plr_db - last.plr_db) / step if step != 0 else -1.0
        slope = min(max(slope, -1.0), -0.05)
        if pt.plr_db <= plr_max_db:
            below = pt if below is None or pt.drive_db < below.drive_db else below
            if (plr_max_db - pt.plr_db) / -slope <= EXTRA_DRIVE_DB:
                break
        elif pt.drive_db > above.drive_db:
            above = pt
        last = pt
        if below is not None:  # bracketed
            span = below.drive_db - above.drive_db
            if span < EXTRA_DRIVE_DB / 4:
                break
            frac = (above.plr_db - goal) / max(above.plr_db - below.plr_db, 1e-9)
            drive = above.drive_db + span * (min(max(frac, 0.1), 0.9) if frac < 1 else 0.5)
            continue
        d = pt.drive_db - start_db
        curve = min(max((pt.plr_db - plr0 + d) / (d * d), 0.0), 0.2) if d > 0 else curve
        drive = start_db + _drive_for(plr0 - goal, curve)
        if not drive > pt.drive_db + 0.01:  # past the model's reach: the local slope
            drive = pt.drive_db + (goal - pt.plr_db) / slope
        drive = min(drive, start_db + MAX_DRIVE_DB)
        if drive <= pt.drive_db + 0.01:
            break  # as much drive as allowed: the PLR will not come down further
    return (below if below is not None else pt), passes


def master_audio(audio: np.ndarray, sample_rate: float, params: Mapping[str, Any], *,
                 target_lufs: float | None = None, ceiling_dbtp: float | None = None,
                 trim_to_lufs: float | None = None) -> MasterResult:
    """Master ``audio`` (1 or 2, n) with the master section ``params``.

    ``target_lufs``/``ceiling_dbtp`` override ``params['target_lufs']`` and the true-peak
    ceiling (default ``params['limiter_ceiling_db']``); without a target, ``params['gain_db']``
    sets the level. ``trim_to_lufs`` (a profile's ``input_lufs``) trims the input first.

    The limiter is scale-invariant (gain and ceiling up by d dB = output up by d dB), so only
    the *drive* (gain over ceiling) shapes the sound: the least drive whose true-peak-to-loudness
    ratio fits under ``ceiling - target`` is searched with the limiter at 0 dBFS, then the
    result is scaled to the target: loudness exact, true peak at most the ceiling.
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
    if not math.isfinite(in_lufs):
        raise AudioInputError("audio is silent (below the -70 LUFS gate): nothing to master")
    trim_db = _trim_db(trim_to_lufs, in_lufs)
    strip = ChannelStrip(sr, {"input_gain_db": trim_db, **{n: p[n] for n in _STRIP_NAMES}})
    pre = np.empty_like(x)
    strip.process_into(x, pre)
    if strip.peak_db <= -200.0:
        raise AudioInputError("audio is silent after the master EQ: nothing to master")
    start = -strip.peak_db             # the drive at which the limiter starts to act
    # the unlimited chain, as a point of the search: ``pre`` itself (drive 0, no limiter).
    # Its true peak is measured only if the sample peak leaves the answer open.
    pre_lufs = integrated_loudness(pre, sr)
    pre_tp = -start + TYPICAL_OVERSHOOT_DB
    if target is None or -start - pre_lufs <= ceiling - target:
        pre_tp = true_peak_dbtp(pre, sr)
    unlimited = _Point(0.0, pre, pre_lufs, pre_tp, 0.0)
    passes, pt = 0, unlimited
    if target is None:  # the level comes from params['gain_db'] into a limiter at the ceiling
        pt = _drive(pre, p["gain_db"] - ceiling, p, sr)
        passes, target = 1, pt.lufs + ceiling
    if pt.plr_db > ceiling - target:
        pt, more = _solve_drive(pre, unlimited, start, ceiling - target, p, sr)
        passes += more
    scale_db = target - pt.lufs
    if pt.tp_dbtp + scale_db > ceiling:  # the search ran out: hold the true peak, lose loudness
        scale_db = ceiling - pt.tp_dbtp
    limited = pt is not unlimited
    out = pt.audio if limited else np.empty_like(pre)  # a limiter pass is ours to overwrite
    np.multiply(pt.audio, np.float32(10.0 ** (scale_db / 20.0)), out=out)
    tp = pt.tp_dbtp + scale_db
    return MasterResult(
        out, trim_db, master_gain_db=float(pt.drive_db + scale_db),
        limiter_ceiling_db=float(scale_db if limited else ceiling), input_lufs=float(in_lufs),
        input_true_peak_dbtp=float(in_tp), loudness_lufs=float(pt.lufs + scale_db),
        true_peak_dbtp=float(tp), glue_gain_reduction_db=strip.gain_reduction_db,
        limiter_gain_reduction_db=pt.gr_db, limiter_passes=passes,
        tp_overshoot_db=float(tp - 20.0 * math.log10(max(float(np.abs(out).max()), 1e-30))))


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
