"""Learn the producer's typical master (``learn_master``): from songs that have
``master.<ext>`` next to ``mix.<ext>``, ``fit_master`` per song (``mixstyle.mastering.fit``), then
the median over songs in the table's normalised space, the EQ as the median *curve*, refitted.
Without masters it keeps a neutral bus and the loudness targets of their mixes.
"""

from __future__ import annotations

import math
from typing import Any, Iterable, Mapping

import numpy as np

from dsp.errors import AudioInputError, ParameterError, ProfileError
from dsp.loudness import integrated_loudness, true_peak_dbtp
from dsp.params import MASTER, denormalise_all, neutral, normalise_all, spec
from dsp.validate import check_audio, check_sample_rate
from mixstyle.fit.song import one_thread
from mixstyle.mastering.fit import EQ_NAMES, band_centres, fit_master, fit_master_eq, master_eq_db
from mixstyle.mastering.profile import MasterProfile

EQ_REFERENCE_HZ = 48000.0    # sample rate of the median EQ curve


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
    lufs = [integrated_loudness(check_audio(m, f"mix of {n}", 2), sr) for n, m, _, sr in songs]
    ok = [v for v in lufs if math.isfinite(v)]
    return ok, (float(np.clip(np.median(ok), -70.0, 0.0)) if ok else None)


def fit_song_master(song: Any) -> dict[str, Any] | str | None:
    """``fit_master`` of a Song's mix and master on one thread (the same numbers in any
    process: learn runs it with the song's fit), the reason it could not be fitted, or None
    when the song has no master."""
    if getattr(song, "master", None) is None:
        return None
    return _fit_pair(song.mix, song.master, float(song.sample_rate))


def _fit_pair(mix: np.ndarray, master: np.ndarray, sample_rate: float) -> dict[str, Any] | str:
    """``fit_master`` on one thread, or why the pair could not be fitted."""
    try:
        with one_thread():
            return fit_master(mix, master, sample_rate)
    except AudioInputError as e:   # one unusable master does not stop the others
        return str(e)


def learn_master(items: Iterable[Any], sample_rate: float | None = None,
                 fitted: Mapping[str, dict[str, Any] | str] | None = None) -> dict[str, Any]:
    """The producer's typical master (``master.json`` document) from Songs or (mix, master)
    pairs. Songs without a master only count when none has one (loudness targets only).
    ``fitted``: songs' masters fitted already (``fit_song_master``, by song name: kept in
    their training records); the others are fitted here."""
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
        done = (fitted or {}).get(name)
        if done is None:
            done = _fit_pair(m, y, sr)
        if isinstance(done, str):
            skipped.append(f"{name}: {done}")
        else:
            fits.append(dict(done))
            used.append(song)
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


def learn_master_from_sessions(report_songs: Iterable[Any], records: Iterable[Any] = ()
                               ) -> dict[str, Any] | None:
    """``learn_master`` over loaded sessions (``mixstyle.sessions.load.Song``), with the master
    fits their training records (``mixstyle.train.records.SongRecord``) keep; None if no
    songs."""
    songs = list(report_songs)
    fitted = {r.song: r.master_fit for r in records if r.master_fit is not None}
    return learn_master(songs, fitted=fitted) if songs else None
