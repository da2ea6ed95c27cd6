"""Feed-forward, log-domain, stereo-linked compressor (docs/DESIGN.md, dsp/compressor.py).

Per sample: peak detector over channels in dB, soft-knee static curve, attack/release smoothing
of the gain in dB, then ``x * 10**((g_s + makeup_db)/20)``. Below the knee with no gain reduction
pending the kernel skips the log/exp (the result is the same). log/exp are dsp.gain.log2_approx /
exp2_approx (polynomials without division, 6e-9 dB and 3e-10 relative error, inlinable, so the
compressor passes of the channel strip and the console's lane kernel vectorise).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from dsp.gain import FASTMATH, check_arg, exp2_approx, log2_approx
from dsp.validate import check_audio, check_sample_rate

GS_FLOOR_DB = 1e-10  # smoothed gain this close to 0 dB (while releasing to 0) is set to 0
DB_PER_LOG2 = 20.0 * math.log10(2.0)  # 20*log10(x) = DB_PER_LOG2 * log2(x)
LOG2_PER_DB = 1.0 / DB_PER_LOG2

# layout of the float64 coefficient vector ``cc`` shared with the channel strip
C_T, C_W, C_SLOPE, C_INV_2W, C_KNEE_LIN, C_A_ATT, C_A_REL = range(7)
C_SIZE = 7


@njit(cache=True)
def time_to_alpha(time_ms: float, sample_rate: float) -> float:
    """One-pole coefficient ``exp(-1 / (time_ms/1000 * sample_rate))``."""
    return math.exp(-1.0 / (time_ms / 1000.0 * sample_rate))


@njit(inline="always", fastmath=FASTMATH, error_model="numpy")
def static_gain_db(x_db, t_db, knee_db, slope, inv_2w):
    """Target gain ``y - x`` (<= 0) of the soft-knee curve, written without branches.

    With d = x - T, e = clip(d + W/2, 0, W), slope = 1/R - 1, inv_2w = 1/(2W) (0 if W = 0):
    slope * (e^2 / (2W) + max(d - W/2, 0)) is exactly the three-piece curve of docs/DESIGN.md
    (0 below the knee, the quadratic inside it, T + d/R - x above it).
    """
    d = x_db - t_db
    e = min(max(d + 0.5 * knee_db, 0.0), knee_db)
    return slope * (e * e * inv_2w + max(d - 0.5 * knee_db, 0.0))


@njit(cache=True)
def fill_coefs(cc, threshold_db, ratio, knee_db, attack_ms, release_ms, sample_rate):
    """Write the per-sample constants of the compressor into ``cc`` (layout C_*)."""
    cc[C_T] = threshold_db
    cc[C_W] = knee_db
    cc[C_SLOPE] = 1.0 / ratio - 1.0
    cc[C_INV_2W] = 0.5 / knee_db if knee_db > 0.0 else 0.0
    # below this linear peak the static curve is the identity; ratio 1 never compresses
    cc[C_KNEE_LIN] = math.inf if ratio == 1.0 else math.pow(10.0, (threshold_db - knee_db / 2.0)
                                                            / 20.0)
    cc[C_A_ATT] = time_to_alpha(attack_ms, sample_rate)
    cc[C_A_REL] = time_to_alpha(release_ms, sample_rate)


@njit(inline="always", fastmath=FASTMATH, error_model="numpy")
def target_db(peak, t_db, knee_db, slope, inv_2w):
    """Detector (linear peak over channels) -> target gain g_c in dB (<= 0)."""
    return static_gain_db(DB_PER_LOG2 * log2_approx(max(peak, 1e-10)), t_db, knee_db, slope,
                          inv_2w)


@njit(inline="always", fastmath=FASTMATH, error_model="numpy")
def smooth_db(gc, gs, alpha_attack, alpha_release):
    """One attack/release step of the smoothed gain (dB): ``a*gs + (1-a)*gc`` written as
    ``gc + a*(gs - gc)`` with both candidates computed, so the per-sample dependency chain
    through ``gs`` is one subtraction, one FMA and a select."""
    d = gs - gc
    attack = gc + alpha_attack * d
    release = gc + alpha_release * d
    return attack if gc < gs else release


@njit(inline="always")
def settle_db(gc, gs):
    """A smoothed gain within GS_FLOOR_DB of 0 dB while releasing to 0 dB becomes exactly 0
    (a 1e-10 dB difference; it lets the idle path skip log/exp and avoids denormals)."""
    return 0.0 if (gc == 0.0 and gs > -GS_FLOOR_DB) else gs


@njit(inline="always", fastmath=FASTMATH, error_model="numpy")
def gain_lin(gs):
    """10 ** (gs / 20), exactly 1 at 0 dB."""
    return 1.0 if gs == 0.0 else exp2_approx(gs * LOG2_PER_DB)


@njit(inline="always", fastmath=FASTMATH, error_model="numpy")
def tick(peak, gs, cc):
    """Detector peak (linear, >= 0) and previous smoothed gain -> (new gain dB, linear gain)."""
    if gs == 0.0 and peak <= cc[C_KNEE_LIN]:
        return 0.0, 1.0  # idle below the knee: the formula gives exactly this
    gc = target_db(peak, cc[C_T], cc[C_W], cc[C_SLOPE], cc[C_INV_2W])
    gs = settle_db(gc, smooth_db(gc, gs, cc[C_A_ATT], cc[C_A_REL]))
    return gs, gain_lin(gs)


@njit(cache=True, fastmath=FASTMATH, error_model="numpy")
def _compressor_kernel(inp, out, cc, makeup_lin, state):
    """``state = [g_s (dB), max gain reduction of this call (dB)]``."""
    gs = state[0]
    gr = 0.0
    for i in range(inp.shape[1]):
        peak = 0.0
        for c in range(inp.shape[0]):
            peak = max(peak, abs(np.float64(inp[c, i])))
        gs, g = tick(peak, gs, cc)
        gr = max(gr, -gs)
        g *= makeup_lin
        for c in range(inp.shape[0]):
            out[c, i] = np.float32(inp[c, i] * g)
    state[0] = gs
    state[1] = gr


class Compressor:
    """Stereo-linked compressor: ``Compressor(threshold_db=-20, ratio=4).process(audio, sr)``."""

    _args = ("threshold_db", "ratio", "attack_ms", "release_ms", "knee_db", "makeup_db")

    def __init__(self, threshold_db: float = 0.0, ratio: float = 1.0, attack_ms: float = 10.0,
                 release_ms: float = 150.0, knee_db: float = 6.0, makeup_db: float = 0.0) -> None:
        self.threshold_db = threshold_db
        self.ratio = ratio
        self.attack_ms = attack_ms
        self.release_ms = release_ms
        self.knee_db = knee_db
        self.makeup_db = makeup_db
        self._state = np.zeros(2)

    def __setattr__(self, name: str, value: object) -> None:
        if name in self._args:
            value = check_arg("Compressor", "compressor", name, value)
        object.__setattr__(self, name, value)

    def __repr__(self) -> str:
        args = ", ".join(f"{a}={getattr(self, a)!r}" for a in self._args)
        return f"Compressor({args})"

    @property
    def gain_reduction_db(self) -> float:
        """Largest gain reduction (dB, >= 0) during the last ``process`` call."""
        return float(self._state[1])

    def static_curve_db(self, input_db: np.ndarray) -> np.ndarray:
        """Output level (dB) of a steady input level (dB) once the smoothing has settled."""
        x = np.asarray(input_db, dtype=np.float64)
        t, r, w = self.threshold_db, self.ratio, self.knee_db
        d = x - t
        knee = (w > 0) & (2 * np.abs(d) <= w)
        y = np.where(2 * d < -w, x, np.where(knee, x + (1 / r - 1) * (d + w / 2) ** 2
                                              / (2 * max(w, 1e-300)), t + d / r))
        return y + self.makeup_db

    def process(self, audio: np.ndarray, sample_rate: float) -> np.ndarray:
        sr = check_sample_rate(sample_rate)
        x = check_audio(audio)
        cc = np.empty(C_SIZE)
        fill_coefs(cc, self.threshold_db, self.ratio, self.knee_db, self.attack_ms,
                   self.release_ms, sr)
        out = np.empty_like(x)
        _compressor_kernel(x, out, cc, 10.0 ** (self.makeup_db / 20.0), self._state)
        return out

    __call__ = process

    def reset(self) -> None:
        """Forget the gain reduction in progress; parameters are kept."""
        self._state[:] = 0.0
