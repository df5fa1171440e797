"""The grouped/depthwise convolution and the fused BatchNorm against the paths they replace:
the dense masked GEMM (``_groups`` forced to 1) and the xp path (CuPy's, run on numpy), on the
values, the gradients and by finite differences."""

import numpy as np
import pytest
from harness import build, check_gradients, conv_cell, learning_step

from n2d2py import activations, backend
from n2d2py.cells import _windows as win
from n2d2py.cells import pool as pool_module
from n2d2py.cells.batchnorm import BatchNormCell

GROUPED = [  # (INI lines, input shape): depthwise, depthwise strided/dilated, grouped
    ("KernelDims=3 3\nNbOutputs=4\nPadding=1\nMapping.ChannelsPerGroup=1", (4, 6, 5)),
    ("KernelDims=3 2\nNbOutputs=3\nPaddingY=2\nPaddingX=1\nStride=2\nDilationY=2\n"
     "Mapping.ChannelsPerGroup=1", (3, 7, 6)),
    ("KernelDims=3 3\nNbOutputs=6\nPadding=1\nMapping.NbGroups=2", (4, 5, 5)),
    ("KernelDims=1 1\nNbOutputs=6\nMapping.NbGroups=3", (3, 4, 4)),
    ("KernelDims=2 2\nNbOutputs=4\nStride=2\nMapping.ChannelsPerGroup=1\nPaddingY=-1",
     (4, 7, 6)),
    # stride 1: the input gradient is the forward kernel on dz with the kernels flipped,
    # padded by dh·(kh − 1) − ph (here 4 − 1, and 1 − 3 < 0: a crop)
    ("KernelDims=3 2\nNbOutputs=3\nPaddingY=1\nPaddingX=3\nDilationY=2\n"
     "Mapping.ChannelsPerGroup=1", (3, 8, 5)),
    ("KernelDims=5 5\nNbOutputs=2\nPaddingY=0\nPaddingX=-1\nMapping.ChannelsPerGroup=1",
     (2, 9, 9)),
]


@pytest.fixture
def xp_path(monkeypatch):
    """Make every call site take the xp (CuPy-compatible) path on numpy arrays."""
    for module in (win, pool_module, activations, backend):
        monkeypatch.setattr(module, "cpu_kernels", lambda a: None)


@pytest.mark.parametrize("ini, shape", GROUPED)
@pytest.mark.parametrize("path", ["compiled", "xp"])
def test_grouped_convolution_matches_the_dense_masked_gemm(request, monkeypatch, ini, shape,
                                                           path):
    monkeypatch.setattr(backend, "_workers", backend._Pool(3))  # chunks over three threads
    monkeypatch.setattr(backend, "MIN_CHUNK_WORK", 1)
    if path == "xp":
        request.getfixturevalue("xp_path")
    x = np.random.default_rng(1).standard_normal((5,) + shape).astype(np.float32)
    cell = conv_cell(ini, shape)
    assert cell._groups > 1
    dy = np.random.default_rng(2).standard_normal((5,) + cell.out_shape).astype(np.float32)
    got = learning_step(cell, x, dy)
    assert cell._depthwise == (path == "compiled" and "ChannelsPerGroup=1" in ini)
    dense = conv_cell(ini, shape)
    dense._groups = 1  # the masked dense GEMM
    for a, b in zip(got, learning_step(dense, x, dy)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
    assert (got[2][~cell.mask] == 0).all()  # unmapped weights get no gradient


@pytest.mark.parametrize("ini, shape", GROUPED[:3])
def test_grouped_convolution_gradients(ini, shape):
    cell = conv_cell(ini, shape)
    check_gradients(cell, [np.random.default_rng(3).standard_normal((2,) + shape)])


def test_pointwise_convolution_reads_its_input_as_columns():
    x = np.random.default_rng(4).standard_normal((3, 5, 4, 4))
    cell = conv_cell("KernelDims=1 1\nNbOutputs=3", (5, 4, 4))
    assert cell._pointwise()
    check_gradients(cell, [x])


BN = "[bn]\nType=BatchNorm\nNbOutputs=3\n{act}\n[bn.config]\n{config}\n"
ACTIVATIONS = ["", "ActivationFunction=Linear", "ActivationFunction=Rectifier",
               "ActivationFunction=Rectifier\nActivationFunction.LeakSlope=0.1\n"
               "ActivationFunction.Clipping=1.0"]


def _bn(act, config):
    cell = build(BatchNormCell, BN.format(act=act, config=config), "bn", [(3, 4, 5)],
                 ["bn.config"])
    rng = np.random.default_rng(5)
    cell.scale.data[...] = rng.uniform(0.5, 1.5, 3)
    cell.bias.data[...] = rng.normal(size=3)
    cell.mean.data[...] = rng.normal(size=3)
    cell.variance.data[...] = rng.uniform(0.5, 2.0, 3)
    return cell


@pytest.mark.parametrize("act", ACTIVATIONS)
@pytest.mark.parametrize("config, train", [("", True), ("", False),
                                           ("MovingAverageMomentum=0", True)])
def test_fused_batchnorm_matches_the_xp_path(request, act, config, train):
    x = (np.random.default_rng(6).standard_normal((4, 3, 4, 5)) * 2 + 1).astype(np.float32)
    dy = np.random.default_rng(7).standard_normal(x.shape).astype(np.float32)
    results = []
    for path in ("compiled", "xp"):
        if path == "xp":
            request.getfixturevalue("xp_path")
        cell = _bn(act, config)
        y = cell.forward([x], train)
        dx = cell.backward(dy)[0]
        assert (cell._fused is not None) == (path == "compiled")
        results.append((y, dx, cell.scale.grad, cell.bias.grad, cell.mean.data,
                        cell.variance.data))
    for a, b in zip(*results):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("act", ACTIVATIONS[2:])
@pytest.mark.parametrize("train", [True, False])
def test_fused_batchnorm_gradients(act, train):
    cell = _bn(act, "")
    x = np.random.default_rng(8).standard_normal((3, 3, 4, 5)) * 0.7
    check_gradients(cell, [x], train=train)
    assert cell._fused is not None


def test_batchnorm_with_another_activation_keeps_the_generic_path():
    cell = _bn("ActivationFunction=Tanh", "")
    cell.forward([np.zeros((2, 3, 4, 5), np.float32)], True)
    assert cell._fused is None
