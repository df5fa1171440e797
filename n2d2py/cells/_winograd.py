"""Conv's 3×3, stride-1 convolutions by Winograd's F(2×2, 3×3) on the CPU, for large planes.

Per image: the input transform (``kernels.winograd``), 16 GEMMs (O, C) @ (C, tiles) of the
transformed weights U = G g Gᵀ by the transformed input, the output transform; 16
multiplications per 2×2 output tile and channel where im2col + GEMM does 36, and no columns.
Conv uses it for its forward and for its input gradient (the same convolution of dz by the
kernels flipped and transposed, padded by 2 − p); the weight gradient stays im2col + GEMM.

Measured by ``benchmarks/conv_layers.py`` (one core, thread CPU time, 64 images, 32 at 56×56;
im2col + GEMM time over Winograd's, Winograd forced on every plane size):

    C → O, plane         forward   step        C → O, plane          forward   step
    32 → 32, 32×32       1.45×     1.36×       64 → 128, 8×8         0.62×     0.71×
    32 → 64, 16×16       0.90×     0.90×       128 → 128, 8×8        0.62×     0.86×
    64 → 64, 16×16       1.25×     1.10×       256 → 256, 8×8        0.53×     0.81×
    128 → 128, 16×16     1.26×     1.08×       64 → 64, 56×56        1.22×     1.16×

The transforms cost in proportion to C + O per tile and save in proportion to C·O, and small
planes waste the wide layout's extra tile per row: hence ``worth``, planes of 32×32 and more,
or 16×16 and more with at least 64 summed channels and no more outputs than them. The
rounding differs from the direct sums by about 1e-7 relative (the transforms add and
subtract): values are compared with im2col's, PyTorch's and finite differences in
tests/cells/test_winograd.py.
"""

from dataclasses import dataclass

from n2d2py import backend
from n2d2py.cells import _windows as win

MIN_PIXELS = 32 * 32  # planes (of the convolution's output) that always take it
WIDE_PIXELS, WIDE_CHANNELS = 16 * 16, 64  # smaller planes, when the GEMMs are wide enough
MIN_CHANNELS = 8  # summed channels: thinner GEMMs do not pay for the transforms
MIN_TILES = 128  # tiles per GEMM: smaller planes are taken several images at a time
_G = ((1.0, 0.0, 0.0), (0.5, 0.5, 0.5), (0.5, -0.5, 0.5), (0.0, 0.0, 1.0))


def _window(cell):
    return (cell.kernel == (3, 3) and cell.stride == (1, 1) and cell.dilation == (1, 1)
            and min(cell.padding) >= 0)


def worth(summed, outputs, pixels):
    """Whether a convolution summing ``summed`` channels into ``outputs`` maps of ``pixels``
    pixels is faster here than im2col + GEMM (see the module's table)."""
    return summed >= MIN_CHANNELS and (pixels >= MIN_PIXELS or (
        pixels >= WIDE_PIXELS and summed >= WIDE_CHANNELS and outputs <= summed))


def for_forward(cell, x):
    """Whether the forward of ``cell`` on ``x`` (N, C, H, W) runs here."""
    o, ho, wo = cell.out_shape
    return (backend.cpu_kernels(x) is not None and _window(cell)
            and worth(x.shape[1], o, ho * wo))


def for_input_gradient(cell, x_shape, dz):
    """Whether the input gradient (of the input shape ``x_shape``) runs here: a convolution
    of dz's O maps into the input's C channels."""
    return (backend.cpu_kernels(dz) is not None and _window(cell) and max(cell.padding) <= 2
            and worth(cell.out_shape[0], x_shape[1], x_shape[2] * x_shape[3]))


def tiles(ho, wo):
    """(th, tw, wide): rows of tiles, tiles per row, and the kernels' "wide" tile count
    th·(tw + 1) (one unused tile per row: ``n2d2py/kernels/winograd.py``)."""
    th, tw = (ho + 1) // 2, (wo + 1) // 2
    return th, tw, th * (tw + 1)


