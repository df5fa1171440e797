"""Conv's Winograd F(4×4, 3×3) forward, input gradient and weight gradient against the
im2col + GEMM path they replace, against PyTorch, and by finite differences."""

import numpy as np
import pytest
import torch
from harness import check_gradients, conv_cell, learning_step

from n2d2py import backend
from n2d2py.cells import _winograd

CASES = [  # (INI lines, input shape (C, H, W))
    ("KernelDims=3 3\nNbOutputs=8\nPadding=1", (8, 8, 8)),
    ("KernelDims=3 3\nNbOutputs=5\nPadding=1", (9, 7, 5)),       # odd sizes: partial tiles
    ("KernelDims=3 3\nNbOutputs=9", (8, 6, 9)),                   # no padding
    ("KernelDims=3 3\nNbOutputs=8\nPaddingY=2\nPaddingX=0", (12, 5, 6)),
    ("KernelDims=3 3\nNbOutputs=16\nPadding=1\nNoBias=1", (32, 4, 4)),
    ("KernelDims=3 3\nNbOutputs=8\nPadding=1", (8, 3, 20)),      # one row of tiles and a half
    ("KernelDims=3 3\nNbOutputs=6\nPadding=2", (3, 13, 11)),     # wider padding, 3 channels
    ("KernelDims=3 3\nNbOutputs=4\nPadding=1", (40, 17, 9)),     # 40 summed channels
    ("KernelDims=3 3\nNbOutputs=8\nPadding=1\nMapping.ChannelsPerGroup=4", (8, 8, 8)),  # 2 groups
    ("KernelDims=3 3\nNbOutputs=6\nMapping.ChannelsPerGroup=3", (9, 7, 5)),  # 3 groups, 2 maps
]


@pytest.fixture
def everywhere(monkeypatch):
    """Winograd on every plane size (its threshold is about speed, not correctness), the
    batch over two worker threads."""
    monkeypatch.setattr(_winograd, "MIN_PIXELS", 1)
    monkeypatch.setattr(_winograd, "MIN_CHANNELS", 1)
    monkeypatch.setattr(_winograd, "MIN_SLICE_TILES", 1)
    monkeypatch.setattr(backend, "_workers", backend._Pool(2))
    monkeypatch.setattr(backend, "MIN_CHUNK_WORK", 1)
    calls = []
    for name in ("run", "weight_gradient"):
        real = getattr(_winograd, name)
        monkeypatch.setattr(_winograd, name,
                            lambda *a, name=name, real=real: calls.append(name) or real(*a))
    return calls


