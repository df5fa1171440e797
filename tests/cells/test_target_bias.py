"""TargetBias (AM-Softmax's margin): learning adds Bias at the marked outputs above −Bias."""

import numpy as np
import pytest
from harness import build

from n2d2py.cells.target_bias import TargetBiasCell
from n2d2py.errors import N2D2PyError

TEXT = "[m]\nType=TargetBias\nNbOutputs=4\nBias=-0.35\n"


def test_margin_only_while_learning_at_marked_outputs_above_minus_bias():
    cell = build(TargetBiasCell, TEXT, "m", [(4, 1, 1)])
    x = np.array([[0.9, 0.2, 0.5, -0.1], [0.3, 0.36, 0.1, 0.0]], np.float32).reshape(2, 4, 1, 1)
    marks = np.zeros_like(x)
    marks[0, 0] = marks[1, 1] = 1.0
    marks[0, 2] = 1.0  # a second mark in row 0, above the threshold
    marks[1, 0] = 1.0  # 0.3 < 0.35: unchanged
    cell.set_marks(marks)
    y = cell.forward([x], train=True).reshape(2, 4)
    expected = x.reshape(2, 4).copy()
    expected[0, 0] -= 0.35
    expected[0, 2] -= 0.35
    expected[1, 1] -= 0.35
    np.testing.assert_allclose(y, expected, rtol=1e-6)
    assert (cell.forward([x], train=True) == x).all()  # marks are used once
    cell.set_marks(marks)
    assert (cell.forward([x], train=False) == x).all()  # inference: identity
    dy = np.random.default_rng(0).standard_normal(x.shape)
    assert (cell.backward(dy)[0] == dy).all()  # backward: identity
    assert cell.params() == [] and cell.takes_no_loss


def test_keys():
    with pytest.raises(N2D2PyError, match="Bias: required key is missing"):
        build(TargetBiasCell, "[m]\nType=TargetBias\nNbOutputs=4\n", "m", [(4, 1, 1)])
    with pytest.raises(N2D2PyError, match="NbOutputs: must equal the 4"):
        build(TargetBiasCell, TEXT.replace("=4", "=3"), "m", [(4, 1, 1)])
