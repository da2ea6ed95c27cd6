"""How well the fit recovers compressor (and EQ) settings an engineer would recognise (issue 13).

    .venv/bin/python scripts/compressor_recovery.py [--producers ava ben cleo] [--songs 10]
        [--seconds 15] [--root /tmp/compressor_recovery] [--tag now] [--jobs 1]

Demo producers (mixstyle.demo: pedalboard's JUCE compressor and filters, not our console) mix
generated songs; their true settings are in producer_decisions.json next to each song, and this
MEASUREMENT script replays their chains (learning code never reads them). Each song is fitted
as ``learn`` fits it (load_song, fit_mix on the loaded song) and the fits are kept in
ROOT/fits_<tag>_<producer>.json, so a second run only measures.

The two compressors have different detectors (ours: stereo sample peak, smoothing in dB; JUCE:
ballistics filter on |x|), so thresholds are compared as depth below the stem's loud-part level
(``loud_level_db``, the producer's own yardstick), and the amount as gain reduction at the loud
parts: median over the 50 ms blocks within 3 dB of that level of 20 log10(rms before / rms
after the compressor), for the producer's chain and for our fitted strip alike. Crest factor
(peak / rms, dB) and short-term loudness range (EBU 3342 LRA, LU) compare the whole processed
track: the producer's chain output vs our fitted strip's output (both before fader and pan).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

EQ_GAINS = ("low_shelf_gain_db", "peak1_gain_db", "peak2_gain_db", "peak3_gain_db",
            "high_shelf_gain_db")


def sessions(root: Path, producer: str, n_songs: int, seconds: float, seed: int) -> list[Path]:
    from mixstyle.demo.sessions import make_sessions
    folder = root / producer
    if folder.is_dir() and len(list(folder.glob("*/producer_decisions.json"))) >= n_songs:
        return sorted(p.parent for p in folder.glob("*/producer_decisions.json"))[:n_songs]
    return make_sessions(folder, producer, n_songs, seed, seconds, cache_dir=root / "cache")


def fit_one(folder: str) -> dict:
    from mixstyle.fit.song import FitConfig, fit_mix
    from mixstyle.sessions.load import load_song
    song = load_song(Path(folder), max_seconds=30.0)   # what learn does (LearnConfig default)
    stems = np.stack([s.audio for s in song.stems])
    t0 = time.process_time()
    result = fit_mix(stems, song.mix, song.sample_rate, [s.name for s in song.stems],
                     [s.role for s in song.stems], FitConfig())
    cpu = time.process_time() - t0
    return {"song": song.name, "cpu_s": cpu, "quality": result.quality(),
            "tracks": {t.name: {"role": t.role, "params": dict(t.params)}
                       for t in result.setting.tracks}}


def fits(root: Path, producer: str, folders: list[Path], tag: str, jobs: int) -> list[dict]:
    path = root / f"fits_{tag}_{producer}.json"
    if path.is_file():
        return json.loads(path.read_text())
    if jobs > 1:
        from concurrent.futures import ProcessPoolExecutor
        with ProcessPoolExecutor(jobs) as ex:
            out = list(ex.map(fit_one, [str(f) for f in folders]))
    else:
        out = [fit_one(str(f)) for f in folders]
    path.write_text(json.dumps(out, indent=1))
    return out


# ----------------------------------------------------------------------------- measurements

def gain_reduction_db(before: np.ndarray, after: np.ndarray, sr: float) -> float:
    """Median over the loud 50 ms blocks of ``before`` (within 3 dB of its loud-part level) of
    the level drop ``before`` -> ``after`` in dB."""
    block = int(0.05 * sr)
    n = before.shape[-1] // block

    def rms(x: np.ndarray) -> np.ndarray:
        m = np.max(np.abs(x), axis=0)[:n * block].astype(np.float64).reshape(n, block)
        return np.sqrt(np.mean(m ** 2, axis=1)) + 1e-12

    b, a = rms(before), rms(after)
    loud = 20 * np.log10(np.percentile(b, 95.0))
    sel = 20 * np.log10(b) >= loud - 3.0
    return float(np.median(20 * np.log10(b[sel] / a[sel])))


def crest_db(x: np.ndarray) -> float:
    x = x.astype(np.float64)
    return float(20 * np.log10(np.max(np.abs(x)) / (np.sqrt(np.mean(x ** 2)) + 1e-12) + 1e-12))


def lra_lu(x: np.ndarray, sr: float) -> float:
    from dsp.loudness import LoudnessMeter
    meter = LoudnessMeter(sr, x.shape[0])
    meter.process(np.ascontiguousarray(x, dtype=np.float32))
    return float(meter.loudness_range_lu)


def producer_chains(producer_name: str, folder: Path) -> dict[str, tuple[list, np.ndarray]]:
    """Per stem the producer's exact chain (replayed with their seeded decisions) and audio."""
    from mixstyle.demo import producers as pr
    from mixstyle.io.audio import read_audio
    from mixstyle.sessions.roles import role_from_name
    prod = pr.PRODUCERS[producer_name]
    stems = []
    for p in sorted((folder / "stems").glob("*.wav")):
        audio, sr = read_audio(p)
        stems.append((p.stem, role_from_name(p.name), audio))
    rng = pr._rng(prod.name, folder.name)
    pr._pans(prod, stems, folder.name, rng)
    out = {}
    for name, role, audio in stems:
        chain, _ = pr._track_chain(prod, prod.taste(role), audio, sr, rng)
        rng.uniform(-1.0, 1.0)   # the fader's jitter, drawn after each chain in mix_song
        out[name] = (chain, audio)
    return out, sr


