"""End to end: learn a profile from a tiny SESSIONS folder, mix new stems with it, evaluate.

The "producer" here mixes with pedalboard's effects (not our console), with content-dependent
decisions: each stem is brought to a role loudness, high-passed by role, and panned by role.
One profile is learned per module (the expensive step); the tests then use it.
"""

from __future__ import annotations

import hashlib
import json
import math
import shutil
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pedalboard
import pytest

from dsp.loudness import integrated_loudness
from dsp.params import loads
from mixstyle.io.audio import read_audio, write_audio_atomic
from mixstyle.cli import main
from mixstyle.errors import ProfileError

pytestmark = pytest.mark.long(145)   # seconds on 2 cores: scheduled first (tests/conftest.py)

SR = 44100.0
ROLES = ("kick", "bass", "keys", "vocals")
TASTE = {"kick": (-20.0, 30.0, 0.0), "bass": (-21.0, 40.0, 0.0), "keys": (-26.0, 200.0, -0.5),
         "vocals": (-18.0, 120.0, 0.1)}  # loudness LUFS, HPF Hz, pan
FAST = ["--epochs", "40", "--audio-epochs", "1", "--fit-steps", "2", "--quiet"]


def _producer_mix(stems: np.ndarray) -> np.ndarray:
    out = np.zeros(stems.shape[1:], dtype=np.float32)
    for role, audio in zip(ROLES, stems):
        lufs, hpf, pan = TASTE[role]
        gain = lufs - integrated_loudness(audio, SR)
        y = pedalboard.Pedalboard([pedalboard.HighpassFilter(hpf), pedalboard.Gain(gain)])(
            audio, SR)
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


class _CountingPool(ProcessPoolExecutor):
    """A process pool that notes how many processes it was given and what it ran."""
    made: list["_CountingPool"] = []

    def __init__(self, max_workers=None, *args, **kwargs):
        super().__init__(max_workers, *args, **kwargs)
        self.processes, self.ran = max_workers, []
        _CountingPool.made.append(self)

    def submit(self, fn, /, *args, **kwargs):
        self.ran.append(getattr(fn, "func", fn).__name__)
        return super().submit(fn, *args, **kwargs)


@pytest.fixture(scope="module")
def learned(tmp_path_factory):
    import sys
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from conftest import synthetic_stems
    root = tmp_path_factory.mktemp("learn")
    sessions = root / "sessions"
    for k in range(4):
        _write_song(sessions, f"song{k:02d}", synthetic_stems(seed=10 + k, seconds=2.0,
                                                              n_stems=4))
    before = {p: p.read_bytes() for p in sessions.rglob("*.wav")}
    profile = root / "profile"
    # two processes even on one core: the records must come from a real pool
    _CountingPool.made.clear()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("mixstyle.fit.pool.ProcessPoolExecutor", _CountingPool)
        assert main(["learn", str(sessions), "--out", str(profile), "--jobs", "2", *FAST]) == 0
    return {"root": root, "sessions": sessions, "profile": profile, "before": before,
            "stems": synthetic_stems, "pools": list(_CountingPool.made)}


def test_profile_folder_and_model_card(learned):
    profile = learned["profile"]
    for name in ("profile.json", "weights.npz", "model_card.json", "model_card.md",
                 "master.json"):
        assert (profile / name).is_file(), name
    card = json.loads((profile / "model_card.json").read_text())
    files = [f for s in card["trained_on"] for f in s["files"]]
    assert len(files) == 4 * 5  # 4 stems + mix per song
    assert all(f["sha256"] == hashlib.sha256(Path(f["path"]).read_bytes()).hexdigest() and
               f["seconds"] == pytest.approx(2.0, abs=0.01) for f in files)
    assert {Path(f["path"]) for f in files} == set(learned["before"])
    assert all("error_db" in s["fit_quality"] for s in card["trained_on"])
    assert card["held_out_songs"] and card["held_out_score"]["learned"]["band_error_db"] > 0
    md = (profile / "model_card.md").read_text()
    assert all(f["sha256"][:16] in md for f in files)
    with np.load(profile / "weights.npz", allow_pickle=False) as w:
        assert len(w.files) > 4
    assert all(p.read_bytes() == b for p, b in learned["before"].items())  # inputs untouched


