"""What the producer's mix bus did to the level: read off one past song's mix, next to the
console's own unlimited bus for the fitted strips.

A producer brings a mix to its level in one of a few ways: they leave headroom (the level is
wherever the faders put it), they normalise it to a peak, they drive a limiter to a loudness
target, or they clip it. The mix alone cannot tell a loud dense song from a limited one; the
fitted strips can: the fit put their sum (no limiting, no master) at the mix's level, so where
the mix was limited the sum's loudest peaks stand above the mix's. That difference in the
loudest tenth of the short windows is the limiting the bus did (``limiting_db``, about 0 for a
mix only turned up or down; reverb, delay or other energy the console cannot make fills the
level between the transients and leaves it near 0, where a comparison of peak-to-loudness
ratios would read it as limiting). Where it took something, the limiter release that best
reproduces the mix's short-window peak-to-level profile from the unlimited bus says how it was
taken (a clipper shows as the shortest release and as flat runs of samples at the peak).

``measure_bus`` is the per-song measurement (run in the fit worker, kept in the song record);
``mixstyle.train.loudness`` reads the producer's habit off all songs' measurements.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from dsp.loudness import integrated_loudness, true_and_sample_peak_db
from dsp.params import MASTER, TRACK, ConsoleSetting, TrackSetting, neutral, spec, validate
from dsp.render import bus_before_limiter, render

RELEASES_MS = (1.0, 3.0, 10.0, 30.0, 100.0, 300.0, 1000.0)
WINDOW_S = 0.4                 # the short windows whose peak-to-level ratio is compared
ACTIVE_DB = 20.0               # windows this far under the loudest one are not compared
LIMITED_DB = 1.0               # below this much limiting the release is not measured
RELEASE_TIE = 0.05             # a release within 5 % of the best profile error ties with it
CLIP_RUN = 3                   # consecutive samples at the peak that make a clipped top
TOP_SHARE = 10                 # the loudest 1/TOP_SHARE of the windows show the limiting


@dataclass(frozen=True)
class BusPrint:
    """One song's level mechanism (dB, LUFS, ms); see the module docstring."""

    loudness_lufs: float        # the producer's mix, integrated
    sample_peak_db: float
    true_peak_dbtp: float
    plr_db: float               # true peak - loudness of the mix
    crest_db: float             # sample peak - RMS of the mix
    bus_plr_db: float           # true peak - loudness of the console's unlimited bus
    limiting_db: float          # how far the mix's loudest peaks sit under the fitted bus's
    clipped_per_s: float        # samples per second in flat runs at the mix's peak
    release_ms: float | None    # limiter release that best reproduces the mix (None: unlimited)

    def to_dict(self) -> dict[str, Any]:
        return {k: (None if v is None else round(float(v), 3)) for k, v in asdict(self).items()}

    @staticmethod
    def from_dict(data: dict[str, Any]) -> "BusPrint":
        return BusPrint(**data)


def _db(x: float) -> float:
    return 20.0 * math.log10(x) if x > 0 else -math.inf


def _windows(audio: np.ndarray, sample_rate: float) -> np.ndarray:
    """|audio| (2, n) cut into whole ``WINDOW_S`` windows: (channels, windows, samples)."""
    hop = max(1, int(WINDOW_S * sample_rate))
    frames = audio.shape[1] // hop
    return np.abs(audio[:, :frames * hop].astype(np.float64)).reshape(audio.shape[0], frames, hop)


def window_plr(audio: np.ndarray, sample_rate: float) -> np.ndarray:
    """Peak minus RMS (dB) of each active ``WINDOW_S`` window of ``audio`` (2, n)."""
    x = _windows(audio, sample_rate)
    if x.shape[1] == 0:
        return np.zeros(0)
    peak = x.max(axis=(0, 2))
    rms = np.sqrt((x * x).mean(axis=(0, 2)))
    ok = rms > 0
    if not ok.any():
        return np.zeros(0)
    level = 20 * np.log10(np.where(ok, rms, 1e-30))
    active = ok & (level >= level.max() - ACTIVE_DB)
    return 20 * np.log10(peak[active] / rms[active])


def window_peaks_db(audio: np.ndarray, sample_rate: float) -> np.ndarray:
    """Sample peak (dBFS) of each ``WINDOW_S`` window of ``audio`` (2, n) (the whole of a
    shorter one)."""
    x = _windows(audio, sample_rate)
    if x.shape[1] == 0:
        x = np.abs(audio.astype(np.float64))[:, None, :]
    return 20 * np.log10(np.maximum(x.max(axis=(0, 2)), 1e-9))


