"""The ``mixstyle`` command: learn, mix, evaluate, demo, host, master, export, report."""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path
from typing import Callable, Sequence

from dsp.kernels import pin
from mixstyle.errors import HostError, MixstyleError

COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {}


def command(name: str):
    def deco(fn):
        COMMANDS[name] = fn
        return fn
    return deco


class _Warnings:
    """Warnings printed once each as ``warning: <sentence>`` on stderr, with no Python source
    line: the session loader's issues (through ``_warn``) and Python warnings alike."""

    def __init__(self) -> None:
        self.seen: set[str] = set()

    def say(self, text: str) -> None:
        if text not in self.seen:
            self.seen.add(text)
            print(f"warning: {text}", file=sys.stderr, flush=True)

    def show(self, message: Warning | str, category: type[Warning], filename: str,
             lineno: int, file: object = None, line: str | None = None) -> None:
        self.say(str(message))


_WARNINGS = _Warnings()


def _warn(issue: object) -> None:
    """``on_warning`` for the session loader."""
    _WARNINGS.say(str(issue))


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
                 log=lambda m: print(m, file=sys.stderr), scheduler=args.scheduler)
    bars.close()
    corrected = card["training_data"]["corrected_songs"]
    print(f"profile written to {args.out} ({len(card['trained_on'])} songs"
          + (f", {corrected} of them corrected (setting.json)" if corrected else "") + ")")
    if card["held_out_score"]:
        from mixstyle.evaluate.score import format_table
        print(format_table(card["held_out_score"], "held-out songs: " +
                           ", ".join(card["held_out_songs"])))
    return 0


@command("mix")
def _mix(args: argparse.Namespace) -> int:
    from mixstyle.io.audio import write_audio_atomic, write_text_atomic
    from mixstyle.export.json_export import setting_json
    from mixstyle.profile.mixdown import predict_stems
    from mixstyle.profile.store import load_profile
    pred = predict_stems(load_profile(args.profile), args.stems_dir, args.sample_rate,
                         args.strength, on_warning=_warn)
    result = pred.render()
    write_audio_atomic(Path(args.out), result.audio, pred.sample_rate_hz, protect=pred.inputs)
    if args.params:
        write_text_atomic(Path(args.params), setting_json(pred.setting, pred.sample_rate_hz),
                          protect=pred.inputs)
    print(f"{args.out}: {result.loudness_lufs:.1f} LUFS, true peak {result.true_peak_dbtp:.1f} "
          f"dBTP, {len(pred.stems)} stems at {pred.sample_rate_hz:g} Hz, strength "
          f"{args.strength}")
    return 0


@command("evaluate")
def _evaluate(args: argparse.Namespace) -> int:
    from mixstyle.evaluate.held_out import leave_one_out
    from mixstyle.evaluate.score import evaluate_profile, format_table
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
        from mixstyle.io.audio import write_text_atomic
        write_text_atomic(Path(args.json), json.dumps(summary, indent=2))
    return 0


@command("demo")
def _demo(args: argparse.Namespace) -> int:
    from mixstyle.demo.run import run_demo
    return run_demo(Path(args.out), Path(args.profile), songs=args.songs, seed=args.seed)


@command("realset")
def _realset(args: argparse.Namespace) -> int:
    from mixstyle.demo.realset.build import build_realset
    sources = tuple(x.strip() for x in args.sources.split(",") if x.strip()) \
        if args.sources else None
    folders = build_realset(Path(args.out), seconds=args.seconds, songs=args.songs,
                            sources=sources, cache=Path(args.cache) if args.cache else None,
                            jobs=args.jobs or 2, log=lambda m: print(m, file=sys.stderr))
    print(f"real set in {args.out}: {len(folders)} songs")
    return 0


@command("host")
def _host(args: argparse.Namespace) -> int:
    from host.tui import load_stems_dir, playback_rate, run_host
    from host.worker import profile_predictor
    profile = None
    if args.profile:
        from mixstyle.profile.store import load_profile
        profile = load_profile(args.profile)
    if args.session:
        predict = None if profile is None else profile_predictor(profile, _session_rate(args))
        run_host(args.stems_dir or ".", predict, args.midi_map, args.device, args.block,
                 args.render, max_seconds=args.seconds, session=args.session,
                 inserts=args.insert)
        if args.render:
            print(f"rendered {args.render} (session {args.session})")
        return 0
    if not args.stems_dir:
        raise HostError("give STEMS_DIR (a folder of stems) or --session FILE")
    if args.render:
        return _host_render(args, profile)
    sources = load_stems_dir(args.stems_dir)
    rate = args.sample_rate or playback_rate(sources, args.device)
    predict = None if profile is None else profile_predictor(profile, rate)
    status = run_host(args.stems_dir, predict, args.midi_map, args.device, args.block,
                      sample_rate_hz=rate, max_seconds=args.seconds, tracks=sources,
                      inserts=args.insert)
    return 0 if status is not None else 1


def _session_rate(args: argparse.Namespace) -> float:
    from host.session import load_session
    return load_session(args.session).sample_rate_hz


