"""Scores on songs the network never saw. ``held_out_score``: learn's held-out songs (trained on
the others, ceiling calibrated on them); ``leave_one_out``: without a profile, every song once,
trained on all the others. Both fit and train directly (``fit``, ``train``), never via ``learn``.
"""

from __future__ import annotations

from typing import Callable

from mixstyle.errors import SessionError
from mixstyle.evaluate.score import score_songs, song_scores, summarise
from mixstyle.profile.ceiling import level_meta
from mixstyle.profile.predict import Profile, predict_song
from mixstyle.sessions.load import Song, load_sessions
from mixstyle.train.config import LearnConfig
from mixstyle.train.features import SongFeatures
from mixstyle.train.loop import SongAudio, TrainConfig, train
from mixstyle.train.records import SongRecord
from mixstyle.train.songs import fit_songs, staged_excerpt

Progress = Callable[[str, int, int], None]


def held_out_score(records: list[SongRecord], config: TrainConfig,
                   audio: dict[str, SongAudio], train_songs: list[Song], held_songs: list[Song],
                   features: dict[str, SongFeatures], progress: Progress | None = None) -> dict:
    """Train on ``records`` only and score the songs kept out (their mixes never seen)."""
    model, _ = train(records, config, audio, progress=progress)
    return score_songs(model, held_songs, level_meta(model, records, train_songs, features),
                       features)


def leave_one_out(sessions, progress=None, seed: int = 0,
                  config: LearnConfig | None = None) -> dict:
    """Without a profile: fit every song once, then for each song train on all the others and
    score the held-out song."""
    config = config or LearnConfig()
    report = load_sessions(sessions, max_seconds=config.max_seconds)
    songs = list(report.songs)
    if len(songs) < 2:
        raise SessionError(f"{sessions}: leave-one-song-out needs at least 2 usable songs")
    done = {"n": 0}

    def finished(song, record) -> None:
        done["n"] += 1
        if progress:
            progress("fit", done["n"], len(songs))

    records = fit_songs(songs, config.fit, config.jobs, finished)
    audio = {s.name: staged_excerpt(s, records[s.name], config.train.audio_seconds)
             for s in songs}
    per = {}
    for k, song in enumerate(songs):
        others = [records[s.name] for s in songs if s.name != song.name]
        model, _ = train(others, config.train, audio)
        prof = Profile(model, level_meta(model, others, [s for s in songs
                                                         if s.name != song.name]))
        per[song.name] = song_scores(song, predict_song(prof, song))
        if progress:
            progress("evaluate", k + 1, len(songs))
    out = summarise(per)
    out["per_song"] = per
    return out
