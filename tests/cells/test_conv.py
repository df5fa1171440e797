"""Conv: forward vs nested loops, finite-difference gradients, maps, counts, weight rows."""

import numpy as np
import pytest
from harness import LENET_TABLE, build, check_gradients, initialize

from n2d2py import backend
from n2d2py.cells.base import Port
from n2d2py.cells import conv as conv_module
from n2d2py.cells.conv import ConvCell
from n2d2py.errors import N2D2PyError



def naive_conv(x, w, b, stride, pad, dil):
    n, c, h, wd = x.shape
    o, _, kh, kw = w.shape
    xp = np.zeros((n, c, h + 2 * pad[0], wd + 2 * pad[1]))
    xp[:, :, pad[0] : pad[0] + h, pad[1] : pad[1] + wd] = x
    ho = (h + 2 * pad[0] - (dil[0] * (kh - 1) + 1) + stride[0]) // stride[0]
    wo = (wd + 2 * pad[1] - (dil[1] * (kw - 1) + 1) + stride[1]) // stride[1]
    y = np.zeros((n, o, ho, wo))
    for k in range(o):
        for i in range(ho):
            for j in range(wo):
                for u in range(kh):
                    for v in range(kw):
                        pixel = xp[:, :, i * stride[0] + u * dil[0], j * stride[1] + v * dil[1]]
                        y[:, k, i, j] += pixel @ w[k, :, u, v]
        y[:, k] += 0 if b is None else b[k]
    return y


def conv_ini(extra="", name="conv", outputs=4):
    return f"[{name}]\nType=Conv\nNbOutputs={outputs}\n{extra}\n[cfg]\n"


@pytest.mark.parametrize(
    "keys, stride, pad, dil, kernel",
    [
        ("KernelDims=3 3", (1, 1), (0, 0), (1, 1), (3, 3)),
        ("KernelWidth=3\nKernelHeight=2\nStride=2\nPadding=1", (2, 2), (1, 1), (1, 1), (2, 3)),
        ("KernelSize=3\nStrideX=2\nStrideY=1\nPaddingX=2\nDilation=2", (1, 2), (0, 2), (2, 2), (3, 3)),
        ("KernelDims=1 1", (1, 1), (0, 0), (1, 1), (1, 1)),
    ],
)
def test_forward_matches_nested_loops(keys, stride, pad, dil, kernel):
    cell = build(ConvCell, conv_ini(keys), "conv", [(3, 9, 8)], ["cfg"])
    assert (cell.kernel, cell.stride, cell.padding, cell.dilation) == (kernel, stride, pad, dil)
    x = np.random.default_rng(1).standard_normal((2, 3, 9, 8)).astype(np.float32)
    y = cell.forward([x])
    assert y.dtype == np.float32 and y.shape[1:] == cell.out_shape
    ref = naive_conv(x, cell.weights.data, cell.bias.data, stride, pad, dil)
    np.testing.assert_allclose(y, ref, rtol=1e-4, atol=1e-5)


def test_negative_padding_crops():
    cell = build(ConvCell, conv_ini("KernelDims=2 2\nPadding=-1"), "conv", [(2, 6, 6)], ["cfg"])
    x = np.random.default_rng(2).standard_normal((1, 2, 6, 6)).astype(np.float32)
    ref = naive_conv(x[:, :, 1:-1, 1:-1], cell.weights.data, cell.bias.data, (1, 1), (0, 0), (1, 1))
    np.testing.assert_allclose(cell.forward([x]), ref, rtol=1e-4, atol=1e-5)
    check_gradients(cell, [x])


def test_two_inputs_with_partial_map_forward_and_gradients():
    text = conv_ini("KernelDims=3 3\nPadding=1\nStride=2\nMapping(a)=1 0 1\nMapping(b)=0 1 1 1 1 0", outputs=3)
    cell = build(ConvCell, text, "conv", [(1, 5, 5), (2, 5, 5)], ["cfg"], names=["a", "b"])
    mask = np.array([[1, 0, 1], [0, 1, 1], [1, 1, 0]], dtype=bool)  # rows: outputs
    np.testing.assert_array_equal(cell.mask, mask)
    w = cell.weights.data
    assert (w[~mask] == 0).all() and (w[mask] != 0).all()
    rng = np.random.default_rng(3)
    xs = [rng.standard_normal((2, 1, 5, 5)), rng.standard_normal((2, 2, 5, 5))]
    xs = [x.astype(np.float32) for x in xs]
    ref = naive_conv(np.concatenate(xs, axis=1), w, cell.bias.data, (2, 2), (1, 1), (1, 1))
    np.testing.assert_allclose(cell.forward(xs), ref, rtol=1e-4, atol=1e-5)
    dxs = check_gradients(cell, xs)
    assert [dx.shape for dx in dxs] == [x.shape for x in xs]
    assert (cell.weights.grad[~mask] == 0).all()


