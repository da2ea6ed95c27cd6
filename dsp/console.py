"""Console: N channel strips -> stereo sum -> MasterBus (EQ, glue compressor, gain, limiter).

The track strips run side by side in the multi-lane kernel ``dsp.lanes.lanes_block`` (one SIMD
lane per strip channel; the same arithmetic as ``dsp.strip.strip_block`` per strip). The master
bus runs the fused strip kernel with the high-/low-pass bypassed, input gain 0 dB and pan centred;
its ``gain_db`` sits in the strip's output-gain slot (after the compressor), then the brick-wall
``dsp.limiter.Limiter``. All strips and the master run in one numba call per block, so small
real-time blocks stay cheap.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

import numpy as np
from numba import njit

from dsp.errors import AudioInputError, ParameterError
from dsp.lanes import lanes_block, new_lanes
from dsp.limiter import Limiter
from dsp.params import MASTER, MASTER_NAMES, ConsoleSetting, spec, validate
from dsp.strip import (COUNT, GRMAX, NMET, PEAK, SUMSQ, TARGETS, TRACK_SPEC, ChannelStrip,
                       init_state, new_state, strip_block)
from dsp.strip import _ix as TRACK_INDEX
from dsp.validate import check_audio, check_sample_rate

LIMITER_ARGS = {"limiter_ceiling_db": "ceiling_db", "limiter_release_ms": "release_ms",
                "limiter_lookahead_ms": "lookahead_ms"}
# read by dsp.render, not by the bus
RENDER_ONLY = ("target_lufs", "max_limiting_db", "true_peak_over_db")
# master parameter -> slot of the track-shaped vector the fused kernel reads
MASTER_SLOT = {n: TRACK_INDEX["output_gain_db" if n == "gain_db" else n] for n in MASTER_NAMES
               if n not in LIMITER_ARGS and n not in RENDER_ONLY}
CHUNK = 1024  # samples per pass of the console kernel over all strips
MASTER_FIXED = {"input_gain_db": 0.0, "hpf_freq_hz": 10.0, "hpf_q": 0.7071,
                "lpf_freq_hz": 20000.0, "lpf_q": 0.7071, "pan": 0.0}


def _master_spec() -> np.ndarray:
    out = TRACK_SPEC.copy()
    for name, slot in MASTER_SLOT.items():
        p = spec(MASTER, name)
        out[:, slot] = (p.min, p.max, 1.0 if p.scale == "log" else 0.0)
    return out


MASTER_SPEC = _master_spec()


@njit(cache=True, error_model="numpy")
def _console_kernel(stems, out, vec, filt, st, spec_t, lanes, mvec, mfilt, mst, spec_m):
    """Sum the strips of ``stems (N, C, n)`` into ``out (2, n)``, then the master (no limiter).

    Works through the block in CHUNK-sample pieces so the mix bus stays in cache. The strips
    run in the multi-lane kernel; if their sample counters differ (one strip was reset on its
    own) each runs strip_block instead, which gives the same output.
    """
    n = stems.shape[2]
    together = True
    for i in range(1, stems.shape[0]):
        together = together and st[i, COUNT] == st[0, COUNT]
    for c0 in range(0, n, CHUNK):
        c1 = min(c0 + CHUNK, n)
        out[:, c0:c1] = 0.0
        # bool(...): a literal True/False would make numba compile strip_block once per value
        if together:
            lanes_block(stems, out, c0, c1, c0 == 0, vec, filt, st, spec_t, lanes)
        else:
            for i in range(stems.shape[0]):
                strip_block(stems[i], out, c0, c1, bool(True), vec[i], filt[i], st[i], spec_t,
                            c0 == 0)
        strip_block(out, out, c0, c1, bool(False), mvec, mfilt, mst, spec_m, c0 == 0)


def _db(lin: float) -> float:
    return 20.0 * math.log10(max(lin, 1e-10))


class MasterBus:
    """Master bus: EQ (low shelf, peak1..3, high shelf) -> glue compressor -> gain -> limiter."""

    def __init__(self, sample_rate: float, params: Mapping[str, Any] | None = None) -> None:
        self.sample_rate = check_sample_rate(sample_rate)
        values = validate(MASTER, params or {}, "MasterBus")
        self._vec, self._filt, self._st = new_state()
        for name, value in MASTER_FIXED.items():
            self._vec[TARGETS, TRACK_INDEX[name]] = value
        for name, slot in MASTER_SLOT.items():
            self._vec[TARGETS, slot] = values[name]
        self.target_lufs: float | None = values["target_lufs"]
        self.max_limiting_db: float = values["max_limiting_db"]
        self.true_peak_over_db: float = values["true_peak_over_db"]
        self.limiter = Limiter(self.sample_rate, **{a: values[n] for n, a in LIMITER_ARGS.items()})
        self.reset()

    @property
    def latency_samples(self) -> int:
        return self.limiter.latency_samples

    @property
    def targets(self) -> np.ndarray:
        """Writable float64 targets in the *track* layout (master names sit at MASTER_SLOT);
        a real-time caller may write them between blocks, like ChannelStrip.targets."""
        return self._vec[TARGETS]

    @property
    def params(self) -> dict[str, Any]:
        out: dict[str, Any] = {n: float(self._vec[TARGETS, s]) for n, s in MASTER_SLOT.items()}
        out.update({n: float(getattr(self.limiter, a)) for n, a in LIMITER_ARGS.items()})
        out["target_lufs"] = self.target_lufs
        out["max_limiting_db"] = self.max_limiting_db
        out["true_peak_over_db"] = self.true_peak_over_db
        return {n: out[n] for n in MASTER_NAMES}

    def set_params(self, mapping: Mapping[str, Any]) -> None:
        """Validated partial update. EQ/compressor/gain glide in; limiter ceiling and release
        change at once; a new ``limiter_lookahead_ms`` rebuilds the limiter (not real-time safe)."""
        if not isinstance(mapping, Mapping):
            raise ParameterError(f"master parameters must be a mapping, got "
                                 f"{type(mapping).__name__}")
        checked = {}
        for name, value in mapping.items():
            p = spec(MASTER, name)  # raises on unknown names
            checked[name] = None if (name == "target_lufs" and value is None) else \
                p.check(value, "MasterBus")
        for name, v in checked.items():
            if name in MASTER_SLOT:
                self._vec[TARGETS, MASTER_SLOT[name]] = v
            elif name == "target_lufs":
                self.target_lufs = v
            elif name == "max_limiting_db":
                self.max_limiting_db = v
            elif name == "true_peak_over_db":
                self.true_peak_over_db = v
        lim = {LIMITER_ARGS[n]: v for n, v in checked.items() if n in LIMITER_ARGS}
        if lim.get("lookahead_ms", self.limiter.lookahead_ms) != self.limiter.lookahead_ms:
            self.limiter = Limiter(self.sample_rate, lim.get("ceiling_db", self.limiter.ceiling_db),
                                   lim.get("release_ms", self.limiter.release_ms),
                                   lim["lookahead_ms"])
        elif lim:
            self.limiter.set_params(ceiling_db=lim.get("ceiling_db"),
                                    release_ms=lim.get("release_ms"))

    def reset(self) -> None:
        init_state(self._vec, self._filt, self._st, MASTER_SPEC, self.sample_rate)
        self.limiter.reset()

    def _state(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return self._vec, self._filt, self._st

    def process_into(self, inp: np.ndarray, out: np.ndarray) -> None:
        """Real-time path, stereo ``(2, n)`` float32; ``out`` may be ``inp``."""
        self._bus_into(inp, out)
        self.limiter.process_into(out, out)

    def _bus_into(self, inp: np.ndarray, out: np.ndarray) -> None:
        """EQ, glue compressor and gain, no limiter (``dsp.render.render_prefader``)."""
        strip_block(inp, out, 0, inp.shape[1], False, self._vec, self._filt, self._st,
                    MASTER_SPEC, True)

    def process(self, audio: np.ndarray, sample_rate: float) -> np.ndarray:
        if check_sample_rate(sample_rate) != self.sample_rate:
            raise AudioInputError(f"sample_rate = {sample_rate} Hz differs from this bus's "
                                  f"{self.sample_rate:g} Hz")
        x = check_audio(audio, "audio", channels=2)
        out = np.empty_like(x)
        self.process_into(x, out)
        return out

    __call__ = process

    @property
    def gain_reduction_db(self) -> float:
        """Glue compressor: largest gain reduction in the last block (dB)."""
        return float(self._st[GRMAX])

    @property
    def limiter_gain_reduction_db(self) -> float:
        return self.limiter.gain_reduction_db

    @property
    def peak_db(self) -> float:
        """Sample peak of the last block before the limiter (dBFS)."""
        return _db(float(self._st[PEAK]))

    @property
    def rms_db(self) -> float:
        return _db(math.sqrt(float(self._st[SUMSQ]) / (2.0 * max(float(self._st[NMET]), 1.0))))


class Console:
    """``Console(sample_rate, setting)``: ``process(stems (N, 2, n)) -> (2, n)`` block by block.

    The output is delayed by ``latency_samples`` (the limiter's lookahead).
    """

    def __init__(self, sample_rate: float, setting: ConsoleSetting) -> None:
        self.sample_rate = check_sample_rate(sample_rate)
        if not isinstance(setting, ConsoleSetting):
            raise ParameterError(f"setting must be a dsp.params.ConsoleSetting, got "
                                 f"{type(setting).__name__}")
        self.names = tuple(t.name for t in setting.tracks)
        n = len(self.names)
        self._vec, self._filt, self._st = new_state(n)
        self.strips = [ChannelStrip(self.sample_rate, t.params, 2,
                                    _state=(self._vec[i], self._filt[i], self._st[i]))
                       for i, t in enumerate(setting.tracks)]
        self.master = MasterBus(self.sample_rate, setting.master)
        self._lanes = new_lanes(n)
        # the kernel's state arguments (all fixed arrays: reset() works in place)
        self._kernel_state = (self._vec, self._filt, self._st, TRACK_SPEC, self._lanes,
                              *self.master._state(), MASTER_SPEC)

    @property
    def latency_samples(self) -> int:
        return self.master.latency_samples

    def _index(self, track: int | str) -> int:
        if isinstance(track, str):
            if track not in self.names:
                raise ParameterError(f"no track named {track!r}; tracks: {list(self.names)}")
            return self.names.index(track)
        if isinstance(track, bool) or not isinstance(track, (int, np.integer)) \
                or not 0 <= track < len(self.names):
            raise ParameterError(f"track index must be 0 .. {len(self.names) - 1}, got {track!r}")
        return int(track)

    def set_track_params(self, track: int | str, mapping: Mapping[str, Any]) -> None:
        self.strips[self._index(track)].set_params(mapping)

    def set_master_params(self, mapping: Mapping[str, Any]) -> None:
        self.master.set_params(mapping)

    def reset(self) -> None:
        for s in self.strips:
            s.reset()
        self.master.reset()

    def _check(self, stems: object) -> np.ndarray:
        if not isinstance(stems, np.ndarray):
            raise TypeError(f"stems must be a numpy array shaped (tracks, 2, samples), got "
                            f"{type(stems).__name__}")
        if stems.dtype == np.float64:
            stems = stems.astype(np.float32)
        if stems.dtype != np.float32:
            raise AudioInputError(f"stems must be float32 audio, got dtype {stems.dtype}")
        if stems.ndim != 3 or stems.shape[0] != len(self.names) or stems.shape[1] != 2:
            raise AudioInputError(f"stems must be shaped ({len(self.names)}, 2, samples) for "
                                  f"tracks {list(self.names)}, got shape {stems.shape}")
        if not np.isfinite(stems).all():
            bad = [self.names[i] for i in range(stems.shape[0]) if not np.isfinite(stems[i]).all()]
            raise AudioInputError(f"stems of tracks {bad} contain NaN or inf samples")
        # contiguous: a block cut from a longer array would make numba compile the console
        # kernel again for strided arrays (~15 s), for the same result
        return np.ascontiguousarray(stems)

    def process(self, stems: np.ndarray, sample_rate: float | None = None) -> np.ndarray:
        """Validated block: ``stems (N, 2, n)`` float32 -> mix ``(2, n)`` (state carries over)."""
        if sample_rate is not None and check_sample_rate(sample_rate) != self.sample_rate:
            raise AudioInputError(f"sample_rate = {sample_rate} Hz differs from this console's "
                                  f"{self.sample_rate:g} Hz")
        x = self._check(stems)
        out = np.empty((2, x.shape[2]), dtype=np.float32)
        self.process_into(x, out)
        return out

    __call__ = process

    def process_into(self, stems: np.ndarray, out: np.ndarray) -> None:
        """Real-time path: no checks, no allocation; ``out`` is (2, n) float32. Both C-contiguous
        (a strided view would make numba compile the kernel again for that layout)."""
        _console_kernel(stems, out, *self._kernel_state)
        self.master.limiter.process_into(out, out)

    def _mix_into(self, stems: np.ndarray, out: np.ndarray) -> None:
        """Strips and master bus up to (not including) the limiter."""
        _console_kernel(stems, out, *self._kernel_state)
