"""The master's gain and limiter as a ZaMaximX2 preset (zam-plugins' stereo maximiser).

ZaMaximX2 has three controls: ``thresh`` (-30 .. 0 dB), ``ceil`` (-30 .. 0 dBFS) and ``rel``
(1 .. 100 ms). Measured through the plug-in (pedalboard, a steady sine and the songs of the
test): it raises its input by -``thresh`` dB, holds the peaks under 0 dBFS and scales the result
by ``ceil``. Our master runs the gain ``gain_db`` into a limiter whose ceiling is
``limiter_ceiling_db``, which is the same chain with

    thresh = ceiling - gain      (the drive, clipped to ZaMaximX2's 30 dB)
    ceil   = ceiling
    rel    = release, clipped to 1 .. 100 ms

Where the master turns the bus down below its ceiling (gain < ceiling: a quiet mix that is not
limited) ZaMaximX2 cannot attenuate before its limiter: ``thresh`` 0 and ``ceil`` = the gain
give the same level as long as the bus's peaks stay under 0 dBFS.

The two limiters differ in design (ours looks ahead by ``limiter_lookahead_ms`` with a smooth
release; ZaMaximX2 has its own), so the same drive gives a different loudness where they limit
hard: up to 0.7 LU quieter at 10-24 dB of drive on the demo songs, within 0.15 LU at a few dB.
Given the master bus audio of the song (before the gain) and the loudness the mix reached,
``calibrate`` runs the real plug-in and moves the drive until it reaches that loudness
(``dsp.loudness.drive_for_loudness``, ``TOLERANCE_LU``): the preset then plays the song at the predicted loudness.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from dsp.loudness import drive_for_loudness
from dsp.params import MASTER, validate

ZAMAXIMX2_CLASS_ID = "2046504473616C6332584D5A00000000"
MAXIM_ORDER = ("rel", "ceil", "thresh")
DRIVE_MAX_DB = 30.0
CEIL_MIN_DB = -30.0
RELEASE_MIN_MS, RELEASE_MAX_MS = 1.0, 100.0
TOLERANCE_LU = 0.05
MAX_STEPS = 8
# where the zam-plugins VST3 bundles are (the demo producer zed loads them from here too)
VST3_DIR = Path(os.environ.get("MIXSTYLE_VST3_DIR", "/usr/lib/vst3"))


def zamaximx2_values(master: Mapping[str, Any], where: str = "master"
                     ) -> tuple[dict[str, float], list[str]]:
    """ZaMaximX2 values for the master's gain and limiter (module docstring), and notes on
    what could not be carried over exactly."""
    p = validate(MASTER, master, where)
    gain, ceiling = float(p["gain_db"]), float(p["limiter_ceiling_db"])
    notes: list[str] = []
    release = float(np.clip(p["limiter_release_ms"], RELEASE_MIN_MS, RELEASE_MAX_MS))
    if release != p["limiter_release_ms"]:
        notes.append(f"limiter release {p['limiter_release_ms']:g} ms clamped to ZaMaximX2's "
                     f"{release:g} ms")
    drive = gain - ceiling
    if drive >= 0.0:
        values = {"rel": release, "ceil": ceiling, "thresh": -min(drive, DRIVE_MAX_DB)}
        if drive > DRIVE_MAX_DB:
            notes.append(f"limiter drive {drive:.2f} dB (gain {gain:g} dB into a {ceiling:g} "
                         f"dBFS ceiling) clamped to ZaMaximX2's {DRIVE_MAX_DB:g} dB: raise the "
                         f"level before it by {drive - DRIVE_MAX_DB:.2f} dB in the DAW")
    else:
        values = {"rel": release, "ceil": max(gain, CEIL_MIN_DB), "thresh": 0.0}
        notes.append(f"master gain {gain:g} dB under the {ceiling:g} dBFS ceiling: ZaMaximX2 at "
                     f"threshold 0 dB with its ceiling at the gain (no limiting while the bus "
                     f"peaks under 0 dBFS)")
        if gain < CEIL_MIN_DB:
            notes.append(f"master gain {gain:g} dB below ZaMaximX2's {CEIL_MIN_DB:g} dB ceiling: "
                         f"lower the level before it by {CEIL_MIN_DB - gain:.2f} dB in the DAW")
    notes.append(f"limiter lookahead {p['limiter_lookahead_ms']:g} ms: ZaMaximX2 uses its own")
    return values, notes


def load_zamaximx2(vst3_dir: Path | None = None) -> Any:
    """The real plug-in through pedalboard, or None where it is not installed / not loadable."""
    path = (VST3_DIR if vst3_dir is None else Path(vst3_dir)) / "ZaMaximX2.vst3"
    if not path.exists():
        return None
    try:
        import pedalboard
        return pedalboard.load_plugin(str(path))
    except (ImportError, RuntimeError, ValueError):
        return None


def run_zamaximx2(plugin: Any, values: Mapping[str, float], audio: np.ndarray,
                  sample_rate: float) -> np.ndarray:
    """``audio`` (2, n) through ``plugin`` set to ``values`` (a fresh run: no state carried)."""
    plugin.release_ms = float(values["rel"])
    plugin.output_ceiling_db = float(values["ceil"])
    plugin.threshold_db = float(values["thresh"])
    return plugin(np.ascontiguousarray(audio, dtype=np.float32), sample_rate, reset=True)


def calibrate(values: Mapping[str, float], bus: np.ndarray, sample_rate: float,
              target_lufs: float, plugin: Any) -> tuple[dict[str, float], float]:
    """``values`` with the drive moved until the real ``plugin`` brings ``bus`` (the master bus
    before its gain, (2, n)) to ``target_lufs``; returns them and the loudness reached. Only
    the drive moves (``thresh`` within -30 .. 0 dB); a target out of its reach ends at the
    nearest end."""
    out = dict(values)

    def run(drive: float) -> np.ndarray:
        return run_zamaximx2(plugin, dict(out, thresh=0.0 - drive), bus, sample_rate)

    drive, _, got = drive_for_loudness(run, sample_rate, target_lufs, -float(out["thresh"]),
                                       (0.0, DRIVE_MAX_DB), tolerance_lu=TOLERANCE_LU,
                                       steps=MAX_STEPS)
    out["thresh"] = 0.0 - drive
    return out, got
