"""``mixstyle learn``: sessions -> fits -> song records -> trained network -> profile folder.

Learning on an existing profile keeps its song records, fits only songs that are new or whose
files changed (by SHA-256), and retrains the network on all of them. The per-song fits run in
local processes or, with ``scheduler``, on an existing Dask cluster (``mixstyle.cluster``); the
training always runs here.
"""

from __future__ import annotations

import datetime as _dt
import functools
import math
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Mapping

import numpy as np
import torch
from threadpoolctl import threadpool_limits

from dsp.loudness import integrated_loudness
from dsp.render import render
from dsp.validate import check_range
from mixstyle.audio_io import audio_info
from mixstyle.balance import strip_loudness
from mixstyle.dataset import (SongRecord, SourceFile, load_records, make_record, record_features,
                              save_record, sha256_file)
from mixstyle.errors import MixstyleError, ProfileError
from mixstyle.evaluate import predict_song, score_songs
from mixstyle.features import SongFeatures
from mixstyle.fit import FitConfig, choose_excerpt, fit_mix
from mixstyle.mastering import learn_master_from_sessions, save_master_profile
from mixstyle.model import count_parameters
from mixstyle.profile import Profile, save_profile
from mixstyle.sessions import Song, load_song, song_folders
from mixstyle.train import SongAudio, TrainConfig, train

Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class LearnConfig:
    fit: FitConfig = FitConfig()
    train: TrainConfig = TrainConfig()
    max_seconds: float = 30.0      # of each song used (loudest region)
    holdout_fraction: float = 0.2  # songs kept out for the held-out score (min 1 when >= 4 songs)
    jobs: int = 0                  # processes for the per-song fits (0 = one per core)

    def __post_init__(self) -> None:
        if isinstance(self.jobs, bool) or not isinstance(self.jobs, int) or self.jobs < 0:
            raise ProfileError(f"LearnConfig.jobs = {self.jobs!r}: must be an integer >= 0 "
                               f"(0 = one process per core)")
        check_range("LearnConfig.max_seconds", self.max_seconds, 0.1, 86400.0, "s")


def _song_files(song: Song) -> list[SourceFile]:
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
    offsets = np.where(np.isfinite(whole) & np.isfinite(part), whole - part, 0.0)
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
                       files if files is not None else _song_files(song))


@dataclass(frozen=True)
class _Loaded:
    """What a worker sends back for one song folder: the song, its new record (None when the
    old one is still current) or the reason the song could not be used."""
    name: str
    song: Song | None = None
    record: SongRecord | None = None
    error: str | None = None


def _load_and_fit(folder: Path, max_seconds: float, config: FitConfig,
                  old_hashes: list[str] | None) -> _Loaded:
    """Load, check and hash one song folder; fit it unless its files are those of
    ``old_hashes`` (the record already made from them)."""
    try:
        song = load_song(folder, max_seconds=max_seconds)
    except MixstyleError as exc:
        return _Loaded(folder.name, error=str(exc))
    files = _song_files(song)
    if old_hashes is not None and [f.sha256 for f in files] == old_hashes:
        return _Loaded(song.name, song)
    return _Loaded(song.name, song, fit_song(song, config, files))


def _load_folder(folder: Path, max_seconds: float, config: FitConfig,
                 known: Mapping[str, list[str]]) -> _Loaded:
    return _load_and_fit(folder, max_seconds, config, known.get(folder.name))


def _fit_worker_init() -> None:
    """A worker process uses one core: the pool supplies the parallelism. Without the BLAS
    limit each worker's numpy would start a thread per core, and two workers' threads fought
    over two cores (the fits took twice as long as one fit alone)."""
    torch.set_num_threads(1)
    threadpool_limits(1)


def _processes(jobs: int) -> int:
    """``jobs`` as a process count: 0 means one per core."""
    return jobs or os.cpu_count() or 1


def _cluster_map(work: Callable, items: list, scheduler: str, done: Callable) -> None:
    """``done(item, work(item))`` for every item, ``work`` running on the Dask cluster at
    ``scheduler``. fit_mix keeps each fit to one BLAS/torch thread, so a worker's record equals
    the local pool's; a worker that dies mid-fit has its songs fitted again by another."""
    from mixstyle.cluster import connect, map_unordered
    client = connect(scheduler)
    try:
        for item, fut in map_unordered(client, work, items):
            try:
                result = fut.result()
            except Exception as e:  # the task itself failed, or it killed its workers
                raise MixstyleError(f"'{item}': the fit failed on the Dask cluster at "
                                    f"{scheduler}: {type(e).__name__}: {e}") from e
            done(item, result)
    finally:
        client.close()


