"""Transpose: N2D2's Perm (x y channels batch) vs numpy, gradients, errors."""

import numpy as np
import pytest
import torch
from harness import build, check_gradients

from n2d2py.cells.transpose import TransposeCell, numpy_axes
from n2d2py.errors import N2D2PyError


def transpose(perm, c, shapes=((2, 3, 4),)):
    names = ["sp"] + [f"in{i}" for i in range(1, len(shapes))]
    return build(TransposeCell, f"[t]\nType=Transpose\nNbOutputs={c}\nPerm={perm}\n", "t",
                 list(shapes), names=names)


@pytest.mark.parametrize("perm, axes, out", [
    ("1 0 2", (0, 1, 3, 2), (2, 4, 3)),       # swap x and y
    ("2 0 1", (0, 2, 3, 1), (3, 4, 2)),       # channels become x (NCHW → NHWC)
    ("1 2 0 3", (0, 3, 1, 2), (4, 2, 3)),
    ("0 1", (0, 1, 2, 3), (2, 3, 4)),
])
def test_axes_forward_and_gradients(perm, axes, out):
    cell = transpose(perm, out[0])
    assert numpy_axes([int(p) for p in perm.split()]) == axes and cell.out_shape == out
    x = np.random.default_rng(0).standard_normal((2, 2, 3, 4))
    y = cell.forward([x])
    np.testing.assert_array_equal(y, torch.tensor(x).permute(*axes).numpy())
    assert y.flags["C_CONTIGUOUS"]
    check_gradients(cell, [x])


def test_two_inputs_and_errors():
    cell = transpose("2 1 0", 3, shapes=((1, 3, 2), (1, 3, 2)))
    rng = np.random.default_rng(1)
    check_gradients(cell, [rng.standard_normal((2, 1, 3, 2)), rng.standard_normal((2, 1, 3, 2))])
    with pytest.raises(N2D2PyError, match="Perm: 0 0 2 is not a permutation"):
        transpose("0 0 2", 2)
    with pytest.raises(N2D2PyError, match="batch\\) axis cannot be permuted"):
        transpose("3 1 2 0", 2)
    assert repr(transpose("1 0 2", 2)) == "TransposeCell(t <- sp: (2, 4, 3) Perm=(1, 0, 2))"
