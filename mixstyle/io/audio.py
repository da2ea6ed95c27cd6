"""Audio and text files in and out: read with pedalboard, write atomically, resample exactly.

Everything that touches audio files goes through here, so every reading error names the file and
every write is atomic (``dsp.files``: a temp file in the same folder, fsynced, then
``os.replace``): a crash never leaves a half-written mix behind, and no output path may be one of
the inputs (``protect=``). A file
that holds fewer frames than its header says (a copy that stopped early) is refused by name
(``TruncatedAudioError``) instead of being read as silence at the end.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np
from numba import njit
from pedalboard.io import AudioFile

from dsp.errors import AudioInputError, ExportError, ParameterError
from dsp.files import atomic_path
from dsp.files import write_text_atomic as write_text
from dsp.validate import check_audio, check_sample_rate
from mixstyle.io.frames import frame_counts

AUDIO_EXTENSIONS = (".wav", ".flac", ".aiff", ".aif", ".mp3", ".ogg")
WRITE_BIT_DEPTHS = {".wav": (16, 24, 32), ".flac": (16, 24), ".aiff": (16, 24, 32),
                    ".aif": (16, 24, 32)}
_MAX_RATIO_TERM = 4096  # resample_poly up/down terms above this are approximated
_FAST_WAV_BITS = (16, 24)   # integer PCM WAV written by our own packer (1 or 2 channels)
_RIFF_MAX_BYTES = 2 ** 32 - 64


@dataclass(frozen=True)
class AudioInfo:
    """What a file header says: sample rate in Hz, length in frames, channel count."""

    path: Path
    sample_rate: float
    frames: int
    channels: int

    @property
    def duration_seconds(self) -> float:
        return self.frames / self.sample_rate


def is_audio_path(path: str | os.PathLike[str]) -> bool:
    """True for a visible file whose extension is one we read (case-insensitive)."""
    p = Path(path)
    return p.suffix.lower() in AUDIO_EXTENSIONS and not p.name.startswith(".")


def _open(path: str | os.PathLike[str]) -> AudioFile:
    p = Path(path)
    if not p.is_file():
        raise AudioInputError(f"audio file '{p}' does not exist (or is not a file)")
    if p.stat().st_size == 0:
        raise AudioInputError(f"audio file '{p}' is empty (0 bytes)")
    try:
        f = AudioFile(str(p))
    except Exception as exc:  # pedalboard raises ValueError/RuntimeError for undecodable data
        raise AudioInputError(f"audio file '{p}' cannot be read as audio: {exc}") from exc
    try:
        _check_complete(p, float(f.samplerate))
    except BaseException:
        f.close()
        raise
    return f


class TruncatedAudioError(AudioInputError):
    """A file holds fewer frames than its header says (an interrupted copy or export)."""

    def __init__(self, path: Path, header_frames: int, frames: int, sample_rate: float) -> None:
        self.path, self.header_frames, self.frames = path, header_frames, frames
        self.sample_rate = sample_rate
        super().__init__(f"audio file '{path}' is truncated: {truncation_detail(self)}")


def duration_text(seconds: float) -> str:
    """'29.00 s', or '5.4 ms' under a second: a length for a message."""
    return f"{seconds:.2f} s" if seconds >= 1.0 else f"{1000.0 * seconds:.1f} ms"


def truncation_detail(err: TruncatedAudioError) -> str:
    """'its header says N frames (29.00 s) but it holds only M (5.4 ms); ...' (both lengths)."""
    sr = err.sample_rate
    return (f"its header says {err.header_frames} frames ({duration_text(err.header_frames / sr)}) but "
            f"the file holds only {err.frames} ({duration_text(err.frames / sr)}), as an interrupted "
            f"copy or export leaves it; copy or export it again")


def _check_complete(path: Path, sample_rate: float) -> None:
    """Raise TruncatedAudioError when the file's bytes end before its header's length.

    pedalboard reads the missing part as silence without a word (see ``mixstyle.io.frames``).
    """
    counts = frame_counts(path)
    if counts is not None and counts.truncated:
        raise TruncatedAudioError(path, counts.header, counts.stored, sample_rate)


def audio_info(path: str | os.PathLike[str]) -> AudioInfo:
    """Header information of an audio file, without decoding it."""
    with _open(path) as f:
        return AudioInfo(Path(path), float(f.samplerate), int(f.frames), int(f.num_channels))


def iter_audio_chunks(path: str | os.PathLike[str],
                      chunk_frames: int) -> Iterator[np.ndarray]:
    """Yield the whole file as float32 ``(channels, <=chunk_frames)`` chunks, in order."""
    if chunk_frames < 1:
        raise ParameterError(f"chunk_frames = {chunk_frames} is out of range: allowed >= 1")
    with _open(path) as f:
        while True:
            try:
                chunk = f.read(chunk_frames)
            except Exception as exc:
                raise AudioInputError(f"audio file '{path}' is corrupt: decoding failed at "
                                      f"frame {f.tell()}: {exc}") from exc
            if chunk.shape[-1] == 0:
                return
            yield np.asarray(chunk, dtype=np.float32)


def read_audio(path: str | os.PathLike[str], start_frame: int = 0,
               num_frames: int | None = None) -> tuple[np.ndarray, float]:
    """Read ``(audio float32 (channels, samples), sample_rate_hz)`` from any supported file.

    ``start_frame``/``num_frames`` read a region (shorter if the file ends first). NaN/inf in the
    file, an empty file or undecodable data raise AudioInputError naming the file.
    """
    if start_frame < 0:
        raise ParameterError(f"start_frame = {start_frame} is out of range: allowed >= 0")
    with _open(path) as f:
        total = int(f.frames)
        n = total - start_frame if num_frames is None else min(num_frames, total - start_frame)
        if total == 0:
            raise AudioInputError(f"audio file '{path}' contains no samples")
        if n <= 0:
            return np.zeros((int(f.num_channels), 0), np.float32), float(f.samplerate)
        try:
            if start_frame:
                f.seek(start_frame)
            audio = np.asarray(f.read(n), dtype=np.float32)
        except Exception as exc:
            raise AudioInputError(f"audio file '{path}' is corrupt: {exc}") from exc
        sample_rate = float(f.samplerate)
    if audio.shape[-1] == 0 and num_frames is None and start_frame == 0:
        raise AudioInputError(f"audio file '{path}' contains no samples")
    bad = int(np.count_nonzero(~np.isfinite(audio)))
    if bad:
        raise AudioInputError(f"audio file '{path}' contains {bad} non-finite samples "
                              f"(NaN or inf)")
    return np.ascontiguousarray(audio), sample_rate


def resample_ratio(from_sr: float, to_sr: float) -> tuple[int, int]:
    """``(up, down)`` integers with up/down == to_sr/from_sr (exact for integer rates)."""
    ratio = Fraction(to_sr).limit_denominator(10**6) / Fraction(from_sr).limit_denominator(10**6)
    if max(ratio.numerator, ratio.denominator) > _MAX_RATIO_TERM:
        ratio = ratio.limit_denominator(_MAX_RATIO_TERM)
    return ratio.numerator, ratio.denominator


def resample(audio: np.ndarray, from_sr: float, to_sr: float) -> np.ndarray:
    """Polyphase resampling (scipy ``resample_poly``) by the exact rational factor to_sr/from_sr.

    Output has ``ceil(samples * to_sr / from_sr)`` samples; equal rates return the input.
    """
    audio = check_audio(audio, "audio")
    f_sr, t_sr = check_sample_rate(from_sr), check_sample_rate(to_sr)
    if f_sr == t_sr:
        return audio
    up, down = resample_ratio(f_sr, t_sr)
    if audio.shape[1] == 0:
        return audio
    from scipy.signal import resample_poly  # here, not at import: scipy.signal costs 0.8 s of start-up
    out = resample_poly(audio.astype(np.float64), up, down, axis=1)
    return np.ascontiguousarray(out, dtype=np.float32)


def _check_target(path: Path, protect: Iterable[str | os.PathLike[str]]) -> None:
    target = path.resolve()
    for p in protect:
        q = Path(p)
        same = q.resolve() == target
        if not same and q.exists() and target.exists():
            same = os.path.samefile(q, target)
        if same:
            raise ExportError(f"refusing to write '{path}': it is an input file ('{q}'); "
                              f"choose another output path")
    if not path.parent.is_dir():
        raise ExportError(f"cannot write '{path}': folder '{path.parent}' does not exist")


@njit(cache=True, inline="always")
def _pcm32(v):
    """float sample -> 32-bit PCM code, as pedalboard (JUCE) converts: clip to [-1, 1], scale
    by 2**31 - 1, round to nearest; a shorter word is this shifted right (floor)."""
    return np.int64(np.rint(min(max(np.float64(v), -1.0), 1.0) * 2147483647.0))


@njit(cache=True)
def _pack_pcm16(x, out):
    """``x`` (C, n) float32 -> interleaved int16 ``out`` (n * C,)."""
    nch, n = x.shape
    for c in range(nch):
        for i in range(n):
            out[i * nch + c] = np.int16(_pcm32(x[c, i]) >> 16)


@njit(cache=True)
def _pcm24(x, t, nch):
    """24-bit code of interleaved sample ``t`` as the low 3 bytes of a uint32."""
    return np.uint32((_pcm32(x[t % nch, t // nch]) >> 8) & 0xFFFFFF)


@njit(cache=True)
def _pack_pcm24(x, words, tail):
    """``x`` (1 or 2, n) float32 -> interleaved little-endian 24-bit PCM: every 4 samples
    become 3 uint32 ``words``; the last ``len(x) % 4`` samples' bytes go to ``tail``."""
    nch, n = x.shape
    total = nch * n
    groups = total // 4
    if nch == 2:
        for g in range(groups):
            i = 2 * g
            s0 = np.uint32((_pcm32(x[0, i]) >> 8) & 0xFFFFFF)
            s1 = np.uint32((_pcm32(x[1, i]) >> 8) & 0xFFFFFF)
            s2 = np.uint32((_pcm32(x[0, i + 1]) >> 8) & 0xFFFFFF)
            s3 = np.uint32((_pcm32(x[1, i + 1]) >> 8) & 0xFFFFFF)
            words[3 * g] = s0 | (s1 << np.uint32(24))
            words[3 * g + 1] = (s1 >> np.uint32(8)) | (s2 << np.uint32(16))
            words[3 * g + 2] = (s2 >> np.uint32(16)) | (s3 << np.uint32(8))
    else:
        for g in range(groups):
            i = 4 * g
            s0 = np.uint32((_pcm32(x[0, i]) >> 8) & 0xFFFFFF)
            s1 = np.uint32((_pcm32(x[0, i + 1]) >> 8) & 0xFFFFFF)
            s2 = np.uint32((_pcm32(x[0, i + 2]) >> 8) & 0xFFFFFF)
            s3 = np.uint32((_pcm32(x[0, i + 3]) >> 8) & 0xFFFFFF)
            words[3 * g] = s0 | (s1 << np.uint32(24))
            words[3 * g + 1] = (s1 >> np.uint32(8)) | (s2 << np.uint32(16))
            words[3 * g + 2] = (s2 >> np.uint32(16)) | (s3 << np.uint32(8))
    for k in range(total - 4 * groups):
        v = _pcm24(x, 4 * groups + k, nch)
        tail[3 * k] = v & 0xFF
        tail[3 * k + 1] = (v >> 8) & 0xFF
        tail[3 * k + 2] = (v >> 16) & 0xFF


