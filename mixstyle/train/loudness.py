"""The producer's loudness habit, read off all their mixes at once: how they bring a mix to its
level, and how loud.

Each song record carries what its mix bus did (``mixstyle.fit.bus.BusPrint``: loudness, peaks,
and how far the peaks were taken down against the console's unlimited bus). From all songs:

- **limiter / clipper**: the typical song was limited by ``LIMITS_DB`` or more. Their aim is the
  median loudness, reached on every new song through the limiter (the limiting allowed is the
  most any of their songs took, plus ``HEADROOM_FOR_NEW_DB`` for peakier songs), at their ceiling
  and with the release that reproduced their mixes (a clipper: the shortest). A sample-peak
  limiter or clipper lets the true peak rise above its ceiling: the render lets ours rise as far
  as their highest true peak, never past 0 dBTP (``true_peak_over_db``), so the new mix's
  peak-to-loudness ratio is theirs and not cut by a rule they did not follow.
- **peak normaliser**: no limiting, and the songs' peaks sit at one level: the level is the peak
  minus the song's crest factor. New songs stop where their true peak meets that ceiling.
- **headroom**: no limiting and the peaks wander below a limit: the loudness is the aim, as long
  as the peak stays under the highest peak they ever let through. Also a producer most of whose
  songs are peak-bound when ``AIM_SONGS`` of their loudest songs share one loudness (within
  ``AIM_MATCH_LU``): a loudness normaliser whose peak limit binds on most songs (a peak
  normaliser's loudest songs are each as loud as their own crest factor lets them be).

The ceiling is the highest sample peak of their mixes, never above their highest true peak nor
above 0 dBFS, and the render holds the true peak under it too (``dsp.render``); a limiter's or
clipper's true peak under their highest true peak instead (above the ceiling). A song whose
peak stopped it below the aim gets the aim as its training target (it was the peak, not a choice:
the render stops there again by itself).

``habit_from_records`` measures; ``with_habit`` writes the master targets of the training
records; the profile keeps the habit (``Profile.predict`` applies its ceiling, limiting and
release exactly, the network predicts the song's loudness).
"""

from __future__ import annotations

import copy
import math
from dataclasses import asdict, dataclass
from typing import Any, Sequence

import numpy as np

from dsp.params import MASTER, spec
from mixstyle.fit.bus import BusPrint
from mixstyle.train.records import SongRecord

LIMITS_DB = 1.0             # median limiting at which a producer counts as limiting
HEADROOM_FOR_NEW_DB = 3.0   # more limiting than they ever used, allowed on a peakier new song
PEAK_MATCH_DB = 0.2         # songs whose peaks sit this close to the highest are peak-bound
PEAK_SHARE = 0.5            # ... and a peak normaliser has at least this share of them
AIM_MATCH_LU = 0.1          # songs this close to the loudest one sit at one loudness ...
AIM_SONGS = 3               # ... and this many of them show an aim
CLIPS_PER_S = 20.0          # flat-topped samples per second that mark a clipper
MIN_SONGS = 3

MECHANISMS = ("headroom", "peak", "limiter", "clipper")


@dataclass(frozen=True)
class LoudnessHabit:
    """See the module docstring. Levels in LUFS/dBFS/dB, release in ms."""

    mechanism: str
    aim_lufs: float
    ceiling_db: float
    max_limiting_db: float
    release_ms: float
    limiting_db: float          # the median song's limiting
    songs: int
    true_peak_dbtp: float = 0.0  # their highest true peak (<= 0): no calibration goes above it
    true_peak_over_db: float = 0.0  # the render's true peak may rise this far over the ceiling

    def to_dict(self) -> dict[str, Any]:
        return {k: (round(v, 3) if isinstance(v, float) else v) for k, v in asdict(self).items()}

    @staticmethod
    def from_dict(data: Any) -> "LoudnessHabit | None":
        if not isinstance(data, dict):
            return None
        try:
            habit = LoudnessHabit(**data)
        except TypeError:
            return None
        return habit if habit.mechanism in MECHANISMS else None

    def describe(self) -> str:
        """One line for the model card."""
        how = {"headroom": "leaves headroom: the loudness is an aim, the peak stays under a limit",
               "peak": "normalises to a peak: the loudness follows each song's crest factor",
               "limiter": f"drives a limiter to a loudness aim (median {self.limiting_db:.1f} dB "
                          f"of limiting, release {self.release_ms:g} ms)",
               "clipper": f"clips to a loudness aim (median {self.limiting_db:.1f} dB taken "
                          f"off the peaks)"}[self.mechanism]
        held = ("true peak held under it" if self.true_peak_over_db <= 0 else
                f"true peak up to {self.ceiling_db + self.true_peak_over_db:.2f} dBTP, as "
                f"their limiting let it rise")
        return (f"{how}; aim {self.aim_lufs:.1f} LUFS, ceiling {self.ceiling_db:.2f} dBFS "
                f"({held}), at most {self.max_limiting_db:.1f} dB of limiting "
                f"on a new song; from {self.songs} songs")

    def master_values(self) -> dict[str, float]:
        """The master entries the habit fixes on every song."""
        return {"limiter_ceiling_db": self.ceiling_db, "max_limiting_db": self.max_limiting_db,
                "limiter_release_ms": self.release_ms,
                "true_peak_over_db": self.true_peak_over_db}


