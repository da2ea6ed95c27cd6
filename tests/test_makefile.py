"""The Makefile and scripts/setup.sh keep .venv running this checkout (an editable install)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PROJECT = re.compile(r"(--editable=)?\.(\[[\w,-]+\])?")    # '.', '.[bench]', '--editable=.'


def _rule(name: str) -> list[str]:
    """The recipe lines of Makefile rule ``name`` (joined continuation lines, tabs stripped)."""
    text = (REPO / "Makefile").read_text().replace("\\\n", " ")
    match = re.search(rf"^{name}:.*\n((?:\t.*\n?)*)", text, re.M)
    assert match, f"Makefile has no rule '{name}'"
    return [line.strip() for line in match.group(1).splitlines()]


def _project_installs(line: str) -> list[list[str]]:
    """Each ``pip install`` on ``line`` that installs the project ('.' or '.[extras]')."""
    out = []
    for command in re.split(r"&&|\|\||;", line):
        words = [w for w in shlex.split(command) if not w.startswith((">", "2>"))]
        if "pip" in words and "install" in words[words.index("pip"):]:
            args = words[words.index("install") + 1:]
            if any(PROJECT.fullmatch(a) for a in args):
                out.append(args)
    return out


def _editable(args: list[str]) -> bool:
    """True when the project argument is the one given to -e / --editable."""
    for i, a in enumerate(args):
        if a in ("-e", "--editable") and i + 1 < len(args):
            return PROJECT.fullmatch(args[i + 1]) is not None
        if a.startswith("--editable="):
            return PROJECT.fullmatch(a) is not None
    return False


def test_bench_rule_installs_the_project_editable():
    installs = [args for line in _rule("bench") for args in _project_installs(line)]
    assert installs, "the bench rule no longer installs the project's [bench] extra"
    for args in installs:
        assert _editable(args), f"bench installs a copy of the checkout: pip install {args}"


def test_setup_script_installs_the_project_editable():
    lines = (REPO / "scripts" / "setup.sh").read_text().splitlines()
    installs = [args for line in lines for args in _project_installs(line)]
    assert installs and all(_editable(args) for args in installs), installs


@pytest.mark.parametrize("line, editable", [
    ('$(PY) -m pip install -q ".[bench]" >/dev/null 2>&1 || echo x', False),
    ('$(PY) -m pip install -q -e ".[bench]" >/dev/null 2>&1 || echo x', True),
    ("pip install --editable=. && true", True),
])
def test_the_check_tells_a_copy_from_an_editable_install(line, editable):
    (args,) = _project_installs(line)
    assert _editable(args) is editable
