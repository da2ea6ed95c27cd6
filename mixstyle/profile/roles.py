"""The roles a profile predicts for, for a folder of stems: the folder's ``roles.toml`` where it
names a stem, else guessed from the name, else (a name that says nothing, "Audio 07") from the
sound, as ``mixstyle mix`` does. What the host asks of ``mixstyle`` besides the profile itself
(``host`` imports nothing else of it); light to import (no torch).
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from mixstyle.io.audio import audio_info, is_audio_path, read_audio
from mixstyle.sessions.roles import (ROLES_FILE, RoleChoice, load_roles_override,
                                     name_says_nothing, resolve_role)

LISTEN_SECONDS = 120.0  # of a long stem's middle that the role is heard from


def _listen(path: Path) -> tuple[np.ndarray, float]:
    info = audio_info(path)
    n = int(LISTEN_SECONDS * info.sample_rate)
    start = max(0, (info.frames - n) // 2)
    return read_audio(path, start, n)


def stem_roles(stems_dir: str | Path, names: Sequence[str],
               on_choice: Callable[[str, RoleChoice], None] | None = None) -> dict[str, str]:
    """Stem name -> role for the stems ``names`` of ``stems_dir``; ``on_choice(name, choice)``
    hears each role that came from the sound (or that the sound could not give)."""
    folder = Path(stems_dir)
    override_path = folder / ROLES_FILE
    override = load_roles_override(override_path) if override_path.is_file() else {}
    files = {p.stem: p for p in sorted(folder.iterdir()) if p.is_file() and is_audio_path(p)} \
        if folder.is_dir() else {}
    roles = {}
    for name in names:
        audio: np.ndarray | None = None
        rate: float | None = None
        if name not in override and name_says_nothing(name) and name in files:
            audio, rate = _listen(files[name])
        choice = resolve_role(name, audio, rate, override)
        if on_choice is not None and choice.source in ("audio", "none"):
            on_choice(name, choice)
        roles[name] = choice.role
    return roles
