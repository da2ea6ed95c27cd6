"""The fused compressor op: same output as the twin's step-by-step compressor, exact gradients."""

import math

import numpy as np
import torch

from mixstyle import twin
from mixstyle.twin_comp import compress

SR = 8000.0


def _alpha(ms):
    return torch.exp(-1.0 / (torch.as_tensor(ms, dtype=torch.float64) / 1000.0 * SR))


def _signal(rows, n, seed):
    rng = np.random.default_rng(seed)
    env = np.repeat(rng.uniform(0.01, 1.0, size=(rows, 1, n // 50 + 1)), 50, axis=2)[..., :n]
    return torch.tensor(rng.normal(size=(rows, 2, n)) * env)


def test_matches_twin_compressor():
    x = _signal(3, 4000, 0)
    t = torch.tensor([-20.0, -30.0, -10.0], dtype=torch.float64)
    r = torch.tensor([4.0, 2.0, 10.0], dtype=torch.float64)
    w = torch.tensor([6.0, 0.0, 12.0], dtype=torch.float64)
    att = torch.tensor([1.0, 10.0, 0.3], dtype=torch.float64)
    rel = torch.tensor([50.0, 200.0, 20.0], dtype=torch.float64)
    mk = torch.tensor([3.0, 0.0, 6.0], dtype=torch.float64)
    y, _ = compress(x, t, r, w, _alpha(att), _alpha(rel), mk)
    ref = twin.compressor(x, SR, t, r, att, rel, w, mk)
    err = 10 * math.log10(float((y - ref).pow(2).mean() / ref.pow(2).mean()))
    assert err < -120


def test_gradcheck():
    x = (_signal(2, 60, 1) * 0.5).requires_grad_(True)
    prm = [torch.tensor(v, dtype=torch.float64, requires_grad=True) for v in (
        [-12.0, -8.0], [3.0, 5.0], [6.0, 4.0], [0.7, 0.9], [0.95, 0.99], [1.0, 2.0])]

    def f(x, *p):
        return compress(x, *p)[0]
    assert torch.autograd.gradcheck(f, (x, *prm), eps=1e-6, atol=1e-5, rtol=1e-4)
