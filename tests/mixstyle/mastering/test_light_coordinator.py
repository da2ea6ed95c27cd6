"""The batch coordinator (``mixstyle.mastering.batch``) and the master profile it reads load no
numba kernels, torch or audio reader: a Dask batch's coordinator never needs them, and local
workers start while it reads the profile."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("numba", "torch", "pedalboard", "scipy", "mixstyle.io.audio", "mixstyle.mastering.chain",
         "mixstyle.mastering.worker")


def test_coordinator_imports_nothing_heavy():
    code = ("import json, sys, mixstyle.mastering.batch, mixstyle.mastering.profile; "
            "print(json.dumps(sorted(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    loaded = json.loads(out)
    heavy = [m for m in loaded if m.split(".")[0] in HEAVY or m in HEAVY]
    assert heavy == [], heavy


def test_a_warm_mastering_process_has_not_imported_scipy_linalg():
    """A mastering process (the worker module, warmed up: numba's set-up and the kernels of
    reading, the chain and writing) imports no torch and not ``scipy.linalg``, whose
    ``__init__`` numba's BLAS check would otherwise run; importing it afterwards works as usual,
    with the BLAS module numba saw as its attribute."""
    code = ("import json, sys\n"
            "import mixstyle.mastering.worker as w\n"
            "w.warm_up()\n"
            "before = sorted(sys.modules)\n"
            "import numpy as np, scipy.linalg, scipy.signal\n"
            "same = scipy.linalg.cython_blas is sys.modules['scipy.linalg.cython_blas']\n"
            "x = scipy.linalg.solve(np.array([[2.0, 1.0], [1.0, 3.0]]), np.array([3.0, 5.0]))\n"
            "print(json.dumps({'before': before, 'same': same, 'x': x.tolist()}))\n")
    got = json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True,
                                    text=True, check=True).stdout)
    before = got["before"]
    assert "numba" in before and "mixstyle.mastering.chain" in before
    assert not [m for m in before if m.split(".")[0] == "torch" or m.startswith("scipy.linalg.")
                and m != "scipy.linalg.cython_blas" or m == "scipy.linalg"]
    assert got["same"]
    assert max(abs(a - b) for a, b in zip(got["x"], [0.8, 1.4])) < 1e-12