def test_mix_writes_audio_and_params(learned, tmp_path):
    new = _write_song(tmp_path, "x", 0.25 * learned["stems"](seed=99, seconds=2.0, n_stems=4),
                      with_mix=False)
    out, params = tmp_path / "mix.wav", tmp_path / "params.json"
    assert main(["mix", str(new / "stems"), "--profile", str(learned["profile"]), "--out",
                 str(out), "--params", str(params)]) == 0
    setting = loads(params.read_text())
    assert sorted(t.name for t in setting.tracks) == sorted(ROLES)
    audio, sr = read_audio(out)
    assert audio.shape == (2, int(2.0 * SR)) and sr == SR
    assert abs(integrated_loudness(audio, sr) - setting.master["target_lufs"]) < 0.5

    # strength 0 is the neutral console: the plain sum (quiet enough that no limiter acts)
    assert main(["mix", str(new / "stems"), "--profile", str(learned["profile"]), "--out",
                 str(tmp_path / "neutral.wav"), "--strength", "0"]) == 0
    neutral, _ = read_audio(tmp_path / "neutral.wav")
    plain = sum(read_audio(p)[0] for p in sorted((new / "stems").glob("*.wav")))
    assert np.max(np.abs(neutral - plain)) < 1e-4

    # an existing input is never overwritten
    victim = new / "stems" / "kick.wav"
    data = victim.read_bytes()
    assert main(["mix", str(new / "stems"), "--profile", str(learned["profile"]), "--out",
                 str(victim)]) == 2
    assert victim.read_bytes() == data


def test_evaluate_prints_both_baselines(learned, capsys):
    assert main(["evaluate", str(learned["sessions"]), "--profile", str(learned["profile"]),
                 "--quiet"]) == 0
    text = capsys.readouterr().out
    assert "plain sum" in text and "automix" in text and "band_error_db" in text


def test_learn_again_fits_only_new_songs(learned, tmp_path):
    profile = tmp_path / "profile"
    shutil.copytree(learned["profile"], profile)
    sessions = tmp_path / "sessions"
    shutil.copytree(learned["sessions"], sessions)
    _write_song(sessions, "song99", learned["stems"](seed=77, seconds=2.0, n_stems=4))
    # the fits run in worker processes: a song that was fitted again has its record rewritten
    before = {p.name: p.stat().st_mtime_ns for p in (profile / "songs").glob("*.json")}
    assert main(["learn", str(sessions), "--out", str(profile), *FAST]) == 0
    after = {p.name: p.stat().st_mtime_ns for p in (profile / "songs").glob("*.json")}
    assert sorted(after) == sorted([*before, "song99.json"])
    assert {name: after[name] for name in before} == before
    card = json.loads((profile / "model_card.json").read_text())
    assert len(card["trained_on"]) == 5


def test_training_is_deterministic(learned):
    from mixstyle.train.records import load_records
    from mixstyle.train.loop import TrainConfig, train
    records = load_records(learned["profile"] / "songs")
    cfg = TrainConfig(epochs=15, audio_epochs=0, seed=3)
    a, _ = train(records, cfg)
    b, _ = train(records, cfg)
    for (k, va), vb in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch_equal(va, vb), k


def torch_equal(a, b) -> bool:
    return bool((a == b).all())


