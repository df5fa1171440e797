"""Padding: zero padding and cropping per side vs numpy/PyTorch, gradients, errors."""

import numpy as np
import pytest
import torch
from harness import build, check_gradients

from n2d2py.cells.padding import PaddingCell
from n2d2py.errors import N2D2PyError


def padding(top, bottom, left, right, shapes=((2, 5, 6),), c=None):
    c = c or sum(s[0] for s in shapes)
    text = (f"[pad]\nType=Padding\nNbOutputs={c}\nTopPadding={top}\nBottomPadding={bottom}\n"
            f"LeftPadding={left}\nRightPadding={right}\n")
    names = ["sp"] + [f"in{i}" for i in range(1, len(shapes))]
    return build(PaddingCell, text, "pad", list(shapes), names=names)


@pytest.mark.parametrize("sides", [(1, 2, 0, 3), (-1, 2, 1, -2), (0, 0, 0, 0), (-2, -1, -3, -1)])
def test_forward_matches_torch_pad_and_gradients(sides):
    top, bottom, left, right = sides
    cell = padding(*sides)
    assert cell.out_shape == (2, 5 + top + bottom, 6 + left + right)
    x = np.random.default_rng(0).standard_normal((3, 2, 5, 6)).astype(np.float32)
    y = cell.forward([x])
    ref = torch.nn.functional.pad(torch.tensor(x), (left, right, top, bottom))  # negative crops
    np.testing.assert_array_equal(y, ref.numpy())
    assert y.shape[1:] == cell.out_shape and y.dtype == np.float32
    check_gradients(cell, [x.astype(np.float64)])


def test_two_inputs_are_stacked():
    cell = padding(1, 0, 0, 1, shapes=((1, 3, 3), (2, 3, 3)))
    rng = np.random.default_rng(1)
    xs = [rng.standard_normal((2, 1, 3, 3)), rng.standard_normal((2, 2, 3, 3))]
    y = cell.forward(xs)
    assert y.shape == (2, 3, 4, 4) and (y[:, :, 0] == 0).all() and (y[:, :, :, -1] == 0).all()
    np.testing.assert_array_equal(y[:, 1:, 1:, :3], xs[1])
    dxs = check_gradients(cell, xs)
    assert [dx.shape for dx in dxs] == [x.shape for x in xs]


def test_errors():
    with pytest.raises(N2D2PyError, match="RightPadding: required key is missing"):
        build(PaddingCell, "[p]\nNbOutputs=1\nTopPadding=1\nBottomPadding=1\nLeftPadding=1\n",
              "p", [(1, 4, 4)])
    with pytest.raises(N2D2PyError, match="TopPadding: TopPadding \\+ BottomPadding leaves no row"):
        padding(-2, -2, 0, 0, shapes=((1, 4, 4),))
    with pytest.raises(N2D2PyError, match="NbOutputs: must equal the 2 input channels"):
        padding(1, 1, 1, 1, c=3)
    assert repr(padding(1, 2, 3, 4)) == "PaddingCell(pad <- sp: (2, 8, 13) pad t/b/l/r=(1, 2, 3, 4))"
