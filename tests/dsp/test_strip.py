"""ChannelStrip: equals the chain of single processors, block-size invariance, smoothing."""

import math
import tracemalloc

import numpy as np
import pytest

from dsp import strip as S
from dsp.biquad import HighPass, HighShelf, LowPass, LowShelf, Peak
from dsp.compressor import Compressor
from dsp.gain import Gain, Pan
from dsp.params import TRACK_NAMES
from dsp.strip import ChannelStrip

RATES = (44100, 48000)
BUSY = dict(input_gain_db=4.0, hpf_freq_hz=90.0, hpf_q=0.9, low_shelf_freq_hz=150.0,
            low_shelf_gain_db=3.0, peak1_freq_hz=300.0, peak1_gain_db=-4.0, peak1_q=2.0,
            peak2_freq_hz=1200.0, peak2_gain_db=2.5, peak2_q=0.7, peak3_freq_hz=5000.0,
            peak3_gain_db=4.0, peak3_q=3.0, high_shelf_freq_hz=9000.0, high_shelf_gain_db=-2.0,
            lpf_freq_hz=15000.0, lpf_q=0.6, comp_threshold_db=-24.0, comp_ratio=4.0,
            comp_attack_ms=3.0, comp_release_ms=80.0, comp_knee_db=6.0, comp_makeup_db=3.0,
            output_gain_db=-2.0, pan=0.3)


