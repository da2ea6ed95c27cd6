"""``mixstyle master``: a resumable batch of masters, on local processes or a Dask cluster.

Inputs are files or folders (searched recursively for audio; hidden files and anything inside
the output folder are skipped). Each input ``X.ext`` becomes ``OUT/X.wav`` (24-bit, written
atomically, never over an input) and one line in ``OUT/report.jsonl`` (also ``report.csv``):
loudness and true peak in and out, gain reductions, the settings used, or the error.

A file is *finished* when the report holds an ``ok`` line with the same key -- input path, size,
mtime and settings hash -- and its output exists with the size that line recorded (an output is
fsynced, file and folder, before its line is written); re-running skips finished files and
writes nothing if nothing is left. Files that failed are tried again. Only the coordinating
process writes the report (one writer); workers read an input, master it and write its output
(``mixstyle.mastering.worker``).

With N local workers this process is one of them: once it has listed the inputs and loaded the
chain, the other N - 1 are forked from it (``mixstyle.mastering.pool``), so none pays the
start-up again; every process takes the next file, longest first, from one queue when it is
free, so none waits with a file queued while another is idle. This module imports nothing heavy itself; for a
Dask batch a worker lists the inputs too, so the command only coordinates and never loads the
audio reader (its start-up is the whole command's start-up).
"""

from __future__ import annotations

import csv
import gc
import hashlib
import io
import json
import os
import queue
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import numpy as np

from dsp.errors import AudioInputError, ParameterError
from dsp.files import write_text_atomic
from dsp.params import MASTER, spec, validate
from mixstyle.mastering.profile import MasterProfile, load_master_profile

REPORT_JSONL = "report.jsonl"
REPORT_CSV = "report.csv"
PIPELINE_VERSION = 1          # bump when the chain changes what it outputs
OUTPUT_BIT_DEPTH = 24
MAX_WORKERS = 1024
REPORT_SYNC_S = 1.0          # the report is fsynced at most this often (and at the end)
CSV_COLUMNS = ("status", "input", "output", "input_lufs", "output_lufs", "input_true_peak_dbtp",
               "output_true_peak_dbtp", "glue_gain_reduction_db", "limiter_gain_reduction_db",
               "trim_db", "master_gain_db", "limiter_ceiling_db", "target_lufs", "ceiling_dbtp",
               "target_met", "limiter_passes", "tp_overshoot_db", "sample_rate_hz",
               "duration_s", "seconds", "settings_hash", "input_size", "input_mtime_ns",
               "output_size", "worker", "finished_at", "error")
WORKER_DIED = "worker process died while mastering it"
Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class Job:
    """One input to master: where from, where to, and the settings (all plain, picklable)."""

    input: str
    output: str
    size: int
    mtime_ns: int
    settings: dict[str, Any]
    settings_hash: str

    @property
    def key(self) -> tuple[str, int, int, str]:
        return (self.input, self.size, self.mtime_ns, self.settings_hash)


@dataclass(frozen=True)
class BatchSummary:
    total: int
    mastered: int
    skipped: int
    failed: int
    report_jsonl: Path
    report_csv: Path
    missed_target: int = 0     # mastered, but out of the loudness/true-peak targets


def batch_settings(profile: MasterProfile, target_lufs: float | None,
                   ceiling_dbtp: float | None) -> dict[str, Any]:
    """Everything that decides the output; its hash keys the finished files."""
    t_spec, c_spec = spec(MASTER, "target_lufs"), spec(MASTER, "limiter_ceiling_db")
    target = profile.params["target_lufs"] if target_lufs is None else \
        t_spec.check(target_lufs, "--target-lufs")
    target = t_spec.default if target is None else target
    ceiling = profile.params["limiter_ceiling_db"] if ceiling_dbtp is None else \
        c_spec.check(ceiling_dbtp, "--ceiling-dbtp")
    master = validate(MASTER, dict(profile.params, target_lufs=target), "master profile")
    return {"version": PIPELINE_VERSION, "master": master, "target_lufs": target,
            "ceiling_dbtp": ceiling, "trim_to_lufs": profile.input_lufs,
            "bit_depth": OUTPUT_BIT_DEPTH}


