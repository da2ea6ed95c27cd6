"""The producer's typical master bus, as a file: ``MasterProfile`` and ``PROFILE/master.json``
(parameter-table JSON, ``dsp.params`` format, master section, plus notes). ``notes.input_lufs`` is
the loudness of the mixes the producer fed their master bus: new mixes are trimmed to it first, so
the glue compressor's threshold (dBFS) works as it did for them. Learned by
``mixstyle.mastering.learn``; read by the batch coordinator, so this imports no numba kernels and
no audio reader.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from dsp.errors import ParameterError, ProfileError
from dsp.files import write_text_atomic
from dsp.params import MASTER, ConsoleSetting, setting_from_dict, setting_to_dict, validate
from dsp.validate import check_range

MASTER_FILE = "master.json"


@dataclass(frozen=True)
class MasterProfile:
    """The producer's typical master: ``params`` (validated master section), the loudness of
    the mixes it was fed (``input_lufs``, None = no trim), how many songs and from what."""

    params: dict[str, Any]
    input_lufs: float | None = None
    songs: int = 0
    source: str = "masters"              # "masters", "mixes" or "given"
    song_names: tuple[str, ...] = field(default_factory=tuple)
    skipped: tuple[str, ...] = field(default_factory=tuple)   # "song: why" of unusable masters

    def __post_init__(self) -> None:
        object.__setattr__(self, "params", validate(MASTER, self.params, "master profile"))
        if self.input_lufs is not None:
            check_range("master profile input_lufs", self.input_lufs, -70.0, 0.0, "LUFS")

    def to_dict(self) -> dict[str, Any]:
        """The ``master.json`` document (dsp.params JSON, no tracks, plus notes)."""
        tidy = {k: v if v is None else float(f"{v:.9g}") for k, v in self.params.items()}
        doc = setting_to_dict(ConsoleSetting(tracks=(), master=tidy))
        doc["notes"] = {"kind": "master_profile", "source": self.source, "songs": self.songs,
                        "input_lufs": self.input_lufs, "song_names": list(self.song_names),
                        "skipped": list(self.skipped)}
        return doc

    @classmethod
    def from_dict(cls, data: Any, where: str = MASTER_FILE) -> "MasterProfile":
        if isinstance(data, MasterProfile):
            return data
        if not isinstance(data, Mapping):
            raise ProfileError(f"{where}: expected a JSON object, got {type(data).__name__}")
        if "format" not in data:  # a bare master section
            try:
                return cls(params=dict(data), source="given")
            except ParameterError as e:
                raise ProfileError(f"{where}: {e}") from None
        try:
            setting = setting_from_dict(data, where)
            notes = data.get("notes") or {}
            if not isinstance(notes, Mapping):
                raise ProfileError(f"{where}: 'notes' must be an object")
            lufs = notes.get("input_lufs")
            return cls(params=setting.master, input_lufs=None if lufs is None else float(lufs),
                       songs=int(notes.get("songs", 0)), source=str(notes.get("source", "given")),
                       song_names=tuple(str(s) for s in notes.get("song_names", ())),
                       skipped=tuple(str(s) for s in notes.get("skipped", ())))
        except (ParameterError, TypeError, ValueError) as e:
            raise ProfileError(f"{where}: {e}") from None


def save_master_profile(profile_dir: str | Path, master: Mapping[str, Any] | MasterProfile
                        ) -> Path:
    """Write ``PROFILE/master.json`` atomically (a document from ``learn_master``, a
    MasterProfile or a bare master section); returns its path."""
    folder = Path(profile_dir)
    folder.mkdir(parents=True, exist_ok=True)
    prof = MasterProfile.from_dict(master, "master profile to save")
    return write_text_atomic(folder / MASTER_FILE, json.dumps(prof.to_dict(), indent=2) + "\n")


def load_master_profile(profile_dir: str | Path) -> MasterProfile:
    """Read and validate ``PROFILE/master.json``; ProfileError names the file if it cannot."""
    path = Path(profile_dir) / MASTER_FILE
    if not Path(profile_dir).is_dir():
        raise ProfileError(f"profile folder '{profile_dir}' does not exist")
    if not path.is_file():
        raise ProfileError(f"profile '{profile_dir}' has no {MASTER_FILE}: learn one with "
                           f"'mixstyle learn SESSIONS --out {profile_dir}' (songs with "
                           f"master.<ext> teach the master bus)")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ProfileError(f"{path}: not readable JSON ({e})") from None
    return MasterProfile.from_dict(data, str(path))