@command("studio")
def _studio(args: argparse.Namespace) -> int:
    from functools import partial

    from host.studio.run import run_studio
    from host.worker import profile_predictor
    make_predict = None
    if args.profile:
        from mixstyle.profile.store import load_profile
        profile = load_profile(args.profile)
        make_predict = partial(profile_predictor, profile)
    return run_studio(args.stems_dir, make_predict, session=args.session, port=args.port,
                      open_browser=not args.no_browser, device=args.device, block=args.block,
                      offline=args.offline, max_seconds=args.seconds)


def _host_render(args: argparse.Namespace, profile: object) -> int:
    """``host --render``: the stems load and the setting is predicted as ``mix`` does (whole
    stems, the session's rate, the loudness target resolved to a master gain), then the
    real-time engine plays them block by block into the file: the two renders are the same."""
    from host.reader import TrackSource
    from host.tui import run_host
    from mixstyle.io.audio import audio_info
    from mixstyle.profile.mixdown import fixed_gain, predict_stems
    from mixstyle.sessions.load import load_stem_set
    if profile is not None:
        pred = predict_stems(profile, args.stems_dir, args.sample_rate, on_warning=_warn)
        stems, rate = pred.stems, pred.sample_rate_hz
        setting = fixed_gain(pred.setting, pred.render())
    else:
        loaded = load_stem_set(args.stems_dir, args.sample_rate, on_warning=_warn)
        stems, rate, setting = loaded.stems, loaded.sample_rate, None
    # a file at the session's rate is read by the engine's own disk reader (the same samples
    # the loader read); a resampled one is handed over as the loader resampled it
    tracks = [TrackSource(s.name, path=str(s.path), role=s.role)
              if audio_info(s.path).sample_rate == rate
              else TrackSource(s.name, audio=s.audio, role=s.role) for s in stems]
    run_host(args.stems_dir, None, args.midi_map, args.device, args.block, args.render,
             sample_rate_hz=rate, setting=setting, tracks=tracks, inserts=args.insert)
    print(f"rendered {args.render} ({len(stems)} stems at {rate:g} Hz)")
    return 0


@command("master")
def _master(args: argparse.Namespace) -> int:
    from mixstyle.mastering.batch import master_command
    bars = _Bars(not args.quiet)
    code = master_command(args.inputs, args.profile, args.out, target_lufs=args.target_lufs,
                          ceiling_dbtp=args.ceiling_dbtp, workers=args.workers,
                          scheduler=args.scheduler, progress=bars)
    bars.close()
    # the process exits next: its final garbage collections would walk every object numba
    # (and Dask) made, 0.2-0.5 s of a batch's time; frozen objects are skipped
    import gc
    gc.freeze()
    return code


@command("export")
def _export(args: argparse.Namespace) -> int:
    import numpy as np
    from dsp.render import bus_before_limiter
    from mixstyle.export import export
    from mixstyle.profile.mixdown import predict_stems, resolved_gain
    from mixstyle.profile.store import load_profile
    pred = predict_stems(load_profile(args.profile), args.stems_dir, args.sample_rate,
                         args.strength, on_warning=_warn)
    # the master gain the mix's loudness needs on these stems, as `mix` renders it: a DAW
    # plays the exported gain into its limiter
    mixed = pred.render()
    setting = resolved_gain(pred.setting, mixed)
    bus = None
    if args.format == "vstpreset":
        bus = (bus_before_limiter(np.stack([s.audio for s in pred.stems]), pred.sample_rate_hz,
                                  setting), mixed.loudness_lufs)
    result = export(setting, [(s.name, s.path) for s in pred.stems], args.format, args.out,
                    sample_rate_hz=pred.sample_rate_hz, embed_audio=args.embed_audio,
                    master_bus=bus)
    print(f"{args.format} written to {args.out} (session at {pred.sample_rate_hz:g} Hz)")
    notes = getattr(result, "notes", None)
    for note in notes or ():
        print(f"  note: {note}")
    return 0


