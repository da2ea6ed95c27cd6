"""Scores on songs the network never saw. ``held_out_score``: learn's held-out songs (trained on
the others, ceiling calibrated on them); ``leave_one_out``: without a profile, every song once,
trained on all the others. Both fit and train directly (``fit``, ``train``), never via ``learn``.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np

from mixstyle.errors import SessionError
from mixstyle.evaluate.metrics import Target, automix, matched_band_error, metrics, plain_sum
from mixstyle.evaluate.score import song_scores, summarise
from mixstyle.profile.ceiling import level_meta
from mixstyle.profile.predict import Profile, predict_song
from mixstyle.sessions.load import Song, load_sessions
from mixstyle.train.balance import mix_predicted
from mixstyle.train.config import LearnConfig
from mixstyle.train.features import SongFeatures
from mixstyle.train.loop import SongAudio, TrainConfig, train
from mixstyle.train.records import SongRecord
from mixstyle.train.songs import fit_songs, staged_excerpt

Progress = Callable[[str, int, int], None]
# the shares of the style tried on learn's held-out songs; where those songs sound closer to the
# producer with less of it, the profile keeps less. The balance first (the predicted levels
# against the plain sum's own balance, the strips whole), then the strips (EQ, compressor, pan;
# at the balance chosen)
BALANCE_STRENGTHS = (1.0, 0.75, 0.5, 0.25, 0.0)
STYLE_STRENGTHS = (1.0, 0.75, 0.5, 0.25, 0.0)
# the pans' share, by the held-out width error: no panning the producer would not do, nor less
PAN_STRENGTHS = (1.0, 0.5, 0.0)
# where the loudness of a new mix comes from: the network's target, or the stems' plain sum plus
# the producer's median offset (``ceiling.sum_offset``); "sum" must be better by this much (LU),
# and by more than the held-out songs' spread (``beats``)
LOUDNESS_SOURCES = ("network", "sum")
SUM_MARGIN_LU = 0.1
# what the choices are made by (beside the loudness-matched band error)
CHOICE_METRICS = ("loudness_error_lu", "width_error_db")
# a share of the style above none is kept only where its held-out songs beat none by more than
# this many standard errors of the per-song difference: a handful of songs that tie with the
# safe habit (or beat it by less than their own spread) is not evidence for the style
EVIDENCE_SE = 1.0


def beats(new: np.ndarray, old: np.ndarray, margin: float = 0.0) -> bool:
    """Whether per-song errors ``new`` are lower than ``old`` (the same songs in order) by more
    than ``margin`` plus ``EVIDENCE_SE`` standard errors of the per-song difference (to 1e-3;
    with one song, by more than ``margin``)."""
    diff = np.asarray(new, dtype=np.float64) - np.asarray(old, dtype=np.float64)
    se = float(np.std(diff, ddof=1)) / math.sqrt(len(diff)) if len(diff) >= 2 else 0.0
    return round(float(np.mean(diff)) + EVIDENCE_SE * se, 3) < -margin


def choose_share(errors: dict[float, np.ndarray]) -> float:
    """The share of the style to keep, from each share's per-song errors on the held-out songs
    (the same songs in the same order): the share with the lowest mean (to 1e-3, the largest on
    a tie) if it beats the smallest share (none of the style) by more than ``EVIDENCE_SE``
    standard errors of the per-song difference, else the smallest. With one song there is no
    spread to measure: the lowest mean."""
    means = {s: round(float(np.mean(e)), 3) for s, e in errors.items()}
    best = min(errors, key=lambda s: (means[s], -s))
    none = min(errors)
    if best == none or len(errors[best]) < 2:
        return best
    return best if beats(errors[best], errors[none]) else none


def baseline_scores(songs: list[Song]) -> dict[str, dict[str, dict[str, float]]]:
    """Per song, the metrics of the two baselines (the loudness-matched plain sum and the
    automix) against the producer's mix: they need no model (learn measures them in its main
    process while the held-out model is still being scored, ``with_baselines``)."""
    out = {}
    for song in songs:
        stems = np.stack([x.audio for x in song.stems])
        ref = Target(song.mix, song.sample_rate)
        out[song.name] = {
            "plain_sum": metrics(plain_sum(stems, song.mix, song.sample_rate), ref,
                                 song.sample_rate),
            "automix": metrics(automix(stems, song.sample_rate), ref, song.sample_rate)}
    return out


def with_baselines(score: dict, baselines: dict[str, dict[str, dict[str, float]]]) -> dict:
    """A ``held_out_score`` made with ``baselines=False`` completed with ``baseline_scores`` of
    the same songs: the same result as ``held_out_score`` measuring them itself."""
    learned = score["learned_per_song"]
    out = dict(summarise({name: {"learned": m, **baselines[name]} for name, m in learned.items()}))
    out.update({k: v for k, v in score.items() if k != "learned_per_song"})
    return out


def held_out_score(records: list[SongRecord], config: TrainConfig,
                   audio: dict[str, SongAudio], train_songs: list[Song], held_songs: list[Song],
                   features: dict[str, SongFeatures], progress: Progress | None = None,
                   baselines: bool = True) -> dict:
    """Train on ``records`` only and score the songs kept out (their mixes never seen).

    Four choices are made on these songs. The strengths by the learned mixes brought to the
    producer's loudness (the tone and balance alone, ``matched_band_error``, to 1e-3 dB):
    ``balance_strength`` (of ``BALANCE_STRENGTHS``, the strips whole), then ``style_strength``
    (of ``STYLE_STRENGTHS``, at that balance, the pans with the strips), each the best share
    (the largest on a tie) if it beats none by more than ``EVIDENCE_SE`` standard errors of the
    per-song difference, else none (``choose_share``); then ``pan_strength`` (of
    ``PAN_STRENGTHS``, by the width error, to 0.01 dB) and ``loudness_source`` (by the loudness
    error: "sum" where it beats the network's target by ``SUM_MARGIN_LU`` and the per-song
    spread, ``beats``). The profile learned beside it uses all four; the score is that of the
    mixes at the choice (a choice made on these songs, so a little optimistic where it moved;
    ``band_error_by_*``, ``width_error_by_pan_strength`` and ``loudness_error_by_source`` show
    all). ``baselines`` False: the baselines are left out (``learned_per_song`` holds each
    song's metrics instead of the summary) for ``with_baselines`` to add.
    """
    model, _ = train(records, config, audio, progress=progress)
    meta = level_meta(model, records, train_songs, features)
    prof = Profile(model, meta)
    stems_of = {song.name: np.stack([x.audio for x in song.stems]) for song in held_songs}
    # each producer's mix measured once for all the mixes compared with it
    targets = {song.name: Target(song.mix, song.sample_rate) for song in held_songs}
    runs: dict[tuple, dict[str, tuple[dict[str, float], float]]] = {}
    # per song, the strips' loudness and the whole style's strips (faders at 0 dB, pans
    # centred: ``balance.memo_strips``), run once for the faders: the balance and pan shares and
    # the loudness source change only faders, pans and the master, so every mix at the whole
    # style is mixed from them; a smaller share of the strips runs its strips for its mix (not
    # kept: a second set of every song's strips cost 0.5 GB on the learn bench's songs)
    memos: dict[str, dict] = {song.name: {} for song in held_songs}

    def mix(key: tuple, song: Song) -> np.ndarray:
        balance, style, source, pan = key
        prof.meta.update(balance_strength=balance, style_strength=style, loudness_source=source,
                         pan_strength=pan)
        setting = predict_song(prof, song, features=features.get(song.name),
                               memo=memos[song.name])
        return mix_predicted(stems_of[song.name], song.sample_rate, setting,
                             memos[song.name]).audio

    def run(balance: float, style: float, source: str, pan: float | None = None) -> dict:
        # what the choices need (the MR-STFT, most of the metrics' cost, only for the choice)
        pan = style if pan is None else pan   # the pans follow the strips until chosen
        key = (balance, style, source, pan)
        if key not in runs:
            per = {}
            for song in held_songs:
                x = mix(key, song)
                ref = targets[song.name]
                per[song.name] = (metrics(x, ref, song.sample_rate, CHOICE_METRICS),
                                  matched_band_error(x, ref, song.sample_rate))
            runs[key] = per
        return runs[key]

    def per_song(key: tuple) -> np.ndarray:
        return np.array([b for _, b in run(*key).values()], dtype=np.float64)

    def band(key: tuple) -> float:
        return round(float(np.mean(per_song(key))), 3)

    def mean_of(metric: str, key: tuple) -> float:
        return round(float(np.mean([m[metric] for m, _ in run(*key).values()])), 3)

    balance = choose_share({b: per_song((b, 1.0, "network")) for b in BALANCE_STRENGTHS})
    style = choose_share({s: per_song((balance, s, "network")) for s in STYLE_STRENGTHS})
    pan = min(PAN_STRENGTHS, key=lambda p: (round(mean_of("width_error_db",
                                                          (balance, style, "network", p)), 2), -p))
    source = "network"
    if meta.get("sum_offset_lu") is not None:
        loud = {src: np.array([m["loudness_error_lu"]
                               for m, _ in run(balance, style, src, pan).values()])
                for src in LOUDNESS_SOURCES}
        if beats(loud["sum"], loud["network"], SUM_MARGIN_LU):
            source = "sum"
    chosen = (balance, style, source, pan)
    learned = {}
    for song in held_songs:   # the last mix of each song: its strips and measures let go after
        learned[song.name] = metrics(mix(chosen, song), targets.pop(song.name), song.sample_rate)
        del memos[song.name], stems_of[song.name]
    out: dict = {"learned_per_song": learned}
    out.update(balance_strength=balance, style_strength=style, loudness_source=source,
               pan_strength=pan)
    out["band_error_by_balance_strength"] = {str(b): band((b, 1.0, "network"))
                                             for b in BALANCE_STRENGTHS}
    out["band_error_by_style_strength"] = {str(s): band((balance, s, "network"))
                                           for s in STYLE_STRENGTHS}
    out["width_error_by_pan_strength"] = {str(p): mean_of("width_error_db",
                                                          (balance, style, "network", p))
                                          for p in PAN_STRENGTHS}
    out["loudness_error_by_source"] = {src: mean_of("loudness_error_lu",
                                                    (balance, style, src, pan))
                                       for src in LOUDNESS_SOURCES
                                       if (balance, style, src, pan) in runs}
    return with_baselines(out, baseline_scores(held_songs)) if baselines else out


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
