"""Scores per song and over songs: the learned mix against the producer's, next to the
baselines (``metrics``); ``evaluate_profile`` scores a profile on a sessions folder.

A corrected song (``setting.json``, the producer's own console setting: see
``mixstyle.sessions.corrections``) is scored against that setting rendered by mixstyle's
console, as ``learn`` learns it: the setting wins over a mix in the same folder.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from dsp.render import render
from mixstyle.errors import MixstyleError, SessionError
from mixstyle.evaluate.metrics import METRICS, automix, metrics, plain_sum
from mixstyle.profile.predict import Profile, predict_song
from mixstyle.profile.store import load_profile
from mixstyle.sessions.corrections import has_setting, load_corrected_song
from mixstyle.sessions.load import Song, load_song, song_folders
from mixstyle.train.features import SongFeatures

# the metrics whose share of the plain sum's error closed is reported (the plain sum is matched in
# loudness, so its loudness error is 0 and has no share)
CLOSED = ("band_error_db", "mrstft", "plr_error_db", "crest_error_db")


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
    out["closed_by_metric"] = {m: 1.0 - out["learned"][m] / max(out["plain_sum"][m], 1e-9)
                               for m in CLOSED}
    out["songs"] = len(per_song)
    return out


def score_songs(model, songs: Sequence[Song], meta: dict | None = None,
                features: Mapping[str, SongFeatures] | None = None) -> dict:
    """Held-out score of a freshly trained network (used by ``learn``); ``features``: song name
    -> the features already measured on its stems (from its record)."""
    prof = Profile(model, meta or {})
    features = features or {}
    per = {s.name: song_scores(s, predict_song(prof, s, features=features.get(s.name)))
           for s in songs}
    return summarise(per)


def format_table(summary: dict, title: str = "") -> str:
    rows = [title] if title else []
    rows.append(f"{'metric':<20}{'learned':>10}{'plain sum':>11}{'automix':>10}")
    for m in METRICS:
        rows.append(f"{m:<20}{summary['learned'][m]:>10.3f}{summary['plain_sum'][m]:>11.3f}"
                    f"{summary['automix'][m]:>10.3f}")
    rows.append(f"closed {100 * summary['closed']:.0f}% of the plain sum's band error over "
                f"{summary['songs']} song(s)")
    by = summary.get("closed_by_metric")
    if by:
        rows.append("share of the plain sum's error closed: " + ", ".join(
            f"{m.replace('_error_db', '')} {by[m]:.2f}" for m in CLOSED if m in by))
    if summary.get("target_is_setting"):
        rows.append("scored against the producer's setting.json (corrected songs): "
                    + ", ".join(summary["target_is_setting"]))
    if summary.get("trained_on"):
        rows.append(f"{len(summary['trained_on'])} of these song(s) were learned by the "
                    f"profile: their scores are not those of new songs")
    for name, why in (summary.get("skipped") or {}).items():
        rows.append(f"skipped {name}: {why}")
    return "\n".join(rows)


def evaluation_songs(sessions, max_seconds: float | None = 30.0
                     ) -> tuple[list[Song], dict[str, str], list[str]]:
    """The songs of SESSIONS to score, the songs skipped (name -> why) and the corrected songs
    (whose target is their ``setting.json`` rendered, not a mix)."""
    songs, skipped, corrected = [], {}, []
    for folder in song_folders(sessions):
        try:
            if has_setting(folder):
                c = load_corrected_song(folder, max_seconds=max_seconds)
                target = render(np.stack([x.audio for x in c.stems]), c.sample_rate,
                                c.setting).audio
                songs.append(Song(c.name, c.folder, c.sample_rate, c.stems, target, None, 0,
                                  c.warnings))
                corrected.append(c.name)
            else:
                songs.append(load_song(folder, max_seconds=max_seconds))
        except MixstyleError as exc:
            skipped[folder.name] = str(exc)
    return songs, skipped, corrected


def evaluate_profile(sessions, profile_dir, progress=None, max_seconds: float = 30.0) -> dict:
    """Score a profile on every song of SESSIONS (songs it was trained on count too: say so;
    corrected songs against their setting; songs that cannot be loaded are named, with why)."""
    profile = load_profile(profile_dir)
    songs, skipped, corrected = evaluation_songs(sessions, max_seconds)
    per = {}
    for k, song in enumerate(songs):
        per[song.name] = song_scores(song, predict_song(profile, song))
        if progress:
            progress("evaluate", k + 1, len(songs))
    if not per:
        why = "; ".join(f"{name}: {reason}" for name, reason in skipped.items())
        raise SessionError(f"{sessions}: no usable songs to evaluate" + (f" ({why})" if why
                                                                          else ""))
    out = summarise(per)
    out["per_song"] = per
    out["trained_on"] = sorted(set(per) & set(profile.meta.get("songs", [])))
    out["target_is_setting"] = corrected
    out["skipped"] = skipped
    return out
