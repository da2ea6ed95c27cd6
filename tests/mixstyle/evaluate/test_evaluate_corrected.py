"""``mixstyle evaluate --profile`` on corrected songs: a song folder with ``setting.json`` is
scored against that setting rendered (the target ``learn`` learns), a folder that cannot be
loaded is named with why, and the table says both."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from dsp.params import ConsoleSetting, TrackSetting, dumps, validate
from mixstyle.evaluate.score import evaluate_profile, format_table
from mixstyle.io.audio import write_audio_atomic
from mixstyle.profile.mixdown import predict_stems
from mixstyle.profile.store import load_profile

ROOT = Path(__file__).resolve().parents[3]
PRESET = ROOT / "presets" / "default"
SR = 44100.0
NAMES = ("bass", "drums", "keys", "vocals")


def _stems(folder: Path, seed: int) -> None:
    sys.path.insert(0, str(ROOT / "tests"))
    from conftest import synthetic_stems
    (folder / "stems").mkdir(parents=True)
    for name, audio in zip(NAMES, synthetic_stems(seed, seconds=3.0, n_stems=len(NAMES))):
        write_audio_atomic(folder / "stems" / f"{name}.wav", audio, SR)


def _vocal_up(setting: ConsoleSetting, db: float) -> ConsoleSetting:
    return ConsoleSetting(tuple(
        TrackSetting(t.name, validate("track", dict(t.params, output_gain_db=min(
            24.0, t.params["output_gain_db"] + db))) if t.name == "vocals" else t.params, t.role)
        for t in setting.tracks), setting.master)


def test_corrected_songs_are_scored_against_their_setting(tmp_path):
    profile = load_profile(PRESET)
    sessions = tmp_path / "sessions"
    for name, seed, db in (("as_predicted", 1, 0.0), ("vocal_up", 2, 8.0)):
        _stems(sessions / name, seed)
        pred = predict_stems(profile, sessions / name / "stems", on_warning=lambda issue: None)
        (sessions / name / "setting.json").write_text(dumps(_vocal_up(pred.setting, db)))
    _stems(sessions / "no_target", 3)   # neither a mix nor a setting

    out = evaluate_profile(sessions, PRESET)
    assert out["songs"] == 2 and out["target_is_setting"] == ["as_predicted", "vocal_up"]
    assert list(out["skipped"]) == ["no_target"] and "mix" in out["skipped"]["no_target"]
    same = out["per_song"]["as_predicted"]["learned"]
    assert same["band_error_db"] < 0.01 and same["mrstft"] < 0.01, same
    moved = out["per_song"]["vocal_up"]["learned"]
    assert moved["band_error_db"] > 1.0, moved
    text = format_table(out)
    assert "setting.json (corrected songs): as_predicted, vocal_up" in text
    assert "skipped no_target:" in text
    assert np.isfinite(out["learned"]["band_error_db"])
