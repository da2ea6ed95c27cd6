"""``learn`` on sessions with corrected songs (``setting.json``): the setting is the target as it
is (no fit), the card lists corrected songs as their own kind of training data and says where a
setting overrode a mix, a bad setting skips its song with the reason, the level habit is read off
the songs with a mix only, and the records keep (or refit) across versions and edits."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from dsp.params import TRACK, ConsoleSetting, TrackSetting, dumps, loads, validate
from dsp.render import render
from mixstyle.fit.song import FitConfig
from mixstyle.io.audio import write_audio_atomic
from mixstyle.learn import LearnConfig, learn
from mixstyle.train.loop import TrainConfig
from mixstyle.profile.store import load_profile
from mixstyle.train.records import RECORD_VERSION, SongRecord, load_records, song_weights

SR = 44100.0
NAMES = ("bass", "keys", "kick", "vocals")
FAST = LearnConfig(fit=FitConfig(seconds=1.0, rounds=1, eq_iters=5, comp_evals=20, steps=1),
                   train=TrainConfig(epochs=20, audio_epochs=0, average_passes=1),
                   max_seconds=2.0, jobs=1)


def _producer_setting(gains_db) -> ConsoleSetting:
    return ConsoleSetting(tuple(
        TrackSetting(n, validate(TRACK, {"output_gain_db": g, "hpf_freq_hz": 40.0 + 20 * i}),
                     "other") for i, (n, g) in enumerate(zip(NAMES, gains_db))),
        validate("master", {"target_lufs": -16.0}))


def _song(root: Path, name: str, stems: np.ndarray, mix: bool, setting: ConsoleSetting | None):
    folder = root / name
    (folder / "stems").mkdir(parents=True)
    for n, audio in zip(NAMES, stems):
        write_audio_atomic(folder / "stems" / f"{n}.wav", audio, SR)
    if mix:
        write_audio_atomic(folder / "mix.wav",
                           render(stems, SR, _producer_setting([0, -3, -1, 2])).audio, SR)
    if setting is not None:
        (folder / "setting.json").write_text(dumps(setting))
    return folder


@pytest.fixture(scope="module")
def learned(tmp_path_factory):
    import sys
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from conftest import synthetic_stems
    root = tmp_path_factory.mktemp("corrections")
    sessions = root / "sessions"
    for k in range(5):
        _song(sessions, f"song{k}", synthetic_stems(seed=40 + k, seconds=2.0, n_stems=4), True,
              None)
    fix = _producer_setting([0, -3, -1, 6])
    _song(sessions, "fixed", synthetic_stems(seed=50, seconds=2.0, n_stems=4), False, fix)
    _song(sessions, "kept", synthetic_stems(seed=51, seconds=2.0, n_stems=4), True, fix)
    bad = ConsoleSetting(fix.tracks + (TrackSetting("ghost", validate(TRACK, {})),), fix.master)
    _song(sessions, "stray", synthetic_stems(seed=52, seconds=2.0, n_stems=4), False, bad)
    logs: list[str] = []
    card = learn(sessions, root / "profile", FAST, log=logs.append)
    return {"root": root, "sessions": sessions, "card": card, "logs": logs, "fix": fix,
            "synthetic": synthetic_stems}


def test_corrected_songs_are_their_own_kind_of_training_data(learned):
    card, profile = learned["card"], learned["root"] / "profile"
    data = card["training_data"]
    assert data["fitted_songs"] == 5 and data["corrected_songs"] == 2
    assert data["corrected"] == ["fixed", "kept"]
    assert data["setting_overrode_mix"] == {"kept": "mix.wav"}
    kinds = {s["song"]: s["source"] for s in card["trained_on"]}
    assert kinds == {**{f"song{k}": "fit" for k in range(5)}, "fixed": "correction",
                     "kept": "correction"}
    # the files of a correction: its stems and the setting, not the mix it overrode
    kept = next(s for s in card["trained_on"] if s["song"] == "kept")
    assert sorted(Path(f["path"]).name for f in kept["files"]) == \
        sorted([f"{n}.wav" for n in NAMES] + ["setting.json"])
    assert not set(card["held_out_songs"]) & {"fixed", "kept"}   # held out: real mixes only
    md = (profile / "model_card.md").read_text()
    assert "## Corrected songs" in md and "fixed, kept" in md
    assert "kept: the setting overrode the mix 'mix.wav'" in md
    assert "| fixed | 4 | correction: no fit | - |" in md
    assert json.loads((profile / "model_card.json").read_text())["training_data"] == data


def test_a_bad_setting_skips_its_song_with_the_reason(learned):
    assert "stray" not in {s["song"] for s in learned["card"]["trained_on"]}
    assert any(m.startswith("skipped song 'stray': setting 'setting.json' of song 'stray' has a "
                            "track 'ghost'") for m in learned["logs"])
    assert any("'setting.json' is learned, not the mix 'mix.wav'" in m for m in learned["logs"])


def test_the_correction_is_the_target_as_it_is(learned):
    records = {r.song: r for r in load_records(learned["root"] / "profile" / "songs")}
    rec = records["fixed"]
    assert rec.source == "correction" and rec.quality == {} and rec.bus_print is None
    want = learned["fix"]
    got = loads(json.dumps(rec.setting))
    assert [t.params for t in got.tracks] == [t.params for t in want.tracks]
    assert got.master["target_lufs"] == -16.0      # the master level is the setting's own
    # the levels are measured through the setting: the vocal's fader 6 dB over the fitted
    # songs' +2 shows in its loudness against the bass (a 0 dB fader in both)
    fitted = records["song0"]
    assert rec.levels_lu[3] - rec.levels_lu[0] > fitted.levels_lu[3] - fitted.levels_lu[0]
    # the level habit comes from the 5 songs with a mix (corrections have no bus print)
    assert learned["card"]["loudness_habit"]["songs"] == 5
    assert sum(r.bus_print is not None for r in records.values()) == 5


def test_corrections_teach_offsets_on_the_style_of_the_mixes(learned):
    """The network trains on the fitted songs; the corrections' consistent difference from its
    predictions (here: the vocal's fader 4 dB over the producer's mixes) is what they teach."""
    profile = load_profile(learned["root"] / "profile")
    offsets = profile.meta["corrections"]
    assert offsets["songs"] == ["fixed", "kept"]
    level = offsets["track_targets"].index("level_lu")
    assert offsets["track"]["vocals"][level] > 0 > offsets["track"]["bass"][level]
    assert any(line.startswith("vocals (2 songs): ") and "level_lu +" in line
               for line in learned["card"]["training_data"]["corrections_teach"])
    # with the offsets the profile puts the vocal louder against the bass than without
    stems = [(n, r, a) for n, r, a in zip(NAMES, NAMES, learned["synthetic"](seed=60, seconds=2.0,
                                                                              n_stems=4))]
    with_c = profile.predict(stems, SR)
    without = type(profile)(profile.model, dict(profile.meta, corrections=None)).predict(stems, SR)
    gain = {s: {t.name: t.params["output_gain_db"] for t in p.tracks}
            for s, p in (("with", with_c), ("without", without))}
    assert (gain["with"]["vocals"] - gain["with"]["bass"]) - \
        (gain["without"]["vocals"] - gain["without"]["bass"]) > 1.0
    records = sorted(load_records(learned["root"] / "profile" / "songs"), key=lambda r: r.song)
    assert all(w == 1.0 for r, w in zip(records, song_weights(records)) if r.source == "correction")


def test_old_records_stay_valid_and_a_changed_setting_is_taken_again(learned, tmp_path):
    import shutil
    sessions, profile = tmp_path / "sessions", tmp_path / "profile"
    shutil.copytree(learned["sessions"], sessions)
    shutil.rmtree(sessions / "stray")
    shutil.copytree(learned["root"] / "profile", profile)
    # a version-3 record (before corrections existed) is a fit record: kept, not refitted
    path = profile / "songs" / "song0.json"
    data = json.loads(path.read_text())
    assert data["version"] == RECORD_VERSION == 5
    del data["source"], data["mix_overridden"], data["master_fit"]
    data["version"] = 3
    path.write_text(json.dumps(data))
    old = SongRecord.from_json(path.read_text(), str(path))
    assert old.source == "fit"
    # the producer changes their setting: that song's record is made again, the others kept
    changed = replace(learned["fix"], tracks=tuple(
        TrackSetting(t.name, dict(t.params, output_gain_db=-6.0), t.role)
        for t in learned["fix"].tracks))
    (sessions / "fixed" / "setting.json").write_text(dumps(changed))
    before = {p.name: p.stat().st_mtime_ns for p in (profile / "songs").glob("*.json")}
    learn(sessions, profile, replace(FAST, holdout_fraction=0.0), log=lambda m: None)
    after = {p.name: p.stat().st_mtime_ns for p in (profile / "songs").glob("*.json")}
    assert [n for n in sorted(after) if after[n] != before[n]] == ["fixed.json"]
    rec = {r.song: r for r in load_records(profile / "songs")}["fixed"]
    assert [t["params"]["output_gain_db"] for t in rec.setting["tracks"]] == [-6.0] * 4
