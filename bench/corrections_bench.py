"""Corrections teach: a producer's corrected settings move the profile's predictions on new songs.

A demo producer mixes ``train + corrections + new`` generated songs. A profile P0 is learned on
the training songs and predicts the correction songs (as `mixstyle mix --params` writes them).
Two sets of those songs are made, each song with ``setting.json`` and no mix:

(a) the setting as P0 predicted it, unchanged;
(b) the same corrected by a simulated producer: the vocal 4 dB louder on its fader, the bass
    cut 3 dB at 300 Hz (a free peak band moved to 300 Hz, Q 1; where no band is free, the
    nearest one), the response at 300 Hz exactly 3 dB lower by dsp's own EQ response.

The correction songs and the new songs are songs with a vocal (role "vocals"; the demo songs
without one have a lead instrument instead): the first ``corrections`` and the next ``new`` of
those after the training songs, from ``pool`` more generated songs.

P_a learns the training songs + (a), P_b the training songs + (b) (same seed, same config). On
the new songs, P_b's predictions against P_a's: the lead's fader should be 4 +- 1 dB higher, the
bass's EQ response at 300 Hz (``dsp.eq.eq_curve_db``) within 1 dB of -3 dB, every other track's
fader within 1 dB. Learning uses no held-out songs, so both profiles keep the whole style
(``style_strength`` 1): a held-out choice of strength would scale the comparison.
"""

from __future__ import annotations

import math
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from dsp.kernels import pin

pin()  # the kernels of the mixstyle command (dsp/kernels.py), before numpy and torch load
import numpy as np  # noqa: E402

SR = 44100.0
LEAD_ROLES = ("vocals",)
BASS_ROLES = ("bass",)
VOCAL_DB = 4.0
BASS_CUT_DB = -3.0
BASS_FREQ_HZ = 300.0
BASS_Q = 1.0
FREE_BAND_DB = 1.0       # a peak band whose gain is this small is free to move
BANDS = ("peak1", "peak2")   # the peak bands that reach 300 Hz


@dataclass(frozen=True)
class Study:
    producer: str = "ava"
    seed: int = 1
    train: int = 12
    corrections: int = 6
    new: int = 6
    seconds: float = 12.0
    epochs: int = 400
    audio_epochs: int = 10
    pool: int = 26          # songs generated beyond the training songs to find the vocal ones
    fit_steps: int = 6


@dataclass
class Result:
    study: Study
    lead_db: list[float] = field(default_factory=list)      # per new song: P_b - P_a fader
    bass_300_db: list[float] = field(default_factory=list)  # per bass track: response change
    others_db: list[float] = field(default_factory=list)    # every other track's fader change
    p0_vs_a_db: list[float] = field(default_factory=list)   # P_a - P0 fader, all tracks
    seconds: float = 0.0

    def summary(self) -> dict[str, float]:
        return {"lead_db": float(np.mean(self.lead_db)),
                "lead_min_db": float(np.min(self.lead_db)),
                "lead_max_db": float(np.max(self.lead_db)),
                "bass_300_db": float(np.mean(self.bass_300_db)),
                "bass_300_worst_db": float(self.bass_300_db[int(np.argmax(
                    np.abs(np.array(self.bass_300_db) - BASS_CUT_DB)))]),
                "others_max_abs_db": float(np.max(np.abs(self.others_db))),
                "others_mean_abs_db": float(np.mean(np.abs(self.others_db))),
                "p0_vs_a_max_abs_db": float(np.max(np.abs(self.p0_vs_a_db)))}

    def passed(self) -> bool:
        s = self.summary()
        return (abs(s["lead_db"] - VOCAL_DB) <= 1.0 and abs(s["bass_300_db"] - BASS_CUT_DB) <= 1.0
                and s["others_max_abs_db"] < 1.0)


def bass_response_db(params: dict, sample_rate: float = SR) -> float:
    """The strip's EQ magnitude (dB) at ``BASS_FREQ_HZ`` (dsp's response of its sections)."""
    from dsp.eq import eq_curve_db
    from dsp.params import TRACK
    return float(eq_curve_db(TRACK, params, np.array([BASS_FREQ_HZ]), sample_rate)[0])


