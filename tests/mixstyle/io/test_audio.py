"""Audio I/O: exact round trips, levels through every codec, exact-ratio resampling, atomic
writes that never clobber an input or leave partial files."""

from __future__ import annotations

import numpy as np
import pytest
from pedalboard.io import AudioFile

import mixstyle.io.audio as aio
from dsp.errors import AudioInputError, ExportError, ParameterError
from mixstyle.io.audio import (audio_info, read_audio, resample, resample_ratio,
                               write_audio_atomic, write_text_atomic)


def sine(freq_hz: float, sample_rate: float, seconds: float, amp: float = 0.5,
         channels: int = 2) -> np.ndarray:
    t = np.arange(int(round(seconds * sample_rate))) / sample_rate
    return np.tile(amp * np.sin(2 * np.pi * freq_hz * t), (channels, 1)).astype(np.float32)


def level_db(x: np.ndarray) -> float:
    return 10 * np.log10(np.mean(x.astype(np.float64) ** 2))


def test_float_wav_round_trip_is_exact_and_keeps_overs(tmp_path):
    audio = np.random.default_rng(0).normal(0, 0.5, (2, 10000)).astype(np.float32)
    audio[0, 5] = 1.7  # above full scale: kept by 32-bit float
    path = write_audio_atomic(tmp_path / "mix.wav", audio, 48000)
    back, sr = read_audio(path)
    assert sr == 48000.0 and back.dtype == np.float32
    np.testing.assert_array_equal(back, audio)


@pytest.mark.parametrize("name, bit_depth, tol", [("mix.wav", 24, 2 ** -23),
                                                  ("mix.flac", 24, 2 ** -23),
                                                  ("mix.wav", 16, 2 ** -15),
                                                  ("mix.aiff", 24, 2 ** -23)])
def test_integer_depths_round_trip_within_two_lsb(tmp_path, name, bit_depth, tol):
    audio = sine(997, 44100, 0.5, channels=1)
    back, _ = read_audio(write_audio_atomic(tmp_path / name, audio, 44100, bit_depth=bit_depth))
    assert np.max(np.abs(back - audio)) <= 2 * tol  # pedalboard truncates: up to 1.5 LSB


@pytest.mark.parametrize("bit_depth", [16, 24])
@pytest.mark.parametrize("channels, frames", [(1, 1001), (1, 1003), (2, 1001), (2, 1000)])
def test_packed_pcm_wav_has_pedalboards_sample_codes(tmp_path, bit_depth, channels, frames):
    """16/24-bit WAV is packed by us: every sample code equals pedalboard's own writer's,
    including clipping of overs and the rounding of tiny values (odd lengths: the tail)."""
    rng = np.random.default_rng(bit_depth + channels + frames)
    audio = rng.uniform(-1.3, 1.3, (channels, frames)).astype(np.float32)
    audio[:, :6] = np.array([1.0, -1.0, 0.0, 2.0 ** -bit_depth, -(2.0 ** -bit_depth), 0.99999994],
                            np.float32)[None]
    ours = write_audio_atomic(tmp_path / "ours.wav", audio, 44100, bit_depth=bit_depth)
    theirs = tmp_path / "theirs.wav"
    with AudioFile(str(theirs), "w", 44100, channels, bit_depth=bit_depth) as f:
        f.write(audio)
    a, sr = read_audio(ours)
    b, _ = read_audio(theirs)
    assert sr == 44100.0 and a.shape == (channels, frames)
    np.testing.assert_array_equal(a, b)
    info = audio_info(ours)
    assert (info.frames, info.channels) == (frames, channels)
    assert ours.stat().st_size == 44 + channels * frames * bit_depth // 8


def test_failed_packed_write_keeps_the_old_file(tmp_path, monkeypatch):
    path = write_audio_atomic(tmp_path / "mix.wav", sine(440, 44100, 0.1), 44100, bit_depth=24)
    before = path.read_bytes()

    def broken(tmp, *args):
        tmp.write_bytes(b"RIFF")
        raise OSError("No space left on device")

    monkeypatch.setattr(aio, "_write_pcm_wav", broken)
    with pytest.raises(OSError, match="No space left"):
        write_audio_atomic(path, sine(880, 44100, 1.0), 44100, bit_depth=24)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["mix.wav"]


