"""Conv's direct convolutions (``cells._direct``, ``kernels.direct``) against the im2col + GEMM
path they replace, against PyTorch, by finite differences, and bit for bit across threads."""

import numpy as np
import pytest
import torch
from harness import LENET_TABLE, check_gradients, conv_cell, learning_step

from n2d2py import backend
from n2d2py.cells import _direct

RELU = "\nActivationFunction=Rectifier"
CASES = [  # (INI lines, input shape (C, H, W))
    ("KernelDims=5 5\nNbOutputs=6" + RELU, (1, 32, 32)),  # LeNet's conv1
    (f"KernelDims=5 5\nNbOutputs=16\nMapping(sp)={LENET_TABLE}" + RELU, (6, 14, 14)),  # conv2
    ("KernelDims=3 3\nNbOutputs=4\nPadding=1", (3, 9, 11)),
    ("KernelWidth=3\nKernelHeight=2\nNbOutputs=3\nPaddingX=2\nPaddingY=0\nDilation=2"
     + RELU + "\nActivationFunction.LeakSlope=0.1\nActivationFunction.Clipping=0.5", (2, 8, 9)),
    ("KernelDims=3 3\nNbOutputs=5\nPaddingX=-1\nPaddingY=3\nActivationFunction=Tanh",
     (2, 7, 12)),  # crops, pads more; an activation the kernels leave to the cell
    ("KernelDims=4 4\nNbOutputs=2\nNoBias=1" + RELU, (4, 9, 10)),
]


@pytest.fixture
def everywhere(monkeypatch):
    """The direct path on every layer (its thresholds are about speed, not correctness), the
    batch over two worker threads."""
    monkeypatch.setattr(_direct, "MAX_PAIRS", 1 << 20)
    monkeypatch.setattr(_direct, "MAX_OUTPUTS", 1 << 20)
    monkeypatch.setattr(_direct, "MIN_AREA", 1)
    monkeypatch.setattr(_direct, "MIN_WIDTH", 1)
    monkeypatch.setattr(backend, "_workers", backend._Pool(2))
    monkeypatch.setattr(backend, "MIN_CHUNK_WORK", 1)


@pytest.mark.parametrize("ini, shape", CASES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_direct_matches_im2col_and_torch(everywhere, monkeypatch, ini, shape, dtype):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((9,) + shape).astype(dtype)
    cell = conv_cell(ini, shape)
    for p in cell.params():
        p.data = p.data.astype(dtype)
    cell.needs_input_grad = True
    dy = rng.standard_normal((9,) + cell.out_shape).astype(dtype)
    got = learning_step(cell, x, dy)
    assert cell._direct is not None and len(cell._direct.chunks) == 2
    assert cell._direct.act == (type(cell.activation).__name__ == "Rectifier")
    monkeypatch.setattr(_direct, "worth", lambda *a: False)  # im2col + GEMM throughout
    ref = learning_step(cell, x, dy)
    assert cell._direct is None
    tol = 1e-5 if dtype == np.float32 else 1e-12  # relative to the largest value
    for a, b in zip(got, ref):
        if b is not None:
            assert a.dtype == b.dtype
            np.testing.assert_allclose(a, b, rtol=0, atol=tol * np.abs(b).max())
    xt = torch.from_numpy(x.astype(np.float64)).requires_grad_()
    w = cell.weights.data.astype(np.float64)
    if cell.weights.mask is not None:
        w = w * cell.weights.mask
    wt = torch.from_numpy(w).requires_grad_()
    bt = None if cell.bias is None else torch.from_numpy(cell.bias.data.astype(np.float64))
    (ph, pw), crop = cell.padding, [0, 0, 0, 0]
    if min(ph, pw) < 0:  # torch pads by ≥ 0: crop x first
        crop = [max(-pw, 0), max(-pw, 0), max(-ph, 0), max(-ph, 0)]
    xc = xt[:, :, crop[2]:xt.shape[2] - crop[3], crop[0]:xt.shape[3] - crop[1]]
    yt = _torch_activation(cell, torch.nn.functional.conv2d(
        xc, wt, bt, padding=(max(ph, 0), max(pw, 0)), dilation=cell.dilation))
    yt.backward(torch.from_numpy(dy.astype(np.float64)))
    y, dx, dw, _ = got
    dwt = wt.grad.numpy() * (1 if cell.weights.mask is None else cell.weights.mask)
    for a, b in ((y, yt.detach().numpy()), (dx, xt.grad.numpy()), (dw, dwt)):
        np.testing.assert_allclose(a, b, rtol=0, atol=tol * np.abs(b).max())


def _torch_activation(cell, z):
    act = cell.activation
    if act is None:
        return z
    if type(act).__name__ == "Tanh":
        return torch.tanh(z)
    y = torch.where(z > 0, z, act.leak_slope * z)
    return torch.clamp(y, max=act.clipping) if act.clipping > 0 else y


@pytest.mark.parametrize("ini, shape", CASES)
def test_direct_gradients(everywhere, ini, shape):
    cell = conv_cell(ini, shape)
    cell.needs_input_grad = True
    check_gradients(cell, [np.random.default_rng(3).standard_normal((3,) + shape)],
                    train=True)
    assert cell._direct is not None


@pytest.mark.parametrize("ini, shape", CASES[:2])
def test_direct_is_bitwise_the_same_on_any_number_of_threads(monkeypatch, ini, shape):
    """Each image's output and input gradient is one kernel call's, and the weight gradient
    one float32 partial per micro-slice, added in float64: the threads change nothing."""
    monkeypatch.setattr(backend, "MIN_CHUNK_WORK", 1)
    rng = np.random.default_rng(5)
    x = rng.standard_normal((16,) + shape).astype(np.float32)
    results = []
    for pool in (False, backend._Pool(2), backend._Pool(3)):
        monkeypatch.setattr(backend, "_workers", pool)
        cell = conv_cell(ini, shape)
        cell.needs_input_grad = True
        dy = np.random.default_rng(6).standard_normal((16,) + cell.out_shape)
        results.append(learning_step(cell, x, dy.astype(np.float32)))
        assert len(cell._direct.chunks) == (pool.threads if pool else 1)
    for other in results[1:]:
        for a, b in zip(results[0], other):
            np.testing.assert_array_equal(a, b)


def test_where_the_direct_path_runs():
    def takes(ini, shape, x_dtype=np.float32):
        cell = conv_cell(ini, shape)
        return _direct.worth(cell, np.zeros((2,) + shape, x_dtype))

    assert takes(*CASES[0]) and takes(*CASES[1])  # LeNet's conv1, and conv2 (a partial map)
    assert not takes("KernelDims=5 5\nNbOutputs=120", (16, 5, 5))  # conv3: one output pixel
    assert not takes("KernelDims=5 5\nNbOutputs=16", (6, 14, 14))  # conv2 with a full map
    assert not takes("KernelDims=5 5\nNbOutputs=6\nStride=2", (1, 32, 32))
    assert not takes("KernelDims=2 2\nNbOutputs=6", (1, 32, 32))  # few offsets
    assert not takes("KernelDims=5 5\nNbOutputs=6", (1, 32, 32), np.float64)  # mixed dtypes
