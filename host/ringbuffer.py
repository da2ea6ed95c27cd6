"""Lock-free single-producer/single-consumer rings on preallocated numpy arrays.

Each ring has one writer thread and one reader thread. The writer fills a slot and then bumps its
``head`` counter; the reader uses slots below ``head`` and then bumps its ``tail`` counter. Each
counter has exactly one writer, so no lock is needed: the audio callback never waits for another
thread. Counters grow forever (int64) and are reduced modulo the capacity to index slots.

- ``ChunkRings``: per-track rings of fixed-size audio chunks tagged ``(epoch, seq, pos)``; the
  disk reader fills them, the callback takes the chunk it expects (numba kernel ``gather``).
- ``FrameTap``: per-track rings of frames; the callback copies what each track played, the model
  worker drains it.
- ``RecordQueue``: ``(target, index, value)`` records (parameter changes, transport commands).
"""

from __future__ import annotations

import threading

import numpy as np
from numba import njit

from dsp.errors import HostError


@njit(cache=True)
def _gather(data, epochs, seqs, positions, heads, tails, epoch, seq, out, found, pos_out, late):
    """Copy each track's chunk tagged (epoch, seq) into out[track]; stale chunks are dropped.

    A track whose chunk is not there yet gets silence and found[track] = 0. Returns the number of
    tracks found and the largest file position among them (-1 if none); pos_out[track] receives
    each track's chunk position (or -1); late[track] counts the chunks that were not there.
    """
    n_tracks, slots = epochs.shape
    n_found = 0
    pos_max = -1
    for t in range(n_tracks):
        found[t] = 0
        pos_out[t] = -1
        tail = tails[t]
        head = heads[t]
        while tail < head:
            s = tail % slots
            e = epochs[t, s]
            q = seqs[t, s]
            if e < epoch or (e == epoch and q < seq):
                tail += 1  # stale: from before a seek, or a block we already gave up on
                continue
            if e == epoch and q == seq:
                for c in range(out.shape[1]):
                    for i in range(out.shape[2]):
                        out[t, c, i] = data[t, s, c, i]
                found[t] = 1
                pos_out[t] = positions[t, s]
                pos_max = max(pos_max, positions[t, s])
                n_found += 1
                tail += 1
            break
        tails[t] = tail
        if found[t] == 0:
            late[t] += 1
            for c in range(out.shape[1]):
                for i in range(out.shape[2]):
                    out[t, c, i] = 0.0
    return n_found, pos_max


@njit(cache=True, nogil=True)
def _put_batch(data, epochs, seqs, positions, heads, t, staging, k, epoch, seq0, chunk_pos):
    """Write k consecutive chunks of staging (channels, k * frames) into track t's ring."""
    slots = epochs.shape[1]
    frames = data.shape[3]
    for j in range(k):
        s = (heads[t] + j) % slots
        for c in range(data.shape[2]):
            for i in range(frames):
                data[t, s, c, i] = staging[c, j * frames + i]
        epochs[t, s] = epoch
        seqs[t, s] = seq0 + j
        positions[t, s] = chunk_pos[j]
    heads[t] += k  # publish last


@njit(cache=True)
def _prune(epochs, seqs, heads, tails, epoch, seq):
    """Drop chunks older than (epoch, seq); return how many tracks have (epoch, seq) next."""
    n_tracks, slots = epochs.shape
    n = 0
    for t in range(n_tracks):
        tail = tails[t]
        while tail < heads[t]:
            s = tail % slots
            e = epochs[t, s]
            if e < epoch or (e == epoch and seqs[t, s] < seq):
                tail += 1
                continue
            if e == epoch and seqs[t, s] == seq:
                n += 1
            break
        tails[t] = tail
    return n


class ChunkRings:
    """Per-track SPSC rings of ``frames``-long stereo chunks tagged (epoch, seq, file position).

    Producer (one thread): ``free(t)``, then ``put_batch`` (or ``slot(t)`` + ``put``).
    Consumer (one thread): ``gather(epoch, seq, out)`` and ``prune(epoch, seq)``.
    """

    def __init__(self, n_tracks: int, slots: int, frames: int, channels: int = 2) -> None:
        if n_tracks < 1 or slots < 2 or frames < 1:
            raise HostError(f"ChunkRings needs >= 1 track, >= 2 slots and >= 1 frame, got "
                            f"{n_tracks}, {slots}, {frames}")
        self.frames = frames
        self.slots = slots
        self.data = np.zeros((n_tracks, slots, channels, frames), dtype=np.float32)
        self.epochs = np.full((n_tracks, slots), -1, dtype=np.int64)
        self.seqs = np.zeros((n_tracks, slots), dtype=np.int64)
        self.positions = np.zeros((n_tracks, slots), dtype=np.int64)
        self.heads = np.zeros(n_tracks, dtype=np.int64)
        self.tails = np.zeros(n_tracks, dtype=np.int64)
        self.found = np.zeros(n_tracks, dtype=np.int64)
        self.pos_out = np.zeros(n_tracks, dtype=np.int64)
        self.late = np.zeros(n_tracks, dtype=np.int64)

    @property
    def n_tracks(self) -> int:
        return int(self.heads.shape[0])

    # producer side
    def free(self, track: int) -> int:
        return self.slots - int(self.heads[track] - self.tails[track])

    def slot(self, track: int) -> np.ndarray:
        """The (channels, frames) array to fill next for ``track`` (valid while free() > 0)."""
        return self.data[track, int(self.heads[track]) % self.slots]

    def put(self, track: int, epoch: int, seq: int, pos: int) -> None:
        s = int(self.heads[track]) % self.slots
        self.epochs[track, s] = epoch
        self.seqs[track, s] = seq
        self.positions[track, s] = pos
        self.heads[track] += 1  # publish last

    def put_batch(self, track: int, staging: np.ndarray, k: int, epoch: int, seq0: int,
                  chunk_pos: np.ndarray) -> None:
        """Write k chunks from staging (channels, >= k * frames); caller checked free() >= k."""
        _put_batch(self.data, self.epochs, self.seqs, self.positions, self.heads, track, staging,
                   k, epoch, seq0, chunk_pos)

    # consumer side
    def gather(self, epoch: int, seq: int, out: np.ndarray) -> tuple[int, int]:
        """Fill out (n_tracks, channels, frames) with chunk (epoch, seq) of every track.

        Returns (tracks found, file position of the chunk or -1); missing tracks get silence.
        """
        return _gather(self.data, self.epochs, self.seqs, self.positions, self.heads,
                       self.tails, epoch, seq, out, self.found, self.pos_out, self.late)

    def prune(self, epoch: int, seq: int) -> int:
        """Consumer: drop stale chunks; returns how many tracks have chunk (epoch, seq) ready."""
        return int(_prune(self.epochs, self.seqs, self.heads, self.tails, epoch, seq))


