"""ChannelStrip: input gain -> HPF -> low shelf -> peak1..3 -> high shelf -> LPF -> compressor
-> output gain -> pan, in ONE fused numba kernel (``strip_block``) that the console and the
master bus reuse. Inside each 32-sample control step it makes short passes over a scratch
buffer (filters; compressor target, smoothing, gain; output) so that the compressor's
log/exp vectorise and the filters' dependency chains overlap.

Parameters live in a float64 ``targets`` vector in ``TRACK_NAMES`` order (a real-time caller may
write it between blocks). Every ``STEP`` samples of the absolute sample counter the current values
glide toward the targets in the table's *normalised* domain (frequencies glide logarithmically,
time constant ``SMOOTH_MS``) and coefficients are recomputed while something moves; gains, make-up
and pan are interpolated per sample inside a step. So any block size gives the same output.

State arrays (one strip; the console stacks them with a leading strip axis):
``vec (6, P)`` rows TARGETS, SEEN, TGT, TGT_U, CUR_U, CUR; ``filt (7, 10)`` per section
``b0 b1 b2 a1 a2 active zl1 zl2 zr1 zr2``; ``st (ST_SIZE,)`` scalars (offsets below; ``IN_LANES``
is 1 while the console's lane kernel holds an up-to-date copy of this strip, see dsp.lanes);
``spec (3, P)`` rows min, max, is_log of the table.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

import numpy as np
from numba import njit

from dsp import biquad as bq
from dsp import compressor as comp
from dsp.errors import AudioInputError, ParameterError
from dsp.gain import FASTMATH, LN10_OVER_20, pan_gains
from dsp.params import TRACK, TRACK_NAMES, TRACK_PARAMS, validate
from dsp.validate import check_audio, check_sample_rate

STEP = 32            # control-rate step, samples
SMOOTH_MS = 10.0     # parameter glide time constant
SNAP = 1e-7          # normalised distance at which a glide snaps to its target
DENORMAL = 1e-30     # filter state below this is flushed to 0 at each step

P = len(TRACK_NAMES)
TARGETS, SEEN, TGT, TGT_U, CUR_U, CUR = range(6)
(GS, GIN0, GIN1, GL0, GL1, GR0, GR1, MOVING, COUNT, PEAK, SUMSQ, GRMAX, NMET, SR,
 KSMOOTH, IN_LANES, CC) = range(17)
SCRATCH = CC + comp.C_SIZE  # 3 x STEP work buffer: left, right, compressor gain
ST_SIZE = SCRATCH + 3 * STEP
ACTIVE, Z = 5, 6

_ix = {name: i for i, name in enumerate(TRACK_NAMES)}
I_IN, I_OUT, I_PAN, I_MAKEUP = (_ix["input_gain_db"], _ix["output_gain_db"], _ix["pan"],
                                _ix["comp_makeup_db"])
I_T, I_R, I_ATT, I_REL, I_W = (_ix["comp_threshold_db"], _ix["comp_ratio"], _ix["comp_attack_ms"],
                               _ix["comp_release_ms"], _ix["comp_knee_db"])
# section: kind, freq index, gain index (-1: none), q index (-1: none)
SECTIONS = np.array([
    (bq.HIGHPASS, _ix["hpf_freq_hz"], -1, _ix["hpf_q"]),
    (bq.LOW_SHELF, _ix["low_shelf_freq_hz"], _ix["low_shelf_gain_db"], -1),
    (bq.PEAK, _ix["peak1_freq_hz"], _ix["peak1_gain_db"], _ix["peak1_q"]),
    (bq.PEAK, _ix["peak2_freq_hz"], _ix["peak2_gain_db"], _ix["peak2_q"]),
    (bq.PEAK, _ix["peak3_freq_hz"], _ix["peak3_gain_db"], _ix["peak3_q"]),
    (bq.HIGH_SHELF, _ix["high_shelf_freq_hz"], _ix["high_shelf_gain_db"], -1),
    (bq.LOWPASS, _ix["lpf_freq_hz"], -1, _ix["lpf_q"]),
], dtype=np.int64)
NSEC = SECTIONS.shape[0]
SECTION_MASK = np.array([sum(1 << int(i) for i in row[1:] if i >= 0) for row in SECTIONS],
                        dtype=np.int64)
COMP_MASK = sum(1 << i for i in (I_T, I_R, I_ATT, I_REL, I_W))


def spec_array(specs: tuple = TRACK_PARAMS) -> np.ndarray:
    """``(3, P)`` rows min, max, is_log of a table section (track order)."""
    return np.array([[p.min for p in specs], [p.max for p in specs],
                     [1.0 if p.scale == "log" else 0.0 for p in specs]], dtype=np.float64)


TRACK_SPEC = spec_array()


def new_state(n: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Zeroed ``(vec, filt, st)`` for one strip, or stacked for ``n`` strips."""
    lead = () if n is None else (n,)
    return (np.zeros(lead + (6, P)), np.zeros(lead + (NSEC, 10)), np.zeros(lead + (ST_SIZE,)))


