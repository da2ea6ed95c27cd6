"""The torch twin: measured filter/compressor/pan behaviour, agreement with an independent
scipy + plain-numpy reference, gradients (gradcheck, lfilter backend) and bad input."""

import math

import numpy as np
import pytest
import scipy.signal
import torch

from dsp.errors import AudioInputError, ParameterError
from dsp.params import MASTER, neutral
from mixstyle.twin import console as twin
from mixstyle.twin.ops import biquad_cascade, biquad_cascade_lfilter, smooth_gain_db

SR = 44100.0


def _db(x):
    return 20 * math.log10(x)


def _rms(x):
    return float(np.sqrt(np.mean(np.square(np.asarray(x, dtype=np.float64)))))


def _rel_db(y, ref):
    return _db(_rms(np.asarray(y, np.float64) - np.asarray(ref, np.float64)) / _rms(ref))


def _sine(freq_hz, seconds=0.5, sr=SR, amp=0.25):
    t = np.arange(int(seconds * sr)) / sr
    s = (amp * np.sin(2 * np.pi * freq_hz * t)).astype(np.float32)
    return torch.from_numpy(np.stack([s, s]))[None]


def _test_audio(seconds, sr, seed):
    """Stereo noise bursts + tones around -12 dBFS."""
    rng = np.random.default_rng(seed)
    n = int(seconds * sr)
    t = np.arange(n) / sr
    env = (np.sin(2 * np.pi * 3.0 * t) > 0.2).astype(float)
    tones = 0.2 * np.sin(2 * np.pi * 220 * t) + 0.1 * np.sin(2 * np.pi * 3100 * t + 1.0)
    out = np.stack([tones + 0.3 * env * rng.normal(size=n) * 0.5,
                    0.8 * tones + 0.3 * env * rng.normal(size=n) * 0.5])
    return out.astype(np.float32)


def _response_db(coeffs, freq_hz, sr):
    b0, b1, b2, a1, a2 = np.asarray(coeffs, dtype=np.float64)
    _, h = scipy.signal.freqz([b0, b1, b2], [1.0, a1, a2], worN=[freq_hz], fs=sr)
    return 20 * np.log10(abs(h[0]))


# ------------------------------------------------------------------ independent reference

def _rbj_ref(kind, f, g, q, sr):
    """Audio EQ Cookbook formulas written out in numpy (b, a), a0 = 1."""
    if kind == "highpass" and f <= 10 or kind == "lowpass" and f >= 20000:
        return np.array([1.0, 0, 0]), np.array([1.0, 0, 0])
    w = 2 * np.pi * min(f, 0.45 * sr) / sr
    c, s = np.cos(w), np.sin(w)
    A = 10 ** (g / 40)
    if kind in ("highpass", "lowpass", "peak"):
        al = s / (2 * q)
    if kind == "highpass":
        b, a = [(1 + c) / 2, -(1 + c), (1 + c) / 2], [1 + al, -2 * c, 1 - al]
    elif kind == "lowpass":
        b, a = [(1 - c) / 2, 1 - c, (1 - c) / 2], [1 + al, -2 * c, 1 - al]
    elif kind == "peak":
        b, a = [1 + al * A, -2 * c, 1 - al * A], [1 + al / A, -2 * c, 1 - al / A]
    else:
        al = s / 2 * np.sqrt(2.0)
        sq = 2 * np.sqrt(A) * al
        sign = 1 if kind == "low_shelf" else -1
        b = [A * ((A + 1) - sign * (A - 1) * c + sq), sign * 2 * A * ((A - 1) - sign * (A + 1) * c),
             A * ((A + 1) - sign * (A - 1) * c - sq)]
        a = [(A + 1) + sign * (A - 1) * c + sq, -sign * 2 * ((A - 1) + sign * (A + 1) * c),
             (A + 1) + sign * (A - 1) * c - sq]
    b, a = np.array(b), np.array(a)
    return b / a[0], a / a[0]


