"""The one MIDI CC map of the mixstyle console (MIDI export and the host's MIDI map read it).

Every parameter of the table in ``dsp.params`` has one 7-bit controller number. Tracks and the
master share numbers for the parameters they share (EQ bands, compressor): the MIDI *channel*
says which strip a message is for. Track ``i`` (0-based, in console order) uses channel ``i``;
the master bus uses channel 16 (index 15), so at most 15 tracks fit one MIDI port.

Only controllers the MIDI 1.0 specification leaves undefined are used (14-31 and 102-119), so no
host reads our messages as bank select, volume, pan, sustain or (N)RPN. Values travel as
``round(normalise(value) * 127)`` through the table's own scaling: log-scale parameters
(frequencies, Q, ratio, times) are spaced evenly in log, so one CC step is a constant ratio.

``target_lufs`` may be None (no loudness target); None has no CC value and is not sent.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dsp.errors import ParameterError
from dsp.params import MASTER, TRACK, ParamSpec, section_specs, spec

CC_STEPS = 127
MAX_TRACKS = 15
MASTER_CHANNEL = 15  # 0-based: "channel 16" on a MIDI device

# Shared by tracks and master: the EQ bands and the compressor.
_SHARED: dict[str, int] = {
    "low_shelf_freq_hz": 17, "low_shelf_gain_db": 18,
    "peak1_freq_hz": 19, "peak1_gain_db": 20, "peak1_q": 21,
    "peak2_freq_hz": 22, "peak2_gain_db": 23, "peak2_q": 24,
    "peak3_freq_hz": 25, "peak3_gain_db": 26, "peak3_q": 27,
    "high_shelf_freq_hz": 28, "high_shelf_gain_db": 29,
    "comp_threshold_db": 102, "comp_ratio": 103, "comp_attack_ms": 104,
    "comp_release_ms": 105, "comp_knee_db": 106, "comp_makeup_db": 107,
}
_TRACK_ONLY: dict[str, int] = {
    "input_gain_db": 14, "hpf_freq_hz": 15, "hpf_q": 16, "lpf_freq_hz": 30, "lpf_q": 31,
    "output_gain_db": 108, "pan": 109,
}
_MASTER_ONLY: dict[str, int] = {
    "gain_db": 110, "limiter_ceiling_db": 111, "limiter_release_ms": 112,
    "limiter_lookahead_ms": 113, "target_lufs": 114,
    "max_limiting_db": 115, "true_peak_over_db": 116,
}

CC_MAP: dict[tuple[str, str], int] = {}
for _section, _own in ((TRACK, _TRACK_ONLY), (MASTER, _MASTER_ONLY)):
    for _p in section_specs(_section):
        CC_MAP[(_section, _p.name)] = _own.get(_p.name, _SHARED.get(_p.name, -1))

# Reverse lookup per section: cc number -> parameter name.
CC_TO_NAME: dict[str, dict[int, str]] = {
    s: {cc: name for (sec, name), cc in CC_MAP.items() if sec == s} for s in (TRACK, MASTER)
}


def cc_number(section: str, name: str) -> int:
    """The controller number of one parameter (unknown names raise ParameterError)."""
    spec(section, name)
    return CC_MAP[(section, name)]


def param_for_cc(section: str, cc: int) -> ParamSpec | None:
    """The parameter a controller number drives in ``section``, or None if it drives nothing."""
    name = CC_TO_NAME.get(section, {}).get(cc)
    return None if name is None else spec(section, name)


def channel_for_track(index: int) -> int:
    """0-based MIDI channel of the ``index``-th track (console order)."""
    if not 0 <= index < MAX_TRACKS:
        raise ParameterError(f"track index {index} has no MIDI channel: allowed 0 .. "
                             f"{MAX_TRACKS - 1} (channel {MASTER_CHANNEL + 1} is the master)")
    return index


def value_to_cc(p: ParamSpec, value: Any) -> int:
    """A parameter value in the table's range -> controller value 0..127 (table scaling)."""
    v = p.check(value)
    return int(min(CC_STEPS, max(0, round(float(p.normalise(v)) * CC_STEPS))))


def cc_to_value(p: ParamSpec, cc: Any) -> float:
    """Controller value 0..127 -> parameter value (inverse of value_to_cc up to one step)."""
    if isinstance(cc, bool) or not isinstance(cc, (int, np.integer)) or not 0 <= cc <= CC_STEPS:
        raise ParameterError(f"CC value for {p.key} must be an integer 0 .. {CC_STEPS}, "
                             f"got {cc!r}")
    return float(min(p.max, max(p.min, p.denormalise(int(cc) / CC_STEPS))))


def table_markdown() -> str:
    """The CC map as a Markdown table (for the README / host docs)."""
    rows = ["| CC | track parameter | master parameter |", "|---|---|---|"]
    for cc in sorted(set(CC_MAP.values())):
        t = CC_TO_NAME[TRACK].get(cc, "")
        m = CC_TO_NAME[MASTER].get(cc, "")
        rows.append(f"| {cc} | {'`' + t + '`' if t else ''} | {'`' + m + '`' if m else ''} |")
    return "\n".join(rows)
