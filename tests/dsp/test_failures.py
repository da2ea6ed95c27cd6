"""Bad input to the DSP wrappers: each error names the parameter/input and what is allowed."""

import numpy as np
import pytest

from dsp import params as P
from dsp.biquad import HighPass, HighShelf, LowPass, LowShelf, Peak
from dsp.compressor import Compressor
from dsp.console import Console, MasterBus
from dsp.errors import AudioInputError, ParameterError
from dsp.gain import Gain, Pan
from dsp.render import render
from dsp.strip import ChannelStrip

GOOD = np.zeros((2, 256), dtype=np.float32)
PROCESSORS = [HighPass(), LowPass(), LowShelf(), HighShelf(), Peak(), Compressor(), Gain(), Pan()]

BAD_PARAMS = [
    (HighPass, dict(freq_hz=5000.0),
     r"HighPass\.freq_hz = 5000(\.0)? is out of range: allowed 10 \.\. 1000 Hz"),
    (HighPass, dict(q=3.0), r"HighPass\.q = 3\.0 is out of range: allowed 0\.5 \.\. 1\.5"),
    (LowPass, dict(freq_hz=500.0), r"LowPass\.freq_hz .* allowed 1000 \.\. 20000 Hz"),
    (LowShelf, dict(gain_db=30.0), r"LowShelf\.gain_db .* allowed -18 \.\. 18 dB"),
    (HighShelf, dict(freq_hz=100.0), r"HighShelf\.freq_hz .* allowed 1500 \.\. 16000 Hz"),
    (Peak, dict(q=0.1), r"Peak\.q = 0\.1 .* allowed 0\.3 \.\. 8"),
    (Peak, dict(freq_hz=float("nan")), r"Peak\.freq_hz = nan is out of range"),
    (Compressor, dict(ratio=0.5), r"Compressor\.ratio .* allowed 1 \.\. 20"),
    (Compressor, dict(attack_ms=0.0), r"Compressor\.attack_ms .* allowed 0\.1 \.\. 200 ms"),
    (Compressor, dict(threshold_db=6.0), r"Compressor\.threshold_db .* allowed -60 \.\. 0 dBFS"),
    (Gain, dict(gain_db=30.0), r"Gain\.gain_db = 30\.0 .* allowed -60 \.\. 24 dB"),
    (Pan, dict(pan=1.5), r"Pan\.pan = 1\.5 .* allowed -1 \.\. 1"),
]


@pytest.mark.parametrize("cls,kw,match", BAD_PARAMS)
def test_parameter_out_of_range(cls, kw, match):
    with pytest.raises(ParameterError, match=match):
        cls(**kw)


def test_parameter_set_later_is_checked_too():
    f = Peak()
    with pytest.raises(ParameterError, match=r"Peak\.gain_db"):
        f.gain_db = 40.0
    c = Compressor()
    with pytest.raises(ParameterError, match=r"Compressor\.knee_db"):
        c.knee_db = -1.0


@pytest.mark.parametrize("cls,kw", [(Peak, dict(gain_db="3")), (Gain, dict(gain_db=None)),
                                    (Compressor, dict(ratio=True))])
def test_parameter_of_wrong_type(cls, kw):
    with pytest.raises(TypeError, match=list(kw)[0]):
        cls(**kw)


BAD_AUDIO = [
    ([[0.0, 0.1]], TypeError, r"audio must be a numpy array"),
    (np.zeros((2, 100), dtype=np.int16), AudioInputError, r"float32 .* got dtype int16"),
    (np.zeros(100, dtype=np.float32), AudioInputError, r"shaped \(channels, samples\)"),
    (np.zeros((100, 2), dtype=np.float32), AudioInputError,
     r"transposed|expected \(channels, samples\)"),
    (np.array([[0.0, np.nan], [0.0, 0.0]], dtype=np.float32), AudioInputError, r"1 non-finite"),
]


@pytest.mark.parametrize("proc", PROCESSORS, ids=repr)
@pytest.mark.parametrize("audio,exc,match", BAD_AUDIO)
def test_bad_audio(proc, audio, exc, match):
    with pytest.raises(exc, match=match):
        proc.process(audio, 48000)


@pytest.mark.parametrize("proc", PROCESSORS, ids=repr)
@pytest.mark.parametrize("sr,exc", [(1000, AudioInputError), (1e6, AudioInputError),
                                    (float("nan"), AudioInputError), ("48k", TypeError)])