def _comp_ref(x, sr, t, r, att_ms, rel_ms, w, makeup):
    """Sample-by-sample loop exactly as written in docs/DESIGN.md."""
    x = x.astype(np.float64)
    aa, ar = math.exp(-1 / (att_ms / 1000 * sr)), math.exp(-1 / (rel_ms / 1000 * sr))
    out = np.empty_like(x)
    gs = 0.0
    for n in range(x.shape[1]):
        xd = 20 * math.log10(max(np.max(np.abs(x[:, n])), 1e-10))
        if 2 * (xd - t) < -w:
            y = xd
        elif w > 0 and 2 * abs(xd - t) <= w:
            y = xd + (1 / r - 1) * (xd - t + w / 2) ** 2 / (2 * w)
        else:
            y = t + (xd - t) / r
        gc = y - xd
        a = aa if gc < gs else ar
        gs = a * gs + (1 - a) * gc
        out[:, n] = x[:, n] * 10 ** ((gs + makeup) / 20)
    return out


def _strip_ref(x, sr, p):
    y = x.astype(np.float64) * 10 ** (p["input_gain_db"] / 20)
    for kind, fn, gn, qn in twin.TRACK_EQ:
        b, a = _rbj_ref(kind, p[fn], p[gn] if gn else 0.0, p[qn] if qn else 1.0, sr)
        y = scipy.signal.lfilter(b, a, y, axis=1)
    y = _comp_ref(y, sr, p["comp_threshold_db"], p["comp_ratio"], p["comp_attack_ms"],
                  p["comp_release_ms"], p["comp_knee_db"], p["comp_makeup_db"])
    ang = math.pi * (p["pan"] + 1) / 4
    pan = math.sqrt(2) * np.array([math.cos(ang), math.sin(ang)])
    return y * 10 ** (p["output_gain_db"] / 20) * pan[:, None]


def _random_track(rng):
    return {
        "input_gain_db": rng.uniform(-6, 6), "hpf_freq_hz": rng.uniform(20, 200),
        "hpf_q": rng.uniform(0.5, 1.5), "low_shelf_freq_hz": rng.uniform(60, 400),
        "low_shelf_gain_db": rng.uniform(-9, 9), "peak1_freq_hz": rng.uniform(80, 800),
        "peak1_gain_db": rng.uniform(-9, 9), "peak1_q": rng.uniform(0.5, 4),
        "peak2_freq_hz": rng.uniform(300, 4000), "peak2_gain_db": rng.uniform(-9, 9),
        "peak2_q": rng.uniform(0.5, 4), "peak3_freq_hz": rng.uniform(1500, 12000),
        "peak3_gain_db": rng.uniform(-9, 9), "peak3_q": rng.uniform(0.5, 4),
        "high_shelf_freq_hz": rng.uniform(3000, 12000), "high_shelf_gain_db": rng.uniform(-9, 9),
        "lpf_freq_hz": rng.uniform(6000, 18000), "lpf_q": rng.uniform(0.5, 1.5),
        "comp_threshold_db": rng.uniform(-30, -18), "comp_ratio": rng.uniform(2, 8),
        "comp_attack_ms": rng.uniform(1, 30), "comp_release_ms": rng.uniform(30, 300),
        "comp_knee_db": rng.uniform(0, 12), "comp_makeup_db": rng.uniform(0, 6),
        "output_gain_db": rng.uniform(-12, 3), "pan": rng.uniform(-1, 1),
    }


def _batch(ps):
    return {k: torch.tensor([p[k] for p in ps], dtype=torch.float64) for k in ps[0]}


# ------------------------------------------------------------------ reference agreement

