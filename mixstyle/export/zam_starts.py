"""Where the ZamEQ2 fit (``zam_fit``) starts: which ZamEQ2 filters build each of our bands
(``SHARES``), the analytic mapping (``start``), several fixed starts per shelf and pass filter
(the fit has local minima), and the fixed places where flat spare filters join steps 2 and 3.
All are fixed lists, never random: the same input gives the same starts on every machine."""

from __future__ import annotations

from typing import Mapping, Sequence

from mixstyle.export.zam_eq2 import (EQ_FLAT, FILTERS, ZAM_FREQ_MAX_HZ, ZAM_FREQ_MIN_HZ,
                                     ZAM_GAIN_MIN_DB, zam_bandwidth)

INSTANCES = ("A", "B", "C", "D")
PASS_INSTANCES = ("E", "F")  # only when the strip's high- or low-pass is active
NEAR_FLAT_DB = 0.01     # start of a corrector filter (0 dB exactly would be a flat spot)

# a band's share: (instance index, filter key) pairs
SHARES = {"low_shelf": ((0, "l"), (1, "l"), (2, "l"), (0, "1"), (0, "2")),
          "high_shelf": ((0, "h"), (1, "h"), (2, "h"), (1, "1"), (1, "2")),
          "peak1": ((2, "1"),), "peak2": ((2, "2"),),
          "peak3": ((3, "1"), (3, "h"), (3, "2")),
          "hpf": ((4, "l"), (5, "l"), (4, "1")),
          "lpf": ((4, "h"), (5, "h"), (4, "2"), (5, "1"), (5, "2"))}
PASS_BANDS = ("hpf", "lpf")
# shelf starts: (corner ratio, gain share) of the three shelves, then the two peaks' gain share
SHELF_STARTS = (((1.0, 0.34), (1.0, 0.33), (1.0, 0.33), 0.0, 0.0),
                ((0.6, 0.3), (1.0, 0.4), (1.7, 0.3), 0.03, -0.03),
                ((0.6, 0.3), (1.0, 0.4), (1.7, 0.3), -0.03, 0.03),
                ((0.5, 0.5), (1.4, 0.3), (2.5, 0.2), 0.05, -0.05))
# pass filter starts: per shelf (its poles' frequency / the cutoff, share of the stopband
# depth), then per peak (anchor: the cutoff or ZamEQ2's top frequency, ratio to it, gain dB)
F0 = NEAR_FLAT_DB
HPF_STARTS = ((((1.0, 0.5), (0.5, 0.5)), (("cut", 1.0, F0),)),
              (((1.0, 0.6), (0.3, 0.4)), (("cut", 1.0, F0),)))
LPF_STARTS = (
    (((1.0, 0.5), (2.0, 0.5)), (("cut", 1.0, F0), ("top", 1.0, -F0), ("top", 0.5, -F0))),
    (((0.7, 0.5), (1.5, 0.5)), (("cut", 1.0, F0), ("top", 1.0, -3.0), ("cut", 1.5, -F0))),
    (((1.0, 0.6), (4.0, 0.4)), (("cut", 1.0, F0), ("top", 1.0, -F0), ("top", 0.5, -F0))),
    (((1.0, 0.7), (8.0, 0.3)), (("cut", 1.0, F0), ("top", 1.0, -6.0), ("top", 0.7, -3.0))))

# flat top filters join step 3 here, in turn: shelves at these x ZamEQ2's top, peaks at
# (frequency x top, bw); as many as the top bands have (6 high shelves, 8 peaks)
SPARE_SHELVES = (1.0, 0.71, 0.5, 0.84, 0.6, 0.42)
SPARE_PEAKS = ((1.0, 1.0), (0.8, 2.0), (1.0, 3.0), (0.63, 1.0), (0.8, 1.0), (1.0, 2.0),
               (0.5, 2.0), (0.71, 3.0))
SPREAD_SHELVES_HZ, SPREAD_PEAKS_HZ, SPREAD_BW = 60.0, 30.0, 1.5  # step 2's spare filters


def start(bands: Mapping[str, Mapping[str, float]], input_gain_db: float,
           sr: float) -> list[dict[str, float]]:
    """The analytic mapping: a shelf as three shelves of a third of the gain at its corner,
    peaks at the same centre and gain with ``bw`` from the half-gain edges; correctors flat.
    With a pass filter in ``bands``, instances E and F (flat) follow A..D."""
    fmax = min(ZAM_FREQ_MAX_HZ, 0.45 * sr)
    insts = [dict(EQ_FLAT, master=input_gain_db / len(INSTANCES)) for _ in INSTANCES]
    if any(band in bands for band in PASS_BANDS):
        insts += [dict(EQ_FLAT) for _ in PASS_INSTANCES]
    ls, hs = bands["low_shelf"], bands["high_shelf"]
    for i in (0, 1, 2):
        insts[i].update(boostl=ls["gain"] / 3, fl=clamp(ls["freq"], sr),
                        boosth=hs["gain"] / 3, fh=clamp(hs["freq"], sr))
    for i, band in ((0, ls), (1, hs)):  # the shelves' corner correctors
        insts[i].update(boost1=NEAR_FLAT_DB, f1=clamp(band["freq"] / 1.5, sr), bw1=2.0,
                        boost2=NEAR_FLAT_DB, f2=clamp(band["freq"] * 1.5, sr), bw2=2.0)
    for (i, slot), band in (((2, "1"), "peak1"), ((2, "2"), "peak2"), ((3, "1"), "peak3")):
        b = bands[band]
        f = clamp(b["freq"], sr)
        insts[i].update({f"boost{slot}": b["gain"], f"f{slot}": f,
                         f"bw{slot}": zam_bandwidth(f, b["q"], sr)})
    insts[3].update(boosth=NEAR_FLAT_DB, fh=fmax, boost2=NEAR_FLAT_DB, f2=fmax, bw2=1.0)
    return insts


