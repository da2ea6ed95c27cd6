"""How far a song's fit moves when its mix moves by a rounding's worth: the fits' well-posedness.

    .venv/bin/python scripts/fit_stability.py [--producer ben] [--songs 6] [--seconds 15]
        [--perturb-db -130] [--work DIR] [--jobs 2]

Each song of a demo producer is fitted twice with `mixstyle learn`'s fit: on its mix, and on its
mix plus white noise ``--perturb-db`` below the mix's RMS (-130 dB: about the last bits of a
float32 sample, what another BLAS branch changes in an intermediate). A well-posed fit gives the
same setting both times. Printed per song: how well each fit explains the mix (band error,
waveform error) and the three largest level moves; over all tracks: how far the recovered
settings moved (level, pan, EQ band gains, high-/low-pass, compressor ratio/threshold/times).
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from dsp.kernels import pin  # noqa: E402

pin()


def fit_one(item: tuple[str, bool], perturb_db: float) -> dict:
    import numpy as np
    from mixstyle.fit.song import FitConfig, fit_mix
    from mixstyle.sessions.load import load_song
    folder, noisy = item
    song = load_song(folder, max_seconds=30.0)
    mix = song.mix.astype(np.float64)
    if noisy:
        rng = np.random.default_rng(7)
        rms = math.sqrt(float(np.mean(mix * mix)))
        mix = mix + rng.standard_normal(mix.shape) * rms * 10 ** (perturb_db / 20)
    stems = np.stack([s.audio for s in song.stems])
    res = fit_mix(stems, mix.astype(np.float32), song.sample_rate,
                  [s.name for s in song.stems], [s.role for s in song.stems], FitConfig())
    return {"tracks": [{"name": t.name, "params": dict(t.params)} for t in res.setting.tracks],
            "band": res.band_error_db, "error_db": res.error_db, "start": res.start_s}


def engineer_view(p: dict) -> dict[str, float]:
    """A track's setting in the units an engineer compares them in."""
    out = {"level_db": p["output_gain_db"] + p.get("comp_makeup_db", 0.0), "pan": p["pan"]}
    for k, v in p.items():
        if k.endswith("gain_db") and k not in ("input_gain_db", "output_gain_db"):
            out["eq_" + k] = v
    out["hpf_oct"] = math.log2(p["hpf_freq_hz"])
    out["lpf_oct"] = math.log2(p["lpf_freq_hz"])
    on = p["comp_ratio"] > 1.0
    out["comp_ratio_oct"] = math.log2(p["comp_ratio"])
    out["comp_threshold_db"] = p["comp_threshold_db"] if on else 0.0
    out["comp_attack_dec"] = math.log10(p["comp_attack_ms"]) if on else 1.0
    out["comp_release_dec"] = math.log10(p["comp_release_ms"]) if on else 2.0
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--producer", default="ben")
    ap.add_argument("--songs", type=int, default=6)
    ap.add_argument("--seconds", type=float, default=15.0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--perturb-db", type=float, default=-130.0)
    ap.add_argument("--work", default=str(ROOT / "build" / "fit_stability"))
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--json", help="write the raw fits here")
    args = ap.parse_args()

    import numpy as np
    from mixstyle.demo.sessions import make_sessions
    from mixstyle.fit.pool import pool_map
    work = Path(args.work)
    folders = make_sessions(work / args.producer, args.producer, args.songs, seed=args.seed,
                            seconds=args.seconds, cache_dir=work / "cache")
    items = [(str(f), noisy) for f in sorted(folders) for noisy in (False, True)]
    fits: dict[tuple[str, bool], dict] = {}
    pool_map(functools.partial(fit_one, perturb_db=args.perturb_db), items, args.jobs,
             lambda item, res: fits.__setitem__(item, res))
    if args.json:
        Path(args.json).write_text(json.dumps({f"{k[0]}|{k[1]}": v for k, v in fits.items()}))

    moves: dict[str, list[float]] = {}
    for folder in sorted(folders):
        a, b = fits[(str(folder), False)], fits[(str(folder), True)]
        worst = []
        for ta, tb in zip(a["tracks"], b["tracks"]):
            ea, eb = engineer_view(ta["params"]), engineer_view(tb["params"])
            for k in ea:
                d = abs(ea[k] - eb[k])
                moves.setdefault(k, []).append(d)
            worst.append((abs(ea["level_db"] - eb["level_db"]), ta["name"]))
        print(f"{Path(folder).name}: fit band {a['band']:.3f} / {b['band']:.3f} dB, error "
              f"{a['error_db']:.2f} / {b['error_db']:.2f} dB; level moves "
              + ", ".join(f"{n} {d:.2f}" for d, n in sorted(worst, reverse=True)[:3]))
    print("\nparameter: median / 90th pct / max |move| over all tracks, share moved > tol")
    tol = {"level_db": 0.1, "pan": 0.01, "hpf_oct": 0.05, "lpf_oct": 0.05, "comp_ratio_oct": 0.05,
           "comp_threshold_db": 0.5, "comp_attack_dec": 0.05, "comp_release_dec": 0.05}
    for k, v in moves.items():
        arr, t = np.array(v), tol.get(k, 0.1)
        print(f"  {k:22s} {np.median(arr):7.3f} {np.percentile(arr, 90):7.3f} {arr.max():7.3f}  "
              f"{(arr > t).mean():.2f} (> {t})")
    eq = np.concatenate([moves[k] for k in moves if k.startswith("eq_")])
    print(f"  all EQ band gains      median {np.median(eq):.3f}, 90th {np.percentile(eq, 90):.3f}"
          f", share > 0.1 dB {(eq > 0.1).mean():.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
