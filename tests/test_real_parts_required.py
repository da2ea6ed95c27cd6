"""Under CI / `make test` a skipped test fails with its reason; by hand it still skips."""

from __future__ import annotations

from pathlib import Path

pytest_plugins = ["pytester"]

CONFTEST = (Path(__file__).parent / "conftest.py").read_text()
TESTS = '''
import pytest
pytest.importorskip("no_such_module_mixstyle")
def test_never():
    pass
'''
INLINE = '''
import pytest
def test_needs_tool():
    pytest.skip("frobnicator is not installed (Debian package frob)")
def test_fine():
    pass
'''


def _run(pytester, monkeypatch, strict: bool):
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv("MIXSTYLE_REQUIRE_REAL", raising=False)
    if strict:
        monkeypatch.setenv("CI", "true")
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_module_skip=TESTS, test_inline_skip=INLINE)
    return pytester.runpytest_subprocess("-p", "no:cacheprovider")


def test_skips_fail_under_ci(pytester, monkeypatch):
    result = _run(pytester, monkeypatch, strict=True)
    out = result.stdout.str()
    # a module that skips at import is a collection error: the run stops before any test passes
    assert "1 error" in out and "skipped during collection" in out
    assert "no_such_module_mixstyle" in out
    assert result.ret != 0


def test_inline_skip_fails_under_ci(pytester, monkeypatch):
    monkeypatch.setenv("CI", "true")
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_inline_skip=INLINE)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=1)
    assert "frobnicator is not installed" in result.stdout.str()


def test_skips_stay_skips_by_hand(pytester, monkeypatch):
    result = _run(pytester, monkeypatch, strict=False)
    result.assert_outcomes(passed=1, skipped=2)
    assert result.ret == 0


def test_make_test_is_strict():
    makefile = (Path(__file__).parents[1] / "Makefile").read_text()
    test_rule = makefile.split("\ntest:", 1)[1].split("\n\n", 1)[0]
    assert "MIXSTYLE_REQUIRE_REAL=1" in test_rule


def test_studio_page_tests_need_chromium_and_playwright(monkeypatch):
    """The browser tests skip (so fail under CI / `make test`) without Debian's chromium or the
    Python playwright package, naming what is missing."""
    import importlib.util
    import sys

    path = Path(__file__).parent / "host" / "test_studio_page.py"
    spec = importlib.util.spec_from_file_location("studio_page_probe", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    marks = mod.pytestmark if isinstance(mod.pytestmark, list) else [mod.pytestmark]
    skip = [m for m in marks if m.name == "skipif"]
    assert skip, "the studio page tests must skip (CI: fail) when a real part is missing"
    monkeypatch.setattr(mod, "CHROMIUM", "/nonexistent/chromium")
    assert "Debian package chromium" in mod._missing()
    monkeypatch.setitem(sys.modules, "playwright", None)   # import playwright -> ImportError
    monkeypatch.setitem(sys.modules, "playwright.sync_api", None)
    assert "playwright" in mod._missing()
