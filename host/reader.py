"""The disk reader thread: reads every track ahead of the playhead into its ChunkRings.

It owns the files (pedalboard AudioFile, resampled to the engine rate when needed), the read
position and the loop region. Seeks and loop changes arrive as commands; each starts a new
*epoch*: chunks are tagged (epoch, seq) so the callback drops whatever was read before the seek.
The callback publishes the (epoch, seq) it is playing; a reader that fell behind skips ahead
instead of reading blocks nobody will play.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from dsp.errors import AudioInputError, HostError
from host.ringbuffer import ChunkRings, RecordQueue

# shared int64 state between the reader and the callback: one writer per field
EPOCH = 0        # reader: epoch of the newest seek
PLAY_EPOCH = 1   # callback: epoch it plays
PLAY_SEQ = 2     # callback: next seq it wants
POS = 3          # callback: file position (frames) of the block it played last
STATE_FIELDS = 4

CMD_SEEK = 1
CMD_LOOP = 2
CMD_CLEAR_LOOP = 3


@dataclass(frozen=True)
class TrackSource:
    """A track: a file ``path`` or in-memory ``audio`` (1 or 2, n) float32 at the engine rate."""

    name: str
    path: str | None = None
    audio: np.ndarray | None = field(default=None, repr=False, compare=False)
    role: str = "other"

    def __post_init__(self) -> None:
        if (self.path is None) == (self.audio is None):
            raise HostError(f"track {self.name!r}: give exactly one of path and audio")


class OpenedTrack:
    """A track open for reading: fills (2, n) windows at any position, zeros past its end."""

    def __init__(self, src: TrackSource, sample_rate: float) -> None:
        self.name = src.name
        self.file: Any = None
        if src.audio is not None:
            a = np.asarray(src.audio, dtype=np.float32)
            if a.ndim != 2 or a.shape[0] not in (1, 2):
                raise AudioInputError(f"track {src.name!r}: audio must be (1 or 2, samples), "
                                      f"got shape {a.shape}")
            self.audio: np.ndarray | None = a
            self.frames = a.shape[1]
            self.channels = a.shape[0]
            return
        from pedalboard.io import AudioFile
        path = str(src.path)
        if not os.path.isfile(path):
            raise AudioInputError(f"stem {os.path.basename(path)!r} of track {src.name!r}: "
                                  f"file not found ({path})")
        try:
            f = AudioFile(path)
        except Exception as e:  # noqa: BLE001 - decoder errors come in many types
            raise AudioInputError(f"stem {os.path.basename(path)!r} of track {src.name!r}: "
                                  f"cannot decode ({e})") from None
        if f.num_channels not in (1, 2):
            f.close()
            raise AudioInputError(f"stem {os.path.basename(path)!r} of track {src.name!r} has "
                                  f"{f.num_channels} channels; allowed 1 (mono) or 2 (stereo)")
        if abs(f.samplerate - sample_rate) > 1e-6:
            f = f.resampled_to(float(sample_rate))
        self.file = f
        self.audio = None
        self.frames = int(f.frames)
        self.channels = int(f.num_channels)

    def read_into(self, pos: int, n: int, out: np.ndarray) -> None:
        """out[:, :n] = frames pos..pos+n (mono duplicated; zeros past the end)."""
        take = max(0, min(n, self.frames - pos))
        if take < n:
            out[:, take:n] = 0.0
        if take == 0:
            return
        if self.audio is not None:
            seg = self.audio[:, pos:pos + take]
        else:
            if self.file.tell() != pos:
                self.file.seek(pos)
            seg = self.file.read(take)
            take = seg.shape[1]
            if take < n:
                out[:, take:n] = 0.0
        out[0, :take] = seg[0]
        out[1, :take] = seg[-1]

    def close(self) -> None:
        if self.file is not None:
            self.file.close()


def plan(pos: int, n: int, loop: tuple[int, int] | None) -> tuple[list[tuple[int, int, int]], int]:
    """Segments (offset, file_pos, frames) that make up the next n frames, and the next pos."""
    segs = []
    off = 0
    while off < n:
        if loop is not None:
            if pos >= loop[1]:
                pos = loop[0]
            take = min(n - off, loop[1] - pos)
        else:
            take = n - off
        segs.append((off, pos, take))
        off += take
        pos += take
    return segs, pos


class DiskReader:
    """The read-ahead thread of one engine. ``commands`` takes (CMD_*, int arg, float arg)."""

    def __init__(self, sources: list[TrackSource], sample_rate: float, rings: ChunkRings,
                 state: np.ndarray, batch_chunks: int = 16,
                 rt_priority: int | None = None) -> None:
        self.rings = rings
        self.block = rings.frames
        self.sample_rate = float(sample_rate)
        self.state = state
        self.batch_chunks = max(1, min(batch_chunks, rings.slots))
        self.commands = RecordQueue(256)
        self.opened = []
        try:
            for s in sources:
                self.opened.append(OpenedTrack(s, sample_rate))
        except Exception:
            self.close()
            raise
        self.length_frames = max((o.frames for o in self.opened), default=0)
        self.loop: tuple[int, int] | None = None
        self.epoch = 0
        self.seq = 0
        self.pos = 0
        self.reads = 0
        self.handled = 0  # commands fully applied (compare with commands.head)
        self._staging = np.zeros((2, self.batch_chunks * self.block), dtype=np.float32)
        self._rec = np.zeros(3, dtype=np.float64)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.error: BaseException | None = None
        self.rt_priority = rt_priority
        self.realtime = False  # whether SCHED_FIFO was granted

    # control-thread side -------------------------------------------------------------------
    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="mixstyle-reader", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        self.close()

    def close(self) -> None:
        for o in self.opened:
            o.close()

    # reader thread -------------------------------------------------------------------------
    def _run(self) -> None:
        if self.rt_priority is not None:
            # Like a DAW's disk thread: real-time, below the audio thread, so that the GIL it
            # holds for a moment is never stuck behind other programs' threads.
            try:
                os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(self.rt_priority))
                self.realtime = True
            except (OSError, AttributeError):
                self.realtime = False
        # wake about four times per batch: often enough to stay ahead, rarely enough to leave
        # the GIL to the audio callback
        idle_s = min(0.02, self.batch_chunks * self.block / self.sample_rate / 4.0)
        try:
            while not self._stop.is_set():
                self._commands()
                if not self.fill_once():
                    time.sleep(idle_s)
        except BaseException as e:  # noqa: BLE001 - reported by the engine, never silent
            self.error = e

    def _commands(self) -> None:
        while self.commands.pop_into(self._rec):
            cmd, arg, val = int(self._rec[0]), int(self._rec[1]), float(self._rec[2])
            if cmd == CMD_SEEK:
                self._reposition(arg)
            elif cmd == CMD_LOOP:  # restart reading at the block after the one playing
                self.loop = (arg, int(val))
                self._reposition(int(self.state[POS]) + self.block)
            elif cmd == CMD_CLEAR_LOOP:
                self.loop = None
                self._reposition(int(self.state[POS]) + self.block)
            self.handled += 1

    def _reposition(self, pos: int) -> None:
        self.epoch += 1
        self.seq = 0
        self.pos = max(0, pos)
        if self.loop is not None and self.pos >= self.loop[1]:
            self.pos = self.loop[0]
        self.state[EPOCH] = self.epoch  # publish: the callback drops older chunks from now on

    def fill_once(self) -> bool:
        """Read one batch if every ring has room; False when there was nothing to do."""
        if int(self.state[PLAY_EPOCH]) == self.epoch and int(self.state[PLAY_SEQ]) > self.seq:
            behind = int(self.state[PLAY_SEQ]) - self.seq  # the callback gave up on these
            _, self.pos = plan(self.pos, behind * self.block, self.loop)
            self.seq += behind
        free = self.rings.slots - int(np.max(self.rings.heads - self.rings.tails))
        k = min(free, self.batch_chunks)
        if k < min(self.batch_chunks, self.rings.slots // 2):
            return False  # wait for room for a whole batch: fewer, larger reads
        n = k * self.block
        segs, next_pos = plan(self.pos, n, self.loop)
        chunk_pos = np.array([self._pos_at(segs, j * self.block) for j in range(k)],
                             dtype=np.int64)
        buf = self._staging
        for t, o in enumerate(self.opened):
            for off, src, take in segs:
                o.read_into(src, take, buf[:, off:off + take])
            self.rings.put_batch(t, buf, k, self.epoch, self.seq, chunk_pos)
        self.reads += 1
        self.seq += k
        self.pos = next_pos
        return True

    @staticmethod
    def _pos_at(segs: list[tuple[int, int, int]], offset: int) -> int:
        for off, src, take in segs:
            if off <= offset < off + take:
                return src + offset - off
        return segs[-1][1] + segs[-1][2]
