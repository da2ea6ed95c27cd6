"""The engine, driven offline: same audio as the offline console render, whatever the block size;
late disk reads are silence and counted; queued changes move the strips; seek/loop land on the
right frames; meters read what is played."""

from __future__ import annotations

import numpy as np
import pytest

from dsp.errors import HostError, ParameterError
from dsp.params import TRACK_NAMES, ConsoleSetting, TrackSetting
from dsp.render import render
from host.engine import Engine, EngineConfig, HostWarning
from host.offline import render_engine, render_to_file
from host.reader import TrackSource

SR = 48000


def _db(x):
    return 20 * np.log10(np.max(np.abs(x)) + 1e-30)


def _setting(n):
    tracks = tuple(TrackSetting(f"t{i}", {
        "output_gain_db": -3.0 * i, "hpf_freq_hz": 80.0, "peak2_gain_db": 4.0,
        "comp_threshold_db": -30.0, "comp_ratio": 4.0, "pan": -0.5 + 0.3 * i}) for i in range(n))
    return ConsoleSetting(tracks=tracks, master={
        "gain_db": 6.0, "comp_threshold_db": -20.0, "comp_ratio": 2.0,
        "limiter_ceiling_db": -1.0, "target_lufs": None})


@pytest.fixture
def stems(make_stems):
    return make_stems(3, seconds=2.0, n_stems=4, sample_rate=SR)


def _sources(stems):
    return [TrackSource(f"t{i}", audio=stems[i]) for i in range(stems.shape[0])]


@pytest.mark.parametrize("block", [128, 32, 100])
def test_offline_engine_equals_console_render(stems, block):
    setting = _setting(4)
    ref = render(stems, SR, setting).audio
    out = render_engine(Engine(_sources(stems), setting, EngineConfig(SR, block)))
    assert out.shape == ref.shape and _db(ref) > -6.0       # a loud mix, limiter at work
    assert _db(out - ref) <= -90.0


class Passthrough:
    """An insert that does nothing: forces the per-track path (strip, insert, sum, master)."""

    def process_into(self, buf):
        pass

    def take_failure(self):
        return None


class Broken:
    """A plugin instance that raises from its first block, like a crashing VST3."""

    name = "Broken"

    def process(self, audio, sample_rate, buffer_size=None, reset=False):
        raise RuntimeError("plugin crashed")


def test_per_track_path_with_inserts_equals_fused_path(stems):
    setting = _setting(4)
    ref = render(stems, SR, setting).audio
    eng = Engine(_sources(stems), setting, EngineConfig(SR, 128))
    eng.add_loaded_insert("t2", Passthrough())
    assert _db(render_engine(eng) - ref) <= -90.0


def test_a_failing_insert_is_bypassed_with_a_warning_and_the_rest_plays(stems, tmp_path):
    from host.plugins import PluginInsert
    setting = _setting(4)
    ref = render(stems, SR, setting).audio
    eng = Engine(_sources(stems), setting, EngineConfig(SR, 128))
    ins = PluginInsert("broken.vst3", SR, 128, [Broken()], where="track 't1'")
    eng.add_loaded_insert("t1", ins)
    out = render_engine(eng)
    assert ins.failed and isinstance(ins.error, RuntimeError)
    with pytest.warns(HostWarning, match="'t1'.*RuntimeError: plugin crashed.*bypassed"):
        msgs = eng.take_warnings()
    assert len(msgs) == 1 and eng.take_warnings() == []       # reported once
    assert _db(out - ref) <= -90.0          # bypassed = dry track, everything else unchanged


def test_late_reads_are_silence_counted_and_time_moves_on(stems):
    eng = Engine(_sources(stems), _setting(4), EngineConfig(SR, 128))
    buf = np.zeros((2, 128), np.float32)
    eng.play()
    for _ in range(10):                     # reader not started: every chunk is late
        eng.process(buf)
        assert np.all(buf == 0.0)
    assert eng.late_reads == 10 * 4
    with eng:                               # reader starts and skips the blocks given up on
        out = _run(eng, 3)
        assert _db(out[:, -128:]) > -40.0   # (the limiter delays the output by 5 ms)
        assert eng.position_s == pytest.approx(12 * 128 / SR)
        played = eng.tap.read()               # the 10 late blocks were played as silence
        assert played.shape[2] == 13 * 128 and np.all(played[:, :, :1280] == 0.0)
        np.testing.assert_array_equal(played[:, :, 1280:], stems[:, :, 1280:1280 + 3 * 128])
    assert eng.late_reads == 40


def _run(eng, blocks):
    buf = np.zeros((2, eng.block), np.float32)
    outs = []
    for _ in range(blocks):
        eng.wait_ready()
        eng.process(buf)
        outs.append(buf.copy())
    return np.concatenate(outs, axis=1)


def test_seek_and_loop_play_the_right_frames(stems):
    eng = Engine(_sources(stems), _setting(4), EngineConfig(SR, 128))
    with eng:
        eng.play()
        _run(eng, 5)
        eng.tap.read()
        eng.seek(1.0)
        _run(eng, 3)
        np.testing.assert_array_equal(eng.tap.read(), stems[:, :, 48000:48000 + 384])
        eng.set_loop(1.0, 1.01)             # 480 frames, playing at 1.008 s
        _run(eng, 10)
        got = eng.tap.read()
        pos = int(eng.state[3])
        loop = stems[:, :, 48000:48480]
        assert 48000 <= pos < 48480
        # every frame played after the loop was set comes from inside the loop region
        first = got[:, :, :64]
        assert any(np.array_equal(first, loop[:, :, k:k + 64]) for k in range(0, 480 - 64))
        wrapped = np.concatenate([loop] * 5, axis=2)
        start = [k for k in range(480) if np.array_equal(got[:, :, :128], wrapped[:, :, k:k + 128])]
        assert start and np.array_equal(got, wrapped[:, :, start[0]:start[0] + got.shape[2]])


