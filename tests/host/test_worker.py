"""The model worker hears what each track played and moves the prediction, smoothed; freeze and
overrides win; a failing model keeps the last setting."""

from __future__ import annotations

import time

import numpy as np
import pytest

from dsp.errors import HostError
from dsp.params import ConsoleSetting, TrackSetting
from host.engine import Engine, EngineConfig
from host.reader import TrackSource
from host.worker import ModelWorker, profile_predictor

SR = 48000


def level_predict(stems):
    """Deterministic stand-in for a profile: fader so that each stem's RMS lands at -35 dBFS."""
    tracks = []
    for i, (role, audio) in enumerate(stems):
        rms_db = 10 * np.log10(np.mean(audio.astype(np.float64) ** 2) + 1e-20)
        tracks.append(TrackSetting(f"stem{i}", {"output_gain_db": float(np.clip(-35 - rms_db,
                                                                                 -60, 12))}, role))
    return ConsoleSetting(tracks=tuple(tracks))


def _setup(make_stems, **kw):
    stems = make_stems(11, seconds=3.0, n_stems=2, sample_rate=SR)
    stems[1] *= 0.3                                    # 10.46 dB quieter
    eng = Engine([TrackSource("gtr", audio=stems[0], role="guitar"),
                  TrackSource("keys", audio=stems[1], role="keys")],
                 config=EngineConfig(SR, 256))
    worker = ModelWorker(level_predict, eng.tap, eng.control, SR, ["guitar", "keys"],
                         interval_s=0.5, window_s=1.0, **kw)
    return stems, eng, worker


def _play(eng, seconds):
    buf = np.zeros((2, eng.block), np.float32)
    for _ in range(int(seconds * SR / eng.block)):
        eng.wait_ready()
        eng.process(buf)


def test_prediction_follows_what_was_played_with_smoothing(make_stems):
    stems, eng, worker = _setup(make_stems, smoothing=0.5)
    seen = []
    with eng:
        eng.play()
        _play(eng, 1.0)
        assert worker.step()
        n = int(SR / eng.block) * eng.block                # frames played = the 1 s window
        for t in range(2):
            rms_db = 10 * np.log10(np.mean(stems[t, :, :n].astype(np.float64) ** 2))
            seen.append(-35 - rms_db)
    # start at 0 dB, halfway (smoothing 0.5, linear dB scale) toward the answer
    assert eng.control.value("gtr", "output_gain_db") == pytest.approx(seen[0] / 2, abs=0.01)
    assert eng.control.value("keys", "output_gain_db") == pytest.approx(seen[1] / 2, abs=0.01)
    assert all(-60 < s < 12 for s in seen)                 # not clipped by the table
    assert worker.updates == 1 and worker.failures == 0


def test_freeze_and_overrides_win(make_stems):
    _, eng, worker = _setup(make_stems, smoothing=0.0)
    with eng:
        eng.play()
        eng.control.set_override("keys", "output_gain_db", -7.0)
        eng.control.freeze()
        _play(eng, 0.5)
        assert not worker.step()
        assert eng.control.value("gtr", "output_gain_db") == 0.0
        eng.control.freeze(False)
        _play(eng, 0.5)
        assert worker.step()
    assert eng.control.value("gtr", "output_gain_db") != 0.0
    assert eng.control.value("keys", "output_gain_db") == -7.0      # override still wins
    eng.control.release("keys", "output_gain_db")
    assert eng.control.value("keys", "output_gain_db") != -7.0


def test_a_failing_model_keeps_the_setting(make_stems):
    _, eng, _ = _setup(make_stems)

    def broken(stems):
        raise RuntimeError("model exploded")

    worker = ModelWorker(broken, eng.tap, eng.control, SR, ["guitar", "keys"], interval_s=0.5)
    with eng:
        eng.play()
        _play(eng, 0.5)
        assert not worker.step()
    assert worker.failures == 1
    assert "RuntimeError: model exploded" in worker.take_failure()
    assert worker.take_failure() is None
    assert eng.control.value("gtr", "output_gain_db") == 0.0


def test_worker_thread_updates_while_playing(make_stems):
    _, eng, worker = _setup(make_stems)
    worker.interval_s = 0.2
    with eng:
        eng.play()
        worker.start()
        deadline = time.monotonic() + 10
        while worker.updates == 0 and time.monotonic() < deadline:
            _play(eng, 0.1)
            time.sleep(0.05)
        worker.stop()
    assert worker.updates >= 1


def test_bad_worker_arguments(make_stems):
    _, eng, _ = _setup(make_stems)
    with pytest.raises(HostError, match="predict must be callable"):
        ModelWorker(None, eng.tap, eng.control, SR, ["a", "b"])
    with pytest.raises(HostError, match="smoothing = 1.5"):
        ModelWorker(level_predict, eng.tap, eng.control, SR, ["a", "b"], smoothing=1.5)


def test_profile_predictor_adapts_the_profile_call_shape(make_stems):
    """A profile's predict takes (name, role, audio) triples and the sample rate."""
    class FakeProfile:
        def predict(self, stems, sample_rate):
            assert sample_rate == SR and [n for n, _, _ in stems] == ["track0", "track1"]
            return ConsoleSetting(tracks=tuple(
                TrackSetting(n, {"pan": -0.5 if r == "guitar" else 0.5}, r) for n, r, _ in stems))

    _, eng, _ = _setup(make_stems)
    worker = ModelWorker(profile_predictor(FakeProfile(), SR), eng.tap, eng.control, SR,
                         ["guitar", "keys"], interval_s=0.5, smoothing=0.0)
    with eng:
        eng.play()
        _play(eng, 0.5)
        assert worker.step()
    assert eng.control.value("gtr", "pan") == -0.5 and eng.control.value("keys", "pan") == 0.5
