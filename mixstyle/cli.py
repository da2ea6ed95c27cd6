"""The ``mixstyle`` command: learn, mix, evaluate, demo, host, master, export, report."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Callable, Sequence

from mixstyle.errors import MixstyleError

COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {}


def command(name: str):
    def deco(fn):
        COMMANDS[name] = fn
        return fn
    return deco


class _Bars:
    """One tqdm bar per stage name ("fit", "parameters", "audio"...)."""

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self.bars: dict[str, object] = {}

    def __call__(self, stage: str, done: int, total: int) -> None:
        if not self.enabled:
            return
        from tqdm import tqdm
        bar = self.bars.get(stage)
        if bar is None:
            bar = self.bars[stage] = tqdm(total=total, desc=f"{stage:<10}", unit="step",
                                          file=sys.stderr, leave=True)
        bar.n = done  # type: ignore[attr-defined]
        bar.refresh()  # type: ignore[attr-defined]
        if done >= total:
            bar.close()  # type: ignore[attr-defined]

    def close(self) -> None:
        for bar in self.bars.values():
            bar.close()  # type: ignore[attr-defined]


@command("learn")
def _learn(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from mixstyle.learn import LearnConfig, learn
    cfg = LearnConfig()
    train_opts = {k: v for k, v in (("epochs", args.epochs),
                                    ("audio_epochs", args.audio_epochs)) if v is not None}
    cfg = replace(cfg, jobs=args.jobs, train=replace(cfg.train, seed=args.seed, **train_opts),
                  fit=replace(cfg.fit, seed=args.seed,
                              **({"steps": args.fit_steps} if args.fit_steps else {})))
    bars = _Bars(not args.quiet)
    card = learn(Path(args.sessions), Path(args.out), cfg, progress=bars,
                 log=lambda m: print(m, file=sys.stderr))
    bars.close()
    print(f"profile written to {args.out} ({len(card['trained_on'])} songs)")
    if card["held_out_score"]:
        from mixstyle.evaluate import format_table
        print(format_table(card["held_out_score"], "held-out songs: " +
                           ", ".join(card["held_out_songs"])))
    return 0


@command("mix")
def _mix(args: argparse.Namespace) -> int:
    import numpy as np

    from dsp.params import dumps
    from dsp.render import render
    from mixstyle.audio_io import write_audio_atomic, write_text_atomic
    from mixstyle.profile import load_profile
    from mixstyle.sessions import load_stems
    profile = load_profile(args.profile)
    stems = load_stems(args.stems_dir)
    inputs = [s.path for s in stems]
    setting = profile.predict([(s.name, s.role, s.audio) for s in stems], 44100.0,
                              args.strength)
    result = render(np.stack([s.audio for s in stems]), 44100.0, setting)
    write_audio_atomic(Path(args.out), result.audio, 44100.0, protect=inputs)
    if args.params:
        write_text_atomic(Path(args.params), dumps(setting), protect=inputs)
    print(f"{args.out}: {result.loudness_lufs:.1f} LUFS, true peak {result.true_peak_dbtp:.1f} "
          f"dBTP, {len(stems)} stems, strength {args.strength}")
    return 0


@command("evaluate")
def _evaluate(args: argparse.Namespace) -> int:
    from mixstyle.evaluate import evaluate_profile, format_table, leave_one_out
    bars = _Bars(not args.quiet)
    if args.profile:
        summary = evaluate_profile(Path(args.sessions), Path(args.profile), progress=bars)
        title = f"profile {args.profile} on {args.sessions}"
    else:
        summary = leave_one_out(Path(args.sessions), progress=bars, seed=args.seed)
        title = f"leave-one-song-out on {args.sessions}"
    bars.close()
    print(format_table(summary, title))
    if args.json:
        from mixstyle.audio_io import write_text_atomic
        write_text_atomic(Path(args.json), json.dumps(summary, indent=2))
    return 0


@command("demo")
def _demo(args: argparse.Namespace) -> int:
    from mixstyle.demo_run import run_demo
    return run_demo(Path(args.out), Path(args.profile), songs=args.songs, seed=args.seed)


@command("host")
def _host(args: argparse.Namespace) -> int:
    from host.tui import run_host
    from host.worker import profile_predictor
    predict = None
    if args.profile:
        from mixstyle.profile import load_profile
        predict = profile_predictor(load_profile(args.profile), args.sample_rate)
    status = run_host(args.stems_dir, predict, args.midi_map, args.device, args.block,
                      args.render, sample_rate_hz=args.sample_rate,
                      max_seconds=args.seconds)
    if args.render:
        print(f"rendered {args.render}")
    return 0 if status is not None else 1


@command("master")
def _master(args: argparse.Namespace) -> int:
    from mixstyle.mastering import master_command
    bars = _Bars(not args.quiet)
    code = master_command(args.inputs, args.profile, args.out, target_lufs=args.target_lufs,
                          ceiling_dbtp=args.ceiling_dbtp, workers=args.workers,
                          scheduler=args.scheduler, progress=bars)
    bars.close()
    return code


@command("export")
def _export(args: argparse.Namespace) -> int:
    from mixstyle.export import export
    from mixstyle.profile import load_profile
    from mixstyle.sessions import load_stems
    profile = load_profile(args.profile)
    stems = load_stems(args.stems_dir)
    setting = profile.predict([(s.name, s.role, s.audio) for s in stems], 44100.0,
                              args.strength)
    result = export(setting, [(s.name, s.path) for s in stems], args.format, args.out,
                    sample_rate_hz=44100.0, embed_audio=args.embed_audio)
    print(f"{args.format} written to {args.out}")
    notes = getattr(result, "notes", None)
    for note in notes or ():
        print(f"  note: {note}")
    return 0


@command("report")
def _report(args: argparse.Namespace) -> int:
    from mixstyle.report import write_report
    index = write_report(Path(args.profile), Path(args.out))
    print(f"report written to {index}")
    return 0


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="mixstyle", description=__doc__)
    sub = p.add_subparsers(dest="cmd", required=True)

    s = sub.add_parser("learn", help="learn a profile from past sessions")
    s.add_argument("sessions", help="SESSIONS folder: <song>/stems/*.wav + <song>/mix.wav")
    s.add_argument("--out", required=True, help="profile folder (created or updated)")
    s.add_argument("--epochs", type=int, default=None, help="parameter-phase training steps")
    s.add_argument("--audio-epochs", type=int, default=None,
                   help="passes over the songs through the differentiable console")
    s.add_argument("--fit-steps", type=int, default=None, help="optimiser steps per song fit")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--jobs", type=_jobs, default=0,
                   help="processes for the per-song fits (default: one per core)")
    s.add_argument("--quiet", action="store_true", help="no progress bars")

    s = sub.add_parser("mix", help="mix new stems with a profile")
    s.add_argument("stems_dir")
    s.add_argument("--profile", required=True)
    s.add_argument("--out", required=True, help="output mix (.wav)")
    s.add_argument("--params", help="also write the predicted console setting (JSON)")
    s.add_argument("--strength", type=_unit_float, default=1.0,
                   help="0 = neutral console, 1 = the full learned style")

    s = sub.add_parser("evaluate", help="compare mixes with the producer's real mixes")
    s.add_argument("sessions")
    s.add_argument("--profile", help="profile to evaluate (default: leave-one-song-out)")
    s.add_argument("--json", help="also write the summary as JSON")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--quiet", action="store_true")

    s = sub.add_parser("demo", help="make demo songs and mix them with a profile")
    s.add_argument("--out", default="demo_out")
    s.add_argument("--profile", default=str(Path(__file__).resolve().parent.parent /
                                            "presets" / "default"))
    s.add_argument("--songs", type=int, default=3)
    s.add_argument("--seed", type=int, default=1000)

    s = sub.add_parser("host", help="play stems through the learned console in real time")
    s.add_argument("stems_dir")
    s.add_argument("--profile", help="profile whose model runs live (default: neutral console)")
    s.add_argument("--midi-map", help="MIDI map JSON (CC -> parameter)")
    s.add_argument("--device", help="PortAudio output device (name part or index)")
    s.add_argument("--block", type=int, default=128, help="block size in samples (32..8192)")
    s.add_argument("--render", help="render offline to this file instead of playing")
    s.add_argument("--sample-rate", type=float, default=48000.0)
    s.add_argument("--seconds", type=float, default=None, help="stop after this many seconds")

    s = sub.add_parser("master", help="master finished mixes in the producer's style")
    s.add_argument("inputs", nargs="+", help="audio files or folders")
    s.add_argument("--profile", required=True)
    s.add_argument("--out", required=True, help="output folder")
    s.add_argument("--target-lufs", type=float, default=None)
    s.add_argument("--ceiling-dbtp", type=float, default=None)
    s.add_argument("--workers", type=int, default=None)
    s.add_argument("--scheduler", default=None, help="Dask scheduler address")
    s.add_argument("--quiet", action="store_true")

    s = sub.add_parser("export", help="export the predicted mix to a DAW format")
    s.add_argument("stems_dir")
    s.add_argument("--profile", required=True)
    s.add_argument("--format", required=True, choices=("dawproject", "vstpreset", "midi", "json"))
    s.add_argument("--out", required=True)
    s.add_argument("--strength", type=_unit_float, default=1.0)
    s.add_argument("--embed-audio", action="store_true", help="DAWproject: embed the stems")

    s = sub.add_parser("report", help="pictures of what a profile learned (HTML + PNG)")
    s.add_argument("profile")
    s.add_argument("--out", required=True)
    return p


def _jobs(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number of processes, got "
                                         f"{text!r}") from None
    if v < 0:
        raise argparse.ArgumentTypeError(f"--jobs {v}: must be >= 0 (0 = one per core)")
    return v


def _unit_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number 0..1, got {text!r}") from None
    if not 0.0 <= v <= 1.0:
        raise argparse.ArgumentTypeError(f"--strength {v}: allowed 0 .. 1")
    return v


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return COMMANDS[args.cmd](args)
    except MixstyleError as e:
        print(f"mixstyle {args.cmd}: error: {e}", file=sys.stderr)
        return 2
    except FileNotFoundError as e:
        print(f"mixstyle {args.cmd}: error: {e.filename or e}: not found", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
