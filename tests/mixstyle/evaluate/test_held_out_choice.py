"""learn's held-out choices (mixstyle.evaluate.held_out): a producer who leaves every fader at
unity and turns the whole sum down by a fixed amount gets a balance strength below 1 (new mixes
move toward the plain sum's own balance) and the loudness of the plain sum plus their offset.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from dsp.loudness import integrated_loudness
from dsp.render import render
from mixstyle.cli import main
from mixstyle.io.audio import write_audio_atomic
from mixstyle.profile.store import load_profile
from mixstyle.train.balance import plain_levels, track_levels

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from conftest import synthetic_stems  # noqa: E402

pytestmark = pytest.mark.long(70)   # seconds on 2 cores: scheduled first (tests/conftest.py)

SR = 44100.0
ROLES = ("kick", "bass", "keys", "vocals")
OFFSET_DB = -3.0   # the producer's master gain: the mix is the plain sum, 3 dB down
FAST = ["--epochs", "40", "--audio-epochs", "1", "--fit-steps", "2", "--quiet"]


def _stems(seed: int) -> np.ndarray:
    """Stems of one song, the whole song scaled by a random amount (songs come in at many
    loudnesses; the producer's faders stay at unity whatever). The producer's mixes peak under
    -1.5 dBFS: with the range -8 .. +4 dB two of them (the held-out ones) peaked at +3.9 and +1.5
    dBFS, which a new mix must not copy (never above 0 dBTP), so the loudness compared there
    was the ceiling's, and the source chosen by it the per-song spread's."""
    rng = np.random.default_rng(100 + seed)
    return synthetic_stems(seed=30 + seed, seconds=2.0, n_stems=4) * \
        np.float32(10 ** (rng.uniform(-8.0, 4.0) / 20 - 0.3))


@pytest.fixture(scope="module")
def unity_profile(tmp_path_factory):
    root = tmp_path_factory.mktemp("unity")
    # ten songs: two held out. With one, whether the network's loudness came within the
    # choice's 0.1 LU margin of the sum's was the last bit of the BLAS's rounding (0.037 LU on
    # an AMD EPYC under MKL's COMPATIBLE branch)
    for k in range(10):
        stems = _stems(k)
        folder = root / "sessions" / f"song{k:02d}"
        (folder / "stems").mkdir(parents=True)
        for role, audio in zip(ROLES, stems):
            write_audio_atomic(folder / "stems" / f"{role}.wav", audio, SR)
        mix = stems.sum(axis=0) * np.float32(10 ** (OFFSET_DB / 20))
        write_audio_atomic(folder / "mix.wav", mix, SR)
    assert main(["learn", str(root / "sessions"), "--out", str(root / "profile"), "--jobs", "1",
                 *FAST]) == 0
    return load_profile(root / "profile")


def _level_error(profile, stems: np.ndarray, balance: float) -> float:
    """Mean |track level - its level in the plain sum| (LU) of the profile's mix of ``stems`` at
    ``balance`` strength, the strips whole (a style strength below 1 scales the faders too)."""
    meta = dict(profile.meta)
    profile.meta.update(balance_strength=balance, style_strength=1.0)
    try:
        setting = profile.predict([(r, r, a) for r, a in zip(ROLES, stems)], SR)
    finally:
        profile.meta = meta
    got, _ = track_levels(stems, SR, [t.params for t in setting.tracks])
    return float(np.mean(np.abs(np.array(got, dtype=float) - np.array(plain_levels(stems, SR)))))


def test_unity_producer_gets_the_plain_balance(unity_profile):
    chosen = unity_profile.meta["balance_strength"]
    assert chosen < 1.0
    stems = _stems(50)
    assert _level_error(unity_profile, stems, chosen) < _level_error(unity_profile, stems, 1.0)
    card = (Path(unity_profile.folder) / "model_card.md").read_text()
    assert f"The balance keeps {chosen:.0%} of the learned levels" in card
    assert f"The pans keep {unity_profile.meta['pan_strength']:.0%} of the learned pans" in card


def test_balance_strength_zero_puts_every_track_at_its_plain_level(unity_profile):
    stems = _stems(51)
    assert _level_error(unity_profile, stems, 1.0) > 0.5   # the network alone misses it
    assert _level_error(unity_profile, stems, 0.0) < 0.3
    assert _level_error(unity_profile, stems, 0.0) < _level_error(unity_profile, stems, 0.5) < \
        _level_error(unity_profile, stems, 1.0)


def test_loudness_follows_the_plain_sum(unity_profile):
    meta = unity_profile.meta
    assert meta["sum_offset_lu"] == pytest.approx(OFFSET_DB, abs=0.05)
    assert meta["loudness_source"] == "sum"
    stems = _stems(52)
    setting = unity_profile.predict([(r, r, a) for r, a in zip(ROLES, stems)], SR)
    got = integrated_loudness(render(stems, SR, setting).audio, SR)
    want = integrated_loudness(stems.sum(axis=0), SR) + OFFSET_DB
    assert got == pytest.approx(want, abs=0.5)


def test_pan_strength_scales_the_pans_only(unity_profile):
    stems = [(r, r, a) for r, a in zip(ROLES, _stems(53))]
    meta = dict(unity_profile.meta)
    try:
        # without novelty data no pan is capped at the producer's widest (theirs is centre)
        unity_profile.meta.update(style_strength=1.0, balance_strength=1.0, pan_strength=1.0,
                                  novelty=None)
        whole = unity_profile.predict(stems, SR)
        unity_profile.meta["pan_strength"] = 0.0
        centred = unity_profile.predict(stems, SR)
    finally:
        unity_profile.meta = meta
    assert any(abs(t.params["pan"]) > 1e-3 for t in whole.tracks)
    assert all(t.params["pan"] == 0.0 for t in centred.tracks)
    for a, b in zip(whole.tracks, centred.tracks):   # the strips are the same
        assert a.params["peak1_gain_db"] == b.params["peak1_gain_db"]
        assert a.params["comp_ratio"] == b.params["comp_ratio"]


def test_a_share_is_kept_only_on_evidence_beyond_the_songs_spread():
    from mixstyle.evaluate.held_out import choose_share
    # every held-out song closer with the style: kept (the best share, not merely some)
    assert choose_share({1.0: np.array([1.0, 1.1, 0.9, 1.0]), 0.5: np.array([1.4, 1.5, 1.3, 1.5]),
                         0.0: np.array([2.0, 2.1, 1.9, 2.2])}) == 1.0
    assert choose_share({1.0: np.array([1.6, 1.7]), 0.5: np.array([1.0, 1.1]),
                         0.0: np.array([2.0, 2.2])}) == 0.5
    # better on average, but by less than the songs' spread (one song carries it): none
    assert choose_share({1.0: np.array([0.2, 1.5, 1.1, 1.0]),
                         0.0: np.array([1.2, 1.0, 1.0, 1.0])}) == 0.0
    # a tie with none (the real set's strips, 2026-12-06: 0.959 vs 0.959 dB): none
    assert choose_share({1.0: np.array([1.0, 0.9]), 0.75: np.array([0.95, 0.96]),
                         0.0: np.array([0.96, 0.95])}) == 0.0
    # one song has no spread: its best share
    assert choose_share({1.0: np.array([0.5]), 0.0: np.array([1.2])}) == 1.0


def test_the_loudness_of_the_sum_must_beat_the_network_beyond_margin_and_spread():
    from mixstyle.evaluate.held_out import beats
    assert beats(np.array([0.2, 0.3, 0.25]), np.array([1.0, 1.2, 0.9]), 0.1)
    assert not beats(np.array([0.9, 0.95]), np.array([1.0, 1.0]), 0.1)       # within the margin
    assert not beats(np.array([0.1, 2.0, 0.1]), np.array([1.0, 1.0, 1.0]), 0.1)   # one song
    assert beats(np.array([0.5]), np.array([1.0]), 0.1)                      # one song: margin


def test_baselines_measured_apart_complete_the_same_score(unity_profile):
    """learn measures the held-out songs' baselines in its main process while the held-out
    model is scored in the other: the completed score is the one held_out_score makes alone."""
    from dataclasses import replace

    from mixstyle.evaluate.held_out import baseline_scores, held_out_score, with_baselines
    from mixstyle.sessions.load import load_song, song_folders
    from mixstyle.train.config import LearnConfig
    from mixstyle.train.records import load_records, record_features
    from mixstyle.train.songs import staged_excerpt

    root = Path(unity_profile.folder).parent
    records = {r.song: r for r in load_records(root / "profile" / "songs")}
    songs = {f.name: load_song(f) for f in song_folders(root / "sessions")}
    seen, held = sorted(songs)[:4], sorted(songs)[4:6]
    config = replace(LearnConfig().train, epochs=20, audio_epochs=1, average_passes=1)
    audio = {n: staged_excerpt(songs[n], records[n], config.audio_seconds) for n in seen}
    features = {n: record_features(r) for n, r in records.items()}
    args = ([records[n] for n in seen], config, audio, [songs[n] for n in seen],
            [songs[n] for n in held], features)
    whole = held_out_score(*args)
    apart = held_out_score(*args, baselines=False)
    assert "learned" not in apart and set(apart["learned_per_song"]) == set(held)
    assert with_baselines(apart, baseline_scores([songs[n] for n in held])) == whole
    assert whole["plain_sum"]["band_error_db"] > 0 and whole["songs"] == 2