def measure_song(producer: str, folder: Path, fit: dict) -> list[dict]:
    import pedalboard as pb
    from dsp.strip import ChannelStrip
    from mixstyle.demo._analysis import loud_level_db
    decisions = json.loads((folder / "producer_decisions.json").read_text())["tracks"]
    chains, sr = producer_chains(producer, folder)
    rows = []
    for name, (chain, audio) in chains.items():
        true, params = decisions[name], fit["tracks"][name]["params"]
        comp_true = bool(chain) and isinstance(chain[-1], pb.Compressor)
        processed = pb.Pedalboard(chain)(audio, sr) if chain else audio
        pre = pb.Pedalboard(chain[:-1])(audio, sr) if comp_true else processed
        flat = dict(params, comp_makeup_db=0.0, output_gain_db=0.0, pan=0.0)
        ours = ChannelStrip(sr, flat).process(audio, sr)
        ours_pre = ChannelStrip(sr, dict(flat, comp_ratio=1.0)).process(audio, sr)
        row = {"song": folder.name, "track": name, "role": true["role"],
               "crest_true": crest_db(processed), "crest_fit": crest_db(ours),
               "lra_true": lra_lu(processed, sr), "lra_fit": lra_lu(ours, sr),
               "eq_max_true": max([abs(true.get(k, 0.0)) for k in EQ_GAINS]),
               "eq_max_fit": max(abs(params[k]) for k in EQ_GAINS),
               "gain_fit_db": params["output_gain_db"] + params["comp_makeup_db"]}
        if comp_true:
            row.update(ratio_true=true["comp_ratio"], attack_true=true["comp_attack_ms"],
                       release_true=true["comp_release_ms"],
                       depth_true=loud_level_db(pre, sr) - true["comp_threshold_db"],
                       gr_true=gain_reduction_db(pre, processed, sr))
        else:
            row.update(ratio_true=1.0, gr_true=0.0)
        row.update(ratio_fit=params["comp_ratio"], attack_fit=params["comp_attack_ms"],
                   release_fit=params["comp_release_ms"], knee_fit=params["comp_knee_db"],
                   depth_fit=loud_level_db(ours_pre, sr) - params["comp_threshold_db"],
                   gr_fit=gain_reduction_db(ours_pre, ours, sr))
        rows.append(row)
    return rows