def _write_pcm_wav(path: Path, audio: np.ndarray, sample_rate: float, bit_depth: int) -> None:
    """A plain RIFF/WAVE PCM file (format 1), samples converted exactly as pedalboard does."""
    nch, n = audio.shape
    width = bit_depth // 8
    size = nch * n * width
    header = b"".join((b"RIFF", (36 + size).to_bytes(4, "little"), b"WAVEfmt ",
                       (16).to_bytes(4, "little"), (1).to_bytes(2, "little"),
                       nch.to_bytes(2, "little"), int(sample_rate).to_bytes(4, "little"),
                       (int(sample_rate) * nch * width).to_bytes(4, "little"),
                       (nch * width).to_bytes(2, "little"), bit_depth.to_bytes(2, "little"),
                       b"data", size.to_bytes(4, "little")))
    if bit_depth == 16:
        body = np.empty(nch * n, dtype=np.int16)
        _pack_pcm16(audio, body)
        parts = [body]
    else:
        words = np.empty(nch * n // 4 * 3, dtype=np.uint32)
        tail = np.zeros(3 * (nch * n % 4), dtype=np.uint8)
        _pack_pcm24(audio, words, tail)
        parts = [words, tail]
    with open(path, "wb") as f:
        f.write(header)
        for part in parts:
            f.write(memoryview(part).cast("B"))


def _fast_wav(path: Path, audio: np.ndarray, sample_rate: float, bit_depth: int) -> bool:
    """True if our packer can write this file (integer-rate 16/24-bit WAV, 1-2 channels,
    under the 4 GB RIFF limit); pedalboard writes everything else."""
    return (path.suffix.lower() == ".wav" and bit_depth in _FAST_WAV_BITS
            and audio.shape[0] in (1, 2) and float(sample_rate).is_integer()
            and audio.size * bit_depth // 8 < _RIFF_MAX_BYTES)


def write_audio_atomic(path: str | os.PathLike[str], audio: np.ndarray, sample_rate: float,
                       bit_depth: int = 32,
                       protect: Iterable[str | os.PathLike[str]] = (), sync: bool = True
                       ) -> Path:
    """Write ``audio`` (channels, samples) to ``path`` atomically; return the path.
    ``sync=False``: the caller fsyncs the file and its folder (``dsp.files.atomic_path``).

    wav/aiff: ``bit_depth`` 32 (float, the default for mixes: no clipping above 0 dBFS), 24 or 16
    (integer PCM, clips at full scale); flac: 16 or 24. ``path`` may not be any of ``protect``.
    16/24-bit WAV of 1-2 channels is packed here (several times faster than pedalboard, the
    same sample codes: a test compares them); other formats go through pedalboard.
    """
    p = Path(path)
    depths = WRITE_BIT_DEPTHS.get(p.suffix.lower())
    if depths is None:
        raise ExportError(f"cannot write '{p}': extension '{p.suffix}' is not one of "
                          f"{', '.join(WRITE_BIT_DEPTHS)}")
    if bit_depth not in depths:
        raise ParameterError(f"bit_depth = {bit_depth} is not allowed for '{p.suffix}' files: "
                             f"allowed {', '.join(map(str, depths))}")
    audio = check_audio(audio, f"audio for '{p.name}'")
    sr = check_sample_rate(sample_rate)
    _check_target(p, protect)
    with atomic_path(p, sync=sync) as tmp:
        if _fast_wav(p, audio, sr, bit_depth):
            _write_pcm_wav(tmp, audio, sr, bit_depth)
        else:
            with AudioFile(str(tmp), "w", sr, audio.shape[0], bit_depth=bit_depth) as f:
                f.write(audio)
    return p


def write_text_atomic(path: str | os.PathLike[str], text: str,
                      protect: Iterable[str | os.PathLike[str]] = ()) -> Path:
    """Write UTF-8 ``text`` (JSON, CSV, ...) to ``path`` atomically (``dsp.files``), unless it
    is one of ``protect``; return the path."""
    if not isinstance(text, str):
        raise TypeError(f"text must be str, got {type(text).__name__}")
    p = Path(path)
    _check_target(p, protect)
    return write_text(p, text)
