"""Multi-lane console kernel: many channel strips at once, one SIMD lane per strip channel.

``lanes_block`` computes what ``dsp.strip.strip_block`` computes for each strip of a console
(same smoothing, same coefficients, the same arithmetic per sample) and sums the strips into the
mix bus in strip order, but it runs the strips side by side: the one-sample biquad recursion is
latency bound within one strip, while across strips it is independent work that vectorises.

Strips go in groups of ``GROUP``; a group has ``LANES = 2 * GROUP`` lanes, lane ``k`` the left
and lane ``GROUP + k`` the right channel of its k-th strip. Everything a loop touches is a flat
float64 array indexed with compile-time strides (``row * LANES + lane``), so LLVM sees that the
lanes are independent and vectorises the lane loops without runtime overlap checks. The loops
that carry state from sample to sample (filters, gain smoothing, meters) run over sub-blocks of
``SUB`` samples inside the lane loop, so the state stays in registers for ``SUB`` samples.

``new_lanes(n)`` holds, per group of strips (one row each, views made by ``_split``):

- ``coef (NSEC, 5, LANES)`` b0 b1 b2 a1 a2 per section (identity where a strip has it off)
- ``zst (NSEC, 2, LANES)`` transposed-direct-form-II state
- ``act (NSEC,)`` 1 where any strip of the group uses the section (others are skipped)
- ``sv (SV_ROWS, GROUP)`` per strip: gain ramps, compressor constants and state, meters

and a last row of scratch: ``xb (STEP, LANES)`` (one control step of audio) and
``gb (STEP, GROUP)`` (compressor gains).

The strips' own state (``vec``, ``filt``, ``st`` of dsp.strip: what ChannelStrip, the host's
target writes and the meters read) stays the source of truth: a call picks up new targets, loads
the rest only when its copy is not current (``st[IN_LANES]``, which strip_block and a reset
clear), runs ``dsp.strip._control`` at each control step for every strip whose parameters move,
and stores the state back. So the per-strip path and this one may alternate freely.

Two numba details keep the lane loops vectorised (tests/dsp/test_lanes.py checks the packed
instructions): every index inside them is built from loop counters and constants only (see the
passes' comment), and the lane loops run over ``range(hide(n))`` (see ``hide``).
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

from dsp import biquad as bq
from dsp import compressor as comp
from dsp.gain import FASTMATH
from dsp.strip import (ACTIVE, CC, COUNT, DENORMAL, GIN0, GIN1, GL0, GL1, GR0, GR1, GRMAX, GS,
                       IN_LANES, MOVING, NMET, NSEC, PEAK, STEP, SUMSQ, Z, _control, _retarget)

GROUP = 16           # strips per lane group
LANES = 2 * GROUP    # left channels, then right channels
SUB = 8              # samples per register-resident sub-block of the recursive loops
# rows of ``sv``: gain ramps (value at the step start, per-sample slope), compressor constants
# and state, meters
(V_GI, V_DGI, V_GL, V_DGL, V_GR, V_DGR, V_T, V_W, V_SLOPE, V_INV2W, V_AATT, V_AREL, V_KNEE,
 V_GS, V_GC_LAST, V_GRMAX, V_PEAK, V_SUMSQ) = range(18)
SV_ROWS = 18
COEF_SIZE = NSEC * 5 * LANES
Z_SIZE = NSEC * 2 * LANES
SV_SIZE = SV_ROWS * GROUP
ROW_SIZE = max(COEF_SIZE + Z_SIZE + NSEC + SV_SIZE, STEP * (LANES + GROUP))
INV_STEP = 1.0 / STEP


@intrinsic
def hide(typingctx, x):
    """``x``, but the compiler cannot see its value (an empty inline-asm barrier, no code).

    A lane loop written ``for lane in range(hide(LANES))`` is vectorised as written. With a
    visible small constant LLVM unrolls it completely and then vectorises the *sample* loop
    around it, with gathers and scatters that cost several times more."""
    def codegen(context, builder, signature, args):
        barrier = ir.InlineAsm(ir.FunctionType(args[0].type, [args[0].type]), "", "=r,0")
        return builder.call(barrier, [args[0]])
    return x(x), codegen


@intrinsic
def own_function(typingctx):
    """Called first in a pass: marks the calling function ``noinline``, so LLVM optimises and
    vectorises it once on its own rather than again inside each caller, where the loop
    vectoriser has been seen to give up on the lane loops."""
    def codegen(context, builder, signature, args):
        builder.function.attributes.add("noinline")
        return context.get_dummy_value()
    return types.none(), codegen


def groups(n_strips: int) -> int:
    return (n_strips + GROUP - 1) // GROUP


def new_lanes(n_strips: int) -> np.ndarray:
    """Zeroed lane state for a console of ``n_strips`` strips: one row per group holding
    ``coef, zst, act, sv`` (see ``_split``), and a last row of scratch ``xb, gb``."""
    return np.zeros((groups(n_strips) + 1, ROW_SIZE))


@njit(cache=True)
def _split(lanes, g):
    """Views of group g's arrays in ``lanes``, and the scratch: (coef, zst, act, sv, xb, gb)."""
    row, scratch = lanes[g], lanes[lanes.shape[0] - 1]
    a = COEF_SIZE
    b = a + Z_SIZE
    c = b + NSEC
    return (row[:a], row[a:b], row[b:c], row[c:c + SV_SIZE], scratch[:STEP * LANES],
            scratch[STEP * LANES:STEP * (LANES + GROUP)])