@pytest.mark.parametrize("ini, shape", CASES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_winograd_matches_im2col_and_torch(everywhere, monkeypatch, ini, shape, dtype):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((5,) + shape).astype(dtype)
    cell = conv_cell(ini, shape)
    cell.weights.data = cell.weights.data.astype(dtype)
    dy = rng.standard_normal((5,) + cell.out_shape).astype(dtype)
    y, dx, dw, _ = learning_step(cell, x, dy)
    assert everywhere.count("run") >= 2, "Winograd ran neither the forward nor the input gradient"
    assert "weight_gradient" in everywhere
    monkeypatch.setattr(_winograd, "worth", lambda *a: False)  # im2col + GEMM throughout
    y0, dx0, dw0, _ = learning_step(cell, x, dy)
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
    cell = conv_cell(ini, shape)
    check_gradients(cell, [np.random.default_rng(3).standard_normal((2,) + shape)])
    assert everywhere


def test_where_winograd_runs():
    def runs(ini, shape, batch=64, dtype=np.float32):
        return _winograd.for_forward(conv_cell(ini, shape), np.zeros((batch,) + shape, dtype))

    same = "KernelDims=3 3\nNbOutputs={}\nPadding=1"
    assert runs(same.format(4), (16, 32, 32))
    assert runs(same.format(128), (64, 12, 12))
    assert runs(same.format(256), (256, 8, 8))  # 8×8: 4 tiles, 8 images a micro-slice
    assert not runs(same.format(256), (256, 8, 8), batch=32)  # 4 images: too few tiles
    assert not runs(same.format(64), (64, 4, 4))  # 4×4: one tile a plane
    assert not runs(same.format(64), (64, 7, 7))  # 7×7: below 8×8
    assert runs(same.format(4), (8, 32, 32))  # eight channels
    assert not runs(same.format(16), (4, 32, 32))  # four: im2col keeps them
    grouped = "KernelDims=3 3\nNbOutputs=32\nPadding=1\nMapping.ChannelsPerGroup={}"
    assert runs(grouped.format(8), (32, 16, 16))  # 4 groups summing 8 channels each
    assert not runs(grouped.format(4), (32, 16, 16))  # 8 groups of 4
    for ini in ("KernelDims=3 3\nNbOutputs=4\nStride=2\nPadding=1",
                "KernelDims=5 5\nNbOutputs=4\nPadding=2",
                "KernelDims=3 3\nNbOutputs=4\nDilation=2\nPadding=2"):
        assert not runs(ini, (16, 64, 64))


def test_small_batches_take_im2col(monkeypatch):
    """Batches whose micro-slices hold too few tiles run im2col + GEMM throughout, with the
    same values (within Winograd's rounding) as Winograd on larger ones."""
    calls = []
    for name in ("run", "weight_gradient"):
        real = getattr(_winograd, name)
        monkeypatch.setattr(_winograd, name,
                            lambda *a, name=name, real=real: calls.append(name) or real(*a))
    shape = (32, 8, 8)
    cell = conv_cell("KernelDims=3 3\nNbOutputs=16\nPadding=1", shape)
    rng = np.random.default_rng(2)
    x = rng.standard_normal((64,) + shape).astype(np.float32)
    dy = rng.standard_normal((64,) + cell.out_shape).astype(np.float32)
    got = learning_step(cell, x, dy)
    assert calls.count("run") >= 2 and "weight_gradient" in calls
    calls.clear()
    small = [learning_step(cell, x[a:a + 16], dy[a:a + 16]) for a in range(0, 64, 16)]
    assert not calls
    for part, (y, dx, _, _) in zip(range(0, 64, 16), small):
        for a, b in ((got[0][part:part + 16], y), (got[1][part:part + 16], dx)):
            np.testing.assert_allclose(a, b, rtol=0, atol=1e-5 * np.abs(b).max())
    dw = sum(part[2].astype(np.float64) for part in small)
    np.testing.assert_allclose(got[2], dw, rtol=0, atol=1e-5 * np.abs(dw).max())


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_kernel_transforms_match_their_formulas(dtype):
    """U = G g Gᵀ (computed in float64, rounded once) and Gᵀ m G, each against einsum, for
    the 3 diagonal blocks of a grouped convolution (a dense one is G = 1)."""
    from n2d2py.kernels.winograd import G

    rng = np.random.default_rng(4)
    w = rng.standard_normal((3, 7, 19, 3, 3)).astype(dtype)
    u = _winograd.plan(np, w, (1, 1), (8, 8), dtype).u
    want = np.einsum("ar,gocrs,bs->gaboc", G, w.astype(np.float64), G).reshape(3, 36, 7, 19)
    assert u.dtype == dtype
    tol = 1e-7 if dtype == np.float32 else 1e-15  # one rounding of the float64 sums
    np.testing.assert_allclose(u, want, rtol=tol, atol=tol)
    m = rng.standard_normal((3, 36, 7, 19))
    got = _winograd.weights_from_tiles(np, m)
    want = np.einsum("ar,gaboc,bs->gocrs", G, m.reshape(3, 6, 6, 7, 19), G)
    np.testing.assert_allclose(got, want.reshape(3, 7, 19 * 9), rtol=1e-13, atol=1e-13)
