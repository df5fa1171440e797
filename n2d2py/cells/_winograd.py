"""Conv's 3×3, stride-1 convolutions by Winograd's F(4×4, 3×3) on the CPU.

Per group of images: the input transform (``kernels.winograd``), 36 GEMMs (O, C) @ (C, tiles)
of the transformed weights U = G g Gᵀ by the transformed input, the output transform; 36
multiplications per 4×4 output tile and channel where im2col + GEMM does 144, and no columns.
Conv uses it for its forward, for its input gradient (the same convolution of dz by the
kernels flipped and transposed, padded by 2 − p) and for its weight gradient:
Gᵀ [Σ_tiles (A dY Aᵀ) ⊙ (Bᵀ d B)] G, 36 GEMMs (O, tiles) @ (tiles, C).

Measured by ``benchmarks/conv_layers.py`` (one core, thread CPU time; 64 images, 32 at 56×56,
28×28, 14×14 and 512 → 512; im2col + GEMM time over Winograd's, Winograd forced on):

    C → O, plane         forward   step        C → O, plane          forward   step
    32 → 32, 32×32       2.11×     1.91×       64 → 128, 8×8         2.00×     1.61×
    32 → 64, 16×16       2.00×     1.63×       128 → 128, 8×8        2.61×     2.01×
    64 → 64, 16×16       2.30×     1.97×       256 → 256, 8×8        2.23×     1.54×
    128 → 128, 16×16     2.46×     2.13×       64 → 64, 56×56        2.55×     2.07×
    64 → 64, 12×12       2.32×     2.01×       64 → 64, 28×28        2.28×     1.99×
    32 → 32, 14×14       1.67×     1.53×       128 → 128, 14×14      1.85×     1.60×
    16 → 16, 32×32       1.75×     1.77×       8 → 8, 32×32          1.31×     1.35×
    8 → 8, 16×16         1.00×     1.05×       4 → 16, 32×32         0.86×     0.79×
    64 → 64, 4×4         1.78×     1.19×       256 → 256, 4×4        2.48×     0.76×
    128 → 128, 4×4       1.49×     1.08×       512 → 512, 8×8 (32)   1.32×     0.94×

(F(2×2, 3×3), used before: 1.45× / 1.36× on 32 → 32 at 32×32, 0.62× / 0.86× at 128 → 128
on 8×8.) Its GEMMs take a micro-slice's tiles at most (``parallel.slices``: the same images
whatever the threads), which small planes and small batches make few: U (36·O·C) is then
streamed for little work, and the weight gradient's sums are short (512 → 512 on 8×8 with 4
images a slice, 16 tiles: 0.94×; 4×4 planes of 256 maps: 0.76×). Hence ``worth``: 8 summed
channels or more (4 lose), planes of 8×8 or more, and 32 tiles or more in a micro-slice (8×8
at batch 64). The transforms multiply by up to 8 and the weights by 1/24: the rounding differs
from the direct sums by a few 1e-6 relative in float32 (1e-15 in float64); values are
compared with im2col's, PyTorch's and finite differences in tests/cells/test_winograd.py.
"""

import math
from dataclasses import dataclass

from n2d2py import backend
from n2d2py.cells import _windows as win
from n2d2py.parallel import slices

MIN_PIXELS = 8 * 8  # planes (of the convolution's output) that take it
MIN_CHANNELS = 8  # summed channels: thinner GEMMs do not pay for the transforms
MIN_SLICE_TILES = 32  # tiles of a micro-slice: its GEMMs' N, or K for the weight gradient
# Tiles per GEMM: smaller planes take several images at a time. 128 rather than 64 since the
# transforms vectorise: a ResNet learning step at 2 threads 5 % faster (half the per-group calls
# from Python, which the two threads take the GIL for), the same at one thread and on VGG.
MIN_TILES = 128
OUTPUT_CHUNK = 1024  # tiles the output transform takes at a time (its sums stay in L1/L2)


def _window(cell):
    return (cell.kernel == (3, 3) and cell.stride == (1, 1) and cell.dilation == (1, 1)
            and min(cell.padding) >= 0)


def worth(summed, plane, images):
    """Whether a convolution summing ``summed`` channels into maps of ``plane`` (H, W), its
    GEMMs taking ``images`` images at most (a micro-slice), is faster here than im2col + GEMM
    (see the module's table)."""
    return (summed >= MIN_CHANNELS and plane[0] * plane[1] >= MIN_PIXELS
            and images * tiles(*plane)[2] >= MIN_SLICE_TILES)


def _slice_images(cell, n):
    """Images in the largest micro-slice of ``cell``'s batches of ``n`` (``parallel.slices``)."""
    return max((b - a for a, b in slices.cut(cell.device, n).bounds), default=0)