@njit(cache=True, error_model="numpy")
def _retarget(vec, st, spec):
    """Pick up new raw targets (clip to range, normalise); flag a glide if any differs.
    Nothing new (the usual case, a short scan): nothing to do, as _control keeps MOVING."""
    fresh = False
    for p in range(vec.shape[1]):
        fresh |= vec[TARGETS, p] != vec[SEEN, p]
    if not fresh:
        return
    for p in range(vec.shape[1]):
        t = vec[TARGETS, p]
        if t != vec[SEEN, p]:
            vec[SEEN, p] = t
            if t == t:  # a NaN target is ignored
                lo, hi = spec[0, p], spec[1, p]
                c = min(max(t, lo), hi)
                vec[TGT, p] = c
                if spec[2, p] != 0.0:
                    vec[TGT_U, p] = math.log(c / lo) / math.log(hi / lo)
                else:
                    vec[TGT_U, p] = (c - lo) / (hi - lo)
        if vec[TGT_U, p] != vec[CUR_U, p]:
            st[MOVING] = 1.0


@njit(cache=True, error_model="numpy")
def _control(vec, filt, st, spec, force):
    """Control-rate step: advance glides, redesign what moved, set the gain ramps' ends."""
    st[GIN0] = st[GIN1]
    st[GL0] = st[GL1]
    st[GR0] = st[GR1]
    for s in range(NSEC):
        for j in range(Z, Z + 4):
            if abs(filt[s, j]) < DENORMAL:
                filt[s, j] = 0.0
    if st[MOVING] == 0.0 and not force:
        return
    k = 0.0 if force else st[KSMOOTH]
    moving = False
    changed = 0
    for p in range(vec.shape[1]):
        t = vec[TGT_U, p]
        u = vec[CUR_U, p]
        if u != t or force:
            u = t + (u - t) * k
            if abs(u - t) < SNAP:
                u = t
                vec[CUR, p] = vec[TGT, p]
            else:
                moving = True
                lo, hi = spec[0, p], spec[1, p]
                vec[CUR, p] = (lo * math.exp(u * math.log(hi / lo)) if spec[2, p] != 0.0
                               else lo + (hi - lo) * u)
            vec[CUR_U, p] = u
            changed |= 1 << p
    cur = vec[CUR]
    sr = st[SR]
    for s in range(NSEC):
        if changed & SECTION_MASK[s]:
            kind, fi, gi, qi = SECTIONS[s, 0], SECTIONS[s, 1], SECTIONS[s, 2], SECTIONS[s, 3]
            b0, b1, b2, a1, a2 = bq.design(kind, cur[fi], cur[gi] if gi >= 0 else 0.0,
                                           cur[qi] if qi >= 0 else 0.7071, sr)
            active = not (b0 == 1.0 and b1 == 0.0 and b2 == 0.0 and a1 == 0.0 and a2 == 0.0)
            if not active:
                filt[s, Z:Z + 4] = 0.0
            filt[s, 0], filt[s, 1], filt[s, 2], filt[s, 3], filt[s, 4] = b0, b1, b2, a1, a2
            filt[s, ACTIVE] = 1.0 if active else 0.0
    if changed & COMP_MASK:
        comp.fill_coefs(st[CC:], cur[I_T], cur[I_R], cur[I_W], cur[I_ATT], cur[I_REL], sr)
    st[GIN1] = math.exp(cur[I_IN] * LN10_OVER_20)
    post = math.exp((cur[I_MAKEUP] + cur[I_OUT]) * LN10_OVER_20)
    gl, gr = pan_gains(cur[I_PAN])
    st[GL1] = post * gl
    st[GR1] = post * gr
    if force:
        st[GIN0], st[GL0], st[GR0] = st[GIN1], st[GL1], st[GR1]
    st[MOVING] = 1.0 if moving else 0.0


