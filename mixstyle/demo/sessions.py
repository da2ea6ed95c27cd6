"""Demo sessions: generated songs mixed by a demo producer, in the layout mixstyle learns from.

    root/<song>/stems/*.wav        the dry stems (the same files for every producer)
    root/<song>/mix.wav            the producer's mix
    root/<song>/master.wav         their master of it
    root/<song>/producer_decisions.json   debugging only; learning code must never read it
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from dsp.errors import ParameterError
from mixstyle.io.audio import read_audio, write_audio_atomic, write_text_atomic
from mixstyle.demo.producers import Producer
from mixstyle.demo.roster import PRODUCERS
from mixstyle.demo.songs import make_song
from mixstyle.demo.styles import STYLES
from mixstyle.sessions.roles import role_from_name

DECISIONS_FILE = "producer_decisions.json"


def song_names(n_songs: int, seed: int) -> list[tuple[str, int, str]]:
    """``(song name, song seed, style)`` of each demo song for a session seed.

    Styles are dealt in shuffled rounds so a few songs already cover several styles.
    """
    rng = np.random.default_rng(seed)
    styles: list[str] = []
    while len(styles) < n_songs:
        styles += [str(s) for s in rng.permutation(list(STYLES))]
    out = []
    for i in range(n_songs):
        song_seed = int(seed) * 1000 + i
        out.append((f"{i:02d}_{styles[i]}_{song_seed}", song_seed, styles[i]))
    return out


def _cached_song(cache: Path, name: str, song_seed: int, style: str, seconds: float) -> Path:
    """The song folder in ``cache``, generated unless an identical one is already there."""
    folder = cache / name
    info_path = folder / "source" / "song.json"
    if info_path.is_file():
        try:
            info = json.loads(info_path.read_text())
        except json.JSONDecodeError:
            info = {}
        if (info.get("seed") == song_seed and info.get("style") == style
                and info.get("seconds") == float(seconds)
                and all((folder / "stems" / s["file"]).is_file() for s in info.get("stems", []))):
            return folder
    return make_song(folder, song_seed, seconds, style)


def _link_or_copy(src: Path, dst: Path) -> None:
    """Hard-link a cached stem (30 s of stereo float32 is 10 MB) or copy it across devices."""
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)


def _producer(producer: str | Producer) -> Producer:
    if isinstance(producer, Producer):
        return producer
    if producer not in PRODUCERS:
        raise ParameterError(f"producer {producer!r} is unknown; known producers: "
                             f"{', '.join(PRODUCERS)}")
    return PRODUCERS[producer]


def song_stems(song_dir: str | os.PathLike) -> tuple[list[tuple[str, str, np.ndarray]], float]:
    """A demo song's ``stems/*.wav`` as ``(name, role, audio)`` (role from the name) and their
    sample rate."""
    song = Path(song_dir)
    paths = sorted((song / "stems").glob("*.wav"))
    if not paths:
        raise ParameterError(f"song '{song.name}': no stems in {song / 'stems'}")
    stems, sr = [], 0.0
    for p in paths:
        audio, sr = read_audio(p)
        stems.append((p.stem, role_from_name(p.name), audio))
    return stems, sr


def mix_session(song_dir: str | os.PathLike, producer: str | Producer) -> Path:
    """Mix ``song_dir/stems/*.wav`` as ``producer``; write mix.wav, master.wav and decisions."""
    prod = _producer(producer)
    song = Path(song_dir)
    stems, sr = song_stems(song)
    result = prod.mix(stems, sr, song.name)
    write_audio_atomic(song / "mix.wav", result.mix, sr)
    write_audio_atomic(song / "master.wav", result.master, sr)
    write_text_atomic(song / DECISIONS_FILE, json.dumps(result.decisions, indent=2))
    return song


def make_sessions(root: str | os.PathLike, producer: str | Producer, n_songs: int, seed: int,
                  seconds: float = 30.0, cache_dir: str | os.PathLike | None = None) -> list[Path]:
    """Generate ``n_songs`` songs and write ``producer``'s sessions of them under ``root``.

    With ``cache_dir`` the generated songs are kept there and reused, so two producers given the
    same ``seed``, ``seconds`` and ``cache_dir`` mix exactly the same stems.
    """
    prod = _producer(producer)
    if isinstance(n_songs, bool) or not isinstance(n_songs, int) or not 1 <= n_songs <= 999:
        raise ParameterError(f"n_songs = {n_songs!r} is out of range: allowed 1 .. 999")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ParameterError(f"seed must be a non-negative integer, got {seed!r}")
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    tmp = None if cache_dir is not None else tempfile.TemporaryDirectory(prefix="mixstyle_songs_")
    cache = Path(cache_dir if cache_dir is not None else tmp.name)  # type: ignore[union-attr]
    try:
        folders = []
        for name, song_seed, style in song_names(n_songs, seed):
            source = _cached_song(cache, name, song_seed, style, seconds)
            song = root / name
            (song / "stems").mkdir(parents=True, exist_ok=True)
            for old in (song / "stems").glob("*.wav"):
                old.unlink()
            for wav in sorted((source / "stems").glob("*.wav")):
                _link_or_copy(wav, song / "stems" / wav.name)
            folders.append(mix_session(song, prod))
        return folders
    finally:
        if tmp is not None:
            tmp.cleanup()
