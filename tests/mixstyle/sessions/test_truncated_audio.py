"""A file that ends before its header says (an interrupted copy) is refused by name, never read
as silence; a stem far shorter than the others is read but warned about with both lengths."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from pedalboard.io import AudioFile

from dsp.errors import AudioInputError
from mixstyle.io.frames import FrameCounts, frame_counts
from mixstyle.io.audio import (TruncatedAudioError, audio_info, iter_audio_chunks, read_audio,
                               write_audio_atomic)
from mixstyle.cli import main
from mixstyle.sessions.load import load_sessions, load_song, load_stems

_spec = importlib.util.spec_from_file_location("_sessions_kit",
                                               Path(__file__).with_name("test_load.py"))
_kit = importlib.util.module_from_spec(_spec)  # type: ignore[arg-type]
_spec.loader.exec_module(_kit)  # type: ignore[union-attr]

SR = 44100
FORMATS = [("wav", 16), ("wav", 24), ("wav", 32), ("aiff", 16), ("aiff", 24), ("flac", 16),
           ("flac", 24)]


def _tone(seconds: float, channels: int = 2, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    n = int(round(seconds * SR))
    t = np.arange(n) / SR
    x = 0.3 * np.sin(2 * np.pi * 110 * t) + 0.05 * rng.standard_normal((channels, n))
    return x.astype(np.float32)


def _write(path: Path, audio: np.ndarray, bit_depth: int) -> Path:
    if path.suffix == ".wav":
        return write_audio_atomic(path, audio, SR, bit_depth=bit_depth)
    with AudioFile(str(path), "w", SR, audio.shape[0], bit_depth=bit_depth) as f:
        f.write(audio)
    return path


def _cut_wav(path: Path, keep_frames: int) -> None:
    """Keep the header and the first ``keep_frames`` frames: what a copy that stopped leaves."""
    data = path.read_bytes()
    body = data.index(b"data") + 8
    with AudioFile(str(path)) as f:
        frame_bytes = len(data[body:]) // f.frames
    path.write_bytes(data[:body + keep_frames * frame_bytes])


def test_a_29s_wav_cut_to_239_frames_is_refused_with_both_lengths(tmp_path):
    path = _write(tmp_path / "kick.wav", _tone(29.0), 32)
    _cut_wav(path, 239)
    # what pedalboard makes of it: the header's 29 s, the missing part read as zeros, no error
    with AudioFile(str(path)) as f:
        assert f.frames == 29 * SR
        audio = f.read(f.frames)
    assert audio.shape == (2, 29 * SR) and not audio[:, 239:].any()
    assert frame_counts(path) == FrameCounts(header=29 * SR, stored=239)
    sentence = (r"audio file '.*kick\.wav' is truncated: its header says 1278900 frames "
                r"\(29\.00 s\) but the file holds only 239 \(5\.4 ms\)")
    for call in (read_audio, audio_info, lambda p: next(iter_audio_chunks(p, 4096))):
        with pytest.raises(TruncatedAudioError, match=sentence) as err:
            call(path)
        assert isinstance(err.value, AudioInputError)
        assert (err.value.header_frames, err.value.frames) == (1278900, 239)


@pytest.mark.parametrize("ext, bit_depth", FORMATS)
@pytest.mark.parametrize("channels", [1, 2])
def test_complete_files_pass_cut_files_are_refused(tmp_path, ext, bit_depth, channels):
    audio = _tone(3.0, channels)
    path = _write(tmp_path / f"x.{ext}", audio, bit_depth)
    assert frame_counts(path) == FrameCounts(audio.shape[1], audio.shape[1])
    assert read_audio(path)[0].shape == audio.shape
    data = path.read_bytes()
    for keep in (0.97, 0.5, 0.1):
        cut = tmp_path / f"cut.{ext}"
        cut.write_bytes(data[:int(len(data) * keep)])
        counts = frame_counts(cut)
        held = counts.stored
        assert counts.header == audio.shape[1] and counts.truncated
        # WAV/AIFF count to the frame; FLAC to the start of the frame the cut fell in (4096)
        assert keep * audio.shape[1] - 4096 - 64 <= held <= keep * audio.shape[1] + 64
        with pytest.raises(TruncatedAudioError, match=rf"cut\.{ext}' is truncated: its header "
                                                      rf"says {audio.shape[1]} frames \(3\.00 s\)"
                                                      rf" but the file holds only {held} "):
            read_audio(cut)


def test_lengths_come_from_the_container_not_from_pedalboard(tmp_path):
    # 10 frames of 20-bit mono (3 bytes a frame): JUCE reports 30 / (20 // 8) = 15 frames; the
    # container says 10 and holds 10, so the file is not called truncated
    fmt = (1).to_bytes(2, "little") + (1).to_bytes(2, "little") + (8000).to_bytes(4, "little") \
        + (24000).to_bytes(4, "little") + (3).to_bytes(2, "little") + (20).to_bytes(2, "little")
    body = b"fmt " + (16).to_bytes(4, "little") + fmt + b"data" + (30).to_bytes(4, "little")
    path = tmp_path / "odd.wav"
    path.write_bytes(b"RIFF" + (4 + len(body) + 30).to_bytes(4, "little") + b"WAVE" + body
                     + bytes(range(30)))
    with AudioFile(str(path)) as f:
        assert f.frames == 15
    assert frame_counts(path) == FrameCounts(10, 10)
    path.write_bytes(path.read_bytes()[:-7])
    assert frame_counts(path) == FrameCounts(10, 7)


def test_formats_that_cannot_tell_are_not_checked(tmp_path):
    path = tmp_path / "x.ogg"
    with AudioFile(str(path), "w", SR, 2, bit_depth=16) as f:
        f.write(_tone(1.0))
    assert frame_counts(path) is None
    assert read_audio(path)[0].shape[0] == 2


def test_truncated_stem_names_song_and_stem_and_the_song_is_skipped(tmp_path):
    bad, _, _ = _kit.make_song(tmp_path, "b_song", seconds=2.0, seed=3)
    _kit.make_song(tmp_path, "a_song", seconds=1.0, seed=4)
    _cut_wav(bad / "stems" / "kick.wav", 239)
    with pytest.raises(AudioInputError, match=r"^stem 'kick\.wav' of song 'b_song' is truncated: "
                                              r"its header says 88200 frames \(2\.00 s\) but the "
                                              r"file holds only 239 \(5\.4 ms\)"):
        load_song(bad)
    report = load_sessions(tmp_path)
    assert [s.name for s in report.songs] == ["a_song"]
    assert report.errors[0][0] == "b_song" and "is truncated" in report.errors[0][1]
    _cut_wav(bad / "mix.wav", 44100)
    (bad / "stems" / "kick.wav").unlink()
    with pytest.raises(AudioInputError, match=r"^mix 'mix\.wav' of song 'b_song' is truncated"):
        load_song(bad)


def test_learn_skips_the_truncated_song_with_the_reason(tmp_path, capsys):
    for k in range(2):
        _kit.make_song(tmp_path / "sessions", f"song{k}", seconds=2.0, seed=30 + k)
    bad, _, _ = _kit.make_song(tmp_path / "sessions", "song9", seconds=2.0, seed=39)
    _cut_wav(bad / "stems" / "vox.wav", 239)
    args = ["learn", str(tmp_path / "sessions"), "--out", str(tmp_path / "profile"), "--jobs",
            "1", "--epochs", "5", "--audio-epochs", "1", "--fit-steps", "2", "--quiet"]
    assert main(args) == 0
    out, err = capsys.readouterr()
    assert ("skipped song 'song9': stem 'vox.wav' of song 'song9' is truncated: its header says "
            "88200 frames (2.00 s) but the file holds only 239 (5.4 ms)") in err
    assert "(2 songs)" in out


def test_a_stem_under_half_the_longest_is_warned_with_both_lengths(tmp_path):
    folder, stems, _ = _kit.make_song(tmp_path, "ballad", seconds=2.0, seed=8)
    _kit.write(folder / "stems" / "vox.wav", stems["vox"][:, :17640], SR)        # 0.4 s of 2 s
    _kit.write(folder / "stems" / "keys.wav", stems["keys"][:, :66150], SR)      # 1.5 s: padded
    song = load_song(folder)
    by_code = {w.code: str(w) for w in song.warnings}
    assert by_code["short_stem"] == (
        "stem 'vox.wav' of song 'ballad' is 400.0 ms long, only 20% of the longest stem "
        "'bass.wav' (2.00 s); padded with zeros. Is it a partial export or an interrupted copy?")
    assert by_code["padded"].startswith("stem 'keys.wav' of song 'ballad' is 500.0 ms shorter")
    vox = next(s for s in song.stems if s.name == "vox").audio
    assert vox.shape == (2, 88200) and not vox[:, 17640:].any()
    seen = []
    load_stems(folder / "stems", on_warning=seen.append)
    assert [w.code for w in seen] == ["padded", "short_stem"]
    assert "only 20% of the longest stem 'bass.wav' (2.00 s)" in str(seen[1])
