"""The model worker: listens to what each track played and keeps the predicted setting fresh.

The callback copies every block each track played into a ``FrameTap``; this thread drains it
into a rolling window of the last ``window_s`` seconds. Every ``interval_s`` it hands the window
to ``predict([(role, audio (2, n)), ...]) -> ConsoleSetting`` and moves the prediction toward the
answer (``smoothing`` in the table's normalised space, so a new guess never jumps the faders).
``Control.freeze()`` stops the updates; overrides keep winning over whatever is predicted.

The returned setting's tracks are matched to ours by name, or by order when the names differ
(a profile's ``predict`` only sees roles) and the counts agree.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Callable, Sequence

import numpy as np

from dsp.errors import HostError
from dsp.params import ConsoleSetting, TrackSetting
from host.control import Control
from host.ringbuffer import FrameTap

Predict = Callable[[list[tuple[str, np.ndarray]]], ConsoleSetting]


def match_tracks(setting: Any, names: Sequence[str]) -> ConsoleSetting:
    """``setting`` with our track names: kept when its names are ours, else matched by order."""
    if not isinstance(setting, ConsoleSetting):
        raise HostError(f"predict returned {type(setting).__name__}, expected ConsoleSetting")
    theirs = [t.name for t in setting.tracks]
    if set(theirs) <= set(names):
        return setting
    if len(theirs) != len(names):
        raise HostError(f"predict returned {len(theirs)} tracks for {len(names)} "
                        f"({theirs} vs {list(names)})")
    renamed = tuple(TrackSetting(name=n, params=t.params, role=t.role)
                    for n, t in zip(names, setting.tracks))
    return ConsoleSetting(tracks=renamed, master=setting.master)


def profile_predictor(profile: Any, sample_rate: float) -> Predict:
    """Adapt ``mixstyle.profile.predict.Profile.predict(stems (name, role, audio), sample_rate)`` to the
    worker's ``predict(list of (role, audio))``; tracks come back matched by order."""
    def predict(stems: list[tuple[str, np.ndarray]]) -> ConsoleSetting:
        named = [(f"track{i}", role, audio) for i, (role, audio) in enumerate(stems)]
        return profile.predict(named, sample_rate)
    return predict


class ModelWorker:
    def __init__(self, predict: Predict, tap: FrameTap, control: Control, sample_rate: float,
                 roles: Sequence[str], interval_s: float = 4.0, window_s: float = 8.0,
                 smoothing: float = 0.5, poll_s: float = 0.1) -> None:
        if not callable(predict):
            raise HostError(f"predict must be callable, got {type(predict).__name__}")
        if not 0.0 <= smoothing < 1.0:
            raise HostError(f"smoothing = {smoothing} is out of range: allowed 0 .. <1")
        if interval_s <= 0 or window_s <= 0:
            raise HostError(f"interval_s and window_s must be > 0, got {interval_s}, {window_s}")
        self.predict = predict
        self.tap = tap
        self.control = control
        self.roles = list(roles)
        self.interval_s = float(interval_s)
        self.smoothing = float(smoothing)
        self.poll_s = float(poll_s)
        n_tracks, channels = tap.shape
        self._window = np.zeros((n_tracks, channels, int(round(window_s * sample_rate))),
                                dtype=np.float32)
        self._filled = 0
        self._new_frames = 0
        self._min_new = int(round(0.5 * interval_s * sample_rate))
        self.updates = 0
        self.failures = 0
        self.last_error: BaseException | None = None
        self._reported = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def drain(self) -> int:
        """Move what the callback handed over into the rolling window; returns frames moved."""
        new = self.tap.read()
        k = new.shape[2]
        if k == 0:
            return 0
        w = self._window.shape[2]
        if k >= w:
            self._window[:] = new[:, :, -w:]
        else:
            self._window[:, :, :-k] = self._window[:, :, k:]
            self._window[:, :, -k:] = new
        self._filled = min(w, self._filled + k)
        self._new_frames += k
        return k

    def step(self) -> bool:
        """Drain, and predict if enough new audio arrived; True when the prediction moved."""
        self.drain()
        if self.control.frozen or self._new_frames < self._min_new or self._filled == 0:
            return False
        self._new_frames = 0
        audio = self._window[:, :, -self._filled:]
        stems = [(self.roles[t], audio[t].copy()) for t in range(audio.shape[0])]
        try:
            setting = self._match(self.predict(stems))
            moved = self.control.update_prediction(setting, self.smoothing)
        except Exception as e:  # noqa: BLE001 - a failing model must not stop the music
            self.failures += 1
            self.last_error = e
            return False
        self.updates += int(moved)
        return moved

    def _match(self, setting: ConsoleSetting) -> ConsoleSetting:
        return match_tracks(setting, self.control.track_names)

    def take_failure(self) -> str | None:
        """A sentence about model failures not reported yet (for the UI), else None."""
        if self.failures > self._reported:
            self._reported = self.failures
            return (f"model prediction failed ({self.failures} times so far): "
                    f"{type(self.last_error).__name__}: {self.last_error}; keeping the last "
                    f"setting")
        return None

    def start(self) -> "ModelWorker":
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="mixstyle-model", daemon=True)
            self._thread.start()
        return self

    def _run(self) -> None:
        next_t = time.monotonic() + self.interval_s
        while not self._stop.wait(self.poll_s):
            self.drain()
            if time.monotonic() >= next_t:
                self.step()
                next_t = time.monotonic() + self.interval_s

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
