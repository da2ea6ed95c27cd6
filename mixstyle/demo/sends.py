"""Demo producer ``rio``: reverb and delay sends, printed into the mix.

Each vocal, lead, keys and guitar track (those the song has) is sent post-fader, at a per-role
send level, to two returns made of pedalboard's built-in effects:

    reverb return: HighpassFilter -> Reverb (100 % wet, a large soft room) -> LowpassFilter
    delay return:  HighpassFilter -> Delay (100 % wet, a per-song time near 3/8 s, feedback)
                   -> LowpassFilter (a dark tape-ish echo)

Each return's fader is set by ear: so the return sounds ``return_lu`` below the dry tracks
sent to it (-12 .. -6 LU), with the usual +-0.5 dB of human inconsistency. The returns are added
to the tracks' sum, which is then trimmed to rio's mix level with 1 dB of headroom (like ava, ben
and cleo). The decisions record sends, return settings and levels, and the per-track compressors
with their measured gain reduction.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np
import pedalboard as pb

from dsp.errors import ParameterError
from mixstyle.demo import _analysis as an
from mixstyle.demo.printing import finish, measured_compression
from mixstyle.demo.producers import (MasterTaste, MixResult, Producer, Stems, _rng, _tastes,
                                     check_stems, mix_tracks)


@dataclass(frozen=True)
class Return:
    """One effect return: which roles feed it (send dB per role) and how loud it sits."""

    sends_db: Mapping[str, float]
    return_lu: float                  # the return's loudness relative to the dry tracks it gets
    hpf_hz: float
    lpf_hz: float

    def __post_init__(self) -> None:
        if not -20.0 <= self.return_lu <= 0.0:
            raise ParameterError(f"return_lu = {self.return_lu} is out of range: allowed "
                                 "-20 .. 0 LU")
        for role, db in self.sends_db.items():
            if not -40.0 <= db <= 6.0:
                raise ParameterError(f"send level for role {role!r} = {db} dB is out of range: "
                                     "allowed -40 .. 6 dB")


@dataclass(frozen=True)
class SendsProducer(Producer):
    """A producer with a reverb return and a delay return fed by post-fader sends."""

    reverb: Return | None = None
    delay: Return | None = None
    room_size: float = 0.8
    damping: float = 0.5
    reverb_width: float = 1.0
    delay_seconds: float = 0.375
    delay_feedback: float = 0.35
    headroom_db: float = 1.0

    def mix(self, stems: Stems, sample_rate: float, song_name: str) -> MixResult:
        sr, checked = check_stems(stems, sample_rate, song_name)
        n = checked[0][2].shape[1]
        returns = {k: r for k, r in (("reverb", self.reverb), ("delay", self.delay)) if r}
        buses = {k: np.zeros((2, n), dtype=np.float64) for k in returns}
        sent: dict[str, list[str]] = {k: [] for k in returns}

        def tap(name: str, role: str, track: np.ndarray) -> None:
            for k, ret in returns.items():
                if role in ret.sends_db:
                    buses[k] += track * 10.0 ** (ret.sends_db[role] / 20.0)
                    sent[k].append(name)

        total, tracks = mix_tracks(self, checked, sr, song_name, measured_compression(), tap)
        dry_mix_lufs = an.loudness_lufs(total.astype(np.float32), sr)
        rng = _rng(self.name, song_name, "returns")
        delay_s = self.delay_seconds * float(rng.uniform(0.95, 1.05))
        out = {"sends": {k: {"tracks": sent[k], "sends_db": dict(returns[k].sends_db)}
                         for k in returns}}
        for k, ret in returns.items():
            if not sent[k]:
                continue
            dry = buses[k].astype(np.float32)
            wet = self._effect(k, ret, delay_s)(dry, sr)
            dry_lufs, wet_lufs = an.loudness_lufs(dry, sr), an.loudness_lufs(wet, sr)
            if wet_lufs <= an.SILENCE_LUFS:
                continue
            want = ret.return_lu + float(rng.uniform(-1.0, 1.0)) * self.jitter_db
            fader = want + dry_lufs - wet_lufs
            total += wet * 10.0 ** (fader / 20.0)
            out["sends"][k].update(self._settings(k, ret, delay_s))
            out["sends"][k].update({"return_gain_db": fader, "return_re_sent_dry_lu": want,
                                    "sent_dry_lufs": dry_lufs,
                                    "return_re_dry_mix_lu": want + dry_lufs - dry_mix_lufs})
        mix32 = total.astype(np.float32)
        level = an.loudness_lufs(mix32, sr)
        trim = self.mix_lufs - level if level > an.SILENCE_LUFS else 0.0
        peak_db = 20.0 * np.log10(float(np.max(np.abs(mix32))) + 1e-12)
        trim = min(trim, -self.headroom_db - peak_db)
        mix = (total * 10.0 ** (trim / 20.0)).astype(np.float32)
        for k in out["sends"]:
            if "return_gain_db" in out["sends"][k]:
                out["sends"][k]["return_gain_db"] += trim      # as it sits in mix.wav
        return finish(self, song_name, tracks, mix, sr, {"mix_trim_db": trim, **out})

    def _effect(self, kind: str, ret: Return, delay_s: float) -> pb.Pedalboard:
        if kind == "reverb":
            fx: pb.Plugin = pb.Reverb(room_size=self.room_size, damping=self.damping,
                                      wet_level=1.0, dry_level=0.0, width=self.reverb_width)
        else:
            fx = pb.Delay(delay_seconds=delay_s, feedback=self.delay_feedback, mix=1.0)
        return pb.Pedalboard([pb.HighpassFilter(cutoff_frequency_hz=ret.hpf_hz), fx,
                              pb.LowpassFilter(cutoff_frequency_hz=ret.lpf_hz)])

    def _settings(self, kind: str, ret: Return, delay_s: float) -> dict[str, Any]:
        common = {"hpf_freq_hz": ret.hpf_hz, "lpf_freq_hz": ret.lpf_hz}
        if kind == "reverb":
            return {**common, "room_size": self.room_size, "damping": self.damping,
                    "width": self.reverb_width}
        return {**common, "delay_seconds": delay_s, "feedback": self.delay_feedback}


RIO = SendsProducer(
    "rio", "spacious and lush: vocals, leads, keys and guitars in a big soft reverb and a dark "
           "echo, gentle compression, wide keys and guitars, headroom left in the mix",
    _tastes(levels={"vocals": 0.5, "keys": 1.0, "guitar": 0.5, "bass": -0.5, "overheads": -1.0},
            hpf_scale=1.0, mud_scale=0.8, presence_scale=0.8, air_add_db=1.5,
            low_shelf={"bass": 1.0}, comp={"*": (0.8, 0.8)}, pan_scale=1.3),
    MasterTaste(100.0, 1.0, 2000.0, -0.5, 12000.0, 1.5, 2.0, 2.0, 30.0, 250.0, -2.0, 100.0,
                -13.0, -1.0),
    mix_lufs=-19.0,
    reverb=Return({"vocals": 0.0, "backing_vocals": 0.0, "lead": -2.0, "keys": -3.0,
                   "guitar": -3.0}, return_lu=-8.0, hpf_hz=250.0, lpf_hz=7000.0),
    delay=Return({"vocals": 0.0, "lead": -1.0, "guitar": -4.0}, return_lu=-11.0,
                 hpf_hz=400.0, lpf_hz=4500.0))
