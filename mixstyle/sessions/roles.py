"""Track roles: guessed from the file name by one rules table, or set in ``roles.toml``.

A file name is split into lowercase tokens on ``_ - .``, spaces, letter/digit boundaries and
camelCase humps ("LeadVox_02.wav" -> lead, vox, 02). Two-word phrases are looked up first
("bass drum" -> kick), then single keywords in the priority order of ``_KEYWORD_RULES`` (so
"synth bass" is bass and "bass gtr" is bass), then weak keywords that only count when nothing
else matched ("lead gtr" is guitar, "lead" alone is lead).

A name that says nothing ("Audio 07", "Track 12", "Bounce 1", "01", "ch5": only numbers, single
letters and the words DAWs put in default names, ``GENERIC_WORDS``) lets the sound decide
(``audio_roles.role_from_audio``). ``resolve_role`` applies the order: roles.toml, then a name
that names a role, then the audio; its ``RoleChoice`` keeps the reason for the loader's warning.
A name with words the table does not know ("Strings", "Theremin") stays "other": it says
something, just not a role, and roles.toml is the place to say which.
"""

from __future__ import annotations

import difflib
import os
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dsp.errors import SessionError
from mixstyle.io.audio import AUDIO_EXTENSIONS
from mixstyle.sessions.audio_roles import role_from_audio

ROLES = ("drums", "kick", "snare", "overheads", "bass", "guitar", "keys", "synth", "lead",
         "vocals", "backing_vocals", "fx", "other")
ROLES_FILE = "roles.toml"

_PHRASE_RULES: tuple[tuple[tuple[str, str], str], ...] = (
    (("bass", "drum"), "kick"),
    (("kick", "drum"), "kick"),
    (("snare", "drum"), "snare"),
    (("hi", "hat"), "drums"),
    (("lead", "synth"), "synth"),
    (("lead", "vox"), "vocals"),
    (("lead", "vocal"), "vocals"),
    (("lead", "vocals"), "vocals"),
    (("main", "vox"), "vocals"),
    (("e", "piano"), "keys"),
)

# Priority order: the first rule with a matching token wins.
_KEYWORD_RULES: tuple[tuple[str, frozenset[str]], ...] = (
    ("kick", frozenset({"kick", "kicks", "kik", "kck", "bd", "bassdrum", "kickdrum"})),
    ("snare", frozenset({"snare", "snares", "snr", "sd", "rim", "rimshot"})),
    ("backing_vocals", frozenset({"bv", "bvs", "bgv", "bgvs", "bvox", "backing", "backings",
                                  "backingvox", "harmony", "harmonies", "choir", "adlib",
                                  "adlibs", "bgvox"})),
    ("fx", frozenset({"fx", "sfx", "riser", "risers", "impact", "impacts", "noise", "sweep",
                      "whoosh", "uplifter", "downlifter"})),
    ("overheads", frozenset({"oh", "ohs", "overhead", "overheads", "cymbal", "cymbals", "room",
                             "rooms", "crash", "ride"})),
    ("drums", frozenset({"hat", "hats", "hihat", "hihats", "hh", "tom", "toms", "perc",
                         "percs", "percussion", "drum", "drums", "kit", "clap", "claps",
                         "shaker", "tamb", "tambourine", "cowbell", "conga", "congas", "bongo",
                         "bongos", "beat", "breakbeat"})),
    ("bass", frozenset({"bass", "basses", "sub", "subs", "808", "bassline", "subbass"})),
    ("guitar", frozenset({"gtr", "gtrs", "guitar", "guitars", "gtar", "acgtr", "egtr"})),
    ("keys", frozenset({"piano", "pianos", "keys", "keyboard", "organ", "rhodes", "epiano",
                        "wurli", "wurlitzer", "clav", "clavinet", "hammond"})),
    ("synth", frozenset({"synth", "synths", "pad", "pads", "arp", "arps", "pluck", "plucks"})),
    ("vocals", frozenset({"vox", "vocal", "vocals", "voice", "voices", "vx", "leadvox",
                          "singer"})),
)

# Only consulted when no keyword above matched.
_WEAK_RULES: tuple[tuple[str, frozenset[str]], ...] = (
    ("lead", frozenset({"lead", "leads", "solo", "melody", "hook", "topline"})),
    ("drums", frozenset({"loop", "loops"})),
)

# Words of default track names (DAWs, recorders, exports): a name made of these says nothing.
GENERIC_WORDS = frozenset({
    "audio", "track", "tracks", "trk", "tr", "ch", "chn", "chan", "channel", "bounce", "bounced",
    "stem", "stems", "take", "tk", "comp", "print", "untitled", "new", "rec", "recording",
    "input", "in", "out", "output", "inst", "instrument", "midi", "bus", "aux", "group", "grp",
    "mono", "stereo", "st", "left", "right", "final", "export", "exported", "render", "rendered",
    "copy", "dup", "duplicate", "ver", "version", "edit", "edited", "consolidated", "freeze",
    "frozen", "file", "sample", "clip", "region", "part", "layer", "mic", "di", "line", "no",
    "nr", "num", "wav", "mp3", "flac", "aif", "aiff",
})

