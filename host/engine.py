"""The real-time engine: N stereo tracks from disk -> strips -> inserts -> sum -> master -> out.

Threads and what they share (each shared counter has one writer; nothing the callback touches is
ever locked):

    control threads (UI, MIDI, model) --Control--> params RecordQueue --+
    transport calls ------------------> commands RecordQueue -----------+--> audio callback
    reader thread --ChunkRings (per track, tagged epoch/seq)------------+    ``process(out)``
    audio callback --FrameTap--> model worker;  --meters, TimingRing--> anyone

``process(out)`` is the callback body: it applies queued changes at the block boundary (by writing
strip targets; the strips smooth), takes each track's chunk (a missing one is counted in
``late_reads`` and played as silence), runs strips, inserts, sum, master bus and meters, all on
preallocated buffers. VST3 inserts are the one exception to "no allocation" (see host.plugins).
"""

from __future__ import annotations

import math
import sys
import time
import warnings
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from dsp.console import LIMITER_ARGS, MASTER_SLOT, Console
from dsp.errors import HostError, ParameterError
from dsp.loudness import LoudnessMeter
from dsp.params import MASTER, MASTER_NAMES, ConsoleSetting, TrackSetting, validate
from dsp.strip import TARGETS
from dsp.validate import check_sample_rate
from host.control import MASTER_TARGET, Control
from host.meters import MasterLevels, MeterSnapshot, TimingRing, sum_tracks
from host.plugins import InsertChain, PluginInsert, load_insert
from host.realtime import RealtimeGuard, dump_timing
from host.reader import (CMD_CLEAR_LOOP, CMD_LOOP, CMD_SEEK, EPOCH, PLAY_EPOCH, PLAY_SEQ, POS,
                         STATE_FIELDS, DiskReader, TrackSource)
from host.ringbuffer import ChunkRings, FrameTap, RecordQueue
from host.rtkernels import (copy_block, play_source, ramp_track_gains, record_block,
                            scale_block)
from host.rtkernels import warm_up as _warm_up_kernels

CMD_PLAY, CMD_STOP, CMD_TOGGLE = 1, 2, 3
AB_SOURCES = ("learned", "plain", "mix")
AB_LEARNED, AB_PLAIN, AB_MIX = 0, 1, 2


class HostWarning(UserWarning):
    """Something failed in the live engine and was worked around (e.g. a bypassed plugin)."""


@dataclass(frozen=True)
class EngineConfig:
    sample_rate_hz: float = 48000.0
    block_frames: int = 128
    readahead_s: float = 0.5       # disk read-ahead per track
    tap_s: float = 1.0             # what-was-played hand-over to the model worker
    prime_timeout_s: float = 0.25  # after a seek, wait this long at most for every track
    max_records_per_block: int = 512
    gil_switch_s: float | None = None  # sys.setswitchinterval while running; None: automatic
    # SCHED_FIFO priority of the disk reader where permitted (None: normal scheduling), below
    # the audio thread's. A normal-priority reader preempted by other programs while it holds
    # the GIL stalls the callback (measured under load, 64 tracks, 15 s: 93-129 xruns at
    # 32-sample blocks and 18-25 with late callbacks at 128, against 21-33 and 4-6 real-time;
    # the bare server alone: 4-25 and 0-28).
    reader_rt_priority: int | None = 2
    # While started: memory locked and kept mapped, garbage collection frozen and paced off the
    # callback (host.realtime; measured in docs/studies/realtime_stalls.md). Off: as before.
    realtime_guard: bool = True

    def __post_init__(self) -> None:
        check_sample_rate(self.sample_rate_hz)
        if isinstance(self.block_frames, bool) or not isinstance(self.block_frames, int) \
                or not 16 <= self.block_frames <= 8192:
            raise HostError(f"block_frames = {self.block_frames!r} is out of range: allowed "
                            f"integers 16 .. 8192")
        if not 0.05 <= self.readahead_s <= 30.0:
            raise HostError(f"readahead_s = {self.readahead_s} is out of range: allowed "
                            f"0.05 .. 30 s")

    @property
    def period_s(self) -> float:
        return self.block_frames / self.sample_rate_hz


