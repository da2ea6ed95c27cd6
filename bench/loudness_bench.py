"""Benchmarks of the meters and the limiter: ``run() -> list[dict]``.

Rows: integrated loudness of 5 min stereo 48 kHz against pyloudnorm (target >= 10x faster),
true peak and full-meter throughput, limiter throughput against pedalboard's Limiter.
Numba kernels are warmed up first; every timing is the best of 3.
"""

from __future__ import annotations

import time
from typing import Any, Callable

import numpy as np

from dsp import loudness
from dsp.limiter import Limiter

SR = 48000
SECONDS = 300.0


def _best_of(fn: Callable[[], Any], repeats: int = 3) -> tuple[float, Any]:
    best, result = float("inf"), None
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t0)
    return best, result


def _program(seconds: float) -> np.ndarray:
    """Stereo noise with a slow loudness envelope and some quiet passages (exercises gating)."""
    rng = np.random.default_rng(0)
    n = int(seconds * SR)
    t = np.arange(n) / SR
    env = 0.05 * (1.2 + np.sin(2 * np.pi * 0.05 * t)) * (np.sin(2 * np.pi * 0.01 * t) > -0.8)
    return (rng.standard_normal((2, n)) * env).astype(np.float32)


def _row(name: str, ours: float, reference: float | None, ratio: float | None, target: str,
         unit: str, note: str) -> dict[str, Any]:
    return {"name": name, "ours": ours, "reference": reference, "ratio": ratio,
            "target": target, "unit": unit, "note": note}


def _metered_in_blocks(x: np.ndarray, block: int) -> loudness.LoudnessMeter:
    m = loudness.LoudnessMeter(SR, 2)
    for i in range(0, x.shape[1], block):
        m.process_into(np.ascontiguousarray(x[:, i:i + block]))
    return m


def run() -> list[dict[str, Any]]:
    x = _program(SECONDS)
    warm = x[:, : SR * 2]
    loudness.integrated_loudness(warm, SR)  # compile/load numba caches outside the timings
    loudness.true_peak_dbtp(warm, SR)
    Limiter(SR).process(warm, SR)
    rows = []

    t_ours, lufs = _best_of(lambda: loudness.integrated_loudness(x, SR))
    try:
        import pyloudnorm

        xt = x.T.astype(np.float64)
        meter = pyloudnorm.Meter(SR)
        t_ref, ref = _best_of(lambda: meter.integrated_loudness(xt))
        rows.append(_row("integrated loudness, 5 min stereo 48 kHz", t_ours, t_ref,
                         t_ref / t_ours, ">= 10x faster", "s",
                         f"ours {lufs:.3f} LUFS, pyloudnorm {ref:.3f} LUFS "
                         f"(diff {lufs - ref:+.3f} LU: pyloudnorm approximates K-weighting "
                         f"with RBJ biquads)"))
    except ImportError:
        rows.append(_row("integrated loudness, 5 min stereo 48 kHz", t_ours, None, None,
                         ">= 10x faster", "s", "pyloudnorm not installed: no reference"))

    t_tp, tp = _best_of(lambda: loudness.true_peak_dbtp(x, SR))
    rows.append(_row("true peak (4x, 32 taps/phase), 5 min stereo", SECONDS / t_tp, None, None,
                     ">= 100x real time", "x real time", f"{tp:.2f} dBTP in {t_tp:.3f} s"))

    t_meter, m = _best_of(lambda: _metered_in_blocks(x, 512), repeats=1)
    rows.append(_row("LoudnessMeter, 512-sample blocks (all measures)", SECONDS / t_meter, None,
                     None, ">= 100x real time", "x real time",
                     f"I {m.integrated_lufs:.2f} LUFS, LRA {m.loudness_range_lu:.1f} LU"))

    loud = x * np.float32(12.0)  # drive it hard: the limiter works all the time
    lim = Limiter(SR, ceiling_db=-1.0, release_ms=50.0, lookahead_ms=5.0)
    t_lim, y = _best_of(lambda: (lim.reset(), lim.process(loud, SR))[1])
    note = f"peak out {20 * np.log10(np.abs(y).max()):.3f} dBFS (ceiling -1)"
    try:
        import pedalboard

        pb = pedalboard.Limiter(threshold_db=-1.0, release_ms=50.0)
        t_pb, _ = _best_of(lambda: pb.process(loud, SR, reset=True))
        rows.append(_row("limiter throughput, 5 min stereo 48 kHz", SECONDS / t_lim,
                         SECONDS / t_pb, t_pb / t_lim, ">= 100x real time", "x real time",
                         note + "; reference pedalboard.Limiter (no lookahead, not brick-wall)"))
    except ImportError:
        rows.append(_row("limiter throughput, 5 min stereo 48 kHz", SECONDS / t_lim, None, None,
                         ">= 100x real time", "x real time", note))
    return rows


if __name__ == "__main__":  # the same table as `make bench BENCH=loudness`
    import run
    run.main(["loudness"])