def settings_hash(settings: dict[str, Any]) -> str:
    text = json.dumps(settings, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def collect_inputs(inputs: Iterable[str | os.PathLike[str]], out_dir: Path) -> list[Path]:
    """Absolute, de-duplicated input files in order; folders are searched recursively."""
    from mixstyle.io.audio import is_audio_path
    out = out_dir.resolve()
    found: dict[Path, None] = {}
    for item in inputs:
        p = Path(item)
        if not p.exists():
            raise AudioInputError(f"input '{p}' does not exist")
        rp = p.resolve()
        if _inside(rp, out):
            raise ParameterError(f"input '{p}' is inside the output folder '{out_dir}': choose "
                                 f"an output folder that holds no inputs")
        if rp.is_file():
            found.setdefault(rp)
            continue
        for root, dirs, files in os.walk(rp):
            r = Path(root)
            dirs[:] = sorted(d for d in dirs if not d.startswith(".") and
                             not _inside((r / d).resolve(), out))
            for name in sorted(files):
                if is_audio_path(name):
                    found.setdefault((r / name).resolve())
    return list(found)


def _output_names(files: list[Path], out_dir: Path) -> list[Path]:
    stems = [f.stem for f in files]
    count = Counter(stems)
    names = []
    for f, s in zip(files, stems):
        if count[s] > 1:  # same name from two folders: a stable suffix from the full path
            s = f"{s}-{hashlib.sha256(str(f).encode()).hexdigest()[:8]}"
        names.append(out_dir / f"{s}.wav")
    return names


def read_report(path: Path) -> list[dict[str, Any]]:
    """The report's lines; a torn last line (crash mid-write) is ignored."""
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(row, dict):
            rows.append(row)
    return rows


def _output_intact(row: dict[str, Any]) -> bool:
    """The row's output is there with the size it recorded (rows written before sizes were
    recorded: it is there)."""
    try:
        size = os.stat(str(row.get("output"))).st_size
    except (OSError, ValueError):
        return False
    return row.get("output_size") is None or size == row["output_size"]


def _finished(rows: list[dict[str, Any]]) -> set[tuple[str, int, int, str]]:
    return {(r.get("input"), r.get("input_size"), r.get("input_mtime_ns"),
             r.get("settings_hash")) for r in rows
            if r.get("status") == "ok" and _output_intact(r)}


def _remove_stale_temps(out: Path, outputs: Iterable[str]) -> None:
    """Remove the hidden temporary files (``mixstyle.io.audio``'s ``.<name>.<random>.tmp.wav``)
    that a process killed mid-write left next to these outputs."""
    names = {Path(o).stem for o in outputs}
    try:
        entries = list(os.scandir(out))
    except OSError:
        return
    for entry in entries:
        n = entry.name
        if n.startswith(".") and n.endswith(".tmp.wav") and \
                n[1:-len(".tmp.wav")].rpartition(".")[0] in names:
            try:
                os.unlink(entry.path)
            except OSError:
                pass


def master_file(job: Job) -> dict[str, Any]:
    """Master one input here (see ``mixstyle.mastering.worker.master_file``)."""
    from mixstyle.mastering.worker import master_file as run
    return run(job)


def master_file_on_dask(job: Job) -> dict[str, Any]:
    """A Dask task (see ``mixstyle.mastering.worker.master_file_on_dask``)."""
    from mixstyle.mastering.worker import master_file_on_dask as run
    return run(job)


class _Here:
    """Masters in the command's own process; a thread puts each output on the disk while the
    next file is mastered (``mixstyle.mastering.worker.Durable``). Loaded at the first file, so
    a Dask batch's coordinator never imports the mastering chain."""

    def __init__(self) -> None:
        self._durable: Any = None

    def start(self, job: Job, deliver: Callable[[dict[str, Any]], None]) -> None:
        from mixstyle.mastering.worker import Durable, master_file as run
        if self._durable is None:
            self._durable = Durable()
        self._durable.submit(run(job, durable=False), deliver)

    def rows(self, jobs: list[Job]) -> Iterator[dict[str, Any]]:
        """Every job's row, in order, each once its output is on the disk."""
        done: queue.SimpleQueue[dict[str, Any]] = queue.SimpleQueue()
        for job in jobs:
            self.start(job, done.put)
            while not done.empty():
                yield done.get()
        self.close()
        while not done.empty():
            yield done.get()

    def close(self) -> None:
        if self._durable is not None:
            self._durable.close()
            self._durable = None


def _error_row(job: Job, message: str) -> dict[str, Any]:
    return {"input": job.input, "output": job.output, "input_size": job.size,
            "input_mtime_ns": job.mtime_ns, "settings_hash": job.settings_hash,
            "status": "error", "error": message, "settings": job.settings,
            "target_lufs": job.settings["target_lufs"],
            "ceiling_dbtp": job.settings["ceiling_dbtp"]}


def _plain(v: Any) -> Any:
    """JSON-safe value: numpy scalars to Python, non-finite floats to None (strict JSON)."""
    if isinstance(v, (np.floating, np.integer, np.bool_)):
        v = v.item()
    if isinstance(v, float) and not np.isfinite(v):
        return None
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    return v


class _Report:
    """Appends one JSON line per finished file, each handed to the system at once (a killed
    command loses none). The file is fsynced at most every ``REPORT_SYNC_S`` and at the end,
    not per line, and by a thread of its own: on ext4 a small file's fsync waits for every
    output still being flushed (about 0.06 s), and this process masters files too. A power cut
    can lose the last second's lines; their outputs are mastered again on the next run (a torn
    line is ignored)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.appended = 0
        self._f: io.TextIOWrapper | None = None
        self._dirty = threading.Event()    # lines written since the last fsync
        self._closing = threading.Event()
        self._syncer: threading.Thread | None = None

    def add(self, row: dict[str, Any]) -> None:
        if self._f is None:
            torn = self.path.is_file() and self.path.stat().st_size > 0 and \
                not self.path.read_bytes()[-1:] == b"\n"
            self._f = open(self.path, "a", encoding="utf-8")
            if torn:
                self._f.write("\n")
            self._syncer = threading.Thread(target=self._sync_loop, args=(self._f.fileno(),),
                                            name="mixstyle-report-sync", daemon=True)
            self._syncer.start()
        row = {k: _plain(v) for k, v in row.items()}
        row["finished_at"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        self._f.write(json.dumps(row, allow_nan=False) + "\n")
        self._f.flush()
        self._dirty.set()
        self.appended += 1

    def _sync_loop(self, fd: int) -> None:
        """fsync what was written, then wait ``REPORT_SYNC_S`` before the next one."""
        while True:
            self._dirty.wait()
            if self._closing.is_set():
                return
            self._dirty.clear()
            try:
                os.fsync(fd)
            except OSError:
                pass  # the final fsync in ``close`` raises it
            if self._closing.wait(REPORT_SYNC_S):
                return

    def close(self) -> None:
        if self._f is not None:
            self._closing.set()
            self._dirty.set()
            if self._syncer is not None:
                self._syncer.join()
            self._f.flush()
            os.fsync(self._f.fileno())
            self._f.close()
            self._f = None


def write_csv(jsonl: Path, csv_path: Path) -> None:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=CSV_COLUMNS, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for row in read_report(jsonl):
        w.writerow({k: row.get(k, "") for k in CSV_COLUMNS})
    write_text_atomic(csv_path, buf.getvalue())


def _check_workers(workers: object, scheduler: object) -> int:
    if scheduler is not None:
        from mixstyle.io.cluster import check_address
        check_address(scheduler)
        if workers is not None:
            raise ParameterError("--workers sets local processes; with --scheduler the "
                                 "cluster's own workers run the batch: give one or the other")
        return 0
    if workers is None:
        return os.cpu_count() or 1
    if isinstance(workers, bool) or not isinstance(workers, (int, np.integer)):
        raise ParameterError(f"workers must be an integer 1 .. {MAX_WORKERS}, got {workers!r}")
    if not 1 <= int(workers) <= MAX_WORKERS:
        raise ParameterError(f"workers = {workers} is out of range: allowed 1 .. {MAX_WORKERS}")
    return int(workers)


def _run_dask(client: Any, jobs: list[Job]) -> Iterator[dict[str, Any]]:
    from mixstyle.io.cluster import map_unordered
    for job, fut in map_unordered(client, master_file_on_dask, jobs):
        try:
            yield fut.result()
        except Exception as e:  # the task failed on every worker it was given to
            yield _error_row(job, f"Dask task failed: {type(e).__name__}: {e}")


def list_jobs(inputs: list[str], out_dir: str | os.PathLike[str], settings: dict[str, Any]
              ) -> list[Job]:
    """The batch: every input found, its output named, its size and mtime. Runs where the
    audio reader is loaded anyway: this process, or for a Dask batch a worker (so the
    command that coordinates stays light)."""
    out = Path(out_dir)
    files = collect_inputs(inputs, out)
    if not files:
        raise AudioInputError(f"no audio files (wav, flac, aiff, mp3, ogg) in "
                              f"{', '.join(map(str, inputs))}")
    h = settings_hash(settings)
    jobs = []
    for f, o in zip(files, _output_names(files, out.resolve())):
        st = f.stat()
        jobs.append(Job(str(f), str(o), st.st_size, st.st_mtime_ns, settings, h))
    return jobs


class _StartUp:
    """Python's garbage collector is off while the command starts up: the imports and numba's
    set-up make some 1e5 objects that all live to the end, and collecting while they are made
    walks them again and again (about 0.1-0.3 s of a start-up of 1 s). ``over`` (at the first
    finished file, or before local workers are forked) moves them out of the collector's
    sight (``gc.freeze``: later collections, in this process and in forked workers, never
    touch them, nor copy their pages) and turns it back on; ``close`` undoes the freeze."""

    def __init__(self) -> None:
        self._was_on = gc.isenabled()
        self._running = self._was_on
        if self._running:
            gc.disable()

    def over(self) -> None:
        if self._running:
            self._running = False
            gc.freeze()
            gc.enable()

    def close(self) -> None:
        if self._was_on:
            self.over()
            gc.unfreeze()


def run_batch(inputs: list[str], profile_dir: str | os.PathLike[str], out_dir: str |
              os.PathLike[str], target_lufs: float | None = None,
              ceiling_dbtp: float | None = None, workers: int | None = None,
              scheduler: str | None = None, progress: Progress | None = None) -> BatchSummary:
    """Master every input not finished yet; see the module docstring."""
    if isinstance(inputs, (str, os.PathLike)) or not inputs:
        raise ParameterError("inputs must be a non-empty list of audio files or folders")
    n_workers = _check_workers(workers, scheduler)
    pool = None
    report: _Report | None = None
    client = None
    here = _Here()
    startup = _StartUp()
    try:
        profile = load_master_profile(profile_dir)
        settings = batch_settings(profile, target_lufs, ceiling_dbtp)
        out = Path(out_dir)
        if out.exists() and not out.is_dir():
            raise ParameterError(f"output folder '{out}' is a file")
        if scheduler is not None:
            from mixstyle.io.cluster import connect
            client = connect(scheduler)
            jobs = client.submit(list_jobs, [os.path.abspath(i) for i in inputs],
                                 os.path.abspath(out), settings, pure=False).result()
        else:
            jobs = list_jobs(inputs, out, settings)
        out.mkdir(parents=True, exist_ok=True)
        jsonl, csv_path = out / REPORT_JSONL, out / REPORT_CSV
        finished = _finished(read_report(jsonl))
        todo = [j for j in jobs if j.key not in finished]
        _remove_stale_temps(out, (j.output for j in todo))
        n_workers = min(n_workers, len(todo))  # no more processes than files
        if scheduler is not None or n_workers > 1:
            todo.sort(key=lambda j: -j.size)  # longest first: the batch ends evenly
        if scheduler is None and n_workers > 1:
            from mixstyle.mastering.pool import LocalWorkers
            pool = LocalWorkers(n_workers - 1, before_fork=startup.over)
        skipped, failed, done, missed = len(jobs) - len(todo), 0, 0, 0
        if progress:
            progress("master", skipped, len(jobs))
        report = _Report(jsonl)
        if not todo:
            rows: Iterable[dict[str, Any]] = ()
        elif client is not None:
            rows = _run_dask(client, todo)
        elif pool is not None:
            rows = pool.run(todo, here.start, lambda job: _error_row(job, WORKER_DIED))
        else:
            rows = here.rows(todo)
        for row in rows:
            startup.over()
            report.add(row)
            done += 1
            failed += row.get("status") != "ok"
            missed += row.get("status") == "ok" and not row.get("target_met")
            if progress:
                progress("master", skipped + done, len(jobs))
        _remove_stale_temps(out, (j.output for j in todo))  # of a worker killed mid-write
    finally:
        startup.close()
        here.close()
        if pool is not None:
            pool.close()
        if client is not None:
            client.close()
        if report is not None:
            report.close()
            if jsonl.is_file() and (report.appended or not csv_path.is_file() or
                                    csv_path.stat().st_mtime_ns < jsonl.stat().st_mtime_ns):
                write_csv(jsonl, csv_path)
    return BatchSummary(len(jobs), done - failed, skipped, failed, jsonl, csv_path, missed)


def master_command(inputs: list[str], profile_dir: str | os.PathLike[str],
                   out_dir: str | os.PathLike[str], target_lufs: float | None = None,
                   ceiling_dbtp: float | None = None, workers: int | None = None,
                   scheduler: str | None = None, progress: Progress | None = None) -> int:
    """Run the batch and print a one-line summary; exit code 0, or 1 if a file failed."""
    s = run_batch(inputs, profile_dir, out_dir, target_lufs, ceiling_dbtp, workers, scheduler,
                  progress)
    missed = f" ({s.missed_target} could not reach the loudness target, see target_met)" \
        if s.missed_target else ""
    print(f"mastered {s.mastered}{missed}, skipped {s.skipped} (finished before), failed "
          f"{s.failed} of {s.total}; report: {s.report_csv}", file=sys.stderr)
    return 1 if s.failed else 0


__all__ = ["BatchSummary", "Job", "batch_settings", "collect_inputs", "list_jobs",
           "master_command", "master_file", "read_report", "run_batch", "settings_hash",
           "write_csv"]
