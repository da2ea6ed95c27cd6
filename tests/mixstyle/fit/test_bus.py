"""What a producer's mix bus did to the level (mixstyle.fit.bus): a mix only turned up or down,
or with reverb added, shows no limiting; a mix driven into another design's limiter (pedalboard's
JUCE limiter) or a hard clipper shows how much was taken off its peaks, and the clipper its flat
tops. The setting given is what a fit finds: the strips at the mix's level before the limiter."""

from __future__ import annotations

import numpy as np
import pedalboard as pb
import pytest

from dsp.loudness import integrated_loudness
from dsp.params import MASTER, TRACK, ConsoleSetting, TrackSetting, validate
from mixstyle.fit.bus import measure_bus

SR = 44100.0


def _stems(seconds: float = 8.0) -> np.ndarray:
    """Drums (decaying clicks, 2 per second) and a bass tone: a peaky song."""
    rng = np.random.default_rng(3)
    n = int(seconds * SR)
    t = np.arange(n) / SR
    hits = np.zeros(n)
    hits[::int(SR / 2)] = 1.0
    drum = np.convolve(hits, np.exp(-np.arange(3000) / 300.0) * rng.normal(size=3000))[:n]
    bass = 0.2 * np.sin(2 * np.pi * 55 * t) * (1 + 0.3 * np.sin(2 * np.pi * 0.5 * t))
    return np.stack([np.stack([drum, drum]), np.stack([bass, bass])]).astype(np.float32)


def _plain(stems: np.ndarray, gain_db: float = 0.0) -> ConsoleSetting:
    return ConsoleSetting(tuple(TrackSetting(f"t{i}", validate(TRACK, {
        "output_gain_db": gain_db})) for i in range(len(stems))), validate(MASTER, {}))


def _to_loudness(x: np.ndarray, lufs: float, chain) -> tuple[np.ndarray, float]:
    """``x`` through gain and ``chain`` to ``lufs``; the audio and the gain."""
    gain = lufs - integrated_loudness(x, SR)
    for _ in range(8):
        out = pb.Pedalboard([pb.Gain(gain_db=gain), *chain])(x, SR).astype(np.float32)
        got = integrated_loudness(out, SR)
        if abs(got - lufs) < 0.03:
            break
        gain += lufs - got
    return out, gain


def test_a_mix_only_turned_down_shows_no_limiting():
    stems = _stems()
    mix = (stems.sum(axis=0) * 0.5).astype(np.float32)
    bp = measure_bus(stems, SR, _plain(stems, 20 * np.log10(0.5)), mix)
    assert abs(bp.limiting_db) < 0.1
    assert bp.release_ms is None and bp.clipped_per_s == 0.0
    assert bp.plr_db == pytest.approx(bp.bus_plr_db, abs=0.1)


def test_reverb_is_not_limiting():
    # a long reverb return 6 dB under the dry: the mix's level between the hits rises, its
    # peak-to-loudness ratio drops by dB, its peaks do not
    stems = _stems()
    dry = stems.sum(axis=0)
    wet = pb.Reverb(room_size=0.9, wet_level=1.0, dry_level=0.0, width=1.0)(dry, SR)
    mix = (dry + 0.5 * wet).astype(np.float32)
    bp = measure_bus(stems, SR, _plain(stems), mix)
    assert bp.bus_plr_db - bp.plr_db > 1.0
    assert abs(bp.limiting_db) < 0.5


def test_a_limited_mix_shows_its_limiting():
    stems = _stems()
    mix, gain = _to_loudness(stems.sum(axis=0), -10.0,
                             [pb.Limiter(threshold_db=-0.3, release_ms=100.0)])
    bp = measure_bus(stems, SR, _plain(stems, gain), mix)
    assert bp.loudness_lufs == pytest.approx(-10.0, abs=0.05)
    assert bp.limiting_db > 4.0            # the clicks were taken down by several dB
    assert bp.release_ms is not None and bp.release_ms >= 10.0
    assert bp.clipped_per_s < 20.0


def test_a_clipped_mix_shows_flat_tops():
    stems = _stems()
    mix, gain = _to_loudness(stems.sum(axis=0), -10.0, [pb.Clipping(threshold_db=-0.3)])
    bp = measure_bus(stems, SR, _plain(stems, gain), mix)
    assert bp.limiting_db > 4.0
    assert bp.clipped_per_s > 100.0
    assert bp.release_ms is not None and bp.release_ms <= 3.0


def test_silence_has_no_print():
    stems = np.zeros((1, 2, int(SR)), dtype=np.float32)
    assert measure_bus(stems, SR, _plain(stems), stems[0]) is None
