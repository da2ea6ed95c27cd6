"""End to end: learn a profile from a tiny SESSIONS folder, mix new stems with it, evaluate.

The "producer" here mixes with pedalboard's effects (not our console), with content-dependent
decisions: each stem is brought to a role loudness, high-passed by role, and panned by name.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pedalboard
import pytest

from dsp.loudness import integrated_loudness
from dsp.params import loads
from mixstyle.audio_io import write_audio_atomic
from mixstyle.cli import main

SR = 44100.0
ROLES = ("kick", "bass", "keys", "vocals")
TASTE = {"kick": (-20.0, 30.0, 0.0), "bass": (-21.0, 40.0, 0.0), "keys": (-26.0, 200.0, -0.5),
         "vocals": (-18.0, 120.0, 0.1)}  # loudness LUFS, HPF Hz, pan


def _producer_mix(stems: np.ndarray) -> np.ndarray:
    out = np.zeros(stems.shape[1:], dtype=np.float32)
    for role, audio in zip(ROLES, stems):
        lufs, hpf, pan = TASTE[role]
        gain = lufs - integrated_loudness(audio, SR)
        board = pedalboard.Pedalboard([pedalboard.HighpassFilter(hpf),
                                       pedalboard.Gain(gain)])
        y = board(audio, SR)
        ang = math.pi * (pan + 1) / 4
        out += y * np.array([[math.sqrt(2) * math.cos(ang)], [math.sqrt(2) * math.sin(ang)]],
                            dtype=np.float32)
    return out


def _write_song(root: Path, name: str, stems: np.ndarray, with_mix: bool = True) -> Path:
    folder = root / name
    (folder / "stems").mkdir(parents=True)
    for role, audio in zip(ROLES, stems):
        write_audio_atomic(folder / "stems" / f"{role}.wav", audio, SR)
    if with_mix:
        write_audio_atomic(folder / "mix.wav", _producer_mix(stems), SR)
    return folder


def _make_sessions(root: Path, make_stems, n: int, seed0: int) -> Path:
    for k in range(n):
        stems = make_stems(seed=seed0 + k, seconds=2.0, n_stems=4)
        _write_song(root, f"song{k:02d}", stems)
    return root


def test_learn_mix_evaluate(tmp_path, make_stems, capsys):
    sessions = _make_sessions(tmp_path / "sessions", make_stems, 4, 10)
    before = {p: p.read_bytes() for p in sessions.rglob("*.wav")}
    profile = tmp_path / "profile"
    assert main(["learn", str(sessions), "--out", str(profile), "--epochs", "60",
                 "--fit-steps", "12", "--quiet"]) == 0
    # the profile folder
    for name in ("profile.json", "weights.npz", "model_card.json", "model_card.md"):
        assert (profile / name).is_file(), name
    card = json.loads((profile / "model_card.json").read_text())
    files = [f for s in card["trained_on"] for f in s["files"]]
    assert len(files) == 4 * 5  # 4 stems + mix per song
    assert all(len(f["sha256"]) == 64 and f["seconds"] == pytest.approx(2.0, abs=0.01)
               for f in files)
    assert card["held_out_songs"] and card["held_out_score"]["learned"]["band_error_db"] > 0
    with np.load(profile / "weights.npz", allow_pickle=False) as w:
        assert len(w.files) > 4
    # inputs untouched
    assert all(p.read_bytes() == b for p, b in before.items())

    # mix new stems
    # quiet enough that the plain sum never reaches 0 dBFS (where the neutral limiter acts)
    new = _write_song(tmp_path / "new", "x", 0.25 * make_stems(seed=99, seconds=2.0, n_stems=4),
                      with_mix=False)
    out, params = tmp_path / "mix.wav", tmp_path / "params.json"
    assert main(["mix", str(new / "stems"), "--profile", str(profile), "--out", str(out),
                 "--params", str(params)]) == 0
    setting = loads(params.read_text())
    assert [t.name for t in setting.tracks] == sorted(ROLES)
    from mixstyle.audio_io import read_audio
    audio, sr = read_audio(out)
    assert audio.shape == (2, int(2.0 * SR)) and sr == SR
    target = setting.master["target_lufs"]
    assert abs(integrated_loudness(audio, sr) - target) < 0.5

    # strength 0 is the neutral console: the plain sum of the stems
    assert main(["mix", str(new / "stems"), "--profile", str(profile), "--out",
                 str(tmp_path / "neutral.wav"), "--strength", "0"]) == 0
    neutral, _ = read_audio(tmp_path / "neutral.wav")
    plain = sum(read_audio(p)[0] for p in sorted((new / "stems").glob("*.wav")))
    assert np.max(np.abs(neutral - plain)) < 1e-4

    # evaluate with the profile prints the table with both baselines
    assert main(["evaluate", str(sessions), "--profile", str(profile), "--quiet"]) == 0
    text = capsys.readouterr().out
    assert "plain sum" in text and "automix" in text and "band_error_db" in text


def test_learn_is_deterministic(tmp_path, make_stems):
    sessions = _make_sessions(tmp_path / "s", make_stems, 2, 40)
    for out in ("a", "b"):
        assert main(["learn", str(sessions), "--out", str(tmp_path / out), "--epochs", "20",
                     "--fit-steps", "4", "--seed", "7", "--quiet"]) == 0
    with np.load(tmp_path / "a" / "weights.npz") as a, np.load(tmp_path / "b" / "weights.npz") as b:
        for k in a.files:
            assert np.array_equal(a[k], b[k]), k


def test_bad_inputs_are_named(tmp_path, capsys):
    assert main(["mix", str(tmp_path), "--profile", str(tmp_path / "nope"), "--out",
                 str(tmp_path / "o.wav")]) == 2
    assert "not a mixstyle profile" in capsys.readouterr().err
    assert main(["learn", str(tmp_path / "empty"), "--out", str(tmp_path / "p"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "sessions folder" in err and "does not exist" in err
