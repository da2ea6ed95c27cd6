"""Demo multitrack songs: MMA grooves + a generated melody, one fluidsynth render per part.

``make_song(out_dir, seed)`` writes ``out_dir/stems/*.wav`` (dry, stereo float32, 44.1 kHz,
``seconds`` long, tails faded) and ``out_dir/source/`` (the .mma file, the MIDI files and
``song.json`` describing the song). The same seed gives the same files.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import mido
import numpy as np

from dsp.errors import MixstyleError, ParameterError
from mixstyle.demo import _midi
from mixstyle.io.audio import read_audio, write_audio_atomic
from mixstyle.demo.styles import (LEAD_REGISTERS, MAJOR_KEYS, MINOR_KEYS, STEM_ROLES, STYLES,
                                  Style, slot_of_program, stem_name_of)

SOUNDFONT = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")
SAMPLE_RATE_HZ = 44100
MAX_STEMS = 8
KICK_NOTES = frozenset({35, 36})
SNARE_NOTES = frozenset({37, 38, 39, 40})
PERCUSSION_NOTES = frozenset(range(60, 82))     # bongos, congas, timbales, shakers, claves...
MIN_DRUM_PART_NOTES = 4
STEM_PEAK_DBFS = (-14.0, -4.0)                  # "recording levels" of the delivered stems
SILENT_PEAK_DBFS = -60.0
_TOOLS = (("mma", "mma"), ("fluidsynth", "fluidsynth"))


class DemoToolError(MixstyleError):
    """A program the demo generator needs (mma, fluidsynth, the GM soundfont) is missing/failed."""


def check_tools(soundfont: Path = SOUNDFONT) -> None:
    """Raise DemoToolError naming the Debian package to install when a tool is missing."""
    for exe, package in _TOOLS:
        if shutil.which(exe) is None:
            raise DemoToolError(f"the demo song generator needs the '{exe}' program: install "
                                f"the Debian package '{package}' (apt-get install {package})")
    if not Path(soundfont).is_file():
        raise DemoToolError(f"the demo song generator needs the General MIDI soundfont "
                            f"{soundfont}: install the Debian package 'fluid-soundfont-gm'")


def tools_missing() -> str:
    """Why the demo generator cannot run here (names the Debian package), or '' when it can."""
    try:
        check_tools()
    except DemoToolError as exc:
        return str(exc)
    return ""


@dataclass(frozen=True)
class SongPlan:
    style: str
    tempo_bpm: int
    key_pc: int
    minor: bool
    bars: tuple[tuple[str, tuple[_midi.Chord, ...]], ...]   # (groove, chords of the bar)

    @property
    def key_name(self) -> str:
        return _midi.NOTE_NAMES[self.key_pc] + (" minor" if self.minor else " major")


def plan_song(rng: np.random.Generator, style: Style, seconds: float) -> SongPlan:
    """Tempo, key and a verse/chorus chord chart long enough for ``seconds`` plus one bar."""
    tempo = int(rng.integers(style.tempo_bpm[0], style.tempo_bpm[1] + 1))
    minor = bool(rng.random() < style.minor_chance)
    key_pc = int(rng.choice(MINOR_KEYS if minor else MAJOR_KEYS))
    progs = _midi.PROGRESSIONS[f"{style.harmony}_{'minor' if minor else 'major'}"]
    i_verse, i_chorus = rng.choice(len(progs), size=2, replace=len(progs) < 2)
    verse_groove, chorus_groove = style.grooves[int(rng.integers(len(style.grooves)))]
    sections = ((verse_groove, _midi.chords_of(progs[i_verse], key_pc)),
                (chorus_groove, _midi.chords_of(progs[i_chorus], key_pc)))
    n_bars = math.ceil(seconds * tempo / 240.0) + 1
    per_bar = style.chords_per_bar
    bars: list[tuple[str, tuple[_midi.Chord, ...]]] = []
    section = 0
    while len(bars) < n_bars:
        groove, chords = sections[section % 2]
        for _ in range(2):                                   # each chart is played twice
            for b in range(len(chords) // per_bar):
                bars.append((groove, tuple(chords[b * per_bar:(b + 1) * per_bar])))
        section += 1
    return SongPlan(style.name, tempo, key_pc, minor, tuple(bars[:n_bars]))


def mma_text(plan: SongPlan, seed: int) -> str:
    """The .mma source of the accompaniment."""
    tonic = _midi.NOTE_NAMES[plan.key_pc]
    lines = [f"// mixstyle demo song: style {plan.style}, seed {seed}",
             f"RndSeed {seed % 2**31}", f"Tempo {plan.tempo_bpm}",
             f"KeySig {tonic} {'minor' if plan.minor else 'major'}"]
    groove = None
    for number, (bar_groove, chords) in enumerate(plan.bars, start=1):
        if bar_groove != groove:
            lines.append(f"Groove {bar_groove}")
            groove = bar_groove
        beats = ["/"] * 4
        for i, chord in enumerate(chords):
            beats[i * 4 // len(chords)] = chord.name
        lines.append(f"{number} {' '.join(beats)}")
    return "\n".join(lines) + "\n"


def _run(cmd: list[str], what: str, cwd: Path) -> None:
    env = dict(os.environ, PYTHONHASHSEED="0")
    res = subprocess.run(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         text=True, check=False)
    if res.returncode != 0:
        tail = "\n".join(res.stdout.strip().splitlines()[-6:])
        raise DemoToolError(f"{what} failed (exit {res.returncode}): {' '.join(cmd)}\n{tail}")


@dataclass
class _Stem:
    name: str
    tracks: list[mido.MidiTrack]
    notes: int
    program: int | None = None


def _split_parts(mid: mido.MidiFile, style: Style, rng: np.random.Generator) -> list[_Stem]:
    """Group MMA's channels into named stems, choosing this style's GM program per slot."""
    stems: dict[str, _Stem] = {}
    drums = [t for t in mid.tracks if 9 in _midi.track_channels(t)]
    rest = set(range(128)) - KICK_NOTES - SNARE_NOTES - PERCUSSION_NOTES
    for name, notes in (("kick", KICK_NOTES), ("snare", SNARE_NOTES),
                        ("percussion", PERCUSSION_NOTES), ("overheads", rest)):
        count = sum(_midi.note_count(t, notes) for t in drums)
        if count:
            stems[name] = _Stem(name, [_midi.filter_track(t, notes) for t in drums], count)
    for name in ("kick", "snare", "percussion"):       # sparse drum parts join the overheads
        if name in stems and (stems[name].notes < MIN_DRUM_PART_NOTES
                              or (name == "percussion" and stems[name].notes < 8)):
            _merge_drums(stems, name)
    chosen: dict[str, int] = {}
    for track in mid.tracks:
        chans = _midi.track_channels(track)
        program = _midi.first_program(track)
        if not chans or 9 in chans or program is None or not _midi.note_count(track):
            continue
        named_bass = (track.name or "").strip().lower() in ("bass", "walk")
        slot = "bass" if named_bass else slot_of_program(program)
        if slot is None:
            continue
        choices = style.program_choices(slot)
        if slot not in chosen:
            chosen[slot] = int(rng.choice(choices)) if choices else program
        name = stem_name_of(slot, chosen[slot])
        stem = stems.setdefault(name, _Stem(name, [], 0, chosen[slot]))
        stem.tracks.append(_midi.filter_track(track, None, chosen[slot]))
        stem.notes += _midi.note_count(track)
    return list(stems.values())


def _merge_drums(stems: dict[str, _Stem], name: str) -> None:
    """Move the notes of drum stem ``name`` into the overheads (same tracks, wider note set)."""
    part = stems.pop(name)
    over = stems.get("overheads")
    if over is None:
        stems["overheads"] = _Stem("overheads", part.tracks, part.notes)
        return
    merged = [_merge_tracks(a, b) for a, b in zip(over.tracks, part.tracks)]
    stems["overheads"] = _Stem("overheads", merged, over.notes + part.notes)


def _merge_tracks(a: mido.MidiTrack, b: mido.MidiTrack) -> mido.MidiTrack:
    """Both tracks' note events on one timeline (controllers taken from ``a``)."""
    events = []
    for k, track in enumerate((a, b)):
        now = 0
        for m in track:
            now += m.time
            if k == 0 or m.type in ("note_on", "note_off"):
                if not (m.is_meta and m.type == "end_of_track"):
                    events.append((now, k, m))
    events.sort(key=lambda e: (e[0], e[1]))
    out = mido.MidiTrack()
    now = 0
    for t, _, m in events:
        out.append(m.copy(time=t - now))
        now = t
    out.append(mido.MetaMessage("end_of_track", time=0))
    return out