@command("report")
def _report(args: argparse.Namespace) -> int:
    from mixstyle.profile.report import write_report
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
                   help="passes over the songs through the differentiable console (default "
                        "20, each on a 1.5 s excerpt of every song)")
    s.add_argument("--fit-steps", type=int, default=None, help="optimiser steps per song fit")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--jobs", type=_jobs, default=0,
                   help="processes for the per-song fits (default: one per core)")
    s.add_argument("--scheduler", default=None,
                   help="Dask scheduler address: its workers run the per-song fits (they must "
                        "see SESSIONS at the same path); training stays on this machine")
    s.add_argument("--quiet", action="store_true", help="no progress bars")

    s = sub.add_parser("mix", help="mix new stems with a profile")
    s.add_argument("stems_dir", help="the stems folder, or a song folder with stems/ in it")
    s.add_argument("--profile", required=True)
    s.add_argument("--out", required=True, help="output mix (.wav)")
    s.add_argument("--params", help="also write the predicted console setting (JSON)")
    s.add_argument("--strength", type=_unit_float, default=1.0,
                   help="0 = neutral console, 1 = the full learned style")
    s.add_argument("--sample-rate", type=_sample_rate, default=None, metavar="HZ",
                   help=_RATE_HELP)

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

    s = sub.add_parser("realset", help="build the real set: songs by real people from Debian "
                                       "packages, as sessions (docs/REAL_SET.md)")
    s.add_argument("out", help="output folder: OUT/<song>/stems/*.wav + mix.wav + source.json")
    s.add_argument("--seconds", type=float, default=30.0,
                   help="excerpt length per song (the section where the most tracks play)")
    s.add_argument("--songs", type=int, default=None, help="only the first N songs")
    s.add_argument("--sources", default=None,
                   help="comma-separated Debian packages to take songs from (default: all; "
                        "hydrogen-data = Hydrogen's demo songs)")
    s.add_argument("--cache", default=None,
                   help="where the downloaded .deb files are unpacked (default: "
                        "~/.cache/mixstyle/realset)")
    s.add_argument("--jobs", type=_jobs, default=2, help="processes rendering modules")

    s = sub.add_parser("host", help="play stems through the learned console in real time")
    s.add_argument("stems_dir", nargs="?", help="the stems folder, or a song folder with stems/ "
                   "in it (not needed with --session)")
    s.add_argument("--profile", help="profile whose model runs live (default: neutral console)")
    s.add_argument("--midi-map", help="MIDI map JSON (CC -> parameter)")
    s.add_argument("--device", help="PortAudio output device (name part or index)")
    s.add_argument("--block", type=int, default=128, help="block size in samples (32..8192)")
    s.add_argument("--render", help="render offline to this file instead of playing")
    s.add_argument("--sample-rate", type=_sample_rate, default=None, metavar="HZ",
                   help=_RATE_HELP)
    s.add_argument("--seconds", type=float, default=None, help="stop after this many seconds")
    s.add_argument("--session", help="open a host session file (saved by host or studio)")
    s.add_argument("--insert", action="append", default=[], metavar="TRACK=PLUGIN[:PRESET]",
                   help="add a VST3 insert (repeatable): TRACK is a track name or 'master', "
                        "PLUGIN a VST3 name or path, PRESET a .vstpreset or plugin state file")

    s = sub.add_parser("studio", help="the web mixer on the live host (opens a browser page)")
    s.add_argument("stems_dir", help="the song folder (with stems/) or its stems folder")
    s.add_argument("--profile", help="profile whose model runs live (default: neutral console)")
    s.add_argument("--session", help="open a host session file (saved by studio or host)")
    s.add_argument("--port", type=int, default=None, help="port on 127.0.0.1 (default: any)")
    s.add_argument("--no-browser", action="store_true", help="print the URL, open no browser")
    s.add_argument("--device", help="PortAudio output device (name part or index)")
    s.add_argument("--block", type=int, default=128, help="block size in samples (32..8192)")
    s.add_argument("--offline", action="store_true",
                   help="no audio device: run the engine in real time without sound")
    s.add_argument("--seconds", type=float, default=None, help="quit after this many seconds")

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
    s.add_argument("stems_dir", help="the stems folder, or a song folder with stems/ in it")
    s.add_argument("--profile", required=True)
    s.add_argument("--format", required=True, choices=("dawproject", "vstpreset", "midi", "json"))
    s.add_argument("--out", required=True)
    s.add_argument("--strength", type=_unit_float, default=1.0)
    s.add_argument("--embed-audio", action="store_true", help="DAWproject: embed the stems")
    s.add_argument("--sample-rate", type=_sample_rate, default=None, metavar="HZ",
                   help=_RATE_HELP)

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


_RATE_HELP = "session sample rate in Hz (default: the first stem's own rate)"


def _sample_rate(text: str) -> float:
    from dsp.validate import MAX_SAMPLE_RATE, MIN_SAMPLE_RATE
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a sample rate in Hz such as 48000, got "
                                         f"{text!r}") from None
    if not MIN_SAMPLE_RATE <= v <= MAX_SAMPLE_RATE:  # also refuses nan and inf
        raise argparse.ArgumentTypeError(f"--sample-rate {text}: allowed {MIN_SAMPLE_RATE:g} .. "
                                         f"{MAX_SAMPLE_RATE:g} Hz")
    if v != int(v):
        raise argparse.ArgumentTypeError(f"--sample-rate {text}: must be a whole number of Hz "
                                         f"(audio files store an integer rate)")
    return float(int(v))


def _unit_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number 0..1, got {text!r}") from None
    if not 0.0 <= v <= 1.0:
        raise argparse.ArgumentTypeError(f"--strength {v}: allowed 0 .. 1")
    return v


def main(argv: Sequence[str] | None = None) -> int:
    global _WARNINGS
    try:
        pin()   # one kernel level on every CPU (dsp/kernels.py), before numpy and torch load
    except ValueError as e:
        print(f"mixstyle: error: {e}", file=sys.stderr)
        return 2
    args = _parser().parse_args(argv)
    _WARNINGS = _Warnings()
    with warnings.catch_warnings():
        warnings.showwarning = _WARNINGS.show
        return _run(args)


def _run(args: argparse.Namespace) -> int:
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
