"""Deconv: forward vs PyTorch conv_transpose2d and a scatter loop, gradients, maps, rows."""

import numpy as np
import pytest
import torch
from harness import build, check_gradients

from n2d2py.cells.deconv import DeconvCell
from n2d2py.errors import N2D2PyError


def deconv(extra, outputs=3, shapes=((2, 4, 5),), names=None, config=""):
    text = f"[d]\nType=Deconv\nNbOutputs={outputs}\n{extra}\n[cfg]\n{config}\n"
    return build(DeconvCell, text, "d", list(shapes), ["cfg"], names=names)


def scatter(x, w, b, stride, pad, dil):
    """Direct definition: every input pixel adds W·x to its output window, then crop."""
    n, c, h, wd = x.shape
    o, _, kh, kw = w.shape
    full = ((h - 1) * stride[0] + dil[0] * (kh - 1) + 1, (wd - 1) * stride[1] + dil[1] * (kw - 1) + 1)
    y = np.zeros((n, o) + full)
    for i in range(h):
        for j in range(wd):
            for u in range(kh):
                for v in range(kw):
                    y[:, :, i * stride[0] + u * dil[0], j * stride[1] + v * dil[1]] += x[:, :, i, j] @ w[:, :, u, v].T
    ph, pw = pad
    y = y[:, :, max(ph, 0) : full[0] - max(ph, 0), max(pw, 0) : full[1] - max(pw, 0)]
    y = np.pad(y, ((0, 0), (0, 0), (max(-ph, 0),) * 2, (max(-pw, 0),) * 2))
    return y + b[:, None, None]


CASES = [
    ("KernelDims=3 3\nStride=2", (2, 2), (0, 0), (1, 1)),
    ("KernelWidth=3\nKernelHeight=2\nStrideX=2\nStrideY=1\nPadding=1", (1, 2), (1, 1), (1, 1)),
    ("KernelSize=3\nStride=2\nPaddingX=1\nDilation=2", (2, 2), (0, 1), (2, 2)),
    ("KernelDims=2 2\nPadding=-1", (1, 1), (-1, -1), (1, 1)),
]


@pytest.mark.parametrize("keys, stride, pad, dil", CASES)
def test_forward_matches_scatter_and_torch_and_gradients(keys, stride, pad, dil):
    cell = deconv(keys)
    x = np.random.default_rng(0).standard_normal((2, 2, 4, 5)).astype(np.float32)
    y = cell.forward([x])
    w, b = cell.weights.data, cell.bias.data
    assert y.dtype == np.float32 and y.shape[1:] == cell.out_shape
    np.testing.assert_allclose(y, scatter(x, w, b, stride, pad, dil), rtol=1e-4, atol=1e-5)
    if min(pad) >= 0:
        ref = torch.nn.functional.conv_transpose2d(
            torch.tensor(x), torch.tensor(w).transpose(0, 1), torch.tensor(b), stride, pad,
            dilation=dil)
        np.testing.assert_allclose(y, ref.numpy(), rtol=1e-4, atol=1e-5)
    check_gradients(cell, [x.astype(np.float64)])


def test_autoencoder_sizes():
    """mnist-autoencoder.ini: 1×1 → 3 → 7 → 15 → 31 with 3×3 kernels and stride 2."""
    size = 1
    for expected in (3, 7, 15, 31):
        cell = deconv("KernelDims=3 3\nStride=2", 2, shapes=[(2, size, size)])
        assert cell.out_shape[1:] == (expected, expected)
        size = expected


def test_two_inputs_partial_map_grouped_rows_and_counts():
    extra = "KernelDims=2 2\nStride=2\nMapping(a)=1 0 1\nMapping(b)=0 1 1 1 1 0"
    cell = deconv(extra, 3, shapes=[(1, 3, 3), (2, 3, 3)], names=["a", "b"])
    mask = np.array([[1, 0, 1], [0, 1, 1], [1, 1, 0]], dtype=bool)
    np.testing.assert_array_equal(cell.mask, mask)
    rng = np.random.default_rng(1)
    xs = [rng.standard_normal((2, 1, 3, 3)), rng.standard_normal((2, 2, 3, 3))]
    ref = scatter(np.concatenate(xs, 1), cell.weights.data * mask[:, :, None, None],
                  cell.bias.data, (2, 2), (0, 0), (1, 1))
    np.testing.assert_allclose(cell.forward(xs), ref, rtol=1e-5, atol=1e-6)
    check_gradients(cell, xs)
    assert (cell.weights.grad[~mask] == 0).all()
    assert cell.nb_synapses() == 6 * 4 + 3 and cell.nb_virtual_synapses() == 6 * 4 * 9
    rows = cell.export_rows(cell.weights)
    assert [len(r) for r in rows] == [8, 8, 8]
    original = cell.weights.data.copy()
    cell.weights.data[...] = 0
    cell.import_rows(cell.weights, rows)
    np.testing.assert_array_equal(cell.weights.data, original)
    with pytest.raises(N2D2PyError, match="row 1 of the weights has 7 values, expected 8"):
        cell.import_rows(cell.weights, [rows[0][:-1]] + rows[1:])
    grouped = deconv("KernelDims=3 3\nMapping.NbGroups=2", 4, shapes=[(4, 3, 3)])
    assert grouped.weights.fan_in == 9 * 2 and grouped.mask.sum() == 8
    check_gradients(grouped, [rng.standard_normal((1, 4, 3, 3))])


def test_config_and_errors():
    cell = deconv("KernelDims=3 3\nActivationFunction=Rectifier", config="NoBias=1\nBackPropagate=0")
    assert cell.bias is None and type(cell.activation).__name__ == "Rectifier"
    y = cell.forward([np.ones((1, 2, 4, 5), np.float32)], True)
    assert cell.backward(np.ones_like(y)) == [None] and np.abs(cell.weights.grad).sum() > 0
    with pytest.raises(N2D2PyError, match="Padding: padding 3 leaves no output height"):
        deconv("KernelDims=3 3\nPadding=3", shapes=[(2, 1, 1)])
    with pytest.raises(N2D2PyError, match="WeightsSharing is not supported"):
        deconv("KernelDims=3 3\nWeightsSharing=x")
    with pytest.raises(N2D2PyError, match="HWCO"):
        deconv("KernelDims=3 3", config="WeightsExportFormat=HWCO")
    with pytest.raises(N2D2PyError, match="KernelDims: missing KernelDims"):
        deconv("Stride=2")