# loading and storing one strip (k: its slot in the group; arrays: the group's rows) ----------
@njit(cache=True)
def _load_filters(filt, coef, zst, k):
    """Strip ``filt (NSEC, 10)`` -> lanes k (left) and GROUP + k (right); a section that is
    off becomes the identity with zero state (exactly what skipping it gives)."""
    for s in range(NSEC):
        on = filt[s, ACTIVE] != 0.0
        for c in range(5):
            v = filt[s, c] if on else (1.0 if c == 0 else 0.0)
            coef[(s * 5 + c) * LANES + k] = v
            coef[(s * 5 + c) * LANES + GROUP + k] = v
        for c in range(4):  # zl1 zl2 zr1 zr2
            zst[(s * 2 + c % 2) * LANES + (c // 2) * GROUP + k] = filt[s, Z + c] if on else 0.0


@njit(cache=True)
def _store_filters(filt, zst, k):
    for s in range(NSEC):
        for c in range(4):
            filt[s, Z + c] = zst[(s * 2 + c % 2) * LANES + (c // 2) * GROUP + k]


@njit(cache=True)
def _load_controls(st, sv, k):
    """The gain ramps of the current control step and the compressor constants of one strip
    (the same expressions as strip_block)."""
    sv[V_GI * GROUP + k] = st[GIN0]
    sv[V_DGI * GROUP + k] = (st[GIN1] - st[GIN0]) * INV_STEP
    sv[V_GL * GROUP + k] = st[GL0]
    sv[V_DGL * GROUP + k] = (st[GL1] - st[GL0]) * INV_STEP
    sv[V_GR * GROUP + k] = st[GR0]
    sv[V_DGR * GROUP + k] = (st[GR1] - st[GR0]) * INV_STEP
    sv[V_T * GROUP + k] = st[CC + comp.C_T]
    sv[V_W * GROUP + k] = st[CC + comp.C_W]
    sv[V_SLOPE * GROUP + k] = st[CC + comp.C_SLOPE]
    sv[V_INV2W * GROUP + k] = st[CC + comp.C_INV_2W]
    sv[V_AATT * GROUP + k] = st[CC + comp.C_A_ATT]
    sv[V_AREL * GROUP + k] = st[CC + comp.C_A_REL]
    sv[V_KNEE * GROUP + k] = st[CC + comp.C_KNEE_LIN]


@njit(cache=True)
def _clear_slot(coef, zst, sv, k):
    """An unused slot: identity filters, zero gains, a compressor that never acts."""
    for s in range(NSEC):
        for c in range(5):
            coef[(s * 5 + c) * LANES + k] = coef[(s * 5 + c) * LANES + GROUP + k] = \
                1.0 if c == 0 else 0.0
        for c in range(2):
            zst[(s * 2 + c) * LANES + k] = zst[(s * 2 + c) * LANES + GROUP + k] = 0.0
    for row in range(SV_ROWS):
        sv[row * GROUP + k] = 0.0
    sv[V_KNEE * GROUP + k] = np.inf


@njit(cache=True)
def _update_active(filt, act, i0, nk):
    for s in range(NSEC):
        on = 0.0
        for k in range(nk):
            on = max(on, filt[i0 + k, s, ACTIVE])
        act[s] = on


# the passes over one control step (``seg`` samples) of one group. Every index in their loops
# is built from loop counters and constants only: an offset passed in as an argument could be
# negative as far as the compiler knows, and numba's negative-index wrap-around then stops the
# vectoriser. So the callers pass the group's rows (views), not a group number.
@njit(inline="always", fastmath=FASTMATH, error_model="numpy")
def _section(xb, coef, zst, s, j0, count):
    """Samples j0 .. j0+count-1 of every lane through section s (``count`` is a constant at
    each call site: the sample loop unrolls and the state stays in registers)."""
    for lane in range(hide(LANES)):
        b0, b1 = coef[s * 5 * LANES + lane], coef[(s * 5 + 1) * LANES + lane]
        b2, a1 = coef[(s * 5 + 2) * LANES + lane], coef[(s * 5 + 3) * LANES + lane]
        a2 = coef[(s * 5 + 4) * LANES + lane]
        z1, z2 = zst[s * 2 * LANES + lane], zst[(s * 2 + 1) * LANES + lane]
        for j in range(j0, j0 + count):
            y, z1, z2 = bq.tick(xb[j * LANES + lane], b0, b1, b2, a1, a2, z1, z2)
            xb[j * LANES + lane] = y
        zst[s * 2 * LANES + lane] = z1
        zst[(s * 2 + 1) * LANES + lane] = z2


@njit(cache=True, fastmath=FASTMATH, error_model="numpy")
def _filters(xb, coef, zst, act, seg):
    """The biquad cascade over ``seg`` samples, section by section."""
    own_function()
    full = seg - seg % SUB
    for s in range(NSEC):
        if act[s] != 0.0:
            for j0 in range(0, full, SUB):
                _section(xb, coef, zst, s, j0, SUB)
            for j in range(full, seg):
                _section(xb, coef, zst, s, j, 1)


@njit(cache=True, fastmath=FASTMATH, error_model="numpy")
def _input(stems, xb, sv, i0, nk, pos, phase, seg):
    """Samples pos .. pos+seg-1 of the group's strips into the lanes, times the input gain."""
    own_function()
    right = stems.shape[1] - 1
    if nk == GROUP:  # the strip loop unrolls: one sample of every strip per pass
        for j in range(seg):
            j = hide(j)
            for k in range(GROUP):
                xb[j * LANES + k] = stems[i0 + k, 0, pos + j]
                xb[j * LANES + GROUP + k] = stems[i0 + k, right, pos + j]
    else:
        for j in range(seg):
            for k in range(hide(nk)):
                xb[j * LANES + k] = stems[i0 + k, 0, pos + j]
                xb[j * LANES + GROUP + k] = stems[i0 + k, right, pos + j]
    for j in range(seg):
        r = np.float64(phase + j + 1)
        for k in range(hide(GROUP)):
            gin = sv[V_GI * GROUP + k] + sv[V_DGI * GROUP + k] * r
            xb[j * LANES + k] *= gin
            xb[j * LANES + GROUP + k] *= gin


@njit(inline="always", fastmath=FASTMATH, error_model="numpy")
def _smooth(gb, sv, j0, count):
    """Attack/release smoothing of samples j0 .. j0+count-1 for every strip, in place."""
    for k in range(hide(GROUP)):
        gs, grmax = sv[V_GS * GROUP + k], sv[V_GRMAX * GROUP + k]
        a_att, a_rel = sv[V_AATT * GROUP + k], sv[V_AREL * GROUP + k]
        for j in range(j0, j0 + count):
            gs = comp.smooth_db(gb[j * GROUP + k], gs, a_att, a_rel)
            gb[j * GROUP + k] = gs
            grmax = max(grmax, -gs)
        sv[V_GS * GROUP + k] = gs
        sv[V_GRMAX * GROUP + k] = grmax


@njit(cache=True, fastmath=FASTMATH, error_model="numpy")
def _compressor(xb, gb, sv, seg):
    """Stereo-linked compressors of the group: ``gb[j, k]`` := linear gain of strip k. When no
    strip compresses (every smoothed gain 0 dB, every detector below its knee) the gains are 1,
    strip_block's idle path; otherwise every strip runs the full formula, which gives exactly
    0 dB for a strip at rest."""
    own_function()
    for j in range(seg):
        for k in range(hide(GROUP)):
            gb[j * GROUP + k] = max(abs(xb[j * LANES + k]), abs(xb[j * LANES + GROUP + k]))
    idle = True
    for k in range(GROUP):
        idle = idle and sv[V_GS * GROUP + k] == 0.0
    for k in range(GROUP):
        if not idle:
            break
        knee = sv[V_KNEE * GROUP + k]
        for j in range(seg):
            idle = idle and gb[j * GROUP + k] <= knee
    if idle:
        gb[:seg * GROUP] = 1.0
        return
    for j in range(seg):
        for k in range(hide(GROUP)):
            gb[j * GROUP + k] = comp.target_db(gb[j * GROUP + k], sv[V_T * GROUP + k],
                                               sv[V_W * GROUP + k], sv[V_SLOPE * GROUP + k],
                                               sv[V_INV2W * GROUP + k])
    for k in range(GROUP):  # the step's last target gain, for settle_db (gb is overwritten)
        sv[V_GC_LAST * GROUP + k] = gb[(seg - 1) * GROUP + k]
    full = seg - seg % SUB
    for j0 in range(0, full, SUB):
        _smooth(gb, sv, j0, SUB)
    for j in range(full, seg):
        _smooth(gb, sv, j, 1)
    for k in range(GROUP):  # once per step, as strip_block
        sv[V_GS * GROUP + k] = comp.settle_db(sv[V_GC_LAST * GROUP + k], sv[V_GS * GROUP + k])
    for j in range(seg):
        for k in range(hide(GROUP)):
            gb[j * GROUP + k] = comp.gain_lin(gb[j * GROUP + k])


@njit(inline="always", fastmath=FASTMATH, error_model="numpy")
def _gains(xb, gb, sv, phase, j0, count):
    """Compressor gain and output gain x pan ramps of samples j0 .. j0+count-1; meters."""
    for k in range(hide(GROUP)):
        gl, dgl = sv[V_GL * GROUP + k], sv[V_DGL * GROUP + k]
        gr, dgr = sv[V_GR * GROUP + k], sv[V_DGR * GROUP + k]
        peak, sumsq = sv[V_PEAK * GROUP + k], sv[V_SUMSQ * GROUP + k]
        for j in range(j0, j0 + count):
            r = np.float64(phase + j + 1)
            g = gb[j * GROUP + k]
            yl = xb[j * LANES + k] * g * (gl + dgl * r)
            yr = xb[j * LANES + GROUP + k] * g * (gr + dgr * r)
            xb[j * LANES + k] = yl
            xb[j * LANES + GROUP + k] = yr
            peak = max(peak, max(abs(yl), abs(yr)))
            sumsq += yl * yl + yr * yr
        sv[V_PEAK * GROUP + k] = peak
        sv[V_SUMSQ * GROUP + k] = sumsq


@njit(cache=True, fastmath=FASTMATH, error_model="numpy")
def _output(xb, gb, sv, out, nk, pos, phase, seg):
    """Output stage of every strip, then the float32 mix bus ``+=`` in strip order."""
    own_function()
    full = seg - seg % SUB
    for j0 in range(0, full, SUB):
        _gains(xb, gb, sv, phase, j0, SUB)
    for j in range(full, seg):
        _gains(xb, gb, sv, phase, j, 1)
    for j in range(seg):
        acc_l, acc_r = out[0, pos + j], out[1, pos + j]
        for k in range(nk):
            acc_l += np.float32(xb[j * LANES + k])
            acc_r += np.float32(xb[j * LANES + GROUP + k])
        out[0, pos + j], out[1, pos + j] = acc_l, acc_r


@njit(cache=True, error_model="numpy")
def _control_step(vec, filt, st, spec, coef, zst, act, sv, i0, nk):
    """Start of a control step: denormal flush, then dsp.strip._control for each strip whose
    parameters move (through its own state), or the gain ramps' hand-over for one at rest."""
    for z in range(Z_SIZE):
        if abs(zst[z]) < DENORMAL:
            zst[z] = 0.0
    moved = False
    for k in range(nk):
        i = i0 + k
        if st[i, MOVING] != 0.0:
            _store_filters(filt[i], zst, k)
            _control(vec[i], filt[i], st[i], spec, bool(False))
            _load_filters(filt[i], coef, zst, k)
            moved = True
            _load_controls(st[i], sv, k)
        elif st[i, GIN0] != st[i, GIN1] or st[i, GL0] != st[i, GL1] or st[i, GR0] != st[i, GR1]:
            # parameters at rest after a glide: what _control does, the ramps end
            st[i, GIN0], st[i, GL0], st[i, GR0] = st[i, GIN1], st[i, GL1], st[i, GR1]
            _load_controls(st[i], sv, k)
    if moved:
        _update_active(filt, act, i0, nk)


@njit(cache=True, error_model="numpy")
def _load_group(vec, filt, st, spec, coef, zst, sv, i0, nk, new_meters):
    """New targets of every strip; the rest of a strip's state only if the lanes' copy is not
    current (first call, a reset, or strip_block ran on the strip in between)."""
    for k in range(GROUP):
        if k >= nk:
            _clear_slot(coef, zst, sv, k)
            continue
        i = i0 + k
        _retarget(vec[i], st[i], spec)
        if st[i, IN_LANES] == 0.0:
            _load_filters(filt[i], coef, zst, k)
            _load_controls(st[i], sv, k)
            sv[V_GS * GROUP + k] = st[i, GS]
        sv[V_PEAK * GROUP + k] = 0.0 if new_meters else st[i, PEAK]
        sv[V_SUMSQ * GROUP + k] = 0.0 if new_meters else st[i, SUMSQ]
        sv[V_GRMAX * GROUP + k] = 0.0 if new_meters else st[i, GRMAX]


@njit(cache=True, error_model="numpy")
def _store_group(filt, st, zst, sv, i0, nk, count, samples, new_meters):
    for k in range(nk):
        i = i0 + k
        _store_filters(filt[i], zst, k)
        st[i, GS] = sv[V_GS * GROUP + k]
        st[i, COUNT] = count
        st[i, IN_LANES] = 1.0
        st[i, PEAK] = sv[V_PEAK * GROUP + k]
        st[i, SUMSQ] = sv[V_SUMSQ * GROUP + k]
        st[i, GRMAX] = sv[V_GRMAX * GROUP + k]
        st[i, NMET] = samples + (0 if new_meters else st[i, NMET])


@njit(cache=True, error_model="numpy")
def lanes_block(stems, out, start, stop, new_meters, vec, filt, st, spec, lanes):
    """Samples ``start:stop`` of every strip of ``stems (N, C, n)`` (C = 1 or 2) added into
    ``out (2, n)`` in strip order: what strip_block with ``accumulate`` gives strip by strip.
    Every strip's sample counter must be the same (a console resets them together)."""
    n = stems.shape[0]
    for g in range(lanes.shape[0] - 1):
        coef, zst, act, sv, xb, gb = _split(lanes, g)
        i0 = g * GROUP
        nk = min(GROUP, n - i0)
        _load_group(vec, filt, st, spec, coef, zst, sv, i0, nk, new_meters)
        _update_active(filt, act, i0, nk)
        for j in range(STEP):  # the lanes of unused slots stay silent
            for k in range(nk, GROUP):
                xb[j * LANES + k] = xb[j * LANES + GROUP + k] = 0.0
        count = np.int64(st[i0, COUNT])
        pos = start
        while pos < stop:
            phase = count % STEP
            if phase == 0:
                _control_step(vec, filt, st, spec, coef, zst, act, sv, i0, nk)
            seg = min(STEP - phase, stop - pos)
            _input(stems, xb, sv, i0, nk, pos, phase, seg)
            _filters(xb, coef, zst, act, seg)
            _compressor(xb, gb, sv, seg)
            _output(xb, gb, sv, out, nk, pos, phase, seg)
            pos += seg
            count += seg
        _store_group(filt, st, zst, sv, i0, nk, count, stop - start, new_meters)
