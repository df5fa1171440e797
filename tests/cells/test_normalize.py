"""Normalize (L2 across channels at each position): PyTorch reference, gradients, keys."""

import numpy as np
import pytest
import torch
from harness import build, check_gradients

from n2d2py.cells.normalize import NormalizeCell
from n2d2py.errors import N2D2PyError


def normalize(c=6, shape=(6, 3, 4), norm="L2"):
    text = f"[norm]\nType=Normalize\nNbOutputs={c}\nNorm={norm}\n"
    return build(NormalizeCell, text, "norm", [shape])


@pytest.mark.parametrize("shape", [(6, 3, 4), (150, 1, 1)])
def test_matches_torch_and_gradients(shape):
    cell = normalize(shape[0], shape)
    x = (np.random.default_rng(0).standard_normal((3,) + shape) * 2).astype(np.float32)
    y = cell.forward([x])
    # N2D2: x / sqrt(Σx² + 1e-6); torch's normalize divides by max(‖x‖, eps): the same up to
    # the 1e-6 under the root, far below float32 resolution for these vectors
    ref = torch.nn.functional.normalize(torch.tensor(x), p=2.0, dim=1).numpy()
    np.testing.assert_allclose(y, ref, rtol=1e-5, atol=1e-6)
    assert y.dtype == np.float32 and cell.out_shape == shape
    xt = torch.tensor(x.astype(np.float64), requires_grad=True)
    g = np.random.default_rng(1).standard_normal(x.shape)
    (xt / torch.sqrt((xt * xt).sum(1, keepdim=True) + 1e-6) * torch.tensor(g)).sum().backward()
    cell.forward([x.astype(np.float64)])
    np.testing.assert_allclose(cell.backward(g)[0], xt.grad.numpy(), rtol=1e-10, atol=1e-12)
    check_gradients(cell, [x.astype(np.float64)])


def test_epsilon_keeps_zero_vectors_finite():
    cell = normalize(2, (2, 1, 1))
    y = cell.forward([np.zeros((1, 2, 1, 1), np.float32)])
    assert np.isfinite(y).all() and (y == 0).all()
    y = cell.forward([np.array([3e-4, 4e-4], np.float32).reshape(1, 2, 1, 1)])
    np.testing.assert_allclose(y.ravel(), np.array([3e-4, 4e-4]) / np.sqrt(25e-8 + 1e-6), 1e-5)


def test_keys():
    with pytest.raises(N2D2PyError, match="Norm: only L2"):
        normalize(norm="L1")
    with pytest.raises(N2D2PyError, match="Norm"):
        normalize(norm="L3")
    with pytest.raises(N2D2PyError, match="NbOutputs: must equal the 6 input channels"):
        normalize(c=5)
    assert repr(normalize()) == "NormalizeCell(norm <- sp: (6, 3, 4) L2)"