def _complete_setting(names: Sequence[str], setting: ConsoleSetting | None,
                      roles: Sequence[str]) -> ConsoleSetting:
    """A setting with exactly our tracks (missing ones neutral), validated."""
    if setting is None:
        setting = ConsoleSetting(tracks=())
    extra = {t.name for t in setting.tracks} - set(names)
    if extra:
        raise ParameterError(f"the setting names tracks that are not loaded: {sorted(extra)}; "
                             f"tracks: {list(names)}")
    have = {t.name: t for t in setting.tracks}
    tracks = tuple(TrackSetting(name=n, role=have[n].role if n in have else r,
                                params=validate("track", have[n].params if n in have else {},
                                                f"track {n!r}"))
                   for n, r in zip(names, roles))
    return ConsoleSetting(tracks=tracks, master=validate(MASTER, setting.master, "master"))


class Engine:
    """Plays ``sources`` through the console; use as a context manager (starts the reader)."""

    def __init__(self, sources: Sequence[TrackSource], setting: ConsoleSetting | None = None,
                 config: EngineConfig = EngineConfig()) -> None:
        names = [s.name for s in sources]
        if not names:
            raise HostError("the engine needs at least one track")
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise HostError(f"track names must be unique, repeated: {dup}")
        self.config = config
        self.sources = list(sources)
        self.track_names = names
        sr, block, n = config.sample_rate_hz, config.block_frames, len(names)
        self.sample_rate = sr
        self.block = block
        setting = _complete_setting(names, setting, [s.role for s in sources])
        self.console = Console(sr, setting)  # strips and master bus; the fused kernel
        self.strips = self.console.strips
        self.master = self.console.master
        self._track_targets = [s.targets for s in self.strips]  # views into the strip states
        self.latency_samples = int(self.console.latency_samples)
        # master record index -> slot of the master's target vector (-1: limiter parameter)
        self._master_targets = self.master._state()[0][TARGETS]
        self._master_slot = [MASTER_SLOT.get(name, -1) for name in MASTER_NAMES]
        self._limiter_arg = [LIMITER_ARGS.get(name, "") for name in MASTER_NAMES]
        self.params = RecordQueue(8192)
        self.commands = RecordQueue(256)
        self.control = Control(names, setting, self.params)
        slots = max(8, math.ceil(config.readahead_s * sr / block))
        self.rings = ChunkRings(n, slots, block)
        self.state = np.zeros(STATE_FIELDS, dtype=np.int64)
        self.reader = DiskReader(self.sources, sr, self.rings, self.state,
                                 batch_chunks=max(1, 4096 // block),
                                 rt_priority=config.reader_rt_priority)
        self.length_frames = self.reader.length_frames
        self.tap = FrameTap(n, max(block, int(config.tap_s * sr)), block)
        self.track_inserts = [InsertChain(block=block, where=f"track {nm!r}") for nm in names]
        self.master_inserts = InsertChain(block=block, where="master")
        self._track_inserts_present = False
        self.loop_s: tuple[float, float] | None = None
        # preallocated audio buffers
        self._inputs = np.zeros((n, 2, block), dtype=np.float32)
        self._outs = np.zeros((n, 2, block), dtype=np.float32)
        self._mix = np.zeros((2, block), dtype=np.float32)
        self._out = np.zeros((2, block), dtype=np.float32)
        self._rec = np.zeros(3, dtype=np.float64)
        self.master_levels = MasterLevels()
        self.loudness = LoudnessMeter(sr)
        self.timing = TimingRing(config.period_s, slots=1 << 17)
        # transport, owned by the callback
        self.playing = False
        self.ended = False  # stopped by itself at the end of the longest track
        self._epoch = 0
        self._seq = 0
        self._priming = False
        self._prime_blocks = 0
        self._prime_limit = max(1, int(config.prime_timeout_s / config.period_s))
        self.blocks = 0
        self._switch_interval: float | None = None
        # mute/solo: per-track input gains, ramped over a block by the callback
        self.muted: set[str] = set()
        self.soloed: set[str] = set()
        self._gain_now = np.ones(n, dtype=np.float32)
        self._gain_target = np.ones(n, dtype=np.float32)
        self._gains_unity = True
        # A/B: which source plays (AB_*), its loudness-match gain, the plain console, the mix
        self.ab = AB_LEARNED
        self._ab_gain = [1.0, 1.0, 1.0]  # Python floats: reading one allocates nothing
        self._plain: Console | None = None
        self._mix_audio: np.ndarray | None = None
        self._block_pos = -1  # file position of the block being played (-1: silence)
        self._mix_tail = -1   # after a stop, the mix plays on for the console's latency
        self._mix_tail_end = -1
        # record tap: the control thread hands a buffer over, the callback fills it
        self._record_buf: np.ndarray | None = None
        self._record_pos = np.zeros(1, dtype=np.int64)
        self._record_done: np.ndarray | None = None
        self._guard = RealtimeGuard() if config.realtime_guard else None

    # lifecycle -----------------------------------------------------------------------------
    def start(self) -> "Engine":
        """Start the disk reader; make Python hand the GIL over often enough for the callback."""
        if self._switch_interval is None:  # a thread waiting for the GIL gets it this soon
            self._switch_interval = sys.getswitchinterval()
            want = self.config.gil_switch_s
            sys.setswitchinterval(want if want is not None else
                                  min(self._switch_interval, self.config.period_s / 8.0))
        if self.blocks == 0:
            self._warm_up()
        self.reader.start()
        if self._guard is not None:  # after the warm-up: kernels loaded, buffers touched
            self._guard.start()
        return self

    def _warm_up(self) -> None:
        """Compile/load every numba kernel of the callback now, not in the first callback."""
        scratch = np.zeros((2, self.block), dtype=np.float32)
        self.process(scratch)        # stopped: strips, master, meters run on silence
        n = len(self.strips)
        ChunkRings(n, 2, self.block).gather(0, 0, self._inputs)
        _warm_up_kernels(n, self.block)
        FrameTap(n, 2 * self.block, self.block).write(self._inputs)
        self.console.reset()
        self.loudness.reset()
        self.timing.reset()
        self.blocks = 0

    def close(self) -> None:
        self.reader.stop()
        if self._guard is not None:
            self._guard.stop()
        dump_timing(self.timing)  # only when $MIXSTYLE_TIMING_DUMP names a file (benchmarks)
        if self._switch_interval is not None:
            sys.setswitchinterval(self._switch_interval)
            self._switch_interval = None

    def __enter__(self) -> "Engine":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # transport (any control thread) ----------------------------------------------------------
    def play(self) -> None:
        """Start (from the top again if the song had ended)."""
        if self.ended:
            self.seek(0.0)
        self.commands.push(CMD_PLAY, 0, 0.0)

    def stop(self) -> None:
        self.commands.push(CMD_STOP, 0, 0.0)

    def toggle(self) -> None:
        if self.ended:
            self.seek(0.0)
        self.commands.push(CMD_TOGGLE, 0, 0.0)

    def _frames(self, seconds: float, what: str) -> int:
        length_s = self.length_frames / self.sample_rate
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) \
                or not 0.0 <= seconds <= length_s:
            raise ParameterError(f"{what} = {seconds!r} s is out of range: allowed 0 .. "
                                 f"{length_s:.3f} s (the longest track)")
        return int(round(seconds * self.sample_rate))

    def seek(self, seconds: float) -> None:
        """Jump to ``seconds`` (0 .. song length); the reader refills every track from there."""
        frame = self._frames(seconds, "seek position")
        if self.loop_s is not None and not self.loop_s[0] <= seconds < self.loop_s[1]:
            self.clear_loop()
        self.reader.commands.push(CMD_SEEK, frame, 0.0)

    def set_loop(self, start_s: float, end_s: float) -> None:
        a, b = self._frames(start_s, "loop start"), self._frames(end_s, "loop end")
        if b - a < self.block:
            raise ParameterError(f"loop {start_s:g} .. {end_s:g} s is too short: it must be at "
                                 f"least one block ({self.block / self.sample_rate * 1000:.1f} ms)")
        self.loop_s = (float(start_s), float(end_s))
        self.reader.commands.push(CMD_LOOP, a, float(b))

    def clear_loop(self) -> None:
        self.loop_s = None
        self.reader.commands.push(CMD_CLEAR_LOOP, 0, 0.0)

    @property
    def position_s(self) -> float:
        return max(0, int(self.state[POS])) / self.sample_rate

    # inserts (control thread) ------------------------------------------------------------------
    def chain(self, where: str) -> InsertChain:
        """``"master"`` or a track name."""
        if where == "master":
            return self.master_inserts
        if where not in self.track_names:
            raise HostError(f"no track named {where!r} for an insert; tracks: {self.track_names}"
                            f" or 'master'")
        return self.track_inserts[self.track_names.index(where)]

    def add_insert(self, where: str, plugin: str, parameters: dict[str, float] | None = None,
                   mode: str = "auto") -> PluginInsert:
        label = "master" if where == "master" else f"track {where!r}"
        ins = load_insert(plugin, self.sample_rate, self.block, label, parameters, mode)
        self.add_loaded_insert(where, ins)
        return ins

    def add_loaded_insert(self, where: str, insert: Any) -> None:
        """Append an insert object (``process_into(buf)``, e.g. a PluginInsert) to a bus."""
        self.chain(where).add(insert)
        self._track_inserts_present = any(c.inserts for c in self.track_inserts)

    def remove_insert(self, where: str, index: int) -> Any:
        ins = self.chain(where).remove(index)
        self._track_inserts_present = any(c.inserts for c in self.track_inserts)
        return ins

    def take_warnings(self) -> list[str]:
        """New problems the callback worked around; each is also issued as a HostWarning."""
        msgs = []
        for ch in self.track_inserts + [self.master_inserts]:
            msgs += ch.take_failures()
        if self.reader.error is not None:
            msgs.append(f"disk reader stopped: {self.reader.error}")
            self.reader.error = None
        for m in msgs:
            warnings.warn(m, HostWarning, stacklevel=2)
        return msgs

    # studio features (control thread) -----------------------------------------------------
    def set_mute_solo(self, muted: Sequence[str] = (), soloed: Sequence[str] = ()) -> None:
        """Mute/solo tracks: with any solo, only soloed (and not muted) tracks play.

        Applied as a per-track gain on the callback's inputs, ramped over one block."""
        for name in list(muted) + list(soloed):
            if name not in self.track_names:
                raise ParameterError(f"no track named {name!r} to mute/solo; tracks: "
                                     f"{self.track_names}")
        self.muted, self.soloed = set(muted), set(soloed)
        for t, name in enumerate(self.track_names):
            on = name not in self.muted and (not self.soloed or name in self.soloed)
            self._gain_target[t] = 1.0 if on else 0.0
        self._gains_unity = False  # the callback sets it back once every gain is 1 again

    def setup_ab(self, plain_setting: ConsoleSetting | None = None,
                 mix_audio: np.ndarray | None = None) -> None:
        """Before playback: the console for "plain" (neutral; None: no plain source) and the
        song's own mix (2, frames) float32 at the engine rate (None: no mix source)."""
        if self.blocks:
            raise HostError("setup_ab() is for an engine that has not played yet")
        if plain_setting is not None:
            plain = _complete_setting(self.track_names, plain_setting,
                                      [s.role for s in self.sources])
            lat = self.master.params["limiter_lookahead_ms"]
            if plain.master["limiter_lookahead_ms"] != lat:
                plain = ConsoleSetting(plain.tracks, {**plain.master,
                                                      "limiter_lookahead_ms": lat})
            self._plain = Console(self.sample_rate, plain)
            self._plain.process_into(self._inputs, self._out)  # compile / warm up
            self._plain.reset()
            self._out.fill(0.0)
        if mix_audio is not None:
            a = np.ascontiguousarray(mix_audio, dtype=np.float32)
            if a.ndim != 2 or a.shape[0] not in (1, 2):
                raise HostError(f"the A/B mix must be (1 or 2, frames), got shape {a.shape}")
            self._mix_audio = a

    @property
    def ab_available(self) -> list[str]:
        return ["learned"] + (["plain"] if self._plain is not None else []) + \
            (["mix"] if self._mix_audio is not None else [])

    def set_ab(self, source: str, gain_db: float | None = None) -> None:
        """Play "learned" (the console), "plain" or "mix", at ``gain_db`` (loudness match)."""
        if source not in self.ab_available:
            raise ParameterError(f"A/B source {source!r} is not available; available: "
                                 f"{self.ab_available}")
        k = AB_SOURCES.index(source)
        if gain_db is not None:
            self.set_ab_gain(source, gain_db)
        if k == AB_PLAIN and self.ab != AB_PLAIN and self._plain is not None:
            self._plain.reset()  # no stale filter state from the last time it played
        self.ab = k

    def set_ab_gain(self, source: str, gain_db: float) -> None:
        if source not in AB_SOURCES or not math.isfinite(gain_db) or abs(gain_db) > 60.0:
            raise ParameterError(f"A/B gain for {source!r} = {gain_db!r} dB: allowed sources "
                                 f"{AB_SOURCES}, gains -60 .. 60 dB")
        self._ab_gain[AB_SOURCES.index(source)] = float(10.0 ** (gain_db / 20.0))

    def start_record(self, seconds: float) -> np.ndarray:
        """Record what the engine outputs from the next block on for ``seconds``.

        Returns a flag array: ``flag[0] == 1`` once the buffer ``record_take()`` gives is full."""
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) \
                or not 0.0 < seconds <= 600.0:
            raise ParameterError(f"record seconds = {seconds!r} is out of range: allowed "
                                 f"0 .. 600 s")
        if self._record_buf is not None:
            raise HostError("a recording is already running")
        frames = max(1, int(round(seconds * self.sample_rate)))
        done = np.zeros(1, dtype=np.int64)
        self._record_pos[0] = 0
        self._record_done = done
        self._recorded = np.zeros((2, frames), dtype=np.float32)
        self._record_buf = self._recorded  # the callback starts writing from here on
        return done

    def record_take(self) -> np.ndarray:
        """The finished recording (2, frames)."""
        if self._record_done is None or not self._record_done[0]:
            raise HostError("no finished recording")
        self._record_done = None
        return self._recorded

    # the audio callback ---------------------------------------------------------------------
    def _apply_queues(self) -> None:
        rec = self._rec
        while self.commands.pop_into(rec):
            cmd = int(rec[0])
            if cmd == CMD_PLAY:
                self.playing, self.ended = True, False
            elif cmd == CMD_STOP:
                self.playing = False
            elif cmd == CMD_TOGGLE:
                self.playing, self.ended = not self.playing, False
        k = 0
        while k < self.config.max_records_per_block and self.params.pop_into(rec):
            target, index = int(rec[0]), int(rec[1])
            if target == MASTER_TARGET:
                slot = self._master_slot[index]
                if slot >= 0:
                    self._master_targets[slot] = rec[2]
                elif self._limiter_arg[index] == "ceiling_db":
                    self.master.limiter.set_params(ceiling_db=float(rec[2]))
                elif self._limiter_arg[index] == "release_ms":
                    self.master.limiter.set_params(release_ms=float(rec[2]))
            else:
                self._track_targets[target][index] = rec[2]
            k += 1

    def _take_inputs(self) -> None:
        st = self.state
        ep = int(st[EPOCH])
        if ep != self._epoch:  # a seek/loop change: start over at seq 0 of the new epoch
            self._epoch, self._seq = ep, 0
            self._priming, self._prime_blocks = True, 0
            st[PLAY_EPOCH] = ep
            st[PLAY_SEQ] = 0
        if self.playing and self._priming:
            self._prime_blocks += 1
            ready = self.rings.prune(ep, 0)
            if ready == len(self.strips) or self._prime_blocks > self._prime_limit:
                self._priming = False
        if not self.playing or self._priming:
            self.rings.prune(ep, self._seq)
            self._inputs.fill(0.0)
            self._block_pos = -1
            return
        _, pos = self.rings.gather(ep, self._seq, self._inputs)
        self._block_pos = pos
        self._seq += 1
        st[PLAY_SEQ] = self._seq
        if pos >= 0:
            st[POS] = pos
            if pos >= self.length_frames and self.loop_s is None:
                self.playing = False  # end of the song
                self.ended = True
        self.tap.write(self._inputs)

    def process(self, out: np.ndarray) -> None:
        """Render one block into ``out`` (2, block) float32. Never raises for audio reasons."""
        t0 = time.perf_counter_ns()
        self._apply_queues()
        self._take_inputs()
        if not self._gains_unity:  # mute/solo
            self._gains_unity = ramp_track_gains(self._inputs, self._gain_now, self._gain_target)
        ab = self.ab
        if ab != AB_LEARNED:
            self._process_ab(ab)
        elif self._track_inserts_present:
            outs = self._outs
            for t, strip in enumerate(self.strips):
                strip.process_into(self._inputs[t], outs[t])
                chain = self.track_inserts[t]
                if chain.inserts:
                    chain.process_into(outs[t])
            sum_tracks(outs, self._mix)
            self.master.process_into(self._mix, self._out)
        else:  # every strip, the sum and the master bus in one numba call
            self.console.process_into(self._inputs, self._out)
        if ab == AB_LEARNED and self.master_inserts.inserts:
            self.master_inserts.process_into(self._out)
        gain = self._ab_gain[ab]
        if gain != 1.0:
            scale_block(self._out, gain)
        self.loudness.process_into(self._out)
        self.master_levels.update(self._out)
        copy_block(self._out, out)
        buf = self._record_buf
        if buf is not None and record_block(self._out, buf, self._record_pos):
            self._record_buf = None
            done = self._record_done
            if done is not None:
                done[0] = 1
        self.blocks += 1
        self.timing.record(time.perf_counter_ns() - t0)

    def _process_ab(self, ab: int) -> None:
        """The plain console, or the song's mix at the played position (latency-aligned)."""
        if ab == AB_PLAIN and self._plain is not None:
            self._plain.process_into(self._inputs, self._out)
        elif ab == AB_MIX and self._mix_audio is not None:
            pos = self._block_pos
            if pos >= 0:
                self._mix_tail = pos + self.block
                self._mix_tail_end = pos + self.block + self.latency_samples
            elif self._mix_tail >= 0:  # stopped: what the console still had in its delay
                pos = self._mix_tail
                self._mix_tail = pos + self.block if pos + self.block < self._mix_tail_end \
                    else -1
            if pos >= 0:
                play_source(self._mix_audio, pos - self.latency_samples, self._out)
            else:
                self._out.fill(0.0)
        else:
            self._out.fill(0.0)

    # offline / synchronous helpers ---------------------------------------------------------
    def settle(self) -> None:
        """Before playback only: apply queued changes at once (no glide) and clear DSP state."""
        if self.blocks:
            raise HostError("settle() is for an engine that has not played yet")
        self._apply_queues()
        self.console.reset()
        self._gain_now[:] = self._gain_target  # mute/solo without the first block's ramp

    def wait_ready(self, timeout_s: float = 10.0) -> None:
        """Block (outside any callback) until the chunk the next ``process`` plays is read."""
        deadline = time.monotonic() + timeout_s
        while True:
            if self.reader.handled < int(self.reader.commands.head[0]):
                time.sleep(0.0005)  # a seek/loop is on its way: wait for its epoch
                continue
            ep = int(self.state[EPOCH])
            seq = 0 if ep != self._epoch else self._seq
            if self.rings.prune(ep, seq) == len(self.strips):
                return
            if self.reader.error is not None:
                raise HostError(f"disk reader failed: {self.reader.error}")
            if time.monotonic() > deadline:
                raise HostError(f"disk reader did not deliver block {seq} within {timeout_s} s")
            time.sleep(0.0005)

    # readings (any thread) -------------------------------------------------------------------
    def meter_snapshot(self) -> MeterSnapshot:
        return MeterSnapshot(
            track_names=tuple(self.track_names),
            track_peak_db=np.array([s.peak_db for s in self.strips]),
            track_rms_db=np.array([s.rms_db for s in self.strips]),
            track_gr_db=np.array([s.gain_reduction_db for s in self.strips]),
            master_peak_db=float(self.master_levels.peak_db[0]),
            master_rms_db=float(self.master_levels.rms_db[0]),
            master_gr_db=float(self.master.gain_reduction_db),
            master_momentary_lufs=float(self.loudness.momentary_lufs),
            master_short_term_lufs=float(self.loudness.short_term_lufs),
            master_true_peak_dbtp=float(self.loudness.true_peak_dbtp))

    @property
    def late_reads(self) -> int:
        """Blocks a track played as silence because the disk reader was late."""
        return int(self.rings.late.sum())

    def status(self) -> dict[str, Any]:
        st = self.timing.stats()
        return {"playing": self.playing, "position_s": self.position_s, "blocks": self.blocks,
                "xruns": st.xruns, "late_reads": self.late_reads,
                "tap_dropped_blocks": int(self.tap.dropped_blocks[0]),
                "param_queue_refused": self.params.refused}