def _pool_map(work: Callable, items: list, jobs: int, done: Callable) -> None:
    """``done(item, work(item))`` for every item, in this process as each finishes; ``jobs``
    processes at a time (0 = one per core), run here when one would do."""
    jobs = min(_processes(jobs), len(items))
    if jobs <= 1 or len(items) < 3:  # a pool's start-up costs more than it saves
        for item in items:
            done(item, work(item))
        return
    ctx = multiprocessing.get_context("spawn")  # never fork a process that holds torch threads
    with ProcessPoolExecutor(jobs, mp_context=ctx, initializer=_fit_worker_init) as pool:
        futures = {pool.submit(work, item): item for item in items}
        for fut in as_completed(futures):
            done(futures[fut], fut.result())


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

    _pool_map(functools.partial(fit_song, config=config), songs, jobs, finished)
    return out


def held_out_score(records: list[SongRecord], config: TrainConfig,
                   audio: dict[str, SongAudio], train_songs: list[Song], held_songs: list[Song],
                   features: dict[str, SongFeatures], progress: Progress | None = None) -> dict:
    """Train on ``records`` only and score the songs kept out (their mixes never seen)."""
    model, _ = train(records, config, audio, progress=progress)
    offset = calibrate_ceiling(model, train_songs, features)
    return score_songs(model, held_songs, {"ceiling_offset_db": offset}, features)


CALIBRATE_MIN_SONGS = 3


def calibrate_ceiling(model, songs: list[Song],
                      features: Mapping[str, SongFeatures] | None = None) -> float:
    """How much lower (dB) the limiter ceiling must sit for this console's mixes to be as loud
    as the producer's where the peak decided the level.

    A producer who normalises to a peak makes a mix whose loudness is its peak minus its crest
    factor, and our renders are not exactly as peaky as theirs (other compressors, other
    transients). Each training song is mixed by the trained network; where the render stopped
    at the ceiling, the loudness difference to the producer's mix is noted; the median is the
    offset (0 when fewer than three songs were peak-bound). ``features``: song name -> the
    features already measured on its stems.
    """
    prof = Profile(folder=None, model=model, meta={})  # type: ignore[arg-type]
    features = features or {}
    diffs = []
    for song in songs:
        setting = predict_song(prof, song, features=features.get(song.name))
        target = setting.master.get("target_lufs")
        if target is None:
            continue
        stems = np.stack([s.audio for s in song.stems])
        got = render(stems, song.sample_rate, setting).loudness_lufs
        theirs = integrated_loudness(song.mix, song.sample_rate)
        if math.isfinite(got) and math.isfinite(theirs) and got < target - 0.05:
            diffs.append(theirs - got)
    if len(diffs) < CALIBRATE_MIN_SONGS:
        return 0.0
    return round(float(np.clip(np.median(diffs), -6.0, 3.0)), 3)


def split_holdout(names: list[str], fraction: float, seed: int) -> tuple[list[str], list[str]]:
    if len(names) < 4 or fraction <= 0:
        return list(names), []
    rng = np.random.default_rng(seed)
    k = max(1, int(round(fraction * len(names))))
    held = sorted(rng.choice(sorted(names), size=k, replace=False).tolist())
    return [n for n in names if n not in held], held