def music(sr, seconds, channels=2, seed=0):
    """Noise with a changing envelope plus a tone: exercises EQ and compressor."""
    rng = np.random.default_rng(seed)
    n = int(seconds * sr)
    env = np.repeat(rng.uniform(0.02, 0.7, n // 2000 + 1), 2000)[:n]
    tone = 0.3 * np.sin(2 * np.pi * 220 * np.arange(n) / sr)
    return ((rng.standard_normal((channels, n)) * 0.3 + tone) * env).astype(np.float32)


def sine(freq, sr, n, amp=0.25):
    return np.tile(amp * np.sin(2 * np.pi * freq * np.arange(n) / sr), (2, 1)).astype(np.float32)


def test_neutral_strip_is_transparent():
    x = music(48000, 0.5)
    np.testing.assert_array_equal(ChannelStrip(48000)(x, 48000), x)
    mono = x[:1]
    y = ChannelStrip(48000, channels=1)(mono, 48000)
    np.testing.assert_array_equal(y, np.vstack([mono, mono]))


@pytest.mark.parametrize("sr", RATES)
def test_equals_chain_of_single_processors(sr):
    x = music(sr, 1.0)
    p = BUSY
    chain = [Gain(p["input_gain_db"]), HighPass(p["hpf_freq_hz"], p["hpf_q"]),
             LowShelf(p["low_shelf_freq_hz"], p["low_shelf_gain_db"])]
    chain += [Peak(p[f"peak{i}_freq_hz"], p[f"peak{i}_gain_db"], p[f"peak{i}_q"])
              for i in (1, 2, 3)]
    chain += [HighShelf(p["high_shelf_freq_hz"], p["high_shelf_gain_db"]),
              LowPass(p["lpf_freq_hz"], p["lpf_q"]),
              Compressor(p["comp_threshold_db"], p["comp_ratio"], p["comp_attack_ms"],
                         p["comp_release_ms"], p["comp_knee_db"], p["comp_makeup_db"]),
              Gain(p["output_gain_db"]), Pan(p["pan"])]
    ref = x
    for proc in chain:
        ref = proc(ref, sr)
    strip = ChannelStrip(sr, p)
    y = strip(x, sr)
    assert np.abs(y - ref).max() <= 2e-6  # float32 rounding between the single stages
    assert strip.gain_reduction_db > 3.0


@pytest.mark.parametrize("sr", RATES)
@pytest.mark.parametrize("channels", (1, 2))
@pytest.mark.parametrize("block", (32, 128, 1000, 8192))
def test_blocks_equal_whole_file_even_while_gliding(sr, channels, block):
    x = music(sr, 1.0, channels)
    change_at = 12000  # the same parameter change lands at the same sample in both runs
    change = dict(output_gain_db=6.0, peak2_gain_db=-6.0, hpf_freq_hz=300.0, pan=-0.7,
                  comp_threshold_db=-30.0)

    def run(step):
        s = ChannelStrip(sr, BUSY, channels)
        outs = []
        for lo, hi in ((0, change_at), (change_at, x.shape[1])):
            if lo == change_at:
                s.set_params(change)
            outs += [s(x[:, i:min(i + step, hi)], sr) for i in range(lo, hi, step)]
        return np.concatenate(outs, axis=1)

    whole = run(x.shape[1])
    assert whole.shape == (2, x.shape[1])
    np.testing.assert_array_equal(run(block), whole)


def max_step(y):
    return np.abs(np.diff(y.astype(np.float64), axis=1)).max()


@pytest.mark.parametrize("sr", RATES)
def test_output_gain_change_glides_without_a_step(sr):
    n = sr // 2
    x = sine(1000.0, sr, n)
    s = ChannelStrip(sr, {"output_gain_db": -6.0})
    first = s(x[:, :1001], sr)  # block end not on a control step
    steady = max_step(first[:, 100:])
    s.set_params({"output_gain_db": 6.0})
    rest = s(x[:, 1001:], sr)
    y = np.concatenate([first, rest], axis=1)
    settled = max_step(rest[:, -2000:])
    assert settled == pytest.approx(steady * 10 ** (12 / 20), rel=0.01)  # +12 dB reached
    assert max_step(y[:, 900:]) <= 1.02 * settled  # no jump anywhere on the way
    # an unsmoothed switch at the same sample would break that bound
    hard = np.concatenate([first, ChannelStrip(sr, {"output_gain_db": 6.0})(x, sr)[:, 1001:]], 1)
    assert max_step(hard[:, 900:]) > 1.5 * settled
    # level 50 ms after the change is within 0.1 dB of the target
    at = 1001 + int(0.05 * sr)
    level = 20 * np.log10(np.abs(y[0, at:at + sr // 100]).max() / 0.25)
    assert level == pytest.approx(6.0, abs=0.1)
    # after ~15 time constants the glide has snapped: identical to a strip built at +6 dB
    ref = ChannelStrip(sr, {"output_gain_db": 6.0})(x, sr)
    np.testing.assert_array_equal(y[:, int(0.2 * sr):], ref[:, int(0.2 * sr):])
    assert s.current["output_gain_db"] == 6.0


def test_peak_gain_change_glides_without_a_step():
    sr = 48000
    x = sine(1000.0, sr, sr // 2)
    s = ChannelStrip(sr, {"peak2_freq_hz": 1000.0, "peak2_q": 2.0})
    first = s(x[:, :4000], sr)
    steady = max_step(first[:, 2000:])
    s.targets[TRACK_NAMES.index("peak2_gain_db")] = 12.0  # written directly, like a host
    rest = s(x[:, 4000:], sr)
    settled = max_step(rest[:, -2000:])
    assert settled == pytest.approx(steady * 10 ** (12 / 20), rel=0.02)
    assert max_step(rest) <= 1.05 * settled
    level = 20 * np.log10(np.abs(rest[0, int(0.06 * sr):int(0.07 * sr)]).max() / 0.25)
    assert level == pytest.approx(12.0, abs=0.15)


def test_frequencies_glide_logarithmically():
    sr = 48000
    s = ChannelStrip(sr, {"hpf_freq_hz": 100.0})
    x = np.zeros((2, 32 * 15), dtype=np.float32)  # exactly 10 ms = 15 control steps
    s.set_params({"hpf_freq_hz": 1000.0})
    s(x, sr)
    expected = 100.0 * 10 ** (1 - math.exp(-1))  # 63 % of the way in log-frequency
    assert s.current["hpf_freq_hz"] == pytest.approx(expected, rel=1e-6)
    s(np.zeros((2, sr // 4), dtype=np.float32), sr)
    assert s.current["hpf_freq_hz"] == 1000.0


def test_no_glide_at_construction_and_reset():
    s = ChannelStrip(44100, BUSY)
    assert s.current == pytest.approx(BUSY | {k: v for k, v in s.params.items() if k not in BUSY})
    x = music(44100, 0.3)
    y1 = s(x, 44100)
    s.reset()
    np.testing.assert_array_equal(s(x, 44100), y1)


def test_meters():
    sr = 48000
    s = ChannelStrip(sr, {"output_gain_db": -6.0})
    s(sine(1000.0, sr, sr, amp=0.5), sr)
    assert s.peak_db == pytest.approx(20 * np.log10(0.5) - 6.0, abs=0.01)
    assert s.rms_db == pytest.approx(20 * np.log10(0.5 / np.sqrt(2)) - 6.0, abs=0.01)
    assert s.gain_reduction_db == 0.0
    c = ChannelStrip(sr, {"comp_threshold_db": -30.0, "comp_ratio": 10.0, "comp_knee_db": 0.0})
    c(np.full((2, sr // 2), 0.5, dtype=np.float32), sr)
    assert c.gain_reduction_db == pytest.approx((-6.02 + 30) * 0.9, abs=0.05)


def test_process_into_allocates_no_arrays():
    sr = 48000
    s = ChannelStrip(sr, BUSY)
    x = music(sr, 0.2)
    out = np.empty((2, 8192), dtype=np.float32)
    s.process_into(x[:, :8192], out)
    s.set_params({"output_gain_db": 3.0, "peak1_freq_hz": 900.0})
    tracemalloc.start()
    s.process_into(x[:, :8192], out)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 2048  # an output or scratch array alone would be 64 KiB
