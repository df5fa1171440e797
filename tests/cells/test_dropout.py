"""Dropout: inverted dropout in training, identity at test time, seeded masks, gradients."""

import numpy as np
import pytest
from harness import build, check_gradients

from n2d2py.cells.dropout import DropoutCell
from n2d2py.errors import N2D2PyError

DROP = "[drop]\nType=Dropout\nNbOutputs={}\n[cfg]\n{}\n"


def test_identity_at_test_time_and_scaled_mask_in_training():
    cell = build(DropoutCell, DROP.format(4, "Dropout=0.25"), "drop", [(4, 8, 8)], ["cfg"])
    x = np.ones((16, 4, 8, 8), np.float32)
    assert cell.forward([x]) is x
    y = cell.forward([x], True)
    assert y.dtype == np.float32
    np.testing.assert_allclose(np.unique(y), [0.0, 1 / 0.75], rtol=1e-6)
    assert abs(float((y == 0).mean()) - 0.25) < 0.03
    dx = cell.backward(np.ones_like(y))[0]
    np.testing.assert_array_equal(dx, y)


def test_default_rate_and_seeded_masks():
    a = build(DropoutCell, DROP.format(2, ""), "drop", [(2, 4, 4)], ["cfg"], seed=3)
    b = build(DropoutCell, DROP.format(2, ""), "drop", [(2, 4, 4)], ["cfg"], seed=3)
    assert a.drop == 0.5
    x = np.ones((4, 2, 4, 4), np.float32)
    np.testing.assert_array_equal(a.forward([x], True), b.forward([x], True))


def test_gradients_with_a_fixed_mask():
    cell = build(DropoutCell, DROP.format(3, ""), "drop", [(3, 3, 3)], ["cfg"])
    x = np.random.default_rng(0).standard_normal((2, 3, 3, 3))
    check_gradients(cell, [x], train=True, before_forward=lambda: cell.device.reseed(7))
    check_gradients(cell, [x], train=False)


def test_errors():
    with pytest.raises(N2D2PyError, match="must equal the 4 input channels, got 3"):
        build(DropoutCell, DROP.format(3, ""), "drop", [(4, 2, 2)], ["cfg"])
    with pytest.raises(N2D2PyError, match=r"Dropout: drop probability must be in \[0, 1\)"):
        build(DropoutCell, DROP.format(4, "Dropout=1"), "drop", [(4, 2, 2)], ["cfg"])
