"""Mastering: fit_master round trip, the chain's loudness/true-peak targets, the master profile,
and the resumable batch (broken files, untouched inputs, local processes and a Dask cluster of
real worker processes, a killed worker, a killed command)."""

from __future__ import annotations

import hashlib
import json
import math
import multiprocessing
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from dsp.eq import eq_curve_db
from dsp.errors import AudioInputError, MixstyleError, ParameterError, ProfileError
from dsp.loudness import integrated_loudness, true_peak_dbtp
from dsp.params import MASTER, TRACK, ConsoleSetting, TrackSetting, validate
from dsp.render import render
from mixstyle.io.audio import read_audio, write_audio_atomic
from mixstyle.mastering.batch import (WORKER_DIED, _output_names, master_command, read_report,
                                      run_batch)
from mixstyle.mastering.fit import EQ_NAMES, fit_master
from mixstyle.mastering.chain import master_audio
from mixstyle.mastering.learn import learn_master, learn_master_from_sessions
from mixstyle.mastering.profile import MasterProfile, load_master_profile, save_master_profile

pytestmark = pytest.mark.long(50)   # seconds on 2 cores: scheduled first (tests/conftest.py)

SR = 44100.0
KNOWN = {"low_shelf_freq_hz": 100.0, "low_shelf_gain_db": 3.0, "peak2_freq_hz": 800.0,
         "peak2_gain_db": -2.5, "peak2_q": 1.0, "high_shelf_freq_hz": 8000.0,
         "high_shelf_gain_db": 2.5, "comp_threshold_db": -24.0, "comp_ratio": 4.0,
         "limiter_ceiling_db": -1.0, "target_lufs": -16.0}
FREQS = np.geomspace(30.0, 16000.0, 120)


def _mix(make_stems, seed: int, seconds: float = 8.0, sr: float = SR) -> np.ndarray:
    mix = make_stems(seed, seconds=seconds, n_stems=4, sample_rate=sr).sum(axis=0)
    return (mix * (0.5 / np.abs(mix).max())).astype(np.float32)


def _our_master(mix: np.ndarray, values: dict, sr: float = SR) -> np.ndarray:
    setting = ConsoleSetting((TrackSetting("mix", validate(TRACK, {})),),
                             validate(MASTER, values))
    return render(mix[None], sr, setting).audio


def _eq_error_db(fitted: dict, known: dict) -> float:
    """RMS difference of the two EQ curves (30 Hz-16 kHz), overall level removed."""
    d = eq_curve_db(MASTER, {k: fitted[k] for k in EQ_NAMES}, FREQS, SR) - \
        eq_curve_db(MASTER, {k: known[k] for k in KNOWN if k in EQ_NAMES}, FREQS, SR)
    return float(np.sqrt(np.mean((d - d.mean()) ** 2)))


def _short_term_db(a: np.ndarray, sr: float = SR) -> np.ndarray:
    f = int(0.4 * sr)
    k = a.shape[1] // f
    return 10 * np.log10((a[:, :k * f].reshape(2, k, f).astype(np.float64) ** 2).mean((0, 2)))


def test_fit_master_round_trip_recovers_eq_loudness_and_glue(make_stems):
    mix = _mix(make_stems, 11)
    master = _our_master(mix, KNOWN)
    fit = fit_master(mix, master, SR)
    assert _eq_error_db(fit, KNOWN) < 1.0
    assert abs(fit["target_lufs"] - KNOWN["target_lufs"]) < 0.2
    assert fit["limiter_ceiling_db"] == pytest.approx(true_peak_dbtp(master, SR), abs=1e-6)
    # the recovered glue compressor holds the loud parts down about as much as the known one
    ours = master_audio(mix, SR, fit, ceiling_dbtp=fit["limiter_ceiling_db"])
    known = master_audio(mix, SR, KNOWN, ceiling_dbtp=fit["limiter_ceiling_db"])
    assert known.glue_gain_reduction_db > 4.0
    assert abs(ours.glue_gain_reduction_db - known.glue_gain_reduction_db) < 1.5
    # and re-mastering the mix with the fit reproduces the master's level over time (0.4 s)
    d = _short_term_db(ours.audio) - _short_term_db(master)
    assert np.sqrt(np.mean(d ** 2)) < 0.5
    assert abs(np.std(_short_term_db(ours.audio)) - np.std(_short_term_db(master))) < 0.3


