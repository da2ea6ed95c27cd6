"""Bad input to the limiter and the loudness meter: clear errors naming the parameter and range."""

from __future__ import annotations

import numpy as np
import pytest

from dsp import loudness as L
from dsp.errors import AudioInputError, ParameterError
from dsp.limiter import Limiter

SR = 48000
GOOD = np.zeros((2, 4800), np.float32)


@pytest.mark.parametrize("kwargs, match", [
    ({"ceiling_db": 1.0},
     r"master\.limiter_ceiling_db .*= 1 is out of range: allowed -12 \.\. 0 dBFS"),
    ({"ceiling_db": -20.0}, r"limiter_ceiling_db .*allowed -12 \.\. 0"),
    ({"ceiling_db": float("nan")}, r"limiter_ceiling_db .*must be finite"),
    ({"release_ms": 0.5}, r"master\.limiter_release_ms .*allowed 1 \.\. 1000 ms"),
    ({"release_ms": 5000}, r"limiter_release_ms .*allowed 1 \.\. 1000 ms"),
    ({"lookahead_ms": 20.0}, r"master\.limiter_lookahead_ms .*allowed 0\.5 \.\. 10 ms"),
    ({"lookahead_ms": 0.0}, r"limiter_lookahead_ms .*allowed 0\.5 \.\. 10 ms"),
    ({"lookahead_ms": "5"}, r"limiter_lookahead_ms .*must be a number in ms, got '5'"),
    ({"channels": 0}, r"channels = 0 is out of range: allowed 1 \.\. 64"),
])
def test_limiter_parameters_out_of_range(kwargs, match):
    with pytest.raises(ParameterError, match=match):
        Limiter(SR, **kwargs)


def test_limiter_set_params_validated_and_unchanged_on_error():
    lim = Limiter(SR, ceiling_db=-2.0)
    with pytest.raises(ParameterError, match=r"limiter_ceiling_db .*allowed -12 \.\. 0"):
        lim.set_params(ceiling_db=3.0)
    with pytest.raises(ParameterError, match=r"limiter_release_ms .*allowed 1 \.\. 1000"):
        lim.set_params(release_ms=-1.0)
    assert lim.ceiling_db == -2.0 and lim.release_ms == 50.0


def test_limiter_wrong_types():
    with pytest.raises(TypeError, match=r"channels must be an int"):
        Limiter(SR, channels=2.0)
    with pytest.raises(TypeError, match=r"sample_rate must be a number in Hz"):
        Limiter("48000")
    with pytest.raises(AudioInputError, match=r"sample_rate = 1000 Hz is out of range"):
        Limiter(1000)


@pytest.mark.parametrize("audio, match", [
    (np.zeros((1, 100), np.float32), r"audio must have 2 channels, got 1"),
    (np.zeros(100, np.float32), r"audio must be shaped \(channels, samples\)"),
    (np.zeros((2, 100), np.int16), r"audio must be float32 .*got dtype int16"),
    (np.full((2, 100), np.nan, np.float32), r"audio contains 200 non-finite samples"),
    (np.zeros((100, 2), np.float32),
     r"got 100 \(shape \(100, 2\); expected \(channels, samples\)\)"),
])
def test_limiter_bad_audio(audio, match):
    with pytest.raises(AudioInputError, match=match):
        Limiter(SR).process(audio, SR)


def test_limiter_sample_rate_mismatch_and_non_array():
    with pytest.raises(AudioInputError, match=r"sample_rate = 44100 Hz but this Limiter was built "
                                              r"for 48000 Hz"):
        Limiter(SR).process(GOOD, 44100)
    with pytest.raises(TypeError, match=r"audio must be a numpy array"):
        Limiter(SR).process([[0.0, 0.0], [0.0, 0.0]], SR)


@pytest.mark.parametrize("channels, exc, match", [
    (6, ParameterError, r"channels = 6 is out of range: allowed 1 \.\. 5"),
    (0, ParameterError, r"channels = 0 is out of range: allowed 1 \.\. 5"),
    (2.0, TypeError, r"channels must be an int \(1\.\.5\)"),
])
def test_meter_channels(channels, exc, match):
    with pytest.raises(exc, match=match):
        L.LoudnessMeter(SR, channels=channels)


def test_meter_sample_rate_and_audio():
    with pytest.raises(AudioInputError, match=r"sample_rate = 500000 Hz is out of range: allowed "
                                              r"8000 \.\. 384000 Hz"):
        L.LoudnessMeter(500000)
    m = L.LoudnessMeter(SR, channels=2)
    with pytest.raises(AudioInputError, match=r"audio must have 2 channels, got 1"):
        m.process(np.zeros((1, 100), np.float32))
    with pytest.raises(AudioInputError, match=r"non-finite"):
        m.process(np.array([[np.inf], [0.0]], np.float32))
    assert m.integrated_lufs == -np.inf  # nothing was metered by the failed calls


@pytest.mark.parametrize("fn", [L.integrated_loudness, L.true_peak_dbtp, L.momentary_max_lufs])
def test_pure_functions_reject_bad_input(fn):
    with pytest.raises(AudioInputError, match=r"6 channels; the loudness meter measures 1 \.\. 5"):
        fn(np.zeros((6, 48000), np.float32), SR)
    with pytest.raises(AudioInputError, match=r"sample_rate = 4000 Hz is out of range"):
        fn(GOOD, 4000)
    with pytest.raises(AudioInputError, match=r"transposed"):
        fn(np.zeros((48000, 2), np.float32), SR)
    with pytest.raises(TypeError, match=r"audio must be a numpy array"):
        fn(None, SR)


@pytest.mark.parametrize("fn", [L.integrated_loudness, L.momentary_max_lufs])
def test_non_finite_found_by_the_kernel(fn):
    x = np.zeros((2, 48000), np.float32)
    x[1, 12345] = np.nan
    x[0, 7] = -np.inf
    with pytest.raises(AudioInputError, match=r"audio contains 2 non-finite samples"):
        fn(x, SR)
    mono = np.zeros((1, 480), np.float32)
    mono[0, 0] = np.inf
    with pytest.raises(AudioInputError, match=r"audio contains 1 non-finite samples"):
        fn(mono, SR)
    with pytest.raises(AudioInputError, match=r"must be float32 .*int16"):
        fn(np.zeros((2, 10), np.int16), SR)


def test_meter_process_into_reports_non_finite_until_reset():
    m = L.LoudnessMeter(SR, channels=3)
    x = np.zeros((3, 1000), np.float32)
    x[2, 5] = np.nan
    assert m.process_into(x) is False
    assert m.process_into(np.zeros((3, 1000), np.float32)) is False  # stays poisoned
    m.reset()
    assert m.process_into(np.zeros((3, 1000), np.float32)) is True


def test_sample_peak_rejects_bad_input():
    with pytest.raises(AudioInputError, match=r"float32"):
        L.sample_peak_db(np.zeros((2, 10), np.int32))
