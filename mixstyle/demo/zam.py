"""Demo producer ``zed``: the real zam-plugins VST3s (Debian package zam-plugins), not our DSP.

    tracks: ZamCompX2 on drums, bass and vocals (its own compressor design), set from zed's
            tastes; the other tracks are not compressed
    bus:    the sum trimmed to zed's pre-print level -> ZaMaximX2 (threshold = drive, found by
            iteration for -12 LUFS; output ceiling -0.8 dBFS), printed into mix.wav

The plug-ins are loaded through ``pedalboard.load_plugin`` (which compensates their latency).
Parameter names and units are the plug-ins' own as pedalboard reports them (``threshold_db``,
``ratio``, ``attack_ms``, ``release_ms``, ``knee_db``, ``makeup_db``; ZaMaximX2:
``threshold_db``, ``output_ceiling_db``, ``release_ms``), and the decisions record the values
read back from the plug-in (it quantises them slightly).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pedalboard as pb

from dsp.errors import ParameterError
from mixstyle.demo import _analysis as an
from mixstyle.demo.printing import (DRUMS, drive_to_target, finish, measured_compression,
                                    print_report, trimmed)
from mixstyle.demo.producers import (MasterTaste, MixResult, Producer, RoleTaste, Stems,
                                     _tastes, check_stems, mix_tracks)
from mixstyle.demo.songs import DemoToolError
from mixstyle.export.zam_maxim import VST3_DIR

COMPRESSOR, MAXIMIZER = "ZamCompX2", "ZaMaximX2"


def bundle_path(plugin: str, vst3_dir: Path | None = None) -> Path:
    """The plug-in's .vst3 bundle; DemoToolError naming it and the Debian package if absent."""
    path = (VST3_DIR if vst3_dir is None else Path(vst3_dir)) / f"{plugin}.vst3"
    if not path.exists():
        raise DemoToolError(f"demo producer 'zed' needs the VST3 plug-in {path} (install the "
                            "Debian package 'zam-plugins': apt-get install zam-plugins)")
    return path


def load_zam(plugin: str, vst3_dir: Path | None = None) -> Any:
    path = bundle_path(plugin, vst3_dir)
    try:
        return pb.load_plugin(str(path))
    except (ImportError, RuntimeError, ValueError) as exc:
        raise DemoToolError(f"demo producer 'zed': pedalboard cannot load the VST3 plug-in "
                            f"{path}: {exc}") from exc


def set_params(plugin: Any, name: str, values: Mapping[str, float]) -> dict[str, float]:
    """Set ``values`` (clipped to each parameter's range); return what the plug-in holds."""
    out = {}
    for key, value in values.items():
        if key not in plugin.parameters:
            raise ParameterError(f"{name} has no parameter {key!r}; it has "
                                 f"{', '.join(sorted(plugin.parameters))}")
        p = plugin.parameters[key]
        setattr(plugin, key, float(np.clip(value, p.min_value, p.max_value)))
        out[key] = float(getattr(plugin, key))
    return out


@dataclass(frozen=True)
class ZamPrint:
    """ZaMaximX2 on the bus: its threshold is the drive (lower = louder), then its ceiling."""

    target_lufs: float = -12.0
    output_ceiling_db: float = -0.8
    release_ms: float = 25.0
    knee_db: float = 2.0                   # ZamCompX2's knee on every compressed track
    vst3_dir: Path | None = None

    def apply(self, mix: np.ndarray, sr: float, where: str) -> tuple[np.ndarray, dict[str, Any]]:
        maxim = load_zam(MAXIMIZER, self.vst3_dir)
        held: dict[str, float] = {}

        def render(drive_db: float) -> np.ndarray:
            held.update(set_params(maxim, MAXIMIZER, {
                "threshold_db": -drive_db, "output_ceiling_db": self.output_ceiling_db,
                "release_ms": self.release_ms}))
            return maxim(mix, sr)                        # reset=True: a fresh run each time

        start = self.target_lufs - an.loudness_lufs(mix, sr)
        drive, out, _ = drive_to_target(render, sr, self.target_lufs, start, (0.0, 30.0), where)
        held.update(set_params(maxim, MAXIMIZER, {"threshold_db": -drive}))
        return out.astype(np.float32), {
            "plugin": MAXIMIZER, **{f"zamaximx2_{k}": v for k, v in held.items()},
            "gain_into_limiter_db": -held["threshold_db"], "ceiling_db": self.output_ceiling_db,
            "target_lufs": self.target_lufs, **print_report(mix, out, sr)}


