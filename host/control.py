"""What every console parameter should be right now, decided outside the audio callback.

Three sources, in order of precedence: an override (a fader moved by hand or by MIDI; it wins
until released), the model's prediction scaled by ``strength`` (0 = neutral console, 1 = the
prediction as is), else the prediction. Each change is sent to the callback as a
``(target, index, value)`` record: target = track index, or ``MASTER_TARGET`` for the master bus;
index = position in ``TRACK_NAMES``/``MASTER_NAMES``. Only values that changed are sent.
"""

from __future__ import annotations

import math
import threading
from typing import Any, Sequence

import numpy as np

from dsp.errors import HostError, ParameterError
from dsp.params import (MASTER, MASTER_NAMES, MASTER_PARAMS, TRACK, TRACK_NAMES, TRACK_PARAMS,
                        ConsoleSetting, TrackSetting, spec, validate)
from host.ringbuffer import RecordQueue

MASTER_TARGET = -1
# Master entries that are not live processor parameters (fixed at start or offline-only).
NOT_LIVE = ("limiter_lookahead_ms", "target_lufs", "max_limiting_db",
            "true_peak_over_db")


def _vector(specs: Sequence[Any], values: dict[str, Any]) -> np.ndarray:
    """Table-ordered values of a validated mapping (None, i.e. target_lufs off -> default)."""
    return np.array([p.default if values[p.name] is None else values[p.name] for p in specs],
                    dtype=np.float64)


def _neutral_vector(specs: Sequence[Any]) -> np.ndarray:
    return np.array([p.default if p.neutral is None else p.neutral for p in specs],
                    dtype=np.float64)


class Control:
    """Parameter state of a live console; thread-safe for control threads (UI, MIDI, model).

    ``queue`` receives the changes for the audio callback. ``predicted`` is table-ordered:
    ``tracks`` (n_tracks, len(TRACK_NAMES)) and ``master`` (len(MASTER_NAMES),).
    """

    def __init__(self, track_names: Sequence[str], setting: ConsoleSetting,
                 queue: RecordQueue) -> None:
        self.track_names = list(track_names)
        self.roles = [setting.track(n).role for n in self.track_names]
        self.queue = queue
        self._lock = threading.Lock()
        self.tracks = np.stack([_vector(TRACK_PARAMS, validate(TRACK, setting.track(n).params,
                                                                f"track {n!r}"))
                                for n in self.track_names]) if self.track_names else \
            np.zeros((0, len(TRACK_NAMES)))
        self.master = _vector(MASTER_PARAMS, validate(MASTER, setting.master, "master"))
        self._neutral_t = _neutral_vector(TRACK_PARAMS)
        self._neutral_m = _neutral_vector(MASTER_PARAMS)
        self.overrides: dict[tuple[int, int], float] = {}
        self.strength = 1.0
        self.frozen = False
        self.dropped = 0
        self.sent_tracks = self.tracks.copy()
        self.sent_master = self.master.copy()

    # addressing -------------------------------------------------------------------------
    def track_index(self, name: str) -> int:
        try:
            return self.track_names.index(name)
        except ValueError:
            raise ParameterError(f"no track named {name!r}; tracks: {self.track_names}") from None

    def address(self, track: str | None, name: str) -> tuple[int, int]:
        """(target, index) of a parameter; track None means the master bus."""
        if track is None:
            spec(MASTER, name)
            if name in NOT_LIVE:
                raise ParameterError(f"master.{name} cannot change while playing "
                                     f"(it is fixed at start or used offline only)")
            return MASTER_TARGET, MASTER_NAMES.index(name)
        spec(TRACK, name)
        return self.track_index(track), TRACK_NAMES.index(name)

    def _spec(self, target: int, index: int) -> Any:
        return MASTER_PARAMS[index] if target == MASTER_TARGET else TRACK_PARAMS[index]

    # changes ----------------------------------------------------------------------------
    def set_override(self, track: str | None, name: str, value: float) -> float:
        """Move one parameter by hand; it stays there until ``release``. Returns the value."""
        target, index = self.address(track, name)
        v = self._spec(target, index).check(value, "override")
        with self._lock:
            self.overrides[(target, index)] = v
            self._flush()
        return v

    def release(self, track: str | None = None, name: str | None = None) -> None:
        """Hand one parameter (or all, when name is None) back to the model."""
        with self._lock:
            if name is None:
                self.overrides.clear()
            else:
                self.overrides.pop(self.address(track, name), None)
            self._flush()

    def set_strength(self, strength: float) -> None:
        if isinstance(strength, bool) or not isinstance(strength, (int, float, np.number)) \
                or not 0.0 <= float(strength) <= 1.0:
            raise ParameterError(f"strength = {strength!r} is out of range: allowed 0 .. 1")
        with self._lock:
            self.strength = float(strength)
            self._flush()

    def freeze(self, frozen: bool = True) -> None:
        """Stop (or resume) model updates; overrides still work."""
        self.frozen = bool(frozen)

    def update_prediction(self, setting: ConsoleSetting, smoothing: float = 0.0) -> bool:
        """Move the prediction toward ``setting`` (normalised space; smoothing 0 = jump).

        Ignored (returns False) while frozen. Tracks missing from the setting keep theirs.
        """
        if not 0.0 <= smoothing < 1.0:
            raise HostError(f"smoothing = {smoothing} is out of range: allowed 0 .. <1")
        if self.frozen:
            return False
        new_t = self.tracks.copy()
        for t in setting.tracks:
            if t.name in self.track_names:
                new_t[self.track_index(t.name)] = _vector(
                    TRACK_PARAMS, validate(TRACK, t.params, f"prediction for track {t.name!r}"))
        new_m = _vector(MASTER_PARAMS, validate(MASTER, setting.master, "predicted master"))
        with self._lock:
            if self.frozen:
                return False
            self.tracks = _blend(TRACK_PARAMS, self.tracks, new_t, 1.0 - smoothing)
            self.master = _blend(MASTER_PARAMS, self.master, new_m, 1.0 - smoothing)
            self._flush()
        return True

    def effective(self) -> tuple[np.ndarray, np.ndarray]:
        """(tracks, master) values the console should have now."""
        t = _blend(TRACK_PARAMS, np.broadcast_to(self._neutral_t, self.tracks.shape),
                   self.tracks, self.strength)
        m = _blend(MASTER_PARAMS, self._neutral_m, self.master, self.strength)
        for (target, index), v in self.overrides.items():
            if target == MASTER_TARGET:
                m[index] = v
            else:
                t[target, index] = v
        return t, m

    def value(self, track: str | None, name: str) -> float:
        target, index = self.address(track, name)
        t, m = self.effective()
        return float(m[index] if target == MASTER_TARGET else t[target, index])

    def _flush(self) -> None:
        t, m = self.effective()
        for ti, pi in zip(*np.nonzero(t != self.sent_tracks)):
            if self.queue.push(int(ti), int(pi), float(t[ti, pi])):
                self.sent_tracks[ti, pi] = t[ti, pi]
            else:
                self.dropped += 1
        for pi in np.nonzero(m != self.sent_master)[0]:
            if MASTER_NAMES[pi] in NOT_LIVE:
                continue
            if self.queue.push(MASTER_TARGET, int(pi), float(m[pi])):
                self.sent_master[pi] = m[pi]
            else:
                self.dropped += 1

    def resend(self) -> None:
        """Push whatever the callback has not received yet (after a full queue)."""
        with self._lock:
            self._flush()

    def setting(self) -> ConsoleSetting:
        """The effective values as a ConsoleSetting (for offline renders)."""
        return self._as_setting(*self.effective())

    def setting_predicted(self) -> ConsoleSetting:
        """The (smoothed) model prediction, without strength and overrides (for sessions)."""
        with self._lock:
            return self._as_setting(self.tracks.copy(), self.master.copy())

    def _as_setting(self, t: np.ndarray, m: np.ndarray) -> ConsoleSetting:
        tracks = tuple(TrackSetting(name=n, role=self.roles[i],
                                    params={p: float(t[i, k]) for k, p in enumerate(TRACK_NAMES)})
                       for i, n in enumerate(self.track_names))
        master: dict[str, Any] = {p: float(m[k]) for k, p in enumerate(MASTER_NAMES)}
        master["target_lufs"] = None
        return ConsoleSetting(tracks=tracks, master=master)


