"""Demo producers: three engineers with different tastes who mix and master the demo songs.

They use only pedalboard's built-in effects (never mixstyle's console) and their own
constant-power pan, and they decide from what they hear in each stem, the way a person does:

- fader: each stem, after its processing, is set to a role-specific loudness relative to the
  band (vocals N LU above it...), so the fader depends on the stem's own level;
- high-pass: at a multiple of the stem's own low edge (where its lowest 1 % of energy lies);
- a cut at the stem's own strongest low-mid resonance, deeper the more it sticks out;
- presence/air boosts and low shelves by role; compressor threshold a role-specific depth below
  the level of the stem's loud parts, ratio/attack/release by role;
- pans by role, sides chosen per song (seeded by the song name);
- master: EQ, glue compressor relative to the mix's level, limiter, loudness target.

Each decision also gets a little seeded human inconsistency (about +-0.5 dB).
``producer_decisions.json`` written next to a session is for debugging only: mixstyle's learning
code must never read it.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass, replace
from typing import Any, Callable, Mapping, NamedTuple, Sequence

import numpy as np
import pedalboard as pb

from dsp.errors import ParameterError
from dsp.validate import check_audio, check_sample_rate
from mixstyle.demo import _analysis as an

BAND_REFERENCE_LUFS = -23.0
FADER_RANGE_DB = (-40.0, 24.0)


@dataclass(frozen=True)
class RoleTaste:
    """How a producer treats one role (levels in LU relative to the band, dB, Hz, ms)."""

    level_lu: float = -4.0
    hpf_factor: float = 1.0                       # high-pass at factor x the stem's low edge
    hpf_range_hz: tuple[float, float] = (40.0, 200.0)
    low_shelf_db: float = 0.0
    mud_cut_db: float = 2.0                       # deepest cut at the stem's own resonance
    mud_range_hz: tuple[float, float] = (150.0, 600.0)
    presence_db: float = 0.0
    presence_hz: float = 3500.0
    air_db: float = 0.0
    comp_ratio: float = 2.0
    comp_depth_db: float = 3.0                    # threshold this far below the loud parts
    comp_attack_ms: float = 20.0
    comp_release_ms: float = 200.0
    pan_spread: float = 0.0                       # 0 = centre, else |pan| (side per song)


_T = RoleTaste
BASE_TASTES: dict[str, RoleTaste] = {
    "kick": _T(1.0, 0.5, (20.0, 40.0), 0.0, 3.0, (200.0, 500.0), 1.5, 4000.0, 0.0, 4.0, 6.0,
               10.0, 80.0),
    "snare": _T(0.0, 0.8, (60.0, 120.0), 0.0, 3.0, (200.0, 600.0), 2.0, 5000.0, 0.0, 4.0, 6.0,
                5.0, 100.0),
    "overheads": _T(-5.0, 1.0, (100.0, 300.0), 0.0, 2.0, (200.0, 600.0), 0.0, 3500.0, 2.0,
                    2.0, 3.0, 20.0, 150.0),
    "drums": _T(-5.0, 1.0, (80.0, 250.0), 0.0, 2.0, (200.0, 600.0), 1.0, 5000.0, 1.0, 2.0,
                3.0, 15.0, 150.0, 0.5),
    "bass": _T(0.0, 0.5, (20.0, 45.0), 0.0, 2.0, (150.0, 400.0), 1.0, 1500.0, 0.0, 4.0, 6.0,
               20.0, 150.0),
    "guitar": _T(-2.0, 1.0, (60.0, 180.0), 0.0, 3.0, (150.0, 600.0), 1.5, 3000.0, 0.0, 2.5,
                 4.0, 15.0, 150.0, 0.6),
    "keys": _T(-3.0, 0.9, (40.0, 150.0), 0.0, 2.0, (150.0, 600.0), 0.0, 3000.0, 0.0, 2.0, 3.0,
               20.0, 200.0, 0.5),
    "synth": _T(-5.0, 1.0, (60.0, 200.0), 0.0, 2.0, (150.0, 600.0), 0.0, 3000.0, 1.0, 2.0,
                3.0, 30.0, 250.0, 0.7),
    "lead": _T(2.0, 1.0, (80.0, 200.0), 0.0, 2.0, (200.0, 600.0), 2.0, 3000.0, 1.0, 3.0, 5.0,
               10.0, 120.0, 0.15),
    "vocals": _T(3.0, 1.0, (80.0, 180.0), 0.0, 3.0, (200.0, 600.0), 2.5, 3500.0, 2.0, 3.5, 6.0,
                 5.0, 100.0),
    "backing_vocals": _T(-4.0, 1.0, (100.0, 250.0), 0.0, 2.0, (200.0, 600.0), 1.0, 3500.0, 2.0,
                         3.0, 5.0, 10.0, 150.0, 0.7),
    "fx": _T(-8.0, 1.0, (100.0, 300.0), pan_spread=0.6),
    "other": _T(-4.0, 1.0, (60.0, 200.0), pan_spread=0.5),
}


@dataclass(frozen=True)
class MasterTaste:
    low_shelf_hz: float
    low_shelf_db: float
    mid_hz: float
    mid_db: float
    high_shelf_hz: float
    high_shelf_db: float
    glue_ratio: float
    glue_depth_db: float
    glue_attack_ms: float
    glue_release_ms: float
    limiter_threshold_db: float
    limiter_release_ms: float
    target_lufs: float
    ceiling_db: float


@dataclass(frozen=True)
class Producer:
    """A demo engineer: per-role tastes, mix level and a master chain with a loudness target."""

    name: str
    description: str
    tastes: Mapping[str, RoleTaste]
    master_taste: MasterTaste
    mix_lufs: float = -18.0
    hpf_stages: int = 2                            # first-order sections: 1 = 6 dB/oct
    low_shelf_hz: float = 120.0
    air_hz: float = 10000.0
    jitter_db: float = 0.5

    def taste(self, role: str) -> RoleTaste:
        return self.tastes.get(role, self.tastes["other"])

    def mix(self, stems: Sequence[tuple[str, str, np.ndarray]], sample_rate: float,
            song_name: str) -> "MixResult":
        """Mix ``(name, role, audio (2, n))`` stems and master the mix; see MixResult."""
        return mix_song(self, stems, sample_rate, song_name)


class MixResult(NamedTuple):
    mix: np.ndarray          # (2, n) float32, the producer's mix at their mix level
    master: np.ndarray       # (2, n) float32, mastered to their loudness target
    decisions: dict[str, Any]


def _tastes(levels: Mapping[str, float], hpf_scale: float, mud_scale: float,
            presence_scale: float, air_add_db: float, low_shelf: Mapping[str, float],
            comp: Mapping[str, tuple[float, float]], pan_scale: float) -> dict[str, RoleTaste]:
    """BASE_TASTES adjusted: extra level per role, scaled HPF/mud/presence, added air,
    low shelves per role, (ratio, depth) multipliers per role ('*' = any), scaled pans."""
    out = {}
    for role, t in BASE_TASTES.items():
        ratio_x, depth_x = comp.get(role, comp.get("*", (1.0, 1.0)))
        out[role] = replace(
            t, level_lu=t.level_lu + levels.get(role, 0.0), hpf_factor=t.hpf_factor * hpf_scale,
            mud_cut_db=t.mud_cut_db * mud_scale, presence_db=t.presence_db * presence_scale,
            air_db=t.air_db + (air_add_db if t.air_db > 0 or air_add_db < 0 else 0.0),
            low_shelf_db=low_shelf.get(role, 0.0),
            comp_ratio=max(1.0, 1.0 + (t.comp_ratio - 1.0) * ratio_x),
            comp_depth_db=t.comp_depth_db * depth_x,
            pan_spread=min(1.0, t.pan_spread * pan_scale))
    return out


_DRUMS = ("kick", "snare", "overheads", "drums")
PRODUCERS: dict[str, Producer] = {p.name: p for p in (
    Producer(
        "ava", "bright, loud and punchy: hard-hit drums, vocals forward, bass dead centre",
        _tastes(levels={"vocals": 1.5, "lead": 1.0, "kick": 1.0, "snare": 1.5, "overheads": 2.0,
                        "bass": -0.5, "synth": -1.0},
                hpf_scale=1.0, mud_scale=1.0, presence_scale=1.6, air_add_db=2.0,
                low_shelf={"kick": 1.5},
                comp={**{d: (1.8, 1.6) for d in _DRUMS}, "*": (1.2, 1.2)}, pan_scale=0.7),
        MasterTaste(90.0, 1.5, 2500.0, 1.0, 9000.0, 2.5, 3.0, 5.0, 10.0, 100.0, -6.0, 60.0,
                    -9.0, -0.3),
        mix_lufs=-16.0),
    Producer(
        "ben", "warm, dark and dynamic: low end up, top rolled off, wide keys and guitars, "
               "gentle compression, a quieter master",
        _tastes(levels={"vocals": -1.0, "keys": 1.0, "guitar": 1.0, "bass": 1.5, "kick": 0.5,
                        "overheads": -2.0},
                hpf_scale=0.6, mud_scale=0.5, presence_scale=0.4, air_add_db=-2.5,
                low_shelf={"kick": 1.0, "bass": 2.0, "keys": 1.5, "guitar": 1.0},
                comp={"*": (0.5, 0.5)}, pan_scale=1.5),
        MasterTaste(150.0, 2.5, 3000.0, -1.0, 6000.0, -3.0, 1.5, 2.0, 30.0, 300.0, -1.0, 150.0,
                    -14.0, -1.0),
        mix_lufs=-20.0, hpf_stages=1),
    Producer(
        "cleo", "modern and clean: tight high-passes, scooped low mids, wide stereo",
        _tastes(levels={"vocals": 0.5, "bass": 0.5, "synth": 1.0},
                hpf_scale=1.6, mud_scale=1.8, presence_scale=1.0, air_add_db=0.5,
                low_shelf={}, comp={"*": (1.0, 1.0)}, pan_scale=1.4),
        MasterTaste(60.0, 0.5, 450.0, -2.0, 10000.0, 1.0, 2.0, 3.0, 20.0, 150.0, -3.0, 80.0,
                    -12.0, -1.0),
        mix_lufs=-18.0),
)}


def pan_gains(pan: float) -> tuple[float, float]:
    """Constant-power pan with 0 dB at centre: (gain L, gain R) for pan in [-1, 1]."""
    angle = math.pi * (pan + 1.0) / 4.0
    return math.sqrt(2.0) * math.cos(angle), math.sqrt(2.0) * math.sin(angle)


def _rng(*parts: object) -> np.random.Generator:
    return np.random.default_rng(zlib.crc32(":".join(map(str, parts)).encode()))


def _track_chain(producer: Producer, taste: RoleTaste, audio: np.ndarray, sr: float,
                 rng: np.random.Generator) -> tuple[list[pb.Plugin], dict[str, Any]]:
    """Listen to one stem and decide its processing (everything but fader and pan)."""
    jit = producer.jitter_db

    def j(db: float) -> float:
        return db + float(rng.uniform(-jit, jit)) if db else 0.0

    def jf(hz: float) -> float:
        return hz * float(rng.uniform(0.97, 1.03))

    freqs, power = an.spectrum_db(audio, sr)
    edge = an.low_edge_hz(freqs, power)
    hpf = float(np.clip(jf(taste.hpf_factor * edge), *taste.hpf_range_hz))
    res_hz, prominence = an.strongest_resonance(freqs, power, *taste.mud_range_hz)
    mud_db = -min(taste.mud_cut_db, max(0.0, prominence) * 1.5) if taste.mud_cut_db else 0.0
    mud_db = min(0.0, j(mud_db)) if mud_db < -0.25 else 0.0
    loud_db = an.loud_level_db(audio, sr)
    # decisions use the parameter-table names of the nearest console control (debugging aid)
    d: dict[str, Any] = {"measured": {"low_edge_hz": edge, "resonance_hz": res_hz,
                                      "resonance_prominence_db": prominence,
                                      "loud_level_dbfs": loud_db},
                         "hpf_freq_hz": hpf, "hpf_stages": producer.hpf_stages}
    chain: list[pb.Plugin] = [pb.HighpassFilter(cutoff_frequency_hz=hpf)
                              for _ in range(producer.hpf_stages)]
    if taste.low_shelf_db:
        d["low_shelf_freq_hz"], d["low_shelf_gain_db"] = producer.low_shelf_hz, j(
            taste.low_shelf_db)
        chain.append(pb.LowShelfFilter(cutoff_frequency_hz=producer.low_shelf_hz,
                                       gain_db=d["low_shelf_gain_db"], q=0.707))
    if mud_db < 0:
        d["peak1_freq_hz"], d["peak1_gain_db"], d["peak1_q"] = res_hz, mud_db, 2.5
        chain.append(pb.PeakFilter(cutoff_frequency_hz=res_hz, gain_db=mud_db, q=2.5))
    if taste.presence_db:
        d["peak3_freq_hz"], d["peak3_gain_db"] = jf(taste.presence_hz), j(taste.presence_db)
        d["peak3_q"] = 1.0
        chain.append(pb.PeakFilter(cutoff_frequency_hz=d["peak3_freq_hz"],
                                   gain_db=d["peak3_gain_db"], q=1.0))
    if taste.air_db:
        d["high_shelf_freq_hz"], d["high_shelf_gain_db"] = producer.air_hz, j(taste.air_db)
        chain.append(pb.HighShelfFilter(cutoff_frequency_hz=producer.air_hz,
                                        gain_db=d["high_shelf_gain_db"], q=0.707))
    if taste.comp_ratio > 1.0 and loud_db > an.SILENCE_LUFS:  # a near-silent stem: nothing to do
        d["comp_threshold_db"] = float(np.clip(loud_db - j(taste.comp_depth_db), -60.0, 0.0))
        d["comp_ratio"] = taste.comp_ratio
        d["comp_attack_ms"], d["comp_release_ms"] = taste.comp_attack_ms, taste.comp_release_ms
        chain.append(pb.Compressor(threshold_db=d["comp_threshold_db"], ratio=taste.comp_ratio,
                                   attack_ms=taste.comp_attack_ms,
                                   release_ms=taste.comp_release_ms))
    return chain, d


def _pans(producer: Producer, stems: Sequence[tuple[str, str, np.ndarray]], song_name: str,
          rng: np.random.Generator) -> list[float]:
    """Centre roles stay centred; spread roles alternate sides, first side chosen per song."""
    side = 1.0 if _rng("pan", song_name).random() < 0.5 else -1.0
    pans = []
    for name, role, _ in stems:
        spread = producer.taste(role).pan_spread
        if spread <= 0.0:
            pans.append(0.0)
            continue
        pans.append(float(np.clip(side * spread * rng.uniform(0.85, 1.0), -1.0, 1.0)))
        side = -side
    return pans


def _master_chain(t: MasterTaste, glue_threshold_db: float, gain_db: float) -> pb.Pedalboard:
    return pb.Pedalboard([
        pb.LowShelfFilter(cutoff_frequency_hz=t.low_shelf_hz, gain_db=t.low_shelf_db, q=0.707),
        pb.PeakFilter(cutoff_frequency_hz=t.mid_hz, gain_db=t.mid_db, q=0.8),
        pb.HighShelfFilter(cutoff_frequency_hz=t.high_shelf_hz, gain_db=t.high_shelf_db, q=0.707),
        pb.Compressor(threshold_db=glue_threshold_db, ratio=t.glue_ratio,
                      attack_ms=t.glue_attack_ms, release_ms=t.glue_release_ms),
        pb.Gain(gain_db=gain_db),
        pb.Limiter(threshold_db=t.limiter_threshold_db, release_ms=t.limiter_release_ms),
        pb.Gain(gain_db=t.ceiling_db),      # JUCE's limiter clips at 0 dBFS: this is the ceiling
    ])


def master_mix(t: MasterTaste, mix: np.ndarray, sr: float) -> tuple[np.ndarray, dict[str, Any]]:
    """Master chain with the gain into the limiter found so the output meets the target."""
    glue_threshold = min(0.0, an.loud_level_db(mix, sr) - t.glue_depth_db)
    gain = t.target_lufs - an.loudness_lufs(mix, sr)
    out, lufs = mix, an.SILENCE_LUFS
    for attempt in range(6):
        out = _master_chain(t, glue_threshold, gain)(mix, sr)
        lufs = an.loudness_lufs(out, sr)
        if abs(lufs - t.target_lufs) < 0.05 or lufs <= an.SILENCE_LUFS or attempt == 5:
            break
        gain = float(np.clip(gain + (t.target_lufs - lufs), -40.0, 40.0))
    return out.astype(np.float32), {
        "low_shelf_freq_hz": t.low_shelf_hz, "low_shelf_gain_db": t.low_shelf_db,
        "peak2_freq_hz": t.mid_hz, "peak2_gain_db": t.mid_db, "peak2_q": 0.8,
        "high_shelf_freq_hz": t.high_shelf_hz, "high_shelf_gain_db": t.high_shelf_db,
        "comp_threshold_db": glue_threshold, "comp_ratio": t.glue_ratio,
        "comp_attack_ms": t.glue_attack_ms, "comp_release_ms": t.glue_release_ms,
        "gain_db": gain, "juce_limiter_threshold_db": t.limiter_threshold_db,
        "limiter_release_ms": t.limiter_release_ms, "limiter_ceiling_db": t.ceiling_db,
        "target_lufs": t.target_lufs, "loudness_lufs": lufs}


Stems = Sequence[tuple[str, str, np.ndarray]]
# how a track's chain is run: (chain, stem audio, sample rate, the track's decisions) -> audio;
# the bus-printing producers measure their compressors' gain reduction or swap in a plug-in here
TrackProcess = Callable[[list[pb.Plugin], np.ndarray, float, dict[str, Any]], np.ndarray]
# sees each track after its fader and pan: (name, role, (2, n) float32) -- e.g. for sends
TrackTap = Callable[[str, str, np.ndarray], None]


def _run_chain(chain: list[pb.Plugin], audio: np.ndarray, sr: float,
               d: dict[str, Any]) -> np.ndarray:
    return pb.Pedalboard(chain)(audio, sr) if chain else audio


def check_stems(stems: Stems, sample_rate: float,
                song_name: str) -> tuple[float, list[tuple[str, str, np.ndarray]]]:
    """(sample rate, the stems checked: named, stereo float32 and all the same length)."""
    sr = check_sample_rate(sample_rate)
    if not stems:
        raise ParameterError(f"song {song_name!r}: no stems to mix (expected a list of "
                             "(name, role, audio) tuples)")
    checked = []
    for item in stems:
        if not (isinstance(item, tuple) and len(item) == 3):
            raise TypeError(f"song {song_name!r}: each stem must be a (name, role, audio) tuple, "
                            f"got {type(item).__name__}")
        name, role, audio = item
        checked.append((str(name), str(role),
                        check_audio(audio, f"stem {name!r} of song {song_name!r}", channels=2)))
    n = checked[0][2].shape[1]
    for name, _, audio in checked:
        if audio.shape[1] != n:
            raise ParameterError(f"stem {name!r} of song {song_name!r} has {audio.shape[1]} "
                                 f"samples; every stem must have {n} (the first stem's length)")
    return sr, checked


def mix_tracks(producer: Producer, checked: Stems, sr: float, song_name: str,
               process: TrackProcess = _run_chain,
               tap: TrackTap | None = None) -> tuple[np.ndarray, dict[str, Any]]:
    """Each stem through its chain, fader and pan, summed: ((2, n) float64 sum, decisions)."""
    rng = _rng(producer.name, song_name)
    pans = _pans(producer, checked, song_name, rng)
    mix = np.zeros((2, checked[0][2].shape[1]), dtype=np.float64)
    tracks: dict[str, Any] = {}
    for (name, role, audio), pan in zip(checked, pans):
        taste = producer.taste(role)
        chain, d = _track_chain(producer, taste, audio, sr, rng)
        processed = process(chain, audio, sr, d)
        lufs = an.playing_loudness_lufs(processed, sr)
        jitter = float(rng.uniform(-1.0, 1.0)) * producer.jitter_db
        target = BAND_REFERENCE_LUFS + taste.level_lu + jitter
        fader = 0.0 if lufs <= an.SILENCE_LUFS else float(np.clip(target - lufs, *FADER_RANGE_DB))
        g_l, g_r = pan_gains(pan)
        gain = 10.0 ** (fader / 20.0)
        mix[0] += processed[0] * (gain * g_l)
        mix[1] += processed[1] * (gain * g_r)
        if tap is not None:
            tap(name, role, np.stack([processed[0] * np.float32(gain * g_l),
                                      processed[1] * np.float32(gain * g_r)]))
        d["measured"]["playing_lufs"] = lufs
        tracks[name] = {"role": role, **d, "target_lufs": target, "output_gain_db": fader,
                        "pan": pan}
    return mix, tracks


def mix_song(producer: Producer, stems: Stems, sample_rate: float,
             song_name: str) -> MixResult:
    """The producer's mix and master of ``stems`` (see the module docstring for the decisions)."""
    sr, checked = check_stems(stems, sample_rate, song_name)
    mix, tracks = mix_tracks(producer, checked, sr, song_name)
    mix32 = mix.astype(np.float32)
    mix_lufs = an.loudness_lufs(mix32, sr)
    trim = producer.mix_lufs - mix_lufs if mix_lufs > an.SILENCE_LUFS else 0.0
    peak_db = 20.0 * math.log10(float(np.max(np.abs(mix32))) + 1e-12)
    trim = min(trim, -1.0 - peak_db)                    # keep 1 dB of headroom in the mix file
    mix32 = (mix * 10.0 ** (trim / 20.0)).astype(np.float32)
    master, master_d = master_mix(producer.master_taste, mix32, sr)
    decisions = {"producer": producer.name, "song": song_name, "tracks": tracks,
                 "mix_trim_db": trim, "mix_lufs": an.loudness_lufs(mix32, sr),
                 "master": master_d}
    return MixResult(mix32, master, rounded(decisions))


def rounded(x: Any) -> Any:
    if isinstance(x, dict):
        return {k: rounded(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [rounded(v) for v in x]
    if isinstance(x, (float, np.floating)):
        return round(float(x), 3)
    return x
