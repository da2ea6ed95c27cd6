"""What the studio measures: the waveform overview and the A/B loudness.

Before playing, one pass over every track in one-second chunks (never the whole song in memory):
the plain sum of all tracks gives the waveform overview (min/max per column); over an excerpt
(the middle ``excerpt_s`` seconds) the learned console, the plain console and the song's own mix
are metered (BS.1770 integrated loudness) so A/B can play them loudness-matched to the learned
mix.

While the producer edits, the learned mix's loudness moves (a fader up 3 dB, a louder master).
``Rematch`` measures it again over the same excerpt once the edits have rested, in a separate
process -- in the engine's process the measurement would hold the GIL the audio callback needs --
and the match gains of the plain sum and the mix follow, so the louder one never wins.
"""

from __future__ import annotations

import math
import multiprocessing
import os
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from dsp.console import Console
from dsp.errors import HostError
from dsp.loudness import LoudnessMeter
from dsp.params import ConsoleSetting, setting_from_dict, setting_to_dict
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
    ex0, ex1 = _excerpt(n, sr, excerpt_s)
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
                    # contiguous (a copy for a short block): the kernels' one compiled layout
                    y = np.ascontiguousarray(out[:, :b - a])
                    console.process_into(seg, y)
                    meters[name].process_into(y)
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