class _Scales:
    """Per-parameter range arrays of a spec table, for blending every column at once."""

    def __init__(self, specs: Sequence[Any]) -> None:
        lo = np.array([p.min for p in specs], dtype=np.float64)
        hi = np.array([p.max for p in specs], dtype=np.float64)
        log = np.array([p.scale == "log" for p in specs])
        self.log_cols = np.nonzero(log)[0]
        self.lin_cols = np.nonzero(~log)[0]
        L, N = self.log_cols, self.lin_cols
        self.lo_l, self.hi_l = lo[L], hi[L]
        self.loglo = np.array([math.log(specs[k].min) for k in L], dtype=np.float64)
        self.logratio = np.array([math.log(specs[k].max / specs[k].min) for k in L],
                                 dtype=np.float64)
        self.ratio = np.array([specs[k].max / specs[k].min for k in L], dtype=np.float64)
        self.lo_n, self.hi_n = lo[N], hi[N]
        self.span = np.array([specs[k].max - specs[k].min for k in N], dtype=np.float64)


_SCALES: dict[int, _Scales] = {}


def _blend(specs: Sequence[Any], a: np.ndarray, b: np.ndarray, w: float) -> np.ndarray:
    """a + w (b - a) per parameter, in each parameter's normalised (lin/log) space.

    Column-wise the same arithmetic as ``ParamSpec.normalise``/``denormalise``, done for all
    log-scaled and all linear columns in two vector steps (an edit at strength < 1 recomputes
    this for every track: the control thread holds the GIL as briefly as it can)."""
    if w >= 1.0:
        return np.array(b, dtype=np.float64, copy=True)
    out = np.array(a, dtype=np.float64, copy=True)
    if w <= 0.0:
        return out
    sc = _SCALES.get(id(specs))
    if sc is None:
        sc = _SCALES[id(specs)] = _Scales(specs)
    b = np.asarray(b, dtype=np.float64)
    L, N = sc.log_cols, sc.lin_cols
    ua = (np.log(out[..., L]) - sc.loglo) / sc.logratio
    ub = (np.log(b[..., L]) - sc.loglo) / sc.logratio
    out[..., L] = np.clip(sc.lo_l * sc.ratio ** (ua + w * (ub - ua)), sc.lo_l, sc.hi_l)
    ua = (out[..., N] - sc.lo_n) / sc.span
    ub = (b[..., N] - sc.lo_n) / sc.span
    out[..., N] = np.clip(sc.lo_n + sc.span * (ua + w * (ub - ua)), sc.lo_n, sc.hi_n)
    return out
