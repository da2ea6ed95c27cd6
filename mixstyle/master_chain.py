"""The mastering chain: input trim -> master EQ -> glue compressor (the master bus's arithmetic,
run for the whole file at once by ``dsp.offline``) -> gain -> brick-wall limiter
(``dsp.limiter``), for a loudness target and a true-peak ceiling.

The limiter holds *sample* peaks; what counts is the true peak (4x oversampled, BS.1770).
The limiter is scale-invariant -- gain and ceiling up by d dB puts the output up by exactly
d dB -- so only the *drive* (gain over ceiling) shapes the sound, and loudness and true peak of
any (gain, ceiling) follow from one limiter run at 0 dBFS. The search finds the least drive
whose true-peak-to-loudness ratio (PLR) fits under ``ceiling - target``, then scales that run
to the target: the loudness is exact, the true peak at most the ceiling, and the sample-peak
ceiling the limiter needed sits under the true-peak ceiling by the measured overshoot.
A PLR model fitted to each run lands most songs in one run (see ``bench/master_bench.py``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from dsp.eq import eq_sections
from dsp.errors import AudioInputError
from dsp.limiter import Limiter
from dsp.loudness import integrated_loudness, true_peak_dbtp
from dsp.offline import eq_and_loudness_into, glue_in_place
from dsp.params import MASTER, TRACK, spec, validate
from dsp.validate import check_audio, check_sample_rate

MAX_PASSES = 8               # limiter runs at most, searching the drive
MAX_DRIVE_DB = 30.0          # drive into the limiter at most, over where it starts to act
PLR_WINDOW_DB = 0.4          # the search aims half this under the true-peak ceiling
PLR_CURVE = 0.03             # typical bend of PLR vs drive (measured on demo mixes)
TYPICAL_OVERSHOOT_DB = 0.3   # true peak over sample peak assumed when not measured
EXTRA_DRIVE_DB = 0.75        # accepted drive beyond the least that meets the ceiling


@dataclass(frozen=True)
class MasterResult:
    """A mastered file and what the chain measured and decided (dB, LUFS, dBTP)."""

    audio: np.ndarray
    trim_db: float
    master_gain_db: float          # gain into the limiter
    limiter_ceiling_db: float      # the limiter's sample-peak ceiling that this gain needs
    input_lufs: float
    input_true_peak_dbtp: float
    loudness_lufs: float
    true_peak_dbtp: float
    glue_gain_reduction_db: float
    limiter_gain_reduction_db: float
    limiter_passes: int            # limiter runs to find the drive (0: no limiting needed)
    tp_overshoot_db: float         # true peak over the sample-peak ceiling (what it let through)


@dataclass(frozen=True)
class _Point:
    drive_db: float
    audio: np.ndarray
    lufs: float
    tp_dbtp: float
    gr_db: float

    @property
    def plr_db(self) -> float:
        return self.tp_dbtp - self.lufs


def _limited(pre: np.ndarray, gain_db: float, ceiling_db: float, params: Mapping[str, Any],
             sr: float) -> tuple[np.ndarray, float]:
    """``pre * gain`` through a fresh limiter, latency removed (contiguous)."""
    lim = Limiter(sr, ceiling_db, params["limiter_release_ms"], params["limiter_lookahead_ms"])
    lat, n = lim.latency_samples, pre.shape[1]
    buf = np.empty((2, n + lat), dtype=np.float32)
    buf[:, n:] = 0.0
    np.multiply(pre, 10.0 ** (gain_db / 20.0), out=buf[:, :n], casting="unsafe")
    lim.process_into(buf, buf)
    return np.ascontiguousarray(buf[:, lat:]), lim.gain_reduction_db


def _drive(pre: np.ndarray, drive_db: float, params: Mapping[str, Any], sr: float) -> _Point:
    out, gr = _limited(pre, drive_db, 0.0, params, sr)
    return _Point(drive_db, out, integrated_loudness(out, sr), true_peak_dbtp(out, sr), gr)


def _drive_for(drop_db: float, curve: float) -> float:
    """Drive over the limiter's start that lowers the PLR by ``drop_db`` when the PLR falls as
    ``d - curve * d^2`` (1:1 at first, then less: limiting also costs loudness); inf if that
    curve never gets there."""
    if drop_db <= 0.0:
        return 0.0
    if curve <= 1e-6:
        return drop_db
    disc = 1.0 - 4.0 * curve * drop_db
    return (1.0 - math.sqrt(disc)) / (2.0 * curve) if disc > 0 else math.inf


def _solve_drive(pre: np.ndarray, unlimited: _Point, start_db: float, plr_max_db: float,
                 params: Mapping[str, Any], sr: float) -> tuple[_Point, int]:
    """The least drive into the limiter (ceiling 0 dBFS) whose output's peak-to-loudness ratio
    (true peak - loudness) is at most ``plr_max_db``, give or take ``EXTRA_DRIVE_DB``.

    Up to ``start_db`` (the sample peak reaches the ceiling) the limiter does nothing; beyond,
    the PLR falls with drive d about as ``d - curve * d^2``, ``curve`` refitted to each point,
    or along the local slope past the model's reach; once a point above and one below bracket
    the goal (``PLR_WINDOW_DB / 2`` under the maximum), regula falsi. A point under the
    maximum is accepted when, by the local slope, it has at most ``EXTRA_DRIVE_DB`` more drive
    than needed.
    """
    plr0 = unlimited.plr_db
    goal = plr_max_db - PLR_WINDOW_DB / 2
    above = _Point(start_db, unlimited.audio, unlimited.lufs + start_db,
                   unlimited.tp_dbtp + start_db, 0.0)
    below: _Point | None = None
    curve, last, passes = PLR_CURVE, above, 0
    drive = start_db + min(_drive_for(plr0 - goal, curve), 0.5 / curve, MAX_DRIVE_DB)
    while passes < MAX_PASSES:
        passes += 1
        pt = _drive(pre, drive, params, sr)
        step = pt.drive_db - last.drive_db
        slope = (pt.plr_db - last.plr_db) / step if step != 0 else -1.0
        slope = min(max(slope, -1.0), -0.05)
        if pt.plr_db <= plr_max_db:
            below = pt if below is None or pt.drive_db < below.drive_db else below
            if (plr_max_db - pt.plr_db) / -slope <= EXTRA_DRIVE_DB:
                break
        elif pt.drive_db > above.drive_db:
            above = pt
        last = pt
        if below is not None:  # bracketed
            span = below.drive_db - above.drive_db
            if span < EXTRA_DRIVE_DB / 4:
                break
            frac = (above.plr_db - goal) / max(above.plr_db - below.plr_db, 1e-9)
            drive = above.drive_db + span * (min(max(frac, 0.1), 0.9) if frac < 1 else 0.5)
            continue
        d = pt.drive_db - start_db
        curve = min(max((pt.plr_db - plr0 + d) / (d * d), 0.0), 0.2) if d > 0 else curve
        drive = start_db + _drive_for(plr0 - goal, curve)
        if not drive > pt.drive_db + 0.01:  # past the model's reach: the local slope
            drive = pt.drive_db + (goal - pt.plr_db) / slope
        drive = min(drive, start_db + MAX_DRIVE_DB)
        if drive <= pt.drive_db + 0.01:
            break  # as much drive as allowed: the PLR will not come down further
    return (below if below is not None else pt), passes


def master_audio(audio: np.ndarray, sample_rate: float, params: Mapping[str, Any], *,
                 target_lufs: float | None = None, ceiling_dbtp: float | None = None,
                 trim_to_lufs: float | None = None) -> MasterResult:
    """Master ``audio`` (1 or 2, n) with the master section ``params``.

    ``target_lufs``/``ceiling_dbtp`` override ``params['target_lufs']`` and the true-peak
    ceiling (default ``params['limiter_ceiling_db']``); without a target, ``params['gain_db']``
    sets the level. ``trim_to_lufs`` (a profile's ``input_lufs``) trims the input first.

    The limiter is scale-invariant (gain and ceiling up by d dB = output up by d dB), so only
    the *drive* (gain over ceiling) shapes the sound: the least drive whose true-peak-to-loudness
    ratio fits under ``ceiling - target`` is searched with the limiter at 0 dBFS, then the
    result is scaled to the target: loudness exact, true peak at most the ceiling.
    """
    sr = check_sample_rate(sample_rate)
    x = check_audio(audio, "audio")
    if x.shape[0] == 1:
        x = np.repeat(x, 2, axis=0)
    elif x.shape[0] != 2:
        raise AudioInputError(f"audio has {x.shape[0]} channels: mastering takes mono or stereo")
    p = validate(MASTER, params, "master")
    target = p["target_lufs"] if target_lufs is None else \
        spec(MASTER, "target_lufs").check(target_lufs, "master target_lufs")
    ceiling = p["limiter_ceiling_db"] if ceiling_dbtp is None else \
        spec(MASTER, "limiter_ceiling_db").check(ceiling_dbtp, "master ceiling_dbtp")
    # the EQ (linear) runs before the trim is known, in the same pass as the input's loudness
    pre, in_lufs = eq_and_loudness_into(x, sr, eq_sections(MASTER, p, sr))
    if not math.isfinite(in_lufs):
        raise AudioInputError("audio is silent (below the -70 LUFS gate): nothing to master")
    in_tp = true_peak_dbtp(x, sr)
    trim_db = _trim_db(trim_to_lufs, in_lufs)
    peak, glue_gr = glue_in_place(pre, sr, trim_db, p)
    if peak <= 1e-10:
        raise AudioInputError("audio is silent after the master EQ: nothing to master")
    start = -20.0 * math.log10(peak)   # the drive at which the limiter starts to act
    # the unlimited chain, as a point of the search: ``pre`` itself (drive 0, no limiter).
    # Its true peak is measured only if the sample peak leaves the answer open.
    pre_lufs = integrated_loudness(pre, sr)
    pre_tp = -start + TYPICAL_OVERSHOOT_DB
    if target is None or -start - pre_lufs <= ceiling - target:
        pre_tp = true_peak_dbtp(pre, sr)
    unlimited = _Point(0.0, pre, pre_lufs, pre_tp, 0.0)
    passes, pt = 0, unlimited
    if target is None:  # the level comes from params['gain_db'] into a limiter at the ceiling
        pt = _drive(pre, p["gain_db"] - ceiling, p, sr)
        passes, target = 1, pt.lufs + ceiling
    if pt.plr_db > ceiling - target:
        pt, more = _solve_drive(pre, unlimited, start, ceiling - target, p, sr)
        passes += more
    scale_db = target - pt.lufs
    if pt.tp_dbtp + scale_db > ceiling:  # the search ran out: hold the true peak, lose loudness
        scale_db = ceiling - pt.tp_dbtp
    limited = pt is not unlimited
    out = pt.audio if limited else np.empty_like(pre)  # a limiter pass is ours to overwrite
    np.multiply(pt.audio, np.float32(10.0 ** (scale_db / 20.0)), out=out)
    tp = pt.tp_dbtp + scale_db
    return MasterResult(
        out, trim_db, master_gain_db=float(pt.drive_db + scale_db),
        limiter_ceiling_db=float(scale_db if limited else ceiling), input_lufs=float(in_lufs),
        input_true_peak_dbtp=float(in_tp), loudness_lufs=float(pt.lufs + scale_db),
        true_peak_dbtp=float(tp), glue_gain_reduction_db=glue_gr,
        limiter_gain_reduction_db=pt.gr_db, limiter_passes=passes,
        tp_overshoot_db=float(tp - 20.0 * math.log10(max(float(np.abs(out).max()), 1e-30))))


def _trim_db(to_lufs: float | None, input_lufs: float) -> float:
    """Input trim (dB, within the strip's input gain range) from ``input_lufs`` to ``to_lufs``."""
    if to_lufs is None or not math.isfinite(input_lufs):
        return 0.0
    g = spec(TRACK, "input_gain_db")
    return float(np.clip(float(to_lufs) - input_lufs, g.min, g.max))
