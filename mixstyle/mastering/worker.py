"""What a mastering worker runs: read one input, master it (``mixstyle.mastering.chain``), write its
output durably and return its report row.

Only processes that master import this module (its imports -- numba kernels, pedalboard, the
audio reader -- are most of a worker's start-up); ``mixstyle.mastering.batch``, which coordinates,
stays light, so a Dask batch's coordinator never loads them.

``serve`` is a local worker process's loop; ``dask_setup`` makes
``dask worker --preload mixstyle.mastering.worker`` load everything when the worker starts, so the
first batch does not wait for it.
"""

from __future__ import annotations

import os
import queue
import signal
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from dsp.errors import AudioInputError, MixstyleError
from dsp.files import fsync_file, fsync_folder
from mixstyle.io.audio import read_audio, write_audio_atomic
from mixstyle.mastering.chain import master_audio

if TYPE_CHECKING:
    from multiprocessing.connection import Connection

    from mixstyle.mastering.batch import Job

WARM_UP_SECONDS = 1.0
WARM_UP_TARGET_LUFS = -9.0   # loud enough that the noise needs the limiter (its kernels too)
WARM_UP_MASTER = {"low_shelf_gain_db": 1.0, "peak1_gain_db": -1.0, "peak2_gain_db": 1.0,
                  "peak3_gain_db": -1.0, "high_shelf_gain_db": 1.0, "comp_threshold_db": -30.0,
                  "comp_ratio": 2.0, "limiter_ceiling_db": -1.0, "target_lufs": -14.0}


class Durable:
    """Puts finished outputs on the disk in a thread of its own, so a worker masters its next
    file while the disk writes the last one (a 3-minute song's fsync takes about 0.1 s here,
    and two workers' fsyncs queue behind each other on one disk). ``submit(row, deliver)``
    fsyncs the row's output and its folder, then calls ``deliver(row)`` from that thread: a
    row says ok only when its output is on the disk. A failed fsync makes it an error row.
    Rows are delivered in the order they were submitted; ``close`` waits for all of them."""

    def __init__(self) -> None:
        self._q: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="mixstyle-durable", daemon=True)
        self._thread.start()

    def submit(self, row: dict[str, Any], deliver: Any) -> None:
        self._q.put((row, deliver))

    def _run(self) -> None:
        while (item := self._q.get()) is not None:
            row, deliver = item
            try:
                deliver(make_durable(row))
            except (OSError, EOFError, ValueError):  # the receiver is gone (its process died)
                pass

    def close(self) -> None:
        self._q.put(None)
        self._thread.join()


def make_durable(row: dict[str, Any]) -> dict[str, Any]:
    """fsync an ok row's output and its folder; a failure turns the row into an error row."""
    if row.get("status") == "ok":
        try:
            fsync_file(row["output"])
            fsync_folder(os.path.dirname(os.path.abspath(row["output"])))
        except OSError as e:
            row = {k: v for k, v in row.items() if k in _KEY_FIELDS}
            row.update(status="error", error=f"output not written to the disk: {e}")
    return row


_KEY_FIELDS = ("input", "output", "input_size", "input_mtime_ns", "settings_hash",
               "target_lufs", "ceiling_dbtp", "seconds", "worker", "settings")


def master_file(job: "Job", durable: bool = True) -> dict[str, Any]:
    """Master one input. The output is on the disk (the atomic writer fsyncs the file and its
    folder entry) before the row says ok, and the row records its size. Never raises: a failure
    is an error row. ``durable=False`` leaves the fsyncs to the caller (``make_durable``, or
    ``Durable``): the file is still put in place atomically."""
    t0 = time.perf_counter()
    row: dict[str, Any] = {"input": job.input, "output": job.output, "input_size": job.size,
                           "input_mtime_ns": job.mtime_ns, "settings_hash": job.settings_hash}
    s = job.settings
    try:
        audio, sr = read_audio(job.input)
        if audio.shape[0] > 2:
            raise AudioInputError(f"audio file '{job.input}' has {audio.shape[0]} channels: "
                                  f"mastering takes mono or stereo")
        try:
            res = master_audio(audio, sr, s["master"], target_lufs=s["target_lufs"],
                               ceiling_dbtp=s["ceiling_dbtp"], trim_to_lufs=s["trim_to_lufs"])
        except MixstyleError as e:
            raise type(e)(f"'{job.input}': {e}") from None
        out = write_audio_atomic(job.output, res.audio, sr, bit_depth=s["bit_depth"],
                                 protect=[job.input], sync=durable)
        row.update(status="ok", output_size=out.stat().st_size, sample_rate_hz=sr,
                   duration_s=audio.shape[1] / sr,
                   input_lufs=res.input_lufs, input_true_peak_dbtp=res.input_true_peak_dbtp,
                   output_lufs=res.loudness_lufs, output_true_peak_dbtp=res.true_peak_dbtp,
                   glue_gain_reduction_db=res.glue_gain_reduction_db,
                   limiter_gain_reduction_db=res.limiter_gain_reduction_db, trim_db=res.trim_db,
                   master_gain_db=res.master_gain_db, limiter_ceiling_db=res.limiter_ceiling_db,
                   limiter_passes=res.limiter_passes, tp_overshoot_db=res.tp_overshoot_db,
                   target_met=bool(abs(res.loudness_lufs - s["target_lufs"]) <= 0.5 and
                                   res.true_peak_dbtp <= s["ceiling_dbtp"]))
    except Exception as e:  # one broken file must not stop the batch
        msg = str(e) if isinstance(e, MixstyleError) else f"{type(e).__name__}: {e}"
        row.update(status="error", error=msg)
    row.update(target_lufs=s["target_lufs"], ceiling_dbtp=s["ceiling_dbtp"],
               seconds=time.perf_counter() - t0, worker=f"{socket.gethostname()}:{os.getpid()}",
               settings=s)
    return row


