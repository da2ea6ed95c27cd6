"""Training records: what the profile keeps of each past song (no audio, only numbers).

A record holds the song's stem features, roles, the console setting to learn and where it came
from (``source``): "fit", the setting recovered from the producer's mix, with the fit's quality;
or "correction", the producer's own setting for the song (``setting.json``, e.g. kept from the
studio), learned as it is. Plus the hash and duration of every file it came from (for the model
card). Records are stored in the profile (``songs/<song>.json``) so ``learn`` on an existing
profile with new songs only fits the new ones and retrains on all.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from dsp.params import MASTER, TRACK, ConsoleSetting, normalise_all, section_specs, \
    setting_from_dict, setting_to_dict, spec
from dsp.render import render
from mixstyle.train.balance import BUS, LEVEL, track_levels
from mixstyle.errors import ProfileError
from mixstyle.train.features import SongFeatures, from_vector, role_index, stem_features
from mixstyle.fit.bus import measure_bus
from mixstyle.fit.song import FitResult
from mixstyle.train.model import (I_PAN, I_SIDE, MASTER_TARGETS, PREDICTED_MASTER, PREDICTED_TRACK,
                            TRACK_TARGETS)

RECORD_VERSION = 5  # 2: track balance as loudness (levels_lu, bus_lufs); 3: bus_print;
#                    4: source ("fit" | "correction") and mix_overridden; 5: master_fit
# a version 3 record is a fit: read as one, nothing is refitted; one of 3 or 4 has no master
# fit, which learn makes again when the song has a master (mixstyle.mastering.learn)
READABLE_VERSIONS = (3, 4, 5)
SOURCES = ("fit", "correction")


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@dataclass(frozen=True)
class SourceFile:
    path: str
    sha256: str
    seconds: float


@dataclass
class SongRecord:
    song: str
    track_names: list[str]
    roles: list[str]
    features: list[list[float]]        # (N, F)
    song_features: list[float]         # features of the plain sum of the stems
    setting: dict[str, Any]            # dsp.params JSON of the recovered setting
    quality: dict[str, float]
    files: list[SourceFile]
    # each track's loudness re the mix bus (None: silent), and the bus loudness before the
    # master (mixstyle.train.balance); empty/None when unknown
    levels_lu: list[float | None] = field(default_factory=list)
    bus_lufs: float | None = None
    # what the producer's mix bus did to the level (mixstyle.fit.bus.BusPrint); None: unknown
    # (always for a correction: it has no mix)
    bus_print: dict[str, Any] | None = None
    # "fit": ``setting`` was recovered from the producer's mix; "correction": it is their own
    # setting.json, learned as it is
    source: str = "fit"
    # a correction's song folder also had a mix, this file, which was not learned
    mix_overridden: str | None = None
    # the master section that turns the song's mix into its master (mixstyle.mastering.fit), or
    # why it could not be fitted: fitted with the song, so learning again does not fit it
    # again; None without a master (and in records written before version 5)
    master_fit: dict[str, Any] | str | None = None
    # what the loader fixed in the song's files, its warnings as sentences (a stem moved onto
    # its part of the mix or turned over, a file resampled, ...): the model card lists them
    load_warnings: list[str] = field(default_factory=list)

    def to_json(self) -> str:
        data = asdict(self)
        data["version"] = RECORD_VERSION
        return json.dumps(data, indent=1)

    @staticmethod
    def from_json(text: str, where: str) -> "SongRecord":
        try:
            data = json.loads(text)
            version = data.pop("version", None)
            if version not in READABLE_VERSIONS:
                raise StaleRecord(f"{where}: song record version {version!r}, this mixstyle "
                                  f"writes {RECORD_VERSION}")
            data["files"] = [SourceFile(**f) for f in data["files"]]
            rec = SongRecord(**data)
            if rec.source not in SOURCES:
                raise ValueError(f"source {rec.source!r}, expected one of {SOURCES}")
            setting_from_dict(rec.setting, where)
            return rec
        except (KeyError, TypeError, ValueError) as e:
            raise ProfileError(f"{where}: not a valid song record ({e})") from None


PAN = spec(TRACK, "pan")
LEVEL_WEIGHT = 3.0   # balance is what a listener notices first


class StaleRecord(ProfileError):
    """A record written by another version of mixstyle: the song is fitted again."""


def make_record(song_name: str, names: list[str], roles: list[str], stems: np.ndarray,
                sample_rate: float, fit: FitResult, files: list[SourceFile],
                mix: np.ndarray | None = None, load_warnings: Sequence[str] = ()
                ) -> SongRecord:
    """The record of a fitted song; with ``mix`` (the producer's) its bus print is measured.
    ``load_warnings``: what the loader fixed in the song's files (``Song.warnings``)."""
    feats = [stem_features(s, sample_rate).vector.tolist() for s in stems]
    song_feat = stem_features(stems.sum(axis=0), sample_rate).vector.tolist()
    levels, bus = track_levels(stems, sample_rate, [t.params for t in fit.setting.tracks])
    printed = measure_bus(stems, sample_rate, fit.setting, mix) if mix is not None else None
    return SongRecord(song_name, list(names), list(roles), feats, song_feat,
                      setting_to_dict(fit.setting), fit.quality(), files, levels, bus,
                      printed.to_dict() if printed is not None else None,
                      load_warnings=list(load_warnings))


def correction_record(song_name: str, stems: np.ndarray, sample_rate: float,
                      setting: ConsoleSetting, files: list[SourceFile],
                      mix_overridden: str | None = None) -> SongRecord:
    """The record of a corrected song: the producer's ``setting`` (tracks in the order of
    ``stems``) is the target as it is, no fit. Features, track levels and bus loudness are
    measured on the stems through it as for a fitted song. The master's level is the setting's
    own: its loudness target, or where it has none, the loudness its render reaches."""
    feats = [stem_features(s, sample_rate).vector.tolist() for s in stems]
    song_feat = stem_features(stems.sum(axis=0), sample_rate).vector.tolist()
    levels, bus = track_levels(stems, sample_rate, [t.params for t in setting.tracks])
    data = setting_to_dict(setting)
    if data["master"].get("target_lufs") is None:
        loud = render(stems, sample_rate, setting).loudness_lufs
        target = spec(MASTER, "target_lufs")
        if np.isfinite(loud):
            data["master"]["target_lufs"] = float(np.clip(loud, target.min, target.max))
    return SongRecord(song_name, [t.name for t in setting.tracks],
                      [t.role for t in setting.tracks], feats, song_feat, data, {}, files,
                      levels, bus, None, "correction", mix_overridden)


def record_features(record: SongRecord) -> SongFeatures:
    """The features ``make_record`` measured on the song's stems, as ``Profile.predict`` takes
    them (the same stems give the same features: no need to measure them again)."""
    return [from_vector(v) for v in record.features], from_vector(record.song_features)


def _weights_for(values: dict[str, Any], section: str) -> np.ndarray:
    """How much each parameter's target counts: a band's frequency only matters when the band
    does something, a compressor's timing only when it compresses."""
    specs = PREDICTED_TRACK if section == TRACK else PREDICTED_MASTER
    w = np.ones(len(specs))
    for j, p in enumerate(specs):
        name = p.name
        if name.endswith("_freq_hz") or name.endswith("_q"):
            stem = name.rsplit("_", 2)[0] if name.endswith("_freq_hz") else name[:-2]
            gain = values.get(f"{stem}_gain_db")
            if gain is not None:
                w[j] = min(1.0, abs(gain) / 3.0) + 0.05
        if name.startswith("comp_") and name not in ("comp_ratio", "comp_makeup_db"):
            w[j] = min(1.0, max(0.0, values["comp_ratio"] - 1.0)) + 0.05
        if name == "hpf_q":
            w[j] = 1.0 if values["hpf_freq_hz"] > 20 else 0.05
        if name == "lpf_q":
            w[j] = 1.0 if values["lpf_freq_hz"] < 18000 else 0.05
        if name in ("pan", "target_lufs"):
            w[j] = 3.0
    return w


def _select(vec: np.ndarray, section: str) -> np.ndarray:
    specs = section_specs(section)
    keep = PREDICTED_TRACK if section == TRACK else PREDICTED_MASTER
    idx = [specs.index(p) for p in keep]
    return vec[idx]


@dataclass
class Batch:
    feats: torch.Tensor          # (B, N, F)
    roles: torch.Tensor          # (B, N)
    mask: torch.Tensor           # (B, N)
    song_feats: torch.Tensor     # (B, F)
    track_u: torch.Tensor        # (B, N, P)
    track_w: torch.Tensor        # (B, N, P)
    master_u: torch.Tensor       # (B, M)
    master_w: torch.Tensor       # (B, M)


def song_weights(records: list[SongRecord]) -> np.ndarray:
    """How much each song's setting counts: a fitted song whose fit explains the producer's mix
    worse than their typical song (something in that mix the console cannot make: reverb,
    saturation, an edit) counts less, by the ratio of unexplained energy (3 dB worse: half).
    A correction (no fit) counts fully."""
    w = np.ones(len(records))
    fits = [i for i, r in enumerate(records) if r.source != "correction"]
    w[fits] = _fit_weights([records[i] for i in fits])
    return w


def _fit_weights(records: list[SongRecord]) -> np.ndarray:
    errors = np.array([float(r.quality.get("error_db", np.nan)) for r in records])
    ok = np.isfinite(errors)
    if ok.sum() < 3:
        return np.ones(len(records))
    typical = float(np.median(errors[ok]))
    w = np.where(ok, np.minimum(1.0, 10.0 ** ((typical - np.where(ok, errors, 0.0)) / 10.0)),
                 1.0)
    return np.maximum(w, 0.1)


def collate(records: list[SongRecord]) -> Batch:
    b = len(records)
    n = max(len(r.track_names) for r in records)
    f = len(records[0].song_features)
    feats = torch.zeros(b, n, f)
    roles = torch.zeros(b, n, dtype=torch.long)
    mask = torch.zeros(b, n, dtype=torch.bool)
    song = torch.zeros(b, f)
    tu = torch.full((b, n, len(TRACK_TARGETS)), 0.5)
    tw = torch.zeros(b, n, len(TRACK_TARGETS))
    mu = torch.full((b, len(MASTER_TARGETS)), 0.5)
    mw = torch.zeros(b, len(MASTER_TARGETS))
    k_level, k_bus = len(PREDICTED_TRACK), len(PREDICTED_MASTER)
    for i, r in enumerate(records):
        setting = setting_from_dict(r.setting, f"song record {r.song!r}")
        k = len(r.track_names)
        feats[i, :k] = torch.tensor(r.features)
        roles[i, :k] = torch.tensor([role_index(x) for x in r.roles])
        mask[i, :k] = True
        song[i] = torch.tensor(r.song_features)
        for j, t in enumerate(setting.tracks):
            tu[i, j, :k_level] = torch.from_numpy(_select(normalise_all(TRACK, t.params), TRACK))
            tw[i, j, :k_level] = torch.from_numpy(_weights_for(t.params, TRACK))
            pan = float(t.params["pan"])   # width as the pan target, the side on its own
            tu[i, j, I_PAN] = float(PAN.normalise(abs(pan)))
            if abs(pan) > 0.02:
                tu[i, j, I_SIDE] = 1.0 if pan > 0 else 0.0
                tw[i, j, I_SIDE] = min(1.0, abs(pan) / 0.2)
            if j < len(r.levels_lu) and r.levels_lu[j] is not None:
                tu[i, j, k_level] = float(LEVEL.normalise(r.levels_lu[j]))
                tw[i, j, k_level] = LEVEL_WEIGHT
        mu[i, :k_bus] = torch.from_numpy(_select(normalise_all(MASTER, setting.master), MASTER))
        mw[i, :k_bus] = torch.from_numpy(_weights_for(setting.master, MASTER))
        if r.bus_lufs is not None:
            mu[i, k_bus] = float(BUS.normalise(r.bus_lufs))
            mw[i, k_bus] = 1.0
        if setting.master.get("target_lufs") is None:
            mw[i, [p.name for p in PREDICTED_MASTER].index("target_lufs")] = 0.0
    w_song = torch.from_numpy(song_weights(records)).float()
    tw *= w_song[:, None, None]
    mw *= w_song[:, None]
    return Batch(feats, roles, mask, song, tu.float(), tw.float(), mu.float(), mw.float())


def save_record(folder: Path, record: SongRecord) -> Path:
    from mixstyle.io.audio import write_text_atomic
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{record.song}.json"
    write_text_atomic(path, record.to_json())
    return path


def load_records(folder: Path, skip_stale: bool = False) -> list[SongRecord]:
    """The records in ``folder``; with ``skip_stale`` records of another version are left out
    (``learn`` fits those songs again) instead of raising."""
    if not folder.is_dir():
        return []
    out = []
    for p in sorted(folder.glob("*.json")):
        try:
            out.append(SongRecord.from_json(p.read_text(), str(p)))
        except StaleRecord:
            if not skip_stale:
                raise
    return out
