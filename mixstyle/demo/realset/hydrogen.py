"""Hydrogen demo songs rendered with ``h2cli``: the song, each instrument alone as mixed, and each
instrument alone dry (its volume and gain 1, pan centre), over one section of the song.

Every render gets humanize off (Hydrogen draws new random timing/velocity per render, and the
stems would not add up to the mix) and loop off. Only the bars of the chosen section are
rendered -- a lead-in of bars for the ringing of earlier hits, then the section -- because
h2cli exports at about real time. The song's master volume is kept (one level common to every
render) unless the mix would clip h2cli's integer export: then it is halved in every render.
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import tempfile
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mixstyle.demo.realset.errors import RealSetToolError
from mixstyle.io.audio import read_audio

DEMO_SONGS = Path("/usr/share/hydrogen/data/demo_songs")
PACKAGES = "hydrogen hydrogen-data"
TICKS_PER_BEAT = 48
LEAD_IN_SECONDS = 5.0        # bars rendered before the section, for the ring of earlier hits
SAMPLE_RATE_HZ = 44100
CLIP_PEAK = 0.999


def check_h2cli(demo_dir: Path = DEMO_SONGS) -> str:
    exe = shutil.which("h2cli")
    if exe is None:
        raise RealSetToolError(f"the real set renders Hydrogen songs with 'h2cli': install the "
                               f"Debian packages '{PACKAGES}' (apt-get install {PACKAGES}, or "
                               f"scripts/setup.sh)")
    if not Path(demo_dir).is_dir():
        raise RealSetToolError(f"Hydrogen's demo songs are not in {demo_dir}: install the "
                               f"Debian package 'hydrogen-data'")
    return exe


@dataclass(frozen=True)
class Instrument:
    id: str
    name: str
    volume: float
    gain: float
    pan: float


@dataclass(frozen=True)
class H2Song:
    path: Path
    text: str
    name: str
    author: str
    bpm: float
    master_volume: float
    instruments: tuple[Instrument, ...]     # the ones that play in the whole song
    columns: tuple[tuple[str, ...], ...]    # pattern names of each bar of the song
    sizes: dict[str, int]                   # pattern name -> length in ticks
    plays: dict[str, frozenset[str]]        # pattern name -> instrument ids with notes

    def column_seconds(self, k: int) -> float:
        ticks = max([self.sizes.get(p, 192) for p in self.columns[k]] or [192])
        return ticks * 60.0 / (self.bpm * TICKS_PER_BEAT)


def _num(node: ET.Element, tag: str, default: float) -> float:
    text = node.findtext(tag)
    return float(text) if text not in (None, "") else default


def read_song(path: Path) -> H2Song:
    text = Path(path).read_text("utf-8")
    root = ET.fromstring(text.encode())
    sizes, plays = {}, {}
    for pat in root.iter("pattern"):
        name = pat.findtext("name") or ""
        sizes[name] = int(_num(pat, "size", 192))
        plays[name] = frozenset(n.findtext("instrument") or "" for n in pat.iter("note"))
    seq = root.find("patternSequence")
    columns = tuple(tuple(p.text or "" for p in g.findall("patternID"))
                    for g in (list(seq) if seq is not None else []))
    used = set().union(*(plays.get(p, frozenset()) for col in columns for p in col))
    insts = tuple(Instrument(i.findtext("id") or "", (i.findtext("name") or "").strip(),
                             _num(i, "volume", 1.0), _num(i, "gain", 1.0), _num(i, "pan", 0.0))
                  for i in root.iter("instrument") if i.find("name") is not None
                  and i.findtext("id") in used)
    return H2Song(Path(path), text, root.findtext("name") or Path(path).stem,
                  (root.findtext("author") or "").strip(), _num(root, "bpm", 120.0),
                  _num(root, "volume", 1.0), insts, columns, sizes, plays)


@dataclass(frozen=True)
class Section:
    first: int          # first bar rendered (lead-in included)
    start: int          # first bar of the section
    stop: int           # one past its last bar
    lead_seconds: float
    seconds: float


def choose_section(song: H2Song, seconds: float) -> Section:
    """The bars where the most instruments play (instrument-bars summed over ``seconds``), the
    earliest of equals; then as many bars before it as make ``LEAD_IN_SECONDS``."""
    n = len(song.columns)
    if n == 0:
        raise RealSetToolError(f"Hydrogen song '{song.path}' has no bars in its song sequence")
    count = [len(set().union(*(song.plays.get(p, frozenset()) for p in col)))
             for col in song.columns]
    best = (-1, 0, n)
    for a in range(n):
        t, b = 0.0, a
        while b < n and t < seconds - 1e-9:
            t += song.column_seconds(b)
            b += 1
        score = sum(count[a:b])
        if score > best[0]:
            best = (score, a, b)
    _, a, b = best
    first, lead = a, 0.0
    while first > 0 and lead < LEAD_IN_SECONDS:
        first -= 1
        lead += song.column_seconds(first)
    length = sum(song.column_seconds(k) for k in range(a, b))
    return Section(first, a, b, lead, min(seconds, length))


def variant(song: H2Song, section: Section, solo: str | None, dry: bool,
            master_scale: float) -> str:
    """The song text for one render: humanize and loop off, the section's bars only, every
    instrument but ``solo`` muted; ``dry``: the solo instrument at volume 1, gain 1, pan 0."""
    root = ET.fromstring(song.text.encode())
    for tag, value in (("humanize_time", "0"), ("humanize_velocity", "0"),
                       ("loopEnabled", "false"), ("mode", "song")):
        node = root.find(tag)
        if node is not None:
            node.text = value
    vol = root.find("volume")
    if vol is not None:
        vol.text = repr(song.master_volume * master_scale)
    seq = root.find("patternSequence")
    if seq is not None:
        groups = list(seq)
        for g in groups:
            seq.remove(g)
        for g in groups[section.first:section.stop]:
            seq.append(g)
    for inst in root.find("instrumentList").iter("instrument"):  # type: ignore[union-attr]
        soloed = inst.find("isSoloed")
        if soloed is not None:
            soloed.text = "false"
        if solo is None:
            continue
        mine = inst.findtext("id") == solo
        muted = inst.find("isMuted")
        if muted is not None:
            muted.text = "false" if mine else "true"
        if dry and mine:
            for tag, value in (("volume", "1"), ("gain", "1"), ("pan", "0")):
                node = inst.find(tag)
                if node is not None:
                    node.text = value
    return ET.tostring(root, encoding="unicode")


def _render_one(exe: str, text: str, work: Path, name: str) -> np.ndarray:
    folder = work / name
    folder.mkdir(parents=True, exist_ok=True)
    song_path, out = folder / "song.h2song", folder / "out.wav"
    song_path.write_text(text, "utf-8")
    res = subprocess.run([exe, "-s", str(song_path), "-o", str(out), "-r",
                          str(SAMPLE_RATE_HZ), "-b", "32"], env=dict(os.environ, HOME=str(folder)),
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                         timeout=3600, check=False)
    if res.returncode != 0 or not out.is_file():
        tail = "\n".join(res.stdout.strip().splitlines()[-4:])
        raise RealSetToolError(f"h2cli failed (exit {res.returncode}) on {name}: {tail}")
    audio, rate = read_audio(out)
    if rate != SAMPLE_RATE_HZ:
        raise RealSetToolError(f"h2cli wrote {rate:g} Hz for {name}, asked {SAMPLE_RATE_HZ}")
    return audio


@dataclass
class H2Renders:
    mix: np.ndarray
    mixed: dict[str, np.ndarray]    # instrument id -> alone, as mixed
    dry: dict[str, np.ndarray]      # instrument id -> alone, dry
    master_scale: float


def render_song(song: H2Song, section: Section, jobs: int = 8) -> H2Renders:
    """Every render of the section, cut to it (the lead-in dropped), zero-padded to one length."""
    exe = check_h2cli(song.path.parent)
    with tempfile.TemporaryDirectory(prefix="mixstyle-h2-") as tmp:
        work = Path(tmp)
        scale = 1.0
        mix = _render_one(exe, variant(song, section, None, False, scale), work, "mix")
        if np.max(np.abs(mix)) >= CLIP_PEAK:
            scale = 0.5
            mix = _render_one(exe, variant(song, section, None, False, scale), work, "mix-half")
        tasks = [(i.id, dry) for i in song.instruments for dry in (False, True)]

        def one(task: tuple[str, bool]) -> np.ndarray:
            iid, dry = task
            return _render_one(exe, variant(song, section, iid, dry, scale), work,
                               f"{'dry' if dry else 'mixed'}-{iid}")

        with ThreadPoolExecutor(max(1, jobs)) as pool:
            outs = list(pool.map(one, tasks))
    a = int(round(section.lead_seconds * SAMPLE_RATE_HZ))
    n = int(math.floor(section.seconds * SAMPLE_RATE_HZ))

    def cut(x: np.ndarray) -> np.ndarray:
        y = np.zeros((2, n), np.float32)
        part = x[:, a:a + n]
        y[:, :part.shape[1]] = part
        return y

    mixed = {t[0]: cut(x) for t, x in zip(tasks, outs) if not t[1]}
    dry = {t[0]: cut(x) for t, x in zip(tasks, outs) if t[1]}
    return H2Renders(cut(mix), mixed, dry, scale)
