"""Conv's 3×3, stride-1 convolutions by Winograd's F(4×4, 3×3) on the CPU.

Per group of images: the input transform (``kernels.winograd``), 36 GEMMs (O, C) @ (C, tiles)
of the transformed weights U = G g Gᵀ by the transformed input, the output transform; 36
multiplications per 4×4 output tile and channel where im2col + GEMM does 144, and no columns.
Conv uses it for its forward, for its input gradient (the same convolution of dz by the
kernels flipped and transposed, padded by 2 − p) and, on planes of 12×12 and more, for its
weight gradient: Gᵀ [Σ_tiles (A dY Aᵀ) ⊙ (Bᵀ d B)] G, 36 GEMMs (O, tiles) @ (tiles, C).

Measured by ``benchmarks/conv_layers.py`` (one core, thread CPU time; 64 images, 32 at 56×56,
28×28 and 14×14; im2col + GEMM time over Winograd's, Winograd forced on every plane size):

    C → O, plane         forward   step        C → O, plane          forward   step
    32 → 32, 32×32       1.73×     1.74×       64 → 128, 8×8         1.41×     1.25×
    32 → 64, 16×16       1.68×     1.22×       128 → 128, 8×8        1.58×     1.27×
    64 → 64, 16×16       2.09×     1.60×       256 → 256, 8×8        1.19×     1.04×
    128 → 128, 16×16     2.04×     1.78×       64 → 64, 56×56        2.16×     1.80×
    64 → 64, 12×12       1.81×     1.40×       64 → 64, 28×28        1.93×     1.62×
    32 → 32, 14×14       1.40×     1.18×       128 → 128, 14×14      1.43×     1.15×
    16 → 16, 32×32       1.42×     1.32×       8 → 8, 32×32          0.95×     0.98×

(F(2×2, 3×3), used before: 1.45× / 1.36× on 32 → 32 at 32×32, 0.62× / 0.86× at 128 → 128
on 8×8.) Its GEMMs take a micro-slice's tiles at most (``parallel.slices``: the same images
whatever the threads), which on small planes is few: on 8×8 planes (4 tiles) the weight
gradient stays im2col's (summing over 32 tiles it was 0.6× as fast), and U (36·O·C) is
streamed once per slice, which large weights do not pay for (512 → 512 on 4×4: 0.34×).
Hence ``worth``: 16 summed channels or more, on planes of 12×12 and more, or of 8×8 with
at most 128 × 128 weights. The transforms multiply by up to 8 and the weights by 1/24: the
rounding differs from the direct sums by a few 1e-6 relative in float32 (1e-15 in float64);
values are compared with im2col's, PyTorch's and finite differences in
tests/cells/test_winograd.py.
"""

from dataclasses import dataclass

from n2d2py import backend
from n2d2py.cells import _windows as win

MIN_PIXELS = 12 * 12  # planes (of the convolution's output) that take it
SMALL_PIXELS, SMALL_WEIGHTS = 8 * 8, 128 * 128  # smaller ones, when U stays small
MIN_CHANNELS = 16  # summed channels: thinner GEMMs do not pay for the transforms
MIN_TILES = 64  # tiles per GEMM: smaller planes are taken several images at a time (128: 5-8 % slower)
OUTPUT_CHUNK = 1024  # tiles the output transform takes at a time (its sums stay in L1/L2)
_G = ((1 / 4, 0.0, 0.0), (-1 / 6, -1 / 6, -1 / 6), (-1 / 6, 1 / 6, -1 / 6),
      (1 / 24, 1 / 12, 1 / 6), (1 / 24, -1 / 12, 1 / 6), (0.0, 0.0, 1.0))


def _window(cell):
    return (cell.kernel == (3, 3) and cell.stride == (1, 1) and cell.dilation == (1, 1)
            and min(cell.padding) >= 0)


def worth(summed, outputs, pixels):
    """Whether a convolution summing ``summed`` channels into ``outputs`` maps of ``pixels``
    pixels is faster here than im2col + GEMM (see the module's table)."""
    return summed >= MIN_CHANNELS and (pixels >= MIN_PIXELS or (
        pixels >= SMALL_PIXELS and summed * outputs <= SMALL_WEIGHTS))


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


def for_weight_gradient(cell, x):
    """Whether the weight gradient of ``cell`` for the input ``x`` runs here: its GEMMs sum
    over the tiles of a micro-slice, too few on small planes."""
    o, ho, wo = cell.out_shape
    return (backend.cpu_kernels(x) is not None and _window(cell)
            and x.shape[1] >= MIN_CHANNELS and ho * wo >= MIN_PIXELS)


