"""Grouped and depthwise convolutions computed group by group (Conv's compute for a map
``mapping.even_groups`` recognises), never as the dense masked GEMM that does G times the work.

The weights stay stored dense (O, C, kh, kw) with their mask (the cell's Param); the forward
reads their G diagonal blocks (G, O/G, C/G, kh, kw) through a strided view (``blocks``), and
the backward's gradient blocks are added into the same view of the Param's gradient (its
unmapped elements stay 0 and are never read or written: the solver updates the mapped ones
only). Three computations:

* G groups of C/G channels: im2col's per-image columns (N, C·kh·kw, L) are already grouped
  by channel, so (N, G, C/G·kh·kw, L) is a free reshape, and one batched GEMM over the groups
  gives (N, G, O/G, L), NCHW as it comes (the same on numpy and CuPy);
* 3×3 at stride 1 on the CPU with enough channels per group and tiles
  (``_winograd.worth``): Winograd's F(4×4, 3×3) as for a dense Conv, its 36 GEMMs per group
  of images done block by block (``_winograd._gemms``);
* depthwise (one channel per group and per output) on the CPU: the direct kernels of
  ``n2d2py.kernels.depthwise``, no columns at all. CuPy arrays take the batched GEMM (with
  kh·kw-long rows), which computes the same values.

On the CPU the batch is split over the worker threads as in the dense path; the weight
gradient is summed per micro-slice (``parallel.slices``) in float64.
"""

from n2d2py import backend
from n2d2py.cells import _windows as win
from n2d2py.cells import _winograd
from n2d2py.parallel import slices