def clamp(f: float, sr: float) -> float:
    return min(max(f, ZAM_FREQ_MIN_HZ), ZAM_FREQ_MAX_HZ, 0.45 * sr)


def shelf_starts(insts: list[dict[str, float]], band: str, b: Mapping[str, float],
                  sr: float) -> list[list[dict[str, float]]]:
    """Several starts for a shelf's five filters (the fit has local minima)."""
    fk, gk = ("fl", "boostl") if band == "low_shelf" else ("fh", "boosth")
    first = 0 if band == "low_shelf" else 1
    out = []
    for shelves_and_peaks in SHELF_STARTS:
        v = [dict(u) for u in insts]
        for i, (ratio, share) in enumerate(shelves_and_peaks[:3]):
            v[i][fk], v[i][gk] = clamp(b["freq"] * ratio, sr), b["gain"] * share
        for slot, share in zip("12", shelves_and_peaks[3:]):
            v[first][f"boost{slot}"] = b["gain"] * share or NEAR_FLAT_DB
        out.append(v)
    return out


def pass_starts(insts: list[dict[str, float]], band: str, b: Mapping[str, float],
                 depth_db: float, sr: float) -> list[list[dict[str, float]]]:
    """Starts for a pass filter's shelves (poles near the cutoff, ``depth_db`` the stopband's
    deepest point on the grid, shared out) and peaks (the corner; the top end)."""
    high = band == "lpf"
    fk, gk = ("fh", "boosth") if high else ("fl", "boostl")
    top = min(ZAM_FREQ_MAX_HZ, 0.45 * sr)
    shelves = [(i, k) for i, k in SHARES[band] if k in "lh"]
    peaks = [(i, k) for i, k in SHARES[band] if k in "12"]
    out = []
    for shelf_starts, peak_starts in (LPF_STARTS if high else HPF_STARTS):
        v = [dict(u) for u in insts]
        for (i, _), (ratio, share) in zip(shelves, shelf_starts):
            gain = max(min(depth_db * share, -NEAR_FLAT_DB), ZAM_GAIN_MIN_DB)
            half = 10.0 ** (gain / 80.0)  # a cut shelf's poles sit at corner / half (low)
            corner = b["freq"] * ratio * (1.0 / half if high else half)  # or corner * half
            v[i][fk], v[i][gk] = clamp(corner, sr), gain
        for (i, slot), (anchor, ratio, gain) in zip(peaks, peak_starts):
            f = ratio * (b["freq"] if anchor == "cut" else top)
            v[i].update({f"f{slot}": clamp(f, sr), f"boost{slot}": gain, f"bw{slot}": 1.0})
        out.append(v)
    return out


def in_use(insts: list[dict[str, float]],
            filters: Sequence[tuple[int, str]]) -> list[tuple[int, str]]:
    """The filters not at 0 dB (a flat filter's frequency and width are free: left out)."""
    return [(i, key) for i, key in filters if insts[i][FILTERS[key][2]] != 0.0]


def flat(insts: list[dict[str, float]],
          filters: Sequence[tuple[int, str]]) -> list[tuple[int, str]]:
    """The filters at 0 dB among ``filters``."""
    return [(i, key) for i, key in filters if insts[i][FILTERS[key][2]] == 0.0]


def placed(insts: list[dict[str, float]], spare: Sequence[tuple[int, str]],
            shelves: Sequence[float], peaks: Sequence[tuple[float, float]]
            ) -> list[dict[str, float]]:
    """``insts`` with the flat filters ``spare`` nearly flat at fixed places: shelves at the
    frequencies ``shelves``, peaks at the (frequency, bw) ``peaks``, each in turn."""
    out = [dict(u) for u in insts]
    shelf_places, peak_places = iter(shelves), iter(peaks)
    for i, key in spare:
        kind, fk, gk, bk = FILTERS[key]
        if bk:
            f, bw = next(peak_places)
            out[i].update({fk: f, gk: NEAR_FLAT_DB, bk: bw})
        else:
            out[i].update({fk: next(shelf_places), gk: NEAR_FLAT_DB})
    return out


def spread(spare: Sequence[tuple[int, str]],
            sr: float) -> tuple[list[float], list[tuple[float, float]]]:
    """Places across the range for step 2's spare filters: shelves log-spaced over
    ``SPREAD_SHELVES_HZ`` .. ZamEQ2's top, peaks over ``SPREAD_PEAKS_HZ`` .. top (bw
    ``SPREAD_BW``)."""
    top = min(ZAM_FREQ_MAX_HZ, 0.45 * sr)
    n_peaks = sum(1 for _, key in spare if FILTERS[key][3])
    n_shelves = len(spare) - n_peaks
    shelves = [SPREAD_SHELVES_HZ * (top / SPREAD_SHELVES_HZ) ** ((k + 0.5) / n_shelves)
               for k in range(n_shelves)]
    peaks = [(SPREAD_PEAKS_HZ * (top / SPREAD_PEAKS_HZ) ** ((k + 0.5) / n_peaks), SPREAD_BW)
             for k in range(n_peaks)]
    return shelves, peaks


def near_top(sr: float) -> tuple[list[float], list[tuple[float, float]]]:
    """Places near ZamEQ2's top for step 3's spare filters (``SPARE_SHELVES``,
    ``SPARE_PEAKS``)."""
    top = min(ZAM_FREQ_MAX_HZ, 0.45 * sr)
    return ([top * ratio for ratio in SPARE_SHELVES],
            [(top * ratio, bw) for ratio, bw in SPARE_PEAKS])