@pytest.mark.parametrize("extra", ["Stride=2\nPadding=1\nDilation=2", "StrideX=2\nPaddingY=1"])
def test_gradients_single_input(extra):
    cell = build(ConvCell, conv_ini("KernelDims=3 2\n" + extra), "conv", [(2, 7, 6)], ["cfg"])
    x = np.random.default_rng(4).standard_normal((2, 2, 7, 6))
    check_gradients(cell, [x])


def test_no_bias_and_no_backpropagate():
    text = conv_ini("KernelDims=3 3") + "NoBias=1\nBackPropagate=0\n"
    cell = build(ConvCell, text, "conv", [(2, 5, 5)], ["cfg"])
    assert cell.bias is None and [p.name for p in cell.params()] == ["weights"]
    x = np.random.default_rng(5).standard_normal((1, 2, 5, 5)).astype(np.float32)
    y = cell.forward([x], True)
    assert cell.backward(np.ones_like(y)) == [None]
    assert np.abs(cell.weights.grad).sum() > 0


def test_needs_input_grad_false_skips_dx():
    cell = build(ConvCell, conv_ini("KernelDims=3 3"), "conv", [(2, 5, 5)], ["cfg"])
    cell.needs_input_grad = False
    y = cell.forward([np.ones((1, 2, 5, 5), np.float32)], True)
    assert cell.backward(np.ones_like(y)) == [None]


def test_lenet_conv2_counts_and_rows_roundtrip():
    text = conv_ini(f"KernelWidth=5\nKernelHeight=5\nMapping(pool1)={LENET_TABLE}", outputs=16)
    cell = build(ConvCell, text, "conv", [(6, 14, 14)], ["cfg"], names=["pool1"])
    assert cell.mask.sum() == 60
    assert cell.out_shape == (16, 10, 10)
    assert cell.nb_synapses() == 60 * 25 + 16
    assert cell.nb_virtual_synapses() == 60 * 25 * 10 * 10
    assert cell.weights.fan_in == 25 * 6 and cell.weights.fan_out == 25 * 16
    rows = cell.export_rows(cell.weights)
    assert [len(r) for r in rows] == [int(cell.mask[o].sum()) * 25 for o in range(16)]
    first = np.flatnonzero(cell.mask[0])[0]
    np.testing.assert_array_equal(rows[0][:25], cell.weights.data[0, first].reshape(-1))
    original = cell.weights.data.copy()
    cell.weights.data[...] = 0
    cell.import_rows(cell.weights, rows)
    np.testing.assert_array_equal(cell.weights.data, original)
    bias_rows = cell.export_rows(cell.bias)
    cell.import_rows(cell.bias, bias_rows)
    with pytest.raises(N2D2PyError, match="row 1 of the weights has 74 values, expected 75"):
        cell.import_rows(cell.weights, [rows[0][:-1]] + rows[1:])
    no_bias = build(ConvCell, text + "NoBias=1\n", "conv", [(6, 14, 14)], ["cfg"], names=["pool1"])
    assert no_bias.nb_synapses() == 1500


def test_grouped_fan_in_and_mask():
    text = conv_ini("KernelDims=3 3\nMapping.NbGroups=2", outputs=4)
    cell = build(ConvCell, text, "conv", [(6, 5, 5)], ["cfg"])
    assert cell.weights.fan_in == 9 * 3
    np.testing.assert_array_equal(cell.mask[:, :3].sum(axis=1), [3, 3, 0, 0])
    x = np.random.default_rng(6).standard_normal((1, 6, 5, 5))
    check_gradients(cell, [x])