def blocks(xp, groups, a):
    """The G diagonal blocks (G, O/G, C/G, kh, kw) of the dense (O, C, kh, kw) ``a``: a view
    (no copy; adding into it adds into ``a``'s mapped elements only)."""
    o, c, kh, kw = a.shape
    s0, s1, s2, s3 = a.strides
    shape = (groups, o // groups, c // groups, kh, kw)
    return xp.lib.stride_tricks.as_strided(
        a, shape, (s0 * (o // groups) + s1 * (c // groups), s0, s1, s2, s3))


def _geometry(cell):
    return (*cell.kernel, *cell.stride, *cell.dilation, *cell.padding)


def forward(cell, x):
    """(N, O, Ho·Wo) pre-bias output of the grouped ``cell``; keeps what the backward needs."""
    xp, groups = cell.xp, cell._groups
    n, (o, ho, wo) = x.shape[0], cell.out_shape
    weights = blocks(xp, groups, cell.weights.data)  # unmapped weights are not read
    kernels = backend.cpu_kernels(x)
    depthwise = kernels is not None and weights.shape[1] == weights.shape[2] == 1
    y = xp.empty((n, o, ho * wo), dtype=xp.result_type(x.dtype, weights.dtype))
    cell._x_shape = x.shape
    cell._depthwise = depthwise
    cell._cut = slices.cut(cell.device, n)
    if depthwise:
        x = xp.ascontiguousarray(x)
        w = xp.ascontiguousarray(weights.reshape(o, *cell.kernel), dtype=x.dtype)
        kernel = kernels.depthwise(*_geometry(cell), x.dtype)
        out = y.reshape(n, o, ho, wo)
        cell._chunks = backend.split_batch(x, n, y.size * w[0].size, cell._cut.bounds)
        backend.run_split(cell._chunks, lambda a, b: kernel(x[a:b], w, out[a:b]))
        cell._cols, cell._x = None, x
        return y
    if (_winograd.for_forward(cell, x)  # 3×3 at stride 1: block-diagonal GEMMs
            and _winograd.for_input_gradient(cell, x.shape, x)):
        x = xp.ascontiguousarray(x)
        cell._chunks = backend.split_batch(x, n, y.size * x.shape[1] // groups * 9,
                                           cell._cut.bounds)
        cell._winograd_plan = _winograd.forward(cell, x, weights, y, cell._chunks, cell._cut)
        cell._cols, cell._x = None, x
        return y
    wg = weights.reshape(groups, o // groups, -1)

    def part(a, b):
        cols = win.im2col(x[a:b], cell.kernel, cell.stride, cell.padding, cell.dilation)
        grouped = cols.reshape(b - a, groups, -1, cols.shape[2])
        xp.matmul(wg, grouped, out=y[a:b].reshape(b - a, groups, o // groups, -1))
        return grouped

    cell._chunks = backend.split_batch(x, n, y.size * wg.shape[2], cell._cut.bounds)
    cell._cols = backend.run_split(cell._chunks, part)
    return y


def _input_gradient(cell, kernels, w, dtype):
    """kernel(dz, dx) of a depthwise ``cell`` with weights ``w`` (C, kh, kw): at stride 1 the
    forward kernel on dz with the kernels flipped, padded by dh·(kh − 1) − ph (its register
    sums are 3× faster than the phase planes' passes); else the adjoint kernel."""
    if tuple(cell.stride) != (1, 1):
        adjoint = kernels.depthwise_backward_input(*_geometry(cell), dtype)
        return lambda dz, dx: adjoint(dz, w, dx)
    (kh, kw), (dh, dw), (ph, pw) = cell.kernel, cell.dilation, cell.padding
    flipped = cell.xp.ascontiguousarray(w[:, ::-1, ::-1])
    forward = kernels.depthwise(kh, kw, 1, 1, dh, dw, dh * (kh - 1) - ph, dw * (kw - 1) - pw,
                                dtype)
    return lambda dz, dx: forward(dz, flipped, dx)


def backward(cell, dz, want_dx):
    """(the weight gradient's diagonal blocks (G, O/G, C/G, kh, kw), float64, input gradient
    or None) of the grouped ``cell``; ``dz`` is (N, O, L)."""
    xp, groups, cut = cell.xp, cell._groups, cell._cut
    n, o, pixels = dz.shape
    weights = blocks(xp, groups, cell.weights.data)
    dtype = xp.result_type(dz.dtype, weights.dtype)
    dx = xp.empty(cell._x_shape, dtype=dtype) if want_dx else None
    if cell._depthwise:
        kernels = backend.cpu_kernels(dz)
        x, dtype = cell._x, cell._x.dtype
        w = xp.ascontiguousarray(weights.reshape(o, *cell.kernel), dtype=dtype)
        g = xp.ascontiguousarray(dz, dtype=dtype).reshape((n,) + cell.out_shape)
        by_plane = kernels.depthwise_backward_weights(*_geometry(cell), dtype)
        inputs = _input_gradient(cell, kernels, w, dtype)

        def part(a, b):
            if dx is not None:
                inputs(g[a:b], dx[a:b])
            return slices.add64(by_plane(g[s:e], x[s:e], xp.empty(w.shape, dtype=xp.float64))
                                .astype(dtype) for s, e in cut.within(a, b))

        gw = sum(backend.run_split(cell._chunks, part))
        return gw.reshape(weights.shape), dx
    if cell._winograd_plan is not None:
        return _winograd_backward(cell, dz, weights, dx)
    wg = weights.reshape(groups, o // groups, -1)

    def part(a, b, cols):
        dzg = dz[a:b].reshape(b - a, groups, o // groups, pixels)
        gw = slices.add64(xp.matmul(dzg[s - a:e - a], cols[s - a:e - a].transpose(0, 1, 3, 2))
                          .sum(axis=0) for s, e in cut.within(a, b))  # (G, O/G, K/G)
        if dx is not None:
            dcols = xp.matmul(wg.transpose(0, 2, 1), dzg).reshape(b - a, -1, pixels)
            win.im2col_backward(dcols, dx[a:b].shape, cell.kernel, cell.stride, cell.padding,
                                cell.dilation, out=dx[a:b])
        return gw

    gw = sum(backend.run_split(cell._chunks, part, cell._cols))
    return gw.reshape(weights.shape), dx


def _winograd_backward(cell, dz, weights, dx):
    """``backward`` where the forward ran Winograd's F(4×4, 3×3): the weight gradient from
    the tiles, the input gradient (into ``dx`` unless None) by the flipped blocks, micro-slice
    by micro-slice as in Conv's dense path."""
    xp, cut, x = cell.xp, cell._cut, cell._x
    planes = xp.ascontiguousarray(dz, dtype=x.dtype).reshape((len(dz),) + cell.out_shape)
    back = None if dx is None else _winograd.input_gradient_plan(cell, weights, x.shape, x.dtype)

    def part(a, b):
        total = None  # float64: the slices' float32 sums added in order
        for lo, hi in cut.within(a, b):
            m = _winograd.weight_gradient(xp, cell._winograd_plan, x[lo:hi], planes[lo:hi])
            if back is not None:
                _winograd.run(xp, back, planes[lo:hi], dx[lo:hi])
            total = slices.add64([m]) if total is None else slices.add_into(total, m)
        return total

    m = slices.add_chunks(backend.run_split(cell._chunks, part))
    return _winograd.weights_from_tiles(xp, m).reshape(weights.shape), dx