def test_fit_master_finds_no_glue_when_there_was_none(make_stems):
    mix = _mix(make_stems, 12, seconds=6.0)
    plain = {k: v for k, v in KNOWN.items() if not k.startswith("comp_")}
    fit = fit_master(mix, _our_master(mix, plain), SR)
    assert master_audio(mix, SR, fit).glue_gain_reduction_db < 1.0
    assert _eq_error_db(fit, plain) < 1.0


@pytest.mark.parametrize("sr", [44100.0, 48000.0])
@pytest.mark.parametrize("channels", [1, 2])
def test_master_audio_meets_loudness_and_true_peak(make_stems, sr, channels):
    mix = _mix(make_stems, 3, seconds=4.0, sr=sr)[:channels]
    res = master_audio(mix, sr, KNOWN, target_lufs=-10.0, ceiling_dbtp=-1.0)
    assert res.audio.shape == (2, mix.shape[1])
    assert abs(integrated_loudness(res.audio, sr) + 10.0) < 0.5
    assert true_peak_dbtp(res.audio, sr) <= -1.0
    # the limiter holds sample peaks only: its output overshoots in true peak (measured), so
    # the sample-peak ceiling it needed sits under the true-peak ceiling by that much
    assert res.limiter_passes >= 1 and res.tp_overshoot_db > 0.1
    assert res.limiter_ceiling_db <= -1.0 - res.tp_overshoot_db + 1e-6
    assert res.loudness_lufs == pytest.approx(integrated_loudness(res.audio, sr), abs=1e-3)
    assert res.true_peak_dbtp == pytest.approx(true_peak_dbtp(res.audio, sr), abs=1e-3)


def test_learn_master_median_profile_and_json_round_trip(make_stems, tmp_path):
    pairs = [(m, _our_master(m, KNOWN), SR) for m in (_mix(make_stems, s, 4.0) for s in (1, 2))]
    short = pairs[0][0][:, :44100]
    doc = learn_master(pairs + [(short, short, SR)])  # an unusable song is skipped and named
    assert len(doc["notes"]["skipped"]) == 1 and "at least 3 s" in doc["notes"]["skipped"][0]
    prof = MasterProfile.from_dict(doc)
    assert prof.songs == 2 and prof.source == "masters"
    assert _eq_error_db(prof.params, KNOWN) < 1.0
    assert abs(prof.params["target_lufs"] - KNOWN["target_lufs"]) < 0.2
    mixes = [integrated_loudness(m, SR) for m, _, _ in pairs]  # the songs that were used
    assert prof.input_lufs == pytest.approx(float(np.median(mixes)), abs=1e-6)
    save_master_profile(tmp_path, doc)
    text = json.loads((tmp_path / "master.json").read_text())
    assert text["format"] == "mixstyle.console" and text["tracks"] == []
    back = load_master_profile(tmp_path)
    assert back.skipped == prof.skipped and len(back.skipped) == 1
    assert back.params == pytest.approx(prof.params, rel=1e-8)
    assert back.input_lufs == pytest.approx(prof.input_lufs)


def test_learn_without_masters_uses_the_mixes_loudness(make_stems):
    songs = [SimpleNamespace(name=f"s{i}", mix=_mix(make_stems, i, 4.0) * g, master=None,
                             sample_rate=SR) for i, g in ((1, 1.0), (2, 0.5), (3, 0.25))]
    doc = learn_master_from_sessions(songs)
    lufs = [integrated_loudness(s.mix, SR) for s in songs]
    assert doc["notes"]["source"] == "mixes"
    assert doc["master"]["target_lufs"] == pytest.approx(float(np.median(lufs)), abs=1e-6)
    assert all(doc["master"][k] == 0.0 for k in EQ_NAMES if k.endswith("gain_db"))
    assert learn_master_from_sessions([]) is None


