"""The ZamEQ2/ZamGEQ31 fit (mixstyle/export/zam_fit.py) is well-posed: a start nudged by 1e-9
lands on the same error, the result does not depend on the BLAS kernels, no filter is narrower
than the stated error's grid can see, filters do not cancel each other without bound; and its
solver (bounded_lsq.py) finds minima, also on a bound. No plugin needed."""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from dsp import params as P
from dsp.eq import eq_curve_db
from mixstyle.export import zam_fit, zam_starts
from mixstyle.export.bounded_lsq import bounded_least_squares
from mixstyle.export.vstpreset import CHECK_POINTS, check_freqs_hz, zam_eq2_values
from mixstyle.export.zam_eq2 import FILTERS, Grid, zam_bandwidth, zam_qq

sys.path.insert(0, str(Path(__file__).parent))
from test_vstpreset import random_extreme_settings  # noqa: E402

pytestmark = pytest.mark.long(115)   # seconds on 2 cores: scheduled first (tests/conftest.py)

REPO = Path(__file__).resolve().parents[3]


def stated_db(notes):
    note = next(n for n in notes if "EQ curve within" in n)
    return float(note.split("within ")[1].split(" dB")[0])


# the cases the issue found flipping with the OpenBLAS kernel family
NUDGE_CASES = {
    "lpf_16.5k_q1.5_44k": (dict(lpf_freq_hz=16500.0, lpf_q=1.5), 44100.0),
    "lpf_16k_q1_48k": (dict(lpf_freq_hz=16000.0, lpf_q=1.0), 48000.0),
    "peak_14.7k_44k": (dict(peak3_freq_hz=14700.0, peak3_gain_db=18.0, peak3_q=1.1), 44100.0),
    "peak_15.2k_48k": (dict(peak3_freq_hz=15200.0, peak3_gain_db=-18.0, peak3_q=0.7), 48000.0),
    "peak_16k_44k": (dict(peak3_freq_hz=16000.0, peak3_gain_db=12.0, peak3_q=0.7), 44100.0),
    "narrow_peak_corner_44k": (dict(peak3_freq_hz=15600.0, peak3_gain_db=-16.0, peak3_q=7.6),
                               44100.0),
}


def nudged_start(monkeypatch, factor):
    """Every value of the fit's analytic start multiplied by ``factor``."""
    start = zam_starts.start

    def nudged(*args):
        return [{k: v * factor for k, v in inst.items()} for inst in start(*args)]
    monkeypatch.setattr(zam_starts, "start", nudged)  # zam_fit calls it as st.start


@pytest.mark.parametrize("case", ["random_extreme_11"] + list(NUDGE_CASES))
def test_a_start_nudged_by_1e_9_lands_on_the_same_error(monkeypatch, case):
    if case == "random_extreme_11":
        settings = list(random_extreme_settings(5, 11))
    else:
        extra, sr = NUDGE_CASES[case]
        settings = [(dict(P.neutral(P.TRACK), **extra), sr)]
    for params, sr in settings:
        errors = []
        for factor in (1.0, 1.0 + 1e-9, 1.0 - 1e-9):
            nudged_start(monkeypatch, factor)
            errors.append(stated_db(zam_eq2_values(P.TRACK, params, sr)[2]))
        assert max(errors) - min(errors) <= 0.05, errors


FIT_SCRIPT = """
import json, sys
from dsp import params as P
from mixstyle.export.vstpreset import zam_eq2_values
p = dict(P.neutral(P.TRACK), peak3_freq_hz=15200.0, peak3_gain_db=-18.0, peak3_q=0.7,
         hpf_freq_hz=300.0, hpf_q=1.2, low_shelf_gain_db=9.0)
eq2, geq, notes = zam_eq2_values(P.TRACK, p, 48000.0)
print(json.dumps([eq2, geq]))
"""


def _cpu_flags():
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    line = next((row for row in text.splitlines() if row.startswith("flags")), "")
    return set(line.split(":", 1)[-1].split())


def test_the_fit_is_the_same_with_every_openblas_kernel_family():
    """Bit for bit: the fit does its linear algebra itself (the issue: Haswell, SkylakeX,
    Sandybridge and Prescott kernels each gave other presets). Kernel families this CPU
    cannot run are left out (SkylakeX needs AVX-512)."""
    flags = _cpu_flags()
    families = ["Prescott"] + [name for name, flag in (("Sandybridge", "avx"),
                                                       ("Haswell", "avx2"),
                                                       ("SkylakeX", "avx512f"))
                               if flag in flags]
    results = {}
    for family in families:
        env = dict(os.environ, OPENBLAS_CORETYPE=family, OPENBLAS_NUM_THREADS="1")
        run = subprocess.run([sys.executable, "-c", FIT_SCRIPT], cwd=REPO, env=env,
                             capture_output=True, text=True, timeout=300)
        assert run.returncode == 0, (family, run.stderr[-2000:])
        results[family] = json.loads(run.stdout)
    first = results[families[0]]
    assert all(r == first for r in results.values()), list(results)


