"""``run_host``: play a folder of stems live (or render it), with a plain ANSI terminal view.

Keys: space play/stop, left/right seek -/+5 s, l loop 8 s from here (again: clear), f freeze the
model, s save the session, q quit. The view redraws ~10 times a second with each track's peak,
RMS and gain reduction, the master's loudness and true peak, xruns and late disk reads.
"""

from __future__ import annotations

import math
import os
import select
import sys
import time
from typing import Any, Callable, Sequence, TextIO

import numpy as np

from dsp.errors import AudioInputError, HostError
from dsp.params import ConsoleSetting
from host.engine import Engine, EngineConfig
from host.reader import TrackSource
from host.signals import quit_on_signals
from host.worker import ModelWorker, match_tracks

AUDIO_EXTENSIONS = (".wav", ".flac", ".aiff", ".aif", ".mp3", ".ogg")
SEEK_S = 5.0
LOOP_S = 8.0
BAR = 30


def song_folders(path: str) -> tuple[str, str]:
    """(song folder, stems folder) from what the user gave: the song folder (with stems/ in
    it) or its stems folder (named stems: the song folder is its parent). mixstyle's loader
    has the same rule (``mixstyle.sessions.load.stems_folder``; host may not import it)."""
    path = os.path.abspath(path)
    if not os.path.isdir(path):
        raise HostError(f"stems folder {path!r} does not exist")
    if os.path.isdir(os.path.join(path, "stems")):
        return path, os.path.join(path, "stems")
    if os.path.basename(path) == "stems":
        return os.path.dirname(path), path
    return path, path


def load_stems_dir(stems_dir: str) -> list[TrackSource]:
    """One track per audio file in ``stems_dir`` (sorted), named after the file; roles from the
    folder's roles.toml where it names the track, else guessed from the name, or from the sound
    when the name says nothing (as ``mixstyle mix`` does; those are printed on stderr). A song
    folder (with ``stems/`` in it) plays its stems."""
    stems_dir = song_folders(stems_dir)[1]
    files = sorted(f for f in os.listdir(stems_dir) if f.lower().endswith(AUDIO_EXTENSIONS)
                   and not f.startswith("."))
    if not files:
        raise HostError(f"stems folder {stems_dir!r} has no audio files "
                        f"({', '.join(AUDIO_EXTENSIONS)})")
    from mixstyle.profile.roles import stem_roles
    names = [os.path.splitext(f)[0] for f in files]

    def say(name: str, choice: Any) -> None:
        how = "from the audio (the name says nothing; " if choice.source == "audio" else "("
        print(f"warning: track {name!r}: role {choice.role!r} {how}{choice.reason})",
              file=sys.stderr)

    roles = stem_roles(stems_dir, names, on_choice=say)
    return [TrackSource(n, path=os.path.join(stems_dir, f), role=roles[n])
            for n, f in zip(names, files)]


def stems_rate(sources: Sequence[TrackSource]) -> float:
    """The first file track's own sample rate: the session's rate when none is asked for."""
    from pedalboard.io import AudioFile
    for s in sources:
        if s.path is not None:
            try:
                with AudioFile(str(s.path)) as f:
                    return float(f.samplerate)
            except Exception as e:  # noqa: BLE001 - decoder errors come in many types
                raise AudioInputError(f"stem {os.path.basename(s.path)!r} of track {s.name!r}: "
                                      f"cannot read its sample rate ({e})") from None
    raise HostError("no track is read from a file, so the session has no sample rate of its "
                    "own: give sample_rate_hz")


def playback_rate(sources: Sequence[TrackSource], device: int | str | None = None) -> float:
    """The rate to play live at when none is asked for: a running JACK server's (a client cannot
    change it; the stems are resampled to it), else the first stem's own rate."""
    from host.io import JACK_API, device_sample_rate, host_apis
    if JACK_API in host_apis():
        return device_sample_rate(device, JACK_API)
    return stems_rate(sources)


def _bar(db: float, lo: float = -60.0) -> str:
    fill = 0 if not math.isfinite(db) else int(round(BAR * min(1.0, max(0.0, (db - lo) / -lo))))
    return "#" * fill + "." * (BAR - fill)


def _num(x: float, unit: str) -> str:
    return f"{x:6.1f} {unit}" if math.isfinite(x) and x > -140 else f"  -inf {unit}"


