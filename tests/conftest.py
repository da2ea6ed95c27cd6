"""Shared fixtures: synthetic multitrack material that every test can make in milliseconds."""

from __future__ import annotations

import os

from dsp.kernels import pin

pin()  # the mixstyle command's numeric kernels (dsp/kernels.py) here too, before numpy loads

import numpy as np  # noqa: E402
import pytest
import scipy.signal


def synthetic_stems(seed: int, seconds: float = 4.0, n_stems: int = 4,
                    sample_rate: float = 44100.0) -> np.ndarray:
    """Broadband stems (N, 2, T) float32: coloured noise with rhythmic envelopes and a tone."""
    rng = np.random.default_rng(seed)
    n = int(seconds * sample_rate)
    t = np.arange(n) / sample_rate
    stems = []
    for i in range(n_stems):
        noise = rng.normal(size=n)
        tilt = rng.uniform(-0.6, 0.3)           # spectral tilt via a one-pole colouring
        noise = scipy.signal.lfilter([1.0], [1.0, tilt], noise)
        rate = rng.uniform(1.0, 6.0)
        env = 0.55 + 0.45 * np.sign(np.sin(2 * np.pi * rate * t + rng.uniform(0, 6)))
        env = scipy.signal.lfilter([0.01], [1, -0.99], env)
        tone = 0.5 * np.sin(2 * np.pi * rng.uniform(80, 2000) * t)
        mono = (noise / np.std(noise) * 0.5 + tone) * env
        mono *= 10 ** (rng.uniform(-30, -12) / 20) / (np.sqrt(np.mean(mono ** 2)) + 1e-12)
        spread = rng.uniform(0.0, 0.3)
        side = scipy.signal.lfilter([1.0], [1.0, -0.5], rng.normal(size=n)) * spread * np.std(mono)
        stems.append(np.stack([mono + side, mono - side]))
    return np.asarray(stems, dtype=np.float32)


@pytest.fixture
def make_stems():
    return synthetic_stems


# --- Real parts are required where it counts ----------------------------------------------------
# A test that needs a real component (jackd, PortAudio's JACK API, zam-plugins, mma/fluidsynth,
# xmlschema, ../shared/dawproject, dask, Debian's chromium + Python playwright for the studio page) skips with the reason when a developer runs pytest by hand
# without it. Under CI (CI set) or `make test` (MIXSTYLE_REQUIRE_REAL=1) every skip is a failure
# that names what is missing: a green run must have exercised the real parts.

def strict_real_parts() -> bool:
    """True when a missing real component must fail the run instead of skipping."""
    flags = (os.environ.get("CI", ""), os.environ.get("MIXSTYLE_REQUIRE_REAL", ""))
    return any(v.strip().lower() not in ("", "0", "false", "no") for v in flags)


def _as_failure(report, when: str) -> None:
    reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
    report.outcome = "failed"
    report.longrepr = (f"{report.nodeid}: skipped during {when}, but CI/`make test` requires the real "
                       f"parts: {reason}")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if strict_real_parts() and report.skipped and not hasattr(report, "wasxfail"):
        _as_failure(report, report.when)


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    outcome = yield
    report = outcome.get_result()
    if strict_real_parts() and report.skipped:
        _as_failure(report, "collection")


# --- Long files first ---------------------------------------------------------------------------
# `make test` spreads whole files over the cores (--dist loadfile). A file of two minutes that
# starts last leaves the other core idle for two minutes, so the files marked
# `pytestmark = pytest.mark.long(seconds)` go first, longest first (the rest keep their order),
# and the Makefile turns off xdist's own order (by number of tests, which put a two-test file of
# 165 s near the end). The seconds are what the file took on 2 cores; only the order uses them.

def _file_seconds(item) -> float:
    mark = item.get_closest_marker("long")
    return float(mark.args[0]) if mark else 0.0


def pytest_collection_modifyitems(config, items):
    items.sort(key=lambda item: -_file_seconds(item))   # stable: a file's tests stay together