@njit(cache=True, error_model="numpy")
def init_state(vec, filt, st, spec, sample_rate):
    """Clear audio state and counters; current parameters := targets (no glide)."""
    filt[:, Z:] = 0.0
    st[:] = 0.0
    st[SR] = sample_rate
    st[KSMOOTH] = math.exp(-STEP / (SMOOTH_MS / 1000.0 * sample_rate))
    vec[SEEN, :] = np.nan
    _retarget(vec, st, spec)
    _control(vec, filt, st, spec, bool(True))   # bool(): one compiled _control, not one per literal


@njit(cache=True, fastmath=FASTMATH, error_model="numpy")
def strip_block(inp, out, start, stop, accumulate, vec, filt, st, spec, new_meters):
    """Samples ``start:stop`` of ``inp (1 or 2, n)`` into stereo ``out (2, n)`` (``+=`` if
    ``accumulate``). The meters (peak, sum of squares, max gain reduction) restart unless
    ``new_meters`` is False (a caller that splits one block into pieces).

    Each control step runs short passes (filters; compressor target, smoothing, gain; output)
    through a scratch buffer: the compressor's log/exp passes vectorise, and the CPU overlaps
    the filters' per-sample dependency chains.
    """
    _retarget(vec, st, spec)
    right = inp.shape[0] - 1
    buf_l = st[SCRATCH:SCRATCH + STEP]
    buf_r = st[SCRATCH + STEP:SCRATCH + 2 * STEP]
    buf_g = st[SCRATCH + 2 * STEP:SCRATCH + 3 * STEP]
    count = np.int64(st[COUNT])
    gs = st[GS]
    peak = 0.0 if new_meters else st[PEAK]
    sumsq = 0.0 if new_meters else st[SUMSQ]
    grmax = 0.0 if new_meters else st[GRMAX]
    pos = start
    inv_step = 1.0 / STEP
    while pos < stop:
        phase = count % STEP
        if phase == 0:
            _control(vec, filt, st, spec, bool(False))
        seg = min(STEP - phase, stop - pos)
        gi0, dgi = st[GIN0], (st[GIN1] - st[GIN0]) * inv_step
        top = 0.0
        for j in range(seg):
            gin = gi0 + dgi * np.float64(phase + j + 1)
            xl = inp[0, pos + j] * gin
            xr = inp[right, pos + j] * gin
            for s in range(NSEC):
                if filt[s, ACTIVE] != 0.0:
                    b0, b1, b2, a1, a2 = filt[s, 0], filt[s, 1], filt[s, 2], filt[s, 3], filt[s, 4]
                    xl, filt[s, 6], filt[s, 7] = bq.tick(xl, b0, b1, b2, a1, a2,
                                                         filt[s, 6], filt[s, 7])
                    xr, filt[s, 8], filt[s, 9] = bq.tick(xr, b0, b1, b2, a1, a2,
                                                         filt[s, 8], filt[s, 9])
            buf_l[j] = xl
            buf_r[j] = xr
            top = max(top, max(abs(xl), abs(xr)))
        if gs == 0.0 and top <= st[CC + comp.C_KNEE_LIN]:
            buf_g[:seg] = 1.0  # idle below the knee for the whole step
        else:
            t_db, knee_db = st[CC + comp.C_T], st[CC + comp.C_W]
            slope, inv_2w = st[CC + comp.C_SLOPE], st[CC + comp.C_INV_2W]
            a_att, a_rel = st[CC + comp.C_A_ATT], st[CC + comp.C_A_REL]
            for j in range(seg):  # independent per sample: vectorises
                buf_g[j] = comp.target_db(max(abs(buf_l[j]), abs(buf_r[j])), t_db, knee_db,
                                          slope, inv_2w)
            gc_last = buf_g[seg - 1]
            for j in range(seg):  # the only recurrence, and a short one
                gs = comp.smooth_db(buf_g[j], gs, a_att, a_rel)
                buf_g[j] = gs
            gs = comp.settle_db(gc_last, gs)  # once per step: keeps the chain short
            for j in range(seg):
                grmax = max(grmax, -buf_g[j])
            for j in range(seg):
                buf_g[j] = comp.gain_lin(buf_g[j])
        gl0, dgl = st[GL0], (st[GL1] - st[GL0]) * inv_step
        gr0, dgr = st[GR0], (st[GR1] - st[GR0]) * inv_step
        for j in range(seg):
            r = np.float64(phase + j + 1)
            yl = buf_l[j] * buf_g[j] * (gl0 + dgl * r)
            yr = buf_r[j] * buf_g[j] * (gr0 + dgr * r)
            if accumulate:
                out[0, pos + j] += np.float32(yl)
                out[1, pos + j] += np.float32(yr)
            else:
                out[0, pos + j] = np.float32(yl)
                out[1, pos + j] = np.float32(yr)
            peak = max(peak, max(abs(yl), abs(yr)))
            sumsq += yl * yl + yr * yr
        pos += seg
        count += seg
    st[GS] = gs
    st[COUNT] = count
    st[IN_LANES] = 0.0  # this state moved on: a console's lane copy (dsp.lanes) is stale
    st[PEAK] = peak
    st[SUMSQ] = sumsq
    st[GRMAX] = grmax
    st[NMET] = (stop - start) + (0 if new_meters else st[NMET])


