"""Conv's Winograd F(4×4, 3×3) forward, input gradient and weight gradient against the
im2col + GEMM path they replace, against PyTorch, and by finite differences."""

import numpy as np
import pytest
import torch
from harness import build, check_gradients

from n2d2py import backend
from n2d2py.cells import _winograd
from n2d2py.cells.conv import ConvCell

CASES = [  # (INI lines, input shape (C, H, W))
    ("KernelDims=3 3\nNbOutputs=8\nPadding=1", (8, 8, 8)),
    ("KernelDims=3 3\nNbOutputs=5\nPadding=1", (9, 7, 5)),       # odd sizes: partial tiles
    ("KernelDims=3 3\nNbOutputs=9", (8, 6, 9)),                   # no padding
    ("KernelDims=3 3\nNbOutputs=8\nPaddingY=2\nPaddingX=0", (12, 5, 6)),
    ("KernelDims=3 3\nNbOutputs=16\nPadding=1\nNoBias=1", (32, 4, 4)),
    ("KernelDims=3 3\nNbOutputs=8\nPadding=1", (8, 3, 20)),      # one row of tiles and a half
    ("KernelDims=3 3\nNbOutputs=6\nPadding=2", (3, 13, 11)),     # wider padding, 3 channels
    ("KernelDims=3 3\nNbOutputs=4\nPadding=1", (40, 17, 9)),     # 40 summed channels
]


@pytest.fixture
def everywhere(monkeypatch):
    """Winograd on every plane size (its threshold is about speed, not correctness), the
    batch over two worker threads."""
    monkeypatch.setattr(_winograd, "MIN_PIXELS", 1)
    monkeypatch.setattr(_winograd, "MIN_CHANNELS", 1)
    monkeypatch.setattr(backend, "_workers", backend._Pool(2))
    monkeypatch.setattr(backend, "MIN_CHUNK_WORK", 1)
    calls = []
    for name in ("run", "weight_gradient"):
        real = getattr(_winograd, name)
        monkeypatch.setattr(_winograd, name,
                            lambda *a, name=name, real=real: calls.append(name) or real(*a))
    return calls


def _conv(ini, shape, seed=0):
    return build(ConvCell, f"[conv]\nType=Conv\n{ini}\n[cfg]\n", "conv", [shape], ["cfg"],
                 seed=seed)


def _step(cell, x, dy):
    cell.zero_grad()
    y = cell.forward([x], train=True)
    return y, cell.backward(dy)[0], cell.weights.grad.copy()


