"""Past songs -> training material: each song fitted into its record (``fit_song``, many at once
in the pool: ``fit_songs``, ``load_folder``), and its staged excerpt for the audio phase
(``staged_excerpt``). What ``learn`` and ``evaluate``'s leave-one-out both use.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping

import numpy as np

from mixstyle.errors import MixstyleError
from mixstyle.fit.pool import pool_map
from mixstyle.fit.song import FitConfig, choose_excerpt, fit_mix
from mixstyle.io.audio import audio_info
from mixstyle.sessions.load import Song, load_song
from mixstyle.train.balance import strip_loudness
from mixstyle.train.loop import SongAudio
from mixstyle.train.records import SongRecord, SourceFile, make_record, sha256_file


def song_files(song: Song) -> list[SourceFile]:
    paths = [s.path for s in song.stems]
    for p in sorted(song.folder.iterdir()):
        if p.is_file() and p.stem in ("mix", "master"):
            paths.append(p)
    return [SourceFile(str(p), sha256_file(p), _duration(p)) for p in paths]


def _duration(path: Path) -> float:
    try:
        return round(audio_info(path).duration_seconds, 3)
    except MixstyleError:  # a file that read a moment ago; report an unknown length
        return math.nan


def staged_excerpt(song: Song, rec: SongRecord, seconds: float) -> SongAudio:
    """The song's excerpt for the audio phase, stems trimmed by the record's input gains, and
    how much louder each fitted strip is over the whole song than over the excerpt."""
    stems = np.stack([s.audio for s in song.stems])
    tracks = [t["params"] for t in rec.setting["tracks"]]
    gains = np.array([p["input_gain_db"] for p in tracks])
    start, stop = choose_excerpt(stems, song.sample_rate, seconds)
    staged = stems[:, :, start:stop] * (10 ** (gains / 20))[:, None, None]
    # the whole song's loudness per strip was measured with the record: bus + level
    whole = np.array([rec.bus_lufs + level if rec.bus_lufs is not None and level is not None
                      else -math.inf for level in rec.levels_lu])
    part = strip_loudness(stems[:, :, start:stop], song.sample_rate, tracks)
    ok = np.isfinite(whole) & np.isfinite(part)
    offsets = np.zeros(len(whole))
    offsets[ok] = whole[ok] - part[ok]
    return SongAudio(np.ascontiguousarray(staged.astype(np.float32)),
                     np.ascontiguousarray(song.mix[:, start:stop].astype(np.float32)),
                     song.sample_rate, offsets)


def fit_song(song: Song, config: FitConfig, files: list[SourceFile] | None = None
             ) -> SongRecord:
    """Fit one song into its record (``files``: its source files, if already hashed)."""
    stems = np.stack([s.audio for s in song.stems])
    names = [s.name for s in song.stems]
    roles = [s.role for s in song.stems]
    result = fit_mix(stems, song.mix, song.sample_rate, names, roles, config)
    return make_record(song.name, names, roles, stems, song.sample_rate, result,
                       files if files is not None else song_files(song), song.mix)


@dataclass(frozen=True)
class Loaded:
    """What a worker sends back for one song folder: the song, its new record (None when the
    old one is still current) or the reason the song could not be used."""
    name: str
    song: Song | None = None
    record: SongRecord | None = None
    error: str | None = None


def _load_and_fit(folder: Path, max_seconds: float, config: FitConfig,
                  old_hashes: list[str] | None) -> Loaded:
    """Load, check and hash one song folder; fit it unless its files are those of
    ``old_hashes`` (the record already made from them)."""
    try:
        song = load_song(folder, max_seconds=max_seconds)
    except MixstyleError as exc:
        return Loaded(folder.name, error=str(exc))
    files = song_files(song)
    if old_hashes is not None and [f.sha256 for f in files] == old_hashes:
        return Loaded(song.name, song)
    return Loaded(song.name, song, fit_song(song, config, files))


def load_folder(folder: Path, max_seconds: float, config: FitConfig,
                known: Mapping[str, list[str]]) -> Loaded:
    """``_load_and_fit`` with the old records' hashes by song name (the pool's job)."""
    return _load_and_fit(folder, max_seconds, config, known.get(folder.name))


def fit_songs(songs: list[Song], config: FitConfig, jobs: int = 0,
              done: Callable[[Song, SongRecord], None] | None = None) -> dict[str, SongRecord]:
    """Fit every song, ``jobs`` processes at a time (0 = one per core). Each fit is
    deterministic on its own, so the records do not depend on the number of processes;
    ``done`` is called (in this process) as each song finishes."""
    out: dict[str, SongRecord] = {}

    def finished(song: Song, record: SongRecord) -> None:
        out[song.name] = record
        if done:
            done(song, record)

    pool_map(functools.partial(fit_song, config=config), songs, jobs, finished)
    return out
