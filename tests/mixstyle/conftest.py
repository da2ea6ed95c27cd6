"""A real local Dask cluster for the ``--scheduler`` tests: a ``dask scheduler`` and two
``dask worker`` processes (one thread each, as the README deploys them) on 127.0.0.1, started
as subprocesses once per test session and stopped at its end (SIGTERM, then SIGKILL)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
DASK = Path(sys.executable).with_name("dask")
WORKERS = 2
START_TIMEOUT_S = 120.0


@dataclass
class LocalDaskCluster:
    address: str
    scheduler_file: Path
    log: Path
    procs: list[subprocess.Popen] = field(default_factory=list)
    client: Any = None

    def worker_pids(self) -> dict[str, int]:
        """Worker address -> pid of the process that runs its tasks (the nanny's child)."""
        return self.client.run(os.getpid)

    def executed(self) -> int:
        """Tasks the workers have run so far (all workers, since they started)."""
        return sum(self.client.run(lambda dask_worker: dask_worker.state.executed_count)
                   .values())

    def wait_for_workers(self, n: int = WORKERS) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while len(self.client.scheduler_info(n_workers=-1)["workers"]) < n:
            if time.monotonic() > deadline:
                raise RuntimeError(f"the Dask cluster has fewer than {n} workers after "
                                   f"{START_TIMEOUT_S:.0f} s; log: {self.log.read_text()[-3000:]}")
            time.sleep(0.2)


def _stop(procs: list[subprocess.Popen]) -> None:
    """SIGTERM each process group we started (workers before the scheduler), then SIGKILL
    what is still there after 20 s."""
    for p in reversed(procs):
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGTERM)
    for p in reversed(procs):
        try:
            p.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()


@pytest.fixture(scope="session")
def _dask_cluster(tmp_path_factory):
    distributed = pytest.importorskip("dask.distributed",
                                      reason="dask[distributed] is not installed")
    if not DASK.is_file():
        pytest.skip(f"no 'dask' command next to {sys.executable}")
    folder = tmp_path_factory.mktemp("dask_cluster")
    scheduler_file = folder / "scheduler.json"
    log = folder / "cluster.log"
    # the workers import the mixstyle of this checkout, on one BLAS thread like a fit
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])]),
        OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    cluster = LocalDaskCluster("", scheduler_file, log)
    with open(log, "ab") as out:
        def start(*args: str) -> None:
            cluster.procs.append(subprocess.Popen(
                [str(DASK), *args], cwd=folder, env=env, stdout=out, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True))

        try:
            start("scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                  "--scheduler-file", str(scheduler_file), "--idle-timeout", "3600s")
            deadline = time.monotonic() + START_TIMEOUT_S
            while not scheduler_file.is_file():
                if cluster.procs[0].poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"dask scheduler did not start: {log.read_text()[-3000:]}")
                time.sleep(0.1)
            for _ in range(WORKERS):
                start("worker", "--scheduler-file", str(scheduler_file), "--nworkers", "1",
                      "--nthreads", "1", "--host", "127.0.0.1", "--no-dashboard",
                      "--death-timeout", "60s")
            cluster.client = distributed.Client(scheduler_file=str(scheduler_file),
                                                timeout="60s", set_as_default=False)
            cluster.address = cluster.client.scheduler.address
            cluster.wait_for_workers()
            yield cluster
        finally:
            if cluster.client is not None:
                cluster.client.close()
            _stop(cluster.procs)


@pytest.fixture
def dask_cluster(_dask_cluster):
    """The session's cluster with both workers up (a test may have killed one: its nanny
    starts it again)."""
    _dask_cluster.wait_for_workers()
    return _dask_cluster
