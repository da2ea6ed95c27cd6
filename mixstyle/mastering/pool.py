"""Local worker processes for ``mixstyle master --workers N``: N - 1 worker processes, and the
command's own process as the N-th, take files from one queue, each the next file when it is
free (no process waits with a file queued while another is idle, so a batch ends evenly).

On Linux the workers are forked from the command once it has loaded the mastering chain and its
numba kernels (``mixstyle.mastering.worker.warm_up``): they start with all of it in memory and
master at once, instead of each paying the interpreter, the imports and numba's set-up again
(about 1 s of CPU per process, more on a busy machine). The fork happens while this process
runs no other thread (nothing can be holding a lock); when it does, or elsewhere, the workers
are spawned and load everything themselves.

A worker that dies (killed, out of memory) costs only the file it had: that file gets an error
row (the next run tries it again) and the others go on. Workers die with the command (Linux:
``PR_SET_PDEATHSIG``), so a killed command leaves none mastering files nobody will report.
"""

from __future__ import annotations

import queue
import sys
import threading
from multiprocessing.connection import Connection, wait
from typing import Any, Callable, Iterator, TypeVar

J = TypeVar("J")
Row = dict[str, Any]
JOIN_TIMEOUT_S = 5.0


def _serve(tasks: Any, results: Connection) -> None:
    """The worker process's entry (a spawned one imports the worker module only here)."""
    from mixstyle.mastering.worker import serve
    serve(tasks, results)


def _context() -> Any:
    """``fork`` on Linux while this process runs one thread, else ``spawn``."""
    import multiprocessing
    if sys.platform.startswith("linux") and threading.active_count() == 1:
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context("spawn")  # no inherited threads or locks


class LocalWorkers:
    """``processes`` worker processes, started at once; ``run`` gives them (and this process)
    the jobs; ``close`` ends them. Forked ones start warm: this process warms up first."""

    def __init__(self, processes: int, before_fork: Callable[[], None] | None = None) -> None:
        ctx = _context()
        self.forked = ctx.get_start_method() == "fork"
        if self.forked:
            from mixstyle.mastering.worker import warm_up
            warm_up()  # once, here: every forked worker has it
            if before_fork is not None:
                before_fork()
            for stream in (sys.stdout, sys.stderr):  # nothing buffered is written twice
                stream.flush()
        self.tasks = ctx.Queue()
        self.procs: list[Any] = []
        self.conns: list[Connection] = []
        for _ in range(processes):
            reader, writer = ctx.Pipe(duplex=False)  # one per worker: no shared write lock
            proc = ctx.Process(target=_serve, args=(self.tasks, writer), daemon=True,
                               name="mixstyle-master-worker")
            proc.start()
            writer.close()
            self.procs.append(proc)
            self.conns.append(reader)

    def run(self, jobs: list[J], start: Callable[[J, Callable[[Row], None]], None],
            died: Callable[[J], Row]) -> Iterator[Row]:
        """A row for every job, as each finishes. This process masters too: ``start(job,
        deliver)`` masters a job here and calls ``deliver(row)`` (perhaps from another thread)
        once its output is on the disk. A worker that dies yields ``died(job)`` for every job
        it took and has not reported (the one it was mastering, and any still being synced)."""
        for item in enumerate(jobs):
            self.tasks.put(item)
        for _ in range(len(self.procs) + 1):  # one end mark per process, this one included
            self.tasks.put(None)
        left = dict(enumerate(jobs))
        held: dict[Connection, set[int]] = {}
        listening = list(self.conns)
        ours: queue.SimpleQueue[tuple[int, Row]] = queue.SimpleQueue()  # rows of this process
        pending: set[int] = set()  # jobs this process started and has no row for yet

        def start_here(index: int) -> None:
            pending.add(index)
            start(left[index], lambda row: ours.put((index, row)))

        taking = True
        while left:
            # with no worker left and nothing to take, only this process's rows can come: wait
            block = not taking and not listening and bool(pending)
            while True:
                try:
                    index, row = ours.get(timeout=0.5) if block else ours.get_nowait()
                except queue.Empty:
                    break
                block = False
                pending.discard(index)
                if left.pop(index, None) is not None:
                    yield row
            if not left:
                break
            timeout = 0 if taking else 0.01 if pending else 0.5
            for conn in wait(listening, timeout=timeout) if listening else ():
                try:
                    kind, index, row = conn.recv()  # type: ignore[union-attr]
                except (EOFError, OSError):  # the worker is gone with the jobs it held
                    listening.remove(conn)  # type: ignore[arg-type]
                    for index in sorted(held.pop(conn, ())):  # type: ignore[arg-type]
                        if index in left:
                            yield died(left.pop(index))
                    continue
                if kind == "took":
                    held.setdefault(conn, set()).add(index)  # type: ignore[arg-type]
                else:
                    held.get(conn, set()).discard(index)  # type: ignore[arg-type]
                    if left.pop(index, None) is not None:
                        yield row
            if taking:
                try:
                    item = self.tasks.get(timeout=0.05)
                except queue.Empty:
                    continue
                if item is None:
                    taking = False
                    continue
                start_here(item[0])
            elif not listening:
                # every worker has gone and the queue is empty: a job still left was taken by a
                # worker killed before it could say so; it is done here
                for index in sorted(set(left) - pending):
                    start_here(index)

    def close(self) -> None:
        """Stop the workers. None holds a job once ``run`` has given every job its row (one
        may still be starting up: a short batch does not wait for it)."""
        self.tasks.cancel_join_thread()  # never wait at exit on jobs nobody will take
        for proc in self.procs:
            if proc.is_alive():
                proc.terminate()
                proc.join(JOIN_TIMEOUT_S)
            if proc.is_alive():
                proc.kill()
                proc.join()
        for conn in self.conns:
            conn.close()
        self.tasks.close()
