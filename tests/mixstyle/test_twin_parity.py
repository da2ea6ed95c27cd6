"""Parity of the torch twin with the numba console (dsp/): same static setting, same audio, the
difference must stay below -60 dB (20 log10(rms(diff) / rms(ref)))."""

import math

import numpy as np
import pytest
import torch

from dsp.biquad import HighShelf, LowShelf, Peak
from dsp.compressor import Compressor
from dsp.gain import Gain
from dsp.params import MASTER_PARAMS, TRACK_PARAMS
from dsp.strip import ChannelStrip
from mixstyle import twin

PARITY_DB = -60.0


def _rms(x):
    return float(np.sqrt(np.mean(np.square(np.asarray(x, dtype=np.float64)))))


def _diff_db(y, ref):
    return 20 * math.log10(_rms(np.asarray(y, np.float64) - np.asarray(ref, np.float64))
                           / _rms(ref))


def _test_audio(seconds, sr, seed, level=0.3):
    """Stereo noise bursts + two tones (different in L and R)."""
    rng = np.random.default_rng(seed)
    n = int(seconds * sr)
    t = np.arange(n) / sr
    env = (np.sin(2 * np.pi * (2 + seed % 3) * t) > 0.3).astype(float)
    f1, f2 = rng.uniform(80, 400), rng.uniform(1000, 6000)
    tones = 0.6 * np.sin(2 * np.pi * f1 * t) + 0.3 * np.sin(2 * np.pi * f2 * t + 1.0)
    noise = env * rng.normal(size=(2, n)) * 0.5
    return (level * (np.stack([tones, 0.7 * tones]) + noise)).astype(np.float32)


# normalised sub-ranges that keep every band active and the compressor compressing
_U_RANGE = {"hpf_freq_hz": (0.1, 0.6), "lpf_freq_hz": (0.3, 0.9),
            "comp_threshold_db": (0.4, 0.75), "comp_ratio": (0.3, 1.0),
            "output_gain_db": (0.6, 0.9), "input_gain_db": (0.35, 0.65)}


def _random_params(specs, rng):
    out = {}
    for p in specs:
        if p.name.startswith("limiter_") or p.name == "target_lufs":
            continue
        lo, hi = _U_RANGE.get(p.name, (0.03, 0.97))
        v = float(p.denormalise(rng.uniform(lo, hi)))
        if p.name.endswith("gain_db") and abs(v) < 1.0:
            v = 1.0 if v >= 0 else -1.0  # peaks and shelves clearly on
        out[p.name] = v
    return out


def _as_tensors(params):
    return {k: torch.tensor([v], dtype=torch.float64) for k, v in params.items()}


@pytest.mark.parametrize("sr", [44100.0, 48000.0])
@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_strip_parity_with_numba_channel_strip(seed, sr):
    rng = np.random.default_rng(100 + seed)
    params = _random_params(TRACK_PARAMS, rng)
    x = _test_audio(0.6, sr, seed)
    strip = ChannelStrip(sr, params)
    ref = strip.process(x, sr)
    assert strip.gain_reduction_db > 3.0  # the compressor is working
    y = twin.strip(torch.from_numpy(x)[None], sr, _as_tensors(params))[0].numpy()
    assert _diff_db(y, ref) < PARITY_DB


def _numba_master(x, sr, params):
    """MasterBus pieces before the limiter, from the individual numba processors."""
    chain = [LowShelf(params["low_shelf_freq_hz"], params["low_shelf_gain_db"])]
    chain += [Peak(params[f"peak{i}_freq_hz"], params[f"peak{i}_gain_db"], params[f"peak{i}_q"])
              for i in (1, 2, 3)]
    chain += [HighShelf(params["high_shelf_freq_hz"], params["high_shelf_gain_db"]),
              Compressor(params["comp_threshold_db"], params["comp_ratio"],
                         params["comp_attack_ms"], params["comp_release_ms"],
                         params["comp_knee_db"], params["comp_makeup_db"]),
              Gain(params["gain_db"])]
    for proc in chain:
        x = proc.process(x, sr)
    return x


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_master_parity_with_numba_pieces(seed):
    sr = 44100.0
    rng = np.random.default_rng(200 + seed)
    params = _random_params(MASTER_PARAMS, rng)
    x = _test_audio(0.6, sr, seed + 10)
    ref = _numba_master(x, sr, params)
    unc = _numba_master(x, sr, {**params, "comp_ratio": 1.0})
    assert _rms(ref) < 0.9 * _rms(unc)  # the glue compressor is working
    y = twin.master(torch.from_numpy(x)[None], sr, _as_tensors(params))[0].numpy()
    assert _diff_db(y, ref) < PARITY_DB