# ----------------------------------------------------------------------------- report

def _med(xs: list[float]) -> float:
    return float(np.median(xs)) if xs else math.nan


def table(rows: list[dict]) -> str:
    head = ("| role | n | ratio true/fit | err log2 ratio | attack ms true/fit | err log10 att | "
            "release ms true/fit | err log10 rel | depth dB true/fit | GR dB true/fit | "
            "err GR dB | crest dB true/fit | LRA LU true/fit | max abs EQ dB true/fit |")
    lines = [head, "|" + "|".join(["---"] * (head.count("|") - 1)) + "|"]
    roles = sorted({r["role"] for r in rows}) + ["all"]
    for role in roles:
        rs = [r for r in rows if role == "all" or r["role"] == role]
        comp = [r for r in rs if r["ratio_true"] > 1.0]
        both = [r for r in comp if r["ratio_fit"] > 1.0]

        def pair(key: str, rr: list[dict], fmt: str = "{:.1f}") -> str:
            return (fmt.format(_med([r[key + "_true"] for r in rr])) + " / "
                    + fmt.format(_med([r[key + "_fit"] for r in rr])))

        err_ratio = _med([abs(math.log2(r["ratio_fit"]) - math.log2(r["ratio_true"]))
                          for r in comp])
        err_att = _med([abs(math.log10(r["attack_fit"] / r["attack_true"])) for r in both])
        err_rel = _med([abs(math.log10(r["release_fit"] / r["release_true"])) for r in both])
        err_gr = _med([abs(r["gr_fit"] - r["gr_true"]) for r in rs])
        lines.append(
            f"| {role} | {len(rs)} ({len(both)}/{len(comp)}) | {pair('ratio', comp)} | "
            f"{err_ratio:.2f} | {pair('attack', both)} | {err_att:.2f} | "
            f"{pair('release', both, '{:.0f}')} | {err_rel:.2f} | {pair('depth', both)} | "
            f"{pair('gr', rs)} | {err_gr:.1f} | {pair('crest', rs)} | {pair('lra', rs)} | "
            f"{pair('eq_max', rs)} |")
    return "\n".join(lines)


def quality(fitted: list[dict]) -> str:
    keys = ("error_db", "band_error_db", "mrstft")
    means = {k: float(np.mean([f["quality"][k] for f in fitted])) for k in keys}
    cpu = [f["cpu_s"] for f in fitted]
    return (f"mean error_db {means['error_db']:.2f}, band_error_db {means['band_error_db']:.3f}, "
            f"mrstft {means['mrstft']:.4f}; fit CPU s per song mean {np.mean(cpu):.1f} "
            f"(median {np.median(cpu):.1f})")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--producers", nargs="+", default=["ava", "ben", "cleo"])
    ap.add_argument("--songs", type=int, default=10)
    ap.add_argument("--seconds", type=float, default=15.0)
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--root", default="/tmp/compressor_recovery")
    ap.add_argument("--tag", default="now")
    ap.add_argument("--jobs", type=int, default=1)
    args = ap.parse_args()
    root = Path(args.root)
    root.mkdir(parents=True, exist_ok=True)
    all_rows = []
    for producer in args.producers:
        folders = sessions(root, producer, args.songs, args.seconds, args.seed)
        fitted = fits(root, producer, folders, args.tag, args.jobs)
        by_song = {f["song"]: f for f in fitted}
        rows = [r for folder in folders for r in measure_song(producer, folder,
                                                               by_song[folder.name])]
        all_rows += rows
        (root / f"rows_{args.tag}_{producer}.json").write_text(json.dumps(rows, indent=1))
        print(f"\n### {producer} ({args.tag})\n\n{quality(fitted)}\n\n{table(rows)}",
              flush=True)
    if len(args.producers) > 1:
        print(f"\n### all producers ({args.tag})\n\n{table(all_rows)}")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    raise SystemExit(main())
