"""One tracker module -> the author's mix and each track alone, as mixed and dry, over the
section where the most tracks play.

Tracks are the module's instruments (its samples when it has none); where those do not add up
to the mix (an instrument's notes can change another's, e.g. through shared channel effects) the
module's channels are used instead. Random swing is off in every render, the mix included.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from mixstyle.demo.realset import openmpt
from mixstyle.demo.realset.excerpt import (BLOCK_SECONDS, Checked, Track, antiphase,
                                           check_tracks, choose_window, fade)
from mixstyle.demo.realset.modfields import no_swing, reset_mix_fields

SR = openmpt.SAMPLE_RATE_HZ
ACTIVITY_RATE_HZ = SR // 4       # the activity map's renders: a quarter of the work
MAX_SONG_SECONDS = 600.0


@dataclass
class Rendered:
    """A song ready to write (or the reason it is not)."""

    mix: np.ndarray | None
    tracks: list[Track]
    meta: dict = field(default_factory=dict)
    skip: str = ""


def _section(data: bytes, count: int, by: str, seconds: float) -> tuple[int, int, int]:
    """(start frame, stop frame, song frames) of the section where the most tracks play."""
    block = int(BLOCK_SECONDS * ACTIVITY_RATE_HZ)
    most = int(MAX_SONG_SECONDS * ACTIVITY_RATE_HZ)
    rows = [openmpt.block_energy(data, most, block, k, by, ACTIVITY_RATE_HZ)
            for k in range(count)]
    width = max(len(r) for r, _ in rows)
    energy = np.zeros((len(rows), width))
    for k, (r, _) in enumerate(rows):
        energy[k, :len(r)] = r
    scale = SR // ACTIVITY_RATE_HZ
    song = max(n for _, n in rows) * scale
    want = int(round(seconds * SR))
    if song <= want:
        return 0, song, song
    start = choose_window(energy, int(round(seconds / BLOCK_SECONDS))) * block * scale
    start = min(start, max(0, song - want))
    return start, start + want, song


def _tracks(data: bytes, by: str, count: int, a: int, b: int) -> list[Track]:
    return [Track(k, "", fade(openmpt.render(data, b, k, by, start_frame=a), SR))
            for k in range(count)]


def render_module(raw: bytes, name: str, seconds: float, min_seconds: float) -> Rendered:
    data, swing = no_swing(raw)
    dry_data, resets = reset_mix_fields(data)
    with openmpt.Module(data, name) as m:
        info = m.info()
    meta = {"format": info.kind, "title": info.title, "author": info.artist or None,
            "tracker": info.tracker, "song_seconds": round(info.duration_seconds, 3),
            "renderer": f"libopenmpt {openmpt.library_version()} (float, {SR} Hz, default "
                        f"interpolation, no limiter)",
            "changed_in_every_render": swing,
            "dry_reset": resets + ["stereo separation 0 % in the dry renders (every source "
                                   "centred, L == R)"]}
    tried: list[str] = []
    section: tuple[int, int, int] | None = None
    for by, count in (("instrument", len(info.instrument_names)), ("channel", info.channels)):
        if count == 0:
            continue
        # the section is chosen once, on the first kind of track (the same music either way)
        a, b, song = section = section or _section(data, count, by, seconds)
        if b - a < min_seconds * SR:
            return Rendered(None, [], meta, f"{song / SR:.1f} s long, under "
                                            f"{min_seconds:g} s")
        mix = fade(openmpt.render(data, b, start_frame=a), SR)
        b = a + mix.shape[1]
        if antiphase(mix):
            return Rendered(None, [], meta, antiphase(mix))
        checked: Checked = check_tracks(mix, _tracks(data, by, count, a, b))
        label = ("sample" if info.by_samples else "instrument") if by == "instrument" else by
        tried.append(f"{label}s: residual {checked.residual_db:.1f} dB")
        if not checked.ok:
            continue
        if len(checked.kept) < 2:
            return Rendered(None, [], meta, f"only {len(checked.kept)} audible "
                                            f"{label} in the section, nothing to mix")
        for t in checked.kept:
            t.raw_name = info.instrument_names[t.index] if by == "instrument" else ""
            t.dry = fade(openmpt.render(dry_data, b, t.index, by, dry=True, start_frame=a), SR)
        meta.update({"tracks_are": label + "s", "residual_db": round(checked.residual_db, 1),
                     "start_seconds": round(a / SR, 3), "seconds": round((b - a) / SR, 3),
                     "dropped_near_silent": [d.index + 1 for d in checked.dropped]})
        return Rendered(mix, checked.kept, meta)
    return Rendered(None, [], meta, f"the tracks do not add up to the mix "
                                    f"({'; '.join(tried)}; needs <= -60 dB)")
