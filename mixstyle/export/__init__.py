"""Exporters of a console setting: DAWproject, VST3 presets (zam-plugins), MIDI CC lanes, JSON.

``export(setting, stems, fmt, out_path)`` picks one by name; each module can also be used alone.
Every writer goes through a temp file and a rename, and refuses to write over one of the stems.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

from dsp.errors import ExportError
from dsp.params import ConsoleSetting
from mixstyle.export.dawproject import export_dawproject, import_dawproject
from mixstyle.export.json_export import export_json
from mixstyle.export.midi import export_midi
from mixstyle.export.vstpreset import export_vstpresets, preset_paths

FORMATS = ("dawproject", "vstpreset", "midi", "json")


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve() or (a.exists() and b.exists() and a.samefile(b))
    except OSError:
        return False


def export(setting: ConsoleSetting, stems: Sequence[tuple[str, str | os.PathLike[str]]],
           fmt: str, out_path: str | os.PathLike[str], *, sample_rate_hz: float = 48000.0,
           embed_audio: bool = False, master_bus: tuple[Any, float] | None = None) -> Any:
    """Export ``setting`` as ``fmt`` (one of FORMATS) to ``out_path``.

    ``out_path`` is a file, except for "vstpreset" where it is a folder. Returns what the
    format's writer returns (the written path, or a ``PresetExport`` for presets).
    ``sample_rate_hz`` is the session's rate: the presets are fitted at it, and the JSON
    (``sample_rate_hz``), the DAWproject (metadata comment) and the MIDI file (a text event)
    state it. ``master_bus`` (presets only): the song's master bus before its gain and the
    loudness its mix reached, for the ZaMaximX2's drive (``vstpreset.export_vstpresets``).
    """
    if not isinstance(setting, ConsoleSetting):
        raise TypeError(f"setting must be a dsp.params.ConsoleSetting, got "
                        f"{type(setting).__name__}")
    if not isinstance(fmt, str) or fmt.lower() not in FORMATS:
        raise ExportError(f"unknown export format {fmt!r}; known: {', '.join(FORMATS)}")
    fmt = fmt.lower()
    out = Path(out_path)
    inputs = [Path(p) for _, p in stems]
    targets = preset_paths(setting, out) if fmt == "vstpreset" else [out]
    for target in targets:
        for src in inputs:
            if _same_file(target, src):
                raise ExportError(f"refusing to export {fmt} to {target}: it is the input stem "
                                  f"{src.name!r} and would be overwritten")
    if fmt == "dawproject":
        return export_dawproject(setting, stems, out, embed_audio=embed_audio,
                                 sample_rate_hz=sample_rate_hz)
    if fmt == "vstpreset":
        return export_vstpresets(setting, out, sample_rate_hz=sample_rate_hz,
                                 master_bus=master_bus)
    if fmt == "midi":
        return export_midi(setting, out, sample_rate_hz=sample_rate_hz)
    return export_json(setting, out, sample_rate_hz=sample_rate_hz)


__all__ = ["FORMATS", "export", "export_dawproject", "import_dawproject", "export_json",
           "export_midi", "export_vstpresets"]
