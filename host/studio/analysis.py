"""What the studio measures once, before playing: the waveform overview and the A/B loudness.

One pass over every track in one-second chunks (never the whole song in memory): the plain sum
of all tracks gives the waveform overview (min/max per column); over an excerpt (the middle
``excerpt_s`` seconds) the learned console, the plain console and the song's own mix are metered
(BS.1770 integrated loudness) so A/B can play them loudness-matched to the learned mix.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from dsp.console import Console
from dsp.errors import HostError
from dsp.loudness import LoudnessMeter
from dsp.params import ConsoleSetting
from host.reader import OpenedTrack, TrackSource

AUDIO_EXTENSIONS = (".wav", ".flac", ".aiff", ".aif", ".mp3", ".ogg")
MAX_MATCH_DB = 24.0  # a loudness-match gain is never larger than this


@dataclass
class Analysis:
    waveform: list[list[float]] = field(default_factory=list)  # [[min, max], ...] plain sum
    lufs: dict[str, float] = field(default_factory=dict)       # source -> integrated LUFS
    gain_db: dict[str, float] = field(default_factory=dict)    # source -> match gain


def find_mix(song_dir: str, stems_dir: str) -> str | None:
    """The song folder's own mix (``mix.<audio ext>``), if there is exactly one; never a stem."""
    if os.path.abspath(song_dir) == os.path.abspath(stems_dir) or not os.path.isdir(song_dir):
        return None
    found = sorted(f for f in os.listdir(song_dir)
                   if os.path.splitext(f)[0].lower() == "mix"
                   and os.path.splitext(f)[1].lower() in AUDIO_EXTENSIONS
                   and os.path.isfile(os.path.join(song_dir, f)))
    if len(found) > 1:
        raise HostError(f"song folder {song_dir!r} has more than one mix: {found}; keep one")
    return os.path.join(song_dir, found[0]) if found else None


def read_whole(path: str, sample_rate: float) -> np.ndarray:
    """A file as (2, frames) float32 at ``sample_rate`` (mono duplicated)."""
    t = OpenedTrack(TrackSource("mix", path=path), sample_rate)
    try:
        out = np.zeros((2, t.frames), dtype=np.float32)
        t.read_into(0, t.frames, out)
    finally:
        t.close()
    return out


def analyse(sources: Sequence[TrackSource], sample_rate: float, learned: ConsoleSetting,
            plain: ConsoleSetting | None, mix: np.ndarray | None, length_frames: int,
            excerpt_s: float = 30.0, columns: int = 1000) -> Analysis:
    """Waveform of the plain sum, loudness of learned/plain/mix over the middle excerpt."""
    sr = float(sample_rate)
    n = max(1, int(length_frames))
    ex = min(n, int(excerpt_s * sr))
    ex0 = max(0, (n - ex) // 2)
    ex1 = ex0 + ex
    chunk = int(sr)
    opened = [OpenedTrack(s, sr) for s in sources]
    consoles = {"learned": Console(sr, learned)}
    if plain is not None:
        consoles["plain"] = Console(sr, plain)
    meters = {k: LoudnessMeter(sr) for k in list(consoles) + (["mix"] if mix is not None else [])}
    cols = max(1, min(columns, n))
    edges = np.linspace(0, n, cols + 1).astype(np.int64)
    wmin = np.zeros(cols, dtype=np.float32)
    wmax = np.zeros(cols, dtype=np.float32)
    stems = np.zeros((len(opened), 2, chunk), dtype=np.float32)
    out = np.zeros((2, chunk), dtype=np.float32)
    try:
        for pos in range(0, n, chunk):
            k = min(chunk, n - pos)
            for t, o in enumerate(opened):
                o.read_into(pos, k, stems[t])
            x = stems[:, :, :k]
            mono = x.sum(axis=0).mean(axis=0)
            c0 = int(np.searchsorted(edges, pos, side="right")) - 1
            c1 = int(np.searchsorted(edges, pos + k, side="left"))
            for c in range(max(0, c0), min(cols, c1)):
                a, b = max(edges[c], pos) - pos, min(edges[c + 1], pos + k) - pos
                if b > a:
                    seg = mono[a:b]
                    lo, hi = float(seg.min()), float(seg.max())
                    if edges[c] >= pos:  # first chunk touching this column
                        wmin[c], wmax[c] = lo, hi
                    else:
                        wmin[c], wmax[c] = min(wmin[c], lo), max(wmax[c], hi)
            a, b = max(pos, ex0), min(pos + k, ex1)
            if b > a:
                seg = np.ascontiguousarray(x[:, :, a - pos:b - pos])
                for name, console in consoles.items():
                    y = out[:, :b - a]
                    console.process_into(seg, y)
                    meters[name].process_into(np.ascontiguousarray(y))
                if mix is not None:
                    lat = consoles["learned"].latency_samples
                    m = np.zeros((2, b - a), dtype=np.float32)
                    take = mix[:, max(0, a - lat):max(0, b - lat)]
                    m[:, (b - a) - take.shape[1]:] = take
                    meters["mix"].process_into(m)
    finally:
        for o in opened:
            o.close()
    lufs = {k: float(m.integrated_lufs) for k, m in meters.items()}
    ref = lufs["learned"]
    gain = {}
    for k, v in lufs.items():
        g = ref - v if math.isfinite(ref) and math.isfinite(v) else 0.0
        gain[k] = float(np.clip(g, -MAX_MATCH_DB, MAX_MATCH_DB))
    return Analysis(waveform=[[round(float(a), 4), round(float(b), 4)]
                              for a, b in zip(wmin, wmax)], lufs=lufs, gain_db=gain)
