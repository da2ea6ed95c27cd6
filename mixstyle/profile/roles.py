"""The roles a profile predicts for, for a folder of stems: the folder's ``roles.toml`` where it
names a stem, else guessed from the name (as ``mixstyle mix`` does). What the host asks of
``mixstyle`` besides the profile itself (``host`` imports nothing else of it); light to import
(no torch).
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from mixstyle.sessions.roles import ROLES_FILE, assign_roles, load_roles_override


def stem_roles(stems_dir: str | Path, names: Sequence[str]) -> dict[str, str]:
    """Stem name -> role for the stems ``names`` of ``stems_dir``."""
    override = Path(stems_dir) / ROLES_FILE
    return assign_roles(list(names), load_roles_override(override) if override.is_file() else {})
