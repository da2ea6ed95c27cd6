"""Every fatal problem of the session loader: a clear error naming the song and the file."""

from __future__ import annotations

import importlib.util
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from dsp.errors import AudioInputError, ParameterError, SessionError
from mixstyle.sessions.check import PROBLEMS, fail, issue
from mixstyle.sessions.load import load_sessions, load_song, load_stems

# The song builders live in test_load.py; tests run in importlib mode (no sys.path entry),
# so load that file by path.
_spec = importlib.util.spec_from_file_location("_sessions_kit",
                                               Path(__file__).with_name("test_load.py"))
_kit = importlib.util.module_from_spec(_spec)  # type: ignore[arg-type]
_spec.loader.exec_module(_kit)  # type: ignore[union-attr]
make_song, plain_mix, synth_stems, write = _kit.make_song, _kit.plain_mix, _kit.synth_stems, \
    _kit.write


@pytest.fixture
def song(tmp_path):
    folder, _, _ = make_song(tmp_path, "ballad", seconds=1.0, seed=21)
    return folder


def test_corrupt_file(song):
    (song / "stems" / "vox.wav").write_bytes(b"RIFF....this is not audio at all" * 10)
    with pytest.raises(AudioInputError,
                       match=r"^stem 'vox\.wav' of song 'ballad' cannot be read as audio: "):
        load_song(song)


def test_text_file_with_audio_extension(song):
    (song / "mix.flac").unlink(missing_ok=True)
    (song / "mix.wav").write_text("final mix, really")
    with pytest.raises(AudioInputError, match=r"^mix 'mix\.wav' of song 'ballad' cannot be read"):
        load_song(song)


def test_empty_file(song):
    (song / "stems" / "kick.wav").write_bytes(b"")
    with pytest.raises(AudioInputError, match=r"^stem 'kick\.wav' of song 'ballad' contains no "
                                              r"samples$"):
        load_song(song)


def test_header_only_file(song):
    write(song / "stems" / "kick.wav", np.zeros((2, 0), np.float32), 44100)
    with pytest.raises(AudioInputError, match=r"stem 'kick\.wav' of song 'ballad' contains no "):
        load_song(song)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_or_inf(song, bad):
    audio = synth_stems(44100, 1.0, seed=21)["bass"].copy()
    audio[0, [10, 500, 900]] = bad
    write(song / "stems" / "bass.wav", audio, 44100)
    with pytest.raises(AudioInputError, match=r"^stem 'bass\.wav' of song 'ballad' contains 3 "
                                              r"non-finite samples \(NaN or inf\)"):
        load_song(song)


def test_more_than_two_channels(song):
    write(song / "stems" / "surround.wav", np.zeros((6, 4410), np.float32) + 0.1, 44100)
    with pytest.raises(AudioInputError, match=r"^stem 'surround\.wav' of song 'ballad' has 6 "
                                              r"channels; allowed: 1 \(mono\) or 2 \(stereo\)$"):
        load_song(song)


def test_no_stems(song):
    shutil.rmtree(song / "stems")
    with pytest.raises(SessionError, match=r"^song 'ballad' has no stems: expected audio files "
                                           r"\(\.wav, .*\) in '.*ballad/stems'"):
        load_song(song)
    (song / "stems").mkdir()
    (song / "stems" / "readme.txt").write_text("stems come later")
    with pytest.raises(SessionError, match=r"^song 'ballad' has no stems"):
        load_song(song)


def test_missing_mix(song):
    (song / "mix.wav").rename(song / "final.wav")
    with pytest.raises(SessionError, match=r"^song 'ballad' has no mix: expected 'mix' with an "
                                           r"audio extension"):
        load_song(song)


def test_two_mix_files(song):
    shutil.copy(song / "mix.wav", song / "Mix.flac")
    with pytest.raises(SessionError, match=r"^song 'ballad' has more than one mix file "
                                           r"\(Mix\.flac, mix\.wav\); keep one$"):
        load_song(song)


def test_two_stems_with_one_name(song):
    shutil.copy(song / "stems" / "vox.wav", song / "stems" / "vox.flac")
    with pytest.raises(SessionError, match=r"^song 'ballad' has two stems named 'vox' "
                                           r"\(vox\.flac, vox\.wav\)"):
        load_song(song)


