"""ElemWise: every operation with Weights/Shifts as N2D2 computes them, gradients, warnings."""

import io

import numpy as np
import pytest
import torch
from harness import build, check_gradients, make_section

from n2d2py.backend import cpu
from n2d2py.cells.base import Port
from n2d2py.cells.elemwise import ElemWiseCell
from n2d2py.errors import N2D2PyError

SHAPE = (3, 4, 5)


def elemwise(op, extra="", n=2):
    text = f"[e]\nType=ElemWise\nNbOutputs=3\nOperation={op}\n{extra}\n"
    return build(ElemWiseCell, text, "e", [SHAPE] * n)


def inputs(n=2, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal((2,) + SHAPE) for _ in range(n)]


W, S = [0.5, -2.0, 1.5], [0.25, -1.0, 3.0]
REFS = {
    "Sum": lambda xs: sum(w * x + s for x, w, s in zip(xs, W, S)),
    "AbsSum": lambda xs: sum(w * np.abs(x) for x, w in zip(xs, W)),
    "EuclideanSum": lambda xs: np.sqrt(sum(w * w * x * x + s * s for x, w, s in zip(xs, W, S))),
    "Prod": lambda xs: xs[0] * xs[1] * xs[2],
    "Max": lambda xs: np.maximum(np.maximum(xs[0], xs[1]), xs[2]),
}


@pytest.mark.parametrize("op", list(REFS))
def test_operations_with_weights_and_shifts_and_gradients(op):
    extra = "Weights=0.5 -2 1.5\nShifts=0.25 -1 3" if op in ("Sum", "EuclideanSum") else ""
    extra = "Weights=0.5 -2 1.5" if op == "AbsSum" else extra
    cell = elemwise(op, extra, 3)
    xs = inputs(3)
    y = cell.forward([x.astype(np.float32) for x in xs])
    assert y.dtype == np.float32 and y.shape[1:] == SHAPE
    np.testing.assert_allclose(y, REFS[op](xs), rtol=1e-5, atol=1e-5)
    check_gradients(cell, xs)