@dataclass
class Plan:
    """One convolution to run: transformed weights, padding, tiles, images per GEMM."""

    u: object  # (16, O, C)
    padding: tuple
    out_hw: tuple
    th: int
    tw: int
    wide: int
    group: int


def plan(xp, w, padding, out_hw, dtype):
    """The Plan of a convolution by ``w`` (O, C, 3, 3): U = G g Gᵀ computed by two
    tensordots in float64 and rounded once."""
    g = w.astype(xp.float64)
    G = xp.asarray(_G, dtype=xp.float64)
    left = xp.tensordot(G, g, axes=([1], [2]))  # (4, O, C, 3): G g
    u = xp.tensordot(left, G, axes=([3], [1]))  # (4, O, C, 4): (G g) Gᵀ
    u = xp.ascontiguousarray(u.transpose(0, 3, 1, 2).reshape(16, w.shape[0], w.shape[1]),
                             dtype=dtype)
    th, tw, wide = tiles(*out_hw)
    return Plan(u, tuple(padding), tuple(out_hw), th, tw, wide, max(1, -(-MIN_TILES // wide)))


def run(xp, p, x, y, bias=None):
    """y (n, O, Ho, Wo) = the convolution planned in ``p`` of x (n, C, H, W), plus ``bias``
    (O, 1) when given (each image's while it is in the cache), on the calling thread (its
    scratch buffers)."""
    kernels = backend.cpu_kernels(x)
    before = kernels.winograd_input(*p.padding, x.dtype)
    after = kernels.winograd_output(y.dtype)
    o, c = p.u.shape[1:]
    size = p.group * p.wide
    v = win.scratch(xp, (16, c, size), x.dtype)
    m = win.scratch(xp, (16, o, size), y.dtype, 1)
    for s in range(0, x.shape[0], p.group):
        e = min(x.shape[0], s + p.group)
        for i in range(s, e):
            before(x[i], p.th, p.tw, v, (i - s) * p.wide)
        if e - s == p.group:
            xp.matmul(p.u, v, out=m)
        else:  # the last, smaller group
            used = (e - s) * p.wide
            m[:, :, :used] = xp.matmul(p.u, v[:, :, :used])
        for i in range(s, e):
            after(m, p.th, p.tw, y[i], (i - s) * p.wide)
            if bias is not None:
                y[i] += bias[:, :, None]
    return y


def forward(cell, x, w, y, chunks, cut, bias=None):
    """y (N, O, Ho·Wo) = ``cell``'s convolution of x by the dense ``w`` (O, C·9) (+ ``bias``,
    (O, 1));
    the batch split in ``chunks`` over the worker threads, each run micro-slice by micro-slice
    of ``cut`` (``parallel.slices``: a GEMM's groups of images, and so its values, are then
    the same whatever the threads and processes)."""
    xp = cell.xp
    o, ho, wo = cell.out_shape
    p = plan(xp, w.reshape(o, -1, 3, 3), cell.padding, (ho, wo), x.dtype)
    x = xp.ascontiguousarray(x)
    planes = y.reshape(x.shape[0], o, ho, wo)
    backend.run_split(chunks, lambda a, b: [run(xp, p, x[s:e], planes[s:e], bias)
                                            for s, e in cut.within(a, b)])
    return y


def input_gradient_plan(cell, w, x_shape, dtype):
    """The Plan of the input gradient: dz convolved by w flipped in space and transposed
    (C, O, 3, 3), padded by 2 − p, gives dx (N, C, H, W)."""
    o = w.shape[0]
    flipped = w.reshape(o, -1, 3, 3)[:, :, ::-1, ::-1].transpose(1, 0, 2, 3)
    padding = (2 - cell.padding[0], 2 - cell.padding[1])
    return plan(cell.xp, flipped, padding, tuple(x_shape[2:]), dtype)
