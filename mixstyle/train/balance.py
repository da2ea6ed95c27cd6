"""Track balance as loudness: each track's level in the mix, in LU relative to the mix bus.

A producer sets a fader by ear: the vocal sits so loud against the band, whatever the EQ or the
compressor did to the vocal's level on the way. So the profile does not learn fader positions
(which trade off against make-up gain, EQ gains and the stem's own level, and so are ill-defined
in a recovered setting); it learns where each track *sits*:

- ``level_lu``: integrated loudness (BS.1770) of the track's output (after its whole strip, pan
  included) minus the loudness of the mix bus (all tracks summed, before the master);
- ``bus_lufs``: the loudness of that mix bus (the master bus's compressor works against it).

From a recovered setting (``track_levels``) these are measured on the song; to mix new stems
(``output_gains``), each strip is run once with its fader at 0 dB and the fader is set so the
track lands at ``bus_lufs + level_lu``. ``torch_loudness`` is the same measure in torch, with
gradients, for training through the differentiable console.
"""

from __future__ import annotations

import math
from typing import Mapping, Sequence

import numpy as np
import torch

from dsp.loudness import integrated_loudness, k_weighting_coeffs
from dsp.params import MASTER, TRACK, ConsoleSetting, ParamSpec, spec, validate
from dsp.render import RenderResult, post_fader_gains, prefader_strips, render_prefader
from dsp.strip import ChannelStrip

LEVEL = ParamSpec(TRACK, "level_lu", "LU", -50.0, 6.0, "lin", -10.0, None, "model", "level_lu",
                  "track loudness minus mix-bus loudness")
BUS = ParamSpec(MASTER, "bus_lufs", "LUFS", -60.0, 0.0, "lin", -20.0, None, "model", "bus_lufs",
                "loudness of the summed tracks before the master bus")
PAN_SIDE = ParamSpec(TRACK, "pan_side", "", -1.0, 1.0, "lin", 0.0, None, "model", "pan_side",
                     "which side the producer puts the track on, -1 left .. +1 right; near 0: "
                     "no habit")
SIDE_HABIT = 0.5   # |pan_side| from which the learned side is used
SILENT = -70.0   # BS.1770's absolute gate: quieter than this is silence
_GAIN = spec(TRACK, "output_gain_db")
PREFADER = "prefader"   # a memo's entries that hold a strip's output (``memo_strips``)


def _lufs(x: np.ndarray, sample_rate: float) -> float:
    v = integrated_loudness(np.ascontiguousarray(x, dtype=np.float32), sample_rate)
    return v if math.isfinite(v) and v > SILENT else -math.inf


def _strip_out(stem: np.ndarray, sample_rate: float, params: Mapping[str, float]) -> np.ndarray:
    return ChannelStrip(sample_rate, params, channels=stem.shape[0]).process(
        np.ascontiguousarray(stem, dtype=np.float32), sample_rate)


def strip_loudness(stems: np.ndarray, sample_rate: float,
                   tracks: Sequence[Mapping[str, float]],
                   memo: dict[tuple, object] | None = None) -> np.ndarray:
    """Loudness (LUFS, -inf when silent) of each stem through its strip as set. ``memo``: a
    dict kept between calls on these same stems (one per song), so that a strip set as before
    is not run again (a held-out song mixed at several strengths). With a memo each strip runs
    with its fader at 0 dB and its pan centred, the fader and pan applied after it
    (``dsp.render.render_prefader``'s way, the same loudness to float32 rounding), and its
    output is kept for ``memo_strips``; without one (the training's staging) each runs as set,
    as it always did, so that the training's numbers do not move by that rounding."""
    out = []
    for i, (s, p) in enumerate(zip(stems, tracks)):
        if memo is None:
            out.append(_lufs(_strip_out(s, sample_rate, p), sample_rate))
            continue
        key = (i, s.shape, tuple(sorted(p.items())))
        if key in memo:
            out.append(memo[key])
            continue
        pre_key = (PREFADER, i, s.shape, prefader_key(validate(TRACK, p)))
        y = memo.get(pre_key)
        if y is None:
            y = memo[pre_key] = _strip_out(s, sample_rate, dict(p, output_gain_db=0.0, pan=0.0))
        value = memo[key] = _lufs(np.stack([y[c] * g for c, g in enumerate(post_fader_gains(p))]),
                                  sample_rate)
        out.append(value)
    return np.array(out)


