"""WAV reading/writing for the demo: mixstyle.audio_io when present, pedalboard otherwise."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np


def read_wav(path: Path) -> tuple[np.ndarray, float]:
    """Return ``(audio (channels, samples) float32, sample_rate_hz)``."""
    try:
        from mixstyle.audio_io import read_audio
    except ImportError:
        read_audio = None
    if read_audio is not None:
        audio, sr = read_audio(path)
        return np.asarray(audio, dtype=np.float32), float(sr)
    from pedalboard.io import AudioFile

    with AudioFile(str(path)) as f:
        audio = f.read(f.frames)
        sr = float(f.samplerate)
    return np.ascontiguousarray(audio, dtype=np.float32), sr


def write_wav(path: Path, audio: np.ndarray, sample_rate_hz: float) -> None:
    """Write float32 WAV atomically (temporary file in the same folder, then rename)."""
    audio = np.ascontiguousarray(audio, dtype=np.float32)
    try:
        from mixstyle.audio_io import write_audio_atomic
    except ImportError:
        write_audio_atomic = None
    if write_audio_atomic is not None:
        write_audio_atomic(path, audio, sample_rate_hz)
        return
    from pedalboard.io import AudioFile

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".wav", prefix=".tmp_", dir=path.parent)
    os.close(fd)
    try:
        with AudioFile(tmp, "w", float(sample_rate_hz), audio.shape[0], bit_depth=32) as f:
            f.write(audio)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