@dataclass(frozen=True)
class ZamProducer(Producer):
    """Tracks compressed by ZamCompX2 (roles with comp_ratio > 1), the bus by ZaMaximX2."""

    bus: ZamPrint = ZamPrint()

    def mix(self, stems: Stems, sample_rate: float, song_name: str) -> MixResult:
        sr, checked = check_stems(stems, sample_rate, song_name)
        comp = load_zam(COMPRESSOR, self.bus.vst3_dir)

        def zam_comp(d: dict[str, Any]) -> Any:
            held = set_params(comp, COMPRESSOR, {
                "threshold_db": d["comp_threshold_db"], "ratio": d["comp_ratio"],
                "attack_ms": d["comp_attack_ms"], "release_ms": d["comp_release_ms"],
                "knee_db": self.bus.knee_db, "makeup_db": 0.0})
            d.update({"comp_plugin": COMPRESSOR, "comp_threshold_db": held["threshold_db"],
                      "comp_ratio": held["ratio"], "comp_attack_ms": held["attack_ms"],
                      "comp_release_ms": held["release_ms"], "comp_knee_db": held["knee_db"],
                      "comp_makeup_db": held["makeup_db"]})
            return comp

        total, tracks = mix_tracks(self, checked, sr, song_name, measured_compression(zam_comp))
        pre, trim = trimmed(total, sr, self.mix_lufs)
        mix, bus_d = self.bus.apply(pre, sr, f"producer {self.name!r}, song {song_name!r}")
        return finish(self, song_name, tracks, mix, sr, {"pre_print_trim_db": trim,
                                                         "bus_print": bus_d})


def _zed_tastes() -> dict[str, RoleTaste]:
    compressed = (*DRUMS, "bass", "vocals", "backing_vocals")
    t = _tastes(levels={"kick": 1.5, "snare": 1.0, "bass": 1.0, "vocals": 2.0, "keys": -1.0,
                        "synth": -1.5},
                hpf_scale=1.0, mud_scale=1.5, presence_scale=1.0, air_add_db=0.0,
                low_shelf={"kick": 1.0},
                comp={"*": (0.0, 1.0), "kick": (1.0, 1.0), "snare": (1.2, 1.0),
                      "overheads": (1.0, 1.3), "drums": (1.5, 1.3), "bass": (0.8, 1.0),
                      "vocals": (1.0, 1.2), "backing_vocals": (1.0, 1.0)},
                pan_scale=0.9)
    times = {"kick": (30.0, 80.0), "snare": (15.0, 120.0), "overheads": (10.0, 200.0),
             "drums": (10.0, 150.0), "bass": (8.0, 250.0), "vocals": (2.0, 60.0),
             "backing_vocals": (5.0, 100.0)}
    for role in compressed:
        t[role] = replace(t[role], comp_attack_ms=times[role][0], comp_release_ms=times[role][1])
    return t


ZED = ZamProducer(
    "zed", "punchy and controlled with zam-plugins: ZamCompX2 on drums, bass and vocals (slow "
           "attacks on the drums), other tracks uncompressed, ZaMaximX2 on the bus to -12 LUFS",
    _zed_tastes(),
    MasterTaste(70.0, 1.0, 1200.0, -1.0, 8000.0, 1.5, 2.0, 2.0, 15.0, 120.0, -1.0, 60.0,
                -11.0, -1.0),
    mix_lufs=-17.0)
