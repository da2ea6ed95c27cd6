"""The layer contract ([tool.importlinter] in pyproject.toml) holds for this checkout, runs in
`make test`, and is able to fail: copies of the tree with one bad import each break it."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
LINT = Path(sys.executable).with_name("lint-imports")
pytestmark = pytest.mark.skipif(not LINT.is_file(), reason=f"no lint-imports next to "
                                f"{sys.executable} (pip install -e '.[test]')")


def _lint(root: Path, *contracts: str) -> subprocess.CompletedProcess:
    """lint-imports on the packages under ``root`` (they come first on the path), all contracts
    or only ``contracts`` (ids)."""
    env = dict(os.environ, PYTHONPATH=str(root))
    args = [a for c in contracts for a in ("--contract", c)]
    return subprocess.run([str(LINT), "--no-cache", "--no-logo", *args], cwd=root, env=env,
                          capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    """A copy of the three packages and pyproject.toml (the contracts)."""
    root = tmp_path_factory.mktemp("tree")
    for pkg in ("dsp", "mixstyle", "host"):
        shutil.copytree(REPO / pkg, root / pkg, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", root)
    return root


def test_the_checkout_keeps_every_contract():
    res = _lint(REPO)
    assert res.returncode == 0, res.stdout + res.stderr
    assert re.search(r"Contracts: (\d+) kept, 0 broken", res.stdout), res.stdout


def test_make_test_runs_the_contract_before_pytest():
    rule = (REPO / "Makefile").read_text().split("\ntest:", 1)[1].split("\n\n", 1)[0]
    lines = [line.strip() for line in rule.splitlines()[1:]]
    lint = next(i for i, line in enumerate(lines) if "$(LINT)" in line)
    assert lint < next(i for i, line in enumerate(lines) if "pytest" in line)
    assert "LINT := .venv/bin/lint-imports" in (REPO / "Makefile").read_text()


# (file to edit, line appended to it, contract that must break)
VIOLATIONS = [
    pytest.param("dsp/params.py", "import mixstyle.profile.store\n", "dsp-bottom",
                 id="dsp-imports-mixstyle"),
    pytest.param("host/worker.py", "from mixstyle.train import loop\n", "host-profile-only",
                 id="host-imports-training"),
    pytest.param("mixstyle/sessions/load.py",
                 "\n\ndef _hidden():\n    from mixstyle.learn import learn\n    return learn\n",
                 "mixstyle-layers", id="upward-import-hidden-in-a-function"),
    pytest.param("mixstyle/mastering/profile.py",
                 "\n\ndef _hidden():\n    from mixstyle.mastering import batch\n    return batch\n",
                 "no-circles", id="circle-inside-a-package"),
]


@pytest.mark.parametrize("path, line, contract", VIOLATIONS)
def test_a_bad_import_breaks_the_contract(tree, path, line, contract):
    assert _lint(tree, contract).returncode == 0   # the copy as it is keeps it
    target = tree / path
    before = target.read_text()
    try:
        target.write_text(before + line)
        res = _lint(tree, contract)
    finally:
        target.write_text(before)
    assert res.returncode != 0, res.stdout
    assert "Contracts: 0 kept, 1 broken" in res.stdout, res.stdout
    importer = Path(path).stem   # reported as dsp.params or, within a package, .profile
    assert re.search(rf"\b{importer} -> ", res.stdout), res.stdout   # the copy's bad import