def test_bad_inputs_are_named(tmp_path, capsys):
    assert main(["mix", str(tmp_path), "--profile", str(tmp_path / "nope"), "--out",
                 str(tmp_path / "o.wav")]) == 2
    assert "not a mixstyle profile" in capsys.readouterr().err
    assert main(["learn", str(tmp_path / "empty"), "--out", str(tmp_path / "p"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "sessions folder" in err and "does not exist" in err


def test_report_of_a_learned_profile(learned, tmp_path):
    out = tmp_path / "report"
    assert main(["report", str(learned["profile"]), "--out", str(out)]) == 0
    html = (out / "index.html").read_text()
    assert "eq_curves.png" in html and (out / "eq_curves.png").stat().st_size > 10_000


def test_parallel_fits_equal_one_process(learned):
    """The fixture's learn fitted its songs in a pool of two processes (forced: one core
    would otherwise fit them here); fitting them again one by one in this process gives
    exactly the same recorded settings."""
    from dataclasses import replace

    from mixstyle.learn import LearnConfig
    from mixstyle.sessions.load import load_sessions
    from mixstyle.train.records import load_records
    from mixstyle.train.songs import fit_songs
    fits = [pool for pool in learned["pools"] if "load_and_fit_folder" in pool.ran]
    assert len(fits) == 1 and fits[0].processes == 2 and len(fits[0].ran) == 4
    pooled = {r.song: r for r in load_records(learned["profile"] / "songs")}
    cfg = LearnConfig()
    report = load_sessions(learned["sessions"], max_seconds=cfg.max_seconds)
    assert len(report.songs) >= 3  # enough songs for the pool path
    again = fit_songs(list(report.songs), replace(cfg.fit, steps=2), jobs=1)
    assert sorted(again) == sorted(pooled)
    for name, rec in again.items():
        assert rec.setting == pooled[name].setting, name


def test_ceiling_calibration_moves_the_predicted_ceiling(learned):
    """A profile's ceiling offset (learn's calibration for peak-normalising producers) lowers
    the predicted limiter ceiling by exactly that much, scaled by the strength."""
    from mixstyle.profile.store import load_profile
    profile = load_profile(learned["profile"])
    assert isinstance(profile.meta.get("ceiling_offset_db"), float)
    stems = [(r, r, a) for r, a in zip(("kick", "bass", "keys", "vocals"),
                                       learned["stems"](seed=5, seconds=2.0, n_stems=4))]
    profile.meta["ceiling_offset_db"] = 0.0
    base = profile.predict(stems, SR).master["limiter_ceiling_db"]
    half = profile.predict(stems, SR, strength=0.5).master["limiter_ceiling_db"]
    profile.meta["ceiling_offset_db"] = -1.5
    assert profile.predict(stems, SR).master["limiter_ceiling_db"] == pytest.approx(base - 1.5)
    assert profile.predict(stems, SR, strength=0.5).master["limiter_ceiling_db"] == \
        pytest.approx(half - 0.75)


@pytest.mark.parametrize("value", ["-1", "two"])
def test_learn_jobs_bad_value_is_named(value, tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["learn", str(tmp_path), "--out", str(tmp_path / "p"), "--jobs", value])
    err = capsys.readouterr().err
    assert "--jobs" in err and value in err


def test_learn_config_jobs_must_be_a_count():
    from mixstyle.errors import ProfileError
    from mixstyle.learn import LearnConfig
    with pytest.raises(ProfileError, match="LearnConfig.jobs"):
        LearnConfig(jobs=-2)


def test_record_features_predict_the_same_setting(learned):
    """learn's calibration and held-out scoring reuse the features each song record measured;
    the setting predicted from them is the one predicted from the audio (to float32 rounding),
    and a feature list for another number of stems is refused."""
    from mixstyle.train.records import load_records, record_features
    from mixstyle.profile.store import load_profile
    from mixstyle.sessions.load import load_sessions
    profile = load_profile(learned["profile"])
    songs = {s.name: s for s in load_sessions(learned["sessions"]).songs}
    for record in load_records(learned["profile"] / "songs"):
        song = songs[record.song]
        stems = [(s.name, s.role, s.audio) for s in song.stems]
        direct = profile.predict(stems, song.sample_rate)
        cached = profile.predict(stems, song.sample_rate, features=record_features(record))
        for a, b in zip(direct.tracks, cached.tracks):
            for name, value in a.params.items():
                assert b.params[name] == pytest.approx(value, rel=1e-4, abs=1e-4), name
        for name, value in direct.master.items():
            assert cached.master[name] == pytest.approx(value, rel=1e-4, abs=1e-4), name
    per_stem, whole = record_features(record)
    with pytest.raises(ProfileError, match="stem feature vectors"):
        profile.predict(stems, song.sample_rate, features=(per_stem[:-1], whole))


def test_learn_on_a_dask_cluster_makes_the_local_records(learned, dask_cluster, tmp_path):
    """`learn --scheduler`: the fits run on the cluster's worker processes (one BLAS/torch
    thread each) and the song records are byte for byte those of the local pool; the model
    card says where the fits ran."""
    profile = tmp_path / "profile"
    ran = dask_cluster.executed()
    assert main(["learn", str(learned["sessions"]), "--out", str(profile), "--scheduler",
                 dask_cluster.address, *FAST]) == 0
    assert dask_cluster.executed() - ran == 4  # one task per song, all on the workers
    local = {p.name: p.read_text() for p in (learned["profile"] / "songs").glob("*.json")}
    remote = {p.name: p.read_text() for p in (profile / "songs").glob("*.json")}
    assert len(local) == 4 and remote == local
    card = json.loads((profile / "model_card.json").read_text())
    assert dask_cluster.address in card["privacy"]
    assert len(card["trained_on"]) == 4
    # each worker's numeric kernels, as they are here (dsp/kernels.py)
    workers = card["kernels"]["fit_workers"]
    assert len(workers) == len(dask_cluster.worker_pids()) >= 1
    assert all(w["level"] == card["kernels"]["learn"]["level"] for w in workers.values())


def test_learn_warns_when_the_cluster_workers_run_other_kernels(learned, dask_cluster,
                                                                tmp_path):
    """The test cluster's workers run the x86-64-v3 kernels (started from the tests' pinned
    process, as `eval $(python -m dsp.kernels)` starts them); a learn asked for x86-64-v2 finds
    them on other kernels than its own: it says so, by worker, and the card keeps it."""
    import os
    import subprocess
    import sys
    # the command's pin() sets every variable of the level over those this process inherited
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2]),
               MIXSTYLE_KERNELS="x86-64-v2")
    profile = tmp_path / "profile"
    shutil.copytree(learned["profile"] / "songs", profile / "songs")  # the fits are cached
    r = subprocess.run([sys.executable, "-m", "mixstyle.cli", "learn", str(learned["sessions"]),
                        "--out", str(profile), "--scheduler", dask_cluster.address, *FAST],
                       env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    card = json.loads((profile / "model_card.json").read_text())["kernels"]
    assert card["learn"]["level"] == "x86-64-v2" and card["learn"]["pinned"]
    assert {w["level"] for w in card["fit_workers"].values()} == {"x86-64-v3"}
    assert "of the cluster's workers run other numeric kernels than this learn (x86-64-v2)" \
        in r.stderr
    assert "eval $(python -m dsp.kernels)" in r.stderr


def test_learn_scheduler_and_jobs_conflict(tmp_path, capsys):
    assert main(["learn", str(tmp_path), "--out", str(tmp_path / "p"), "--jobs", "2",
                 "--scheduler", "tcp://127.0.0.1:1", "--quiet"]) == 2
    assert "one or the other" in capsys.readouterr().err


def test_held_out_score_is_the_same_through_the_second_process(learned, tmp_path):
    """The fixture's learn scored its held-out model in a second process, the songs handed over
    through mapped files (mixstyle.sessions.handoff); learn in one process (--jobs 1, the same
    fits, on one thread as the second process and the final training were) scores the same
    songs the same way and keeps the same network."""
    import torch
    from threadpoolctl import threadpool_limits
    profile = tmp_path / "profile"
    shutil.copytree(learned["profile"] / "songs", profile / "songs")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with threadpool_limits(1):
            assert main(["learn", str(learned["sessions"]), "--out", str(profile), "--jobs",
                         "1", *FAST]) == 0
    finally:
        torch.set_num_threads(threads)
    two, one = (json.loads((p / "model_card.json").read_text())["held_out_score"]
                for p in (learned["profile"], profile))
    assert one == two
    with np.load(learned["profile"] / "weights.npz") as a, np.load(profile / "weights.npz") as b:
        assert sorted(a.files) == sorted(b.files)
        for k in a.files:
            assert np.array_equal(a[k], b[k]), k
