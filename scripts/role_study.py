"""How well roles come from the audio: stems renamed "Track NN" and loaded by the session loader.

    .venv/bin/python scripts/role_study.py demo CACHE_DIR...        demo songs (names = labels)
    .venv/bin/python scripts/role_study.py labels LABELS.json       [{"song", "stem", "role"}]
                                                                    beside <song>/stems/<stem>.wav
    .venv/bin/python scripts/role_study.py mods MODS_DIR            tracker-module stems named
                                                                    NN_<instrument>.wav (MOD_ROLES)
    .venv/bin/python scripts/role_study.py anonymise SESSIONS OUT   a copy of a sessions folder
                                                                    (hard links) with every stem
                                                                    renamed "Track NN"

Every song's stems are hard-linked into a temporary stems folder as "Track 01.wav"... in a
shuffled order, ``load_stem_set`` loads them (so the role comes from the sound, as for a user),
and the roles are compared with the labels. Prints the confusion table and per-role accuracy
(markdown, for docs/studies/roles_from_audio.md). Stems labelled "other" or None are counted
apart: the audio never says "other" except when unsure.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from collections import Counter
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# Instrument names of the Pingus modules (docs/studies/real_songs_sources.md) -> the role a
# producer would give the stem; None: no clear role (left out of the accuracy).
MOD_ROLES = {
    "trumpet": "lead", "guitar-myth": "guitar", "Flute": "lead", "closed-hihat": "drums",
    "Bass": "bass", "vibe": "keys", "Comp12": "synth", "Synth468": "synth", "Bass36": "bass",
    "Hihat55": "drums", "Hihat24": "drums", "Hihat53": "drums", "Hihat58": "drums",
    "Cymbal17": "overheads", "Synth594": "synth", "Synth623": "synth", "Synth625": "synth",
    "string-piano-timelord": "keys", "deep-strings-timelord": "synth", "flute-nino": "lead",
    "tom": "drums", "bass": "bass", "snare": "snare", "clickflute": "lead",
    "pseudo-chorus": None, "tropic": None, "high-strings-jefflim": "synth",
    "lowsynthstrings": "synth", "loudsnare": "snare", "loudersnare": "snare",
    "snare-roll": "snare", "flj00te": "lead", "conga": "drums", "bass-elwood": "bass",
    "crash-soundwave": "overheads", "piano-necros": "keys", "chime2-maz": None,
    "brass-choir-maz": None, "vibes": "keys", "piano": "keys", "bass-alexg": "bass",
    "snare-alexg": "snare", "hat-alexg": "drums", "cs1x-strings-scarjt": "synth",
    "whee-analog-bass": "bass", "zhumstrings-jefflim": "synth", "bright-piano": "keys",
    "medium-piano": "keys", "acoustic-guitar-maz": "guitar", "chime": None,
    "bass-guitar-maz": "bass", "alesis-piano-tek": "keys", "mars1-necros": None,
    "pianobang": "keys", "piano-tek": "keys", "bassguitar-maz": "bass", "squarewave": "synth",
    "bassdrum": "kick", "snaredrum": "snare", "brasschoir-maz": None, "pop-maz": None,
    "whee-maz": None, "buzz-alexg": None, "bell-alexg": None, "strings": "synth",
    "bass-oboe": None, "flute": "lead", "thebewm": None,
}


def demo_items(caches: list[str]) -> list[tuple[str, Path, str | None]]:
    from mixstyle.demo.styles import STEM_ROLES
    return [(song.name, p, STEM_ROLES[p.stem]) for c in caches for song in sorted(Path(c).iterdir())
            if (song / "stems").is_dir() for p in sorted((song / "stems").glob("*.wav"))]


def label_items(labels: str) -> list[tuple[str, Path, str | None]]:
    base = Path(labels).parent
    return [(r["song"], base / r["song"] / "stems" / f"{r['stem']}.wav", r["role"])
            for r in json.loads(Path(labels).read_text())]


def mod_items(root: str) -> list[tuple[str, Path, str | None]]:
    return [(song.name, p, MOD_ROLES[p.stem.split("_", 1)[1]])
            for song in sorted(Path(root).iterdir()) if (song / "stems").is_dir()
            for p in sorted((song / "stems").glob("*.wav"))]


def heard_roles(items: list[tuple[str, Path, str | None]]) -> list[tuple[str | None, str, str]]:
    """(label, role the loader gave the anonymised stem, stem file) per item."""
    from mixstyle.sessions.load import load_stem_set
    rng = np.random.default_rng(0)
    out = []
    by_song: dict[str, list[tuple[Path, str | None]]] = {}
    for song, path, role in items:
        by_song.setdefault(song, []).append((path, role))
    with tempfile.TemporaryDirectory(prefix="role_study_") as tmp:
        for song, stems in by_song.items():
            folder = Path(tmp) / song
            folder.mkdir()
            truth = {}
            for k, i in enumerate(rng.permutation(len(stems))):
                path, role = stems[int(i)]
                name = f"Track {k + 1:02d}"
                os.link(path, folder / f"{name}.wav")
                truth[name] = (role, path.name)
            loaded = load_stem_set(folder, None, on_warning=lambda issue: None)
            for s in loaded.stems:
                out.append((truth[s.name][0], s.role, truth[s.name][1]))
    return out


def report(results: list[tuple[str | None, str, str]], title: str) -> str:
    from mixstyle.sessions.audio_roles import FAMILIES
    from mixstyle.sessions.roles import ROLES
    scored = [(t, h) for t, h, _ in results if t not in (None, "other")]
    roles = [r for r in ROLES if any(t == r for t, _ in scored)]
    cols = [r for r in ROLES if any(h == r for _, h in scored) or r in roles]
    lines = [f"### {title}", "",
             "| label \\ from audio | " + " | ".join(c.replace("_", " ") for c in cols)
             + " | right |", "|---" * (len(cols) + 2) + "|"]
    for r in roles:
        got = Counter(h for t, h in scored if t == r)
        n = sum(got.values())
        lines.append(f"| {r} | " + " | ".join(str(got.get(c, "")) for c in cols)
                     + f" | {got.get(r, 0)}/{n} |")
    right = sum(t == h for t, h in scored)
    unsure = sum(h == "other" for _, h in scored)
    family = {r: i for i, fam in enumerate(FAMILIES) for r in fam}
    near = sum(t != h and h != "other" and family[t] == family[h] for t, h in scored)
    far = len(scored) - right - near - unsure
    n = max(1, len(scored))
    lines += ["", f"Right: {right}/{len(scored)} ({100 * right / n:.0f}%); a role of the same "
              f"family: {near}; 'other' (unsure): {unsure}; another family: {far} "
              f"({100 * far / n:.0f}%)."]
    apart = Counter((t, h) for t, h, _ in results if t in (None, "other"))
    if apart:
        lines.append("Not scored (no clear label): " + ", ".join(
            f"{t or 'unclear'} -> {h}: {n}" for (t, h), n in sorted(apart.items(),
                                                                   key=lambda kv: str(kv[0]))))
    return "\n".join(lines) + "\n"


def anonymise(sessions: str, out: str) -> None:
    """Hard-link every song of ``sessions`` into ``out``, stems renamed "Track NN" (shuffled)."""
    rng = np.random.default_rng(0)
    for song in sorted(p for p in Path(sessions).iterdir() if (p / "stems").is_dir()):
        dst = Path(out) / song.name
        (dst / "stems").mkdir(parents=True, exist_ok=True)
        for f in song.iterdir():
            if f.is_file() and f.suffix == ".wav" and not (dst / f.name).exists():
                os.link(f, dst / f.name)
        stems = sorted((song / "stems").glob("*.wav"))
        for k, i in enumerate(rng.permutation(len(stems))):
            target = dst / "stems" / f"Track {k + 1:02d}.wav"
            if not target.exists():
                os.link(stems[int(i)], target)


def main() -> int:
    kind, args = sys.argv[1], sys.argv[2:]
    if kind == "anonymise":
        anonymise(args[0], args[1])
        return 0
    items = {"demo": lambda: demo_items(args), "labels": lambda: label_items(args[0]),
             "mods": lambda: mod_items(args[0])}[kind]()
    results = heard_roles(items)
    print(report(results, f"{kind}: {' '.join(args)} ({len(results)} stems)"))
    if os.environ.get("ROLE_STUDY_LIST"):
        for t, h, f in results:
            print(f"{'  ' if t == h else '! '}{f}: label {t}, audio {h}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