def render_view(engine: Engine, extra: str = "") -> str:
    """The whole screen as text (pure: reads meters and counters, changes nothing)."""
    m = engine.meter_snapshot()
    st = engine.timing.stats()
    c = engine.control
    width = max(len(n) for n in m.track_names)
    lines = [f"mixstyle host  {'PLAY' if engine.playing else 'STOP'}  "
             f"{engine.position_s:7.2f} / {engine.length_frames / engine.sample_rate:.2f} s  "
             f"loop {'%.1f-%.1f s' % engine.loop_s if engine.loop_s else 'off'}  "
             f"model {'FROZEN' if c.frozen else 'live'}  strength {c.strength:.2f}  "
             f"overrides {len(c.overrides)}", ""]
    for i, name in enumerate(m.track_names):
        peak = m.track_peak_db[i]
        lines.append(f"{name:<{width}} {_bar(peak)} pk {_num(peak, 'dB')}"
                     f"  rms {_num(m.track_rms_db[i], 'dB')}  GR {m.track_gr_db[i]:4.1f} dB")
    lines += ["",
              f"{'master':<{width}} {_bar(m.master_peak_db)} pk {_num(m.master_peak_db, 'dB')}"
              f"  GR {m.master_gr_db:4.1f} dB",
              f"loudness M {_num(m.master_momentary_lufs, 'LUFS')}  "
              f"S {_num(m.master_short_term_lufs, 'LUFS')}  "
              f"TP {_num(m.master_true_peak_dbtp, 'dBTP')}",
              f"callback p50 {st.pct(st.p50_ms):5.1f}%  p99 {st.pct(st.p99_ms):5.1f}%  "
              f"max {st.pct(st.max_ms):6.1f}%  xruns {st.xruns}  late reads {engine.late_reads}",
              "", "space play/stop  <- -> seek  l loop  f freeze  s save  q quit"]
    if extra:
        lines.append(extra)
    return "\n".join(lines)


def handle_key(key: str, engine: Engine, save: Callable[[], str]) -> str | None:
    """Apply one key; returns a status line, or None for quit."""
    if key == "q":
        return None
    if key == " ":
        engine.toggle()
        return "play/stop"
    if key in ("\x1b[C", "\x1b[D"):
        length = engine.length_frames / engine.sample_rate
        step = SEEK_S if key == "\x1b[C" else -SEEK_S
        target = min(max(0.0, engine.position_s + step), length)
        engine.seek(target)
        return f"seek {target:.1f} s"
    if key == "l":
        if engine.loop_s is not None:
            engine.clear_loop()
            return "loop off"
        length = engine.length_frames / engine.sample_rate
        start = min(engine.position_s, max(0.0, length - LOOP_S))
        engine.set_loop(start, min(length, start + LOOP_S))
        return f"loop {start:.1f}-{min(length, start + LOOP_S):.1f} s"
    if key == "f":
        engine.control.freeze(not engine.control.frozen)
        return "model frozen" if engine.control.frozen else "model live"
    if key == "s":
        return f"saved {save()}"
    return ""


class KeyReader:
    """Non-blocking single keys from a terminal (cbreak mode); inert when stdin is no TTY."""

    def __init__(self, stream: TextIO = sys.stdin) -> None:
        self.stream = stream
        try:
            self.tty = os.isatty(stream.fileno())
        except (AttributeError, OSError, ValueError):  # e.g. io.StringIO: no file descriptor
            self.tty = False
        self._saved: Any = None

    def __enter__(self) -> "KeyReader":
        if self.tty:
            import termios
            import tty
            self._saved = termios.tcgetattr(self.stream.fileno())
            tty.setcbreak(self.stream.fileno())
        return self

    def __exit__(self, *exc: object) -> None:
        if self._saved is not None:
            import termios
            termios.tcsetattr(self.stream.fileno(), termios.TCSADRAIN, self._saved)

    def read(self, timeout_s: float) -> str | None:
        if not self.tty:
            time.sleep(timeout_s)
            return None
        fd = self.stream.fileno()
        ready, _, _ = select.select([fd], [], [], timeout_s)
        if not ready:
            return None
        key = os.read(fd, 1).decode(errors="replace")
        if key == "\x1b":  # arrow keys: ESC [ C/D
            more, _, _ = select.select([fd], [], [], 0.01)
            if more:
                key += os.read(fd, 2).decode(errors="replace")
        return key


def _initial_setting(sources: list[TrackSource], predict: Callable | None,
                     sample_rate: float, seconds: float = 20.0) -> ConsoleSetting | None:
    """Ask the model once before playing, on the first ``seconds`` of every stem."""
    if predict is None:
        return None
    from host.reader import OpenedTrack
    opened = [OpenedTrack(s, sample_rate) for s in sources]
    # one length for all (tracks of other rates, resampled, may be a few frames longer)
    n = max(1, min(max(o.frames for o in opened), int(seconds * sample_rate)))
    stems = []
    for s, o in zip(sources, opened):
        buf = np.zeros((2, n), dtype=np.float32)
        o.read_into(0, n, buf)
        o.close()
        stems.append((s.role, buf))
    return match_tracks(predict(stems), [s.name for s in sources])


def add_insert_args(engine: Engine, inserts: Sequence[str]) -> None:
    """``--insert TRACK=PLUGIN[:PRESET]`` texts -> VST3 inserts on ``engine`` (in order)."""
    from host.plugins import apply_preset, parse_insert_arg
    for text in inserts:
        where, plugin, preset = parse_insert_arg(text)
        try:
            engine.chain(where)
            ins = engine.add_insert(where, plugin)
        except HostError as e:
            raise HostError(f"--insert {text!r}: {e}") from None
        if preset is not None:
            try:
                apply_preset(ins, preset)
            except HostError as e:
                engine.remove_insert(where, len(engine.chain(where).inserts) - 1)
                raise HostError(f"--insert {text!r}: {e}") from None