def test_learn_keeps_each_songs_master_fit_and_does_not_fit_it_again(make_stems, tmp_path,
                                                                      monkeypatch):
    """learn fits a song's master with the song (in the pool) and keeps it in the song's record:
    the profile's master.json is the one learn_master makes from the songs alone, and learning
    again (nothing new) fits no master again and writes the same master.json."""
    import mixstyle.mastering.learn as master_learn
    from mixstyle.fit.song import FitConfig
    from mixstyle.learn import learn
    from mixstyle.sessions.load import load_song
    from mixstyle.train.config import LearnConfig
    from mixstyle.train.loop import TrainConfig
    from mixstyle.train.records import load_records
    sessions, out = tmp_path / "sessions", tmp_path / "profile"
    for k in range(3):
        stems = make_stems(60 + k, seconds=3.5, n_stems=2)
        summed = stems.sum(axis=0)
        mix = summed * np.float32(0.5 / np.abs(summed).max())
        folder = sessions / f"song{k}"
        (folder / "stems").mkdir(parents=True)
        for i, audio in enumerate(stems):
            write_audio_atomic(folder / "stems" / f"track{i}.wav", audio, SR)
        write_audio_atomic(folder / "mix.wav", mix, SR)
        write_audio_atomic(folder / "master.wav", _our_master(mix, KNOWN), SR)
    config = LearnConfig(fit=FitConfig(seconds=1.0, rounds=1, eq_iters=5, comp_evals=20,
                                       steps=1),
                         train=TrainConfig(epochs=10, audio_epochs=0, average_passes=1),
                         max_seconds=3.5, jobs=1, holdout_fraction=0.0)
    learn(sessions, out, config, log=lambda m: None)
    songs = [load_song(sessions / f"song{k}", max_seconds=3.5) for k in range(3)]
    records = {r.song: r for r in load_records(out / "songs")}
    assert all(isinstance(records[s.name].master_fit, dict) for s in songs)
    first = (out / "master.json").read_text()
    assert json.loads(first) == json.loads(json.dumps(learn_master(songs)))

    def refit(*args):
        raise AssertionError("a kept master was fitted again")
    monkeypatch.setattr(master_learn, "fit_master", refit)
    learn(sessions, out, config, log=lambda m: None)
    assert (out / "master.json").read_text() == first


# ------------------------------------------------------------------------------------ batch

PROFILE = {**KNOWN, "target_lufs": -14.0}


@pytest.fixture
def batch(tmp_path, make_stems):
    """Inputs in a tree (one mono, one at 48 kHz, one nested) + a saved profile."""
    src = tmp_path / "mixes"
    (src / "album").mkdir(parents=True)
    write_audio_atomic(src / "a.wav", _mix(make_stems, 1, 3.0), SR)
    write_audio_atomic(src / "b.flac", _mix(make_stems, 2, 3.0)[:1] * 0.3, SR, bit_depth=24)
    write_audio_atomic(src / "album" / "c.wav", _mix(make_stems, 3, 3.0, 48000.0), 48000.0)
    (src / "notes.txt").write_text("not audio")
    prof = tmp_path / "profile"
    save_master_profile(prof, MasterProfile(PROFILE, input_lufs=-20.0, songs=1))
    return SimpleNamespace(src=src, profile=prof, out=tmp_path / "out")


