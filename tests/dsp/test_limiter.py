"""Brick-wall limiter: the ceiling holds on hostile input, transparency, latency, attack ramp,
release time, block-size independence."""

from __future__ import annotations

import math

import numpy as np
import pytest

from dsp.limiter import Limiter

RNG = np.random.default_rng(42)


def db_to_lin(db):
    return 10.0 ** (db / 20.0)


def hostile(kind, n, channels, sr):
    t = np.arange(n) / sr
    if kind == "square_0dbfs":
        x = np.sign(np.sin(2 * np.pi * 997 * t))
    elif kind == "square_plus6":
        x = 2.0 * np.sign(np.sin(2 * np.pi * 61 * t))
    elif kind == "spikes_plus20":
        x = np.zeros(n)
        x[RNG.integers(0, n, 40)] = 10.0 * RNG.choice([-1.0, 1.0], 40)
        x[n // 2] = 10.0
        x[n // 2 + 1] = -10.0
    elif kind == "spikes_on_noise":
        x = 0.3 * RNG.standard_normal(n)
        x[RNG.integers(0, n, 200)] = 10.0
    elif kind == "noise_plus12":
        x = 4.0 * RNG.standard_normal(n)
    else:
        raise AssertionError(kind)
    out = np.tile(x, (channels, 1))
    if channels > 1:  # make channels differ: the link must follow the loudest one
        out[1] *= -0.7
        out[1, ::97] = -out[0, ::97]
    return out.astype(np.float32)


KINDS = ["square_0dbfs", "square_plus6", "spikes_plus20", "spikes_on_noise", "noise_plus12"]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("ceiling_db", [-12.0, -1.0, 0.0])
@pytest.mark.parametrize("sr, channels", [(44100, 2), (48000, 1), (96000, 2)])
def test_ceiling_never_exceeded(kind, ceiling_db, sr, channels):
    x = hostile(kind, int(0.5 * sr), channels, sr)
    lim = Limiter(sr, ceiling_db=ceiling_db, release_ms=20.0, lookahead_ms=2.0,
                  channels=channels)
    outs, i = [], 0
    while i < x.shape[1]:  # random block sizes, as a host would deliver
        b = int(RNG.integers(1, 3000))
        outs.append(lim.process(x[:, i:i + b], sr))
        i += b
    y = np.concatenate(outs, axis=1)
    assert np.abs(y).max() <= db_to_lin(ceiling_db)
    assert lim.guard_excess_db < 1e-5  # the guard only ever caught rounding
    if kind != "spikes_plus20":
        assert np.abs(y).max() > db_to_lin(ceiling_db) * 0.99  # limits, does not duck


def test_signal_under_ceiling_is_bit_transparent_and_delayed():
    sr = 48000
    lim = Limiter(sr, ceiling_db=-1.0, lookahead_ms=5.0)
    L = lim.latency_samples
    assert L == 240
    x = np.clip(0.25 * RNG.standard_normal((2, sr)), -0.89, 0.89).astype(np.float32)
    y = lim.process(x, sr)
    assert np.array_equal(y[:, L:], x[:, :-L])
    assert not y[:, :L].any()
    assert lim.gain_reduction_db == 0.0
    imp = np.zeros((2, 1000), np.float32)
    imp[:, 0] = 0.5
    lim.reset()
    out = lim.process(imp, sr)
    assert np.flatnonzero(out[0]).tolist() == [L] and out[0, L] == 0.5


@pytest.mark.parametrize("block", [32, 64, 511, 4096, 8192])
def test_blocks_equal_whole_file(block):
    sr = 44100
    x = hostile("noise_plus12", 3 * sr, 2, sr) * np.float32(0.3)
    x[:, 20000] = 9.0
    lim = Limiter(sr, ceiling_db=-0.3, release_ms=80.0, lookahead_ms=3.0)
    whole = lim.process(x, sr)
    lim.reset()
    parts = [lim.process(x[:, i:i + block], sr) for i in range(0, x.shape[1], block)]
    assert np.max(np.abs(np.concatenate(parts, axis=1) - whole)) <= 1e-6
    lim.reset()
    inplace = x.copy()
    for i in range(0, x.shape[1], block):
        seg = inplace[:, i:i + block]
        lim.process_into(seg, seg)  # in place, as the host does
    assert np.array_equal(inplace, whole)


def _gain_trace(lim, x, sr):
    """Applied gain per output sample (input is delayed by the latency)."""
    y = lim.process(x, sr)
    L = lim.latency_samples
    return y[0, L:] / x[0, :-L]


def test_attack_ramps_over_lookahead_and_hits_ceiling_exactly():
    sr = 48000
    lim = Limiter(sr, ceiling_db=-1.0, release_ms=50.0, lookahead_ms=2.0, channels=1)
    L = lim.latency_samples  # 96
    x = np.full((1, sr // 2), 0.25, np.float32)
    spike = 10000
    x[0, spike] = 10.0
    g = _gain_trace(lim, x, sr)
    c = db_to_lin(-1.0)
    assert abs(g[spike] - c / 10.0) < 1e-6  # the spike comes out at the ceiling, not lower
    assert np.all(g[:spike - L] == 1.0)  # untouched before the lookahead window
    ramp = g[spike - L:spike + 1]
    assert np.all(np.diff(ramp) < 0)  # a ramp, not a step: no click
    assert np.max(np.abs(np.diff(g[:spike + 1]))) <= (1 - c / 10.0) / (L + 1) * 1.0001
    assert abs(lim.gain_reduction_db - 20 * math.log10(10.0 / c)) < 1e-4


@pytest.mark.parametrize("release_ms", [20.0, 50.0, 200.0])
def test_release_recovers_63_percent_after_release_ms(release_ms):
    sr = 48000
    lookahead_ms = 1.0
    lim = Limiter(sr, ceiling_db=-1.0, release_ms=release_ms, lookahead_ms=lookahead_ms,
                  channels=1)
    x = np.full((1, sr * 2), 0.25, np.float32)
    burst_end = 20000
    x[0, burst_end - 480:burst_end] = 2.0  # 10 ms at +6 dBFS
    g = _gain_trace(lim, x, sr)
    g_min = g[burst_end - 1]
    assert abs(g_min - db_to_lin(-1.0) / 2.0) < 1e-6
    recovered = (g[burst_end:] - g_min) / (1.0 - g_min)
    t63_ms = np.argmax(recovered >= 1 - math.exp(-1)) / sr * 1000.0
    assert abs(t63_ms - release_ms) <= lookahead_ms, t63_ms
    assert np.all(np.diff(g[burst_end:]) >= 0)  # monotonic recovery


def test_set_params_lowers_ceiling_immediately():
    sr = 48000
    lim = Limiter(sr, ceiling_db=0.0)
    x = hostile("noise_plus12", sr, 2, sr)
    lim.process(x[:, :20000], sr)
    lim.set_params(ceiling_db=-6.0, release_ms=10.0)
    y = lim.process(x[:, 20000:], sr)
    assert np.abs(y).max() <= db_to_lin(-6.0)
    assert lim.release_ms == 10.0 and lim.ceiling_db == -6.0