def _excerpt(length_frames: int, sample_rate: float, excerpt_s: float) -> tuple[int, int]:
    """The frames [start, end) of the middle ``excerpt_s`` seconds (``analyse``'s excerpt)."""
    n = max(1, int(length_frames))
    ex = min(n, int(excerpt_s * float(sample_rate)))
    ex0 = max(0, (n - ex) // 2)
    return ex0, ex0 + ex


def excerpt_lufs(tracks: Sequence[tuple[str, str, str]], sample_rate: float,
                 setting: dict, length_frames: int, excerpt_s: float = 30.0) -> float:
    """Integrated loudness of the console ``setting`` (its dict form) on the tracks
    ``(name, path, role)`` over the excerpt ``analyse`` meters: only the excerpt is read."""
    sr = float(sample_rate)
    ex0, ex1 = _excerpt(length_frames, sr, excerpt_s)
    console = Console(sr, setting_from_dict(setting, "A/B rematch"))
    meter = LoudnessMeter(sr)
    opened = [OpenedTrack(TrackSource(n, path=p, role=r), sr) for n, p, r in tracks]
    chunk = int(sr)
    stems = np.zeros((len(opened), 2, chunk), dtype=np.float32)
    out = np.zeros((2, chunk), dtype=np.float32)
    try:
        for pos in range(ex0, ex1, chunk):
            k = min(chunk, ex1 - pos)
            for t, o in enumerate(opened):
                o.read_into(pos, k, stems[t])
            y = np.ascontiguousarray(out[:, :k])   # the kernels' one compiled layout
            console.process_into(np.ascontiguousarray(stems[:, :, :k]), y)
            meter.process_into(y)
    finally:
        for o in opened:
            o.close()
    return float(meter.integrated_lufs)


def _rematch_worker(conn: Any, tracks: list[tuple[str, str, str]], sample_rate: float,
                    length_frames: int, excerpt_s: float) -> None:
    """The measuring process: one setting (dict) in, its excerpt loudness (LUFS) out, until the
    studio closes its end of the pipe -- or dies: the pipe then ends too, so this process never
    outlives the studio holding its output streams."""
    try:
        os.nice(10)   # below the studio's own threads when the machine is busy
    except OSError:
        pass
    try:
        while True:
            setting = conn.recv()
            try:
                lufs = excerpt_lufs(tracks, sample_rate, setting, length_frames, excerpt_s)
            except Exception as e:  # noqa: BLE001 - reported, the match stays as it was
                conn.send(("error", f"{type(e).__name__}: {e}"))
            else:
                conn.send(("lufs", lufs))
    except (EOFError, OSError, KeyboardInterrupt):
        pass


class Rematch:
    """Keeps the A/B loudness match current while the learned mix is edited.

    ``poll(key, setting)`` is called often (the studio's tick): ``key`` is any cheap value that
    changes with the learned console's effective values, ``setting()`` makes that setting. Once
    the key has differed from the one last measured and stayed unchanged for ``settle_s``, the
    setting's loudness is measured again (``excerpt_lufs``) in a measuring process the studio
    owns (a daemonic ``multiprocessing.Process``, ended by ``close``); a later ``poll`` returns
    the new match gains (source -> dB, relative to the learned mix) when the measurement is done,
    else None. Tracks in memory (no file) cannot be measured there: then it never measures."""

    def __init__(self, tracks: Sequence[TrackSource], sample_rate: float, length_frames: int,
                 analysis: Analysis, excerpt_s: float = 30.0,
                 settle_s: float = 1.0) -> None:
        self._tracks = [(t.name, t.path, t.role) for t in tracks]
        self._ok = all(t.path is not None for t in tracks) and "learned" in analysis.lufs
        self._sr, self._n, self._excerpt_s = float(sample_rate), int(length_frames), excerpt_s
        self._analysis = analysis
        self._settle_s = settle_s
        self._measured: Any = None   # the key analysis.lufs["learned"] is of (None: at start)
        self._seen: Any = None
        self._since = 0.0
        self._busy = False
        self._proc: Any = None
        self._conn: Any = None
        self.measurements = 0
        self.failure: str | None = None

    def poll(self, key: Any, setting: Callable[[], ConsoleSetting],
             now: float | None = None) -> dict[str, float] | None:
        if not self._ok:
            return None
        now = time.monotonic() if now is None else now
        if self._measured is None:      # the first key is that of the setting analysed
            self._measured = self._seen = key
        if key != self._seen:
            self._seen, self._since = key, now
        result = None
        if self._busy and self._conn is not None:
            try:
                reply = self._conn.recv() if self._conn.poll(0) else None
            except (EOFError, OSError) as e:
                reply = ("error", f"the measuring process ended: {e}")
                self._ok = False
            if reply is not None:
                self._busy = False
                if reply[0] == "lufs" and math.isfinite(reply[1]):
                    self.measurements += 1
                    result = self._apply(float(reply[1]))
                elif reply[0] == "error":
                    self.failure = str(reply[1])
        if (self._ok and not self._busy and self._seen != self._measured
                and now - self._since >= self._settle_s):
            self.start()
            self._measured = self._seen
            try:
                self._conn.send(setting_to_dict(setting()))
                self._busy = True
            except (OSError, ValueError) as e:
                self.failure, self._ok = f"the measuring process ended: {e}", False
        return result

    def start(self) -> "Rematch":
        """Start the measuring process now (before the engine plays: a process started later
        from the engine's, with its memory locked, would cost the audio thread a period)."""
        if self._ok and self._proc is None:
            ctx = multiprocessing.get_context("spawn")
            mine, theirs = ctx.Pipe()
            self._proc = ctx.Process(target=_rematch_worker, name="mixstyle-ab-rematch",
                                     args=(theirs, self._tracks, self._sr, self._n,
                                           self._excerpt_s), daemon=True)
            self._proc.start()
            theirs.close()   # only the child holds it now: its death ends our recv
            self._conn = mine   # it imports while the studio goes on; the first request waits
        return self

    def _apply(self, learned_lufs: float) -> dict[str, float]:
        a = self._analysis
        a.lufs["learned"] = learned_lufs
        for k, v in a.lufs.items():
            g = learned_lufs - v if math.isfinite(v) else 0.0
            a.gain_db[k] = float(np.clip(g, -MAX_MATCH_DB, MAX_MATCH_DB))
        return dict(a.gain_db)

    def close(self) -> None:
        """End the measuring process (closing the pipe ends its loop; terminate if busy)."""
        conn, self._conn = self._conn, None
        proc, self._proc = self._proc, None
        if conn is not None:
            conn.close()
        if proc is not None:
            proc.join(0.5)
            if proc.is_alive():
                proc.terminate()
                proc.join(2.0)
            if proc.is_alive():
                proc.kill()
                proc.join(2.0)
