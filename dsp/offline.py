"""Whole-file (offline) master front end: EQ, loudness and glue compressor of a finished mix,
computing what ``dsp.strip`` + ``dsp.loudness`` compute, several times faster.

A biquad's one-sample recursion is latency bound, so one stereo file keeps a core mostly idle.
Offline the whole file is there, so it is cut into ``S`` time segments that run side by side,
one SIMD lane per (segment, channel) (``LANES`` lanes, a compile-time constant so the lane loops
vectorise). Each segment starts ``warm`` samples early from zero filter state; the start-up
transient decays with the slowest pole of the filters, and ``warm`` is chosen from that pole so
that it is below 1e-18 of the signal when the segment's own samples begin: the result equals the
sequential filter to float64 rounding (tests: within 1e-7, usually bit for bit).

- ``eq_and_loudness(x, sr, eq)``: the EQ cascade (a0-normalised sections, ``dsp.eq``) of ``x``
  and, in the same pass, the BS.1770 K-weighted energy of every 100 ms sub-block of ``x``, gated
  as ``dsp.loudness`` does: returns the EQ'd audio (float32) and ``x``'s integrated loudness.
- ``glue_in_place(e, sr, input_gain_db, comp)``: input gain, then the strip's compressor step by
  step (``STEP``-sample steps aligned to the file start, the same idle test and settling as
  ``dsp.strip.strip_block``), then make-up, in place; returns the sample peak and the largest
  gain reduction. ``glue_in_place(eq_and_loudness(x)[0])`` equals ``ChannelStrip`` with the same
  input gain, EQ and compressor within float32 rounding (the input gain is applied after the
  linear EQ instead of before it).
"""

from __future__ import annotations

import math
from typing import Any, Mapping

import numpy as np
from numba import njit

from dsp import biquad as bq
from dsp import compressor as comp
from dsp.gain import FASTMATH, LN10_OVER_20
from dsp.loudness import channel_weights, integrated_from_subblocks, k_weighting_coeffs
from dsp.validate import check_audio, check_sample_rate

LANES = 16           # SIMD lanes: (segment, channel) pairs running side by side
CHUNK = 128          # samples per lane per pass (the lane buffer stays in L1)
SUB = 16             # samples per unrolled run of a section (a constant: the lanes vectorise)
STEP = 32            # the channel strip's control step (compressor settle, idle test)
SETTLE = 1e-18       # start-up transient left when a segment's own samples begin
MIN_WARM_S = 0.05    # shortest warm-up, seconds
MIN_SEGMENT_WARMS = 2  # a segment is at least this many warm-ups long (else fewer segments)


def warmup_samples(coefs: np.ndarray, sample_rate: float) -> int:
    """Samples after which every section's zero-state start-up transient is below SETTLE
    (slowest pole radius r: r**n * n < SETTLE, the n for a double pole)."""
    r = 0.0
    for _, _, _, a1, a2 in np.asarray(coefs, dtype=np.float64).reshape(-1, 5):
        r = max(r, float(np.max(np.abs(np.roots([1.0, a1, a2])))) if (a1 or a2) else 0.0)
    n = int(MIN_WARM_S * sample_rate)
    if r >= 1.0:
        raise ValueError(f"an unstable section (pole radius {r:.6f}) cannot be time-split")
    if r > 0.0:
        log_r = math.log(r)
        while n < 1 << 40 and n * log_r + math.log(max(n, 1)) > math.log(SETTLE):
            n = int(n * 1.25) + 1
    return n