_SPLIT_RE = re.compile(r"[\s_\-.]+")
_HUMP_RE = re.compile(r"(?<=[a-z])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_DIGITS_RE = re.compile(r"(?<=\D)(?=\d)|(?<=\d)(?=\D)")


def tokens(filename: str | os.PathLike[str]) -> list[str]:
    """Lowercase tokens of a file name (extension removed), as the role rules see them."""
    name = Path(filename).name
    stem, ext = os.path.splitext(name)
    if ext.lower() in AUDIO_EXTENSIONS:
        name = stem
    out: list[str] = []
    for part in _SPLIT_RE.split(name):
        for hump in _HUMP_RE.split(part):
            out.extend(t.lower() for t in _DIGITS_RE.split(hump) if t)
    return out


def role_from_name(filename: str | os.PathLike[str]) -> str:
    """The role guessed from a track's file name by the rules table ("other" if nothing fits)."""
    toks = tokens(filename)
    pairs = set(zip(toks, toks[1:]))
    for phrase, role in _PHRASE_RULES:
        if phrase in pairs:
            return role
    found = set(toks)
    for rules in (_KEYWORD_RULES, _WEAK_RULES):
        for role, words in rules:
            if found & words:
                return role
    return "other"


def name_says_nothing(filename: str | os.PathLike[str]) -> bool:
    """True for names made only of numbers, single letters and ``GENERIC_WORDS``."""
    return all(t.isdigit() or len(t) == 1 or t in GENERIC_WORDS for t in tokens(filename))


@dataclass(frozen=True)
class RoleChoice:
    """A stem's role and where it came from: ``source`` is "roles.toml", "name", "audio" or
    "none" (the name says nothing and the sound is unclear); ``reason`` says why, in words."""

    role: str
    source: str
    reason: str


def resolve_role(name: str, audio: np.ndarray | None = None, sample_rate: float | None = None,
                 override: dict[str, str] | None = None) -> RoleChoice:
    """The role of stem ``name``: roles.toml wins, then a name that names a role, then the sound
    (``audio`` (channels, samples) at ``sample_rate``; without audio such a name gives "other").
    """
    if override and name in override:
        return RoleChoice(override[name], "roles.toml", f"set in {ROLES_FILE}")
    by_name = role_from_name(name)
    if by_name != "other" or not name_says_nothing(name):
        said = "the name matches no role" if by_name == "other" else "from the name"
        return RoleChoice(by_name, "name", said)
    if audio is None or sample_rate is None:
        return RoleChoice("other", "none", "the name says nothing and no audio was given")
    if not np.any(np.abs(np.asarray(audio)) > 1e-9):
        return RoleChoice("other", "none", "the name says nothing and the stem is silent")
    heard = role_from_audio(audio, sample_rate)
    if heard.role == "other":
        return RoleChoice("other", "none", f"the name says nothing and the sound is unclear "
                          f"('{heard.best}' {100 * heard.confidence:.0f}%, '{heard.runner_up}' "
                          f"next)")
    return RoleChoice(heard.role, "audio", f"{100 * heard.confidence:.0f}% sure, next "
                      f"'{heard.runner_up}'; {heard.why}")


def check_role(role: object, where: str) -> str:
    """``role`` if it is one of ROLES, else SessionError naming ``where`` and the allowed roles."""
    if isinstance(role, str) and role in ROLES:
        return role
    hint = ""
    if isinstance(role, str):
        close = difflib.get_close_matches(role.lower(), ROLES, n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
    raise SessionError(f"{where}: unknown role {role!r}{hint}; allowed roles: "
                       f"{', '.join(ROLES)}")


def load_roles_override(path: str | os.PathLike[str]) -> dict[str, str]:
    """Parse a ``roles.toml`` of ``track = "role"`` lines (track = file name without extension).

    Keys may also be full file names ("vox.wav"); they are reduced to the stem. Unknown roles,
    non-string values and TOML syntax errors raise SessionError naming the file and the key.
    """
    p = Path(path)
    try:
        with open(p, "rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError as exc:
        raise SessionError(f"roles file '{p}' does not exist") from exc
    except tomllib.TOMLDecodeError as exc:
        raise SessionError(f"roles file '{p}' is not valid TOML: {exc}; expected lines like "
                           f"vox_main = \"vocals\"") from exc
    except UnicodeDecodeError as exc:
        raise SessionError(f"roles file '{p}' is not UTF-8 text") from exc
    roles: dict[str, str] = {}
    for key, value in data.items():
        where = f"roles file '{p}', track '{key}'"
        if not isinstance(value, str):
            raise SessionError(f"{where}: expected a role string like \"vocals\", got "
                               f"{type(value).__name__} {value!r}; allowed roles: "
                               f"{', '.join(ROLES)}")
        track = Path(key).stem if Path(key).suffix.lower() in AUDIO_EXTENSIONS else key
        if track in roles:
            raise SessionError(f"{where}: track '{track}' is given twice")
        roles[track] = check_role(value.strip().lower(), where)
    return roles


def assign_roles(track_names: list[str], override: dict[str, str] | None = None) -> dict[str, str]:
    """Role per track name: the override where it names the track, the rules table elsewhere."""
    override = override or {}
    return {name: override.get(name, role_from_name(name)) for name in track_names}
