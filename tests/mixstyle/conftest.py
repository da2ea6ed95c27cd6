"""A real local Dask cluster for the ``--scheduler`` tests: a ``dask scheduler`` and two
``dask worker`` processes (one thread each) on 127.0.0.1 (``mixstyle.io.cluster.LocalCluster``),
started as subprocesses once per test session and stopped at its end."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def _dask_cluster(tmp_path_factory):
    pytest.importorskip("dask.distributed", reason="dask[distributed] is not installed")
    if not Path(sys.executable).with_name("dask").is_file():
        pytest.skip(f"no 'dask' command next to {sys.executable}")
    from mixstyle.io.cluster import LocalCluster
    # the workers import the mixstyle of this checkout, on one BLAS thread like a fit
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])]),
        OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    # the workers preload the mastering worker as the README tells users to (the module name the
    # docs give must import: a worker whose preload fails never joins)
    with LocalCluster(tmp_path_factory.mktemp("dask_cluster"), workers=2, env=env,
                      preload=("mixstyle.mastering.worker",)) as cluster:
        yield cluster


@pytest.fixture
def dask_cluster(_dask_cluster):
    """The session's cluster with both workers up (a test may have killed one: its nanny
    starts it again)."""
    _dask_cluster.wait_for_workers()
    return _dask_cluster
