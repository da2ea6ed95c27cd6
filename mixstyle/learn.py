"""``mixstyle learn``: sessions -> fits -> song records -> trained network -> profile folder.

Learning on an existing profile keeps its song records, fits only songs that are new or whose
files changed (by SHA-256), and retrains the network on all of them. A song folder with the
producer's own ``setting.json`` (a correction) is learned from that setting, not fitted: the
network learns the style from the fitted songs and the corrections teach offsets on top of it
(``mixstyle.train.corrections``); corrections are never held out (the held-out score compares
with real mixes), and the level habit and the mastering profile are read off the songs with a
mix only. The per-song fits run in local processes or, with ``scheduler``, on an existing Dask
cluster (``mixstyle.fit.pool``); the training always runs here, the held-out model beside it in
a second process.
"""

from __future__ import annotations

import functools
import shutil
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Callable, Mapping

import numpy as np
import torch
from threadpoolctl import threadpool_limits

from dsp.kernels import state
from mixstyle.errors import ProfileError
from mixstyle.evaluate.held_out import baseline_scores, held_out_score, with_baselines
from mixstyle.fit.pool import cluster_map, one_process_pool, pool_map, processes
from mixstyle.fit.song import FitConfig
from mixstyle.io.cluster import check_address
from mixstyle.mastering.learn import fit_song_master, learn_master_from_sessions
from mixstyle.mastering.profile import save_master_profile
from mixstyle.profile.card import card_markdown, model_card
from mixstyle.profile.ceiling import level_meta
from mixstyle.profile.store import save_profile
from mixstyle.sessions.handoff import Parked, park, unpark
from mixstyle.sessions.load import Song, song_folders
from mixstyle.train.config import LearnConfig
from mixstyle.train.corrections import correction_offsets, network_records
from mixstyle.train.loop import TrainConfig, train
from mixstyle.train.model import count_parameters
from mixstyle.train.records import SongRecord, load_records, record_features, save_record
from mixstyle.train.songs import AnySong, Loaded, load_folder, staged_excerpt

