"""How close mixstyle's mixes come to the producer's real mixes, next to two baselines.

Metrics (lower is better), each comparing a mix with the producer's mix of the same stems:
- ``band_error_db``: mean |level difference| in 30 log-spaced bands (20 Hz-20 kHz) per 93 ms
  frame of the mid signal (L+R)/2 -- tone and balance as they move through the song (stereo
  placement is measured by the width error, not twice);
- ``mrstft``: multi-resolution STFT distance (spectral convergence + log magnitude);
- ``loudness_error_lu``: |integrated loudness difference| (BS.1770);
- ``width_error_db``: |difference of side/mid energy ratio| -- stereo width.

Baselines: ``plain_sum`` (the stems summed, matched in loudness to the producer's mix) and
``automix`` (a generic equal-loudness automix: every stem to the same loudness, summed, brought to
-14 LUFS with a -1 dBFS limiter). ``closed`` is the share of the plain sum's band error that the
learned mix removes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

import numpy as np
import torch

from dsp.limiter import Limiter
from dsp.loudness import integrated_loudness
from dsp.render import render
from mixstyle import losses
from mixstyle.features import SongFeatures, stage_gain_db
from mixstyle.sessions import Song

METRICS = ("band_error_db", "mrstft", "loudness_error_lu", "width_error_db")
AUTOMIX_LUFS = -14.0


def _width_db(x: np.ndarray) -> float:
    mid = 0.5 * (x[0].astype(np.float64) + x[1])
    side = 0.5 * (x[0].astype(np.float64) - x[1])
    return 10 * math.log10((np.sum(side ** 2) + 1e-12) / (np.sum(mid ** 2) + 1e-12))


def _lufs(x: np.ndarray, sr: float) -> float:
    v = integrated_loudness(x.astype(np.float32), sr)
    return v if math.isfinite(v) else -70.0


def metrics(est: np.ndarray, ref: np.ndarray, sample_rate: float) -> dict[str, float]:
    n = min(est.shape[-1], ref.shape[-1])
    e = torch.from_numpy(np.ascontiguousarray(est[:, :n], dtype=np.float32))
    r = torch.from_numpy(np.ascontiguousarray(ref[:, :n], dtype=np.float32))
    with torch.no_grad():
        band = float(losses.band_db(e.mean(dim=0, keepdim=True), r.mean(dim=0, keepdim=True),
                                    sample_rate))
        mr = float(losses.mrstft(e, r))
    return {"band_error_db": band, "mrstft": mr,
            "loudness_error_lu": abs(_lufs(est[:, :n], sample_rate) - _lufs(ref[:, :n],
                                                                            sample_rate)),
            "width_error_db": abs(_width_db(est[:, :n]) - _width_db(ref[:, :n]))}


def plain_sum(stems: np.ndarray, ref: np.ndarray, sample_rate: float) -> np.ndarray:
    total = stems.sum(axis=0)
    gain_db = _lufs(ref, sample_rate) - _lufs(total, sample_rate)
    return (total * 10 ** (gain_db / 20)).astype(np.float32)


def automix(stems: np.ndarray, sample_rate: float) -> np.ndarray:
    staged = [s * 10 ** (stage_gain_db(_lufs(s, sample_rate)) / 20) for s in stems]
    total = np.sum(staged, axis=0).astype(np.float32)
    total *= 10 ** ((AUTOMIX_LUFS - _lufs(total, sample_rate)) / 20)
    lim = Limiter(sample_rate, ceiling_db=-1.0)
    out = lim.process(np.concatenate([total, np.zeros((2, lim.latency_samples), np.float32)],
                                     axis=1).astype(np.float32), sample_rate)
    return out[:, lim.latency_samples:]


Predict = Callable[[Song], object]


def song_scores(song: Song, setting) -> dict[str, dict[str, float]]:
    stems = np.stack([s.audio for s in song.stems])
    learned = render(stems, song.sample_rate, setting).audio
    return {"learned": metrics(learned, song.mix, song.sample_rate),
            "plain_sum": metrics(plain_sum(stems, song.mix, song.sample_rate), song.mix,
                                 song.sample_rate),
            "automix": metrics(automix(stems, song.sample_rate), song.mix, song.sample_rate)}


def summarise(per_song: dict[str, dict[str, dict[str, float]]]) -> dict:
    out: dict = {}
    for system in ("learned", "plain_sum", "automix"):
        out[system] = {m: float(np.mean([s[system][m] for s in per_song.values()]))
                       for m in METRICS}
    out["closed"] = 1.0 - out["learned"]["band_error_db"] / max(out["plain_sum"]["band_error_db"],
                                                                 1e-9)
    out["songs"] = len(per_song)
    return out


def score_songs(model, songs: Sequence[Song], meta: dict | None = None,
                features: Mapping[str, SongFeatures] | None = None) -> dict:
    """Held-out score of a freshly trained network (used by ``learn``); ``features``: song name
    -> the features already measured on its stems (from its record)."""
    from mixstyle.profile import Profile
    prof = Profile(folder=None, model=model, meta=meta or {})  # type: ignore[arg-type]
    features = features or {}
    per = {s.name: song_scores(s, predict_song(prof, s, features=features.get(s.name)))
           for s in songs}
    return summarise(per)


def predict_song(profile, song: Song, strength: float = 1.0,
                 features: SongFeatures | None = None):
    return profile.predict([(s.name, s.role, s.audio) for s in song.stems], song.sample_rate,
                           strength, features)


def format_table(summary: dict, title: str = "") -> str:
    rows = [title] if title else []
    rows.append(f"{'metric':<20}{'learned':>10}{'plain sum':>11}{'automix':>10}")
    for m in METRICS:
        rows.append(f"{m:<20}{summary['learned'][m]:>10.3f}{summary['plain_sum'][m]:>11.3f}"
                    f"{summary['automix'][m]:>10.3f}")
    rows.append(f"closed {100 * summary['closed']:.0f}% of the plain sum's band error over "
                f"{summary['songs']} song(s)")
    return "\n".join(rows)



def evaluate_profile(sessions, profile_dir, progress=None, max_seconds: float = 30.0) -> dict:
    """Score a profile on every song of SESSIONS (songs it was trained on count too: say so)."""
    from mixstyle.profile import load_profile
    from mixstyle.sessions import load_sessions
    profile = load_profile(profile_dir)
    report = load_sessions(sessions, max_seconds=max_seconds)
    per = {}
    for k, song in enumerate(report.songs):
        per[song.name] = song_scores(song, predict_song(profile, song))
        if progress:
            progress("evaluate", k + 1, len(report.songs))
    if not per:
        from mixstyle.errors import SessionError
        raise SessionError(f"{sessions}: no usable songs to evaluate")
    out = summarise(per)
    out["per_song"] = per
    out["trained_on"] = sorted(set(per) & set(profile.meta.get("songs", [])))
    return out


def leave_one_out(sessions, progress=None, seed: int = 0, config=None) -> dict:
    """Without a profile: fit every song once, then for each song train on all the others and
    score the held-out song."""
    from mixstyle.learn import LearnConfig, fit_songs, staged_excerpt
    from mixstyle.sessions import load_sessions
    from mixstyle.train import train
    config = config or LearnConfig()
    report = load_sessions(sessions, max_seconds=config.max_seconds)
    songs = list(report.songs)
    if len(songs) < 2:
        from mixstyle.errors import SessionError
        raise SessionError(f"{sessions}: leave-one-song-out needs at least 2 usable songs")
    done = {"n": 0}

    def finished(song, record) -> None:
        done["n"] += 1
        if progress:
            progress("fit", done["n"], len(songs))

    records = fit_songs(songs, config.fit, config.jobs, finished)
    audio = {s.name: staged_excerpt(s, records[s.name], config.train.audio_seconds)
             for s in songs}
    from mixstyle.profile import Profile
    per = {}
    for k, song in enumerate(songs):
        others = [records[s.name] for s in songs if s.name != song.name]
        model, _ = train(others, config.train, audio)
        prof = Profile(folder=None, model=model, meta={})  # type: ignore[arg-type]
        per[song.name] = song_scores(song, predict_song(prof, song))
        if progress:
            progress("evaluate", k + 1, len(songs))
    out = summarise(per)
    out["per_song"] = per
    return out
