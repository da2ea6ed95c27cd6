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