@njit(cache=True)
def _tap_write(buf, head, tail, block):
    """Append one block (tracks, channels, frames) as the next slot; False when full."""
    slots = buf.shape[0]
    if head[0] - tail[0] >= slots:
        return False
    dst = buf[head[0] % slots]
    for t in range(dst.shape[0]):
        for c in range(dst.shape[1]):
            for i in range(dst.shape[2]):
                dst[t, c, i] = block[t, c, i]
    head[0] += 1
    return True


class FrameTap:
    """What each track played, handed from the callback (producer) to a worker (consumer).

    Slots hold whole blocks (one contiguous copy per callback); ``read`` joins them in time.
    """

    def __init__(self, n_tracks: int, capacity_frames: int, block_frames: int,
                 channels: int = 2) -> None:
        slots = max(2, -(-capacity_frames // block_frames))
        self.buf = np.zeros((slots, n_tracks, channels, block_frames), dtype=np.float32)
        self.head = np.zeros(1, dtype=np.int64)
        self.tail = np.zeros(1, dtype=np.int64)
        self.dropped_blocks = np.zeros(1, dtype=np.int64)

    @property
    def shape(self) -> tuple[int, int]:
        """(tracks, channels)."""
        return int(self.buf.shape[1]), int(self.buf.shape[2])

    def write(self, block: np.ndarray) -> None:
        """Callback side: never blocks; a full ring drops the block and counts it."""
        if not _tap_write(self.buf, self.head, self.tail, block):
            self.dropped_blocks[0] += 1

    def read(self) -> np.ndarray:
        """Worker side: a new (n_tracks, channels, k) array with everything written so far."""
        head, tail = int(self.head[0]), int(self.tail[0])
        idx = np.arange(tail, head) % self.buf.shape[0]
        got = self.buf[idx]                                  # (blocks, tracks, channels, frames)
        self.tail[0] = head
        n, c, f = got.shape[1], got.shape[2], got.shape[3]
        return np.ascontiguousarray(got.transpose(1, 2, 0, 3).reshape(n, c, len(idx) * f))


class RecordQueue:
    """A ring of (target, index, value) records; the callback drains it between blocks.

    Several control threads may push: they serialise among themselves on a producer-side lock,
    which the consumer (the audio callback) never takes. A full queue refuses the record
    (``push`` returns False) rather than blocking anyone.
    """

    def __init__(self, capacity: int = 4096) -> None:
        self.targets = np.zeros(capacity, dtype=np.int64)
        self.indices = np.zeros(capacity, dtype=np.int64)
        self.values = np.zeros(capacity, dtype=np.float64)
        self.head = np.zeros(1, dtype=np.int64)
        self.tail = np.zeros(1, dtype=np.int64)
        self.refused = 0
        self._producers = threading.Lock()

    @property
    def capacity(self) -> int:
        return int(self.values.shape[0])

    def push(self, target: int, index: int, value: float) -> bool:
        with self._producers:
            head = int(self.head[0])
            if head - int(self.tail[0]) >= self.capacity:
                self.refused += 1
                return False
            s = head % self.capacity
            self.targets[s] = target
            self.indices[s] = index
            self.values[s] = value
            self.head[0] = head + 1  # publish last
            return True

    def pending(self) -> int:
        return int(self.head[0] - self.tail[0])

    def pop_into(self, rec: np.ndarray) -> bool:
        """Consumer: copy the oldest record into rec (float64[3]) and drop it; False if empty."""
        tail = int(self.tail[0])
        if tail >= int(self.head[0]):
            return False
        s = tail % self.capacity
        rec[0] = self.targets[s]
        rec[1] = self.indices[s]
        rec[2] = self.values[s]
        self.tail[0] = tail + 1
        return True
