"""Many songs at once: ``pool_map`` runs a job per item in local processes (``spawn``, one core
each), ``cluster_map`` on an existing Dask cluster (``mixstyle.io.cluster``). Both call
``done(item, result)`` in this process as each item finishes; the jobs are pickled by name, so
they must be module-level functions (or ``functools.partial`` of one).
"""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Callable

import torch
from threadpoolctl import threadpool_limits

from dsp.kernels import state
from mixstyle.errors import MixstyleError


def worker_init() -> None:
    """A worker process uses one core: the pool supplies the parallelism. Without the BLAS
    limit each worker's numpy would start a thread per core, and two workers' threads fought
    over two cores (the fits took twice as long as one fit alone)."""
    torch.set_num_threads(1)
    threadpool_limits(1)


def processes(jobs: int) -> int:
    """``jobs`` as a process count: 0 means one per core."""
    return jobs or os.cpu_count() or 1


def cluster_map(work: Callable, items: list, scheduler: str, done: Callable) -> dict:
    """``done(item, work(item))`` for every item, ``work`` running on the Dask cluster at
    ``scheduler``. fit_mix keeps each fit to one BLAS/torch thread, so a worker's record equals
    the local pool's; a worker that dies mid-fit has its songs fitted again by another.
    Returns each worker's numeric kernels (``dsp.kernels.state``): a worker started outside
    mixstyle runs its libraries' own, and its fits may round differently."""
    from mixstyle.io.cluster import connect, map_unordered
    client = connect(scheduler)
    try:
        try:
            kernels = client.run(state)
        except Exception as e:
            raise MixstyleError(f"the Dask cluster at {scheduler} did not answer: "
                                f"{type(e).__name__}: {e}") from e
        for item, fut in map_unordered(client, work, items):
            try:
                result = fut.result()
            except Exception as e:  # the task itself failed, or it killed its workers
                raise MixstyleError(f"'{item}': the fit failed on the Dask cluster at "
                                    f"{scheduler}: {type(e).__name__}: {e}") from e
            done(item, result)
    finally:
        client.close()
    return kernels


def pool_map(work: Callable, items: list, jobs: int, done: Callable) -> None:
    """``done(item, work(item))`` for every item, in this process as each finishes; ``jobs``
    processes at a time (0 = one per core), run here when one would do."""
    jobs = min(processes(jobs), len(items))
    if jobs <= 1 or len(items) < 3:  # a pool's start-up costs more than it saves
        for item in items:
            done(item, work(item))
        return
    ctx = multiprocessing.get_context("spawn")  # never fork a process that holds torch threads
    with ProcessPoolExecutor(jobs, mp_context=ctx, initializer=worker_init) as pool:
        futures = {pool.submit(work, item): item for item in items}
        for fut in as_completed(futures):
            done(futures[fut], fut.result())


def one_process_pool() -> ProcessPoolExecutor:
    """One spare ``spawn`` process on one core (learn trains its held-out model there)."""
    return ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"),
                               initializer=worker_init)
