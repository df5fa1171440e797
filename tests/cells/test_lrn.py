"""LRN: cross-channel normalisation vs PyTorch (odd N) and the cuDNN window (even N), gradients."""

import numpy as np
import pytest
import torch
from harness import build, check_gradients

from n2d2py.cells.lrn import LRNCell
from n2d2py.errors import N2D2PyError


def lrn(config="", c=6, shapes=None):
    text = f"[lrn]\nType=LRN\nNbOutputs={c}\n[cfg]\n{config}\n"
    shapes = shapes or [(c, 3, 4)]
    names = ["sp"] + [f"in{i}" for i in range(1, len(shapes))]
    return build(LRNCell, text, "lrn", shapes, ["cfg"], names=names)


def naive(x, n, alpha, beta, k):
    """cuDNN's window: channels c − ⌊(n−1)/2⌋ … c + ⌈(n−1)/2⌉."""
    behind, ahead = (n - 1) // 2, n - 1 - (n - 1) // 2
    y = np.zeros_like(x)
    for c in range(x.shape[1]):
        lo, hi = max(0, c - behind), min(x.shape[1], c + ahead + 1)
        y[:, c] = x[:, c] / (k + alpha / n * (x[:, lo:hi] ** 2).sum(axis=1)) ** beta
    return y


def test_defaults():
    cell = lrn()
    assert (cell.n, cell.alpha, cell.beta, cell.k) == (5, 1e-4, 0.75, 2.0)


@pytest.mark.parametrize("n, alpha, beta, k", [(5, 1e-4, 0.75, 2.0), (3, 0.5, 0.75, 1.0), (1, 2.0, 0.5, 1.5)])
def test_matches_torch_and_gradients(n, alpha, beta, k):
    cell = lrn(f"N={n}\nAlpha={alpha}\nBeta={beta}\nK={k}")
    x = (np.random.default_rng(0).standard_normal((2, 6, 3, 4)) * 3).astype(np.float32)
    y = cell.forward([x])
    ref = torch.nn.functional.local_response_norm(torch.tensor(x), n, alpha, beta, k).numpy()
    np.testing.assert_allclose(y, ref, rtol=1e-5, atol=1e-6)
    assert y.dtype == np.float32
    check_gradients(cell, [x.astype(np.float64)])


@pytest.mark.parametrize("n", [2, 4, 9])  # even sizes (cuDNN's window) and one wider than C
def test_even_and_wide_windows(n):
    cell = lrn(f"N={n}\nAlpha=0.7\nBeta=0.6\nK=1.0")
    x = np.random.default_rng(1).standard_normal((2, 6, 2, 3))
    np.testing.assert_allclose(cell.forward([x]), naive(x, n, 0.7, 0.6, 1.0), rtol=1e-12)
    check_gradients(cell, [x])


def test_two_inputs_and_errors():
    cell = lrn("N=3\nAlpha=1\n", c=3, shapes=[(1, 2, 2), (2, 2, 2)])
    rng = np.random.default_rng(2)
    check_gradients(cell, [rng.standard_normal((2, 1, 2, 2)), rng.standard_normal((2, 2, 2, 2))])
    with pytest.raises(N2D2PyError, match="N: the window must hold"):
        lrn("N=0")
    with pytest.raises(N2D2PyError, match="K: must be > 0"):
        lrn("K=0")
    assert repr(lrn()) == "LRNCell(lrn <- sp: (6, 3, 4) N=5 Alpha=0.0001 Beta=0.75 K=2)"
