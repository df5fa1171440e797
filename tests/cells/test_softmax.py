"""Softmax over channels: values, Jacobian backward, pass-through with WithLoss=1."""

import numpy as np
import pytest
from harness import build, check_gradients

from n2d2py.cells.softmax import SoftmaxCell
from n2d2py.errors import N2D2PyError

SOFTMAX = "[softmax]\nType=Softmax\nNbOutputs={}\n{}\n"


def test_values_and_jacobian_gradients():
    cell = build(SoftmaxCell, SOFTMAX.format(4, ""), "softmax", [(4, 2, 3)])
    x = np.random.default_rng(0).standard_normal((2, 4, 2, 3)).astype(np.float32) * 30
    y = cell.forward([x])
    assert y.dtype == np.float32 and np.isfinite(y).all()
    np.testing.assert_allclose(y.sum(axis=1), 1, rtol=1e-6)
    e = np.exp(x.astype(np.float64) - x.max(axis=1, keepdims=True))
    np.testing.assert_allclose(y, e / e.sum(axis=1, keepdims=True), rtol=1e-5, atol=1e-7)
    check_gradients(cell, [x / 30])


def test_with_loss_passes_the_gradient_through():
    cell = build(SoftmaxCell, SOFTMAX.format(3, "WithLoss=1"), "softmax", [(3, 1, 1)])
    x = np.random.default_rng(1).standard_normal((5, 3, 1, 1)).astype(np.float32)
    y = cell.forward([x], True)
    target = np.eye(3, dtype=np.float32)[[0, 1, 2, 0, 1]].reshape(5, 3, 1, 1)
    dy = y - target  # what a target gives: the cross-entropy gradient on the logits
    assert cell.backward(dy)[0] is dy
    # ... which is indeed d(-Σ t·log softmax(x))/dx.
    x64 = x.astype(np.float64)
    eps, numeric = 1e-6, np.zeros_like(x64)
    for i in np.ndindex(x64.shape):
        for sign in (1, -1):
            xe = x64.copy()
            xe[i] += sign * eps
            p = np.exp(xe) / np.exp(xe).sum(axis=1, keepdims=True)
            numeric[i] += sign * float(-(target * np.log(p)).sum()) / (2 * eps)
    np.testing.assert_allclose(dy, numeric, rtol=1e-4, atol=1e-6)


def test_errors():
    with pytest.raises(N2D2PyError, match="must equal the 3 input channels, got 4"):
        build(SoftmaxCell, SOFTMAX.format(4, ""), "softmax", [(3, 1, 1)])
    with pytest.raises(N2D2PyError, match="GroupSize other than 0"):
        build(SoftmaxCell, SOFTMAX.format(3, "GroupSize=2"), "softmax", [(3, 1, 1)])