def test_silent_mix(song):
    write(song / "mix.wav", np.zeros((2, 44100), np.float32), 44100)
    with pytest.raises(SessionError, match=r"^mix 'mix\.wav' of song 'ballad' is silent \(peak "
                                           r"-inf dBFS, needs > -90 dBFS\)$"):
        load_song(song)


def test_all_stems_silent(song):
    for p in (song / "stems").iterdir():
        write(p, np.zeros((1, 44100), np.float32), 44100)
    with pytest.raises(SessionError, match=r"^song 'ballad' has no usable stems: all 5 stems "
                                           r"are silent"):
        load_song(song)


def test_mix_of_another_song(song):
    write(song / "mix.wav", plain_mix(synth_stems(44100, 1.0, seed=22)), 44100)
    with pytest.raises(SessionError, match=r"^mix 'mix\.wav' of song 'ballad' does not contain "
                                           r"its stems: the stems explain \d\.\d% of the mix "
                                           r"energy .*needs >= 10%"):
        load_song(song)


def test_missing_folder_and_empty_root(tmp_path):
    with pytest.raises(SessionError, match=r"^song 'nope': folder '.*nope' does not exist$"):
        load_song(tmp_path / "nope")
    with pytest.raises(SessionError, match=r"sessions folder '.*nothing' does not exist"):
        load_sessions(tmp_path / "nothing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(SessionError, match=r"sessions folder '.*empty' has no song folders"):
        load_sessions(tmp_path / "empty")
    with pytest.raises(SessionError, match=r"^stems folder '.*gone': folder"):
        load_stems(tmp_path / "gone")


@pytest.mark.parametrize("kwargs, error, pattern", [
    ({"sample_rate": 1000}, AudioInputError, r"sample_rate = 1000 Hz is out of range: allowed "
                                             r"8000 \.\. 384000 Hz"),
    ({"max_seconds": 0}, ParameterError, r"max_seconds = 0 is out of range: allowed 0\.1"),
    ({"offset_seconds": -1}, ParameterError, r"offset_seconds = -1 is out of range"),
    ({"offset_seconds": 5.0}, ParameterError, r"offset_seconds = 5 is out of range for song "
                                              r"'ballad': allowed 0 \.\. 1\.00 s"),
])
def test_bad_options(song, kwargs, error, pattern):
    with pytest.raises(error, match=pattern):
        load_song(song, **kwargs)


def test_bad_roles_file_names_file_key_and_roles(song):
    (song / "roles.toml").write_text('vox = "vocal"\n')
    with pytest.raises(SessionError, match=r"roles file '.*roles\.toml', track 'vox': unknown "
                                           r"role 'vocal' \(did you mean 'vocals'\?\); allowed "
                                           r"roles: drums, kick, "):
        load_song(song)


def test_bad_songs_are_reported_by_load_sessions(tmp_path):
    make_song(tmp_path, "good", seconds=1.0, seed=23)
    for name in ("corrupt", "unrelated"):
        make_song(tmp_path, name, seconds=2.0, seed=24)
    (tmp_path / "corrupt" / "stems" / "keys.wav").write_bytes(b"\x00" * 1000)
    write(tmp_path / "unrelated" / "mix.wav", plain_mix(synth_stems(44100, 2.0, 25)), 44100)
    report = load_sessions(tmp_path)
    assert [s.name for s in report.songs] == ["good"]
    errors = dict(report.errors)
    assert list(errors) == ["corrupt", "unrelated"]
    assert errors["corrupt"].startswith("stem 'keys.wav' of song 'corrupt' cannot be read")
    assert errors["unrelated"].startswith("mix 'mix.wav' of song 'unrelated' does not contain")


def test_problem_table_is_consistent():
    for code, problem in PROBLEMS.items():
        assert problem.code == code and problem.sentence[0] == "{"
        fields = set(re.findall(r"{(\w+)", problem.sentence))
        assert "where" in fields, code
        values = {f: 1 for f in fields}
        if problem.fatal:
            err = fail(code, **values)
            assert isinstance(err, problem.error) and getattr(err, "code") == code
            with pytest.raises(ValueError, match="fatal"):
                issue(code, **values)
        else:
            assert issue(code, **values).code == code
