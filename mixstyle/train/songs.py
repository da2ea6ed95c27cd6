"""Past songs -> training material: each song fitted into its record (``fit_song``, many at once
in the pool: ``fit_songs``, ``load_folder``), and its staged excerpt for the audio phase
(``staged_excerpt``). What ``learn`` and ``evaluate``'s leave-one-out both use.

A song folder with the producer's own setting (``setting.json``: a correction,
``mixstyle.sessions.corrections``) is not fitted: its record holds that setting
(``correct_song``), and the mix its audio phase hears is the setting's render, what the producer
heard when they kept it.
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
from dsp.render import render
from mixstyle.io.audio import audio_info
from mixstyle.sessions.corrections import CorrectedSong, has_setting, load_corrected_song
from mixstyle.sessions.load import Song, load_song
from mixstyle.train.balance import strip_loudness
from mixstyle.train.loop import SongAudio
from mixstyle.train.records import (SongRecord, SourceFile, correction_record, make_record,
                                    sha256_file)

AnySong = Song | CorrectedSong


def song_files(song: AnySong) -> list[SourceFile]:
    """The files a song's record is made from: its stems and mix (and master), or for a
    correction its stems and setting (its mix, if any, is not learned)."""
    paths = [s.path for s in song.stems]
    if isinstance(song, CorrectedSong):
        paths.append(song.setting_path)
    else:
        for p in sorted(song.folder.iterdir()):
            if p.is_file() and p.stem in ("mix", "master"):
                paths.append(p)
    return [SourceFile(str(p), sha256_file(p), _duration(p)) for p in paths]


def _duration(path: Path) -> float:
    if path.suffix == ".json":
        return 0.0   # a setting has no length
    try:
        return round(audio_info(path).duration_seconds, 3)
    except MixstyleError:  # a file that read a moment ago; report an unknown length
        return math.nan


def heard_mix(song: AnySong) -> np.ndarray:
    """The mix the producer made of the song: their mix file, or for a correction the render
    of their setting."""
    if isinstance(song, CorrectedSong):
        stems = np.stack([s.audio for s in song.stems])
        return render(stems, song.sample_rate, song.setting).audio
    return song.mix


def staged_excerpt(song: AnySong, rec: SongRecord, seconds: float) -> SongAudio:
    """The song's excerpt for the audio phase, stems trimmed by the record's input gains, and
    how much louder each fitted strip is over the whole song than over the excerpt."""
    stems = np.stack([s.audio for s in song.stems])
    mix = heard_mix(song)
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
                     np.ascontiguousarray(mix[:, start:stop].astype(np.float32)),
                     song.sample_rate, offsets)


def fit_song(song: Song, config: FitConfig, files: list[SourceFile] | None = None
             ) -> SongRecord:
    """Fit one song into its record (``files``: its source files, if already hashed)."""
    stems = np.stack([s.audio for s in song.stems])
    names = [s.name for s in song.stems]
    roles = [s.role for s in song.stems]
    result = fit_mix(stems, song.mix, song.sample_rate, names, roles, config)
    return make_record(song.name, names, roles, stems, song.sample_rate, result,
                       files if files is not None else song_files(song), song.mix,
                       [str(w) for w in song.warnings])


def correct_song(song: CorrectedSong, files: list[SourceFile] | None = None) -> SongRecord:
    """The record of a corrected song: its setting as it is (``files``: if already hashed)."""
    stems = np.stack([s.audio for s in song.stems])
    return correction_record(song.name, stems, song.sample_rate, song.setting,
                             files if files is not None else song_files(song),
                             song.overridden_mix.name if song.overridden_mix else None)


@dataclass(frozen=True)
class Loaded:
    """What a worker sends back for one song folder: the song (a ``CorrectedSong`` where the
    folder has the producer's setting), its new record (None when the old one is still
    current) or the reason the song could not be used."""
    name: str
    song: AnySong | None = None
    record: SongRecord | None = None
    error: str | None = None


def _load_and_fit(folder: Path, max_seconds: float, config: FitConfig,
                  old_hashes: list[str] | None) -> Loaded:
    """Load, check and hash one song folder; fit it (or for a correction, take its setting)
    unless its files are those of ``old_hashes`` (the record already made from them)."""
    song: AnySong
    try:
        if has_setting(folder):
            song = load_corrected_song(folder, max_seconds=max_seconds)
        else:
            song = load_song(folder, max_seconds=max_seconds)
    except MixstyleError as exc:
        return Loaded(folder.name, error=str(exc))
    files = song_files(song)
    if old_hashes is not None and [f.sha256 for f in files] == old_hashes:
        return Loaded(song.name, song)
    if isinstance(song, CorrectedSong):
        return Loaded(song.name, song, correct_song(song, files))
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
