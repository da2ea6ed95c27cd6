"""Lock-free rings: order, tags, stale chunks, late chunks, full queues, several producers."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from dsp.errors import HostError
from host.ringbuffer import ChunkRings, FrameTap, RecordQueue


def _fill(rings: ChunkRings, track: int, epoch: int, seq: int, value: float) -> None:
    rings.slot(track)[:] = value
    rings.put(track, epoch, seq, seq * rings.frames)


def test_chunks_come_out_in_order_with_their_position():
    rings = ChunkRings(2, 8, 4)
    out = np.zeros((2, 2, 4), np.float32)
    for seq in range(3):
        for t in range(2):
            _fill(rings, t, 0, seq, 10 * t + seq)
    for seq in range(3):
        found, pos = rings.gather(0, seq, out)
        assert found == 2 and pos == seq * 4
        assert np.all(out[0] == seq) and np.all(out[1] == 10 + seq)
    assert rings.late.tolist() == [0, 0]


def test_missing_chunk_is_silence_counted_per_track_and_dropped_later():
    rings = ChunkRings(2, 8, 4)
    out = np.ones((2, 2, 4), np.float32)
    _fill(rings, 0, 0, 0, 1.0)            # track 1 is late for seq 0
    found, _ = rings.gather(0, 0, out)
    assert found == 1 and np.all(out[1] == 0.0) and np.all(out[0] == 1.0)
    assert rings.late.tolist() == [0, 1]
    _fill(rings, 1, 0, 0, 5.0)            # arrives too late: must never be played
    _fill(rings, 0, 0, 1, 2.0)
    _fill(rings, 1, 0, 1, 6.0)
    found, _ = rings.gather(0, 1, out)
    assert found == 2 and np.all(out[1] == 6.0)


def test_a_new_epoch_drops_every_older_chunk():
    rings = ChunkRings(1, 8, 4)
    out = np.zeros((1, 2, 4), np.float32)
    for seq in range(5):
        _fill(rings, 0, 0, seq, 1.0)
    _fill(rings, 0, 1, 0, 9.0)
    assert rings.prune(1, 0) == 1
    assert rings.free(0) == 7              # the five stale chunks are gone
    found, _ = rings.gather(1, 0, out)
    assert found == 1 and np.all(out == 9.0)


def test_put_batch_equals_chunk_by_chunk():
    rings = ChunkRings(1, 8, 4)
    staging = np.arange(2 * 12, dtype=np.float32).reshape(2, 12)
    rings.put_batch(0, staging, 3, 2, 7, np.array([100, 104, 108], np.int64))
    out = np.zeros((1, 2, 4), np.float32)
    for j in range(3):
        found, pos = rings.gather(2, 7 + j, out)
        assert found == 1 and pos == 100 + 4 * j
        np.testing.assert_array_equal(out[0], staging[:, 4 * j:4 * j + 4])


def test_chunk_rings_refuse_nonsense_sizes():
    with pytest.raises(HostError, match="slots"):
        ChunkRings(1, 1, 128)


def test_record_queue_keeps_order_and_refuses_when_full():
    q = RecordQueue(4)
    for i in range(4):
        assert q.push(i, i + 1, i / 2)
    assert not q.push(9, 9, 9.0) and q.refused == 1
    rec = np.zeros(3)
    got = []
    while q.pop_into(rec):
        got.append(tuple(rec))
    assert got == [(i, i + 1, i / 2) for i in range(4)]


def test_record_queue_several_producers_lose_nothing():
    q = RecordQueue(1 << 15)
    n_threads, per = 4, 3000

    def produce(k: int) -> None:
        for i in range(per):
            while not q.push(k, i, float(i)):
                pass

    threads = [threading.Thread(target=produce, args=(k,)) for k in range(n_threads)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    rec = np.zeros(3)
    seen: dict[int, list[int]] = {k: [] for k in range(n_threads)}
    while q.pop_into(rec):
        seen[int(rec[0])].append(int(rec[1]))
    for k in range(n_threads):
        assert seen[k] == list(range(per))  # each producer's records, once, in order


def test_frame_tap_round_trip_and_overflow():
    tap = FrameTap(2, 12, 4)                 # 3 blocks of 4 frames
    block = np.arange(2 * 2 * 4, dtype=np.float32).reshape(2, 2, 4)
    for k in range(3):
        tap.write(block + 100 * k)
    tap.write(block)                         # full: dropped, counted
    assert tap.dropped_blocks[0] == 1
    got = tap.read()
    np.testing.assert_array_equal(got, np.concatenate([block, block + 100, block + 200], axis=2))
    tap.write(block + 7)                     # wraps around the end of the ring
    tap.write(block + 8)
    np.testing.assert_array_equal(tap.read(), np.concatenate([block + 7, block + 8], axis=2))
    assert tap.read().shape == (2, 2, 0)