def plan(n: int, channels: int, warm: int, hop: int) -> tuple[int, int, int]:
    """``(segments, segment_length, warm)``: segment length and warm-up are whole sub-blocks
    (``hop`` samples) so that every lane closes its sub-blocks at the same step."""
    warm = -(-warm // hop) * hop
    most = max(1, LANES // channels)
    segs = max(1, min(most, n // max(MIN_SEGMENT_WARMS * warm, 1)))
    seg = -(-n // segs)
    seg = -(-seg // hop) * hop
    if segs == 1:
        warm = 0  # one segment starts at the file start: nothing to warm up
    return segs, seg, warm


@njit(cache=True)
def _lane_map(nch, segs, seg, warm, lane_ch, lane_base):
    """Lane l: channel ``l % nch`` of segment ``l // nch``; lanes past the last pair copy
    lane 0 (computed, never used)."""
    used = nch * segs
    for lane in range(LANES):
        k = lane if lane < used else 0
        lane_ch[lane] = k % nch
        lane_base[lane] = (k // nch) * seg - warm
    return used


@njit(cache=True)
def _gather(x, xb, lane_ch, lane_base, j0, m):
    """``xb[j, lane] = x[ch, base + j0 + j]`` (0 outside the file), j < m."""
    n = x.shape[1]
    lo = lane_base.min() + j0
    hi = lane_base.max() + j0 + m
    if lo >= 0 and hi <= n:
        for j in range(m):
            for lane in range(LANES):
                xb[j * LANES + lane] = x[lane_ch[lane], lane_base[lane] + j0 + j]
    else:
        for j in range(m):
            for lane in range(LANES):
                i = lane_base[lane] + j0 + j
                xb[j * LANES + lane] = x[lane_ch[lane], i] if 0 <= i < n else 0.0


@njit(inline="always", fastmath=FASTMATH)
def _section(xb, coefs, z, s, j0, count):
    """Section ``s`` (TDF-II, ``bq.tick_state_last``) over samples j0 .. j0+count-1
    of every lane. ``count`` is a constant at each call site: the sample loop unrolls, the lane
    loop vectorises and the state stays in registers."""
    b0, b1, b2, a1, a2 = coefs[s, 0], coefs[s, 1], coefs[s, 2], coefs[s, 3], coefs[s, 4]
    z0 = 2 * LANES * s
    for lane in range(LANES):
        z1, z2 = z[z0 + lane], z[z0 + LANES + lane]
        for j in range(j0, j0 + count):
            y, z1, z2 = bq.tick_state_last(xb[j * LANES + lane], b0, b1, b2, a1, a2, z1, z2)
            xb[j * LANES + lane] = y
        z[z0 + lane], z[z0 + LANES + lane] = z1, z2


@njit(cache=True, fastmath=FASTMATH)
def _cascade(xb, coefs, z, m):
    """Every section over the first m samples of the lane buffer, section by section."""
    full = m - m % SUB
    for s in range(coefs.shape[0]):
        for j0 in range(0, full, SUB):
            _section(xb, coefs, z, s, j0, SUB)
        for j in range(full, m):
            _section(xb, coefs, z, s, j, 1)


@njit(cache=True, fastmath=FASTMATH)
def _square_sums(kb, acc, j_from, j_to):
    for j in range(j_from, j_to):
        for lane in range(LANES):
            v = kb[j * LANES + lane]
            acc[lane] += v * v


@njit(cache=True)
def _eq_kernel(x, out, eq, kw, weights, segs, seg, warm, hop, energies):
    """EQ of ``x`` into ``out`` and the K-weighted sub-block energies of ``x`` (weighted sum
    over channels) into ``energies`` (complete sub-blocks of the file only)."""
    nch, n = x.shape
    lane_ch = np.zeros(LANES, np.int64)
    lane_base = np.zeros(LANES, np.int64)
    used = _lane_map(nch, segs, seg, warm, lane_ch, lane_base)
    xb = np.zeros(CHUNK * LANES)
    kb = np.zeros(CHUNK * LANES)
    zeq = np.zeros(eq.shape[0] * 2 * LANES)  # flat (section, z1/z2, lane): vectorises
    zkw = np.zeros(kw.shape[0] * 2 * LANES)
    acc = np.zeros(LANES)
    total = warm + seg
    nsub = n // hop
    for j0 in range(0, total, CHUNK):
        m = min(CHUNK, total - j0)
        _gather(x, xb, lane_ch, lane_base, j0, m)
        kb[:m * LANES] = xb[:m * LANES]
        _cascade(kb, kw, zkw, m)
        j = 0
        while j < m:  # square sums up to each sub-block end, then hand them over
            local = j0 + j
            end = min(m, j + hop - local % hop)
            if local >= warm:
                _square_sums(kb, acc, j, end)
                if (j0 + end) % hop == 0:
                    k_of_lane0 = (j0 + end - warm) // hop - 1
                    for lane in range(used):
                        k = (lane // nch) * (seg // hop) + k_of_lane0
                        if k < nsub:
                            energies[k] += weights[lane_ch[lane]] * acc[lane]
                        acc[lane] = 0.0
            j = end
        _cascade(xb, eq, zeq, m)
        for lane in range(used):  # scatter this lane's own samples (not its warm-up)
            c = lane_ch[lane]
            start = max(warm - j0, 0)
            stop = min(m, n - lane_base[lane] - j0)
            for jj in range(start, stop):
                out[c, lane_base[lane] + j0 + jj] = np.float32(xb[jj * LANES + lane])


def eq_and_loudness(x: np.ndarray, sample_rate: float,
                    eq_coefs: np.ndarray) -> tuple[np.ndarray, float]:
    """``(EQ(x) float32, integrated loudness of x in LUFS)``; ``eq_coefs (S, 5)``."""
    sr = check_sample_rate(sample_rate)
    a = check_audio(x, "audio")
    if a.shape[0] > 5:
        raise ValueError(f"audio has {a.shape[0]} channels; 1 .. 5 are measured")
    return eq_and_loudness_into(a, sr, eq_coefs)


def eq_and_loudness_into(a: np.ndarray, sr: float, eq_coefs: np.ndarray
                         ) -> tuple[np.ndarray, float]:
    """``eq_and_loudness`` for audio already validated (C-contiguous float32, finite)."""
    eq = np.ascontiguousarray(eq_coefs, dtype=np.float64).reshape(-1, 5)
    kw = k_weighting_coeffs(sr)
    hop = int(round(0.1 * sr))
    n = a.shape[1]
    segs, seg, warm = plan(n, a.shape[0], warmup_samples(np.vstack([eq, kw]), sr), hop)
    out = np.empty_like(a)
    energies = np.zeros(n // hop)
    _eq_kernel(a, out, eq, kw, channel_weights(a.shape[0]), segs, seg, warm, hop, energies)
    return out, integrated_from_subblocks(energies, hop)


@njit(inline="always", fastmath=FASTMATH, error_model="numpy")
def _glue_step(el, er, pos, count, gin, post, cc, bl, br, bg, bl_att, bl_rel, st):
    """One control step (``count`` samples, a constant at each call site) of the strip's
    compressor; ``st = [gs, max gain reduction, peak]``. The smoothing is the strip's
    ``gc + a * (gs - gc)`` written as ``a * gs + (1 - a) * gc`` (the same value to float64
    rounding; the recurrence is one FMA shorter)."""
    gs = st[0]
    top = 0.0
    for j in range(count):
        bl[j] = el[pos + j] * gin
        br[j] = er[pos + j] * gin
    for j in range(count):
        top = max(top, max(abs(bl[j]), abs(br[j])))
    peak = st[2]
    if gs == 0.0 and top <= cc[comp.C_KNEE_LIN]:  # idle below the knee: gain exactly 1
        for j in range(count):
            yl = bl[j] * post
            yr = br[j] * post
            el[pos + j] = np.float32(yl)
            er[pos + j] = np.float32(yr)
            peak = max(peak, max(abs(yl), abs(yr)))
        st[2] = peak
        return
    t_db, knee_db = cc[comp.C_T], cc[comp.C_W]
    slope, inv_2w = cc[comp.C_SLOPE], cc[comp.C_INV_2W]
    for j in range(count):  # independent per sample: vectorises
        bg[j] = comp.target_db(max(abs(bl[j]), abs(br[j])), t_db, knee_db, slope, inv_2w)
    gc_last = bg[count - 1]
    a_att, a_rel = cc[comp.C_A_ATT], cc[comp.C_A_REL]
    for j in range(count):  # (1 - a) * gc of both candidates: vectorises
        bl_att[j] = (1.0 - a_att) * bg[j]
        bl_rel[j] = (1.0 - a_rel) * bg[j]
    for j in range(count):  # the only recurrence: one FMA and a select per sample
        att = a_att * gs + bl_att[j]
        rel = a_rel * gs + bl_rel[j]
        gs = att if bg[j] < gs else rel
        bg[j] = gs
    st[0] = comp.settle_db(gc_last, gs)
    grmax = st[1]
    for j in range(count):
        grmax = max(grmax, -bg[j])
    st[1] = grmax
    for j in range(count):
        bg[j] = comp.gain_lin(bg[j]) * post
    for j in range(count):
        yl = bl[j] * bg[j]
        yr = br[j] * bg[j]
        el[pos + j] = np.float32(yl)
        er[pos + j] = np.float32(yr)
        peak = max(peak, max(abs(yl), abs(yr)))
    st[2] = peak


@njit(cache=True, fastmath=FASTMATH, error_model="numpy")
def _glue_kernel(e, gin, cc, post, st):
    """The strip's compressor over ``e`` (2, n) float32 in place, in STEP-sample steps from the
    file start: ``e * gin`` -> detector (max over channels) -> target gain (dB) ->
    attack/release smoothing -> settle at the step end -> ``* gain * post``.
    ``st = [gs, max gain reduction, output peak]``."""
    n = e.shape[1]
    el = e[0]
    er = e[1]
    bl = np.empty(STEP)
    br = np.empty(STEP)
    bg = np.empty(STEP)
    b_att = np.empty(STEP)
    b_rel = np.empty(STEP)
    full = n - n % STEP
    for pos in range(0, full, STEP):
        _glue_step(el, er, pos, STEP, gin, post, cc, bl, br, bg, b_att, b_rel, st)
    if full < n:
        rest = n - full
        _glue_step(el, er, full, rest, gin, post, cc, bl, br, bg, b_att, b_rel, st)


def glue_in_place(e: np.ndarray, sample_rate: float, input_gain_db: float,
                  params: Mapping[str, Any]) -> tuple[float, float]:
    """Input gain, glue compressor (``comp_*`` of ``params``, the table's names) and make-up
    over stereo ``e`` (2, n) float32 in place; returns ``(sample peak, max gain reduction dB)``.
    """
    sr = check_sample_rate(sample_rate)
    if not (isinstance(e, np.ndarray) and e.dtype == np.float32 and e.ndim == 2
            and e.shape[0] == 2 and e.flags.c_contiguous):
        raise ValueError("glue_in_place works on C-contiguous float32 stereo audio (2, n)")
    cc = np.empty(comp.C_SIZE)
    comp.fill_coefs(cc, float(params["comp_threshold_db"]), float(params["comp_ratio"]),
                    float(params["comp_knee_db"]), float(params["comp_attack_ms"]),
                    float(params["comp_release_ms"]), sr)
    state = np.zeros(3)
    _glue_kernel(e, math.exp(float(input_gain_db) * LN10_OVER_20), cc,
                 math.exp(float(params["comp_makeup_db"]) * LN10_OVER_20), state)
    return float(state[2]), float(state[1])