def cut_at_300(params: dict, sample_rate: float = SR) -> dict:
    """``params`` with the EQ response at 300 Hz exactly ``BASS_CUT_DB`` lower: a free peak band
    (|gain| < ``FREE_BAND_DB``) moved to 300 Hz with Q ``BASS_Q``, else the peak band nearest
    300 Hz; its gain solved by bisection (a peak's response at any frequency rises with its
    gain)."""
    from dsp.params import TRACK, spec
    want = bass_response_db(params, sample_rate) + BASS_CUT_DB
    free = [b for b in BANDS if abs(params[f"{b}_gain_db"]) < FREE_BAND_DB]
    out = dict(params)
    if free:
        band = free[0]
        out[f"{band}_freq_hz"], out[f"{band}_q"] = BASS_FREQ_HZ, BASS_Q
    else:
        band = min(BANDS, key=lambda b: abs(math.log(params[f"{b}_freq_hz"] / BASS_FREQ_HZ)))
    g = spec(TRACK, f"{band}_gain_db")
    lo, hi = g.min, g.max
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        out[f"{band}_gain_db"] = mid
        if bass_response_db(out, sample_rate) > want:
            hi = mid
        else:
            lo = mid
    out[f"{band}_gain_db"] = 0.5 * (lo + hi)
    return out


def corrected(setting):
    """The simulated producer's correction of a predicted setting (see the module docstring)."""
    from dsp.params import ConsoleSetting, TRACK, TrackSetting, spec
    fader = spec(TRACK, "output_gain_db")
    tracks = []
    for t in setting.tracks:
        p = dict(t.params)
        if t.role in LEAD_ROLES:
            if p["output_gain_db"] + VOCAL_DB > fader.max:
                raise ValueError(f"track {t.name!r}: fader {p['output_gain_db']:.1f} dB + "
                                 f"{VOCAL_DB} dB is above the table's {fader.max} dB")
            p["output_gain_db"] += VOCAL_DB
        if t.role in BASS_ROLES:
            p = cut_at_300(p)
        tracks.append(TrackSetting(t.name, p, t.role))
    return ConsoleSetting(tuple(tracks), dict(setting.master))


def _link_song(src: Path, dst: Path, with_mix: bool) -> None:
    (dst / "stems").mkdir(parents=True)
    for wav in sorted((src / "stems").glob("*.wav")):
        os.link(wav, dst / "stems" / wav.name)
    if with_mix:
        for name in ("mix.wav", "master.wav"):
            if (src / name).is_file():
                os.link(src / name, dst / name)


def _predict(profile, song: Path):
    from mixstyle.profile.mixdown import predict_stems
    return predict_stems(profile, song / "stems", on_warning=lambda issue: None)


def run_study(study: Study, work: Path, cache: Path | None = None,
              log=lambda m: None) -> Result:
    from mixstyle.demo.sessions import make_sessions
    from mixstyle.fit.song import FitConfig
    from mixstyle.sessions.roles import role_from_name
    from mixstyle.export.json_export import setting_json
    from mixstyle.io.audio import write_text_atomic
    from mixstyle.learn import LearnConfig, learn
    from mixstyle.profile.store import load_profile
    from mixstyle.train.loop import TrainConfig
    t0 = time.perf_counter()
    songs = make_sessions(work / "all", study.producer, study.train + study.pool, study.seed,
                          study.seconds, cache_dir=cache or work / "cache")
    train_songs = songs[:study.train]
    vocal = [s for s in songs[study.train:]
             if any(role_from_name(p.name) in LEAD_ROLES for p in (s / "stems").glob("*.wav"))]
    if len(vocal) < study.corrections + study.new:
        raise RuntimeError(f"only {len(vocal)} of {study.pool} songs have a vocal: raise pool")
    corr_songs = vocal[:study.corrections]
    new_songs = vocal[study.corrections:study.corrections + study.new]
    config = LearnConfig(train=replace(TrainConfig(), epochs=study.epochs,
                                       audio_epochs=study.audio_epochs, seed=study.seed),
                         fit=replace(FitConfig(), steps=study.fit_steps, seed=study.seed),
                         max_seconds=study.seconds, holdout_fraction=0.0)
    for name in ("P0", "a", "b"):
        for song in train_songs:
            _link_song(song, work / name / song.name, with_mix=True)
    learn(work / "P0", work / "profile_P0", config, log=log)
    p0 = load_profile(work / "profile_P0")
    for song in corr_songs:
        pred = _predict(p0, song)
        for name, setting in (("a", pred.setting), ("b", corrected(pred.setting))):
            _link_song(song, work / name / song.name, with_mix=False)
            write_text_atomic(work / name / song.name / "setting.json",
                              setting_json(setting, pred.sample_rate_hz))
    profiles = {"P0": p0}
    for name in ("a", "b"):   # the training songs' records are P0's: only the network retrains
        shutil.copytree(work / "profile_P0" / "songs", work / f"profile_{name}" / "songs")
        learn(work / name, work / f"profile_{name}", config, log=log)
        profiles[name] = load_profile(work / f"profile_{name}")
    result = Result(study)
    for song in new_songs:
        pa, pb, p0s = (_predict(profiles[k], song).setting for k in ("a", "b", "P0"))
        for ta, tb, t0_ in zip(pa.tracks, pb.tracks, p0s.tracks):
            moved = tb.params["output_gain_db"] - ta.params["output_gain_db"]
            result.p0_vs_a_db.append(ta.params["output_gain_db"] - t0_.params["output_gain_db"])
            if ta.role in LEAD_ROLES:
                result.lead_db.append(moved)
            else:
                result.others_db.append(moved)
            if ta.role in BASS_ROLES:
                result.bass_300_db.append(bass_response_db(tb.params)
                                          - bass_response_db(ta.params))
    result.seconds = time.perf_counter() - t0
    return result


