"""The numba adjoint biquad cascade: same output and same gradients as torchaudio's lfilter."""

import numpy as np
import pytest
import scipy.signal
import torch
from torchaudio.functional import lfilter

from mixstyle.fastfilter import biquad_cascade


def _random_sos(rows, sections, rng):
    """Stable random sections (poles inside radius 0.95)."""
    sos = np.zeros((rows, sections, 5))
    for r in range(rows):
        for k in range(sections):
            rad, ang = rng.uniform(0.3, 0.95), rng.uniform(0.05, 3.0)
            sos[r, k, 3], sos[r, k, 4] = -2 * rad * np.cos(ang), rad ** 2
            sos[r, k, :3] = rng.normal(size=3)
    return sos


def test_forward_matches_scipy():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, 2000)).astype(np.float32)
    sos = _random_sos(3, 4, rng)
    y = biquad_cascade(torch.from_numpy(x), torch.from_numpy(sos)).numpy()
    for r in range(3):
        ref = scipy.signal.sosfilt(np.concatenate([sos[r, :, :3], np.ones((4, 1)), sos[r, :, 3:]],
                                                  axis=1), x[r].astype(np.float64))
        assert np.max(np.abs(y[r] - ref)) <= 1e-5 * max(1.0, np.max(np.abs(ref)))


def test_gradcheck_float64():
    rng = np.random.default_rng(1)
    x = torch.tensor(rng.normal(size=(2, 40)), dtype=torch.float64, requires_grad=True)
    sos = torch.tensor(_random_sos(2, 2, rng), dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(biquad_cascade, (x, sos), eps=1e-6, atol=1e-6)


def test_gradients_match_lfilter():
    rng = np.random.default_rng(2)
    xn = rng.normal(size=(2, 3000))
    sosn = _random_sos(2, 3, rng)
    x1 = torch.tensor(xn, requires_grad=True)
    s1 = torch.tensor(sosn, requires_grad=True)
    w = torch.tensor(rng.normal(size=(2, 3000)))
    (biquad_cascade(x1, s1) * w).sum().backward()
    x2 = torch.tensor(xn, requires_grad=True)
    s2 = torch.tensor(sosn, requires_grad=True)
    y = x2
    for k in range(3):
        b = s2[:, k, :3]
        a = torch.cat([torch.ones(2, 1, dtype=torch.float64), s2[:, k, 3:]], dim=1)
        y = lfilter(y, a, b, clamp=False, batching=True)
    (y * w).sum().backward()
    assert torch.allclose(x1.grad, x2.grad, rtol=1e-6, atol=1e-8)
    assert torch.allclose(s1.grad, s2.grad, rtol=1e-6, atol=1e-6)


def test_shape_errors_are_named():
    with pytest.raises(ValueError, match=r"x \(R, T\) and sos \(R, K, 5\)"):
        biquad_cascade(torch.zeros(2, 10), torch.zeros(3, 1, 5))