@pytest.mark.parametrize("kind", ["highpass", "lowpass", "low_shelf", "high_shelf", "peak"])
@pytest.mark.parametrize("sr", [44100.0, 96000.0])
def test_coefficients_match_cookbook(kind, sr):
    rng = np.random.default_rng(1)
    for f, g, q in [(rng.uniform(30, 15000), rng.uniform(-18, 18), rng.uniform(0.3, 8))
                    for _ in range(5)] + [(10.0, 3.0, 0.7), (20000.0, 3.0, 0.7), (30e3, 6, 1)]:
        c = twin.biquad_coeffs(kind, torch.tensor([f], dtype=torch.float64), g, q, sr)[0]
        b, a = _rbj_ref(kind, f, g, q, sr)
        np.testing.assert_allclose(c.numpy(), [*b, *a[1:]], rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("sr", [44100.0, 48000.0])
def test_strip_matches_scipy_and_numpy_loop(sr):
    x = _test_audio(0.4, sr, seed=3)
    rng = np.random.default_rng(int(sr))
    ps = [_random_track(rng) for _ in range(3)]
    y = twin.strip(torch.from_numpy(np.stack([x] * 3)), sr, _batch(ps)).numpy()
    for i, p in enumerate(ps):
        ref = _strip_ref(x, sr, p)
        assert _rel_db(y[i], ref) < -90
        # the compressor really compresses: the same strip at ratio 1 is louder
        assert _rms(ref) < 0.9 * _rms(_strip_ref(x, sr, {**p, "comp_ratio": 1.0}))


def test_master_matches_reference():
    x = torch.from_numpy(_test_audio(0.3, SR, seed=4))[None]
    rng = np.random.default_rng(5)
    tr = _random_track(rng)
    mp = {k: v for k, v in tr.items() if k in neutral(MASTER)}
    mp.update(comp_ratio=3.0, gain_db=-2.0)
    y = twin.master(x, SR, {k: torch.tensor([v], dtype=torch.float64)
                            for k, v in mp.items()})[0].numpy()
    ref = x[0].numpy().astype(np.float64)
    for kind, fn, gn, qn in twin.MASTER_EQ:
        b, a = _rbj_ref(kind, mp[fn], mp[gn], mp[qn] if qn else 1.0, SR)
        ref = scipy.signal.lfilter(b, a, ref, axis=1)
    ref = _comp_ref(ref, SR, mp["comp_threshold_db"], 3.0, mp["comp_attack_ms"],
                    mp["comp_release_ms"], mp["comp_knee_db"], mp["comp_makeup_db"]) * 10 ** -0.1
    assert _rel_db(y, ref) < -90


# ------------------------------------------------------------------ measured behaviour

def _level_db(x, sr=SR):
    return _db(_rms(x[..., int(0.2 * sr):]))  # skip the filter/compressor onset


@pytest.mark.parametrize("kind,f_hz,expected_db", [
    ("highpass", 200.0, -3.01), ("lowpass", 5000.0, -3.01),
    ("peak", 1000.0, 7.5), ("low_shelf", 150.0, 3.75), ("high_shelf", 6000.0, 3.75)])
def test_filter_levels_at_the_corner(kind, f_hz, expected_db):
    """Butterworth -3 dB at the cutoff, peak gain at the centre, half the shelf gain at the corner."""
    c = twin.biquad_coeffs(kind, torch.tensor([f_hz]), 7.5, 0.7071, SR)[0]
    assert _response_db(c, f_hz, SR) == pytest.approx(expected_db, abs=0.02)


def test_strip_eq_measured_on_sines():
    p = {"peak2_freq_hz": torch.tensor([1000.0]), "peak2_gain_db": torch.tensor([6.0]),
         "peak2_q": torch.tensor([2.0]), "hpf_freq_hz": torch.tensor([100.0])}
    at_peak = twin.strip(_sine(1000.0), SR, p)
    far = twin.strip(_sine(5000.0), SR, p)
    below_hpf = twin.strip(_sine(25.0, seconds=1.0), SR, p)
    ref = _level_db(_sine(1000.0).numpy())
    assert _level_db(at_peak.numpy()) - ref == pytest.approx(6.0, abs=0.05)
    assert abs(_level_db(far.numpy()) - ref) < 0.3
    assert _level_db(below_hpf.numpy()) - ref == pytest.approx(-24.1, abs=0.5)  # 12 dB/oct


def test_bypass_and_clamp():
    hp = twin.biquad_coeffs("highpass", torch.tensor([10.0, 10.5]), 0.0, 0.7071, SR)
    lp = twin.biquad_coeffs("lowpass", torch.tensor([20000.0, 19999.0]), 0.0, 0.7071, SR)
    assert hp[0].tolist() == [1.0, 0.0, 0.0, 0.0, 0.0] and hp[1, 1] != 0
    assert lp[0].tolist() == [1.0, 0.0, 0.0, 0.0, 0.0] and lp[1, 1] != 0
    hi = twin.biquad_coeffs("peak", torch.tensor([30000.0, 0.45 * SR]), 6.0, 1.0, SR)
    torch.testing.assert_close(hi[0], hi[1])


def test_compressor_static_curve_on_dc():
    """A constant 0.5 (-6.02 dBFS) into T=-20, R=4, hard knee settles at T + (x - T)/R."""
    x = torch.full((1, 2, 22050), 0.5, dtype=torch.float64)
    one = lambda v: torch.tensor([float(v)], dtype=torch.float64)  # noqa: E731
    y = twin.compressor(x, SR, one(-20), one(4), one(1), one(100), one(0), one(3))
    out_db = _db(float(y[0, 0, -1]))
    assert out_db == pytest.approx(-20 + (_db(0.5) + 20) / 4 + 3, abs=1e-6)
    # soft knee exactly at the threshold: gain (1/R - 1) W / 8
    x_t = torch.full((1, 2, 22050), 10 ** (-20 / 20), dtype=torch.float64)
    g = twin.gain_curve_db(x_t, SR, one(-20), one(4), one(1), one(100), one(12))
    assert float(g[0, -1]) == pytest.approx((0.25 - 1) * 12 / 8, abs=1e-6)


def test_compressor_attack_time_constant():
    """After a step, the gain covers 1 - 1/e of its way to the target after attack_ms."""
    x = torch.zeros(1, 2, 8820, dtype=torch.float64)
    x[..., 441:] = 1.0
    one = lambda v: torch.tensor([float(v)], dtype=torch.float64)  # noqa: E731
    g = twin.gain_curve_db(x, SR, one(-20), one(10), one(20), one(100), one(0))[0]
    target = -20 * 0.9
    at_tau = float(g[441 + int(0.020 * SR) - 1])
    assert at_tau / target == pytest.approx(1 - math.exp(-1), abs=2e-3)


@pytest.mark.parametrize("pan_pos", [-1.0, -0.4, 0.0, 0.7, 1.0])
def test_pan_keeps_power_of_centred_mono(pan_pos):
    x = _sine(440.0)
    y = twin.strip(x, SR, {"pan": torch.tensor([pan_pos])}).numpy()[0]
    power = np.mean(y[0].astype(np.float64) ** 2 + y[1].astype(np.float64) ** 2)
    assert _db(math.sqrt(power / np.mean(2 * x.numpy()[0, 0].astype(np.float64) ** 2))) \
        == pytest.approx(0.0, abs=1e-4)
    if pan_pos == -1.0:
        assert _rms(y[1]) < 1e-7 and _db(_rms(y[0]) / _rms(x[0, 0])) == pytest.approx(3.01, 0.01)


def test_neutral_console_is_the_sum_and_gains_are_exact():
    stems = torch.from_numpy(np.stack([_test_audio(0.2, SR, s) for s in range(3)]))[None]
    y = twin.console(stems, SR, {}, {})
    torch.testing.assert_close(y, stems.sum(1), rtol=0, atol=1e-6)
    faders = torch.tensor([[-6.0, 0.0, 3.0]])
    y2 = twin.console(stems, SR, {"output_gain_db": faders}, {"gain_db": -2.0})
    expected = (stems * 10 ** (faders[..., None, None] / 20)).sum(1) * 10 ** (-2 / 20)
    torch.testing.assert_close(y2, expected.float(), rtol=0, atol=1e-6)


def test_console_is_strips_summed_into_master():
    stems = torch.from_numpy(np.stack([_test_audio(0.2, SR, s) for s in range(2)]))[None]
    rng = np.random.default_rng(7)
    ps = [_random_track(rng) for _ in range(2)]
    tp = {k: v[None] for k, v in _batch(ps).items()}
    mp = {"comp_threshold_db": -20.0, "comp_ratio": 3.0, "peak2_gain_db": 4.0}
    y = twin.console(stems, SR, tp, mp)
    strips = twin.strip(stems[0], SR, _batch(ps)).sum(0, keepdim=True)
    torch.testing.assert_close(y, twin.master(strips, SR, mp), rtol=0, atol=1e-7)


# ------------------------------------------------------------------ gradients

def test_smoother_gradcheck():
    torch.manual_seed(0)
    gc = (-12 * torch.rand(2, 60, dtype=torch.float64)).requires_grad_()
    aa = torch.tensor([0.6, 0.8], dtype=torch.float64, requires_grad=True)
    ar = torch.tensor([0.9, 0.95], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(smooth_gain_db, (gc, aa, ar), eps=1e-7, atol=1e-6)


def test_cascade_gradcheck_and_lfilter_agreement():
    torch.manual_seed(1)
    x = torch.randn(3, 80, dtype=torch.float64, requires_grad=True)
    f = torch.tensor([[100.0, 2000.0], [500.0, 9000.0], [60.0, 300.0]], dtype=torch.float64)
    c = torch.stack([twin.biquad_coeffs("peak", f[:, 0], 6.0, 1.0, 8000.0),
                     twin.biquad_coeffs("lowpass", f[:, 1], 0.0, 0.9, 8000.0)], 1)
    c.requires_grad_()
    assert torch.autograd.gradcheck(biquad_cascade, (x, c), eps=1e-6, atol=1e-6)
    g = torch.randn(3, 80, dtype=torch.float64)
    gx, gc = torch.autograd.grad((biquad_cascade(x, c) * g).sum(), (x, c))
    lx, lc = torch.autograd.grad((biquad_cascade_lfilter(x, c) * g).sum(), (x, c))
    torch.testing.assert_close(gx, lx)
    torch.testing.assert_close(gc, lc)


def test_strip_gradcheck_wrt_audio_and_parameters():
    x = torch.from_numpy(_test_audio(0.004, SR, 9)).double()[None].requires_grad_()
    rng = np.random.default_rng(11)
    p0 = _random_track(rng)
    names = ["input_gain_db", "hpf_freq_hz", "peak2_gain_db", "peak2_q", "comp_threshold_db",
             "comp_ratio", "comp_attack_ms", "comp_knee_db", "pan"]
    leaves = [torch.tensor([p0[n]], dtype=torch.float64, requires_grad=True) for n in names]
    p0["comp_threshold_db"] = -40.0
    leaves[4] = torch.tensor([-40.0], dtype=torch.float64, requires_grad=True)

    def f(x, *vals):
        return twin.strip(x, SR, {**{k: torch.tensor([v]) for k, v in p0.items()},
                                  **dict(zip(names, vals))})
    assert torch.autograd.gradcheck(f, (x, *leaves), eps=1e-7, atol=1e-5, rtol=1e-4)


def test_backends_agree_on_values_and_parameter_gradients():
    stems = torch.from_numpy(np.stack([_test_audio(0.1, SR, s) for s in range(2)]))[None]
    rng = np.random.default_rng(13)
    tp = {k: v[None].clone().requires_grad_() for k, v in _batch([_random_track(rng)
                                                                  for _ in range(2)]).items()}
    out = {}
    for backend in ("numba", "lfilter"):
        y = twin.console(stems.double(), SR, tp, {"comp_ratio": 2.0}, backend=backend)
        grads = torch.autograd.grad(y.square().mean(), list(tp.values()))
        out[backend] = (y.detach(), grads)
    torch.testing.assert_close(out["numba"][0], out["lfilter"][0], rtol=1e-7, atol=1e-9)
    for a, b in zip(out["numba"][1], out["lfilter"][1]):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-12)
    assert all(bool(torch.isfinite(g).all()) and float(g.abs().sum()) > 0
               for g in out["numba"][1])


def test_gradient_is_finite_at_the_bypass_ends():
    f = torch.tensor([10.0, 20000.0], dtype=torch.float64, requires_grad=True)
    c = torch.cat([twin.biquad_coeffs("highpass", f[:1], 0.0, 0.7, SR),
                   twin.biquad_coeffs("lowpass", f[1:], 0.0, 0.7, SR)])
    (g,) = torch.autograd.grad(c.sum(), f)
    assert bool(torch.isfinite(g).all())


# ------------------------------------------------------------------ bad input

def test_bad_input_raises_clear_errors():
    x = torch.zeros(1, 2, 100)
    with pytest.raises(ParameterError, match="unknown track parameter 'eq_gain'"):
        twin.strip(x, SR, {"eq_gain": 1.0})
    with pytest.raises(ParameterError, match=r"track.comp_ratio .* = 30 .*allowed 1 .. 20"):
        twin.strip(x, SR, {"comp_ratio": torch.tensor([30.0])})
    with pytest.raises(ParameterError, match=r"track.pan .*must have shape \(1,\)"):
        twin.strip(x, SR, {"pan": torch.zeros(3)})
    with pytest.raises(ParameterError, match="master.gain_db .* = nan"):
        twin.master(x, SR, {"gain_db": float("nan")})
    with pytest.raises(AudioInputError, match=r"strip input x must be shaped \(batch, 2, samples\)"):
        twin.strip(torch.zeros(1, 1, 100), SR, {})
    with pytest.raises(AudioInputError, match="non-finite"):
        twin.strip(torch.full((1, 2, 10), float("inf")), SR, {})
    with pytest.raises(AudioInputError, match=r"console stems must be shaped \(batch, stems"):
        twin.console(x, SR, {}, {})
    with pytest.raises(AudioInputError, match="sample_rate = 1000 Hz is out of range"):
        twin.strip(x, 1000, {})
    with pytest.raises(TypeError, match="must be a torch.Tensor"):
        twin.strip(np.zeros((1, 2, 10), np.float32), SR, {})
    with pytest.raises(ParameterError, match="biquad kind must be one of"):
        twin.biquad_coeffs("bandpass", torch.tensor([1.0]), 0.0, 1.0, SR)
    with pytest.raises(ParameterError, match="backend must be one of"):
        twin.strip(x, SR, {}, backend="cuda")
    with pytest.raises(ParameterError, match=r"console tracks.*shape \(1, 2\)"):
        twin.console(torch.zeros(1, 2, 2, 10), SR, {"pan": torch.zeros(1, 3)}, {})


def test_limiter_entries_are_accepted_and_ignored():
    x = torch.from_numpy(_test_audio(0.05, SR, 1))[None]
    a = twin.master(x, SR, {"limiter_ceiling_db": -6.0, "target_lufs": -14.0})
    torch.testing.assert_close(a, twin.master(x, SR, {}))


def test_a_reference_computed_once_gives_the_same_distances():
    """Training keeps each producer's mix's spectra (``losses.Reference``): the distances and
    their gradients are those of the mix passed as it is."""
    from mixstyle.twin import losses
    g = torch.Generator().manual_seed(4)
    ref = torch.randn(1, 2, 22050, generator=g)
    y = (0.5 * ref + 0.1 * torch.randn(1, 2, 22050, generator=g)).requires_grad_(True)
    kept = losses.Reference(ref)
    for _ in range(2):   # the second time from the kept spectra
        a = losses.mrstft(y, ref) + 0.4 * losses.band_db(y, ref, 44100.0)
        b = losses.mrstft(y, kept) + 0.4 * losses.band_db(y, kept, 44100.0)
        ga, = torch.autograd.grad(a, y)
        gb, = torch.autograd.grad(b, y)
        assert a.item() == b.item() > 0.1 and torch.equal(ga, gb)
    assert sorted(kept._mags) == sorted(set(losses.FFT_SIZES) | {4096})
