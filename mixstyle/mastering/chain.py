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

Each try is a full limiter pass plus loudness and true-peak measurements, so the tries are
aimed with ``dsp.limiter_model`` (the limited loudness for any drive, predicted from one pass
over the limiter's input, within a few hundredths of an LU): the first try assumes a typical
true-peak overshoot, later ones the overshoot and loudness error measured so far. Most songs
need one limiter pass (``limiter_passes`` in the report; ``bench/master_bench.py``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from dsp.eq import eq_sections
from dsp.errors import AudioInputError
from dsp.limiter import Limiter
from dsp.limiter_model import LimiterModel
from dsp.loudness import integrated_loudness, true_and_sample_peak_db, true_peak_dbtp
from dsp.offline import eq_and_loudness_into, glue_in_place
from dsp.params import MASTER, TRACK, spec, validate
from dsp.validate import check_audio, check_sample_rate

MAX_PASSES = 8               # limiter runs at most, searching the drive
MAX_DRIVE_DB = 30.0          # drive into the limiter at most, over where it starts to act
TYPICAL_OVERSHOOT_DB = 0.45  # true peak over the limiter's ceiling assumed until measured
EXTRA_DRIVE_DB = 0.75        # accepted drive beyond the least that meets the ceiling
DRIVE_TOL_DB = 0.02          # how closely the model's drive is solved


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
    sp_db: float          # sample peak

    @property
    def plr_db(self) -> float:
        return self.tp_dbtp - self.lufs


def _limited(pre: np.ndarray, gain_db: float, ceiling_db: float, params: Mapping[str, Any],
             sr: float) -> tuple[np.ndarray, float]:
    """``pre * gain`` through a fresh limiter, latency removed (a new contiguous array).

    The limiter streams, so the input goes in two calls: the first ``latency`` samples (their
    output is the lookahead's silence, thrown away), then the rest followed by ``latency``
    zeros, whose output is the answer in place -- the same stream as one call over input and
    zeros, without copying the song out of a longer buffer."""
    lim = Limiter(sr, ceiling_db, params["limiter_release_ms"], params["limiter_lookahead_ms"])
    lat, n = lim.latency_samples, pre.shape[1]
    gain = 10.0 ** (gain_db / 20.0)
    head = np.zeros((2, lat), dtype=np.float32)
    m = min(n, lat)
    np.multiply(pre[:, :m], gain, out=head[:, :m], casting="unsafe")
    lim.process_into(head, head)
    head_gr = lim.gain_reduction_db  # of the gains computed while the lookahead filled
    out = np.empty((2, n), dtype=np.float32)
    rest = max(n - lat, 0)
    np.multiply(pre[:, lat:], gain, out=out[:, :rest], casting="unsafe")
    out[:, rest:] = 0.0
    lim.process_into(out, out)
    return out, max(head_gr, lim.gain_reduction_db)


def _drive(pre: np.ndarray, drive_db: float, params: Mapping[str, Any], sr: float) -> _Point:
    out, gr = _limited(pre, drive_db, 0.0, params, sr)
    tp, sp = true_and_sample_peak_db(out, sr)
    return _Point(drive_db, out, integrated_loudness(out, sr), tp, gr, sp)


class _Aim:
    """Predicted PLR of a try at drive d: the measured (or typical) true peak over the 0 dBFS
    ceiling minus the modelled loudness, corrected by the last try's loudness error."""

    def __init__(self, model: LimiterModel) -> None:
        self.model = model
        self.tp_db = TYPICAL_OVERSHOOT_DB
        self.offset_db = 0.0

    def plr_db(self, drive_db: float) -> float:
        return self.tp_db - self.model.lufs(drive_db) - self.offset_db

    def learn(self, pt: _Point) -> None:
        self.tp_db = pt.tp_dbtp
        self.offset_db = pt.lufs - self.model.lufs(pt.drive_db)

    def slope(self, drive_db: float) -> float:
        """dPLR/d(drive), between -1 (no loudness lost to the limiter) and -0.05."""
        d = 0.25
        s = (self.plr_db(drive_db + d) - self.plr_db(drive_db - d)) / (2 * d)
        return min(max(s, -1.0), -0.05)

    def drive_for(self, goal_db: float, lo: float, hi: float) -> float:
        """Drive in [lo, hi] whose predicted PLR is ``goal_db`` (regula falsi; the PLR falls
        with drive), or the end of the range that comes closest."""
        f_lo, f_hi = self.plr_db(lo) - goal_db, self.plr_db(hi) - goal_db
        if f_lo <= 0.0:
            return lo
        if f_hi >= 0.0:
            return hi
        for _ in range(40):
            d = hi - f_hi * (hi - lo) / (f_hi - f_lo)
            f = self.plr_db(d) - goal_db
            if abs(f) < DRIVE_TOL_DB / 2 or hi - lo < DRIVE_TOL_DB:
                return d
            if f > 0.0:
                lo, f_lo = d, f
                f_hi *= 0.5 if f_hi < 0 else 1.0  # Illinois: keep both ends moving
            else:
                hi, f_hi = d, f
                f_lo *= 0.5
        return d


def _solve_drive(pre: np.ndarray, model: LimiterModel, plr_max_db: float,
                 params: Mapping[str, Any], sr: float) -> tuple[_Point, int]:
    """The least drive into the limiter (ceiling 0 dBFS) whose output's peak-to-loudness ratio
    (true peak - loudness) is at most ``plr_max_db``, give or take ``EXTRA_DRIVE_DB``.

    Every try aims, with the model, at the middle of the accepted drives (the least one plus
    half of ``EXTRA_DRIVE_DB``); a try over the limit raises the lower end of the drive range,
    one under it lowers the upper end, and its measured true peak and loudness error steer the
    next aim.
    """
    aim = _Aim(model)
    lo, hi = -model.peak_db, -model.peak_db + MAX_DRIVE_DB
    below: _Point | None = None
    pt: _Point | None = None
    passes = 0
    while passes < MAX_PASSES and hi - lo > DRIVE_TOL_DB:
        least = aim.drive_for(plr_max_db, lo, hi)
        drive = min(max(least + 0.5 * EXTRA_DRIVE_DB, lo), hi)
        if pt is not None and abs(drive - pt.drive_db) < DRIVE_TOL_DB:
            break  # the aim would repeat the last try
        pt = _drive(pre, drive, params, sr)
        passes += 1
        aim.learn(pt)
        if pt.plr_db <= plr_max_db:
            below = pt if below is None or pt.drive_db < below.drive_db else below
            hi = min(hi, pt.drive_db)
            if (plr_max_db - pt.plr_db) / -aim.slope(pt.drive_db) <= EXTRA_DRIVE_DB:
                break
        else:
            lo = max(lo, pt.drive_db)
    if pt is None:  # no room to search: as much drive as allowed
        pt = _drive(pre, hi, params, sr)
        passes += 1
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
    # the limiter model measures ``pre`` (loudness, block peaks) in one pass
    model = LimiterModel(pre, sr, p["limiter_release_ms"], p["limiter_lookahead_ms"])
    pre_sp = 20.0 * math.log10(peak)
    # the unlimited chain, as a point of the search: ``pre`` itself (drive 0, no limiter).
    # Its true peak is measured only if the sample peak leaves the answer open.
    pre_tp = pre_sp + TYPICAL_OVERSHOOT_DB
    if target is None or pre_sp - model.lufs_unlimited <= ceiling - target:
        pre_tp = true_peak_dbtp(pre, sr)
    unlimited = _Point(0.0, pre, model.lufs_unlimited, pre_tp, 0.0, pre_sp)
    passes, pt = 0, unlimited
    if target is None:  # the level comes from params['gain_db'] into a limiter at the ceiling
        pt = _drive(pre, p["gain_db"] - ceiling, p, sr)
        passes, target = 1, pt.lufs + ceiling
    if pt.plr_db > ceiling - target:
        pt, more = _solve_drive(pre, model, ceiling - target, p, sr)
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
        tp_overshoot_db=float(pt.tp_dbtp - pt.sp_db))


def _trim_db(to_lufs: float | None, input_lufs: float) -> float:
    """Input trim (dB, within the strip's input gain range) from ``input_lufs`` to ``to_lufs``."""
    if to_lufs is None or not math.isfinite(input_lufs):
        return 0.0
    g = spec(TRACK, "input_gain_db")
    return float(np.clip(float(to_lufs) - input_lufs, g.min, g.max))