@pytest.mark.parametrize("ini, shape", CASES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_winograd_matches_im2col_and_torch(everywhere, monkeypatch, ini, shape, dtype):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((5,) + shape).astype(dtype)
    cell = _conv(ini, shape)
    cell.weights.data = cell.weights.data.astype(dtype)
    dy = rng.standard_normal((5,) + cell.out_shape).astype(dtype)
    y, dx, dw = _step(cell, x, dy)
    assert everywhere.count("run") >= 2, "Winograd ran neither the forward nor the input gradient"
    assert "weight_gradient" in everywhere
    monkeypatch.setattr(_winograd, "worth", lambda *a: False)  # im2col + GEMM throughout
    y0, dx0, dw0 = _step(cell, x, dy)
    tol = 1e-5 if dtype == np.float32 else 1e-12  # relative to the largest value
    for got, ref in ((y, y0), (dx, dx0), (dw, dw0)):
        np.testing.assert_allclose(got, ref, rtol=0, atol=tol * np.abs(ref).max())
    xt = torch.from_numpy(x.astype(np.float64)).requires_grad_()
    wt = torch.from_numpy(cell.weights.data.astype(np.float64))
    bt = None if cell.bias is None else torch.from_numpy(cell.bias.data.astype(np.float64))
    yt = torch.nn.functional.conv2d(xt, wt, bt, padding=cell.padding)
    yt.backward(torch.from_numpy(dy.astype(np.float64)))
    for got, ref in ((y, yt.detach().numpy()), (dx, xt.grad.numpy())):
        np.testing.assert_allclose(got, ref, rtol=0, atol=tol * np.abs(ref).max())


@pytest.mark.parametrize("ini, shape", CASES[:4])
def test_winograd_gradients(everywhere, ini, shape):
    cell = _conv(ini, shape)
    check_gradients(cell, [np.random.default_rng(3).standard_normal((2,) + shape)])
    assert everywhere


def test_where_winograd_runs():
    big = np.zeros((2, 16, 32, 32), np.float32)
    assert _winograd.for_forward(_conv("KernelDims=3 3\nNbOutputs=4\nPadding=1",
                                       (16, 32, 32)), big)
    small = np.zeros((2, 64, 8, 8), np.float32)  # 8×8 planes: with small weights only
    assert _winograd.for_forward(_conv("KernelDims=3 3\nNbOutputs=64\nPadding=1",
                                       (64, 8, 8)), small)
    wide = np.zeros((2, 256, 8, 8), np.float32)
    assert not _winograd.for_forward(_conv("KernelDims=3 3\nNbOutputs=256\nPadding=1",
                                           (256, 8, 8)), wide)
    tiny = np.zeros((2, 64, 4, 4), np.float32)  # 4×4: one tile a plane, im2col
    assert not _winograd.for_forward(_conv("KernelDims=3 3\nNbOutputs=64\nPadding=1",
                                           (64, 4, 4)), tiny)
    # the weight gradient sums over a micro-slice's tiles: 12×12 planes and more
    assert not _winograd.for_weight_gradient(
        _conv("KernelDims=3 3\nNbOutputs=64\nPadding=1", (64, 8, 8)), small)
    assert _winograd.for_weight_gradient(
        _conv("KernelDims=3 3\nNbOutputs=64\nPadding=1", (64, 12, 12)),
        np.zeros((2, 64, 12, 12), np.float32))
    twelve = np.zeros((2, 64, 12, 12), np.float32)  # 12×12 and up: Winograd
    assert _winograd.for_forward(_conv("KernelDims=3 3\nNbOutputs=128\nPadding=1",
                                       (64, 12, 12)), twelve)
    thin = np.zeros((2, 8, 32, 32), np.float32)  # eight channels: im2col keeps them
    assert not _winograd.for_forward(
        _conv("KernelDims=3 3\nNbOutputs=4\nPadding=1", (8, 32, 32)), thin)
    for ini in ("KernelDims=3 3\nNbOutputs=4\nStride=2\nPadding=1",
                "KernelDims=5 5\nNbOutputs=4\nPadding=2",
                "KernelDims=3 3\nNbOutputs=4\nDilation=2\nPadding=2"):
        assert not _winograd.for_forward(_conv(ini, (16, 64, 64)), np.zeros((1, 16, 64, 64)))


def test_small_planes_take_im2col_for_the_weight_gradient(monkeypatch):
    """On 8×8 planes the forward and input gradient run by Winograd, the weight gradient by
    im2col (its GEMMs would sum over too few tiles): the same values as im2col throughout."""
    calls = []
    for name in ("run", "weight_gradient"):
        real = getattr(_winograd, name)
        monkeypatch.setattr(_winograd, name,
                            lambda *a, name=name, real=real: calls.append(name) or real(*a))
    shape = (32, 8, 8)
    cell = _conv("KernelDims=3 3\nNbOutputs=16\nPadding=1", shape)
    rng = np.random.default_rng(2)
    x = rng.standard_normal((4,) + shape).astype(np.float32)
    dy = rng.standard_normal((4,) + cell.out_shape).astype(np.float32)
    got = _step(cell, x, dy)
    assert calls.count("run") >= 2 and "weight_gradient" not in calls
    monkeypatch.setattr(_winograd, "worth", lambda *a: False)
    ref = _step(cell, x, dy)
    for a, b in zip(got, ref):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-5 * np.abs(b).max())