def master_file_on_dask(job: "Job") -> dict[str, Any]:
    """A Dask task: master one input, then leave the worker's thread pool (``secede``) for the
    fsyncs, so the worker starts mastering its next input while the disk takes this one's
    output, as a local worker's ``Durable`` thread lets it. The task still returns only once
    its output is on the disk: its row says ok only then. Outside a Dask worker (no pool to
    leave) the fsyncs simply follow the mastering."""
    row = master_file(job, durable=False)
    if row.get("status") == "ok":
        try:
            from distributed import secede
            secede()
        except (ImportError, ValueError):  # not in a Dask worker's task
            pass
    return make_durable(row)


_warm = False  # warm_up has run in this process (or in the one it was forked from)


def warm_up() -> None:
    """Load the compiled kernels of reading, the chain (the limiter's search included) and
    writing (numba's on-disk cache) with a second of noise through a temporary file, so no
    real file waits for them (the temporary files are not fsynced: nobody keeps them)."""
    global _warm
    from dsp.params import MASTER, neutral, validate
    params = validate(MASTER, dict(neutral(MASTER), **WARM_UP_MASTER), "warm-up master")
    rng = np.random.default_rng(0)
    sr = 44100.0
    noise = (0.1 * rng.standard_normal((2, int(WARM_UP_SECONDS * sr)))).astype(np.float32)
    with tempfile.TemporaryDirectory(prefix="mixstyle_warm_up_") as tmp:
        path = write_audio_atomic(Path(tmp) / "in.wav", noise, sr, bit_depth=24, sync=False)
        audio, _ = read_audio(path)
        res = master_audio(audio, sr, params, target_lufs=WARM_UP_TARGET_LUFS,
                           ceiling_dbtp=-1.0, trim_to_lufs=-20.0)
        write_audio_atomic(Path(tmp) / "out.wav", res.audio, sr, bit_depth=24, sync=False)
    _warm = True


def _die_with_parent() -> None:
    """Linux: the kernel kills this process when its parent dies (a coordinator killed with
    SIGKILL leaves no worker mastering files whose rows nobody will write)."""
    if sys.platform.startswith("linux"):
        try:
            import ctypes
            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass


def serve(tasks: Any, results: "Connection") -> None:
    """A local worker process: take ``(index, job)`` from ``tasks`` until ``None``; send
    ``("took", index)`` before mastering (so a crash names the file) and ``("row", index,
    row)`` after."""
    import multiprocessing
    _die_with_parent()
    parent = multiprocessing.parent_process()
    if not _warm:  # a spawned worker; a forked one has it from the command
        warm_up()
    lock = threading.Lock()  # this thread says "took", the Durable thread sends rows

    def send(message: tuple) -> None:
        with lock:
            results.send(message)

    durable = Durable()
    try:
        while True:
            try:
                item = tasks.get(timeout=1.0)
            except queue.Empty:
                if parent is not None and not parent.is_alive():
                    return
                continue
            if item is None:
                return
            index, job = item
            send(("took", index, None))
            durable.submit(master_file(job, durable=False),
                           lambda row, i=index: send(("row", i, row)))
    finally:
        durable.close()


def dask_setup(worker: Any = None) -> None:
    """``dask worker --preload mixstyle.mastering.worker``: load everything as the worker starts."""
    warm_up()
