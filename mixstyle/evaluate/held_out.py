"""Scores on songs the network never saw. ``held_out_score``: learn's held-out songs (trained on
the others, ceiling calibrated on them); ``leave_one_out``: without a profile, every song once,
trained on all the others. Both fit and train directly (``fit``, ``train``), never via ``learn``.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from dsp.render import render
from mixstyle.errors import SessionError
from mixstyle.evaluate.metrics import automix, metrics, plain_sum
from mixstyle.evaluate.score import song_scores, summarise
from mixstyle.profile.ceiling import level_meta
from mixstyle.profile.predict import Profile, predict_song
from mixstyle.sessions.load import Song, load_sessions
from mixstyle.train.config import LearnConfig
from mixstyle.train.features import SongFeatures
from mixstyle.train.loop import SongAudio, TrainConfig, train
from mixstyle.train.records import SongRecord
from mixstyle.train.songs import fit_songs, staged_excerpt

Progress = Callable[[str, int, int], None]
# the strips' share of the style tried on learn's held-out songs (the level habit stays whole):
# where the held-out songs sound closer to the producer with less of it, the profile keeps less
STYLE_STRENGTHS = (1.0, 0.75, 0.5, 0.25, 0.0)


def held_out_score(records: list[SongRecord], config: TrainConfig,
                   audio: dict[str, SongAudio], train_songs: list[Song], held_songs: list[Song],
                   features: dict[str, SongFeatures], progress: Progress | None = None) -> dict:
    """Train on ``records`` only and score the songs kept out (their mixes never seen), at each
    of ``STYLE_STRENGTHS``; the score is that of the strength with the lowest band error (the
    largest on a tie, to 1e-3 dB), which the result names as ``style_strength``: the profile
    learned beside it uses it (a choice made on these songs, so their score is a little
    optimistic where it is below 1; ``band_error_by_style_strength`` shows all)."""
    model, _ = train(records, config, audio, progress=progress)
    meta = level_meta(model, records, train_songs, features)
    prof = Profile(model, meta)
    base = {}   # the baselines do not depend on the strength: measured once per song
    for song in held_songs:
        stems = np.stack([x.audio for x in song.stems])
        base[song.name] = {
            "plain_sum": metrics(plain_sum(stems, song.mix, song.sample_rate), song.mix,
                                 song.sample_rate),
            "automix": metrics(automix(stems, song.sample_rate), song.mix, song.sample_rate)}
    scores = {}
    for strength in STYLE_STRENGTHS:
        prof.meta["style_strength"] = strength
        per = {}
        for song in held_songs:
            stems = np.stack([x.audio for x in song.stems])
            setting = predict_song(prof, song, features=features.get(song.name))
            learned = render(stems, song.sample_rate, setting).audio
            per[song.name] = {"learned": metrics(learned, song.mix, song.sample_rate),
                              **base[song.name]}
        scores[strength] = summarise(per)
    best = min(STYLE_STRENGTHS, key=lambda s: (round(scores[s]["learned"]["band_error_db"], 3),
                                               -s))
    out = dict(scores[best])
    out["style_strength"] = best
    out["band_error_by_style_strength"] = {str(s): round(scores[s]["learned"]["band_error_db"], 3)
                                           for s in STYLE_STRENGTHS}
    return out


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
