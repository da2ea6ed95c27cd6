"""Session loader: measured behaviour of load -> check -> align -> roles on tiny synthetic songs.

The helpers here (synthetic stems, song folders written with pedalboard) are also imported by
sessions/test_failures.py.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pedalboard import Compressor, HighpassFilter, LowShelfFilter, Pedalboard, Reverb
from pedalboard.io import AudioFile

from mixstyle.sessions.check import explained_fraction
from mixstyle.sessions.load import LoadReport, SessionWarning, load_sessions, load_song, load_stems

GAINS = {"kick": 0.45, "bass": 0.35, "hats": 0.25, "keys": 0.4, "vox": 0.6}


def synth_stems(sample_rate: float, seconds: float, seed: int = 0) -> dict[str, np.ndarray]:
    """Five music-like stems (mono kick/bass/vox, stereo hats/keys); tempo and notes by seed."""
    rng = np.random.default_rng(seed)
    n = int(round(seconds * sample_rate))
    t = np.arange(n) / sample_rate
    beat = 60.0 / rng.uniform(85, 140)
    phase = rng.uniform(0, beat)
    key = rng.uniform(0.85, 1.15)  # every song in its own key
    since_hit = (t + phase) % beat
    kick = np.sin(2 * np.pi * 55 * key * since_hit) * np.exp(-since_hit / 0.12)
    notes = key * rng.choice([41.2, 55.0, 61.7, 73.4, 82.4], size=int(seconds / beat) + 2)
    ph = 2 * np.pi * np.cumsum(notes[((t + phase) // beat).astype(int)]) / sample_rate
    bass = 0.3 * sum(np.sin(k * ph) / k for k in range(1, 6))
    noise = rng.standard_normal((2, n))
    hats = 0.2 * noise * np.exp(-((t + phase) % (beat / 2)) / 0.02)
    keys = np.zeros((2, n))
    chords = key * rng.choice([220.0, 261.6, 329.6, 392.0, 440.0], size=(int(seconds) + 1, 3))
    for k in range(3):
        f = chords[t.astype(int), k]
        keys[0] += 0.1 * np.sin(2 * np.pi * np.cumsum(f) / sample_rate)
        keys[1] += 0.1 * np.sin(2 * np.pi * np.cumsum(f * 1.002) / sample_rate)
    env = 0.5 + 0.5 * np.sin(2 * np.pi * 3 * t + rng.uniform(0, 6))
    pitch = rng.uniform(200, 400) + 10 * np.sin(2 * np.pi * 5 * t)
    vox = env * (0.3 * np.sin(2 * np.pi * np.cumsum(pitch) / sample_rate) + 0.05 * noise[0])
    out = {"kick": 0.8 * kick[None], "bass": bass[None], "hats": hats, "keys": keys,
           "vox": vox[None]}
    return {k: v.astype(np.float32) for k, v in out.items()}


def write(path: Path, audio: np.ndarray, sample_rate: float, bit_depth: int = 32) -> Path:
    if path.suffix in (".flac", ".aiff", ".aif"):
        bit_depth = min(bit_depth, 24)
    if path.suffix in (".mp3", ".ogg"):
        bit_depth = 16
    with AudioFile(str(path), "w", sample_rate, audio.shape[0], bit_depth=bit_depth) as f:
        f.write(np.asarray(audio, np.float32))
    return path


def stereo(a: np.ndarray) -> np.ndarray:
    return np.repeat(a, 2, axis=0) if a.shape[0] == 1 else a


def plain_mix(stems: dict[str, np.ndarray]) -> np.ndarray:
    return np.sum([GAINS[k] * stereo(a) for k, a in stems.items()], axis=0).astype(np.float32)


PRODUCER = Pedalboard([HighpassFilter(60), LowShelfFilter(200, 3.0), Compressor(-20, 4),
                       Reverb(room_size=0.5, wet_level=0.3)])


def make_song(root: Path, name: str, sample_rate: float = 44100, seconds: float = 3.0,
              offset: int = 0, seed: int = 0, fx: bool = False, ext: str = "wav",
              mix_ext: str = "wav") -> tuple[Path, dict[str, np.ndarray], np.ndarray]:
    """A song folder; returns (folder, stems as written, mix before the offset was applied)."""
    folder = root / name
    (folder / "stems").mkdir(parents=True)
    stems = synth_stems(sample_rate, seconds, seed)
    for k, a in stems.items():
        write(folder / "stems" / f"{k}.{ext}", a, sample_rate)
    mix = plain_mix(stems)
    if fx:
        mix = PRODUCER(mix, sample_rate)
    shifted = shift(mix, offset)
    write(folder / f"mix.{mix_ext}", shifted, sample_rate)
    return folder, stems, mix


def shift(audio: np.ndarray, offset: int) -> np.ndarray:
    """Delay by ``offset`` samples (advance if negative), keeping the length of the tail."""
    if offset >= 0:
        return np.concatenate([np.zeros((audio.shape[0], offset), np.float32), audio], axis=1)
    return np.ascontiguousarray(audio[:, -offset:])


def codes(song) -> list[str]:
    return [w.code for w in song.warnings]


def test_clean_song_loads_as_written(tmp_path):
    folder, stems, mix = make_song(tmp_path, "ballad")
    song = load_song(folder)
    assert song.name == "ballad" and song.sample_rate == 44100.0
    assert [s.name for s in song.stems] == sorted(stems)
    assert {s.name: s.role for s in song.stems} == {
        "bass": "bass", "hats": "drums", "keys": "keys", "kick": "kick", "vox": "vocals"}
    assert song.warnings == () and song.offset_samples == 0 and song.master is None
    for s in song.stems:
        assert s.audio.shape == (2, 132300) and s.audio.dtype == np.float32
        np.testing.assert_array_equal(s.audio, stereo(stems[s.name]))  # mono -> centred stereo
    np.testing.assert_array_equal(song.mix, mix)
    assert song.stem_array().shape == (5, 2, 132300)


@pytest.mark.parametrize("sample_rate", [44100, 48000])
@pytest.mark.parametrize("offset_ms", [37.0, -37.0])
def test_offset_is_found_to_one_sample_and_removed(tmp_path, sample_rate, offset_ms):
    offset = int(round(offset_ms * sample_rate / 1000))
    folder, _, mix = make_song(tmp_path, "ballad", sample_rate, offset=offset, seed=3)
    song = load_song(folder, sample_rate=sample_rate)
    assert abs(song.offset_samples - offset) <= 1
    assert codes(song) == ["offset"]
    assert str(song.warnings[0]) == (
        f"mix 'mix.wav' of song 'ballad' is offset by {offset_ms:+.1f} ms ({offset:+d} samples "
        f"at {sample_rate} Hz) from the stems; aligned by shifting it")
    start = max(0, -offset)  # a mix that started early lost its first samples: zeros there
    np.testing.assert_allclose(song.mix[:, start:], mix[:, start:], atol=1e-6)
    assert not song.mix[:, :start].any()


def test_offset_of_a_processed_mix(tmp_path):
    """HPF + shelf + compressor + 30 % wet reverb: offset still within one sample."""
    folder, _, _ = make_song(tmp_path, "ballad", offset=1632, seed=4, fx=True)
    song = load_song(folder)
    assert abs(song.offset_samples - 1632) <= 1


def test_mp3_mix_codec_delay_is_measured_and_removed(tmp_path):
    folder, _, mix = make_song(tmp_path, "ballad", seed=5, mix_ext="mp3")
    decoded = AudioFile(str(folder / "mix.mp3")).read(mix.shape[1] + 4000)
    xc = np.correlate(decoded[0, :40000], mix[0, :30000], "valid")
    codec_delay = int(np.argmax(xc))
    song = load_song(folder)
    assert codec_delay > 500 and abs(song.offset_samples - codec_delay) <= 1
    residual = song.mix - mix
    assert 10 * np.log10(np.mean(residual ** 2) / np.mean(mix ** 2)) < -20  # aligned to -20 dB


def test_processed_mix_passes_unrelated_mix_is_measured_near_zero(tmp_path):
    stems = synth_stems(44100, 4.0, seed=1)
    arr = np.stack([stereo(a) for a in stems.values()])
    mix = plain_mix(stems)
    assert explained_fraction(arr, mix, 44100) > 0.999
    assert explained_fraction(arr, PRODUCER(mix, 44100), 44100) > 0.5
    eq = Pedalboard([HighpassFilter(120), LowShelfFilter(300, -9.0)])(mix, 44100)
    assert explained_fraction(arr, eq, 44100) > 0.95
    other = plain_mix(synth_stems(44100, 4.0, seed=2))
    assert explained_fraction(arr, other, 44100) < 0.05


def test_mixed_sample_rates_are_resampled_with_a_warning(tmp_path):
    folder, stems, _ = make_song(tmp_path, "ballad", seconds=2.0, seed=6)
    t = np.arange(96000) / 48000
    tone = (0.5 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32)[None]
    write(folder / "stems" / "synth.wav", tone, 48000)
    song = load_song(folder)
    assert "mixed_rates" in codes(song) and "resampled" in codes(song)
    msg = str(song.warnings[codes(song).index("resampled")])
    assert "synth.wav resampled from 48000 Hz to 44100 Hz" in msg and "song 'ballad'" in msg
    synth = next(s for s in song.stems if s.name == "synth").audio
    assert synth.shape == (2, 88200)
    mid = synth[0, 4410:-4410]  # away from the resampler's edges
    rms_db = 10 * np.log10(np.mean(mid.astype(np.float64) ** 2))
    assert rms_db == pytest.approx(20 * np.log10(0.5 / np.sqrt(2)), abs=0.05)
    spectrum = np.abs(np.fft.rfft(mid * np.hanning(mid.size)))
    assert np.argmax(spectrum) * 44100 / mid.size == pytest.approx(1000, abs=1.0)


def test_whole_song_at_48k_resampled_to_44k(tmp_path):
    folder, _, _ = make_song(tmp_path, "ballad", 48000, seconds=2.0, offset=1776, seed=7)
    song = load_song(folder, sample_rate=44100)
    assert codes(song).count("resampled") == 1 and "mixed_rates" not in codes(song)
    assert song.mix.shape == (2, 88200)
    assert abs(song.offset_samples - round(1776 * 44100 / 48000)) <= 1
    kept = load_song(folder, sample_rate=None)
    assert kept.sample_rate == 48000 and "resampled" not in codes(kept)


def test_short_stems_are_padded_with_zeros_and_reported(tmp_path):
    folder, stems, _ = make_song(tmp_path, "ballad", seconds=2.0, seed=8)
    write(folder / "stems" / "vox.wav", stems["vox"][:, :44100], 44100)  # 1 s shorter
    song = load_song(folder)
    msg = str(song.warnings[codes(song).index("padded")])
    assert msg.startswith("stem 'vox.wav' of song 'ballad' is 1000.0 ms shorter")
    vox = next(s for s in song.stems if s.name == "vox").audio
    assert vox.shape == (2, 88200) and not vox[:, 44100:].any()
    np.testing.assert_array_equal(vox[0, :44100], stems["vox"][0, :44100])


def test_silent_stem_skipped_quiet_stem_kept(tmp_path):
    folder, _, _ = make_song(tmp_path, "ballad", seconds=2.0, seed=9)
    t = np.arange(88200) / 44100
    sine = np.sin(2 * np.pi * 440 * t)[None]
    write(folder / "stems" / "pad.wav", (10 ** (-100 / 20) * sine).astype(np.float32), 44100)
    write(folder / "stems" / "room.wav", (10 ** (-80 / 20) * sine).astype(np.float32), 44100)
    song = load_song(folder)
    names = [s.name for s in song.stems]
    assert "pad" not in names and "room" in names
    msg = str(song.warnings[codes(song).index("silent_stem")])
    assert "stem 'pad.wav' of song 'ballad' is silent (peak -100.0 dBFS" in msg


def test_clipping_runs_are_reported_single_full_scale_samples_are_not(tmp_path):
    folder, stems, _ = make_song(tmp_path, "ballad", seconds=2.0, seed=10)
    bass = stems["bass"].copy()
    bass[0, 22050:22060] = 1.0      # one run of 10 samples at 0.5 s
    bass[0, 30000] = -1.0           # isolated full-scale samples do not count
    bass[0, 30002:30004] = 1.0      # a run of 2 does not either
    write(folder / "stems" / "bass.wav", bass, 44100)
    song = load_song(folder)
    assert codes(song) == ["clipping"]
    assert str(song.warnings[0]) == ("stem 'bass.wav' of song 'ballad' clips: 1 runs of >= 3 "
                                     "samples at |x| >= 0.999 (first at 0.500 s)")


@pytest.mark.parametrize("ext", ["flac", "aiff", "ogg"])
def test_other_formats_load(tmp_path, ext):
    folder, stems, _ = make_song(tmp_path, "ballad", seconds=2.0, seed=11, ext=ext)
    song = load_song(folder)
    assert song.offset_samples == 0 and not {"offset", "padded"} & set(codes(song))
    vox = next(s for s in song.stems if s.name == "vox").audio[0]
    err = vox - stems["vox"][0]
    assert 10 * np.log10(np.mean(err ** 2) / np.mean(stems["vox"][0] ** 2)) < -20


def test_excerpt_is_the_loudest_region_or_starts_at_offset_seconds(tmp_path):
    folder, stems, mix = make_song(tmp_path, "ballad", seconds=6.0, offset=441, seed=12)
    loud = stems["keys"].copy()
    loud[:, 3 * 44100:4 * 44100] *= 8.0  # the loudest second: 3..4 s
    write(folder / "stems" / "keys.wav", loud, 44100)
    mix = mix + GAINS["keys"] * (loud - stems["keys"])
    write(folder / "mix.wav", shift(mix, 441), 44100)
    song = load_song(folder, max_seconds=1.0)
    assert song.start_seconds == pytest.approx(3.0, abs=0.05)
    assert song.mix.shape == (2, 44100) and abs(song.offset_samples - 441) <= 1
    start = int(round(song.start_seconds * 44100))
    np.testing.assert_allclose(song.mix, mix[:, start:start + 44100], atol=1e-6)
    fixed = load_song(folder, max_seconds=1.5, offset_seconds=1.0)
    assert fixed.start_seconds == 1.0 and fixed.mix.shape == (2, 66150)
    np.testing.assert_allclose(fixed.mix, mix[:, 44100:44100 + 66150], atol=1e-6)
    keys = next(s for s in fixed.stems if s.name == "keys").audio
    np.testing.assert_array_equal(keys, loud[:, 44100:44100 + 66150])


def test_master_is_aligned_to_the_mix_or_dropped_if_unrelated(tmp_path):
    folder, _, mix = make_song(tmp_path, "ballad", seconds=3.0, offset=500, seed=13)
    master = Pedalboard([LowShelfFilter(100, 4.0), Compressor(-12, 3)])(mix, 44100) * 1.5
    write(folder / "master.wav", shift(master, 500 + 300), 44100)  # 300 samples later again
    song = load_song(folder)
    assert song.master is not None and abs(song.offset_samples - 500) <= 1
    np.testing.assert_allclose(song.master, master, atol=1e-5)
    assert "master 'master.wav' of song 'ballad' is offset by +6.8 ms" in " ".join(
        map(str, song.warnings))
    write(folder / "master.wav", plain_mix(synth_stems(44100, 3.0, seed=99)), 44100)
    song = load_song(folder)
    assert song.master is None and "master_unrelated" in codes(song)


def test_one_bad_song_does_not_stop_the_others(tmp_path):
    make_song(tmp_path, "c_song", seconds=1.0, seed=14)
    make_song(tmp_path, "a_song", seconds=1.0, seed=15)
    bad, _, _ = make_song(tmp_path, "b_song", seconds=1.0, seed=16)
    (bad / "mix.wav").unlink()
    (tmp_path / ".hidden").mkdir()
    report = load_sessions(tmp_path)
    assert isinstance(report, LoadReport)
    assert [s.name for s in report.songs] == ["a_song", "c_song"]
    assert len(report.errors) == 1 and report.errors[0][0] == "b_song"
    assert "song 'b_song' has no mix" in report.errors[0][1]


def test_load_stems_for_mixing_with_roles_override_and_warnings(tmp_path):
    stems = synth_stems(44100, 1.0, seed=17)
    d = tmp_path / "new"
    d.mkdir()
    for k, a in stems.items():
        write(d / f"{k}.flac", a, 44100)
    write(d / "Track 7.wav", stems["keys"][:, :22050], 44100)
    (d / "roles.toml").write_text('"Track 7" = "synth"\nkick = "drums"\n')
    (d / "notes.txt").write_text("hello")
    seen = []
    out = load_stems(d, on_warning=seen.append)
    roles = {s.name: s.role for s in out}
    assert roles["Track 7"] == "synth" and roles["kick"] == "drums" and roles["vox"] == "vocals"
    assert all(s.audio.shape == (2, 44100) for s in out)
    assert sorted(w.code for w in seen) == ["ignored_file", "padded"]
    assert "stem 'Track 7.wav' in stems folder" in str(next(w for w in seen
                                                            if w.code == "padded"))
    with pytest.warns(SessionWarning) as record:
        load_stems(d)
    ignored, padded = (str(r.message) for r in record)
    assert ignored.endswith(": 'notes.txt' is not an audio file (.wav, .flac, .aiff, .aif, .mp3, "
                            ".ogg); ignored")
    assert padded.endswith("is 500.0 ms shorter than the longest stem 'bass.flac'; padded with "
                           "zeros")


def test_resampled_excerpt_equals_the_same_part_of_the_whole_song(tmp_path):
    """Region reads resample with guard frames: no edge transient at the excerpt start."""
    folder, _, _ = make_song(tmp_path, "ballad", 48000, seconds=3.0, seed=18)
    whole = load_song(folder, sample_rate=44100)
    part = load_song(folder, sample_rate=44100, max_seconds=1.0, offset_seconds=1.0)
    assert part.start_seconds == 1.0 and part.num_samples == 44100
    for a, b in zip(whole.stems, part.stems):
        np.testing.assert_allclose(b.audio, a.audio[:, 44100:88200], atol=1e-5)
    np.testing.assert_allclose(part.mix, whole.mix[:, 44100:88200], atol=1e-5)


def test_a_song_folder_mixes_its_stems_not_its_mix_and_master(tmp_path):
    """`mix`, `export` and `host` take a song folder as `learn` reads it (stems/, mix.wav,
    master.wav): its stems, as if its stems folder had been given; the mix and the master were
    loaded as two more stems and summed into the new mix."""
    from host.tui import load_stems_dir
    from mixstyle.cli import main
    from mixstyle.io.audio import read_audio
    from mixstyle.sessions.load import load_stem_set
    folder, stems, mix = make_song(tmp_path, "song", seconds=2.0, seed=5)
    write(folder / "master.wav", mix, 44100)
    whole, only = load_stem_set(folder), load_stem_set(folder / "stems")
    assert [s.name for s in whole.stems] == [s.name for s in only.stems] == sorted(stems)
    assert [s.name for s in load_stems_dir(str(folder))] == sorted(stems)
    preset = str(Path(__file__).resolve().parents[3] / "presets" / "default")
    outs = [tmp_path / "a.wav", tmp_path / "b.wav"]
    for src, out in zip((folder, folder / "stems"), outs):
        assert main(["mix", str(src), "--profile", preset, "--out", str(out)]) == 0
    a, b = (read_audio(p)[0] for p in outs)
    assert a.shape == b.shape and np.array_equal(a, b)


def _stem_offsets(song) -> dict[str, int]:
    """The stems the loader moved onto their part of the mix, and by how many samples."""
    out = {}
    for w in song.warnings:
        text = str(w)
        if w.code == "offset" and "its part of the mix" in text:
            name = text.split("'")[1].rsplit(".", 1)[0]
            out[name] = int(text.split("(")[1].split(" samples")[0])
    return out


def _turned(song) -> list[str]:
    return [str(w).split("'")[1].rsplit(".", 1)[0] for w in song.warnings
            if w.code == "polarity"]


@pytest.mark.parametrize("stem,latency,turned", [
    ("vox", 64, False), ("keys", -300, False), ("hats", 5, False),
    ("kick", 0, True), ("bass", 0, True), ("vox", 0, True), ("hats", 64, True)])
def test_a_stem_off_or_turned_over_against_its_part_of_the_mix_is_put_back(
        tmp_path, stem, latency, turned):
    """A plugin's latency the DAW did not compensate (one stem file ``latency`` samples late,
    early if negative, against its part of the mix) and a stem whose polarity the producer
    turned over. The loader says so and loads the stem as it sounds in the mix, to the
    sample; the other stems stay as they are. (The synthetic vox carries the hats' noise: turned
    over, it pulled the stem sum's correlation with the mix 2 samples off until the mix was
    aligned again with the vox turned back.)"""
    folder, stems, mix = make_song(tmp_path, "ballad", seconds=4.0, seed=6)
    n = mix.shape[1]
    audio = shift(stems[stem], latency)[:, :n] if latency >= 0 else np.concatenate(
        [shift(stems[stem], latency), np.zeros((stems[stem].shape[0], -latency), np.float32)],
        axis=1)
    write(folder / "stems" / f"{stem}.wav", -audio if turned else audio, 44100)
    song = load_song(folder)
    assert _stem_offsets(song) == ({stem: latency} if latency else {})
    assert _turned(song) == ([stem] if turned else [])
    expected = []
    if latency:
        expected.append(f"stem '{stem}.wav' of song 'ballad' is offset by "
                        f"{1000 * latency / 44100:+.1f} ms ({latency:+d} samples at 44100 Hz) "
                        f"from its part of the mix; aligned by shifting it")
    if turned:
        expected.append(f"stem '{stem}.wav' of song 'ballad' is polarity-inverted in the mix (its "
                        f"part of the mix is the stem turned over); learned turned over. "
                        f"mixstyle's console has no polarity switch: a new mix plays such a stem "
                        f"as it was recorded")
    assert [str(w) for w in song.warnings] == expected
    kept = slice(0, n - latency) if latency >= 0 else slice(-latency, n)  # the file's own audio
    for s in song.stems:
        np.testing.assert_array_equal(s.audio[:, kept], stereo(stems[s.name])[:, kept])
    np.testing.assert_array_equal(song.mix, mix)


def test_stems_the_producer_filtered_hard_stay_where_they_are(tmp_path):
    """Filters delay a stem's low end by several samples and turn its phase; that is the
    producer's EQ, which the fit models, not latency: nothing moves. The high-passes on the
    bass and on the whole mix turn the low end's phase so far that, measured over every
    frequency, the mix itself came out 16 samples early (and the stems that agreed with it
    followed); offsets are measured above the low end (``align.ALIGN_LOW_HZ``)."""
    folder, stems, _ = make_song(tmp_path, "ballad", seconds=4.0, seed=7)
    chains = {"kick": Pedalboard([LowShelfFilter(80, 9.0), HighpassFilter(40)]),
              "bass": Pedalboard([HighpassFilter(60)]),
              "hats": Pedalboard([HighpassFilter(6000), HighpassFilter(6000)]),
              "keys": Pedalboard([LowShelfFilter(300, -12.0)]),
              "vox": Pedalboard([HighpassFilter(150), Compressor(-25, 6)])}
    mix = np.sum([GAINS[k] * stereo(chains[k](a, 44100)) for k, a in stems.items()], axis=0)
    write(folder / "mix.wav", PRODUCER(mix.astype(np.float32), 44100), 44100)
    song = load_song(folder)
    assert _stem_offsets(song) == {} and song.offset_samples == 0


def test_the_model_card_says_what_the_loader_fixed(tmp_path):
    """learn's record of a song keeps the loader's warnings, and the model card lists them:
    the producer sees which stem was turned over or moved before it was learned."""
    from mixstyle.fit.song import FitConfig
    from mixstyle.profile.card import card_markdown, model_card
    from mixstyle.train.config import LearnConfig
    from mixstyle.train.songs import fit_song

    folder, stems, _ = make_song(tmp_path, "ballad", seconds=3.0, seed=6)
    write(folder / "stems" / "kick.wav", -stems["kick"], 44100)
    song = load_song(folder)
    record = fit_song(song, FitConfig(seconds=1.0, rounds=1, eq_iters=2, comp_evals=20,
                                      steps=0))
    sentence = ("stem 'kick.wav' of song 'ballad' is polarity-inverted in the mix (its part of "
                "the mix is the stem turned over); learned turned over. mixstyle's console has "
                "no polarity switch: a new mix plays such a stem as it was recorded")
    assert record.load_warnings == [sentence]
    card = model_card({"ballad": record}, ["ballad"], [], None, LearnConfig(), 1)
    assert card["trained_on"][0]["load_warnings"] == [sentence]
    md = card_markdown(card)
    assert "## How the files were read" in md and f"- {sentence}" in md