@pytest.mark.parametrize("ext", ["wav", "flac", "aif", "ogg", "mp3"])
@pytest.mark.parametrize("sample_rate", [44100, 48000])
def test_every_format_reads_at_the_written_level(tmp_path, ext, sample_rate):
    path = tmp_path / f"tone.{ext}"
    audio = sine(1000, sample_rate, 1.0)
    with AudioFile(str(path), "w", sample_rate, 2, bit_depth=16) as f:
        f.write(audio)
    back, sr = read_audio(path)
    assert sr == sample_rate and back.shape[0] == 2
    assert back.shape[1] >= audio.shape[1]  # mp3 adds codec delay and padding
    middle = back[:, sample_rate // 4: 3 * sample_rate // 4]
    assert level_db(middle) == pytest.approx(level_db(audio), abs=0.2)


def test_region_read_and_info(tmp_path):
    audio = np.random.default_rng(1).normal(0, 0.2, (1, 5000)).astype(np.float32)
    path = write_audio_atomic(tmp_path / "a.wav", audio, 8000)
    part, _ = read_audio(path, start_frame=1000, num_frames=300)
    np.testing.assert_array_equal(part, audio[:, 1000:1300])
    tail, _ = read_audio(path, start_frame=4900, num_frames=300)
    assert tail.shape == (1, 100)
    info = audio_info(path)
    assert (info.sample_rate, info.frames, info.channels) == (8000.0, 5000, 1)
    assert info.duration_seconds == pytest.approx(0.625)


@pytest.mark.parametrize("from_sr, to_sr, up, down", [(44100, 48000, 160, 147),
                                                      (48000, 44100, 147, 160),
                                                      (96000, 44100, 147, 320),
                                                      (22050, 44100, 2, 1)])
def test_resample_exact_ratio_length_level_and_pitch(from_sr, to_sr, up, down):
    assert resample_ratio(from_sr, to_sr) == (up, down)
    audio = sine(1000, from_sr, 1.0)
    out = resample(audio, from_sr, to_sr)
    assert out.shape == (2, int(np.ceil(audio.shape[1] * up / down))) and out.dtype == np.float32
    mid = out[0, to_sr // 10: -to_sr // 10]
    assert level_db(mid) == pytest.approx(level_db(audio), abs=0.02)
    spectrum = np.abs(np.fft.rfft(mid * np.hanning(mid.size)))
    assert np.argmax(spectrum) * to_sr / mid.size == pytest.approx(1000, abs=to_sr / mid.size)


def test_resample_same_rate_is_identity_and_anti_aliases():
    audio = sine(1000, 44100, 0.2)
    assert resample(audio, 44100, 44100) is audio
    high = sine(20000, 48000, 1.0)  # above the 11.025 kHz Nyquist of 22.05 kHz
    assert level_db(resample(high, 48000, 22050)[:, 2000:-2000]) < level_db(high) - 60


def test_atomic_write_refuses_inputs_and_leaves_no_temp_files(tmp_path):
    stem = write_audio_atomic(tmp_path / "vox.wav", sine(440, 44100, 0.1), 44100)
    before = stem.read_bytes()
    with pytest.raises(ExportError, match=r"refusing to write '.*vox\.wav': it is an input"):
        write_audio_atomic(tmp_path / "vox.wav", sine(880, 44100, 0.1), 44100,
                           protect=[tmp_path / "." / "vox.wav"])
    with pytest.raises(ExportError, match=r"refusing to write"):
        write_text_atomic(stem, "{}", protect=[str(stem)])
    assert stem.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["vox.wav"]


def test_failed_write_keeps_the_old_file(tmp_path, monkeypatch):
    path = write_audio_atomic(tmp_path / "mix.wav", sine(440, 44100, 0.1), 44100)
    before = path.read_bytes()

    class Broken:  # writes half the data, then the disk "fills up"
        def __init__(self, name, *args, **kwargs):
            self.f = AudioFile(name, *args, **kwargs)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

        def write(self, audio):
            self.f.write(audio[:, : audio.shape[1] // 2])
            raise OSError("No space left on device")

    monkeypatch.setattr(aio, "AudioFile", Broken)
    with pytest.raises(OSError, match="No space left"):
        write_audio_atomic(path, sine(880, 44100, 1.0), 44100)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["mix.wav"]


def test_write_text_atomic(tmp_path):
    path = write_text_atomic(tmp_path / "report.json", '{"ok": true}\n')
    assert path.read_text(encoding="utf-8") == '{"ok": true}\n'
    write_text_atomic(path, "é,ü\n")
    assert path.read_text(encoding="utf-8") == "é,ü\n"
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]


def test_read_errors_name_the_file(tmp_path):
    with pytest.raises(AudioInputError, match=r"audio file '.*missing\.wav' does not exist"):
        read_audio(tmp_path / "missing.wav")
    (tmp_path / "empty.wav").write_bytes(b"")
    with pytest.raises(AudioInputError, match=r"audio file '.*empty\.wav' is empty \(0 bytes\)"):
        read_audio(tmp_path / "empty.wav")
    (tmp_path / "text.flac").write_text("not audio")
    with pytest.raises(AudioInputError, match=r"audio file '.*text\.flac' cannot be read as "
                                              r"audio"):
        read_audio(tmp_path / "text.flac")
    nan = np.zeros((2, 100), np.float32)
    nan[1, 7] = np.nan
    with AudioFile(str(tmp_path / "nan.wav"), "w", 44100, 2, bit_depth=32) as f:
        f.write(nan)
    with pytest.raises(AudioInputError, match=r"'.*nan\.wav' contains 1 non-finite samples"):
        read_audio(tmp_path / "nan.wav")
    with pytest.raises(ParameterError, match=r"start_frame = -1 is out of range"):
        read_audio(tmp_path / "nan.wav", start_frame=-1)


def test_write_errors(tmp_path):
    audio = sine(440, 44100, 0.1)
    with pytest.raises(ParameterError, match=r"bit_depth = 32 is not allowed for '\.flac' "
                                             r"files: allowed 16, 24"):
        write_audio_atomic(tmp_path / "a.flac", audio, 44100, bit_depth=32)
    with pytest.raises(ExportError, match=r"extension '\.mp3' is not one of \.wav, \.flac"):
        write_audio_atomic(tmp_path / "a.mp3", audio, 44100)
    with pytest.raises(ExportError, match=r"folder '.*nowhere' does not exist"):
        write_audio_atomic(tmp_path / "nowhere" / "a.wav", audio, 44100)
    with pytest.raises(AudioInputError, match=r"audio for 'a\.wav' contains 1 non-finite"):
        bad = audio.copy()
        bad[0, 0] = np.inf
        write_audio_atomic(tmp_path / "a.wav", bad, 44100)
    with pytest.raises(AudioInputError, match=r"sample_rate = 100 Hz is out of range"):
        write_audio_atomic(tmp_path / "a.wav", audio, 100)
    assert list(tmp_path.iterdir()) == []
