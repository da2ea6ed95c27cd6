"""The console's multi-lane kernel sounds exactly like the channel strips it runs side by side.

Every comparison is against ChannelStrip (dsp.strip.strip_block), one strip at a time, with the
same parameter changes at the same sample positions; the float32 mix bus is summed in strip order
on both sides, so the results must agree to float32 rounding (here: <= 1e-6 absolute on audio
around 0 dBFS).
"""

import copy

import numpy as np
import pytest

from dsp import lanes as La
from dsp import params as P
from dsp.console import Console, MasterBus
from dsp.strip import TRACK_SPEC, ChannelStrip, new_state

TOL = 1e-6


def track_params(i):
    """Different EQ sections and compressors per strip, so lanes differ in what they use."""
    p = dict(hpf_freq_hz=30.0 + 11 * i, peak2_gain_db=3.0 - (i % 7), peak2_freq_hz=300.0 + 97 * i,
             pan=-0.9 + 0.11 * (i % 17), output_gain_db=-6.0 - (i % 3))
    if i % 2:
        p.update(low_shelf_gain_db=2.0, lpf_freq_hz=9000.0 + 300 * i, input_gain_db=3.0)
    if i % 3 != 2:
        p.update(comp_threshold_db=-30.0 + i % 5, comp_ratio=2.0 + i % 4,
                 comp_knee_db=3.0 * (i % 3), comp_attack_ms=2.0 + i,
                 comp_release_ms=60.0 + 5 * i, comp_makeup_db=2.0)
    return P.validate("track", p)


def setting(n):
    tracks = tuple(P.TrackSetting(f"t{i}", track_params(i)) for i in range(n))
    return P.ConsoleSetting(tracks, P.validate("master", dict(peak2_gain_db=-1.0,
                                                              comp_threshold_db=-14.0,
                                                              comp_ratio=2.0)))


def strips_mix(stems, sr, s, blocks, changes=None):
    """Reference: one ChannelStrip per track, block by block, float32 sum in track order."""
    strips = [ChannelStrip(sr, t.params, stems.shape[1]) for t in s.tracks]
    mix = np.zeros((2, stems.shape[2]), dtype=np.float32)
    for b, (a, z) in enumerate(blocks):
        for i, params in (changes or {}).get(b, {}).items():
            strips[i].set_params(params)
        for i, strip in enumerate(strips):
            mix[:, a:z] += strip(stems[i, :, a:z], sr)
    return mix, strips


def cuts(n, sizes):
    out, a, k = [], 0, 0
    while a < n:
        z = min(n, a + sizes[k % len(sizes)])
        out.append((a, z))
        a, k = z, k + 1
    return out


@pytest.mark.parametrize("n", (1, 5, 16, 17, 35))  # one partial group .. three groups
def test_console_equals_its_strips_for_any_track_count(make_stems, n):
    sr = 48000
    stems = make_stems(n, seconds=0.6, n_stems=n, sample_rate=float(sr)) * 6
    s = setting(n)
    c = Console(sr, s)
    out = c.process(stems)
    mix, strips = strips_mix(stems, sr, s, [(0, stems.shape[2])])
    ref = MasterBus(sr, s.master)(mix, sr)
    assert np.abs(out - ref).max() <= TOL
    assert any(st.gain_reduction_db > 1.0 for st in strips)  # compressors at work
    for mine, theirs in zip(c.strips, strips):  # the meters the host reads
        assert mine.gain_reduction_db == pytest.approx(theirs.gain_reduction_db, abs=1e-9)
        assert mine.peak_db == pytest.approx(theirs.peak_db, abs=1e-6)
        assert mine.rms_db == pytest.approx(theirs.rms_db, abs=1e-6)


@pytest.mark.parametrize("sizes", ([32], [100], [7, 61, 256, 1], [8192]))
def test_glides_and_odd_blocks_equal_the_strips(make_stems, sizes):
    """Parameter changes between blocks glide identically; block edges inside control steps."""
    sr = 44100
    n = 18
    stems = make_stems(3, seconds=0.5, n_stems=n, sample_rate=float(sr)) * 4
    s = setting(n)
    blocks = cuts(stems.shape[2], sizes)
    first = max(1, len(blocks) // 4)
    changes = {first: {0: dict(peak2_gain_db=-9.0, comp_ratio=8.0),
                       17: dict(hpf_freq_hz=400.0, pan=0.8, input_gain_db=-6.0)},
               max(first + 1, len(blocks) // 2): {5: dict(lpf_freq_hz=20000.0,
                                                          low_shelf_gain_db=0.0),
                                                  9: dict(comp_threshold_db=-50.0,
                                                          output_gain_db=6.0)}}
    mix, _ = strips_mix(stems, sr, s, blocks, changes)
    st = new_state(n)
    strips = [ChannelStrip(sr, t.params, 2, _state=(st[0][i], st[1][i], st[2][i]))
              for i, t in enumerate(s.tracks)]
    lanes = La.new_lanes(n)
    out = np.zeros_like(mix)
    for b, (a, z) in enumerate(blocks):
        for i, params in changes.get(b, {}).items():
            strips[i].set_params(params)
        La.lanes_block(stems, out, a, z, True, *st, TRACK_SPEC, lanes)
    assert np.abs(out - mix).max() <= TOL
    assert strips[0].current["comp_ratio"] == 8.0 and strips[17].current["pan"] == 0.8