def _prints(records: Sequence[SongRecord]) -> list[BusPrint | None]:
    out = []
    for r in records:
        try:
            out.append(BusPrint.from_dict(r.bus_print) if r.bus_print else None)
        except TypeError:
            out.append(None)
    return out


def habit_from_records(records: Sequence[SongRecord]) -> LoudnessHabit | None:
    """The habit of the producer of ``records`` (None with fewer than ``MIN_SONGS`` measured)."""
    prints = [p for p in _prints(records) if p is not None and math.isfinite(p.loudness_lufs)]
    if len(prints) < MIN_SONGS:
        return None
    louds = np.array([p.loudness_lufs for p in prints])
    peaks = np.array([p.sample_peak_db for p in prints])
    tps = np.array([p.true_peak_dbtp for p in prints])
    limiting = np.array([p.limiting_db for p in prints])
    c = spec(MASTER, "limiter_ceiling_db")
    ceiling = float(np.clip(math.floor(min(peaks.max(), tps.max(), 0.0) * 100) / 100,
                            c.min, c.max))
    median_limiting = float(np.median(limiting))
    t = spec(MASTER, "target_lufs")
    r = spec(MASTER, "limiter_release_ms")
    if median_limiting >= LIMITS_DB:
        releases = [p.release_ms for p in prints if p.release_ms is not None]
        release = float(np.exp(np.median(np.log(releases)))) if releases else r.default
        clips = float(np.median([p.clipped_per_s for p in prints]))
        mechanism = "clipper" if clips >= CLIPS_PER_S else "limiter"
        cap = float(np.clip(limiting.max() + HEADROOM_FOR_NEW_DB, 0.0, 24.0))
        aim = float(np.median(louds))
        over = min(float(tps.max()), 0.0) - ceiling
    else:
        near = peaks >= peaks.max() - PEAK_MATCH_DB
        free = ~near
        # several songs at one loudness and none louder show an aim: a loudness normaliser
        # whose peak limit binds on most songs, not a peak normaliser
        aimed = int((louds >= louds.max() - AIM_MATCH_LU).sum()) >= AIM_SONGS
        mechanism = "peak" if near.mean() >= PEAK_SHARE and not aimed else "headroom"
        aim = float(np.median(louds[free])) if free.sum() >= 2 else \
            float(np.percentile(louds, 90))
        cap, release, over = 0.0, r.default, 0.0
    o = spec(MASTER, "true_peak_over_db")
    return LoudnessHabit(mechanism, round(float(np.clip(aim, t.min, t.max)), 3), ceiling,
                         round(cap, 3), round(float(np.clip(release, r.min, r.max)), 3),
                         round(median_limiting, 3), len(prints),
                         round(float(min(tps.max(), 0.0)), 3),
                         math.floor(float(np.clip(over, o.min, o.max)) * 100) / 100)


def with_habit(records: Sequence[SongRecord], habit: LoudnessHabit | None = None
               ) -> list[SongRecord]:
    """Copies of ``records`` whose master targets follow the habit (``habit_from_records`` if
    not given): the habit's ceiling, limiting and release on every song; the song's own loudness
    as its target, or the aim where the song's peak stopped it below the aim (a peak-bound song
    of a producer who does not limit). Without a habit (too few songs measured) the records'
    masters only get ``max_limiting_db`` 0: the render stops where the peak meets the ceiling."""
    out = [copy.deepcopy(r) for r in records]
    habit = habit if habit is not None else habit_from_records(records)
    if habit is None:
        for r in out:
            r.setting["master"]["max_limiting_db"] = 0.0
        return out
    prints = _prints(records)
    for r, p in zip(out, prints):
        m = r.setting["master"]
        m.update(habit.master_values())
        loud = m.get("target_lufs")
        if loud is None:
            continue
        peak_bound = p is not None and p.sample_peak_db >= habit.ceiling_db - PEAK_MATCH_DB
        if habit.mechanism in ("peak", "headroom") and peak_bound:
            m["target_lufs"] = max(float(loud), habit.aim_lufs)
    return out
