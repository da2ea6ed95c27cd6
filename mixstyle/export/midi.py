"""A Standard MIDI File of CC automation lanes for the console (map: ``dsp.ccmap``).

Layout (type 1 file):

- MIDI track 0: tempo and a ``mixstyle console`` marker;
- one MIDI track per console track, named after it, on channel ``i`` (track order);
- one MIDI track ``master`` on channel 16 (``ccmap.MASTER_CHANNEL``).

At time 0 every parameter of every strip is sent once (one lane per parameter). ``changes`` adds
automation: a sequence of ``(time_s, ConsoleSetting)`` snapshots with the same track names; at each
snapshot time only the controllers whose 7-bit value changed are sent. ``target_lufs`` of None is
not sent (it has no CC value). A Standard MIDI File has no field for an audio sample rate:
``sample_rate_hz``, when given, is stated in a text event ``sample_rate_hz=48000`` on track 0.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import mido

from dsp.errors import ExportError
from dsp.params import MASTER, TRACK, ConsoleSetting, section_specs, validate
from dsp.validate import check_range, check_sample_rate
from dsp.ccmap import CC_MAP, MASTER_CHANNEL, MAX_TRACKS, value_to_cc
from mixstyle.export.safe_zip import write_atomic


def _cc_values(section: str, values: Mapping[str, Any], where: str) -> dict[int, int]:
    checked = validate(section, values, where)
    return {CC_MAP[(section, p.name)]: value_to_cc(p, checked[p.name])
            for p in section_specs(section) if checked[p.name] is not None}


def _strips(setting: ConsoleSetting) -> list[tuple[str, int, dict[int, int]]]:
    """(name, channel, {cc: value}) for every track and the master."""
    out = [(t.name, i, _cc_values(TRACK, t.params, f"track {t.name!r}"))
           for i, t in enumerate(setting.tracks)]
    out.append(("master", MASTER_CHANNEL, _cc_values(MASTER, setting.master, "master")))
    return out


def export_midi(setting: ConsoleSetting, out_path: str | os.PathLike[str], *,
                changes: Sequence[tuple[float, ConsoleSetting]] = (),
                tempo_bpm: float = 120.0, ticks_per_beat: int = 480,
                sample_rate_hz: float | None = None) -> Path:
    """Write the setting (and optional timed ``changes``) as CC lanes; returns the path.
    ``sample_rate_hz``: the session's rate, stated in a text event (see the module doc)."""
    if not isinstance(setting, ConsoleSetting):
        raise TypeError(f"setting must be a dsp.params.ConsoleSetting, got "
                        f"{type(setting).__name__}")
    if len(setting.tracks) > MAX_TRACKS:
        raise ExportError(f"MIDI export: {len(setting.tracks)} tracks, at most {MAX_TRACKS} fit "
                          f"(one channel each, channel {MASTER_CHANNEL + 1} is the master)")
    tempo_bpm = check_range("tempo_bpm", tempo_bpm, 20.0, 400.0, "BPM")
    rate = None if sample_rate_hz is None else check_sample_rate(sample_rate_hz)
    if isinstance(ticks_per_beat, bool) or not isinstance(ticks_per_beat, int) \
            or not 24 <= ticks_per_beat <= 9600:
        raise ExportError(f"ticks_per_beat = {ticks_per_beat!r} is out of range: allowed "
                          f"integers 24 .. 9600")
    names = [t.name for t in setting.tracks]
    timeline: list[tuple[float, list[tuple[str, int, dict[int, int]]]]] = [(0.0, _strips(setting))]
    last_t = 0.0
    for k, item in enumerate(changes):
        if not (isinstance(item, tuple) and len(item) == 2
                and isinstance(item[1], ConsoleSetting)):
            raise TypeError(f"changes[{k}] must be a (time_s, ConsoleSetting) pair")
        t = check_range(f"changes[{k}] time_s", item[0], 0.0, 24 * 3600.0, "s")
        if t < last_t:
            raise ExportError(f"changes[{k}] at {t:g} s comes before the previous change at "
                              f"{last_t:g} s: times must not decrease")
        if [tr.name for tr in item[1].tracks] != names:
            raise ExportError(f"changes[{k}] has tracks {[tr.name for tr in item[1].tracks]}, "
                              f"expected the same tracks as the setting: {names}")
        last_t = t
        timeline.append((t, _strips(item[1])))

    tempo = mido.bpm2tempo(tempo_bpm)
    mid = mido.MidiFile(type=1, ticks_per_beat=ticks_per_beat)
    head = mido.MidiTrack()
    head.append(mido.MetaMessage("track_name", name="mixstyle console", time=0))
    head.append(mido.MetaMessage("set_tempo", tempo=tempo, time=0))
    if rate is not None:
        head.append(mido.MetaMessage("text", text=f"sample_rate_hz={rate:g}", time=0))
    head.append(mido.MetaMessage("end_of_track", time=0))
    mid.tracks.append(head)
    for s, (name, channel, _) in enumerate(timeline[0][1]):
        mid.tracks.append(_lane_track(name, channel, ((t, strips[s][2]) for t, strips in timeline),
                                      tempo, ticks_per_beat))
    return write_atomic(out_path, lambda f: mid.save(file=f))


def _lane_track(name: str, channel: int, snapshots: Iterable[tuple[float, dict[int, int]]],
                tempo: int, ticks_per_beat: int) -> mido.MidiTrack:
    track = mido.MidiTrack()
    track.append(mido.MetaMessage("track_name", name=name, time=0))
    track.append(mido.MetaMessage("channel_prefix", channel=channel, time=0))
    sent: dict[int, int] = {}
    now_tick = 0
    for time_s, values in snapshots:
        tick = int(round(mido.second2tick(time_s, ticks_per_beat, tempo)))
        for cc in sorted(values):
            if sent.get(cc) == values[cc]:
                continue
            track.append(mido.Message("control_change", channel=channel, control=cc,
                                      value=values[cc], time=tick - now_tick))
            now_tick = tick
            sent[cc] = values[cc]
    track.append(mido.MetaMessage("end_of_track", time=0))
    return track