def _limit_stems(stems: list[_Stem]) -> list[_Stem]:
    """At most MAX_STEMS: percussion joins the overheads, then the sparsest parts are dropped."""
    by_name = {s.name: s for s in stems}
    if len(by_name) + 1 > MAX_STEMS and "percussion" in by_name:
        _merge_drums(by_name, "percussion")
    core = ("kick", "snare", "overheads", "bass")
    extra = sorted((s for s in by_name.values() if s.name not in core), key=lambda s: -s.notes)
    keep = [s for s in by_name.values() if s.name in core]
    keep += extra[:max(0, MAX_STEMS - 1 - len(keep))]
    return keep


def _fill_in_drums(mid: mido.MidiFile, n_bars: int, rng: np.random.Generator) -> None:
    """Add kick/snare/hats where the groove has (almost) none, so each song has all three."""
    drums = [t for t in mid.tracks if 9 in _midi.track_channels(t)]
    kick = sum(_midi.note_count(t, KICK_NOTES) for t in drums) < n_bars
    snare = sum(_midi.note_count(t, SNARE_NOTES) for t in drums) < n_bars
    hats = sum(_midi.note_count(t, _midi.HAT_NOTES) for t in drums) < 2 * n_bars
    if kick or snare or hats:
        mid.tracks.append(_midi.backbeat_track(n_bars, mid.ticks_per_beat, rng, kick, snare, hats))


