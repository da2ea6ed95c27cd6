"""A producer who prints a sample-peak limiter into the mix they bounce (the demo producer dex's
bus: glue compressor, JUCE's limiter driven to a loudness, a gain for the ceiling), end to end:
learn reads the habit off their mixes -- a limiter or clipper, their aim, their ceiling, and how
far their true peak rose over it -- and a new song's mix keeps its samples under their ceiling and
lets its true peak rise above it, never past 0 dBTP nor past their highest."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from dsp.loudness import integrated_loudness, true_and_sample_peak_db
from dsp.render import render
from mixstyle.cli import main
from mixstyle.demo.printing import LimiterPrint, trimmed
from mixstyle.io.audio import write_audio_atomic
from mixstyle.profile.store import load_profile

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from conftest import synthetic_stems  # noqa: E402

pytestmark = pytest.mark.long(55)   # seconds on 2 cores: scheduled first (tests/conftest.py)

SR = 44100.0
ROLES = ("kick", "bass", "keys", "vocals")
BUS = LimiterPrint(target_lufs=-8.0, ceiling_db=-0.6, glue_ratio=2.0, glue_depth_db=3.0,
                   glue_attack_ms=10.0, glue_release_ms=100.0, limiter_threshold_db=-4.0,
                   limiter_release_ms=40.0)
FAST = ["--epochs", "40", "--audio-epochs", "1", "--fit-steps", "2", "--quiet"]


def _stems(seed: int) -> np.ndarray:
    stems = synthetic_stems(seed=200 + seed, seconds=4.0, n_stems=4)
    clicks = np.zeros(stems.shape[-1], dtype=np.float32)   # a kick: the peaks the limiter takes
    clicks[::11025] = 1.0
    kick = np.convolve(clicks, np.exp(-np.arange(1500) / 150.0).astype(np.float32))
    stems[0] = 0.3 * np.stack([kick[:clicks.size]] * 2) + 0.2 * stems[0]
    return stems


@pytest.fixture(scope="module")
def printed(tmp_path_factory):
    """(profile, the producer's mixes' highest true peak)."""
    root = tmp_path_factory.mktemp("limiter")
    peaks = []
    for k in range(10):   # two held out: the choices see a spread
        stems = _stems(k)
        folder = root / "sessions" / f"song{k:02d}"
        (folder / "stems").mkdir(parents=True)
        for role, audio in zip(ROLES, stems):
            write_audio_atomic(folder / "stems" / f"{role}.wav", audio, SR)
        summed, _ = trimmed(stems.sum(axis=0), SR, -20.0)   # the faders' sum, then the bus
        mix, _ = BUS.apply(summed, SR, folder.name)
        peaks.append(true_and_sample_peak_db(mix, SR)[0])
        write_audio_atomic(folder / "mix.wav", mix, SR)
    assert main(["learn", str(root / "sessions"), "--out", str(root / "profile"), "--jobs", "1",
                 *FAST]) == 0
    return load_profile(root / "profile"), max(peaks)


def test_the_habit_is_a_limiter_at_their_aim_and_ceiling_with_their_true_peak(printed):
    profile, highest = printed
    habit = profile.meta["loudness_habit"]
    assert highest > BUS.ceiling_db + 0.2   # the samples between samples rose over the ceiling
    assert habit["mechanism"] in ("limiter", "clipper")
    assert habit["aim_lufs"] == pytest.approx(BUS.target_lufs, abs=0.2)
    assert habit["ceiling_db"] == pytest.approx(BUS.ceiling_db, abs=0.02)
    assert habit["true_peak_over_db"] == pytest.approx(min(highest, 0.0) - habit["ceiling_db"],
                                                       abs=0.02)


def test_a_new_song_lets_its_true_peak_rise_as_theirs_did_with_its_samples_under_the_ceiling(
        printed):
    profile, highest = printed
    stems = _stems(50)
    setting = profile.predict([(r, r, a) for r, a in zip(ROLES, stems)], SR)
    assert setting.master["true_peak_over_db"] == pytest.approx(
        profile.meta["loudness_habit"]["true_peak_over_db"])
    out = render(stems, SR, setting)
    held = render(stems, SR, setting, true_peak_over_db=0.0)   # the rule before: TP <= ceiling
    tp, sp = true_and_sample_peak_db(out.audio, SR)
    assert sp <= BUS.ceiling_db + 0.01
    assert BUS.ceiling_db + 0.1 < tp <= min(highest, 0.0) + 0.01
    assert held.true_peak_dbtp <= BUS.ceiling_db + 0.01
    # the same aim: with the allowance the limiter takes less, and the mix is never quieter
    assert out.loudness_lufs >= held.loudness_lufs - 0.05
    assert out.limiter_ceiling_db > held.limiter_ceiling_db + 0.3