def tiles(ho, wo):
    """(th, tw, R): rows of tiles, tiles per row, and tiles per plane."""
    th, tw = -(-ho // 4), -(-wo // 4)
    return th, tw, th * tw


@dataclass
class Plan:
    """One convolution to run: transformed weights, padding, tiles, images per GEMM."""

    u: object  # (36, O, C)
    padding: tuple
    out_hw: tuple
    th: int
    tw: int
    span: int  # tiles per plane, R
    group: int


def plan(xp, w, padding, out_hw, dtype):
    """The Plan of a convolution by ``w`` (O, C, 3, 3): U = G g Gᵀ computed by two
    tensordots in float64 and rounded once."""
    g = w.astype(xp.float64)
    G = xp.asarray(_G, dtype=xp.float64)
    left = xp.tensordot(G, g, axes=([1], [2]))  # (6, O, C, 3): G g
    u = xp.tensordot(left, G, axes=([3], [1]))  # (6, O, C, 6): (G g) Gᵀ
    u = xp.ascontiguousarray(u.transpose(0, 3, 1, 2).reshape(36, w.shape[0], w.shape[1]),
                             dtype=dtype)
    th, tw, span = tiles(*out_hw)
    return Plan(u, tuple(padding), tuple(out_hw), th, tw, span,
                max(1, -(-MIN_TILES // span)))


def run(xp, p, x, y, bias=None):
    """y (n, O, Ho, Wo) = the convolution planned in ``p`` of x (n, C, H, W), plus ``bias``
    (O, 1) when given, on the calling thread (its scratch buffers)."""
    kernels = backend.cpu_kernels(x)
    before = kernels.winograd_input(*p.padding, x.dtype)
    after = kernels.winograd_output(y.dtype)
    o, c = p.u.shape[1:]
    shift = (xp.zeros(o, y.dtype) if bias is None
             else xp.ascontiguousarray(bias.reshape(-1), dtype=y.dtype))
    chunk = max(1, OUTPUT_CHUNK // p.span)  # planes of the output transform at a time
    sums = win.scratch(xp, (6, 4, chunk * p.span), y.dtype, 2)
    rows_out = win.scratch(xp, (4, chunk * 4 * p.span), y.dtype, 3)
    for s in range(0, x.shape[0], p.group):
        e = min(x.shape[0], s + p.group)
        size = (e - s) * p.span
        rows = win.scratch(xp, (12, c * 4 * size + 8), x.dtype)
        v = win.scratch(xp, (36, c, size), x.dtype, 1)
        m = win.scratch(xp, (36, o, size), y.dtype, 4)
        before(x[s:e], p.th, p.tw, rows, v.reshape(36, -1))
        xp.matmul(p.u, v, out=m)
        after(m.reshape(36, -1), p.th, p.tw, sums, rows_out, shift, y[s:e])
    return y


def weight_gradient(xp, p, x, dz):
    """The gradient (O, C·9), float64, of the weights of the convolution planned in ``p``
    (the forward's), for the images x (n, C, H, W) and their output gradients dz
    (n, O, Ho, Wo), on the calling thread: Σ over the groups of images of the 36 GEMMs
    z[ξ] (O, tiles) @ V[ξ]ᵀ (tiles, C), summed in float32 (one micro-slice: the caller adds
    the slices in float64), then Gᵀ · G in float64. A third of im2col's multiplications,
    and no columns."""
    kernels = backend.cpu_kernels(x)
    before = kernels.winograd_input(*p.padding, x.dtype)
    transform = kernels.winograd_gradient(dz.dtype)
    o, c = p.u.shape[1:]
    dtype = xp.result_type(x.dtype, dz.dtype)
    total = win.scratch(xp, (36, o, c), dtype, "wg")
    for s in range(0, x.shape[0], p.group):
        e = min(x.shape[0], s + p.group)
        size = (e - s) * p.span
        v = win.scratch(xp, (36, c, size), x.dtype, 1)
        z = win.scratch(xp, (36, o, size), dz.dtype, 4)
        before(x[s:e], p.th, p.tw, win.scratch(xp, (12, c * 4 * size + 8), x.dtype),
               v.reshape(36, -1))
        transform(dz[s:e], p.th, p.tw, win.scratch(xp, (6, o * 4 * size + 8), dz.dtype, 2),
                  z.reshape(36, -1))
        vt = v.transpose(0, 2, 1)
        if s == 0:
            xp.matmul(z, vt, out=total)
        else:
            total += xp.matmul(z, vt, out=win.scratch(xp, (36, o, c), dtype, "wg+"))
    G = xp.asarray(_G, dtype=xp.float64)  # (6, 3): dg = Gᵀ M G
    m = total.reshape(6, 6, o, c).astype(xp.float64)
    dg = xp.tensordot(xp.tensordot(G, m, axes=([0], [0])), G, axes=([1], [0]))  # (3, O, C, 3)
    return xp.ascontiguousarray(dg.transpose(1, 2, 0, 3)).reshape(o, c * 9)


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
