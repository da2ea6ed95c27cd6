"""The console setting as the parameter table's JSON (``dsp.params.dumps``), written atomically.

The file reads back with ``dsp.params.loads``. ``sample_rate_hz`` (optional) records the rate the
setting was made for; the reader accepts it as a top-level key.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from dsp.params import ConsoleSetting, dumps
from dsp.validate import check_sample_rate
from mixstyle.export.safe_zip import write_bytes_atomic


def setting_json(setting: ConsoleSetting, sample_rate_hz: float | None = None) -> str:
    """The JSON text (validated through the table; raises ParameterError on bad values)."""
    if not isinstance(setting, ConsoleSetting):
        raise TypeError(f"setting must be a dsp.params.ConsoleSetting, got "
                        f"{type(setting).__name__}")
    text = dumps(setting)
    if sample_rate_hz is None:
        return text + "\n"
    data = json.loads(text)
    data["sample_rate_hz"] = check_sample_rate(sample_rate_hz)
    return json.dumps(data, indent=2) + "\n"


def export_json(setting: ConsoleSetting, out_path: str | os.PathLike[str],
                sample_rate_hz: float | None = None) -> Path:
    """Write the setting's JSON to ``out_path`` atomically; returns the path."""
    return write_bytes_atomic(out_path, setting_json(setting, sample_rate_hz).encode("utf-8"))
