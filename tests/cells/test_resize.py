"""Resize: nearest / bilinear modes vs PyTorch and N2D2's formulas, gradients, errors."""

import numpy as np
import pytest
import torch
from harness import build, check_gradients

from n2d2py.cells.resize import ResizeCell, interpolation_matrix
from n2d2py.errors import N2D2PyError


def resize(mode, width, height, shapes=((2, 5, 4),), config=""):
    c = sum(s[0] for s in shapes)
    text = (f"[r]\nType=Resize\nNbOutputs={c}\nOutputWidth={width}\nOutputHeight={height}\n"
            f"Mode={mode}\n[cfg]\n{config}\n")
    names = ["sp"] + [f"in{i}" for i in range(1, len(shapes))]
    return build(ResizeCell, text, "r", list(shapes), ["cfg"], names=names)


def torch_resize(x, size, **kw):
    return torch.nn.functional.interpolate(torch.tensor(x), size=size, **kw).numpy()


# (mode, AlignCorners, torch.interpolate arguments)
TORCH_CASES = [
    ("NearestNeighbor", 1, {"mode": "nearest"}),
    ("BilinearTF", 1, {"mode": "bilinear", "align_corners": True}),
    ("Bilinear", 1, {"mode": "bilinear", "align_corners": False}),
    ("Bilinear", 0, {"mode": "bilinear", "align_corners": False}),
]


@pytest.mark.parametrize("mode, align, kw", TORCH_CASES)
@pytest.mark.parametrize("size", [(11, 8), (3, 2), (5, 9)])  # (height, width): up, down, mixed
def test_matches_torch_and_gradients(mode, align, kw, size):
    cell = resize(mode, size[1], size[0], config=f"AlignCorners={align}")
    assert cell.out_shape == (2, *size)
    x = np.random.default_rng(0).standard_normal((3, 2, 5, 4)).astype(np.float32)
    y = cell.forward([x])
    assert y.dtype == np.float32 and y.shape[1:] == cell.out_shape
    np.testing.assert_allclose(y, torch_resize(x, size, **kw), rtol=1e-5, atol=1e-6)
    check_gradients(cell, [x.astype(np.float64)])


def n2d2_bilinear_tf(x, out_h, out_w, align):
    """N2D2's BilinearTF loop, written out."""
    n, c, h, w = x.shape
    ry = (h - 1) / (out_h - 1) if align and out_h > 1 else h / out_h
    rx = (w - 1) / (out_w - 1) if align and out_w > 1 else w / out_w
    y = np.zeros((n, c, out_h, out_w))
    for oy in range(out_h):
        sy = oy * ry
        y0, y1 = int(sy), min(int(sy) + 1, h - 1)
        for ox in range(out_w):
            sx = ox * rx
            x0, x1 = int(sx), min(int(sx) + 1, w - 1)
            top = x[:, :, y0, x0] + (x[:, :, y0, x1] - x[:, :, y0, x0]) * (sx - x0)
            bot = x[:, :, y1, x0] + (x[:, :, y1, x1] - x[:, :, y1, x0]) * (sx - x0)
            y[:, :, oy, ox] = top + (bot - top) * (sy - y0)
    return y


@pytest.mark.parametrize("align", [0, 1])
def test_bilinear_tf_matches_n2d2_formula(align):
    cell = resize("BilinearTF", 7, 3, config=f"AlignCorners={align}")
    x = np.random.default_rng(1).standard_normal((2, 2, 5, 4)).astype(np.float32)
    np.testing.assert_allclose(cell.forward([x]), n2d2_bilinear_tf(x, 3, 7, align), rtol=1e-5, atol=1e-5)
    check_gradients(cell, [x.astype(np.float64)])


def test_matrices_rows_sum_to_one_and_nearest_indices():
    for mode in ("NearestNeighbor", "Bilinear", "BilinearTF"):
        np.testing.assert_allclose(interpolation_matrix(7, 3, mode).sum(axis=1), 1, rtol=1e-6)
    nearest = interpolation_matrix(5, 3, "NearestNeighbor")
    assert nearest.argmax(axis=1).tolist() == [0, 1, 3]  # floor(o·5/3)


def test_two_inputs_and_errors():
    cell = resize("NearestNeighbor", 4, 4, shapes=((1, 2, 2), (2, 2, 2)))
    rng = np.random.default_rng(2)
    xs = [rng.standard_normal((2, 1, 2, 2)), rng.standard_normal((2, 2, 2, 2))]
    np.testing.assert_array_equal(cell.forward(xs)[:, 1:], xs[1].repeat(2, 2).repeat(2, 3))
    dxs = check_gradients(cell, xs)
    assert [dx.shape for dx in dxs] == [x.shape for x in xs]
    dy = rng.standard_normal((2, 3, 4, 4))
    cell.forward(xs)
    dx = cell.backward(dy)[1]  # the adjoint sums each 2×2 block (N2D2's backward samples one)
    np.testing.assert_allclose(dx, dy[:, 1:].reshape(2, 2, 2, 2, 2, 2).sum(axis=(3, 5)))
    with pytest.raises(N2D2PyError, match="Mode: expected one of Bilinear, BilinearTF"):
        resize("Linear", 4, 4)
    with pytest.raises(N2D2PyError, match="Mode: required key is missing"):
        build(ResizeCell, "[r]\nNbOutputs=2\nOutputWidth=3\nOutputHeight=3\n", "r", [(2, 4, 4)])
    with pytest.raises(N2D2PyError, match="OutputWidth: must be at least 1"):
        resize("Bilinear", 0, 3)
