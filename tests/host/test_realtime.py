"""The process-wide real-time set-up (host.realtime) an engine applies while it runs: garbage
collection frozen and paced by a collector thread, memory locked, everything restored when the
engine closes, and the audio exactly what it is without it."""

from __future__ import annotations

import gc
import time
import weakref

import numpy as np
import pytest

from dsp.errors import HostError
from dsp.params import ConsoleSetting, TrackSetting
from host.engine import Engine, EngineConfig
from host.offline import render_engine
from host.realtime import RealtimeGuard
from host.reader import TrackSource

SR = 48000


def _locked_kb() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmLck:"):
                return int(line.split()[1])
    return -1


class _Cycle:
    def __init__(self) -> None:
        self.me = self


def test_guard_freezes_gc_paces_collection_and_restores():
    assert gc.isenabled()
    with RealtimeGuard(mlock=False, collect_every_s=0.02) as g:
        st = g.status()
        assert st["gc_frozen"] and st["gc_frozen_objects"] > 1000  # modules etc. walked never
        assert not gc.isenabled()                                  # no collection mid-callback
        c = _Cycle()
        gone = weakref.ref(c)
        del c
        deadline = time.monotonic() + 20.0
        while gone() is not None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert gone() is None, "the collector thread must still free reference cycles"
    assert gc.isenabled() and gc.get_freeze_count() == 0


def test_guards_nest_the_last_one_restores():
    a, b = RealtimeGuard(mlock=False), RealtimeGuard(mlock=False)
    a.start()
    b.start()
    a.stop()
    assert not gc.isenabled() and gc.get_freeze_count() > 0  # b still running
    b.stop()
    assert gc.isenabled() and gc.get_freeze_count() == 0


def test_guard_locks_memory_or_says_why():
    with RealtimeGuard(gc=False) as g:
        st = g.status()
        if st["memory_locked"]:
            assert _locked_kb() > 10_000  # the whole process (its libraries, the buffers)
        else:
            assert any("mlockall" in p for p in st["problems"]), st
    assert _locked_kb() in (0, -1)


def _rollup_kb(field: str) -> int:
    with open("/proc/self/smaps_rollup") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return -1


def test_later_memory_is_locked_when_touched_not_when_mapped():
    """Memory mapped after the guard started is locked page by page as it is first touched
    (MCL_ONFAULT), not filled and locked in full when it is mapped (plain MCL_FUTURE: the kernel
    work that held off the audio thread's wake-ups)."""
    with RealtimeGuard(gc=False) as g:
        if not g.status()["memory_locked"]:
            pytest.skip("memory locking is not permitted here: " + str(g.status()["problems"]))
        rss0, locked0 = _rollup_kb("Rss"), _rollup_kb("Locked")
        block = np.empty(64 << 20, np.uint8)          # 64 MiB mapped, not touched
        rss1 = _rollup_kb("Rss")
        block[::4096] = 1                              # touch every page
        rss2, locked2 = _rollup_kb("Rss"), _rollup_kb("Locked")
        assert rss1 - rss0 < 16 << 10, (rss0, rss1)   # not filled when mapped
        assert rss2 - rss1 > 60 << 10, (rss1, rss2)
        assert locked2 - locked0 > 60 << 10, (locked0, locked2)  # locked once touched
        del block


def test_engine_audio_same_with_and_without_guard(make_stems):
    stems = make_stems(3, seconds=1.0, n_stems=3, sample_rate=SR)
    setting = ConsoleSetting(tracks=tuple(
        TrackSetting(f"t{i}", {"output_gain_db": -3.0 * i, "comp_threshold_db": -30.0,
                               "comp_ratio": 4.0}) for i in range(3)))

    def render(guard: bool) -> np.ndarray:
        eng = Engine([TrackSource(f"t{i}", audio=stems[i]) for i in range(3)], setting,
                     EngineConfig(SR, 128, realtime_guard=guard))
        return render_engine(eng)

    on, off = render(True), render(False)
    assert np.max(np.abs(on)) > 0.05
    assert np.array_equal(on, off)
    assert gc.isenabled() and gc.get_freeze_count() == 0  # closed engine: all restored


def test_guard_pace_range():
    with pytest.raises(HostError, match=r"collect_every_s = 0 is out of range: allowed 0.01"):
        RealtimeGuard(collect_every_s=0)


def test_timing_dump_holds_the_callbacks_in_order(tmp_path, monkeypatch):
    from host.meters import TimingRing
    from host.realtime import dump_timing
    ring = TimingRing(128 / SR, slots=8)
    for i in range(11):                        # wraps: the last 8 are kept, oldest first
        ring.record(1000 * i + (10_000_000 if i == 9 else 0))
    path = dump_timing(ring, str(tmp_path / "t.npz"))
    d = np.load(path)
    assert int(d["count"]) == 11 and int(d["late"]) == 1
    assert list(d["ns"]) == [3000, 4000, 5000, 6000, 7000, 8000, 10_009_000, 10000]
    monkeypatch.delenv("MIXSTYLE_TIMING_DUMP", raising=False)
    assert dump_timing(ring) is None           # not asked for: nothing written


def test_realtime_switched_off_by_environment(monkeypatch):
    from host.realtime import make_thread_realtime
    monkeypatch.setenv("MIXSTYLE_REALTIME", "0")
    with RealtimeGuard() as g:
        assert gc.isenabled() and not g.status()["gc_frozen"]
        assert not g.status()["memory_locked"]
    assert make_thread_realtime(1) is False
