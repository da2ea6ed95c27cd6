"""Music theory, melody generation and MIDI splitting for the demo songs (mido only)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable, Sequence

import mido
import numpy as np

NOTE_NAMES = ("C", "Db", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
MAJOR_SCALE = (0, 2, 4, 5, 7, 9, 11)
MINOR_SCALE = (0, 2, 3, 5, 7, 8, 10)
QUALITY_INTERVALS = {"": (0, 4, 7), "m": (0, 3, 7), "7": (0, 4, 7, 10), "maj7": (0, 4, 7, 11),
                     "m7": (0, 3, 7, 10), "m7b5": (0, 3, 6, 10)}
# roman numeral -> (semitones above the key root, chord quality)
NUMERALS = {
    "I": (0, ""), "ii": (2, "m"), "iii": (4, "m"), "IV": (5, ""), "V": (7, ""), "vi": (9, "m"),
    "Imaj7": (0, "maj7"), "ii7": (2, "m7"), "iii7": (4, "m7"), "IVmaj7": (5, "maj7"),
    "V7": (7, "7"), "vi7": (9, "m7"),
    "i": (0, "m"), "iv": (5, "m"), "v": (7, "m"), "III": (3, ""), "VI": (8, ""), "VII": (10, ""),
    "im7": (0, "m7"), "iv7": (5, "m7"), "VII7": (10, "7"), "IIImaj7": (3, "maj7"),
    "VImaj7": (8, "maj7"), "iim7b5": (2, "m7b5"),
}
PROGRESSIONS = {
    "pop_major": (("I", "V", "vi", "IV"), ("I", "vi", "IV", "V"), ("vi", "IV", "I", "V"),
                  ("I", "IV", "vi", "V"), ("IV", "I", "V", "vi"), ("I", "iii", "IV", "V"),
                  ("I", "IV", "I", "V")),
    "pop_minor": (("i", "VI", "III", "VII"), ("i", "iv", "VII", "III"), ("i", "VII", "VI", "VII"),
                  ("i", "iv", "v", "i"), ("i", "VI", "iv", "V")),
    "jazz_major": (("ii7", "V7", "Imaj7", "vi7"), ("Imaj7", "vi7", "ii7", "V7"),
                   ("iii7", "vi7", "ii7", "V7"), ("Imaj7", "IVmaj7", "iii7", "vi7")),
    "jazz_minor": (("im7", "iv7", "VII7", "IIImaj7"), ("iim7b5", "V7", "im7", "VImaj7"),
                   ("im7", "VImaj7", "iim7b5", "V7")),
}


@dataclass(frozen=True)
class Chord:
    root_pc: int
    quality: str

    @property
    def name(self) -> str:
        """MMA spelling, e.g. 'Bbmaj7'."""
        return NOTE_NAMES[self.root_pc % 12] + self.quality

    @property
    def pitch_classes(self) -> tuple[int, ...]:
        return tuple((self.root_pc + i) % 12 for i in QUALITY_INTERVALS[self.quality])


def chords_of(numerals: Sequence[str], key_pc: int) -> list[Chord]:
    return [Chord((key_pc + NUMERALS[n][0]) % 12, NUMERALS[n][1]) for n in numerals]


@dataclass(frozen=True)
class Note:
    start_beat: float
    length_beats: float
    pitch: int
    velocity: int


def make_melody(rng: np.random.Generator, key_pc: int, minor: bool,
                chord_at: Callable[[float], Chord], start_beat: float, end_beat: float,
                rhythm_beats: Sequence[float], rhythm_weights: Sequence[float],
                register: tuple[int, int], legato: float) -> list[Note]:
    """A scale-aware random walk in phrases of 1-2 bars separated by rests.

    Notes on strong beats (1 and 3) snap to the nearest tone of the current chord; phrases end on
    a chord tone with a longer note.
    """
    scale = MINOR_SCALE if minor else MAJOR_SCALE
    pitches = [p for p in range(register[0], register[1] + 1) if (p - key_pc) % 12 in scale]
    idx = len(pitches) // 2 + int(rng.integers(-2, 3))
    w = np.asarray(rhythm_weights, dtype=np.float64)
    w = w / w.sum()
    steps = np.array([-3, -2, -1, 0, 1, 2, 3])
    step_p = np.array([0.05, 0.15, 0.3, 0.1, 0.25, 0.1, 0.05])
    notes: list[Note] = []
    t = start_beat
    while t < end_beat - 1.0:
        phrase_end = min(t + float(rng.choice([4.0, 6.0, 8.0])), end_beat)
        base_vel = int(rng.integers(78, 100))
        while t < phrase_end - 0.2:
            dur = float(rng.choice(rhythm_beats, p=w))
            last = t + dur >= phrase_end - 0.5
            if last:
                dur = max(phrase_end - t, 1.0)
            lo, hi = len(pitches) * 0.25, len(pitches) * 0.75
            centre_pull = 1 if idx < lo else (-1 if idx > hi else 0)
            idx = int(np.clip(idx + int(rng.choice(steps, p=step_p)) + centre_pull,
                              0, len(pitches) - 1))
            if last or (abs(t - round(t)) < 1e-6 and int(round(t)) % 2 == 0):
                idx = _nearest_chord_tone(pitches, idx, chord_at(t).pitch_classes)
            vel = int(np.clip(base_vel + rng.integers(-8, 9) + (6 if t % 4 < 0.01 else 0), 40, 120))
            notes.append(Note(t, dur * legato, pitches[idx], vel))
            t += dur
        t = np.ceil((t + float(rng.choice([1.0, 1.5, 2.0, 3.0, 4.0]))) * 2.0) / 2.0
    return notes


def _nearest_chord_tone(pitches: list[int], idx: int, pcs: Iterable[int]) -> int:
    pcs = set(pcs)
    for d in (0, 1, -1, 2, -2, 3, -3):
        j = idx + d
        if 0 <= j < len(pitches) and pitches[j] % 12 in pcs:
            return j
    return idx


def melody_track(notes: Sequence[Note], channel: int, program: int, ticks_per_beat: int,
                 name: str = "Lead") -> mido.MidiTrack:
    """A MIDI track (delta times) playing ``notes`` on ``channel`` with GM ``program``."""
    events: list[tuple[int, int, mido.Message]] = []
    for n in notes:
        on = int(round(n.start_beat * ticks_per_beat))
        off = max(on + 1, int(round((n.start_beat + n.length_beats) * ticks_per_beat)))
        events.append((on, 1, mido.Message("note_on", channel=channel, note=n.pitch,
                                           velocity=n.velocity)))
        events.append((off, 0, mido.Message("note_off", channel=channel, note=n.pitch,
                                            velocity=0)))
    events.sort(key=lambda e: (e[0], e[1]))  # note_off before note_on at the same tick
    track = mido.MidiTrack([mido.MetaMessage("track_name", name=name, time=0),
                            mido.Message("program_change", channel=channel, program=program),
                            mido.Message("control_change", channel=channel, control=7, value=100),
                            mido.Message("control_change", channel=channel, control=10, value=64)])
    now = 0
    for tick, _, msg in events:
        track.append(msg.copy(time=tick - now))
        now = tick
    track.append(mido.MetaMessage("end_of_track", time=0))
    return track


def track_channels(track: mido.MidiTrack) -> set[int]:
    return {m.channel for m in track if not m.is_meta and hasattr(m, "channel")}


def note_count(track: mido.MidiTrack, notes: Iterable[int] | None = None) -> int:
    keep = None if notes is None else set(notes)
    return sum(1 for m in track if m.type == "note_on" and m.velocity > 0
               and (keep is None or m.note in keep))


def first_program(track: mido.MidiTrack) -> int | None:
    for m in track:
        if m.type == "program_change":
            return int(m.program)
    return None


_DROPPED_CC = {10, 91, 93}  # pan, reverb send, chorus send: stems are dry and centred


def filter_track(track: mido.MidiTrack, notes: Iterable[int] | None = None,
                 program: int | None = None) -> mido.MidiTrack:
    """Copy of ``track`` keeping only ``notes`` (all when None), with its program replaced.

    Pan/reverb/chorus controllers are dropped and a centre pan is set at the start; delta times
    of removed messages carry over to the next kept message.
    """
    keep = None if notes is None else set(notes)
    out = mido.MidiTrack()
    chans = sorted(track_channels(track))
    for ch in chans:
        out.append(mido.Message("control_change", channel=ch, control=10, value=64, time=0))
    carry = 0
    for m in track:
        carry += m.time
        if m.type in ("note_on", "note_off") and keep is not None and m.note not in keep:
            continue
        if m.type == "control_change" and m.control in _DROPPED_CC:
            continue
        if m.type == "program_change" and program is not None:
            m = m.copy(program=program)
        out.append(m.copy(time=carry))
        carry = 0
    return out


def sub_file(source: mido.MidiFile, tracks: Sequence[mido.MidiTrack]) -> mido.MidiFile:
    """A type-1 file with the source's tempo/meta track followed by ``tracks``."""
    out = mido.MidiFile(type=1, ticks_per_beat=source.ticks_per_beat)
    meta = mido.MidiTrack(m.copy() for m in source.tracks[0] if m.is_meta)
    out.tracks.append(meta)
    out.tracks.extend(tracks)
    return out


