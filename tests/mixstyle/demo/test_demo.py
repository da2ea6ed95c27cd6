"""Demo songs (MMA + fluidsynth) and demo producers (pedalboard): measured behaviour."""

from __future__ import annotations

import json
import shutil
import subprocess

import numpy as np
import pytest
import scipy.signal

from dsp.errors import AudioInputError, ParameterError
from mixstyle.io.audio import read_audio
from mixstyle.demo import (DECISIONS_FILE, PRODUCERS, STEM_ROLES, STYLES, DemoToolError,
                           tools_missing, make_sessions, make_song)
from mixstyle.demo import songs as songs_mod
from mixstyle.demo.sessions import song_stems
from mixstyle.demo._analysis import loudness_lufs, spectral_centroid_hz
from mixstyle.demo.producers import pan_gains
from mixstyle.sessions.roles import ROLES, role_from_name

pytestmark = pytest.mark.long(30)   # seconds on 2 cores: scheduled first (tests/conftest.py)

SR = 44100
SECONDS = 4.0
SEED = 3



# Only the tests that run mma/fluidsynth (or use a song they rendered) need them; the argument
# checks, the pan law and the stem checks are pure Python and run everywhere.
TOOLS_MISSING = tools_missing()
needs_tools = pytest.mark.skipif(bool(TOOLS_MISSING), reason=TOOLS_MISSING or "tools found")


def _stems(folder):
    stems, sr = song_stems(folder)
    assert sr == SR
    return stems


@pytest.fixture(scope="module")
def song(tmp_path_factory):
    return make_song(tmp_path_factory.mktemp("song") / "rock_song", SEED, SECONDS, "rock")


@pytest.fixture(scope="module")
def stems(song):
    return _stems(song)


@pytest.fixture(scope="module")
def mixes(stems):
    return {name: PRODUCERS[name].mix(stems, SR, "rock_song") for name in ("ava", "ben", "cleo")}


# ------------------------------------------------------------------------------------ songs

@needs_tools
def test_song_has_5_to_8_dry_stereo_stems_named_by_role(song, stems):
    assert 5 <= len(stems) <= 8
    roles = {role for _, role, _ in stems}
    assert {"kick", "snare", "bass"} <= roles and roles & {"vocals", "lead"}
    for name, role, audio in stems:
        assert role in ROLES and role == STEM_ROLES[name]
        assert audio.dtype == np.float32 and audio.shape == (2, int(SECONDS * SR))
        peak_db = 20 * np.log10(np.max(np.abs(audio)))
        assert -14.1 <= peak_db <= -3.9, name                       # seeded recording level
        assert 20 * np.log10(np.sqrt(np.mean(audio ** 2))) > -50.0, name
        assert np.max(np.abs(audio[:, -10:])) < 1e-3 * np.max(np.abs(audio)), name  # faded tail