def _free_channel(mid: mido.MidiFile) -> int:
    used = set().union(*(_midi.track_channels(t) for t in mid.tracks))
    return next(c for c in range(16) if c != 9 and c not in used)


def _finish(audio: np.ndarray, sr: float, seconds: float, peak_dbfs: float) -> np.ndarray | None:
    """Stereo, exactly ``seconds`` long, faded in/out, peak at ``peak_dbfs``; None when silent."""
    n = int(round(seconds * sr))
    if audio.shape[0] == 1:
        audio = np.repeat(audio, 2, axis=0)
    out = np.zeros((2, n), dtype=np.float32)
    m = min(n, audio.shape[1])
    out[:, :m] = audio[:2, :m]
    peak = float(np.max(np.abs(out))) if n else 0.0
    if peak <= 10 ** (SILENT_PEAK_DBFS / 20):
        return None
    fade_in = min(n, int(0.005 * sr))
    fade_out = min(n, int(min(1.0, 0.1 * seconds) * sr))
    out[:, :fade_in] *= np.linspace(0.0, 1.0, fade_in, dtype=np.float32)
    out[:, n - fade_out:] *= (0.5 + 0.5 * np.cos(np.linspace(0.0, np.pi, fade_out))).astype(
        np.float32)
    out *= np.float32(10 ** (peak_dbfs / 20) / peak)
    return out


