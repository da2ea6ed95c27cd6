"""Offline driver: run the real-time engine block by block as fast as the disk allows.

Same reader thread, same callback body (``Engine.process``) as live playback, but each block
waits until the reader has delivered it, so nothing is ever late. The limiter's latency is
compensated like ``dsp.render.render``, so with the same setting (and no loudness target, no
inserts) the two renders are the same audio.
"""

from __future__ import annotations

import os

import numpy as np

from dsp.errors import HostError
from dsp.files import atomic_path
from host.engine import Engine


def render_engine(engine: Engine, seconds: float | None = None, timeout_s: float = 30.0
                  ) -> np.ndarray:
    """Play ``engine`` from the start for ``seconds`` (default: the longest track) -> (2, n)."""
    n = engine.length_frames if seconds is None else int(round(seconds * engine.sample_rate))
    if n <= 0:
        raise HostError(f"nothing to render: {n} frames")
    lat = engine.latency_samples
    block = engine.block
    blocks = -(-(n + lat) // block)
    out = np.zeros((2, blocks * block), dtype=np.float32)
    buf = np.zeros((2, block), dtype=np.float32)
    started = engine.reader._thread is not None
    if not started:
        engine.start()
    try:
        engine.play()
        for b in range(blocks):
            engine.wait_ready(timeout_s)
            engine.process(buf)
            out[:, b * block:(b + 1) * block] = buf
        engine.stop()
    finally:
        if not started:
            engine.close()
    return np.ascontiguousarray(out[:, lat:lat + n])


def render_to_file(engine: Engine, path: str, seconds: float | None = None) -> np.ndarray:
    """Render and write ``path`` atomically (format from its extension; 32-bit float WAV/AIFF)."""
    from pedalboard.io import AudioFile
    audio = render_engine(engine, seconds)
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise HostError(f"cannot write render {path!r}: folder {folder!r} does not exist")
    ext = os.path.splitext(path)[1].lower() or ".wav"
    kwargs = {"bit_depth": 32} if ext in (".wav", ".aiff", ".aif") else {}
    with atomic_path(path) as tmp:
        with AudioFile(str(tmp), "w", engine.sample_rate, 2, **kwargs) as f:
            f.write(audio)
    return audio


class PacedOutput:
    """Plays ``engine`` live without a sound card: a thread calls ``engine.process`` once per
    block period in real time and drops the audio (the record tap still hears it).

    The same start/stop/context API as ``host.io.AudioOutput``, for ``mixstyle studio
    --offline`` and for machines where no audio device can be opened. A thread that falls more
    than 0.5 s behind (machine suspended, heavy load) starts counting from now again.
    """

    def __init__(self, engine: Engine) -> None:
        import threading
        self.engine = engine
        self.callback_errors = 0
        self.error: BaseException | None = None
        self._buf = np.zeros((2, engine.block), dtype=np.float32)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="mixstyle-paced", daemon=True)

    def _run(self) -> None:
        import time
        period = self.engine.config.period_s
        next_t = time.monotonic()
        while not self._stop.is_set():
            try:
                self.engine.process(self._buf)
            except Exception as e:  # noqa: BLE001 - like a stream callback: report, go on
                self.callback_errors += 1
                self.error = e
            next_t += period
            wait = next_t - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            elif wait < -0.5:
                next_t = time.monotonic()

    def start(self) -> "PacedOutput":
        self._thread.start()
        return self

    @property
    def active(self) -> bool:
        return self._thread.is_alive()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=2)

    def __enter__(self) -> "PacedOutput":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