def _meter_db(lin: float) -> float:
    return 20.0 * math.log10(max(lin, 1e-10))


class ChannelStrip:
    """One track's strip. ``params``: partial mapping of TRACK_NAMES (missing -> neutral)."""

    def __init__(self, sample_rate: float, params: Mapping[str, Any] | None = None,
                 channels: int = 2, *, _state: tuple | None = None) -> None:
        self.sample_rate = check_sample_rate(sample_rate)
        if isinstance(channels, bool) or channels not in (1, 2):
            raise AudioInputError(f"ChannelStrip channels must be 1 or 2, got {channels!r}")
        self.channels = int(channels)
        self._vec, self._filt, self._st = new_state() if _state is None else _state
        self._spec = TRACK_SPEC
        self._vec[TARGETS] = [validate(TRACK, params or {}, "ChannelStrip")[n]
                              for n in TRACK_NAMES]
        self.reset()

    @property
    def targets(self) -> np.ndarray:
        """Writable float64 target vector (TRACK_NAMES order); picked up at the next block."""
        return self._vec[TARGETS]

    @property
    def params(self) -> dict[str, float]:
        return dict(zip(TRACK_NAMES, self._vec[TARGETS].tolist()))

    @property
    def current(self) -> dict[str, float]:
        """Smoothed values in use right now."""
        return dict(zip(TRACK_NAMES, self._vec[CUR].tolist()))

    def set_params(self, mapping: Mapping[str, Any]) -> None:
        """Validated partial update; the change glides in over ~SMOOTH_MS."""
        if not isinstance(mapping, Mapping):
            raise ParameterError(f"track parameters must be a mapping, got "
                                 f"{type(mapping).__name__}")
        for name, value in mapping.items():
            if name not in _ix:
                raise ParameterError(f"unknown track parameter {name!r}; known: "
                                     f"{', '.join(TRACK_NAMES)}")
            self._vec[TARGETS, _ix[name]] = TRACK_PARAMS[_ix[name]].check(value, "ChannelStrip")

    def reset(self) -> None:
        """Clear filter/compressor state and the sample counter; jump to the targets."""
        init_state(self._vec, self._filt, self._st, self._spec, self.sample_rate)

    @property
    def gain_reduction_db(self) -> float:
        """Largest compressor gain reduction (dB, >= 0) in the last block."""
        return float(self._st[GRMAX])

    @property
    def peak_db(self) -> float:
        """Sample peak of the last block's output, dBFS (floor -200)."""
        return _meter_db(float(self._st[PEAK]))

    @property
    def rms_db(self) -> float:
        """RMS over both output channels of the last block, dBFS (floor -200)."""
        n = max(float(self._st[NMET]), 1.0)
        return _meter_db(math.sqrt(float(self._st[SUMSQ]) / (2.0 * n)))

    def process(self, audio: np.ndarray, sample_rate: float) -> np.ndarray:
        """``(channels, n)`` float32 -> stereo ``(2, n)``; state carries over between calls."""
        if check_sample_rate(sample_rate) != self.sample_rate:
            raise AudioInputError(f"sample_rate = {sample_rate} Hz differs from this strip's "
                                  f"{self.sample_rate:g} Hz; make a new ChannelStrip")
        x = check_audio(audio, "audio", channels=self.channels)
        out = np.empty((2, x.shape[1]), dtype=np.float32)
        strip_block(x, out, 0, x.shape[1], False, self._vec, self._filt, self._st, self._spec,
                    True)
        return out

    __call__ = process

    def process_into(self, inp: np.ndarray, out: np.ndarray) -> None:
        """Real-time path: no checks, no allocation. ``out`` is (2, n) float32."""
        strip_block(inp, out, 0, inp.shape[1], False, self._vec, self._filt, self._st,
                    self._spec, True)