def prefader_key(params: Mapping[str, float]) -> tuple:
    """What a strip's output with its fader at 0 dB and its pan centred depends on: its
    setting without those two."""
    return tuple(sorted((k, v) for k, v in params.items() if k not in ("output_gain_db", "pan")))


def memo_strips(memo: dict | None, shapes: Sequence[tuple], tracks: Sequence[Mapping[str, float]]
                ) -> np.ndarray | None:
    """The strips ``strip_loudness`` ran for these ``tracks`` (validated settings, stems of
    ``shapes``), faders at 0 dB and pans centred, as ``(N, 2, n)`` for
    ``dsp.render.render_prefader``; None unless every one is in ``memo``."""
    if memo is None:
        return None
    got = [memo.get((PREFADER, i, shape, prefader_key(p)))
           for i, (shape, p) in enumerate(zip(shapes, tracks))]
    return None if any(y is None for y in got) else np.stack(got)


def mix_predicted(stems: np.ndarray | Sequence[np.ndarray], sample_rate: float,
                  setting: ConsoleSetting, memo: dict | None) -> RenderResult:
    """``dsp.render.render`` of a prediction's ``setting`` for ``stems``, mixed from the strips
    its faders were set with (``memo_strips``, the prediction's memo) where they are the
    setting's, else from its strips run now (the same mix to float32 rounding)."""
    strips = memo_strips(memo, [s.shape for s in stems], [t.params for t in setting.tracks])
    if strips is None:
        strips = prefader_strips(stems if isinstance(stems, np.ndarray) else np.stack(stems),
                                 sample_rate, setting)
    return render_prefader(strips, sample_rate, setting)


def strip_loudness_change_db(stem: np.ndarray, sample_rate: float,
                             before: Mapping[str, float], after: Mapping[str, float]) -> float:
    """How much louder (LU) ``stem`` comes out of its strip set as ``after`` than as ``before``
    (0 where either is silent)."""
    now = _lufs(_strip_out(stem, sample_rate, after), sample_rate)
    was = _lufs(_strip_out(stem, sample_rate, before), sample_rate)
    return float(now - was) if math.isfinite(now) and math.isfinite(was) else 0.0


def track_levels(stems: np.ndarray, sample_rate: float, tracks: Sequence[Mapping[str, float]]
                 ) -> tuple[list[float | None], float | None]:
    """Measure ``(level_lu per track, bus_lufs)`` of a setting on ``stems (N, C, n)``.
    A silent track's level (or a silent bus) is None: it teaches nothing about balance."""
    outs = [_strip_out(s, sample_rate, p) for s, p in zip(stems, tracks)]
    bus = _lufs(np.sum(outs, axis=0), sample_rate)
    if not math.isfinite(bus):
        return [None] * len(outs), None
    levels: list[float | None] = []
    for y in outs:
        v = _lufs(y, sample_rate)
        levels.append(float(np.clip(v - bus, LEVEL.min, LEVEL.max)) if math.isfinite(v)
                      else None)
    return levels, float(np.clip(bus, BUS.min, BUS.max))