Progress = Callable[[str, int, int], None]


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
        scheduler = check_address(scheduler)
        if config.jobs:
            raise ProfileError(f"LearnConfig.jobs = {config.jobs} sets local processes; with a "
                               f"scheduler the cluster's workers run the fits: give one or the "
                               f"other")
    torch.manual_seed(config.train.seed)
    folders = song_folders(sessions)
    records = {r.song: r for r in load_records(out / "songs", skip_stale=True)}
    loaded: dict[str, AnySong] = {}
    count = {"done": 0}

    def finished(folder: Path, result: Loaded) -> None:
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
    work = functools.partial(load_and_fit_folder, max_seconds=config.max_seconds,
                             config=config.fit, known=known)
    kernels = {"learn": state()}   # dsp/kernels.py: pool processes inherit this process's
    if scheduler is not None:
        kernels["fit_workers"] = cluster_map(work, folders, scheduler, finished)
        other = sorted(w for w, s in kernels["fit_workers"].items()
                       if (s["level"], s["pinned"]) != (kernels["learn"]["level"],
                                                        kernels["learn"]["pinned"]))
        if other:
            log(f"warning: {len(other)} of the cluster's workers run other numeric kernels than "
                f"this learn ({kernels['learn']['level']}): their fits may round differently "
                f"(start them after `eval $(python -m dsp.kernels)`): {', '.join(other)}")
    else:
        pool_map(work, folders, config.jobs, finished)
    all_songs = [loaded[f.name] for f in folders if f.name in loaded]
    if not all_songs:
        raise ProfileError(f"{sessions}: no usable songs (expected SESSIONS/<song>/stems/*.wav "
                           f"and SESSIONS/<song>/mix.wav or SESSIONS/<song>/setting.json)")
    # the songs with a mix: the level habit, the ceiling calibration and the master read theirs
    report_songs = [s for s in all_songs if isinstance(s, Song)]
    names = sorted(records)
    # the network learns the style from the fitted songs; the corrections teach offsets on top
    # (mixstyle.train.corrections); only without any fitted song is it trained on them
    net_names = [r.song for r in network_records([records[n] for n in names])]
    audio = {song.name: staged_excerpt(song, records[song.name], config.train.audio_seconds)
             for song in all_songs if song.name in net_names}
    features = {n: record_features(records[n]) for n in names}
    mixed_names = [n for n in names if records[n].source != "correction"]
    train_names, held = split_holdout(mixed_names, config.holdout_fraction, config.train.seed)
    train_names = [n for n in net_names if n not in held]
    by_name = {s.name: s for s in report_songs}
    held_score, pending, pool, handoff = None, None, None, None
    threads = torch.get_num_threads()
    try:
        if held:
            # the held-out model trains on its own core while this process trains the final one
            held_records = [records[n] for n in train_names]
            held_audio = {n: audio[n] for n in train_names if n in audio}
            seen = [by_name[n] for n in train_names if n in by_name]
            unseen = [by_name[n] for n in held if n in by_name]
            if processes(config.jobs) > 1:
                # the songs go through files the other process maps, not through a pickle
                # (mixstyle.sessions.handoff: the audio is not doubled in memory)
                handoff = Path(tempfile.mkdtemp(prefix="mixstyle_learn_"))
                parked = park(seen, handoff), park(unseen, handoff)
                pool = one_process_pool()
                pending = pool.submit(_held_out_parked, held_records, config.train, held_audio,
                                      *parked, features)
            else:
                held_score = held_out_score(held_records, config.train, held_audio, seen,
                                            unseen, features, progress=progress)
        if pool is not None:
            torch.set_num_threads(1)   # the other core is the held-out model's
        model, history = train([records[n] for n in net_names], config.train, audio,
                               progress=progress)
        # what needs only the final model, while the held-out model is still being scored
        # (at the usual thread count: the same numbers with or without a held-out process)
        torch.set_num_threads(threads)
        level = level_meta(model, [records[n] for n in names],
                           [by_name[n] for n in names if n in by_name], features)
        corrected_stems = {s.name: (np.stack([x.audio for x in s.stems]), s.sample_rate)
                           for s in all_songs if records[s.name].source == "correction"}
        offsets = correction_offsets(model, [records[n] for n in names], corrected_stems)
        master = learn_master_from_sessions(report_songs, [records[n] for n in names])
        if pending is not None:
            # the baselines of the held-out songs need no model: measured here, not on the
            # held-out process's core (its scoring is the last thing learn waits for), on one
            # thread as there (the MR-STFT's sums round by the thread count)
            torch.set_num_threads(1)
            with threadpool_limits(1):
                baselines = baseline_scores(unseen)
            torch.set_num_threads(threads)
            held_score = with_baselines(pending.result(), baselines)
    finally:
        torch.set_num_threads(threads)
        if pool is not None:
            pool.shutdown(cancel_futures=True)
        if handoff is not None:
            shutil.rmtree(handoff, ignore_errors=True)
    card = model_card(records, names, held, held_score, config, count_parameters(model),
                      scheduler, level["loudness_habit"], offsets, kernels)
    meta = {"created": card["created"], "songs": names, "seed": config.train.seed,
            "learn_config": asdict(config), **level, "corrections": offsets,
            "style_strength": float((held_score or {}).get("style_strength", 1.0)),
            "balance_strength": float((held_score or {}).get("balance_strength", 1.0)),
            "pan_strength": float((held_score or {}).get("pan_strength",
                                                         (held_score or {}).get("style_strength",
                                                                                1.0))),
            "loudness_source": str((held_score or {}).get("loudness_source", "network"))}
    save_profile(out, model, meta, card, card_markdown(card))
    if master is not None:
        save_master_profile(out, master)
    return card


def load_and_fit_folder(folder: Path, max_seconds: float, config: FitConfig,
                        known: Mapping[str, list[str]]) -> Loaded:
    """The pool's job: ``load_folder``, and a song fitted anew gets its master fitted too
    (``fit_song_master``, kept in its record: learning again fits neither again)."""
    result = load_folder(folder, max_seconds, config, known)
    if result.record is not None and isinstance(result.song, Song):
        result.record.master_fit = fit_song_master(result.song)
    return result


def _held_out_parked(records: list[SongRecord], config: TrainConfig, audio: dict,
                     train_songs: list[Parked], held_songs: list[Parked],
                     features: dict) -> dict:
    """``held_out_score`` in learn's second process, on songs handed over by ``park``."""
    return held_out_score(records, config, audio, unpark(train_songs), unpark(held_songs),
                          features, baselines=False)
