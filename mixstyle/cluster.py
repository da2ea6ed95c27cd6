"""Work on an existing Dask cluster, for ``mixstyle learn --scheduler`` (the per-song fits) and
``mixstyle master --scheduler`` (the masters).

Dask is imported here only, and only when a scheduler is given. Tasks are handed out a few per
worker thread at a time, so a catalogue of 100,000 files never sits in the scheduler at once.
A worker that dies mid-task is not an error here: the scheduler runs its tasks again on another
worker (Dask's ``distributed.scheduler.allowed-failures``, 3 by default, then the task fails
with ``KilledWorker``). Workers must import ``mixstyle`` (install it on every machine) and see
the inputs and outputs at the same paths as this process.
"""

from __future__ import annotations

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
