"""Block-rate limiter model: its predicted loudness of the limited signal against the real
limiter's output, measured, over drives from none to heavy limiting."""

from __future__ import annotations

import numpy as np
import pytest

from dsp.limiter import Limiter
from dsp.limiter_model import LimiterModel, model_block
from dsp.loudness import integrated_loudness


def drums_and_pad(seconds: float, sr: float, seed: int = 5) -> np.ndarray:
    """Decaying noise hits on a quieter sustained pad: peaks well above the body, as in a mix."""
    rng = np.random.default_rng(seed)
    n = int(seconds * sr)
    t = np.arange(n) / sr
    x = 0.08 * np.sin(2 * np.pi * 220 * t)[None] + 0.02 * rng.standard_normal((2, n))
    for start in rng.integers(0, n - int(0.2 * sr), int(seconds * 4)):
        m = int(0.2 * sr)
        x[:, start:start + m] += (rng.uniform(0.2, 0.9) * rng.standard_normal((2, m))
                                  * np.exp(-np.arange(m) / (0.03 * sr)))
    return x.astype(np.float32)


def limited_lufs(x: np.ndarray, sr: float, drive_db: float, release_ms: float,
                 lookahead_ms: float) -> float:
    lim = Limiter(sr, 0.0, release_ms, lookahead_ms, channels=x.shape[0])
    lat = lim.latency_samples
    buf = np.zeros((x.shape[0], x.shape[1] + lat), np.float32)
    buf[:, :x.shape[1]] = x * np.float32(10 ** (drive_db / 20))
    return integrated_loudness(lim.process(buf, sr)[:, lat:], sr)


@pytest.mark.parametrize("sr", [44100.0, 48000.0])
@pytest.mark.parametrize("release_ms, lookahead_ms", [(50.0, 5.0), (200.0, 1.0)])
def test_predicted_loudness_follows_the_real_limiter(sr, release_ms, lookahead_ms):
    x = drums_and_pad(8.0, sr)
    model = LimiterModel(x, sr, release_ms, lookahead_ms)
    start = -model.peak_db
    # the reference in float64: numpy's float32 log10 rounds differently on AVX2 and AVX-512
    assert model.peak_db == pytest.approx(20 * np.log10(np.abs(x).max().astype(np.float64)),
                                          abs=1e-9)
    assert model.lufs_unlimited == pytest.approx(integrated_loudness(x, sr), abs=1e-9)
    assert model.lufs(start - 3.0) == pytest.approx(integrated_loudness(x, sr) + start - 3.0,
                                                    abs=1e-6)  # no limiting: exact
    for over in (2.0, 6.0, 10.0):
        real = limited_lufs(x, sr, start + over, release_ms, lookahead_ms)
        loss = integrated_loudness(x, sr) + start + over - real
        assert loss > 0.05 * over  # the limiter really takes loudness here
        assert model.lufs(start + over) == pytest.approx(real, abs=0.02 + 0.015 * loss)


def test_blocks_divide_the_loudness_hop():
    for hop in (4410, 4800, 9600, 800, 2205):
        b = model_block(hop)
        assert hop % b == 0 and b <= 48
    assert model_block(4410) == 45 and model_block(4800) == 48


def test_model_refuses_more_than_five_channels():
    with pytest.raises(ValueError, match="1 .. 5"):
        LimiterModel(np.zeros((6, 48000), np.float32), 48000.0, 50.0, 5.0)