def for_forward(cell, x):
    """Whether the forward of ``cell`` on ``x`` (N, C, H, W) runs here (and so its weight
    gradient, over the same tiles); a grouped cell sums C/G channels."""
    return (backend.cpu_kernels(x) is not None and _window(cell)
            and worth(x.shape[1] // cell._groups, cell.out_shape[1:],
                      _slice_images(cell, x.shape[0])))


def for_input_gradient(cell, x_shape, dz):
    """Whether the input gradient (of the input shape ``x_shape``) runs here: a convolution
    of dz's O maps (O/G for a grouped cell) into the input's C channels."""
    return (backend.cpu_kernels(dz) is not None and _window(cell) and max(cell.padding) <= 2
            and worth(cell.out_shape[0] // cell._groups, x_shape[2:],
                      _slice_images(cell, x_shape[0])))


def tiles(ho, wo):
    """(th, tw, R): rows of tiles, tiles per row, and tiles per plane."""
    th, tw = -(-ho // 4), -(-wo // 4)
    return th, tw, th * tw


@dataclass
class Plan:
    """One convolution to run: transformed weights, padding, tiles, images per GEMM."""

    u: object  # (G, 36, O/G, C/G): G = 1, or the even groups of a grouped convolution
    padding: tuple
    out_hw: tuple
    th: int
    tw: int
    span: int  # tiles per plane, R
    group: int


def _by_maps(kernel, a, out, maps):
    """kernel(a[g], out[g], o0, o1) over every group g and its output maps [0, maps), the
    (group, map) pairs split over the worker threads in one split (the transforms of U and of
    its gradient: a 128 → 128 layer's U is 0.25 ms, 2.4 MB written, on each batch; a split
    per group would cost a hand-over each)."""

    def part(lo, hi):
        for g in range(lo // maps, -(-hi // maps)):
            kernel(a[g], out[g], max(lo - g * maps, 0), min(hi - g * maps, maps))

    backend.run_split(backend.split_batch(out, len(out) * maps, out.size * 4), part)


def plan(xp, w, padding, out_hw, dtype):
    """The Plan of a convolution by ``w`` (G, O/G, C/G, 3, 3) (G = 1 for a dense one, else
    the diagonal blocks of a grouped one): U = G g Gᵀ in float64, rounded once
    (``kernels.winograd.kernel_transform``)."""
    groups, o, c = w.shape[:3]
    u = xp.empty((groups, 36, o, c), dtype=dtype)
    w = xp.ascontiguousarray(w)
    _by_maps(backend.cpu_kernels(u).winograd_kernels(w.dtype, u.dtype), w, u, o)
    th, tw, span = tiles(*out_hw)
    return Plan(u, tuple(padding), tuple(out_hw), th, tw, span,
                max(1, -(-MIN_TILES // span)))


def _buffers(xp, shapes, dtypes, slots):
    """One flat scratch buffer for each of ``shapes`` (the largest a group needs): groups take
    their arrays from them with ``_take``, without a ``scratch`` call each."""
    return [win.scratch(xp, (math.prod(shape),), dtype, slot)
            for shape, dtype, slot in zip(shapes, dtypes, slots)]


def _take(buf, shape):
    return buf[:math.prod(shape)].reshape(shape)


def _gemms(xp, u, v, out):
    """out[ξ] = U[ξ] @ V[ξ] for the 36 positions ξ: one stacked GEMM, or with G groups the
    diagonal blocks, (O/G, C/G) @ V[ξ]'s rows of group g (C/G, tiles) into out's (O/G, tiles)."""
    groups, _, og, cg = u.shape
    if groups == 1:
        return xp.matmul(u[0], v, out=out)
    for g in range(groups):
        xp.matmul(u[g], v[:, g * cg:(g + 1) * cg], out=out[:, g * og:(g + 1) * og])
    return out


def run(xp, p, x, y, bias=None):
    """y (n, O, Ho, Wo) = the convolution planned in ``p`` of x (n, C, H, W), plus ``bias``
    (O, 1) when given, on the calling thread (its scratch buffers)."""
    kernels = backend.cpu_kernels(x)
    before = kernels.winograd_input(*p.padding, x.dtype)
    after = kernels.winograd_output(y.dtype)
    o, c = y.shape[1], x.shape[1]
    shift = (xp.zeros(o, y.dtype) if bias is None
             else xp.ascontiguousarray(bias.reshape(-1), dtype=y.dtype))
    chunk = max(1, OUTPUT_CHUNK // p.span)  # planes of the output transform at a time
    most = p.group * p.span
    rows, v, m, sums, rows_out = _buffers(
        xp, [(12, c * 4 * most + 8), (36, c, most), (36, o, most), (6, 4, chunk * p.span),
             (4, chunk * 4 * p.span)], [x.dtype, x.dtype, y.dtype, y.dtype, y.dtype],
        [0, 1, 4, 2, 3])
    sums = _take(sums, (6, 4, chunk * p.span))
    rows_out = _take(rows_out, (4, chunk * 4 * p.span))
    for s in range(0, x.shape[0], p.group):
        e = min(x.shape[0], s + p.group)
        size = (e - s) * p.span
        vs = _take(v, (36, c, size))
        ms = _take(m, (36, o, size))
        before(x[s:e], p.th, p.tw, _take(rows, (12, c * 4 * size + 8)), vs.reshape(36, -1))
        _gemms(xp, p.u, vs, ms)
        after(ms.reshape(36, -1), p.th, p.tw, sums, rows_out, shift, y[s:e])
    return y


def weight_gradient(xp, p, x, dz):
    """Σ over the tiles of the images x (n, C, H, W) and their output gradients dz
    (n, O, Ho, Wo) of z[ξ] (O, tiles) @ V[ξ]ᵀ (tiles, C), (G, 36, O/G, C/G) in float32 (the
    diagonal blocks with G groups; one micro-slice: the caller adds the slices in float64,
    then ``weights_from_tiles``), on the calling thread, in its scratch buffer (valid until
    its next call). ``p`` is the forward's Plan. A third of im2col's multiplications, and no
    columns."""
    kernels = backend.cpu_kernels(x)
    before = kernels.winograd_input(*p.padding, x.dtype)
    transform = kernels.winograd_gradient(dz.dtype)
    groups, _, og, cg = p.u.shape
    o, c = dz.shape[1], x.shape[1]
    dtype = xp.result_type(x.dtype, dz.dtype)
    most = p.group * p.span
    rows, v, z, rows_dz, total, part = _buffers(
        xp, [(12, c * 4 * most + 8), (36, c, most), (36, o, most), (6, o * 4 * most + 8),
             p.u.shape, p.u.shape], [x.dtype, x.dtype, dz.dtype, dz.dtype, dtype, dtype],
        [0, 1, 4, 2, "wg", "wg+"])
    total, part = _take(total, p.u.shape), _take(part, p.u.shape)
    for s in range(0, x.shape[0], p.group):
        e = min(x.shape[0], s + p.group)
        size = (e - s) * p.span
        vs, zs = _take(v, (36, c, size)), _take(z, (36, o, size))
        before(x[s:e], p.th, p.tw, _take(rows, (12, c * 4 * size + 8)), vs.reshape(36, -1))
        transform(dz[s:e], p.th, p.tw, _take(rows_dz, (6, o * 4 * size + 8)),
                  zs.reshape(36, -1))
        into = total if s == 0 else part
        for g in range(groups):
            xp.matmul(zs[:, g * og:(g + 1) * og], vs[:, g * cg:(g + 1) * cg].transpose(0, 2, 1),
                      out=into[g])
        if s:
            total += part
    return total


def weights_from_tiles(xp, m):
    """The weights' gradient (G, O/G, C/G·9), float64, from its tiles' m (G, 36, O/G, C/G)
    float64: Gᵀ m G (``kernels.winograd.kernel_gradient``)."""
    groups, _, o, c = m.shape
    dw = xp.empty((groups, o, c * 9))
    m = xp.ascontiguousarray(m, dtype=xp.float64)
    _by_maps(backend.cpu_kernels(dw).winograd_kernel_gradient(dw.dtype), m, dw, o)
    return dw


def forward(cell, x, w, y, chunks, cut, bias=None):
    """y (N, O, Ho·Wo) = ``cell``'s convolution of x by ``w`` (G, O/G, C/G, 3, 3) (G = 1:
    dense; + ``bias``, (O, 1)), the batch split in ``chunks`` over the worker threads, each
    run micro-slice by micro-slice of ``cut`` (``parallel.slices``: a GEMM's groups of images,
    and so its values, are then the same whatever the threads and processes). Returns the
    Plan."""
    xp = cell.xp
    o, ho, wo = cell.out_shape
    p = plan(xp, w, cell.padding, (ho, wo), x.dtype)
    x = xp.ascontiguousarray(x)
    planes = y.reshape(x.shape[0], o, ho, wo)
    backend.run_split(chunks, lambda a, b: [run(xp, p, x[s:e], planes[s:e], bias)
                                            for s, e in cut.within(a, b)])
    return p


def input_gradient_plan(cell, w, x_shape, dtype):
    """The Plan of the input gradient: dz convolved by w (G, O/G, C/G, 3, 3) flipped in
    space and transposed (G, C/G, O/G, 3, 3), padded by 2 − p, gives dx (N, C, H, W)."""
    flipped = w[:, :, :, ::-1, ::-1].transpose(0, 2, 1, 3, 4)
    padding = (2 - cell.padding[0], 2 - cell.padding[1])
    return plan(cell.xp, flipped, padding, tuple(x_shape[2:]), dtype)
