"""One profile on every CPU: `mixstyle learn` asks numpy, OpenBLAS, torch and numba for one
kernel level (dsp/kernels.py), so what the machine would pick by itself cannot reach the result.

Another CPU is stood in for by the variables through which the libraries take their kernels
(the ones scripts/cpu_matrix.sh uses): an older OpenBLAS family, numpy without AVX2, torch's
and MKL's plain code, numba compiling for a CPU without FMA. Under ``MIXSTYLE_KERNELS=native``
they change the learned profile (the test can fail); pinned, they change nothing, to the bit.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from dsp.kernels import LEVELS
from mixstyle.io.audio import write_audio_atomic

pytestmark = pytest.mark.long(90)   # seconds on 2 cores: scheduled first (tests/conftest.py)

ROOT = Path(__file__).resolve().parents[2]
SR = 44100.0
FAST = ["--epochs", "30", "--audio-epochs", "1", "--fit-steps", "3", "--quiet"]
# what another CPU's libraries would pick; every x86-64 CPU can run them. numba compiles for a
# CPU without AVX or FMA: the x86-64-v2 level's own target, so the unpinned learn finds the code
# the v2 learn compiled before it in numba's cache (a fresh clone compiles each target once)
OTHER_CPU = {"OPENBLAS_CORETYPE": "Sandybridge", "NPY_DISABLE_CPU_FEATURES": "X86_V3 X86_V4",
             "ATEN_CPU_CAPABILITY": "default", "MKL_CBWR": "AUTO",
             "MKL_ENABLE_INSTRUCTIONS": "SSE4_2", "ONEDNN_MAX_CPU_ISA": "SSE41",
             **{k: LEVELS["x86-64-v2"][k] for k in ("NUMBA_CPU_NAME", "NUMBA_CPU_FEATURES")}}



def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in {n for lv in LEVELS.values() for n in lv} and not k.startswith("MIXSTYLE_K")}
    env.update(extra, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    return env


@pytest.fixture(scope="module")
def sessions(tmp_path_factory):
    sys.path.insert(0, str(ROOT / "tests"))
    from conftest import synthetic_stems
    root = tmp_path_factory.mktemp("kernels") / "sessions"
    for k in range(4):
        stems = synthetic_stems(seed=40 + k, seconds=2.0, n_stems=3)
        gains = np.array([0.5, 1.4, 0.8], dtype=np.float32)[:, None, None]
        folder = root / f"song{k}"
        (folder / "stems").mkdir(parents=True)
        for i, audio in enumerate(stems):
            write_audio_atomic(folder / "stems" / f"track{i}.wav", audio, SR)
        write_audio_atomic(folder / "mix.wav", (stems * gains).sum(0), SR)
    return root


@pytest.fixture(scope="module")
def learned(sessions, tmp_path_factory):
    """Four learns of the same songs, one thread each (the unpinned one after the v2 one):
    {name: profile folder}."""
    runs = {"pinned": _env(), "pinned, other CPU": _env(**OTHER_CPU),
            "native, other CPU": _env(MIXSTYLE_KERNELS="native", **OTHER_CPU),
            "v2, other CPU": _env(MIXSTYLE_KERNELS="x86-64-v2", **OTHER_CPU)}
    out = tmp_path_factory.mktemp("profiles")
    folders = {name: out / f"p{i}" for i, name in enumerate(runs)}

    def start(name: str) -> subprocess.Popen:
        return subprocess.Popen(
            [sys.executable, "-m", "mixstyle.cli", "learn", str(sessions), "--out",
             str(folders[name]), "--jobs", "1", *FAST], env=runs[name], stderr=subprocess.PIPE,
            text=True)

    def finish(name: str, p: subprocess.Popen) -> None:
        _, err = p.communicate(timeout=600)
        assert p.returncode == 0, f"{name}: {err[-2000:]}"

    # the unpinned learn starts once the v2 learn has compiled their common numba target
    procs = {n: start(n) for n in runs if n != "native, other CPU"}
    finish("v2, other CPU", procs.pop("v2, other CPU"))
    procs["native, other CPU"] = start("native, other CPU")
    for n, p in procs.items():
        finish(n, p)
    return folders


def _weights(profile: Path) -> dict[str, np.ndarray]:
    with np.load(profile / "weights.npz") as w:
        return {k: w[k] for k in w.files}


def _card(profile: Path) -> dict:
    return json.loads((profile / "model_card.json").read_text())


def _same(a: Path, b: Path) -> bool:
    wa, wb = _weights(a), _weights(b)
    return wa.keys() == wb.keys() and all(np.array_equal(wa[k], wb[k]) for k in wa) and \
        _card(a)["held_out_score"] == _card(b)["held_out_score"]


def test_the_environment_reaches_an_unpinned_learn(learned):
    """The stand-in for another CPU is strong enough to move a learn that is not pinned away
    from the pinned one."""
    assert not _same(learned["native, other CPU"], learned["pinned"])
    card = _card(learned["native, other CPU"])["kernels"]["learn"]
    assert card["level"] == "native" and card["pinned"] is False


def test_a_pinned_learn_is_the_same_whatever_the_cpu_would_pick(learned):
    assert _same(learned["pinned"], learned["pinned, other CPU"])
    for name in ("pinned", "pinned, other CPU"):
        card = _card(learned[name])["kernels"]["learn"]
        assert card["level"] == "x86-64-v3" and card["pinned"] is True, (name, card)
        assert {k: card["libraries"][k] for k in ("numpy", "torch", "numba")} == \
            {"numpy": "X86_V3", "torch": "AVX2", "numba": "haswell"}, (name, card)
    text = (learned["pinned"] / "model_card.md").read_text()
    assert "Numeric kernels: x86-64-v3 (pinned" in text


def test_the_fallback_level_pins_the_plain_kernels(learned):
    """x86-64-v2, an older CPU's level: it learns, on numpy's and torch's plain code, a
    profile of its own (another rounding: how good a 4-song learn comes out is rounding's
    too, so only far from the generic automix is asked)."""
    card = _card(learned["v2, other CPU"])["kernels"]["learn"]
    assert card["level"] == "x86-64-v2" and card["pinned"] is True, card
    assert {k: card["libraries"][k] for k in ("numpy", "torch", "numba")} == \
        {"numpy": "X86_V2", "torch": "DEFAULT", "numba": "nehalem"}, card
    assert not _same(learned["v2, other CPU"], learned["pinned"])
    score = _card(learned["v2, other CPU"])["held_out_score"]
    assert score["learned"]["band_error_db"] < 0.7 * score["automix"]["band_error_db"]


def test_a_bad_kernel_level_is_named(sessions, tmp_path):
    r = subprocess.run([sys.executable, "-m", "mixstyle.cli", "learn", str(sessions), "--out",
                        str(tmp_path / "p")], env=_env(MIXSTYLE_KERNELS="avx9000"),
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2
    assert "MIXSTYLE_KERNELS='avx9000'" in r.stderr and "x86-64-v3" in r.stderr
    assert not (tmp_path / "p").exists()


def test_pin_comes_too_late_once_numpy_is_loaded(tmp_path):
    """Called as a library after numpy loaded, pin() changes nothing (a process and the workers
    it starts keep one choice) and state() says the kernels are not pinned."""
    code = ("import numpy, os; from dsp.kernels import pin, state; "
            "print(pin(), os.environ.get('OPENBLAS_CORETYPE'), state()['pinned'])")
    r = subprocess.run([sys.executable, "-c", code], env=_env(OPENBLAS_CORETYPE="Sandybridge"),
                       capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert r.stdout.split() == ["native", "Sandybridge", "False"], r.stderr
    code = ("from dsp.kernels import pin, state; pin(); import numpy, torch; "
            "print(state()['pinned'])")
    r = subprocess.run([sys.executable, "-c", code], env=_env(OPENBLAS_CORETYPE="Sandybridge"),
                       capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert r.stdout.split() == ["True"], r.stderr


def test_python_m_dsp_kernels_prints_the_environment_of_a_level():
    r = subprocess.run([sys.executable, "-m", "dsp.kernels", "x86-64-v2"], env=_env(),
                       capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert r.returncode == 0
    lines = dict(line.removeprefix("export ").split("=", 1) for line in r.stdout.splitlines())
    assert lines["OPENBLAS_CORETYPE"] == "'Nehalem'"
    assert lines["MIXSTYLE_KERNELS_PINNED"] == "'x86-64-v2'"


# the bits of matrix products through MKL (torch) and OpenBLAS (numpy) under the pin, the same on
# every x86-64-v3 CPU, Intel or AMD. Measured on an AMD EPYC: with MKL_CBWR=AVX2 (the pin before)
# MKL ignored the branch there (non-Intel: its own choice) and learned another profile
_PRODUCTS = """
import hashlib, sys
sys.path.insert(0, sys.argv[1])
from dsp.kernels import pin
pin()
import numpy as np, torch
rng = np.random.default_rng(7)
a, b = rng.random((97, 131)) - 0.5, rng.random((131, 67)) - 0.5
h = hashlib.sha256()
for x, y in ((a, b), (a.astype(np.float32), b.astype(np.float32))):
    h.update((torch.from_numpy(x) @ torch.from_numpy(y)).numpy().tobytes())   # MKL
    h.update((x @ y).tobytes())                                               # OpenBLAS
print(h.hexdigest()[:16])
"""
PRODUCTS_V3 = "f5cf71c45273b43c"


def test_pinned_matrix_products_are_the_same_bits_on_every_cpu():
    env = _env(MKL_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")   # _env sets OMP_NUM_THREADS
    r = subprocess.run([sys.executable, "-c", _PRODUCTS, str(ROOT)], env=env,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.strip() == PRODUCTS_V3
