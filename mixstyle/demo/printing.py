"""Demo producers who print a bus limiter into the mix they bounce, and what they share.

Real producers rarely bounce a peak-normalised mix: many drive the mix bus into a clipper or
limiter and print it, so ``mix.wav`` is already loud and dense. ``dex`` does that with
pedalboard's built-in effects:

    tracks (ava's track decisions, dex's tastes) -> sum trimmed to the pre-print level
    -> glue Compressor -> Gain (drive, found by iteration) -> Limiter (its last step clips at
    0 dBFS) -> Gain (ceiling)

so the mix lands at its loudness target (within 0.2 LU) with a sample peak never above the
ceiling. The drive, the limiting it caused and the true per-track compressor settings with
their measured gain reduction go to ``producer_decisions.json`` (for measuring how well mixstyle
recovers them; learning code never reads it). ``sends.py`` (rio) and ``zam.py`` (zed) use the
pieces here too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import pedalboard as pb

from dsp.errors import ParameterError
from dsp.loudness import drive_for_loudness, true_and_sample_peak_db
from mixstyle.demo import _analysis as an
from mixstyle.demo.producers import (MasterTaste, MixResult, Producer, Stems, TrackProcess,
                                     _tastes, check_stems, master_mix, mix_tracks, rounded)

DRUMS = ("kick", "snare", "overheads", "drums")
TARGET_TOLERANCE_LU = 0.2
JUCE_LIMITER_MAKEUP_DB = 3.75          # + -threshold_db: pedalboard.Limiter's own output gain


def measured_compression(comp: Callable[[dict[str, Any]], pb.Plugin] | None = None
                         ) -> TrackProcess:
    """A track process that runs the chain and measures its compressor's gain reduction.

    The compressor is the chain's last plugin when the decisions hold ``comp_ratio``; with
    ``comp`` it is replaced by ``comp(decisions)`` (e.g. a VST3 plug-in set from them). The gain
    reduction is the stem's loud-part level (``_analysis.loud_level_db``) before the compressor
    minus after it, in dB.
    """
    def process(chain: list[pb.Plugin], audio: np.ndarray, sr: float,
                d: dict[str, Any]) -> np.ndarray:
        if "comp_ratio" not in d:
            return pb.Pedalboard(chain)(audio, sr) if chain else audio
        pre = pb.Pedalboard(chain[:-1])(audio, sr) if len(chain) > 1 else audio
        compressor = chain[-1] if comp is None else comp(d)
        post = compressor(pre, sr)
        before, after = an.loud_level_db(pre, sr), an.loud_level_db(post, sr)
        d["measured"]["comp_input_loud_level_dbfs"] = before
        d["measured"]["comp_output_loud_level_dbfs"] = after
        d["measured"]["comp_gain_reduction_db"] = before - after
        return post
    return process


def drive_to_target(render: Callable[[float], np.ndarray], sr: float, target_lufs: float,
                    start_db: float, range_db: tuple[float, float], where: str,
                    attempts: int = 14) -> tuple[float, np.ndarray, float]:
    """(drive dB, output, its loudness): the drive into ``render`` that meets ``target_lufs``
    (``dsp.loudness.drive_for_loudness``, at most ``attempts`` renders); raises ParameterError
    naming ``where`` when the target is out of reach."""
    drive, out, lufs = drive_for_loudness(render, sr, target_lufs, start_db, range_db,
                                          steps=attempts - 1, max_slope=1.5)
    if lufs > an.SILENCE_LUFS and abs(lufs - target_lufs) > TARGET_TOLERANCE_LU:
        raise ParameterError(f"{where}: the bus print reaches {lufs:.2f} LUFS, not the target "
                             f"{target_lufs} LUFS (+-{TARGET_TOLERANCE_LU} LU) with a drive in "
                             f"{range_db[0]} .. {range_db[1]} dB")
    return drive, out, lufs


def print_report(before: np.ndarray, after: np.ndarray, sr: float) -> dict[str, float]:
    """How much a bus print took: loudness, peaks and PLR before and after it.

    ``limiting_db`` is the fall of the sample-peak-to-loudness ratio (what a limiter or clipper
    does: peaks held while loudness rises); ``true_plr_db`` is true peak minus loudness.
    """
    lufs_in, lufs_out = an.loudness_lufs(before, sr), an.loudness_lufs(after, sr)
    tp_in, sp_in = true_and_sample_peak_db(before, sr)
    tp_out, sp_out = true_and_sample_peak_db(after, sr)
    return {"loudness_in_lufs": lufs_in, "sample_peak_in_dbfs": sp_in,
            "loudness_lufs": lufs_out, "sample_peak_dbfs": sp_out, "true_peak_dbtp": tp_out,
            "true_plr_db": tp_out - lufs_out,
            "limiting_db": (sp_in - lufs_in) - (sp_out - lufs_out)}


def trimmed(mix: np.ndarray, sr: float, lufs: float) -> tuple[np.ndarray, float]:
    """(the float64 sum as float32 at ``lufs``, the trim in dB): the level into the bus print."""
    level = an.loudness_lufs(mix.astype(np.float32), sr)
    trim = lufs - level if level > an.SILENCE_LUFS else 0.0
    return (mix * 10.0 ** (trim / 20.0)).astype(np.float32), trim


@dataclass(frozen=True)
class LimiterPrint:
    """A bus print with pedalboard's effects: glue compressor, drive, Limiter, ceiling.

    JUCE's Limiter (pedalboard.Limiter) is a limiter and a clipper: a fixed first compressor
    (-10 dB, 4:1), a second one at ``limiter_threshold_db`` (1000:1, no look-ahead), then a gain
    of 3.75 dB - threshold (measured: a -20 dBFS sine comes out 7.75 dB louder at -4 dB), then a
    hard clip at 0 dBFS -- so up to 3.75 dB of the peaks are clipped. The Gain after it sets the
    sample-peak ceiling exactly; the drive into it is found for ``target_lufs``.
    """

    target_lufs: float
    ceiling_db: float
    glue_ratio: float
    glue_depth_db: float                 # glue threshold this far below the sum's loud parts
    glue_attack_ms: float
    glue_release_ms: float
    limiter_threshold_db: float
    limiter_release_ms: float
    drive_range_db: tuple[float, float] = (-6.0, 24.0)

    def __post_init__(self) -> None:
        if not -20.0 <= self.target_lufs <= -6.0:
            raise ParameterError(f"target_lufs = {self.target_lufs} is out of range: allowed "
                                 "-20 .. -6 LUFS")
        if not -6.0 <= self.ceiling_db <= 0.0:
            raise ParameterError(f"ceiling_db = {self.ceiling_db} is out of range: allowed "
                                 "-6 .. 0 dBFS")

    def glue(self, threshold_db: float) -> pb.Compressor:
        return pb.Compressor(threshold_db=threshold_db, ratio=self.glue_ratio,
                             attack_ms=self.glue_attack_ms, release_ms=self.glue_release_ms)

    def chain(self, glue_threshold_db: float, drive_db: float) -> pb.Pedalboard:
        return pb.Pedalboard([
            self.glue(glue_threshold_db),
            pb.Gain(gain_db=drive_db),
            pb.Limiter(threshold_db=self.limiter_threshold_db,
                       release_ms=self.limiter_release_ms),
            pb.Gain(gain_db=self.ceiling_db)])

    def apply(self, mix: np.ndarray, sr: float, where: str) -> tuple[np.ndarray, dict[str, Any]]:
        glue = min(0.0, an.loud_level_db(mix, sr) - self.glue_depth_db)
        glued = self.glue(glue)(mix, sr)
        start = self.target_lufs - an.loudness_lufs(glued, sr)
        drive, out, _ = drive_to_target(lambda g: self.chain(glue, g)(mix, sr), sr,
                                        self.target_lufs, start, self.drive_range_db, where)
        return out.astype(np.float32), {
            "glue_comp_threshold_db": glue, "glue_comp_ratio": self.glue_ratio,
            "glue_comp_attack_ms": self.glue_attack_ms,
            "glue_comp_release_ms": self.glue_release_ms,
            "gain_into_limiter_db": drive, "juce_limiter_threshold_db": self.limiter_threshold_db,
            "juce_limiter_makeup_db": JUCE_LIMITER_MAKEUP_DB - self.limiter_threshold_db,
            "limiter_release_ms": self.limiter_release_ms, "ceiling_db": self.ceiling_db,
            "target_lufs": self.target_lufs, **print_report(glued, out, sr)}


@dataclass(frozen=True)
class PrintingProducer(Producer):
    """A producer whose mix.wav is the tracks' sum trimmed to ``mix_lufs`` and then printed
    through their bus limiter (``bus``); master.wav is their master chain on that mix."""

    bus: LimiterPrint | None = None

    def mix(self, stems: Stems, sample_rate: float, song_name: str) -> MixResult:
        if self.bus is None:
            raise ParameterError(f"producer {self.name!r} has no bus print (bus=None)")
        sr, checked = check_stems(stems, sample_rate, song_name)
        total, tracks = mix_tracks(self, checked, sr, song_name, measured_compression())
        pre, trim = trimmed(total, sr, self.mix_lufs)
        mix, bus_d = self.bus.apply(pre, sr, f"producer {self.name!r}, song {song_name!r}")
        return finish(self, song_name, tracks, mix, sr, {"pre_print_trim_db": trim,
                                                         "bus_print": bus_d})


def finish(producer: Producer, song_name: str, tracks: dict[str, Any], mix: np.ndarray,
           sr: float, extra: dict[str, Any]) -> MixResult:
    """Master ``mix`` and gather the decisions (rounded like the other producers')."""
    master, master_d = master_mix(producer.master_taste, mix, sr)
    decisions = {"producer": producer.name, "song": song_name, "tracks": tracks, **extra,
                 "mix_lufs": an.loudness_lufs(mix, sr), "master": master_d}
    return MixResult(mix, master, rounded(decisions))


DEX = PrintingProducer(
    "dex", "loud and dense: hard-compressed drums and bass up front, vocals inside the wall, "
           "the mix bus glued and driven into a limiter to -10 LUFS, printed into the mix",
    _tastes(levels={"kick": 2.0, "bass": 2.0, "snare": 1.0, "guitar": 1.0, "synth": 1.0,
                    "vocals": -1.0, "overheads": -1.0},
            hpf_scale=1.2, mud_scale=1.3, presence_scale=1.2, air_add_db=1.0,
            low_shelf={"kick": 2.5, "bass": 1.5},
            comp={**{d: (1.5, 1.3) for d in DRUMS}, "bass": (1.5, 1.4), "*": (1.4, 1.3)},
            pan_scale=1.2),
    MasterTaste(80.0, 0.5, 3000.0, 0.5, 10000.0, 1.0, 1.5, 1.0, 20.0, 150.0, -2.0, 50.0,
                -9.0, -0.3),
    mix_lufs=-16.0,
    bus=LimiterPrint(target_lufs=-10.0, ceiling_db=-0.3, glue_ratio=2.0, glue_depth_db=3.0,
                     glue_attack_ms=10.0, glue_release_ms=100.0, limiter_threshold_db=-4.0,
                     limiter_release_ms=40.0))
