"""Work on an existing Dask cluster, for ``mixstyle learn --scheduler`` (the per-song fits) and
``mixstyle master --scheduler`` (the masters).

Dask is imported here only, and only when a scheduler is given. Tasks are handed out a few per
worker thread at a time, so a catalogue of 100,000 files never sits in the scheduler at once.
A worker that dies mid-task is not an error here: the scheduler runs its tasks again on another
worker (Dask's ``distributed.scheduler.allowed-failures``, 3 by default, then the task fails
with ``KilledWorker``). Workers must import ``mixstyle`` (install it on every machine) and see
the inputs and outputs at the same paths as this process. ``LocalCluster`` starts a real one
on this machine for the tests and benchmarks.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, TypeVar

from dsp.errors import MixstyleError, ParameterError

T = TypeVar("T")
IN_FLIGHT_PER_THREAD = 2     # submitted at once per worker thread: one running, one waiting


def check_address(scheduler: object) -> str:
    """The scheduler address, or ParameterError with an example of one."""
    if not isinstance(scheduler, str) or not scheduler.strip():
        raise ParameterError(f"scheduler must be a Dask scheduler address such as "
                             f"'tcp://host:8786', got {scheduler!r}")
    return scheduler.strip()


def connect(address: str) -> Any:
    """A ``dask.distributed.Client`` of the scheduler at ``address`` (MixstyleError if not)."""
    try:
        from dask.distributed import Client
    except ImportError:
        raise MixstyleError("--scheduler needs Dask: pip install 'dask[distributed]'") from None
    try:
        return Client(check_address(address), timeout="10s", set_as_default=False)
    except (OSError, TimeoutError, ValueError) as e:
        raise MixstyleError(f"cannot connect to the Dask scheduler at {address!r}: {e}") from None


def map_unordered(client: Any, fn: Callable[[T], Any], items: Iterable[T],
                  in_flight_per_thread: int = IN_FLIGHT_PER_THREAD
                  ) -> Iterator[tuple[T, Any]]:
    """``(item, future)`` for each item as its ``fn(item)`` finishes on the cluster, in order
    of finishing; the future's ``result()`` raises what the task raised. At most
    ``in_flight_per_thread`` tasks per worker thread are submitted at a time."""
    from dask.distributed import as_completed
    pending = iter(items)
    threads = max(1, sum(client.nthreads().values()))
    running: dict[Any, T] = {}
    queue = as_completed(loop=client.loop)

    def submit() -> bool:
        for item in pending:
            fut = client.submit(fn, item, pure=False)
            running[fut] = item
            queue.add(fut)
            return True
        return False

    while len(running) < threads * in_flight_per_thread and submit():
        pass
    for fut in queue:
        item = running.pop(fut)
        submit()  # before handing the result out: the cluster never waits for the caller
        yield item, fut


class LocalCluster:
    """A real Dask cluster on this machine for tests and benchmarks: ``dask scheduler`` and
    ``workers`` ``dask worker`` processes (one thread each, as the README deploys them) on
    127.0.0.1, as subprocesses of this one; a context manager that stops them (SIGTERM, then
    SIGKILL). ``preload``: modules the workers import as they start (``dask_setup`` runs)."""

    START_TIMEOUT_S = 120.0

    def __init__(self, folder: str | os.PathLike[str], workers: int = 2,
                 preload: tuple[str, ...] = (), env: dict[str, str] | None = None) -> None:
        self.folder = Path(folder)
        self.n_workers = workers
        self.preload = preload
        self.env = dict(os.environ if env is None else env)
        self.scheduler_file = self.folder / "scheduler.json"
        self.log = self.folder / "cluster.log"
        self.procs: list[subprocess.Popen] = []
        self.client: Any = None
        self.address = ""

    def __enter__(self) -> "LocalCluster":
        from dask.distributed import Client
        self.folder.mkdir(parents=True, exist_ok=True)
        self.scheduler_file.unlink(missing_ok=True)
        try:
            self._start("scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                        "--scheduler-file", str(self.scheduler_file), "--idle-timeout", "3600s")
            deadline = time.monotonic() + self.START_TIMEOUT_S
            while not self.scheduler_file.is_file():
                if self.procs[0].poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"dask scheduler did not start: {self._log_tail()}")
                time.sleep(0.05)
            for _ in range(self.n_workers):
                self.add_worker()
            self.client = Client(scheduler_file=str(self.scheduler_file), timeout="60s",
                                 set_as_default=False)
            self.address = self.client.scheduler.address
            self.wait_for_workers()
        except BaseException:
            self.__exit__()
            raise
        return self

    def add_worker(self) -> None:
        self._start("worker", "--scheduler-file", str(self.scheduler_file), "--nworkers", "1",
                    "--nthreads", "1", "--host", "127.0.0.1", "--no-dashboard",
                    "--death-timeout", "60s", *[a for m in self.preload for a in ("--preload", m)])

    def wait_for_workers(self, n: int | None = None) -> None:
        """Until ``n`` (default: all started) workers are up, their preloads done."""
        n = self.n_workers if n is None else n
        deadline = time.monotonic() + self.START_TIMEOUT_S
        while len(self.client.scheduler_info(n_workers=-1)["workers"]) < n:
            if time.monotonic() > deadline:
                raise RuntimeError(f"fewer than {n} Dask workers after "
                                   f"{self.START_TIMEOUT_S:.0f} s: {self._log_tail()}")
            time.sleep(0.05)

    def worker_pids(self) -> dict[str, int]:
        """Worker address -> pid of the process that runs its tasks (the nanny's child)."""
        return self.client.run(os.getpid)

    def executed(self) -> int:
        """Tasks the workers now running have run since they started."""
        return sum(self.client.run(lambda dask_worker: dask_worker.state.executed_count)
                   .values())

    def __exit__(self, *exc: object) -> None:
        if self.client is not None:
            self.client.close()
            self.client = None
        for p in reversed(self.procs):  # workers before the scheduler
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
        for p in reversed(self.procs):
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
        self.procs.clear()

    def _start(self, *args: str) -> None:
        dask = Path(sys.executable).with_name("dask")
        with open(self.log, "ab") as log:
            self.procs.append(subprocess.Popen(
                [str(dask), *args], cwd=self.folder, env=self.env, stdout=log,
                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True))

    def _log_tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:] if self.log.is_file() else ""