@needs_tools
@pytest.mark.parametrize("name", ["kick", "snare"])
def test_drum_stems_are_dry_hits_with_silent_gaps(stems, name):
    audio = dict((n, a) for n, _, a in stems)[name].mean(axis=0)
    block = int(0.02 * SR)
    rms = np.sqrt(np.mean(audio[:audio.size // block * block].reshape(-1, block) ** 2, axis=1))
    rms_db = 20 * np.log10(rms + 1e-12)
    # no reverb wash: the quietest 20 % of the time is > 40 dB below the hits
    assert np.percentile(rms_db, 99) - np.percentile(rms_db, 20) > 40.0


@needs_tools
def test_kick_is_low_and_hats_are_high(stems):
    by_name = {n: a for n, _, a in stems}
    assert spectral_centroid_hz(by_name["kick"], SR) < 400.0
    assert spectral_centroid_hz(by_name["overheads"], SR) > 2000.0


@needs_tools
def test_song_source_describes_the_song(song):
    info = json.loads((song / "source" / "song.json").read_text())
    style = STYLES["rock"]
    assert info["style"] == "rock" and info["seed"] == SEED
    assert style.tempo_bpm[0] <= info["tempo_bpm"] <= style.tempo_bpm[1]
    assert set(info["grooves"]) <= {g for pair in style.grooves for g in pair}
    assert "Groove " in (song / "source" / "song.mma").read_text()
    assert sorted(s["file"] for s in info["stems"]) == sorted(
        p.name for p in (song / "stems").glob("*.wav"))


@needs_tools
def test_same_seed_same_song_other_seed_other_song(song, stems, tmp_path):
    again = _stems(make_song(tmp_path / "again", SEED, SECONDS, "rock"))
    assert [n for n, _, _ in again] == [n for n, _, _ in stems]
    for (_, _, a), (_, _, b) in zip(again, stems):
        np.testing.assert_array_equal(a, b)
    other = dict((n, a) for n, _, a in _stems(make_song(tmp_path / "other", SEED + 1, 2.0,
                                                        "rock")))
    n = other["bass"].shape[1]
    assert not np.allclose(other["bass"], dict((n, a) for n, _, a in stems)["bass"][:, :n])


@needs_tools
def test_every_style_groove_is_known_to_mma(tmp_path):
    grooves = sorted({g for s in STYLES.values() for pair in s.grooves for g in pair})
    text = "Tempo 120\n" + "".join(f"Groove {g}\nC\n" for g in grooves)
    (tmp_path / "all.mma").write_text(text)
    res = subprocess.run(["mma", "-w", "-f", "all.mid", "all.mma"], cwd=tmp_path,
                         capture_output=True, text=True, check=False)
    assert res.returncode == 0, res.stdout + res.stderr


def test_missing_tools_name_the_debian_package(monkeypatch, tmp_path):
    installed = {"mma", "fluidsynth"}                    # pretend, so this runs without them
    monkeypatch.setattr(songs_mod.shutil, "which",
                        lambda exe: f"/usr/bin/{exe}" if exe in installed else None)
    with pytest.raises(DemoToolError, match="fluid-soundfont-gm"):
        make_song(tmp_path / "x", 1, SECONDS, soundfont=tmp_path / "missing.sf2")
    installed.discard("mma")
    with pytest.raises(DemoToolError, match="Debian package 'mma'"):
        make_song(tmp_path / "x", 1, SECONDS)


@pytest.mark.parametrize("kwargs, match", [
    ({"seed": -1}, "seed must be a non-negative integer"),
    ({"seconds": 1.0}, r"seconds = 1.0 is out of range: allowed 2 .. 600 s"),
    ({"style": "polka"}, "style 'polka' is unknown; known styles: rock"),
])
def test_make_song_rejects_bad_arguments(tmp_path, kwargs, match):
    args = {"seed": 1, "seconds": SECONDS, "style": None, **kwargs}
    with pytest.raises(ParameterError, match=match):
        make_song(tmp_path / "x", **args)


# -------------------------------------------------------------------------------- producers

def test_pan_law_is_constant_power_with_0db_centre():
    assert pan_gains(0.0) == pytest.approx((1.0, 1.0))
    assert pan_gains(-1.0) == pytest.approx((np.sqrt(2.0), 0.0), abs=1e-12)
    for p in np.linspace(-1, 1, 9):
        g_l, g_r = pan_gains(float(p))
        assert g_l ** 2 + g_r ** 2 == pytest.approx(2.0)


@needs_tools
@pytest.mark.parametrize("producer", ["ava", "ben", "cleo"])
def test_mix_is_the_producers_processing_of_the_stems(stems, mixes, producer):
    mix, master, decisions = mixes[producer]
    assert mix.shape == master.shape == (2, int(SECONDS * SR)) and mix.dtype == np.float32
    total = sum(a for _, _, a in stems).mean(axis=0)
    weighted = np.zeros_like(mix)
    for name, _, audio in stems:
        t = decisions["tracks"][name]
        g_l, g_r = pan_gains(t["pan"])
        weighted += audio * (10 ** (t["output_gain_db"] / 20) * np.array([[g_l], [g_r]]))
    assert np.corrcoef(mix.mean(axis=0), total)[0, 1] > 0.6           # measured 0.70 .. 0.90
    assert np.corrcoef(mix.mean(axis=0), weighted.mean(axis=0))[0, 1] > 0.65
    assert np.corrcoef(master.mean(axis=0), mix.mean(axis=0))[0, 1] > 0.9
    shifted = np.roll(total, SR // 3)                                 # control: must fail
    assert abs(np.corrcoef(mix.mean(axis=0), shifted)[0, 1]) < 0.3


@needs_tools
@pytest.mark.parametrize("producer, target", [("ava", -9.0), ("ben", -14.0), ("cleo", -12.0)])
def test_master_meets_the_producers_loudness_target_and_ceiling(mixes, producer, target):
    _, master, decisions = mixes[producer]
    assert loudness_lufs(master, SR) == pytest.approx(target, abs=0.2)
    ceiling = PRODUCERS[producer].master_taste.ceiling_db
    assert 20 * np.log10(np.max(np.abs(master))) <= ceiling + 0.01
    assert decisions["master"]["target_lufs"] == target


def _high_to_low_db(audio):
    freqs, p = scipy.signal.welch(audio.mean(axis=0), fs=SR, nperseg=4096)
    return 10 * np.log10(p[freqs > 4000].sum() / p[(freqs > 40) & (freqs < 400)].sum())


@needs_tools
def test_ava_is_brighter_and_louder_than_ben(mixes):
    ava_mix, ava_master, _ = mixes["ava"]
    ben_mix, ben_master, _ = mixes["ben"]
    assert loudness_lufs(ava_master, SR) - loudness_lufs(ben_master, SR) > 4.0
    assert spectral_centroid_hz(ava_master, SR) > 1.5 * spectral_centroid_hz(ben_master, SR)
    assert _high_to_low_db(ava_master) - _high_to_low_db(ben_master) > 4.0  # measured 8.1
    assert _high_to_low_db(ava_mix) > _high_to_low_db(ben_mix) + 2.0   # measured 3.9


@needs_tools
def test_tastes_show_in_the_decisions(mixes):
    tracks = {p: mixes[p][2]["tracks"] for p in mixes}
    spread = [n for n, t in tracks["ben"].items() if PRODUCERS["ben"].taste(t["role"]).pan_spread]
    assert spread                                       # ben pans keys/guitars wider than ava
    assert all(abs(tracks["ben"][n]["pan"]) > abs(tracks["ava"][n]["pan"]) for n in spread)
    assert tracks["cleo"]["lead_vocal"]["hpf_freq_hz"] >= tracks["ben"]["lead_vocal"]["hpf_freq_hz"]
    assert tracks["cleo"]["snare"]["peak1_gain_db"] < tracks["ben"]["snare"]["peak1_gain_db"] < 0
    for p in tracks:                                    # vocals above the band for everyone
        assert tracks[p]["lead_vocal"]["target_lufs"] > tracks[p]["piano"]["target_lufs"] + 3
    assert tracks["ava"]["kick"]["hpf_freq_hz"] < tracks["ava"]["lead_vocal"]["hpf_freq_hz"]


@needs_tools
def test_decisions_follow_the_content_a_quieter_stem_gets_a_higher_fader(stems, mixes):
    quiet = [(n, r, a * np.float32(0.5) if n == "bass" else a) for n, r, a in stems]
    mix, _, d = PRODUCERS["ava"].mix(quiet, SR, "rock_song")
    ref_mix, _, ref = mixes["ava"]
    raised_db = d["tracks"]["bass"]["output_gain_db"] - ref["tracks"]["bass"]["output_gain_db"]
    assert raised_db == pytest.approx(6.02, abs=0.05)
    err_db = 10 * np.log10(np.mean((mix - ref_mix) ** 2) / np.mean(ref_mix ** 2))
    assert err_db < -40.0                               # same mix: the engineer compensated


@needs_tools
def test_mix_is_deterministic_per_song_and_varies_between_songs(stems, mixes):
    mix, master, d = PRODUCERS["ava"].mix(stems, SR, "rock_song")
    np.testing.assert_array_equal(mix, mixes["ava"][0])
    np.testing.assert_array_equal(master, mixes["ava"][1])
    other = PRODUCERS["ava"].mix(stems, SR, "another_song")[2]["tracks"]
    faders = [(d["tracks"][n]["output_gain_db"], other[n]["output_gain_db"]) for n in other]
    diffs = [abs(a - b) for a, b in faders]
    assert 0.0 < max(diffs) <= 1.0 + 1e-6              # human inconsistency, about +-0.5 dB


def test_mix_rejects_bad_stems(make_stems):
    stems = [(n, role_from_name(n), a) for n, a in zip(("kick", "bass"), make_stems(1, 1.0, 2))]
    ava = PRODUCERS["ava"]
    with pytest.raises(ParameterError, match="no stems to mix"):
        ava.mix([], SR, "s")
    with pytest.raises(AudioInputError, match="stem 'kick' of song 's' must have 2 channels"):
        ava.mix([("kick", "kick", stems[0][2][:1])], SR, "s")
    with pytest.raises(ParameterError, match="stem 'b' of song 's' has 10 samples"):
        ava.mix([("a", "bass", stems[0][2]), ("b", "bass", stems[0][2][:, :10])], SR, "s")
    with pytest.raises(AudioInputError, match="sample_rate = 1000 Hz is out of range"):
        ava.mix(stems, 1000, "s")


# --------------------------------------------------------------------------------- sessions

@needs_tools
def test_two_producers_mix_the_same_cached_songs(tmp_path):
    from mixstyle.sessions.load import load_song

    cache = tmp_path / "cache"
    a = make_sessions(tmp_path / "ava", "ava", 1, 5, SECONDS, cache_dir=cache)
    cached = next((cache / a[0].name / "stems").glob("*.wav"))
    mtime = cached.stat().st_mtime_ns
    b = make_sessions(tmp_path / "ben", "ben", 1, 5, SECONDS, cache_dir=cache)
    assert cached.stat().st_mtime_ns == mtime           # reused, not generated again
    assert [p.name for p in a] == [p.name for p in b]
    for x, y in zip(a, b):
        assert {f.name for f in x.iterdir()} == {"stems", "mix.wav", "master.wav", DECISIONS_FILE}
        names = sorted(p.name for p in (x / "stems").glob("*.wav"))
        assert names == sorted(p.name for p in (y / "stems").glob("*.wav"))
        for n in names:
            assert (x / "stems" / n).read_bytes() == (y / "stems" / n).read_bytes()
        assert not np.array_equal(read_audio(x / "mix.wav")[0], read_audio(y / "mix.wav")[0])
        loaded = load_song(x)
        assert loaded.master is not None and len(loaded.stems) == len(names)
    with pytest.raises(ParameterError, match="producer 'zoe' is unknown; known producers: ava"):
        make_sessions(tmp_path / "z", "zoe", 1, 5, SECONDS)


# ------------------------------------------------------------- relative folders, fresh clone

@needs_tools
def test_sessions_into_relative_folders_from_another_working_directory(tmp_path, monkeypatch):
    # `make demo` passes demo_out/cache: relative, and mma/fluidsynth run inside source/
    monkeypatch.chdir(tmp_path)
    folders = make_sessions("rel/sessions", "ava", 1, 7, 2.0, cache_dir="rel/cache")
    song = tmp_path / "rel" / "cache" / folders[0].name
    info = json.loads((song / "source" / "song.json").read_text())
    assert info["stems"] and all((song / "stems" / s["file"]).is_file() for s in info["stems"])
    session = tmp_path / "rel" / "sessions" / folders[0].name
    assert (session / "mix.wav").is_file() and (session / "master.wav").is_file()
    assert sorted(p.name for p in (session / "stems").glob("*.wav")) == sorted(
        s["file"] for s in info["stems"])
    assert not (song / "source" / "rel").exists()       # nothing nested under source/
    assert make_song("rel/one", 7, 2.0, "rock") == tmp_path / "rel" / "one"


@needs_tools
def test_mixstyle_demo_command_into_a_relative_folder_with_no_cache(tmp_path):
    """The real CLI, as `make demo` runs it, from a folder holding no songs yet."""
    import os
    import sys
    from pathlib import Path

    import mixstyle

    checkout = Path(mixstyle.__file__).resolve().parent.parent   # the code this test imported
    env = dict(os.environ, PYTHONPATH=str(checkout))
    res = subprocess.run([sys.executable, "-m", "mixstyle.cli", "demo", "--out", "demo_rel",
                          "--songs", "1"], cwd=tmp_path, env=env, capture_output=True,
                         text=True, timeout=600, check=False)
    assert res.returncode == 0, res.stdout + res.stderr
    out = tmp_path / "demo_rel"
    (name,) = [p.name for p in (out / "sessions").iterdir()]
    assert (out / "cache" / name / "source" / "song.json").is_file()
    for f in ("mix.wav", "master.wav", DECISIONS_FILE):
        assert (out / "sessions" / name / f).is_file(), f
    mix, sr = read_audio(out / "mixes" / f"{name}.wav")
    assert sr == SR and mix.shape[0] == 2 and mix.shape[1] > 10 * SR
    assert np.max(np.abs(mix)) > 1e-3
    assert (out / "mixes" / f"{name}.params.json").is_file()
    assert "on 1 new songs" in res.stdout
    for metric in ("band_error_db", "mrstft", "loudness_error_lu", "width_error_db"):
        assert metric in res.stdout, res.stdout
    assert "of the plain sum's band error" in res.stdout