def learn(sessions: Path, out: Path, config: LearnConfig = LearnConfig(),
          progress: Progress | None = None, log: Callable[[str], None] = print,
          scheduler: str | None = None) -> dict:
    """Run the whole pipeline; returns the model card dict. ``scheduler``: the address of a
    Dask scheduler whose workers run the per-song fits (they must see ``sessions`` at the same
    path); the records are those the local processes would make."""
    if scheduler is not None:
        from mixstyle.cluster import check_address
        scheduler = check_address(scheduler)
        if config.jobs:
            raise ProfileError(f"LearnConfig.jobs = {config.jobs} sets local processes; with a "
                               f"scheduler the cluster's workers run the fits: give one or the "
                               f"other")
    torch.manual_seed(config.train.seed)
    folders = song_folders(sessions)
    records = {r.song: r for r in load_records(out / "songs", skip_stale=True)}
    loaded: dict[str, Song] = {}
    count = {"done": 0}

    def finished(folder: Path, result: _Loaded) -> None:
        # songs load, hash and fit in the pool; a stopped learn keeps the fits it finished
        if result.error is not None:
            log(f"skipped song {folder.name!r}: {result.error}")
        else:
            loaded[result.name] = result.song   # type: ignore[assignment]
            for issue in result.song.warnings:  # type: ignore[union-attr]
                log(f"warning: {issue}")
            if result.record is not None:
                records[result.name] = result.record
                save_record(out / "songs", result.record)
        count["done"] += 1
        if progress:
            progress("fit", count["done"], len(folders))

    known = {name: [f.sha256 for f in r.files] for name, r in records.items()}
    work = functools.partial(_load_folder, max_seconds=config.max_seconds, config=config.fit,
                             known=known)
    if scheduler is not None:
        _cluster_map(work, folders, scheduler, finished)
    else:
        _pool_map(work, folders, config.jobs, finished)
    report_songs = [loaded[f.name] for f in folders if f.name in loaded]
    if not report_songs:
        raise ProfileError(f"{sessions}: no usable songs (expected SESSIONS/<song>/stems/*.wav "
                           f"and SESSIONS/<song>/mix.wav)")
    audio = {song.name: staged_excerpt(song, records[song.name], config.train.audio_seconds)
             for song in report_songs}
    names = sorted(records)
    features = {n: record_features(records[n]) for n in names}
    train_names, held = split_holdout(names, config.holdout_fraction, config.train.seed)
    by_name = {s.name: s for s in report_songs}
    held_score, pending, pool = None, None, None
    if held:
        # the held-out model trains on its own core while this process trains the final one
        args = ([records[n] for n in train_names], config.train,
                {n: audio[n] for n in train_names if n in audio},
                [by_name[n] for n in train_names if n in by_name],
                [by_name[n] for n in held if n in by_name], features)
        if _processes(config.jobs) > 1:
            pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"),
                                       initializer=_fit_worker_init)
            pending = pool.submit(held_out_score, *args)
        else:
            held_score = held_out_score(*args, progress=progress)
    threads = torch.get_num_threads()
    try:
        if pool is not None:
            torch.set_num_threads(1)   # the other core is the held-out model's
        model, history = train([records[n] for n in names], config.train, audio,
                               progress=progress)
        if pending is not None:
            held_score = pending.result()
    finally:
        torch.set_num_threads(threads)
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    card = model_card(records, names, held, held_score, config, count_parameters(model),
                      scheduler)
    meta = {"created": card["created"], "songs": names, "seed": config.train.seed,
            "learn_config": asdict(config),
            "ceiling_offset_db": calibrate_ceiling(model, [by_name[n] for n in names
                                                           if n in by_name], features)}
    save_profile(out, model, meta, card, card_markdown(card))
    master = learn_master_from_sessions(report_songs)
    if master is not None:
        save_master_profile(out, master)
    return card


def model_card(records: dict[str, SongRecord], names: list[str], held: list[str],
               held_score: dict | None, config: LearnConfig, n_params: int,
               scheduler: str | None = None) -> dict:
    privacy = "trained only on the files listed here, locally; no data left this machine" \
        if scheduler is None else \
        (f"trained only on the files listed here; the song fits of this run were made on the "
         f"Dask cluster at {scheduler} (its workers read these files), the training here")
    return {
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "trained_on": [{"song": n, "tracks": [
            {"name": t, "role": r} for t, r in zip(records[n].track_names, records[n].roles)],
            "files": [asdict(f) for f in records[n].files],
            "fit_quality": records[n].quality} for n in names],
        "held_out_songs": held,
        "held_out_score": held_score,
        "model_parameters": n_params,
        "seed": config.train.seed,
        "epochs": config.train.epochs,
        "audio_epochs": config.train.audio_epochs,
        "average_passes": config.train.average_passes,
        "privacy": privacy,
    }


def card_markdown(card: dict) -> str:
    lines = ["# mixstyle profile: model card", "",
             f"Created {card['created']}. {card['model_parameters']:,} network parameters, "
             f"seed {card['seed']}.", "", card["privacy"] + ".", "",
             "## Training songs and fit quality", "",
             "Fit quality: how well the recovered console setting reproduces the producer's mix "
             "on the fitted excerpt (error in dB re the mix, band error in dB).", "",
             "| song | tracks | fit error (dB) | band error (dB) |", "|---|---|---|---|"]
    for s in card["trained_on"]:
        q = s["fit_quality"]
        lines.append(f"| {s['song']} | {len(s['tracks'])} | {q.get('error_db')} | "
                     f"{q.get('band_error_db')} |")
    lines += ["", "## Held-out score", ""]
    hs = card["held_out_score"]
    if hs:
        lines.append(f"Songs kept out of training: {', '.join(card['held_out_songs'])}.")
        lines.append("")
        lines.append("| metric | learned | plain sum |")
        lines.append("|---|---|---|")
        for k, v in hs["learned"].items():
            lines.append(f"| {k} | {v:.3f} | {hs['plain_sum'][k]:.3f} |")
    else:
        lines.append("Too few songs for a held-out score (needs at least 4).")
    lines += ["", "## Files", "", "| file | SHA-256 | seconds |", "|---|---|---|"]
    for s in card["trained_on"]:
        for f in s["files"]:
            lines.append(f"| {f['path']} | `{f['sha256'][:16]}…` | {f['seconds']} |")
    return "\n".join(lines) + "\n"
