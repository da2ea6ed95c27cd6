"""Songs handed to learn's second process through mapped files (mixstyle.sessions.handoff):
what arrives in a real spawned process is the same song to the last bit, what travels through
the pipe is small, and nothing the other process does reaches the files or this process."""

from __future__ import annotations

import hashlib
import multiprocessing
import pickle
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from mixstyle.sessions.handoff import park, unpark
from mixstyle.sessions.load import Song, Stem

SR = 44100.0


def _song(name: str, seed: int, seconds: float, with_master: bool) -> Song:
    rng = np.random.default_rng(seed)
    n = int(seconds * SR)
    stems = tuple(Stem(f"s{i}", Path(f"/x/{name}/s{i}.wav"), role,
                       rng.standard_normal((2, n)).astype(np.float32))
                  for i, role in enumerate(("kick", "bass", "vocal")))
    mix = sum(s.audio for s in stems).astype(np.float32)
    master = (0.5 * mix).astype(np.float32) if with_master else None
    return Song(name, Path(f"/x/{name}"), SR, stems, mix, master, 17, (), 3.5)


def _digest(songs: list[Song]) -> list[tuple]:
    def h(a: np.ndarray | None) -> tuple | None:
        if a is None:
            return None
        return (a.shape, str(a.dtype), hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest())
    return [(s.name, str(s.folder), s.sample_rate, s.offset_samples, s.start_seconds,
             [(st.name, str(st.path), st.role, h(st.audio)) for st in s.stems], h(s.mix),
             h(s.master)) for s in songs]


def _in_other_process(parked: list) -> list[tuple]:
    songs = unpark(parked)
    out = _digest(songs)
    songs[0].mix[:] = 0.0   # copy-on-write: stays in this process
    songs[0].stems[0].audio[0, :10] = 1.0
    return out


def test_songs_arrive_whole_in_a_spawned_process_and_the_pipe_carries_no_audio(tmp_path):
    songs = [_song("a", 1, 2.0, True), _song("b", 2, 3.0, False)]
    # two calls into one folder, as learn parks its training and its held-out songs
    parked = park(songs[:1], tmp_path) + park(songs[1:], tmp_path)
    audio_bytes = sum(st.audio.nbytes for s in songs for st in s.stems) + \
        sum(s.mix.nbytes for s in songs)
    assert len(pickle.dumps(parked)) < audio_bytes / 100   # ~3 MB of audio, a few kB sent
    files = {p: p.read_bytes() for p in tmp_path.iterdir()}
    assert len(files) == 3 + 1 + 1 + 3 + 1   # stems, mix and master of a; stems and mix of b
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        there = pool.submit(_in_other_process, parked).result()
    assert there == _digest(songs)
    assert {p: p.read_bytes() for p in tmp_path.iterdir()} == files   # its writes stayed there
    assert _digest(unpark(parked)) == _digest(songs)