def test_queued_changes_move_the_strip_and_the_level(stems):
    one = stems[:1]
    setting = ConsoleSetting(tracks=(TrackSetting("t0", {}),), master={"limiter_ceiling_db": 0.0})
    eng = Engine(_sources(one), setting, EngineConfig(SR, 128))
    with eng:
        eng.play()
        before = _run(eng, 40)
        eng.control.set_override("t0", "output_gain_db", -20.0)
        eng.control.set_override(None, "limiter_ceiling_db", -3.0)
        _run(eng, 20)                        # 10 ms glide
        after = _run(eng, 40)
    assert eng.strips[0].targets[TRACK_NAMES.index("output_gain_db")] == -20.0
    assert eng.master.limiter.ceiling_db == -3.0
    lat = eng.latency_samples                # engine output is not latency-compensated
    ref = render(one, SR, setting).audio
    assert _db(before[:, lat:] - ref[:, :40 * 128 - lat]) <= -90.0
    a = 60 * 128 - lat
    lvl_after = 10 * np.log10(np.mean(after ** 2) / np.mean(ref[:, a:a + 40 * 128] ** 2))
    assert lvl_after == pytest.approx(-20.0, abs=0.05)


def test_transport_stops_by_itself_at_the_end(stems):
    eng = Engine(_sources(stems[:, :, :4800]), config=EngineConfig(SR, 128))
    with eng:
        eng.play()
        _run(eng, 37)                       # 37 * 128 = 4736 < 4800 frames
        assert eng.playing and not eng.ended
        _run(eng, 2)
        assert eng.ended and not eng.playing
        eng.play()                          # play again: from the top
        _run(eng, 1)
        assert eng.playing and not eng.ended and eng.position_s == 0.0


def test_meters_read_what_plays():
    import scipy.signal
    from dsp.loudness import k_weighting_coeffs
    t = np.arange(SR) / SR
    tone = (0.1 * np.sin(2 * np.pi * 1500 * t)).astype(np.float32)   # 4 cycles per block
    eng = Engine([TrackSource("sine", audio=np.stack([tone, tone]))],
                 ConsoleSetting(tracks=(), master={"limiter_ceiling_db": 0.0}),
                 EngineConfig(SR, 128))
    with eng:
        eng.play()
        _run(eng, 200)                       # 0.53 s
    m = eng.meter_snapshot()
    assert m.track_peak_db[0] == pytest.approx(-20.0, abs=0.05)
    assert m.track_rms_db[0] == pytest.approx(-23.01, abs=0.05)
    assert m.track_gr_db[0] == 0.0
    assert m.master_peak_db == pytest.approx(-20.0, abs=0.05)
    assert m.master_rms_db == pytest.approx(-23.01, abs=0.05)
    # BS.1770: sine of peak 0.1 in both channels -> mean square 0.01 -> -20 dB - 0.691 + K(f)
    k_db = sum(20 * np.log10(abs(scipy.signal.freqz(c[:3], [1, *c[3:]], [1500], fs=SR)[1][0]))
               for c in k_weighting_coeffs(SR))
    assert m.master_momentary_lufs == pytest.approx(-20.0 - 0.691 + k_db, abs=0.05)
    assert m.master_short_term_lufs < m.master_momentary_lufs   # 3 s window, 0.5 s of tone
    assert m.master_true_peak_dbtp == pytest.approx(-20.0, abs=0.1)
    st = eng.timing.stats()
    assert st.callbacks == 200 and 0 < st.p50_ms <= st.p99_ms <= st.max_ms


def test_render_to_file_and_bad_calls(stems, tmp_path):
    eng = Engine(_sources(stems[:2]), None, EngineConfig(SR, 256))
    audio = render_to_file(eng, str(tmp_path / "mix.wav"), seconds=0.5)
    from pedalboard.io import AudioFile
    with AudioFile(str(tmp_path / "mix.wav")) as f:
        assert f.frames == 24000 and np.array_equal(f.read(f.frames), audio)
    with pytest.raises(ParameterError, match=r"seek position = 9 s is out of range: allowed 0 "):
        eng.seek(9)
    with pytest.raises(ParameterError, match="too short"):
        eng.set_loop(1.0, 1.0001)
    with pytest.raises(HostError, match="block_frames = 7"):
        EngineConfig(SR, 7)
    with pytest.raises(HostError, match="unique, repeated: \\['a'\\]"):
        Engine([TrackSource("a", audio=stems[0]), TrackSource("a", audio=stems[1])])
    with pytest.raises(ParameterError, match="not loaded: \\['zz'\\]"):
        Engine(_sources(stems[:1]), ConsoleSetting(tracks=(TrackSetting("zz", {}),)))
    with pytest.raises(HostError, match="no track named 'x' for an insert"):
        eng.chain("x")


def test_real_time_reader_option_plays_the_same(stems):
    """The disk reader may run SCHED_FIFO (where allowed); the audio is the same either way."""
    setting = _setting(4)
    eng = Engine(_sources(stems), setting, EngineConfig(SR, 128, reader_rt_priority=5,
                                                        gil_switch_s=0.001))
    out = render_engine(eng)
    assert isinstance(eng.reader.realtime, bool)
    assert _db(out - render(stems, SR, setting).audio) <= -90.0