@pytest.mark.parametrize("sr", [8000.0, 44100.0, 48000.0, 96000.0, 384000.0])
def test_the_stated_error_grid_sees_the_narrowest_filter_the_fit_allows(sr):
    """The fit keeps every ZamEQ2 peak at least as wide as the table's narrowest (Q 8) at
    ZamEQ2's top frequency; the stated error's grid has 8 or more points across it anywhere
    (a notch 0.018 Hz wide once hid between the points)."""
    bw = zam_fit.fit_bw_min(sr)
    top = min(14000.0, 0.45 * sr)
    assert bw == pytest.approx(zam_bandwidth(top, 8.0, sr))
    assert zam_qq(bw) < (3.0 if sr >= 44100.0 else 12.0)  # the knob's minimum 0.1: qq 14000
    freqs = check_freqs_hz(sr, False)
    for f0 in (25.0, 1000.0, top):
        fine = np.geomspace(f0 / 1.5, min(f0 * 1.5, 0.499 * sr), 20001)
        db = Grid(fine, sr).filter_db("peak", f0, -12.0, bw)
        inside = fine[db < -6.0]  # the half-gain width
        assert np.sum((freqs >= inside[0]) & (freqs <= inside[-1])) >= 8, (f0, inside[[0, -1]])
    assert len(freqs) >= CHECK_POINTS


def fitted_filters_db(insts, freqs, sr):
    grid = Grid(freqs, sr)
    return [grid.filter_db(kind, v[fk], v[gk], v[bk] if bk else 1.0)
            for v in insts for kind, fk, gk, bk in FILTERS.values()]


@pytest.mark.parametrize("seed", [11, 12])
def test_no_filter_narrower_than_allowed_and_cancellation_bounded(seed):
    """Random extreme settings: every peak in use at least ``fit_bw_min`` wide, and the
    filters' absolute dB curves add up to at most ``CANCEL_ALLOW_DB`` (+ a little) more than
    our bands' (the issue's fit cancelled 143 dB at 44 Hz)."""
    for params, sr in random_extreme_settings(5, seed):
        eq2, _, _ = zam_eq2_values(P.TRACK, params, sr)
        for v in eq2:
            for slot in "12":
                if v[f"boost{slot}"] != 0.0:
                    assert v[f"bw{slot}"] >= zam_fit.fit_bw_min(sr) - 1e-12
        freqs = check_freqs_hz(sr, False)
        filters = sum(np.abs(c) for c in fitted_filters_db(eq2, freqs, sr))
        ours = eq_curve_db(P.TRACK, params, freqs, sr)
        bands = sum(np.abs(eq_curve_db(P.TRACK, dict(P.neutral(P.TRACK), **{
            k: params[k] for k in params if k.startswith(band)}), freqs, sr))
            for band in ("low_shelf", "peak1", "peak2", "peak3", "high_shelf"))
        assert np.all(filters - bands <= zam_fit.CANCEL_ALLOW_DB + 6.0)
        assert np.isfinite(ours).all()


def test_the_solver_fits_exactly_and_stops_at_a_bound():
    """A small curve fit: from a start away from the answer the solver recovers it; with the
    answer outside the box, it stops at the bound with the gradient pointing out (and zero
    for the others: a constrained minimum). Checked without BLAS (numpy sums), so it also
    runs under an OPENBLAS_CORETYPE the CPU lacks."""
    t = np.linspace(0.0, 3.0, 60)
    truth = np.array([2.5, 1.3, 0.4, 3.0])

    def model(x):
        return x[0] * np.exp(-x[1] * t) + x[2] * np.sin(x[3] * t)

    y = model(truth)

    def fun(x):
        return model(x) - y

    def jac(x):
        return np.stack([np.exp(-x[1] * t), -x[0] * t * np.exp(-x[1] * t), np.sin(x[3] * t),
                         x[2] * t * np.cos(x[3] * t)], axis=1)
    x0 = np.array([1.0, 1.0, 0.1, 2.5])
    free = bounded_least_squares(fun, jac, x0, np.array([0.0, 0.0, 0.0, 2.0]),
                                 np.array([4.0, 5.0, 1.0, 4.0]), 200)
    assert np.allclose(free, truth, atol=1e-7)
    lo, hi = np.array([0.0, 0.0, 0.0, 2.0]), np.array([2.0, 5.0, 1.0, 4.0])  # x[0] <= 2
    held = bounded_least_squares(fun, jac, x0, lo, hi, 200)
    gradient = np.sum(jac(held) * fun(held)[:, None], axis=0)
    assert held[0] == 2.0 and gradient[0] < -1e-3  # the cost falls beyond the bound
    assert np.abs(gradient[1:]).max() < 1e-4 * np.abs(gradient[0])


def test_there_is_a_place_for_every_spare_top_filter():
    """Step 3 places each flat filter of the top bands at one of the fixed places."""
    top = {f for band in zam_fit.TOP_BANDS for f in zam_starts.SHARES[band]}
    shelves = [f for f in top if FILTERS[f[1]][3] is None]
    assert len(shelves) <= len(zam_starts.SPARE_SHELVES)
    assert len(top) - len(shelves) <= len(zam_starts.SPARE_PEAKS)