STUDIES = (Study("ava", seed=1), Study("ben", seed=2))


def run() -> list[dict]:
    rows = []
    with tempfile.TemporaryDirectory(prefix="corrections_bench_") as tmp:
        for study in STUDIES:
            work = Path(tmp) / f"{study.producer}_{study.seed}"
            r = run_study(study, work, cache=Path(tmp) / "cache")
            s = r.summary()
            label = (f"corrections teach, {study.producer} seed {study.seed}: {study.train} "
                     f"songs + {study.corrections} corrected, {study.new} new x "
                     f"{study.seconds:g} s")
            rows += [
                {"name": label + ": lead P_b - P_a", "ours": s["lead_db"], "reference": VOCAL_DB,
                 "target": "4 +- 1", "unit": "dB",
                 "note": f"per song {s['lead_min_db']:.2f} .. {s['lead_max_db']:.2f}"},
                {"name": "  bass EQ at 300 Hz, P_b - P_a", "ours": s["bass_300_db"],
                 "reference": BASS_CUT_DB, "target": "-3 +- 1", "unit": "dB",
                 "note": f"worst track {s['bass_300_worst_db']:.2f}"},
                {"name": "  other tracks' faders, largest move", "ours": s["others_max_abs_db"],
                 "target": "< 1", "unit": "dB",
                 "note": f"mean |move| {s['others_mean_abs_db']:.2f} dB; "
                         f"{'PASS' if r.passed() else 'FAIL'}; {r.seconds:.0f} s"},
            ]
    return rows


if __name__ == "__main__":
    import sys
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    import argparse
    ap = argparse.ArgumentParser()
    ap.add_argument("--producer", default="ava")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--train", type=int, default=12)
    ap.add_argument("--corrections", type=int, default=6)
    ap.add_argument("--new", type=int, default=6)
    ap.add_argument("--seconds", type=float, default=12.0)
    ap.add_argument("--epochs", type=int, default=400)
    ap.add_argument("--audio-epochs", type=int, default=10)
    ap.add_argument("--pool", type=int, default=26)
    ap.add_argument("--fit-steps", type=int, default=6)
    ap.add_argument("--work", default=None)
    ap.add_argument("--cache", default=None)
    a = ap.parse_args()
    st = Study(a.producer, a.seed, a.train, a.corrections, a.new, a.seconds, a.epochs,
               a.audio_epochs, a.pool, a.fit_steps)
    work = Path(a.work or tempfile.mkdtemp(prefix="corrections_"))
    res = run_study(st, work, Path(a.cache) if a.cache else None, log=print)
    print(res.summary(), "PASS" if res.passed() else "FAIL", f"{res.seconds:.0f} s", work)
    print("lead", np.round(res.lead_db, 2))
    print("bass", np.round(res.bass_300_db, 2))
    print("others", np.round(res.others_db, 2))
