"""The compiled CPU kernels against the xp path they replace (run here on numpy arrays), and
the batch split over worker threads against one chunk."""

import numpy as np
import pytest
from harness import LENET_TABLE, build, check_gradients

from n2d2py import activations, backend
from n2d2py.cells import _windows as win
from n2d2py.cells import pool as pool_module
from n2d2py.cells.conv import ConvCell
from n2d2py.cells.pool import PoolCell

GEOMETRIES = [  # kernel, stride, padding, dilation
    ((5, 5), (1, 1), (0, 0), (1, 1)),
    ((3, 2), (2, 1), (1, 2), (1, 1)),
    ((3, 3), (1, 2), (2, 0), (2, 1)),
    ((2, 2), (2, 2), (-1, 0), (1, 1)),  # negative padding: crops
    ((1, 1), (3, 3), (0, 0), (1, 1)),
    ((7, 6), (1, 1), (0, 0), (1, 1)),  # the whole input: im2col is a reshape
    ((3, 3), (2, 2), (1, 1), (2, 2)),  # strided and dilated: the stride phases
    ((2, 3), (3, 2), (-1, 1), (1, 2)),  # strided, one axis cropped
]


@pytest.fixture
def xp_path(monkeypatch):
    """Make the call sites take the xp (CuPy-compatible) path on numpy arrays."""
    for module in (win, pool_module, activations):
        monkeypatch.setattr(module, "cpu_kernels", lambda a: None)


@pytest.fixture
def threads(monkeypatch):
    """Three worker threads and chunks as small as one image, whatever the machine."""
    monkeypatch.setattr(backend, "_workers", backend._Pool(3))
    monkeypatch.setattr(backend, "MIN_CHUNK_WORK", 1)


def _geometry_ok(shape, kernel, stride, padding, dilation):
    return all(win.out_size(shape[2 + a], kernel[a], stride[a], padding[a], dilation[a]) >= 1
               for a in range(2))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kernel, stride, padding, dilation", GEOMETRIES)
def test_im2col_and_its_adjoint_match_the_xp_path(request, dtype, kernel, stride, padding,
                                                  dilation):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 2, 7, 6)).astype(dtype)
    assert _geometry_ok(x.shape, kernel, stride, padding, dilation)
    cols = win.im2col(x, kernel, stride, padding, dilation)
    dcols = rng.standard_normal(cols.shape).astype(dtype)
    dx = win.im2col_backward(dcols, x.shape, kernel, stride, padding, dilation)
    request.getfixturevalue("xp_path")
    np.testing.assert_array_equal(cols, win.im2col(x, kernel, stride, padding, dilation))
    ref = win.im2col_backward(dcols, x.shape, kernel, stride, padding, dilation)
    np.testing.assert_allclose(dx, ref, rtol=1e-6, atol=1e-6)
    assert cols.dtype == dx.dtype == dtype
    # the adjoint: <im2col(x), d> = <x, im2col_backward(d)>
    np.testing.assert_allclose((cols * dcols).sum(), (x * dx).sum(), rtol=1e-4)


@pytest.mark.parametrize("kernel, stride, padding, dilation", GEOMETRIES)
def test_im2col_with_the_images_inner_is_the_per_image_layout_transposed(kernel, stride,
                                                                         padding, dilation):
    """``inner=True``: (C·kh·kw, N·L), the images' columns side by side; its adjoint too."""
    rng = np.random.default_rng(2)
    x = rng.standard_normal((3, 2, 7, 6)).astype(np.float32)
    cols = win.im2col(x, kernel, stride, padding, dilation)
    n, k, pixels = cols.shape
    inner = win.im2col(x, kernel, stride, padding, dilation, inner=True)
    np.testing.assert_array_equal(inner, cols.transpose(1, 0, 2).reshape(k, n * pixels))
    dcols = rng.standard_normal(cols.shape).astype(np.float32)
    dx = win.im2col_backward(dcols, x.shape, kernel, stride, padding, dilation)
    side = np.ascontiguousarray(dcols.transpose(1, 0, 2)).reshape(k, n * pixels)
    np.testing.assert_array_equal(  # the same terms in the same order for every pixel
        win.im2col_backward(side, x.shape, kernel, stride, padding, dilation, inner=True), dx)