def run_host(stems_dir: str, profile_predict: Callable | None = None, midi_map: Any = None,
             device: int | str | None = None, block: int = 128, render_path: str | None = None,
             sample_rate_hz: float | None = None, out: TextIO = sys.stdout,
             keys: KeyReader | None = None, max_seconds: float | None = None,
             midi_port: str | None = None, setting: ConsoleSetting | None = None,
             tracks: Sequence[TrackSource] | None = None, session: str | None = None,
             inserts: Sequence[str] = ()) -> dict[str, Any]:
    """Mix ``stems_dir`` live (or into ``render_path``); returns the final status.

    ``profile_predict(list of (role, audio (2, n))) -> ConsoleSetting`` (None: neutral console,
    no model thread). ``setting``: the setting to start from instead of asking
    ``profile_predict`` for one (how ``mixstyle host --render`` plays exactly what ``mixstyle
    mix`` renders). ``tracks``: the tracks to play instead of every audio file in ``stems_dir``.
    ``session``: a host session file to open instead (its tracks, setting, overrides, inserts,
    MIDI map, mute/solo; saving writes it back). ``inserts``: ``TRACK=PLUGIN[:PRESET]`` texts,
    VST3 inserts added in order (PRESET: a .vstpreset file or a plugin state file).
    ``sample_rate_hz``: the engine's rate; None renders at the first stem's own rate and plays
    at ``playback_rate`` (tracks at other rates are resampled). ``midi_map``: a path to a MIDI map JSON, a MidiMap, or None;
    MIDI comes from a virtual input port "mixstyle:control", or from the hardware port whose
    name contains ``midi_port``. ``device``: PortAudio output (index or name part); JACK (audio
    and MIDI) is used when a JACK server is running. A MIDI port that cannot be opened is
    reported on screen and the host plays on without it.
    """
    from host.midi import MidiInput, MidiMap, MidiRouter, load_midi_map, open_midi_input
    from host.session import capture, save_session
    session_map = None
    if session is not None:
        from host.session import load_session, open_session
        engine, session_map = open_session(load_session(session), block)
        sources = list(engine.sources)
        sample_rate_hz = engine.sample_rate
    else:
        sources = list(tracks) if tracks is not None else load_stems_dir(stems_dir)
        if sample_rate_hz is None:
            sample_rate_hz = stems_rate(sources) if render_path is not None \
                else playback_rate(sources, device)
        if setting is None:
            setting = _initial_setting(sources, profile_predict, sample_rate_hz)
        engine = Engine(sources, setting, EngineConfig(sample_rate_hz, block))
    try:
        add_insert_args(engine, inserts)
    except BaseException:
        engine.close()
        raise
    if render_path is not None:
        from host.offline import render_to_file
        render_to_file(engine, render_path)
        return {"rendered": render_path, **engine.status()}
    mmap = load_midi_map(midi_map) if isinstance(midi_map, str) else \
        (midi_map or session_map or MidiMap())
    session_path = os.path.abspath(session) if session is not None else \
        os.path.join(stems_dir, "mixstyle_session.json")

    def save() -> str:
        save_session(session_path, capture(engine, mmap))
        return session_path

    from host.io import JACK_API, AudioOutput, host_apis
    hostapi = JACK_API if JACK_API in host_apis() else None
    worker = None
    midi_in = None
    own = stems_rate(sources) if any(s.path is not None for s in sources) else sample_rate_hz
    status = "" if own == sample_rate_hz else \
        f"playing at {sample_rate_hz:g} Hz; stems at {own:g} Hz are resampled"
    with engine, AudioOutput(engine, device, hostapi), (keys or KeyReader()) as kr:
        if profile_predict is not None:
            worker = ModelWorker(profile_predict, engine.tap, engine.control, sample_rate_hz,
                                 [s.role for s in sources]).start()
        if mmap.bindings:
            router = MidiRouter(mmap, engine.control, engine)
            try:
                port = open_midi_input(midi_port or "control", virtual=midi_port is None,
                                       api="jack" if hostapi else "alsa")
                midi_in = MidiInput(router, port).start()
            except HostError as e:
                status = f"no MIDI: {e}"
        started = time.monotonic()
        engine.play()
        out.write("\x1b[2J")
        restore = quit_on_signals()
        try:
            while max_seconds is None or time.monotonic() - started < max_seconds:
                for msg in engine.take_warnings():
                    status = msg
                if worker is not None:
                    status = worker.take_failure() or status
                out.write("\x1b[H\x1b[J" + render_view(engine, status) + "\n")
                out.flush()
                key = kr.read(0.1)
                if key is not None:
                    result = handle_key(key, engine, save)
                    if result is None:
                        break
                    status = result or status
                if engine.ended and not kr.tty:
                    break  # no keyboard: quit at the end of the song
        except KeyboardInterrupt:
            pass
        finally:
            restore()
            if midi_in is not None:
                midi_in.stop()
            if worker is not None:
                worker.stop()
    return engine.status()