def test_from_section_errors():
    big = conv_ini("KernelWidth=40\nKernelHeight=5")
    with pytest.raises(N2D2PyError, match=r"KernelWidth: kernel 5×40 .*32×32") as info:
        build(ConvCell, big, "conv", [(1, 32, 32)], ["cfg"])
    assert "m.ini:4:" in str(info.value)
    with pytest.raises(N2D2PyError, match="SubSample other than 1"):
        build(ConvCell, conv_ini("KernelDims=3 3\nSubSample=2"), "conv", [(1, 8, 8)], ["cfg"])
    with pytest.raises(N2D2PyError, match="HWCO"):
        text = conv_ini("KernelDims=3 3") + "WeightsExportFormat=HWCO\n"
        build(ConvCell, text, "conv", [(1, 8, 8)], ["cfg"])
    with pytest.raises(N2D2PyError, match="NbOutputs: required"):
        build(ConvCell, "[conv]\nKernelDims=3 3\n[cfg]\n", "conv", [(1, 8, 8)], ["cfg"])
    with pytest.raises(N2D2PyError, match="Stride must be at least 1"):
        build(ConvCell, conv_ini("KernelDims=3 3\nStride=0"), "conv", [(1, 8, 8)], ["cfg"])
    with pytest.raises(N2D2PyError, match="same height×width"):
        build(ConvCell, conv_ini("KernelDims=3 3"), "conv", [(1, 8, 8), (1, 7, 8)], ["cfg"])
    with pytest.raises(N2D2PyError, match="unknown activation 'ReLU'"):
        build(ConvCell, conv_ini("KernelDims=3 3\nActivationFunction=ReLU"), "conv", [(1, 8, 8)])


def test_fillers_and_activation_are_read():
    text = conv_ini(
        "KernelDims=3 3\nActivationFunction=Rectifier\nActivationFunction.LeakSlope=0.1\n"
        "WeightsFiller=ConstantFiller\nWeightsFiller.Value=0.5\nBiasFiller=ConstantFiller\n"
        "BiasFiller.Value=-1"
    )
    cell = build(ConvCell, text, "conv", [(1, 4, 4)], ["cfg"])
    assert (cell.weights.data == 0.5).all() and (cell.bias.data == -1).all()
    assert cell.activation.leak_slope == 0.1
    y = cell.forward([np.ones((1, 1, 4, 4), np.float32)])
    np.testing.assert_allclose(y, 3.5)  # 9·0.5 − 1
    assert repr(cell) == "ConvCell(conv <- sp: (4, 2, 2) Rectifier)"


def test_direct_construction_default_fillers():
    device = backend.cpu(0)
    cell = initialize(ConvCell("c", [Port("sp", (2, 6, 6))], device, 3, (3, 3)), device)
    assert cell.weights.mask is None and cell.out_shape == (3, 4, 4)
    assert abs(float(cell.weights.data.std()) - 0.05) < 0.02


@pytest.mark.parametrize("shape, o, stride", [((16, 8, 8), 24, 1), ((12, 6, 5), 8, 2),
                                              ((40, 2, 2), 48, 1), ((8, 12, 12), 4, 1)])
def test_grouped_columns_side_by_side_match_the_other_layouts(monkeypatch, shape, o, stride):
    """Small planes put a group's columns side by side (``INNER_PIXELS``), one GEMM per group,
    with the weight gradient in either orientation (``TRANSPOSED_GRAD``): the forward and the
    gradients match the per-image and row layouts within float32 rounding."""
    rng = np.random.default_rng(4)
    x = rng.standard_normal((16,) + shape).astype(np.float32)
    ini = f"[conv]\nType=Conv\nKernelDims=3 3\nNbOutputs={o}\nPadding=1\nStride={stride}\n[cfg]\n"
    cell = build(ConvCell, ini, "conv", [shape], ["cfg"])
    cell.needs_input_grad = True
    dy = rng.standard_normal((16,) + cell.out_shape).astype(np.float32)
    results = []
    monkeypatch.setattr(conv_module, "INNER_WEIGHTS", 0)  # whatever the weights' size
    for inner, transposed in [(0, 1 << 30), (1 << 20, 1 << 30), (1 << 20, 1)]:
        monkeypatch.setattr(conv_module, "INNER_PIXELS", inner)
        monkeypatch.setattr(conv_module, "TRANSPOSED_GRAD", transposed)
        cell.zero_grad()
        y = cell.forward([x], train=True)
        dx = cell.backward(dy)[0]
        results.append((y.copy(), dx.copy(), cell.weights.grad.copy(), cell.bias.grad.copy()))
    for other in results[1:]:
        for a, b in zip(results[0], other):
            np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-4 * float(np.abs(a).max()))
