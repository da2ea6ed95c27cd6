"""Inference: ``Profile`` turns new stems into a console setting with the trained network.
What the host and ``mixstyle mix`` run; it imports no training code (the network, its features
and the balance measure only).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch

from dsp.eq import eq_curve_db
from dsp.loudness import integrated_loudness
from dsp.params import MASTER, TRACK, ConsoleSetting, TrackSetting, spec, validate
from mixstyle.errors import ProfileError
from mixstyle.fit.staging import stage_gain_db
from mixstyle.profile.novelty import shrink, typical_level, widest_pan
from mixstyle.sessions.load import Song
from mixstyle.train.corrections import EQ_FREQS_HZ, EQ_PARAMS, peak_curve_db
from mixstyle.train.features import ANALYSIS_RATE_HZ
from mixstyle.train.balance import (BUS, LEVEL, PAN_SIDE, assign_sides, output_gains,
                                    plain_levels, strip_loudness_change_db)
from mixstyle.train.features import SongFeatures, role_index, song_features
from mixstyle.train.loudness import LoudnessHabit
from mixstyle.train.model import (I_LEVEL, I_SIDE, MASTER_TARGETS, PREDICTED_MASTER,
                                  PREDICTED_TRACK, TRACK_TARGETS, MixNet)

_FADER = spec(TRACK, "output_gain_db")


@dataclass
class Profile:
    """A trained network and its metadata; ``folder`` is where it was loaded from (None for a
    network trained just now and not saved, e.g. a held-out model being scored)."""
    model: MixNet
    meta: dict[str, Any]
    folder: Path | None = None

    def predict(self, stems: Sequence[tuple[str, str, np.ndarray]], sample_rate: float,
                strength: float = 1.0, features: SongFeatures | None = None,
                memo: dict | None = None) -> ConsoleSetting:
        """Console setting for new stems ``(name, role, audio (2, n))`` at ``sample_rate``.

        ``strength`` 0 gives the neutral console (the plain sum), 1 the full learned style;
        in between, every parameter moves along the table's normalised scale. ``features``
        (per stem, then of their sum) may be given when already measured on these very stems
        (a song record's), saving their computation; ``memo``, a dict kept between
        predictions for these same stems (``balance.strip_loudness``): strips set as before
        are not measured again.

        The setting is rate-independent (Hz, ms, dB) and meant to be rendered at
        ``sample_rate``: the model's features are measured at the fixed analysis rate
        (``features.ANALYSIS_RATE_HZ``, 44.1 kHz, the stems resampled to it), while the faders
        (``balance.output_gains``) and the loudness of the plain sum are measured on the stems
        as they are, through strips running at ``sample_rate``.
        """
        if not 0.0 <= strength <= 1.0 or math.isnan(strength):
            raise ProfileError(f"strength = {strength}: allowed 0 .. 1")
        if not stems:
            raise ProfileError("no stems to mix")
        if features is None:
            features = song_features([a for _, _, a in stems], sample_rate)
        per_stem, sum_features = features
        if len(per_stem) != len(stems):
            raise ProfileError(f"{len(per_stem)} stem feature vectors for {len(stems)} stems")
        feats = torch.tensor(np.stack([f.vector for f in per_stem]))
        song = torch.tensor(sum_features.vector)[None]
        roles = torch.tensor([[role_index(r) for _, r, _ in stems]])
        mask = torch.ones(1, len(stems), dtype=torch.bool)
        with torch.no_grad():
            tu, mu = self.model(feats[None], roles, mask, song)
        net_levels = [float(LEVEL.denormalise(float(v))) for v in tu[0, :, I_LEVEL]]
        tu, mu = corrected(self.meta.get("corrections"), [r for _, r, _ in stems], tu, mu)
        full = []   # the learned setting at full strength; the faders follow from it
        for i in range(len(stems)):
            values = {p.name: float(np.clip(p.denormalise(float(tu[0, i, j])), p.min, p.max))
                      for j, p in enumerate(PREDICTED_TRACK)}
            values["input_gain_db"] = stage_gain_db(per_stem[i].loudness_lufs)
            full.append(values)
        bands = (self.meta.get("corrections") or {}).get("eq_band") or {}
        level_fix = [0.0] * len(stems)
        for i, (_, role, audio) in enumerate(stems):   # the producer's EQ correction for the role
            if role in bands:
                before = dict(full[i])
                place_band(full[i], bands[role])
                # the offsets were learned without their EQ change's loudness
                # (corrections.eq_loudness_through_strip): the level follows the band as placed,
                # so the fader stays where the producer would leave it
                level_fix[i] = strip_loudness_change_db(audio, sample_rate,
                                                        validate(TRACK, before),
                                                        validate(TRACK, full[i]))
        levels = [float(LEVEL.denormalise(float(v))) + fix
                  for v, fix in zip(tu[0, :, I_LEVEL], level_fix)]
        novelty = self.meta.get("novelty")
        away = shrink(novelty, [f.vector for f in per_stem], self.model.feat_mean.numpy(),
                      self.model.feat_std.numpy())
        for i, a in enumerate(away):   # unlike every training track: toward the safe habit
            if a > 0:
                levels[i] = (1 - a) * levels[i] + a * typical_level(novelty, stems[i][1])
                for p in PREDICTED_TRACK:
                    full[i][p.name] = _blend(p, p.normalise(full[i][p.name]), 1.0 - float(a))
        balance = float(np.clip(self.meta.get("balance_strength", 1.0), 0.0, 1.0))
        if balance < 1.0:
            # the balance's share of the style: learn's held-out songs may have shown that this
            # producer's levels are predicted worse than the plain sum's own balance (a producer
            # who leaves the faders near unity); what the corrections taught stays whole
            plain = plain_levels(np.stack([a for _, _, a in stems]), sample_rate)
            for i, p_level in enumerate(plain):
                if math.isfinite(p_level):
                    taught = float(LEVEL.denormalise(float(tu[0, i, I_LEVEL]))) + level_fix[i] \
                        - net_levels[i]
                    levels[i] = taught + balance * (levels[i] - taught) + (1.0 - balance) * p_level
        for i, (_, role, _) in enumerate(stems):   # no panning wider than they ever did
            full[i]["pan"] = min(full[i]["pan"], widest_pan(novelty, role))
        sides = [float(PAN_SIDE.denormalise(float(v))) for v in tu[0, :, I_SIDE]]
        for values, pan in zip(full, assign_sides([v["pan"] for v in full], sides, levels)):
            values["pan"] = pan
        bus = float(BUS.denormalise(float(mu[0, len(PREDICTED_MASTER)])))
        faders = output_gains([a for _, _, a in stems], sample_rate, full, levels, bus, memo)
        tracks = []
        # the strips' share of the style: learn's held-out songs may have shown that this
        # producer's strips are predicted worse than left alone (``style_strength`` < 1); the
        # level habit (master) is not scaled by it
        s_track = strength * float(np.clip(self.meta.get("style_strength", 1.0), 0.0, 1.0))
        # the pans' share (learn's held-out choice by the width error; the strips' without one)
        s_pan = strength * float(np.clip(self.meta.get("pan_strength",
                                                       self.meta.get("style_strength", 1.0)),
                                         0.0, 1.0))
        for i, (name, role, _) in enumerate(stems):
            values = {"input_gain_db": s_track * full[i]["input_gain_db"],
                      "output_gain_db": _blend(_FADER, _FADER.normalise(faders[i]), s_track)}
            for p in PREDICTED_TRACK:
                values[p.name] = _blend(p, p.normalise(full[i][p.name]),
                                        s_pan if p.name == "pan" else s_track, full[i][p.name])
            tracks.append(TrackSetting(name, validate(TRACK, values, f"track {name!r}"), role))
        master: dict[str, Any] = {}
        for j, p in enumerate(PREDICTED_MASTER):
            if p.name == "target_lufs":
                continue
            master[p.name] = _blend(p, float(mu[0, j]), strength)
        target = spec(MASTER, "target_lufs").denormalise(
            float(mu[0, [q.name for q in PREDICTED_MASTER].index("target_lufs")]))
        if self.meta.get("loudness_source") == "sum" and self.meta.get("sum_offset_lu") is not None:
            # learn's held-out songs showed this producer's loudness follows the stems' own sum
            # (a fixed master gain) better than the network predicts it
            plain = integrated_loudness(_sum(stems).astype(np.float32), sample_rate)
            if math.isfinite(plain):
                t = spec(MASTER, "target_lufs")
                target = float(np.clip(plain + float(self.meta["sum_offset_lu"]), t.min, t.max))
        if strength >= 1.0:
            master["target_lufs"] = float(target)
        elif strength > 0.0:
            plain = integrated_loudness(_sum(stems).astype(np.float32), sample_rate)
            if math.isfinite(plain):
                t = spec(MASTER, "target_lufs")
                master["target_lufs"] = float(np.clip(plain + strength * (target - plain),
                                                      t.min, t.max))
        habit = LoudnessHabit.from_dict(self.meta.get("loudness_habit"))
        if habit is not None:   # the producer's ceiling, limiting and release, exactly
            for name, value in habit.master_values().items():
                p = spec(MASTER, name)
                master[name] = _blend(p, p.normalise(value), strength)
        offset = float(self.meta.get("ceiling_offset_db", 0.0)) * strength
        if offset:
            c = spec(MASTER, "limiter_ceiling_db")
            now = master["limiter_ceiling_db"]
            # raised, never above the producer's highest true peak (nor above where it was)
            top = max(now, min(c.max, habit.true_peak_dbtp)) if habit is not None else c.max
            master["limiter_ceiling_db"] = float(np.clip(now + offset, c.min, top))
        return ConsoleSetting(tuple(tracks), validate(MASTER, master, "master"))


def corrected(offsets: dict[str, Any] | None, roles: Sequence[str], tu: torch.Tensor,
              mu: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The network's normalised outputs plus what the producer's corrections taught (per role
    and for the master: ``mixstyle.train.corrections``); unchanged without corrections."""
    if not offsets:
        return tu, mu
    if (offsets.get("track_targets") != [p.name for p in TRACK_TARGETS]
            or offsets.get("master_targets") != [p.name for p in MASTER_TARGETS]):
        raise ProfileError("profile.json: the corrections' offsets name other parameters than "
                           "this mixstyle predicts; learn the profile again")
    tu, mu = tu.clone(), mu.clone()
    for i, role in enumerate(roles):
        if role in offsets["track"]:
            tu[0, i] += torch.tensor(offsets["track"][role], dtype=tu.dtype)
    mu[0] += torch.tensor(offsets["master"], dtype=mu.dtype)
    return tu.clamp(0.0, 1.0), mu.clamp(0.0, 1.0)


PEAKS = ("peak1", "peak2", "peak3")


def place_band(values: dict[str, float], band: Mapping[str, float]) -> None:
    """Put a correction's peaking ``band`` (freq_hz, gain_db, q) into a strip's EQ ``values``
    the way that brings the strip's EQ curve closest to its curve plus the band's: of the peak
    bands whose range holds the frequency, one replaced by the band (a free one loses nothing),
    one replaced after its own gain is moved onto another peak band whose range holds its
    frequency (two bands doing nearly the same job make room: a 2.5 kHz and a 2.3 kHz boost),
    or one given the band's gain on top of its own (its frequency and Q kept)."""
    freq = float(band["freq_hz"])
    gain = spec(TRACK, "peak1_gain_db")
    g = float(np.clip(band["gain_db"], gain.min, gain.max))
    eq = {k: v for k, v in values.items() if k in EQ_PARAMS}
    target = eq_curve_db(TRACK, eq, EQ_FREQS_HZ, ANALYSIS_RATE_HZ) + \
        peak_curve_db(freq, g, float(band["q"]))
    options = []
    for b in PEAKS:
        f_spec, q_spec = spec(TRACK, f"{b}_freq_hz"), spec(TRACK, f"{b}_q")
        if not f_spec.min <= freq <= f_spec.max:
            continue
        replace = {f"{b}_freq_hz": freq, f"{b}_gain_db": g,
                   f"{b}_q": float(np.clip(band["q"], q_spec.min, q_spec.max))}
        options.append(replace)
        options.append({f"{b}_gain_db": float(np.clip(values[f"{b}_gain_db"] + g, gain.min,
                                                      gain.max))})
        own_hz = float(values[f"{b}_freq_hz"])
        for c in PEAKS:   # b's own boost or cut handed to c, b takes the correction
            c_spec = spec(TRACK, f"{c}_freq_hz")
            if c != b and c_spec.min <= own_hz <= c_spec.max:
                options.append(dict(replace, **{f"{c}_gain_db": float(np.clip(
                    values[f"{c}_gain_db"] + values[f"{b}_gain_db"], gain.min, gain.max))}))
    if not options:
        return
    best = min(options, key=lambda o: float(np.sum(
        (eq_curve_db(TRACK, dict(eq, **o), EQ_FREQS_HZ, ANALYSIS_RATE_HZ) - target) ** 2)))
    values.update(best)


def _sum(stems: Sequence[tuple[str, str, np.ndarray]]) -> np.ndarray:
    """The plain sum of the stems (only computed where needed: it copies the whole song)."""
    return np.sum([a for _, _, a in stems], axis=0)


def _blend(p, u_pred: float, strength: float, whole: float | None = None) -> float:
    """Move from the neutral value toward the prediction along the normalised scale; at full
    strength, ``whole`` (the prediction itself, where given) exactly: the strips
    ``balance.strip_loudness`` ran for the faders are then those of the setting. Values within
    rounding of the neutral one snap to it exactly (a high-pass at 10.000000001 Hz would not be
    bypassed)."""
    v0 = p.neutral if p.neutral is not None else p.default
    if strength == 1.0 and whole is not None:
        v = float(np.clip(whole, p.min, p.max))
    else:
        u0 = p.normalise(v0)
        v = float(np.clip(p.denormalise(u0 + strength * (u_pred - u0)), p.min, p.max))
    return v0 if abs(v - v0) <= 1e-9 * (p.max - p.min) else v



def predict_song(profile: Profile, song: Song, strength: float = 1.0,
                 features: SongFeatures | None = None, memo: dict | None = None
                 ) -> ConsoleSetting:
    """``profile.predict`` on a loaded song's stems (``memo``: one per song, see there)."""
    return profile.predict([(s.name, s.role, s.audio) for s in song.stems], song.sample_rate,
                           strength, features, memo)