def make_song(out_dir: str | os.PathLike, seed: int, seconds: float = 30.0,
              style: str | None = None, soundfont: Path = SOUNDFONT) -> Path:
    """Generate one song into ``out_dir`` (``stems/*.wav`` + ``source/``); return it, absolute."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ParameterError(f"seed must be a non-negative integer, got {seed!r}")
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) \
            or not 2.0 <= seconds <= 600.0:
        raise ParameterError(f"seconds = {seconds!r} is out of range: allowed 2 .. 600 s")
    if style is not None and style not in STYLES:
        raise ParameterError(f"style {style!r} is unknown; known styles: {', '.join(STYLES)}")
    check_tools(soundfont)
    # mma and fluidsynth run with cwd=source/: every path they get must be absolute, or a
    # relative out_dir ("demo_out/cache/...") would be looked up again inside source/.
    soundfont = Path(soundfont).resolve()
    rng = np.random.default_rng(int(seed))
    style_name = str(rng.choice(list(STYLES))) if style is None else style
    st = STYLES[style_name]
    plan = plan_song(rng, st, float(seconds))
    song = Path(out_dir).resolve()
    src, stem_dir = song / "source", song / "stems"
    for d in (src, stem_dir):
        d.mkdir(parents=True, exist_ok=True)
    for old in stem_dir.glob("*.wav"):
        old.unlink()
    (src / "song.mma").write_text(mma_text(plan, int(seed)))
    _run(["mma", "-w", "-f", "accompaniment.mid", "song.mma"], "mma (MMA accompaniment)", src)
    mid = mido.MidiFile(src / "accompaniment.mid")
    _fill_in_drums(mid, len(plan.bars), rng)

    lead_name, lead_program = st.leads[int(rng.integers(len(st.leads)))]
    beats = [float(b) for b, _ in st.rhythm]
    weights = [w for _, w in st.rhythm]
    per_bar = st.chords_per_bar
    bars = plan.bars

    def chord_at(beat: float) -> _midi.Chord:
        bar = min(int(beat // 4), len(bars) - 1)
        return bars[bar][1][min(int((beat % 4) * per_bar // 4), per_bar - 1)]

    notes = _midi.make_melody(rng, plan.key_pc, plan.minor, chord_at, 4.0, seconds * plan.tempo_bpm
                              / 60.0, beats, weights, LEAD_REGISTERS[lead_program], st.legato)
    lead_track = _midi.melody_track(notes, _free_channel(mid), lead_program, mid.ticks_per_beat)
    parts = _limit_stems(_split_parts(mid, st, rng))
    parts.append(_Stem(lead_name, [lead_track], len(notes), lead_program))

    def render(part: _Stem) -> np.ndarray:
        mid_path, wav_path = src / f"{part.name}.mid", src / f"{part.name}.render.wav"
        _midi.sub_file(mid, part.tracks).save(mid_path)
        _run(["fluidsynth", "-ni", "-q", "-R", "0", "-C", "0", "-g", "0.5", "-r",
              str(SAMPLE_RATE_HZ), "-O", "float", "-F", str(wav_path), str(soundfont),
              str(mid_path)], f"fluidsynth (rendering stem {part.name!r})", src)
        audio, sr = read_audio(wav_path)
        wav_path.unlink()
        if sr != SAMPLE_RATE_HZ:
            raise DemoToolError(f"fluidsynth rendered {wav_path.name} at {sr} Hz, "
                                f"expected {SAMPLE_RATE_HZ}")
        return audio

    with ThreadPoolExecutor(max_workers=2) as pool:
        rendered = list(pool.map(render, parts))
    levels = rng.uniform(*STEM_PEAK_DBFS, size=len(parts))
    written = []
    for part, audio, level in zip(parts, rendered, levels):
        out = _finish(audio, SAMPLE_RATE_HZ, float(seconds), float(level))
        if out is None:
            continue
        write_audio_atomic(stem_dir / f"{part.name}.wav", out, SAMPLE_RATE_HZ)
        written.append({"file": f"{part.name}.wav", "role": STEM_ROLES.get(part.name, "other"),
                        "gm_program": part.program, "notes": part.notes,
                        "peak_dbfs": round(float(level), 2)})
    info = {"seed": int(seed), "seconds": float(seconds), "style": style_name,
            "tempo_bpm": plan.tempo_bpm, "key": plan.key_name,
            "grooves": sorted({g for g, _ in plan.bars}),
            "chords": [" ".join(c.name for c in chords) for _, chords in plan.bars],
            "sample_rate_hz": SAMPLE_RATE_HZ, "stems": written}
    (src / "song.json").write_text(json.dumps(info, indent=2))
    return song
