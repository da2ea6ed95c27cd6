"""A corrected song: the producer's own console setting for a song, learned as it is.

Layout (the song folder of a session, with ``setting.json`` in place of or beside the mix)::

    SESSIONS/<song>/stems/<track>.<ext>
    SESSIONS/<song>/setting.json    the parameter-table JSON ``mixstyle mix --params`` writes
                                    (and the studio's "Keep as my mix")
    SESSIONS/<song>/mix.<ext>       optional: if there, it is not learned (the setting wins)

The setting must name exactly the song's stems: one track per stem file, named after the file
without its extension (a track of a stem the loader skipped as silent is allowed and dropped with
the stem). Its tracks are put in the stems' order; each track's role is the loader's (roles.toml,
the name, the sound), the one its features were measured with.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from dsp.errors import ParameterError
from dsp.params import ConsoleSetting, TrackSetting, setting_from_dict
from mixstyle.sessions import check as chk
from mixstyle.sessions.check import Issue
from mixstyle.sessions.load import SETTING_FILE, Stem, load_song_stems


@dataclass(frozen=True)
class CorrectedSong:
    """A song learned from the producer's setting: its stems (as ``load_song`` loads them),
    the setting (tracks in the stems' order), the setting's file and the mix it overrode."""

    name: str
    folder: Path
    sample_rate: float
    stems: tuple[Stem, ...]
    setting: ConsoleSetting
    setting_path: Path
    overridden_mix: Path | None
    warnings: tuple[Issue, ...]


def has_setting(folder: Path) -> bool:
    """Whether the song folder holds a corrected setting (``setting.json``)."""
    return (Path(folder) / SETTING_FILE).is_file()


def read_setting(path: Path, song: str) -> ConsoleSetting:
    """``path`` parsed and validated against the parameter table (SessionError naming the song
    and the file otherwise)."""
    where = f"setting '{path.name}' of song '{song}'"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise chk.fail("setting_unreadable", where=where, detail=str(exc)) from None
    try:
        return setting_from_dict(data, path.name)
    except ParameterError as exc:
        raise chk.fail("setting_invalid", where=where, detail=str(exc)) from None


def match_stems(setting: ConsoleSetting, stems: tuple[Stem, ...], files: tuple[Path, ...],
                where: str) -> ConsoleSetting:
    """``setting`` with one track per loaded stem, in the stems' order and with their roles.
    A track with no stem file, or a loaded stem with no track, is a SessionError."""
    by_name = {t.name: t for t in setting.tracks}
    known = {p.stem for p in files}
    for t in setting.tracks:
        if t.name not in known:
            raise chk.fail("setting_extra_track", where=where, track=t.name,
                           stems=", ".join(sorted(known)))
    tracks = []
    for s in stems:
        if s.name not in by_name:
            raise chk.fail("setting_missing_track", where=where, stem=s.path.name,
                           tracks=", ".join(t.name for t in setting.tracks) or "none")
        tracks.append(TrackSetting(s.name, dict(by_name[s.name].params), s.role))
    return ConsoleSetting(tuple(tracks), dict(setting.master))


def load_corrected_song(folder: str | Path, sample_rate: float | None = 44100,
                        max_seconds: float | None = None) -> CorrectedSong:
    """Load a corrected song: its stems (``max_seconds``: the same excerpt ``load_song``
    takes) and its ``setting.json`` checked against them."""
    folder = Path(folder)
    path = folder / SETTING_FILE
    setting = read_setting(path, folder.name)   # a bad setting is found before any audio is read
    loaded = load_song_stems(folder, sample_rate, max_seconds)
    where = f"setting '{path.name}' of song '{folder.name}'"
    matched = match_stems(setting, loaded.stems, loaded.files, where)
    warnings = list(loaded.warnings)
    if loaded.mix_file is not None:
        warnings.append(chk.issue("mix_overridden", where=f"song '{folder.name}'",
                                  setting_file=path.name, mix=loaded.mix_file.name))
    return CorrectedSong(folder.name, folder, loaded.sample_rate, loaded.stems, matched, path,
                         loaded.mix_file, tuple(warnings))