def output_gains(stems: np.ndarray, sample_rate: float, tracks: Sequence[Mapping[str, float]],
                 levels: Sequence[float], bus_lufs: float,
                 memo: dict[tuple, float] | None = None) -> list[float]:
    """Faders (dB, within the table's range) that put each track at ``bus_lufs + level``:
    its strip runs once with the fader at 0 dB and the fader makes up the difference. A track
    that is silent through its strip keeps 0 dB. ``memo``: as for ``strip_loudness``."""
    at_unity = strip_loudness(stems, sample_rate,
                              [dict(p, output_gain_db=0.0) for p in tracks], memo)
    return [float(np.clip(bus_lufs + level - v, _GAIN.min, _GAIN.max)) if math.isfinite(v)
            else 0.0 for level, v in zip(levels, at_unity)]


def plain_levels(stems: np.ndarray, sample_rate: float) -> list[float]:
    """Each stem's level (LU re their sum) in the plain sum, the stems summed as they are: the
    balance of a producer who leaves every fader at unity. A silent stem (or sum) gives -inf."""
    bus = _lufs(np.sum(stems, axis=0), sample_rate)
    return [_lufs(s, sample_rate) - bus if math.isfinite(bus) else -math.inf for s in stems]


def assign_sides(spread: Sequence[float], side: Sequence[float], levels: Sequence[float]
                 ) -> list[float]:
    """Signed pans from each track's predicted spread (``|pan|``) and side habit.

    A producer's pan *width* per kind of track is a style; which side a part goes to is often
    decided per song. Tracks whose side is a habit (``|side| >= SIDE_HABIT``) keep it; the
    others are placed loudest first on the side that holds less panned loudness so far, so the
    image stays balanced (ties go left). Loudest is counted in whole dB, earlier track first
    among equals: a tenth of a dB (the same stems resampled) must not swap two parts' sides.
    """
    pans = [0.0] * len(spread)
    weight = [0.0, 0.0]  # panned power on the left, right
    order = sorted(range(len(spread)), key=lambda i: (-round(float(levels[i])), i))
    for i in order:
        m = abs(float(spread[i]))
        if abs(side[i]) >= SIDE_HABIT:
            sign = 1.0 if side[i] > 0 else -1.0
        else:
            sign = -1.0 if weight[0] <= weight[1] else 1.0
        pans[i] = sign * m
        weight[0 if sign < 0 else 1] += m * 10.0 ** (levels[i] / 10.0)
    return pans


# ------------------------------------------------------------------------------ torch measure

BLOCK_S, HOP_S = 0.4, 0.1   # BS.1770 gating blocks


def torch_loudness(x: torch.Tensor, sample_rate: float) -> torch.Tensor:
    """Integrated loudness (LUFS) of ``x (batch, channels, n)`` -> (batch,), differentiable.

    K-weighting, 400 ms blocks with 75 % overlap, absolute (-70 LUFS) and relative (-10 LU)
    gates as BS.1770; the gates are decided without gradient, the level keeps it. Excerpts
    shorter than one block are measured as one block.
    """
    from mixstyle.twin.console import _filter  # the twin's differentiable biquad cascade
    batch, channels, n = x.shape
    coefs = torch.from_numpy(k_weighting_coeffs(sample_rate)).to(x.dtype)
    y = _filter(x, coefs[None].expand(batch, *coefs.shape), "numba")
    power = (y * y).sum(dim=1)                                       # channel weights 1
    block = max(1, min(n, int(round(BLOCK_S * sample_rate))))
    hop = max(1, int(round(HOP_S * sample_rate)))
    blocks = power.unfold(1, block, hop).mean(dim=2)                  # (batch, blocks)
    with torch.no_grad():
        db = -0.691 + 10.0 * torch.log10(blocks.clamp_min(1e-20))
        keep = db > SILENT
        first = (blocks * keep).sum(1) / keep.sum(1).clamp_min(1)
        rel = -0.691 + 10.0 * torch.log10(first.clamp_min(1e-20)) - 10.0
        keep = keep & (db > rel[:, None])
        keep = torch.where(keep.any(dim=1, keepdim=True), keep, torch.ones_like(keep))
    mean = (blocks * keep).sum(1) / keep.sum(1)
    return -0.691 + 10.0 * torch.log10(mean.clamp_min(1e-20))
