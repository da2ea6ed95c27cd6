"""Songs handed to another process on this machine through files, not through a pickle.

learn scores its held-out model in a second process while it trains the final one. Pickled, the
songs it needs (every training and held-out song's stems and mix) travel whole through a pipe:
the pickle in this process and the copy in the other doubled the audio in memory (1.6 GB of
pickle for 20 songs of 30 s; a studio's few hundred songs would not fit). ``park`` writes each
array once to a ``.npy`` file in a folder the caller owns and returns small ``Parked`` records
to send instead; ``unpark`` in the other process maps those files (copy-on-write: a write stays
private to that process and never reaches the file), so the pages are the operating system's
file cache, shared and read as they are needed. The songs come back equal to the last bit.
"""

from __future__ import annotations

import dataclasses
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mixstyle.sessions.load import Song

_EMPTY = np.zeros((2, 0), np.float32)   # stands in for an array in a parked song


@dataclass(frozen=True)
class Parked:
    """A song without its audio (``song``'s arrays are empty) and where its arrays are:
    ``stems[i]`` for stem i, ``mix``, ``master`` (None where the song has none)."""

    song: Song
    stems: tuple[str, ...]
    mix: str
    master: str | None


def park(songs: list[Song], folder: Path) -> list[Parked]:
    """Write every array of ``songs`` into ``folder`` (which must exist and outlive the
    unparked songs); the records to hand over instead of the songs."""
    out = []
    for song in songs:
        tag = uuid.uuid4().hex   # calls may share a folder: a file is never written twice

        def put(name: str, a: np.ndarray) -> str:
            path = folder / f"{tag}_{name}.npy"
            with open(path, "xb") as f:
                np.save(f, a, allow_pickle=False)
            return str(path)

        stems = tuple(put(f"stem{i:03d}", st.audio) for i, st in enumerate(song.stems))
        mix = put("mix", song.mix)
        master = put("master", song.master) if song.master is not None else None
        bare = dataclasses.replace(
            song, stems=tuple(dataclasses.replace(st, audio=_EMPTY) for st in song.stems),
            mix=_EMPTY, master=None)
        out.append(Parked(bare, stems, mix, master))
    return out


def _mapped(path: str) -> np.ndarray:
    # a plain ndarray view of the mapped file (the view keeps the mapping alive)
    return np.asarray(np.load(path, mmap_mode="c", allow_pickle=False))


def unpark(parked: list[Parked]) -> list[Song]:
    """The songs ``park`` wrote, their arrays mapped from its files."""
    return [dataclasses.replace(
        p.song, stems=tuple(dataclasses.replace(st, audio=_mapped(f))
                            for st, f in zip(p.song.stems, p.stems)),
        mix=_mapped(p.mix), master=_mapped(p.master) if p.master is not None else None)
        for p in parked]