def test_bad_sample_rate(proc, sr, exc):
    with pytest.raises(exc, match="sample_rate"):
        proc.process(GOOD, sr)


def test_pan_needs_stereo():
    with pytest.raises(AudioInputError, match="must have 2 channels"):
        Pan(0.5).process(np.zeros((1, 10), dtype=np.float32), 48000)


def test_channel_strip_errors():
    with pytest.raises(ParameterError, match=r"unknown track parameter 'gain_db'"):
        ChannelStrip(48000, {"gain_db": 1.0})
    with pytest.raises(ParameterError, match=r"track\.pan \(ChannelStrip\) = 2 .* -1 \.\. 1"):
        ChannelStrip(48000).set_params({"pan": 2})
    with pytest.raises(ParameterError, match=r"track\.hpf_freq_hz .* must be finite"):
        ChannelStrip(48000).set_params({"hpf_freq_hz": float("inf")})
    with pytest.raises(ParameterError, match="mapping"):
        ChannelStrip(48000).set_params([("pan", 0.0)])
    with pytest.raises(AudioInputError, match="channels must be 1 or 2"):
        ChannelStrip(48000, channels=3)
    with pytest.raises(AudioInputError, match="sample_rate = 200"):
        ChannelStrip(200)
    s = ChannelStrip(48000)
    with pytest.raises(AudioInputError, match="differs from this strip's 48000 Hz"):
        s.process(GOOD, 44100)
    with pytest.raises(AudioInputError, match="must have 2 channels, got 1"):
        s.process(GOOD[:1], 48000)


def test_channel_strip_kernel_ignores_nonsense_targets():
    """The real-time path never raises: NaN targets are ignored, out-of-range ones clipped."""
    s = ChannelStrip(48000)
    s.targets[:] = np.nan
    s.targets[0] = 1e9  # input_gain_db far above its maximum
    out = np.empty((2, 48000), dtype=np.float32)
    s.process_into(np.full((2, 48000), 0.01, dtype=np.float32), out)
    assert np.isfinite(out).all()
    assert s.current["input_gain_db"] == 24.0 and s.current["pan"] == 0.0


def test_console_errors():
    tracks = tuple(P.TrackSetting(name, P.neutral("track")) for name in ("kick", "bass"))
    setting = P.ConsoleSetting(tracks)
    c = Console(48000, setting)
    with pytest.raises(AudioInputError, match=r"\(2, 2, samples\) for tracks \['kick', 'bass'\]"):
        c.process(np.zeros((3, 2, 100), dtype=np.float32))
    bad = np.zeros((2, 2, 100), dtype=np.float32)
    bad[1, 0, 5] = np.inf
    with pytest.raises(AudioInputError, match=r"tracks \['bass'\] contain NaN or inf"):
        c.process(bad)
    with pytest.raises(TypeError, match="stems must be a numpy array"):
        c.process([[0.0]])
    with pytest.raises(ParameterError, match=r"no track named 'snare'"):
        c.set_track_params("snare", {"pan": 0.0})
    with pytest.raises(ParameterError, match=r"track index must be 0 \.\. 1, got 2"):
        c.set_track_params(2, {"pan": 0.0})
    with pytest.raises(ParameterError, match=r"unknown master parameter 'pan'"):
        c.set_master_params({"pan": 0.0})
    with pytest.raises(ParameterError, match=r"master\.gain_db \(MasterBus\) = 30"):
        c.set_master_params({"gain_db": 30.0})
    with pytest.raises(ParameterError, match="ConsoleSetting"):
        Console(48000, {"tracks": []})
    with pytest.raises(AudioInputError, match="differs from this console's 48000 Hz"):
        c.process(np.zeros((2, 2, 10), dtype=np.float32), 44100)
    with pytest.raises(ParameterError, match=r"master\.limiter_ceiling_db"):
        MasterBus(48000, {"limiter_ceiling_db": 3.0})


def test_render_errors():
    setting = P.ConsoleSetting((P.TrackSetting("a", P.neutral("track")),))
    stems = np.zeros((1, 2, 1000), dtype=np.float32)
    with pytest.raises(ParameterError,
                       match=r"master\.target_lufs \(render\) = -40 .* -30 \.\. -5"):
        render(stems, 48000, setting, target_lufs=-40.0)
    with pytest.raises(AudioInputError, match=r"\(1, 2, samples\)"):
        render(np.zeros((2, 1000), dtype=np.float32), 48000, setting)
    with pytest.raises(AudioInputError, match="sample_rate"):
        render(stems, 5, setting)