HAT_NOTES = frozenset({42, 44, 46, 51, 53, 59})


def backbeat_track(n_bars: int, ticks_per_beat: int, rng: np.random.Generator, kick: bool,
                   snare: bool, hats: bool) -> mido.MidiTrack:
    """A plain 4/4 drum part on channel 10 (kick on 1/3, snare on 2/4, eighth-note hats).

    Used to fill in what a sparse MMA groove leaves out, so every song has kick, snare and hats.
    """
    hits: list[tuple[float, int, int]] = []
    for bar in range(n_bars):
        b0 = 4.0 * bar
        if kick:
            hits += [(b0, 36, 100), (b0 + 2.0, 36, 92)]
            if rng.random() < 0.35:
                hits.append((b0 + 2.5, 36, 80))
        if snare:
            hits += [(b0 + 1.0, 38, 96), (b0 + 3.0, 38, 100)]
        if hats:
            hits += [(b0 + 0.5 * i, 42, 82 if i % 2 == 0 else 64) for i in range(8)]
    events = []
    for beat, note, vel in hits:
        on = int(round(beat * ticks_per_beat))
        v = int(np.clip(vel + rng.integers(-6, 7), 30, 127))
        events.append((on, 1, mido.Message("note_on", channel=9, note=note, velocity=v)))
        events.append((on + ticks_per_beat // 8, 0,
                       mido.Message("note_off", channel=9, note=note, velocity=0)))
    events.sort(key=lambda e: (e[0], e[1]))
    track = mido.MidiTrack([mido.MetaMessage("track_name", name="Drum-Fill-In", time=0)])
    now = 0
    for tick, _, msg in events:
        track.append(msg.copy(time=tick - now))
        now = tick
    track.append(mido.MetaMessage("end_of_track", time=0))
    return track
