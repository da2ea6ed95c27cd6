"""Mastering in the producer's style: the master profile (learn, save, load) and the entry
points the CLI and the learn pipeline call.

A profile's ``master.json`` (parameter-table JSON, ``dsp.params`` format, master section) is the
producer's typical master bus, learned from songs that have ``master.<ext>`` next to
``mix.<ext>`` (``fit_master`` per song, then the median over songs in the table's normalised
space; the EQ as the median *curve*, refitted). Without masters it keeps a neutral bus and the
loudness targets of their mixes. ``notes.input_lufs`` is the loudness of the mixes the producer
fed their master bus: new mixes are trimmed to it first, so the glue compressor's threshold
(dBFS) works as it did for them.

The chain is ``mixstyle.master_chain.master_audio``; the fit ``mixstyle.master_fit``; the
resumable batch (``master_command``: local processes or Dask) ``mixstyle.master_batch``.
Those (numba kernels, audio files) are imported where they are used, so reading a profile to
coordinate a batch costs no worker start-up.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np

from dsp.errors import AudioInputError, ParameterError, ProfileError
from dsp.params import (MASTER, ConsoleSetting, denormalise_all, neutral, normalise_all,
                        setting_from_dict, setting_to_dict, spec, validate)
from dsp.validate import check_audio, check_range, check_sample_rate

MASTER_FILE = "master.json"
EQ_REFERENCE_HZ = 48000.0    # sample rate of the median EQ curve
__all__ = ["MASTER_FILE", "MasterProfile", "MasterResult", "fit_master", "learn_master",
           "learn_master_from_sessions", "load_master_profile", "master_audio",
           "master_command", "save_master_profile"]


def __getattr__(name: str) -> Any:
    """``master_audio`` and ``MasterResult`` (from ``mixstyle.master_chain``) on first use."""
    if name in ("master_audio", "MasterResult"):
        from mixstyle import master_chain
        return getattr(master_chain, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@dataclass(frozen=True)
class MasterProfile:
    """The producer's typical master: ``params`` (validated master section), the loudness of
    the mixes it was fed (``input_lufs``, None = no trim), how many songs and from what."""

    params: dict[str, Any]
    input_lufs: float | None = None
    songs: int = 0
    source: str = "masters"              # "masters", "mixes" or "given"
    song_names: tuple[str, ...] = field(default_factory=tuple)
    skipped: tuple[str, ...] = field(default_factory=tuple)   # "song: why" of unusable masters

    def __post_init__(self) -> None:
        object.__setattr__(self, "params", validate(MASTER, self.params, "master profile"))
        if self.input_lufs is not None:
            check_range("master profile input_lufs", self.input_lufs, -70.0, 0.0, "LUFS")

    def to_dict(self) -> dict[str, Any]:
        """The ``master.json`` document (dsp.params JSON, no tracks, plus notes)."""
        tidy = {k: v if v is None else float(f"{v:.9g}") for k, v in self.params.items()}
        doc = setting_to_dict(ConsoleSetting(tracks=(), master=tidy))
        doc["notes"] = {"kind": "master_profile", "source": self.source, "songs": self.songs,
                        "input_lufs": self.input_lufs, "song_names": list(self.song_names),
                        "skipped": list(self.skipped)}
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
                       song_names=tuple(str(s) for s in notes.get("song_names", ())),
                       skipped=tuple(str(s) for s in notes.get("skipped", ())))
        except (ParameterError, TypeError, ValueError) as e:
            raise ProfileError(f"{where}: {e}") from None


def save_master_profile(profile_dir: str | Path, master: Mapping[str, Any] | MasterProfile
                        ) -> Path:
    """Write ``PROFILE/master.json`` atomically (a document from ``learn_master``, a
    MasterProfile or a bare master section); returns its path."""
    from mixstyle.audio_io import write_text_atomic
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


def _mix_loudness(songs: list[tuple[str, np.ndarray, Any, float]]
                  ) -> tuple[list[float], float | None]:
    """Integrated loudness of each (audible) mix and their median (None if all are silent)."""
    from dsp.loudness import integrated_loudness
    lufs = [integrated_loudness(check_audio(m, f"mix of {n}", 2), sr) for n, m, _, sr in songs]
    ok = [v for v in lufs if math.isfinite(v)]
    return ok, (float(np.clip(np.median(ok), -70.0, 0.0)) if ok else None)


def learn_master(items: Iterable[Any], sample_rate: float | None = None) -> dict[str, Any]:
    """The producer's typical master (``master.json`` document) from Songs or (mix, master)
    pairs. Songs without a master only count when none has one (loudness targets only)."""
    from dsp.loudness import true_peak_dbtp
    from mixstyle.master_fit import EQ_NAMES, band_centres, fit_master_eq, master_eq_db
    songs = _pairs(items, sample_rate)
    if not songs:
        raise ProfileError("learn_master: no songs given")
    with_master = [s for s in songs if s[2] is not None]
    if not with_master:
        ok, input_lufs = _mix_loudness(songs)
        tgt, lim = spec(MASTER, "target_lufs"), spec(MASTER, "limiter_ceiling_db")
        tps = [true_peak_dbtp(m, sr) for _, m, _, sr in songs]
        params: dict[str, Any] = dict(neutral(MASTER))
        if ok:
            params["target_lufs"] = float(np.clip(np.median(ok), tgt.min, tgt.max))
        params["limiter_ceiling_db"] = float(np.clip(np.median(tps), lim.min, lim.max))
        return MasterProfile(params, input_lufs, len(songs), "mixes",
                             tuple(s[0] for s in songs)).to_dict()
    fits, used, skipped = [], [], []
    for song in with_master:
        name, m, y, sr = song
        try:
            fits.append(fit_master(m, y, sr))
            used.append(song)
        except AudioInputError as e:  # one unusable master does not stop the others
            skipped.append(f"{name}: {e}")
    if not fits:
        raise ProfileError(f"no usable master among {len(with_master)} songs: "
                           f"{'; '.join(skipped)}")
    u = np.median(np.stack([normalise_all(MASTER, f) for f in fits]), axis=0)
    params = denormalise_all(MASTER, u)
    if len(fits) > 1:  # EQ: the median *curve* over songs, refitted
        centres, _ = band_centres(EQ_REFERENCE_HZ)
        curves = np.stack([master_eq_db(f, centres, EQ_REFERENCE_HZ) for f in fits])
        eq, _, _ = fit_master_eq(centres, np.median(curves, axis=0), np.ones(len(centres)),
                                 EQ_REFERENCE_HZ)
        params.update({k: eq[k] for k in EQ_NAMES})
    _, input_lufs = _mix_loudness(used)
    return MasterProfile(params, input_lufs, len(fits), "masters", tuple(s[0] for s in used),
                         tuple(skipped)).to_dict()


def learn_master_from_sessions(report_songs: Iterable[Any]) -> dict[str, Any] | None:
    """``learn_master`` over loaded sessions (``mixstyle.sessions.Song``); None if no songs."""
    songs = list(report_songs)
    return learn_master(songs) if songs else None


def master_command(inputs: list[str], profile_dir: str | Path, out_dir: str | Path,
                   target_lufs: float | None = None, ceiling_dbtp: float | None = None,
                   workers: int | None = None, scheduler: str | None = None,
                   progress: Any = None) -> int:
    """``mixstyle master``: see ``mixstyle.master_batch.run_batch``; returns the exit code."""
    from mixstyle.master_batch import master_command as run
    return run(inputs, profile_dir, out_dir, target_lufs=target_lufs, ceiling_dbtp=ceiling_dbtp,
               workers=workers, scheduler=scheduler, progress=progress)