def test_mono_stems(make_stems):
    sr = 44100
    n = 6
    stereo = make_stems(4, seconds=0.4, n_stems=n, sample_rate=float(sr))
    stems = np.ascontiguousarray(stereo[:, :1])
    s = setting(n)
    mix, _ = strips_mix(stems, sr, s, [(0, stems.shape[2])])
    st = new_state(n)
    for i, t in enumerate(s.tracks):
        ChannelStrip(sr, t.params, 1, _state=(st[0][i], st[1][i], st[2][i]))
    out = np.zeros_like(mix)
    La.lanes_block(stems, out, 0, stems.shape[2], True, *st, TRACK_SPEC, La.new_lanes(n))
    assert np.abs(out - mix).max() <= TOL
    assert np.abs(out[0] - out[1]).max() > 0.01  # the strips' pans still spread the mono stems


def test_switching_between_the_lanes_and_the_strips_keeps_one_state(make_stems):
    """The host runs single strips while a track has inserts: the lane kernel then picks up
    the strips' state, and a strip reset on its own falls back to per-strip processing."""
    sr = 48000
    n = 4
    stems = make_stems(5, seconds=0.5, n_stems=n, sample_rate=float(sr)) * 4
    s = setting(n)
    whole = Console(sr, s).process(stems)
    c = Console(sr, s)
    out = np.zeros_like(whole)
    blocks = cuts(stems.shape[2], [256])
    for b, (a, z) in enumerate(blocks):
        if b % 5 in (2, 3):  # the per-track path of host.engine
            mix = np.zeros((2, z - a), dtype=np.float32)
            for i, strip in enumerate(c.strips):
                mix += strip.process(stems[i, :, a:z], sr)
            c.master.process_into(mix, mix)
            out[:, a:z] = mix
        else:   # the engine's own buffers: contiguous
            block = np.empty((2, z - a), dtype=np.float32)
            c.process_into(np.ascontiguousarray(stems[:, :, a:z]), block)
            out[:, a:z] = block
    assert np.abs(out - whole).max() <= TOL
    c.strips[1].reset()  # one strip on its own: counters differ, the console still equals
    ref = copy.deepcopy(c)  # its strips (it falls back to running them one by one)
    got = c.process(stems[:, :, :4000])
    mix = np.zeros((2, 4000), dtype=np.float32)
    for i, strip in enumerate(ref.strips):
        mix += strip.process(stems[i, :, :4000], sr)
    assert np.abs(got - ref.master.process(mix, sr)).max() <= TOL


def test_log2_and_exp2_approximations_are_accurate():
    from dsp.gain import exp2_approx, log2_approx
    from numba import njit

    @njit
    def both(x, y, lo, ex):
        for i in range(x.shape[0]):
            lo[i] = log2_approx(x[i])
            ex[i] = exp2_approx(y[i])

    x = np.geomspace(1e-10, 1e3, 200001)
    y = np.linspace(-60.0, 0.0, 200001)
    lo, ex = np.empty_like(x), np.empty_like(y)
    both(x, y, lo, ex)
    assert np.abs(lo - np.log2(x)).max() < 1.1e-9         # < 7e-9 dB on the detector
    assert np.abs(ex / np.exp2(y) - 1.0).max() < 3e-10
    both(np.array([1.0, 2.0, 0.5]), np.array([0.0, -1.0, -3.0]), lo[:3], ex[:3])
    assert lo[:3].tolist() == [0.0, 1.0, -1.0] and ex[:3].tolist() == [1.0, 0.5, 0.125]


def test_lane_loops_are_vectorised():
    """The point of the lane layout: the biquad loop compiles to packed SIMD instructions, with
    AVX2/AVX-512 FMAs where numba targets a CPU that has them, AVX's packed ops on one without
    FMA, and SSE2's two-wide packed ops as the fallback on a generic x86-64 target (NUMBA_CPU_NAME=generic, as scripts/cpu_matrix.sh
    runs it); both paths must equal the scalar strips (the tests above, run under each target)."""
    import platform
    import re

    import llvmlite.binding as llvm
    from numba import njit
    from numba.core import config
    if platform.machine() not in ("x86_64", "AMD64"):
        pytest.skip(f"the instruction check is written for x86-64, not {platform.machine()}")
    fresh = njit(fastmath=La.FASTMATH, error_model="numpy")(La._filters.py_func)
    coef, zst, act, _, xb, _ = La._split(La.new_lanes(1), 0)
    fresh(xb, coef, zst, act, La.STEP)
    asm = fresh.inspect_asm(fresh.signatures[0])
    targets_host = config.CPU_NAME in (None, "", "host")
    host_has_fma = {"+avx2", "+fma"} <= set(llvm.get_host_cpu_features().flatten().split(","))
    if targets_host and host_has_fma:
        packed = re.findall(r"vf(?:n?m(?:add|sub))\d+pd\s+%[yz]mm", asm)
    else:
        # SSE2 (mulpd %xmm) on a generic target, AVX's VEX forms (vmulpd %ymm) on one with AVX
        # but no FMA (NUMBA_CPU_NAME=sandybridge)
        packed = re.findall(r"\bv?(?:mul|add|sub)pd\s+%[xyz]mm", asm)
    assert len(packed) >= 8, (config.CPU_NAME, len(packed))
