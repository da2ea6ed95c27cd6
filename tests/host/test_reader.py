"""Disk reader: what lands in the rings is the file, at the right position, with loops/seeks."""

from __future__ import annotations

import time

import numpy as np
import pytest
from pedalboard.io import AudioFile

from dsp.errors import AudioInputError, HostError
from host.reader import (CMD_LOOP, CMD_SEEK, EPOCH, POS, STATE_FIELDS, DiskReader, TrackSource,
                         plan)
from host.ringbuffer import ChunkRings

SR = 48000
BLOCK = 64


def _write(path, audio, sr=SR):
    with AudioFile(str(path), "w", sr, audio.shape[0], bit_depth=32) as f:
        f.write(audio)
    return str(path)


def _ramp(n, channels=2, scale=1e-5):
    x = (np.arange(n) * scale).astype(np.float32)
    return np.stack([x] + [-x] * (channels - 1)).astype(np.float32)


def _reader(sources, slots=64, batch=4):
    rings = ChunkRings(len(sources), slots, BLOCK)
    state = np.zeros(STATE_FIELDS, np.int64)
    return DiskReader(sources, SR, rings, state, batch_chunks=batch), rings, state


def _collect(reader, rings, epoch, n_chunks):
    out = np.zeros((rings.n_tracks, 2, BLOCK), np.float32)
    blocks, positions = [], []
    for seq in range(n_chunks):
        while rings.prune(epoch, seq) < rings.n_tracks:
            assert reader.fill_once(), "reader made no progress"
        found, pos = rings.gather(epoch, seq, out)
        assert found == rings.n_tracks
        blocks.append(out.copy())
        positions.append(pos)
    return np.concatenate(blocks, axis=2), positions


def test_plan_wraps_at_the_loop_end():
    segs, nxt = plan(90, 30, (50, 100))
    assert segs == [(0, 90, 10), (10, 50, 20)] and nxt == 70
    assert plan(0, 10, None) == ([(0, 0, 10)], 10)


def test_chunks_equal_the_file_and_pad_with_silence(tmp_path):
    audio = _ramp(1000)
    src = TrackSource("a", path=_write(tmp_path / "a.wav", audio))
    reader, rings, _ = _reader([src])
    got, positions = _collect(reader, rings, 0, 20)          # 1280 frames > 1000
    np.testing.assert_allclose(got[0, :, :1000], audio, atol=1e-6)  # wav is float32 exact
    assert np.all(got[0, :, 1000:] == 0.0)
    assert positions[:3] == [0, BLOCK, 2 * BLOCK]
    reader.close()


def test_mono_file_is_centred_stereo_and_memory_tracks_work(tmp_path):
    mono = _ramp(500, channels=1)
    srcs = [TrackSource("m", path=_write(tmp_path / "m.wav", mono)),
            TrackSource("mem", audio=_ramp(500) * 2)]
    reader, rings, _ = _reader(srcs)
    got, _ = _collect(reader, rings, 0, 4)
    np.testing.assert_allclose(got[0, 0, :256], mono[0, :256], atol=1e-6)
    np.testing.assert_allclose(got[0, 1, :256], mono[0, :256], atol=1e-6)
    np.testing.assert_allclose(got[1, :, :256], _ramp(500)[:, :256] * 2, atol=1e-6)
    reader.close()


def test_other_rate_is_resampled_to_the_engine_rate(tmp_path):
    t = np.arange(44100) / 44100
    tone = (0.5 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32)[None].repeat(2, 0)
    reader, rings, _ = _reader([TrackSource("x", path=_write(tmp_path / "x.wav", tone, 44100))])
    assert abs(reader.length_frames - SR) <= 2
    got, _ = _collect(reader, rings, 0, 200)
    seg = got[0, 0, 2000:2000 + 4800].astype(np.float64)
    spec = np.abs(np.fft.rfft(seg * np.hanning(seg.size)))
    assert abs(np.argmax(spec) * SR / seg.size - 1000.0) < 15.0   # still 1 kHz at 48 kHz
    reader.close()


def test_seek_and_loop_start_new_epochs_at_the_right_frames(tmp_path):
    audio = _ramp(4000)
    reader, rings, state = _reader([TrackSource("a", audio=audio)])
    reader.commands.push(CMD_SEEK, 1000, 0.0)
    reader._commands()
    assert state[EPOCH] == 1
    got, positions = _collect(reader, rings, 1, 2)
    assert positions == [1000, 1000 + BLOCK]
    np.testing.assert_allclose(got[0], audio[:, 1000:1000 + 2 * BLOCK])
    state[POS] = 1200
    reader.commands.push(CMD_LOOP, 1100, 1300.0)       # loop 1100..1300, playing at 1200
    reader._commands()                                  # reading goes on at the next block
    got, positions = _collect(reader, rings, 2, 5)
    expect = np.concatenate([audio[:, 1264:1300], audio[:, 1100:1300], audio[:, 1100:1184]], 1)
    np.testing.assert_allclose(got[0], expect)
    assert positions[:3] == [1264, 1100 + 28, 1100 + 92]
    reader.close()


def test_reader_thread_fills_ahead(tmp_path):
    reader, rings, _ = _reader([TrackSource("a", audio=_ramp(100000))], slots=32)
    reader.start()
    deadline = time.monotonic() + 5
    while rings.free(0) > 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    reader.stop()
    assert rings.free(0) == 0 and reader.error is None


def test_bad_stems_are_named(tmp_path):
    with pytest.raises(AudioInputError, match="'gone.wav' of track 'g'.*not found"):
        _reader([TrackSource("g", path=str(tmp_path / "gone.wav"))])
    bad = tmp_path / "junk.wav"
    bad.write_bytes(b"not audio at all")
    with pytest.raises(AudioInputError, match="'junk.wav' of track 'j'.*cannot decode"):
        _reader([TrackSource("j", path=str(bad))])
    p3 = _write(tmp_path / "three.wav", np.zeros((3, 100), np.float32))
    with pytest.raises(AudioInputError, match="3 channels; allowed 1"):
        _reader([TrackSource("t", path=p3)])
    with pytest.raises(HostError, match="exactly one of path and audio"):
        TrackSource("n")
