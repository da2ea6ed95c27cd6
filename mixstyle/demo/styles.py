"""Musical styles of the demo songs: MMA grooves, tempos, harmony and the GM programs per part."""

from __future__ import annotations

from dataclasses import dataclass

# Accompaniment slots, found from the GM program MMA gave each channel (its family).
SLOTS = ("piano", "keys", "organ", "guitar", "bass", "strings", "horns", "synth")


def slot_of_program(program: int) -> str | None:
    """The accompaniment slot of a GM program (0-based), None for ethnic/percussive/effects."""
    for hi, slot in ((3, "piano"), (15, "keys"), (23, "organ"), (31, "guitar"), (39, "bass"),
                     (55, "strings"), (79, "horns"), (103, "synth")):
        if program <= hi:
            return slot
    return None


def stem_name_of(slot: str, program: int) -> str:
    """File stem for an accompaniment part (named so mixstyle.sessions.roles finds its role)."""
    if (slot == "synth" and 88 <= program <= 95) or (slot == "strings" and program >= 80):
        return "pad"
    if slot == "strings":
        return "choir" if 52 <= program <= 54 else "strings_pad"
    return slot


# Stem file name -> the role the demo means by it (the session loader finds roles from names).
# (These are the roles of mixstyle.sessions.roles.ROLES; a test checks role_from_name agrees.)
STEM_ROLES = {
    "kick": "kick", "snare": "snare", "overheads": "overheads", "percussion": "drums",
    "bass": "bass", "guitar": "guitar", "piano": "keys", "keys": "keys", "organ": "keys",
    "strings_pad": "synth", "pad": "synth", "synth": "synth", "choir": "backing_vocals",
    "horns": "other", "lead_vocal": "vocals", "lead_melody": "lead", "lead_sax": "lead",
    "lead_flute": "lead", "lead_trumpet": "lead",
}

# GM program -> (lowest, highest) MIDI note of a melody played with it.
LEAD_REGISTERS = {52: (57, 76), 53: (57, 76), 54: (57, 76), 65: (58, 77), 66: (50, 72),
                  56: (58, 79), 73: (67, 88), 80: (60, 84), 81: (60, 84)}


@dataclass(frozen=True)
class Style:
    """One musical style: which grooves, tempos, chords and instruments a song may get."""

    name: str
    grooves: tuple[tuple[str, str], ...]        # (verse groove, chorus groove)
    tempo_bpm: tuple[int, int]
    harmony: str                                # "pop" or "jazz" progressions
    minor_chance: float
    chords_per_bar: int
    programs: tuple[tuple[str, tuple[int, ...]], ...]   # slot -> GM programs to choose from
    leads: tuple[tuple[str, int], ...]          # (stem name, GM program)
    rhythm: tuple[tuple[float, float], ...]     # melody (note length in beats, weight)
    legato: float = 0.9

    def program_choices(self, slot: str) -> tuple[int, ...]:
        return dict(self.programs).get(slot, ())


STYLES: dict[str, Style] = {s.name: s for s in (
    Style("rock", (("8Beat", "8BeatSus"), ("BasicRock", "BasicRockSus"), ("50sRock", "50sRockSus"),
                   ("FolkRock", "FolkRockSus")),
          (100, 140), "pop", 0.3, 1,
          (("bass", (33, 34)), ("guitar", (29, 30, 27)), ("piano", (0, 1)), ("keys", (4,)),
           ("organ", (16, 17, 18)), ("strings", (48, 49, 50)), ("horns", (61, 65)),
           ("synth", (81,))),
          (("lead_vocal", 52), ("lead_vocal", 53), ("lead_melody", 81)),
          ((0.5, 3.0), (1.0, 4.0), (1.5, 1.0), (2.0, 2.0))),
    Style("pop", (("SoftRock", "SoftRockSus"), ("PopBallad1", "PopBalladSus"),
                  ("8Beat1", "8Beat1Sus")),
          (84, 124), "pop", 0.25, 1,
          (("bass", (33, 38)), ("guitar", (25, 27)), ("piano", (0,)), ("keys", (4, 5)),
           ("organ", (16,)), ("strings", (50, 89, 88)), ("horns", (61,)), ("synth", (80, 81))),
          (("lead_vocal", 53), ("lead_vocal", 52), ("lead_melody", 80)),
          ((0.5, 4.0), (1.0, 4.0), (1.5, 2.0), (2.0, 1.0))),
    Style("folk", (("Folk", "FolkSus"), ("FolkRock", "FolkRockSus"),
                   ("SlowCountry", "SlowCountrySus")),
          (80, 124), "pop", 0.2, 1,
          (("bass", (32, 33)), ("guitar", (25, 24)), ("piano", (0,)), ("organ", (21, 22)),
           ("strings", (48,)), ("horns", (71,))),
          (("lead_vocal", 52), ("lead_flute", 73), ("lead_vocal", 53)),
          ((0.5, 2.0), (1.0, 5.0), (1.5, 1.0), (2.0, 2.0))),
    Style("jazz", (("JazzCombo", "JazzComboSus"), ("Swing", "SwingSus")),
          (96, 140), "jazz", 0.25, 2,
          (("bass", (32,)), ("guitar", (26,)), ("piano", (0, 1)), ("keys", (4,)),
           ("organ", (16,)), ("strings", (48, 49)), ("horns", (65, 66, 56))),
          (("lead_sax", 65), ("lead_sax", 66), ("lead_trumpet", 56)),
          ((0.5, 4.0), (1.0, 3.0), (1.5, 1.0), (2.0, 1.0))),
    Style("bossa", (("BossaNova", "BossaNovaSus"), ("BossaNova", "BossaNova1Sus")),
          (100, 136), "jazz", 0.3, 2,
          (("bass", (32,)), ("guitar", (24,)), ("piano", (0,)), ("keys", (4,)),
           ("strings", (48, 52))),
          (("lead_flute", 73), ("lead_vocal", 53), ("lead_sax", 65)),
          ((0.5, 3.0), (1.0, 4.0), (1.5, 2.0), (2.0, 2.0))),
    Style("ballad", (("Ballad", "BalladSus"), ("PopBallad", "PopBalladSus")),
          (70, 90), "pop", 0.35, 1,
          (("bass", (33, 32)), ("guitar", (25, 27)), ("piano", (0,)), ("keys", (4,)),
           ("strings", (48, 49, 89)), ("synth", (89,))),
          (("lead_vocal", 52), ("lead_vocal", 53)),
          ((0.5, 2.0), (1.0, 4.0), (1.5, 2.0), (2.0, 3.0)), 0.95),
    Style("funk", (("BVFunk", "BVFunkSus"),),
          (92, 116), "pop", 0.6, 1,
          (("bass", (36, 37, 38)), ("guitar", (28, 27)), ("keys", (4,)), ("organ", (16,)),
           ("strings", (50,)), ("horns", (61,)), ("synth", (81,))),
          (("lead_melody", 81), ("lead_sax", 65), ("lead_vocal", 53)),
          ((0.25, 2.0), (0.5, 5.0), (1.0, 3.0), (1.5, 1.0)), 0.8),
)}

MAJOR_KEYS = (0, 2, 4, 5, 7, 9, 10, 3)      # C D E F G A Bb Eb
MINOR_KEYS = (9, 4, 2, 11, 0, 7)            # A E D B C G