def _snapshot(folder: Path) -> dict[str, tuple[int, int, str]]:
    return {str(p.relative_to(folder)): (p.stat().st_mtime_ns, p.stat().st_size,
                                         hashlib.sha256(p.read_bytes()).hexdigest())
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_batch_meets_targets_and_resumes_without_touching_anything(batch):
    inputs_before = _snapshot(batch.src)
    s = run_batch([str(batch.src)], batch.profile, batch.out, workers=1)
    assert (s.total, s.mastered, s.skipped, s.failed) == (3, 3, 0, 0)
    rows = read_report(batch.out / "report.jsonl")
    assert [Path(r["input"]).name for r in rows] == ["a.wav", "b.flac", "c.wav"]
    for r in rows:
        audio, sr = read_audio(r["output"])
        assert sr == (48000.0 if r["input"].endswith("c.wav") else SR)
        assert abs(integrated_loudness(audio, sr) + 14.0) < 0.5
        assert true_peak_dbtp(audio, sr) <= KNOWN["limiter_ceiling_db"] + 1e-3
        assert r["status"] == "ok" and r["target_met"] and r["settings"]["target_lufs"] == -14.0
    assert sorted(p.name for p in batch.out.iterdir()) == ["a.wav", "b.wav", "c.wav",
                                                         "report.csv", "report.jsonl"]
    assert len((batch.out / "report.csv").read_text().splitlines()) == 4
    after = _snapshot(batch.out)
    s2 = run_batch([str(batch.src)], batch.profile, batch.out, workers=1)
    assert (s2.mastered, s2.skipped) == (0, 3)
    assert _snapshot(batch.out) == after                      # nothing rewritten
    assert _snapshot(batch.src) == inputs_before              # inputs never touched
    # other settings are a different key: everything is mastered again
    s3 = run_batch([str(batch.src)], batch.profile, batch.out, target_lufs=-12.0, workers=1)
    assert (s3.mastered, s3.skipped) == (3, 0)
    assert abs(integrated_loudness(*read_audio(batch.out / "a.wav")) + 12.0) < 0.5


def test_broken_file_is_reported_and_the_batch_goes_on(batch, capsys):
    (batch.src / "broken.wav").write_bytes(b"RIFF\x10\x00\x00\x00WAVEjunkjunkjunk")
    code = master_command([str(batch.src)], batch.profile, batch.out, workers=1)
    assert code == 1
    assert "failed 1 of 4" in capsys.readouterr().err
    rows = read_report(batch.out / "report.jsonl")
    bad = [r for r in rows if r["status"] == "error"]
    assert len(bad) == 1 and "broken.wav" in bad[0]["error"]
    assert sum(r["status"] == "ok" for r in rows) == 3
    assert not (batch.out / "broken.wav").exists()
    assert "error" in (batch.out / "report.csv").read_text()
    # a re-run skips the finished files and tries the broken one again
    before = {p: p.stat().st_mtime_ns for p in batch.out.glob("*.wav")}
    s = run_batch([str(batch.src)], batch.profile, batch.out, workers=1)
    assert (s.skipped, s.failed) == (3, 1)
    assert {p: p.stat().st_mtime_ns for p in batch.out.glob("*.wav")} == before


@pytest.fixture
def long_batch(tmp_path, make_stems):
    """Twelve 20 s mixes (long enough that a worker is busy when it is killed) + a profile."""
    src = tmp_path / "long"
    src.mkdir()
    base = [_mix(make_stems, seed, 20.0) for seed in (21, 22, 23)]
    for k in range(12):
        write_audio_atomic(src / f"song{k:02d}.wav", base[k % 3] * (0.4 + 0.05 * k), SR)
    prof = tmp_path / "profile"
    save_master_profile(prof, MasterProfile(PROFILE, input_lufs=-20.0, songs=1))
    return SimpleNamespace(src=src, profile=prof, names=[f"song{k:02d}.wav" for k in range(12)])


def _one_ok_row_each(out: Path, names: list[str]) -> list[dict]:
    """The report has exactly one row per input, all ok, and each output is there whole: the
    size its row recorded, readable to the last sample."""
    rows = read_report(out / "report.jsonl")
    assert sorted(Path(r["input"]).name for r in rows) == sorted(names)
    for r in rows:
        assert r["status"] == "ok", r.get("error")
        assert Path(r["output"]).stat().st_size == r["output_size"]
        audio, sr = read_audio(r["output"])
        assert audio.shape[1] == round(r["duration_s"] * sr)
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporary files left
    return rows


def _same_audio(a: Path, b: Path, names: list[str]) -> None:
    for name in names:
        assert np.array_equal(read_audio(a / name)[0], read_audio(b / name)[0]), name


def test_local_processes_give_the_masters_of_one_process(batch, tmp_path):
    files = [str(batch.src / "a.wav"), str(batch.src / "album")]
    s = run_batch(files, batch.profile, tmp_path / "one", workers=1)
    assert (s.mastered, s.failed) == (2, 0)
    seen = []
    s = run_batch(files, batch.profile, tmp_path / "three", workers=3,
                  progress=lambda stage, done, total: seen.append((stage, done, total)))
    assert (s.mastered, s.failed) == (2, 0) and seen[-1] == ("master", 2, 2)
    assert not multiprocessing.active_children()  # the workers are gone
    _same_audio(tmp_path / "one", tmp_path / "three", ["a.wav", "c.wav"])


def _bytes_read(pid: int) -> int:
    """What a process has read so far (all read calls, page cache included)."""
    text = Path(f"/proc/{pid}/io").read_text()
    return int(next(line.split()[1] for line in text.splitlines() if line.startswith("rchar")))


def _wait_for(condition, what: str, timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(0.002)


def test_a_killed_local_worker_costs_only_its_file(long_batch, tmp_path):
    """SIGKILL the worker process while it masters a file after its first: the files it had
    not reported get an error row, every other file is mastered by this process, and the next
    run masters exactly those.
    (While this process waits in the progress callback after the batch's first row, another
    output of the worker appears; once it has read a whole input more, it is mastering the
    next.)"""
    out = tmp_path / "out"
    size = min(p.stat().st_size for p in long_batch.src.iterdir())
    killed: list[int] = []

    def kill_the_worker(stage, done, total):
        if killed or not done:
            return
        ours = {p.name for p in out.glob("*.wav")}
        (worker,) = multiprocessing.active_children()
        _wait_for(lambda: len({p.name for p in out.glob("*.wav")} - ours) == 1,
                  "the worker wrote its first output")
        start = _bytes_read(worker.pid)
        _wait_for(lambda: _bytes_read(worker.pid) >= start + size,
                  "the worker read its second input")
        os.kill(worker.pid, signal.SIGKILL)
        killed.append(worker.pid)

    s = run_batch([str(long_batch.src)], long_batch.profile, out, workers=2,
                  progress=kill_the_worker)
    assert killed
    rows = read_report(out / "report.jsonl")
    assert sorted(Path(r["input"]).name for r in rows) == long_batch.names
    died = [r["error"] for r in rows if r["status"] != "ok"]
    assert died and set(died) == {WORKER_DIED}
    # it took two files or more; each is reported either ok (its output was on the disk before
    # the kill) or died -- the one it was mastering, and the one before if that was still
    # being synced: none is lost, none is double
    by_it = sum(r.get("worker") == f"{os.uname().nodename}:{killed[0]}" for r in rows)
    assert by_it + len(died) >= 2 and 1 <= len(died) <= 2
    assert (s.mastered, s.failed) == (12 - len(died), len(died))
    s = run_batch([str(long_batch.src)], long_batch.profile, out, workers=2)
    assert (s.mastered, s.skipped, s.failed) == (len(died), 12 - len(died), 0)


def test_dask_cluster_masters_like_local_and_retries_a_killed_worker(long_batch, dask_cluster,
                                                                     tmp_path):
    """A real cluster (scheduler + two worker processes): one worker is SIGKILLed while it has
    songs; they run again on the other worker (its nanny restarts the killed one), nothing is
    lost, no file gets two rows, and the masters equal those of one local process."""
    names = long_batch.names[:8]
    files = [str(long_batch.src / n) for n in names]
    run_batch(files, long_batch.profile, tmp_path / "local", workers=1)
    pids = dask_cluster.worker_pids()
    killed: list[int] = []

    def kill_a_busy_worker(stage, done, total):
        if done >= 1 and not killed:
            busy = [w for w, keys in dask_cluster.client.processing().items() if keys]
            assert busy, "no worker had a song when one was to be killed"
            os.kill(pids[busy[0]], signal.SIGKILL)
            killed.append(pids[busy[0]])

    s = run_batch(files, long_batch.profile, tmp_path / "dask", scheduler=dask_cluster.address,
                  progress=kill_a_busy_worker)
    assert killed and (s.mastered, s.failed) == (8, 0)
    _one_ok_row_each(tmp_path / "dask", names)
    _same_audio(tmp_path / "local", tmp_path / "dask", names)
    dask_cluster.wait_for_workers()
    assert killed[0] not in dask_cluster.worker_pids().values()


def test_dask_worker_masters_its_next_file_while_the_disk_takes_the_last(long_batch,
                                                                          dask_cluster, tmp_path):
    """On a real cluster each task leaves its worker's thread pool for its fsyncs, so the worker
    masters its next file meanwhile (as a local worker's Durable thread lets it), and a row
    still comes back only once its output is on the disk. The workers' disk step is made 1 s
    slower for this test and every step is logged with its time, in the worker processes."""
    def slow_disk(dask_worker):
        import time as t

        import mixstyle.mastering.worker as w
        w._log, w._real = [], (w.make_durable, w.master_file)

        def durable(row):
            start = t.monotonic()
            t.sleep(1.0)
            row = w._real[0](row)
            w._log.append(("disk", start, t.monotonic(), row["output"]))
            return row

        def master(job, durable=True):
            w._log.append(("master", t.monotonic(), None, job.output))
            return w._real[1](job, durable)
        w.make_durable, w.master_file = durable, master

    def restore(dask_worker):
        import mixstyle.mastering.worker as w
        w.make_durable, w.master_file = w._real
        return w._log

    names = long_batch.names[:6]
    dask_cluster.client.run(slow_disk)
    try:
        s = run_batch([str(long_batch.src / n) for n in names], long_batch.profile,
                      tmp_path / "dask", scheduler=dask_cluster.address)
    finally:
        logs = dask_cluster.client.run(restore)
    assert (s.mastered, s.failed) == (6, 0)
    _one_ok_row_each(tmp_path / "dask", names)
    overlapped = 0
    for log in logs.values():
        disks = [(a, b) for kind, a, b, _ in log if kind == "disk"]
        starts = [a for kind, a, _, _ in log if kind == "master"]
        assert len(disks) == len(starts)  # every output mastered here went through the disk step
        overlapped += sum(any(a < m < b for a, b in disks) for m in starts)
    # each worker's files after its first start while an earlier output is still being synced
    assert overlapped >= 6 - 2 * len(logs), logs


def test_sigkilled_command_resumes_without_loss_or_repeats(long_batch, tmp_path):
    """`mixstyle master --workers 2` is killed with SIGKILL mid-batch (its workers die with it)
    and started again: every output is complete, the files reported before the kill are not
    mastered again, and the report has one row per input."""
    out = tmp_path / "out"
    tag = uuid.uuid4().hex
    env = dict(os.environ, MIXSTYLE_TEST_TAG=tag)
    cmd = [sys.executable, "-m", "mixstyle.cli", "master", str(long_batch.src), "--profile",
           str(long_batch.profile), "--out", str(out), "--workers", "2", "--quiet"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 300
    while len(read_report(out / "report.jsonl")) < 3:
        assert proc.poll() is None, proc.stderr.read().decode()  # type: ignore[union-attr]
        assert time.monotonic() < deadline, "no progress"
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    proc.stderr.close()  # type: ignore[union-attr]
    _wait_gone(tag)  # no worker of the killed command goes on writing
    before = read_report(out / "report.jsonl")
    assert 3 <= len(before) < 12, "the batch was not killed midway"
    kept = {r["output"]: _stat(r["output"]) for r in before}
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert f"mastered {12 - len(before)}," in done.stderr
    rows = _one_ok_row_each(out, long_batch.names)
    assert rows[:len(before)] == before
    assert {o: _stat(o) for o in kept} == kept  # reported before the kill: not written again
    run_batch([str(long_batch.src)], long_batch.profile, tmp_path / "ref", workers=1)
    _same_audio(tmp_path / "ref", out, long_batch.names)


def _stat(path: str) -> tuple[int, int, int]:
    st = os.stat(path)
    return st.st_ino, st.st_size, st.st_mtime_ns


def _wait_gone(tag: str, timeout_s: float = 10.0) -> None:
    """Wait until no process of ours carries ``MIXSTYLE_TEST_TAG=tag`` in its environment."""
    needle = f"MIXSTYLE_TEST_TAG={tag}".encode()
    deadline = time.monotonic() + timeout_s
    while True:
        alive = []
        for d in Path("/proc").iterdir():
            try:
                if d.name.isdigit() and needle in (d / "environ").read_bytes().split(b"\0"):
                    alive.append(d.name)
            except OSError:
                continue
        if not alive:
            return
        assert time.monotonic() < deadline, f"processes of the killed command remain: {alive}"
        time.sleep(0.1)


def test_resume_redoes_missing_and_truncated_outputs(batch):
    run_batch([str(batch.src)], batch.profile, batch.out, workers=1)
    (batch.out / "a.wav").unlink()
    whole = (batch.out / "b.wav").read_bytes()
    (batch.out / "b.wav").write_bytes(whole[:len(whole) // 2])
    untouched = _stat(str(batch.out / "c.wav"))
    s = run_batch([str(batch.src)], batch.profile, batch.out, workers=1)
    assert (s.mastered, s.skipped) == (2, 1)
    assert (batch.out / "b.wav").read_bytes() == whole
    assert _stat(str(batch.out / "c.wav")) == untouched


def test_output_names_are_assigned_in_linear_time(tmp_path):
    files = [Path(f"/music/a/take{k}.wav") for k in range(50_000)] + \
        [Path(f"/music/b/take{k}.wav") for k in range(25_000)] + \
        [Path(f"/music/c/solo{k}.wav") for k in range(25_000)]
    t0 = time.perf_counter()
    names = _output_names(files, tmp_path)
    assert time.perf_counter() - t0 < 5.0  # list.count took about 90 s for 100,000 inputs
    assert len(set(names)) == len(files)
    assert names[0].name.startswith("take0-") and names[50_000].name.startswith("take0-")
    assert names[30_000] == tmp_path / "take30000.wav"


def test_same_names_from_two_folders_get_distinct_outputs(batch):
    write_audio_atomic(batch.src / "album" / "a.wav", read_audio(batch.src / "a.wav")[0], SR)
    run_batch([str(batch.src)], batch.profile, batch.out, workers=1)
    outs = sorted(p.name for p in batch.out.glob("a*.wav"))
    assert len(outs) == 2 and all(n.startswith("a-") for n in outs)


# ------------------------------------------------------------------------------- failures

@pytest.mark.parametrize("kwargs, error, match", [
    ({"target_lufs": -40.0}, ParameterError, r"target_lufs.*-30 \.\. -5 LUFS"),
    ({"ceiling_dbtp": 1.0}, ParameterError, r"limiter_ceiling_db.*-12 \.\. 0 dBFS"),
    ({"workers": 0}, ParameterError, r"workers = 0 is out of range: allowed 1 \.\. 1024"),
    ({"workers": 2.5}, ParameterError, r"workers must be an integer"),
    ({"workers": 2, "scheduler": "tcp://x:1"}, ParameterError, r"one or the other"),
    ({"scheduler": ""}, ParameterError, r"Dask scheduler address"),
    ({"scheduler": "no-port-here"}, MixstyleError, r"cannot connect to the Dask scheduler"),
])
def test_bad_batch_arguments(batch, kwargs, error, match):
    with pytest.raises(error, match=match):
        run_batch([str(batch.src)], batch.profile, batch.out, **kwargs)


def test_bad_batch_paths(batch, tmp_path):
    with pytest.raises(AudioInputError, match=r"input '.*nope.wav' does not exist"):
        run_batch([str(tmp_path / "nope.wav")], batch.profile, batch.out)
    with pytest.raises(ParameterError, match="non-empty list"):
        run_batch([], batch.profile, batch.out)
    with pytest.raises(ParameterError, match="inside the output folder"):
        run_batch([str(batch.src)], batch.profile, tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(AudioInputError, match="no audio files"):
        run_batch([str(tmp_path / "empty")], batch.profile, batch.out)
    with pytest.raises(ProfileError, match="has no master.json"):
        run_batch([str(batch.src)], batch.src, batch.out)
    (batch.profile / "master.json").write_text('{"format": "mixstyle.console", "version": 1, '
                                               '"master": {"comp_ratio": 50}}')
    with pytest.raises(ProfileError, match=r"master.json.*comp_ratio.*1 \.\. 10"):
        run_batch([str(batch.src)], batch.profile, batch.out)
    assert not batch.out.exists()


def test_bad_fit_and_chain_input(make_stems):
    mix = _mix(make_stems, 1, 4.0)
    with pytest.raises(AudioInputError, match="same shape"):
        fit_master(mix, mix[:, :-10], SR)
    with pytest.raises(AudioInputError, match="at least 3 s"):
        fit_master(mix[:, :44100], mix[:, :44100], SR)
    with pytest.raises(AudioInputError, match="master is silent"):
        fit_master(mix, np.zeros_like(mix), SR)
    with pytest.raises(AudioInputError, match="3 channels"):
        master_audio(np.zeros((3, 1000), np.float32) + 0.1, SR, KNOWN)
    with pytest.raises(AudioInputError, match="silent"):
        master_audio(np.zeros((2, 44100), np.float32), SR, KNOWN)
    with pytest.raises(ParameterError, match=r"target_lufs.*-30 \.\. -5"):
        master_audio(mix, SR, KNOWN, target_lufs=0.0)
    with pytest.raises(ProfileError, match="no songs"):
        learn_master([])
    assert math.isfinite(master_audio(mix, SR, KNOWN).loudness_lufs)