def test_col2im_of_a_windows_view_matches_the_xp_path(request):
    g = np.random.default_rng(1).standard_normal((2, 3, 4, 3, 2, 3))
    out = win.col2im(g, (8, 11), (2, 3), (1, 2))
    request.getfixturevalue("xp_path")
    np.testing.assert_allclose(out, win.col2im(g, (8, 11), (2, 3), (1, 2)), rtol=1e-12)


@pytest.mark.parametrize("pooling", ["Max", "Average"])
@pytest.mark.parametrize("extra", ["PoolSize=2\nStride=2", "PoolDims=3 2\nStrideX=2\nPadding=1",
                                   "PoolSize=3\nPadding=2\nStride=3"])
def test_pooling_matches_the_xp_path(request, pooling, extra):
    text = f"[pool]\nType=Pool\nNbOutputs=3\nPooling={pooling}\nMapping.Size=1\n{extra}\n"
    x = np.random.default_rng(2).standard_normal((4, 3, 7, 8)).astype(np.float32)
    x[0, 0, :3, :3] = 1.0  # ties: the first maximum of a window takes the gradient
    dy_rng = np.random.default_rng(3)
    outputs = []
    for path in ("compiled", "xp"):
        if path == "xp":
            request.getfixturevalue("xp_path")
        cell = build(PoolCell, text, "pool", [(3, 7, 8)])
        y = cell.forward([x])
        dx = cell.backward(dy_rng.standard_normal(y.shape).astype(np.float32))[0]
        dy_rng = np.random.default_rng(3)
        outputs.append((y, dx, cell._compiled))
    (y, dx, compiled), (y_ref, dx_ref, xp_compiled) = outputs
    assert compiled and not xp_compiled
    np.testing.assert_allclose(y, y_ref, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(dx, dx_ref, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("leak, clip", [(0.0, 0.0), (0.1, 0.0), (0.0, 0.5), (0.2, 0.7)])
def test_rectifier_matches_the_xp_path(request, leak, clip):
    x = np.random.default_rng(4).standard_normal((5, 3, 4, 4)).astype(np.float32)
    x[0, 0, 0, :3] = [0.0, clip, np.nan]
    dy = np.random.default_rng(5).standard_normal(x.shape).astype(np.float32)
    act = activations.Rectifier(leak, clip)
    y, dx = act.forward(x), act.backward(dy)
    request.getfixturevalue("xp_path")
    ref = activations.Rectifier(leak, clip)
    np.testing.assert_array_equal(y, ref.forward(x))
    np.testing.assert_array_equal(dx, ref.backward(dy))


def test_split_batch_chunks():
    a = np.zeros(1)
    assert backend.split_batch(a, 5, 0) == [(0, 5)]
    pool = backend._Pool(3)
    try:
        backend._workers, saved = pool, backend._workers
        assert backend.split_batch(a, 7, 10**9) == [(0, 2), (2, 4), (4, 7)]
        assert backend.split_batch(a, 2, 10**9) == [(0, 1), (1, 2)]
        assert backend.run_split([(0, 2), (2, 4), (4, 7)], lambda s, e, k: (s, e, k), "abc") == [
            (0, 2, "a"), (2, 4, "b"), (4, 7, "c")]
        with pytest.raises(ZeroDivisionError):  # raised in a worker, after all have finished
            backend.run_split([(0, 1), (1, 2), (2, 3)], lambda s, e: 1 / (s - 1))
        assert backend.run_split([(0, 1), (1, 2), (2, 3)], lambda s, e: s) == [0, 1, 2]
    finally:
        backend._workers = saved


@pytest.mark.parametrize("ini, shape", [
    ("KernelDims=5 5\nNbOutputs=16\nActivationFunction=Rectifier\n"
     f"Mapping(sp)={LENET_TABLE}\n", (6, 14, 14)),
    ("KernelDims=3 3\nNbOutputs=4\nStride=2\nPadding=1\n", (3, 9, 9)),
    ("KernelDims=5 5\nNbOutputs=7\n", (4, 5, 5)),  # one output pixel: one GEMM on the batch
    ("KernelDims=3 3\nNbOutputs=5\nPadding=1\n", (3, 3, 3)),  # 9 pixels: GEMM on (N·L, K) rows
])
def test_convolution_split_over_threads_matches_one_chunk(monkeypatch, ini, shape):
    text = f"[conv]\nType=Conv\n{ini}\n[cfg]\n"
    x = np.random.default_rng(6).standard_normal((7,) + shape).astype(np.float32)
    dy_rng = np.random.default_rng(7)
    results = []
    for pool in (False, backend._Pool(3)):  # one thread, then three
        monkeypatch.setattr(backend, "_workers", pool)
        monkeypatch.setattr(backend, "MIN_CHUNK_WORK", 1)
        cell = build(ConvCell, text, "conv", [shape], ["cfg"])
        y = cell.forward([x], train=True)
        dx = cell.backward(dy_rng.standard_normal(y.shape).astype(np.float32))[0]
        dy_rng = np.random.default_rng(7)
        results.append((y, dx, cell.weights.grad.copy(), len(cell._chunks)))
    (y, dx, dw, one), (y2, dx2, dw2, many) = results
    assert one == 1 and many == 3
    np.testing.assert_allclose(y2, y, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(dx2, dx, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(dw2, dw, rtol=1e-5, atol=1e-5)


def test_gradients_with_threads(threads):
    text = "[conv]\nType=Conv\nKernelDims=3 3\nNbOutputs=3\nPadding=1\nStride=2\n[cfg]\n"
    cell = build(ConvCell, text, "conv", [(2, 5, 5)], ["cfg"])
    check_gradients(cell, [np.random.default_rng(8).standard_normal((4, 2, 5, 5))])
    text = "[pool]\nType=Pool\nNbOutputs=2\nPooling=Max\nMapping.Size=1\nPoolSize=2\nStride=1\n"
    cell = build(PoolCell, text, "pool", [(2, 5, 5)])
    check_gradients(cell, [np.random.default_rng(9).standard_normal((4, 2, 5, 5))])


def test_conv_and_pool_gradients_on_the_xp_path(xp_path):
    """The path CuPy arrays take, checked here on numpy arrays (no GPU needed)."""
    text = "[conv]\nType=Conv\nKernelDims=3 2\nNbOutputs=3\nPadding=1\nStride=2\nDilation=2\n[cfg]\n"
    cell = build(ConvCell, text, "conv", [(2, 7, 6)], ["cfg"])
    check_gradients(cell, [np.random.default_rng(10).standard_normal((3, 2, 7, 6))])
    text = "[pool]\nType=Pool\nNbOutputs=2\nPooling=Max\nMapping.Size=1\nPoolSize=3\nStride=2\n"
    cell = build(PoolCell, text, "pool", [(2, 7, 7)])
    check_gradients(cell, [np.random.default_rng(11).standard_normal((3, 2, 7, 7))])
    assert not cell._compiled


def test_add_on_the_threads_is_numpys_add(monkeypatch):
    """``backend.add`` (a gradient that two cells send to one input): a + b, chunk by chunk
    on the worker threads for contiguous arrays of one dtype, plain a + b otherwise."""
    monkeypatch.setattr(backend, "_workers", backend._Pool(3))
    monkeypatch.setattr(backend, "MIN_CHUNK_WORK", 1)
    rng = np.random.default_rng(3)
    a, b = (rng.standard_normal((7, 3, 4, 5)).astype(np.float32) for _ in range(2))
    out = backend.add(a, b)
    assert out is not a and out is not b and np.array_equal(out, a + b)
    assert np.array_equal(backend.add(a[:, ::2], b[:, ::2]), a[:, ::2] + b[:, ::2])
    assert backend.add(a, b.astype(np.float64)).dtype == np.float64