def peak_reduction_db(bus: np.ndarray, mix: np.ndarray, sample_rate: float) -> float:
    """How far the mix's peaks sit under the fitted bus's in the loudest tenth of the windows
    (by the bus's peak): the fit put the bus at the mix's level, so an unlimited mix shows 0
    there, reverb or other energy the console cannot make included (it fills the level between
    transients, not the peaks), and a limited one the depth of its limiting."""
    pb, pm = window_peaks_db(bus, sample_rate), window_peaks_db(mix, sample_rate)
    n = min(len(pb), len(pm))
    pb, pm = pb[:n], pm[:n]
    top = np.argsort(-pb, kind="stable")[:max(1, n // TOP_SHARE)]
    return float(np.mean(pb[top] - pm[top]))


def clipped_per_second(audio: np.ndarray, sample_rate: float) -> float:
    """Samples per second that sit in runs of ``CLIP_RUN`` or more at the peak (within 0.01 dB):
    the flat tops a clipper leaves (a limiter's output touches its ceiling in single samples)."""
    a = np.abs(audio.astype(np.float64))
    top = float(a.max()) if a.size else 0.0
    if top <= 0:
        return 0.0
    total = 0
    for ch in a:
        at = ch >= top * 10 ** (-0.01 / 20)
        if not at.any():
            continue
        edges = np.diff(np.concatenate(([0], at.astype(np.int8), [0])))
        starts, stops = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
        runs = stops - starts
        total += int(runs[runs >= CLIP_RUN].sum())
    return total / (a.shape[1] / sample_rate)


def _through_limiter(bus: np.ndarray, sample_rate: float, target_lufs: float,
                     ceiling_db: float, release_ms: float) -> np.ndarray:
    """``bus`` brought to ``target_lufs`` through the console's limiter (as the render does)."""
    t, c = spec(MASTER, "target_lufs"), spec(MASTER, "limiter_ceiling_db")
    master = dict(neutral(MASTER), target_lufs=float(np.clip(target_lufs, t.min, t.max)),
                  limiter_ceiling_db=float(np.clip(ceiling_db, c.min, c.max)),
                  limiter_release_ms=release_ms, max_limiting_db=24.0)
    one = ConsoleSetting((TrackSetting("bus", validate(TRACK, {})),), validate(MASTER, master))
    return render(bus[None], sample_rate, one).audio


def best_release(bus: np.ndarray, mix: np.ndarray, sample_rate: float, loudness: float,
                 ceiling_db: float) -> float:
    """The release (of ``RELEASES_MS``) whose limiting of ``bus`` comes closest to ``mix``'s
    short-window peak-to-level profile; among those within ``RELEASE_TIE`` of the best, the
    one nearest the table's default (50 ms) -- a tie cannot flip on rounding."""
    want = window_plr(mix, sample_rate)
    errors = []
    for r in RELEASES_MS:
        got = window_plr(_through_limiter(bus, sample_rate, loudness, ceiling_db, r), sample_rate)
        n = min(len(got), len(want))
        errors.append(float(np.mean(np.abs(got[:n] - want[:n]))) if n else math.inf)
    best = min(errors)
    if not math.isfinite(best):
        return spec(MASTER, "limiter_release_ms").default
    tied = [r for r, e in zip(RELEASES_MS, errors) if e <= best * (1 + RELEASE_TIE) + 1e-9]
    default = spec(MASTER, "limiter_release_ms").default
    return min(tied, key=lambda r: abs(math.log(r / default)))


def measure_bus(stems: np.ndarray, sample_rate: float, setting: ConsoleSetting,
                mix: np.ndarray) -> BusPrint | None:
    """The level mechanism of one song: ``stems`` (N, 2, n) as loaded, ``setting`` the fit
    (its master is not used: the console's bus is measured unlimited), ``mix`` (2, n) the
    producer's. None for a silent mix or bus."""
    loud = integrated_loudness(mix, sample_rate)
    if not math.isfinite(loud):
        return None
    tp, sp = true_and_sample_peak_db(mix, sample_rate)
    rms = math.sqrt(float(np.mean(np.square(mix, dtype=np.float64))))
    plain = ConsoleSetting(setting.tracks, validate(MASTER, {}))
    bus = bus_before_limiter(stems, sample_rate, plain)
    bus_loud = integrated_loudness(bus, sample_rate)
    if not math.isfinite(bus_loud):
        return None
    bus_tp, _ = true_and_sample_peak_db(bus, sample_rate)
    plr, bus_plr = tp - loud, bus_tp - bus_loud
    limiting = peak_reduction_db(bus, mix, sample_rate)
    release = None
    if limiting >= LIMITED_DB:
        release = best_release(bus, mix, sample_rate, loud, sp)
    return BusPrint(loud, sp, tp, plr, sp - _db(rms), bus_plr, limiting,
                    clipped_per_second(mix, sample_rate), release)
