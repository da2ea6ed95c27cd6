"""The weights loader runs no code: a pickled or object array in weights.npz is refused by name."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dsp.errors import ProfileError
from mixstyle.train.model import MixNet
from mixstyle.profile.store import load_weights, save_weights


class _Payload:
    """Unpickling this would create ``marker``: proof that code ran."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_weights_round_trip(tmp_path):
    torch.manual_seed(0)
    a, b = MixNet(), MixNet()
    save_weights(a, tmp_path / "weights.npz")
    load_weights(b, tmp_path / "weights.npz")
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert ka == kb and torch.equal(va, vb)


def test_pickled_object_array_is_refused_and_runs_nothing(tmp_path):
    model = MixNet()
    good = {k: v.detach().numpy() for k, v in model.state_dict().items()}
    first = next(iter(good))
    marker = tmp_path / "code_ran"
    evil = np.empty(1, dtype=object)
    evil[0] = _Payload(marker)
    path = tmp_path / "weights.npz"
    np.savez(path, **{**good, first: evil})
    with pytest.raises(ProfileError, match=r"weights\.npz.*cannot be loaded"):
        load_weights(model, path)
    assert not marker.exists()


def test_weights_with_wrong_tensor_names_are_refused(tmp_path):
    path = tmp_path / "weights.npz"
    np.savez(path, not_a_layer=np.zeros(3, np.float32))
    with pytest.raises(ProfileError, match=r"weights\.npz"):
        load_weights(MixNet(), path)


def test_weights_not_an_npz_is_refused(tmp_path):
    path = tmp_path / "weights.npz"
    path.write_bytes(b"\x80\x04not a zip at all")
    with pytest.raises(ProfileError, match=r"weights\.npz"):
        load_weights(MixNet(), path)
