"""Reshape: N2D2's Dims (x y channels, 0 = keep, -1 = infer), gradients, errors."""

import numpy as np
import pytest
from harness import build, check_gradients

from n2d2py.cells.reshape import ReshapeCell
from n2d2py.errors import N2D2PyError


def reshape(dims, c, shapes=((2, 3, 4),)):
    names = ["sp"] + [f"in{i}" for i in range(1, len(shapes))]
    return build(ReshapeCell, f"[r]\nType=Reshape\nNbOutputs={c}\nDims={dims}\n", "r",
                 list(shapes), names=names)


@pytest.mark.parametrize("dims, out", [
    ("1 1 24", (24, 1, 1)),   # flatten to channels
    ("0 0 -1", (2, 3, 4)),    # keep x and y, infer channels
    ("6 -1 1", (1, 4, 6)),
    ("8 3", (1, 3, 8)),       # missing channels → 1
    ("4 6 1 0", (1, 6, 4)),   # 4th (batch) size 0
])
def test_shapes_memory_order_and_gradients(dims, out):
    cell = reshape(dims, out[0])
    assert cell.out_shape == out
    x = np.random.default_rng(0).standard_normal((2, 2, 3, 4))
    y = cell.forward([x])
    np.testing.assert_array_equal(y, x.reshape((2,) + out))
    check_gradients(cell, [x])


def test_two_inputs_and_errors():
    cell = reshape("-1 1 1", 1, shapes=((1, 2, 2), (2, 2, 2)))
    assert cell.out_shape == (1, 1, 12)
    rng = np.random.default_rng(1)
    check_gradients(cell, [rng.standard_normal((2, 1, 2, 2)), rng.standard_normal((2, 2, 2, 2))])
    with pytest.raises(N2D2PyError, match="Dims: 5x1x1 .* does not hold the 24 values"):
        reshape("5 1 1", 1)
    with pytest.raises(N2D2PyError, match="at most one size can be -1"):
        reshape("-1 -1 2", 2)
    with pytest.raises(N2D2PyError, match="expected 1 to 4 sizes"):
        reshape("1 1 1 1 24", 24)
    with pytest.raises(N2D2PyError, match="Dims: required key is missing"):
        build(ReshapeCell, "[r]\nNbOutputs=2\n", "r", [(2, 3, 4)])


def test_input_crop_keys_are_refused():
    text = "[r]\nType=Reshape\nNbOutputs=24\nDims=1 1 24\nInputOffsetX=0\nInputWidth=2\n"
    with pytest.raises(N2D2PyError, match="InputWidth .* not supported yet"):
        build(ReshapeCell, text, "r", [(2, 3, 4)])