def test_against_torch_autograd():
    cell = elemwise("EuclideanSum", "Weights=0.5 -2 1.5\nShifts=0.25 -1 3\nActivationFunction=Tanh", 3)
    xs = inputs(3, seed=1)
    dy = np.random.default_rng(2).standard_normal((2,) + SHAPE)
    cell.forward(xs)
    dxs = cell.backward(dy)
    txs = [torch.tensor(x, requires_grad=True) for x in xs]
    y = torch.tanh(torch.sqrt(sum(w * w * x * x + s * s for x, w, s in zip(txs, W, S))))
    y.backward(torch.tensor(dy))
    for dx, tx in zip(dxs, txs):
        np.testing.assert_allclose(dx, tx.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_short_lists_are_completed_like_n2d2_and_warned():
    cell = elemwise("Sum", "Weights=0.5")
    assert (cell.weights, cell.shifts) == ([0.5, 1.0], [0.0, 0.0])
    text = "[e]\nType=ElemWise\nNbOutputs=3\nOperation=Sum\nWeights=0.5\nShifts=1 2 3\n"
    sec = make_section(text, "e")
    cell = ElemWiseCell.from_section(sec, [Port("a", SHAPE), Port("b", SHAPE)], cpu())
    assert cell.shifts == [1.0, 2.0]
    warnings = "\n".join(sec.doc.diagnostics.messages)
    assert "Weights: 1 value(s) for 2 inputs: the others take 1" in warnings
    assert "Shifts: 3 values for 2 inputs: the extra ones are ignored" in warnings
    sec = make_section("[e]\nOperation=Max\nNbOutputs=3\nWeights=2 2\n", "e")
    ElemWiseCell.from_section(sec, [Port("a", SHAPE), Port("b", SHAPE)], cpu())
    assert "Operation=Max does not use Weights" in "\n".join(sec.doc.diagnostics.messages)


def test_per_channel_sum():
    cell = elemwise("Sum", "CoeffMode=PerChannel\nWeights=1 2 3\nShifts=0 1 0")
    xs = inputs()
    w = np.array([1, 2, 3.0])[:, None, None]
    s = np.array([0, 1, 0.0])[:, None, None]
    np.testing.assert_allclose(cell.forward(xs), w * xs[0] + s + w * xs[1] + s, rtol=1e-6)
    check_gradients(cell, xs)
    with pytest.raises(N2D2PyError, match="PerChannel is only defined for Operation=Sum"):
        elemwise("Prod", "CoeffMode=PerChannel")


def test_ties_single_input_and_errors():
    cell = elemwise("Max")
    x = np.ones((1,) + SHAPE)
    cell.forward([x, x.copy()])
    dxs = cell.backward(np.ones_like(x))
    assert (dxs[0] == 1).all() and (dxs[1] == 0).all()  # the first input wins ties, as N2D2
    cell = elemwise("AbsSum")
    cell.forward([np.zeros((1,) + SHAPE)] * 2)
    assert (cell.backward(np.ones((1,) + SHAPE))[0] == 1).all()  # sign(0) = +1, as N2D2
    single = elemwise("Prod", n=1)
    x = inputs(1)[0]
    y = single.forward([x])
    assert y is not x and np.array_equal(y, x)
    with pytest.raises(N2D2PyError, match="Operation: required key is missing"):
        build(ElemWiseCell, "[e]\nNbOutputs=3\n", "e", [SHAPE] * 2)
    with pytest.raises(N2D2PyError, match="expected one of Sum"):
        elemwise("Abs")
    with pytest.raises(N2D2PyError, match="same dimensions"):
        build(ElemWiseCell, "[e]\nNbOutputs=3\nOperation=Sum\n", "e", [SHAPE, (3, 4, 4)])
    assert repr(elemwise("Sum")) == "ElemWiseCell(e <- sp,in1: (3, 4, 5) Sum)"


RESNET_HEAD = """DefaultModel=Frame
[sp]
SizeX=6
SizeY=6
[conv]
Input=sp
Type=Conv
KernelDims=3 3
NbOutputs=4
Padding=1
[shortcut]
Input=sp
Type=Conv
KernelDims=1 1
NbOutputs=4
[sum]
Input=conv,shortcut
Type=ElemWise
NbOutputs=[conv]NbOutputs
Operation=Sum
Weights=1 0.5
ActivationFunction=Rectifier
[pool]
Input=sum
Type=Pool
PoolDims=[sum]_OutputsWidth [sum]_OutputsHeight
NbOutputs=[sum]NbOutputs
Stride=1
Pooling=Average
Mapping.ChannelsPerGroup=1
[fc]
Input=pool
Type=Fc
NbOutputs=3
[fc.Target]
"""


def test_resnet_block_sum_and_global_average_pool_head():
    from n2d2py import backend, network
    from n2d2py.errors import Diagnostics
    from n2d2py.ini import parse_text

    doc = parse_text(RESNET_HEAD, "r.ini", Diagnostics(stream=io.StringIO()))
    net = network.build(doc, backend.cpu(0))
    net.initialize()
    pool = net.cells["pool"]
    assert pool.one_to_one and pool.pool == (6, 6) and pool.out_shape == (4, 1, 1)
    x = np.random.default_rng(0).standard_normal((2, 1, 6, 6)).astype(np.float32)
    out = net.forward(x)
    np.testing.assert_allclose(out["sum"], np.maximum(out["conv"] + 0.5 * out["shortcut"], 0),
                               rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(out["pool"], out["sum"].mean(axis=(2, 3), keepdims=True),
                               rtol=1e-5, atol=1e-6)
    check_gradients(pool, [np.random.default_rng(1).standard_normal((2, 4, 6, 6))])
    check_gradients(net.cells["sum"], [np.random.default_rng(s).standard_normal((2, 4, 6, 6))
                                       for s in (2, 3)])


@pytest.mark.parametrize("extra", ["", "Weights=0.5 -2 1.5\nShifts=0.25 -1 3",
                                   "CoeffMode=PerChannel\nWeights=0.5 -2 1.5\nShifts=1 2 3"])
def test_sum_on_worker_threads_is_the_serial_sum_bit_for_bit(monkeypatch, extra):
    """Sum's CPU path (batch chunks on the worker threads, one output) adds the same terms in
    the same order as the serial expression."""
    from n2d2py import backend
    from n2d2py.cells import elemwise as module

    monkeypatch.setattr(backend, "_workers", backend._Pool(3))
    monkeypatch.setattr(backend, "MIN_CHUNK_WORK", 1)
    calls = []
    real = module._sum_on_threads
    monkeypatch.setattr(module, "_sum_on_threads", lambda *a: calls.append(1) or real(*a))
    cell = elemwise("Sum", extra, n=3)
    xs = [np.concatenate([x.astype(np.float32)] * 4) for x in inputs(3, seed=5)]  # 8 images
    threaded = cell.forward(xs).copy()
    assert calls
    monkeypatch.setattr(module, "_threaded", lambda xs: False)
    assert np.array_equal(threaded, cell.forward(xs))


@pytest.mark.parametrize("n", [2, 3])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("act", ["", "ActivationFunction=Linear",
                                 "ActivationFunction=Rectifier",
                                 "ActivationFunction=Rectifier\nActivationFunction.LeakSlope=0.1",
                                 "ActivationFunction=Rectifier\nActivationFunction.Clipping=0.5"])
def test_fused_sum_and_activation_are_the_generic_path_bit_for_bit(monkeypatch, n, dtype, act):
    """A plain Sum and its activation in one compiled pass (``kernels.add_rectifier``; the
    Rectifier's backward then reads the output): the generic path's values and gradients."""
    from n2d2py import backend
    from n2d2py.cells import elemwise as module

    monkeypatch.setattr(backend, "_workers", backend._Pool(3))
    monkeypatch.setattr(backend, "MIN_CHUNK_WORK", 1)
    fused = []
    real = module.by_image
    monkeypatch.setattr(module, "by_image", lambda *a: fused.append(1) or real(*a))
    cell = elemwise("Sum", act, n=n)
    rng = np.random.default_rng(7)
    xs = [rng.standard_normal((6,) + SHAPE).astype(dtype) for _ in range(n)]
    xs[0][0, 0] = -xs[1][0, 0]  # sums of exactly 0
    xs[0][1, 0] = 0.5 - xs[1][1, 0]  # at the clipping value
    dy = rng.standard_normal((6,) + SHAPE).astype(dtype)
    y = cell.forward(xs, train=True).copy()
    dxs = [dx.copy() for dx in cell.backward(dy)]
    assert fused and y.dtype == dtype
    monkeypatch.setattr(module, "_threaded", lambda xs: False)
    assert np.array_equal(y, cell.forward(xs, train=True))
    for dx, ref in zip(dxs, cell.backward(dy)):
        assert np.array_equal(dx, ref)


def test_weights_or_shifts_take_the_generic_path():
    from n2d2py.cells import elemwise as module

    for extra in ("Weights=2 1", "Shifts=0 1", "CoeffMode=PerChannel"):
        cell = elemwise("Sum", extra + "\nActivationFunction=Rectifier")
        assert cell._fused_activation([x.astype(np.float32) for x in inputs()]) is None
    cell = elemwise("Sum", "ActivationFunction=Rectifier\nActivationFunction.LeakSlope=-1")
    assert cell._fused_activation([x.astype(np.float32) for x in inputs()]) is None
    cell = elemwise("Sum", "ActivationFunction=Tanh")
    assert cell._fused_activation([x.astype(np.float32) for x in inputs()]) is None
    x = np.ones(3)  # numpy scalars 1 and 0 (which have a shape) cost no pass either
    assert module._affine(x, np.float32(1), np.float32(0)) is x
