"""Stem file names from track names: the instrument's own name when it says what plays, else a
neutral ``Track 07`` (real sessions have both; a tracker's name fields often hold the song's
credits or a greeting instead of an instrument)."""

from __future__ import annotations

import re

from mixstyle.sessions.roles import role_from_name, tokens

# instrument words the role table does not list (it maps them to "other") but that still name
# what plays
INSTRUMENT_WORDS = frozenset({
    "accordion", "bell", "bells", "brass", "cello", "celeste", "choir", "clarinet", "contrabass",
    "cymbal", "drum", "flute", "glock", "glockenspiel", "harp", "harpsichord", "horn", "horns",
    "kalimba", "marimba", "oboe", "orchestra", "orch", "piccolo", "sax", "saxophone", "sitar",
    "steel", "string", "strings", "timpani", "trombone", "trumpet", "tuba", "vibes",
    "vibraphone", "viola", "violin", "whistle", "xylo", "xylophone", "lead", "voc", "hihat",
    "cowbell", "tambourine", "clap", "snap", "tom", "piano", "organ", "guitar", "bass", "kick",
    "snare", "hat", "ride", "crash", "pad", "synth", "choir", "chord", "chords", "arp", "pluck",
    "stab", "perc", "bongo", "conga", "shaker", "triangle", "gong", "koto", "banjo", "mandolin",
    "ocarina", "pipe", "pipes", "recorder", "bassoon", "fiddle", "harmonica", "vox", "voice",
    "sweep", "noise", "fx", "sfx"})
_BAD = re.compile(r"[^A-Za-z0-9 _+\-()]+")
MAX_NAME_CHARS = 40


def clean(text: str) -> str:
    """Letters, digits and ``_ - + ( )`` kept, everything else a space; spaces collapsed."""
    return re.sub(r"\s+", " ", _BAD.sub(" ", text)).strip(" -_")[:MAX_NAME_CHARS].strip(" -_")


def meaningful(name: str) -> bool:
    """Does the name say what plays? A role the session loader knows, or an instrument word."""
    text = clean(name)
    if not text or not re.search(r"[A-Za-z]{2}", text):
        return False
    if role_from_name(text) != "other":
        return True
    return any(tok in INSTRUMENT_WORDS for tok in tokens(text))


def stem_names(raw: list[tuple[int, str]], trust: bool = False,
               neutral: str = "Track") -> dict[int, str]:
    """Track number -> unique file stem: the cleaned name when meaningful (``trust``: whenever
    it has letters, for sources whose name fields only hold instrument names), else
    ``f"{neutral} {number:02d}"`` (numbers from 1, as a tracker shows them)."""
    out: dict[int, str] = {}
    seen: set[str] = set()
    for index, name in raw:
        named = re.search(r"[A-Za-z]", clean(name)) if trust else meaningful(name)
        base = clean(name) if named else f"{neutral} {index + 1:02d}"
        label = base
        if label.lower() in seen:
            label = f"{base} {index + 1:02d}"
        seen.add(label.lower())
        out[index] = label
    return out
