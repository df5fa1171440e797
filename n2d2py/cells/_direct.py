"""Conv's stride-1 convolutions with few channels computed directly on the CPU
(``kernels.direct``): the forward, the input gradient and the weight gradient, one compiled
call per chunk of the batch (per micro-slice for the weight gradient: a float32 partial per
slice, added in float64, ``parallel.slices``), no im2col columns and no GEMMs. A Rectifier
(LeakSlope ≥ 0) and the bias run inside the kernels too.

At LeNet's sizes im2col + GEMM spends its time in tiny GEMMs ((6, 25) @ (25, 784) per image
for conv1) and in the Python loop over groups of images, which also kept those layers on one
thread; the direct kernels run at 25-30 G multiply-adds/s on one core whatever the channel
counts (8-wide vectors, ``kernels.direct``), which OpenBLAS's GEMMs beat from 16 output maps
of a full map. Measured here (one thread, thread CPU time, batch 64 with a Rectifier; ms,
im2col + GEMM → direct, forward / learning step's backward):

    C → O, kernel, plane              forward        backward
    1 → 6, 5×5, 32×32 (LeNet conv1)   0.52 → 0.40    0.64 → 0.59 (no input gradient)
    6 → 16 LeNet map, 5×5, 14×14      0.81 → 0.54    1.75 → 1.64
    3 → 8, 5×5, 32×32                 1.51 → 1.28    3.97 → 3.17
    1 → 16, 5×5, 32×32                0.91 → 1.07    1.93 → 2.72
    6 → 16 full map, 5×5, 14×14       0.81 → 0.82    1.83 → 2.40
    16 → 16, 5×5, 14×14               1.93 → 1.90    3.91 → 5.69

hence ``worth``: at most MAX_OUTPUTS maps of a full map, or a partial map (the GEMM
multiplies its zeros, the direct kernels skip them), within MAX_PAIRS channel pairs. 3×3
kernels measured 10 % slower in the forward in some cases (each channel's sum of 9 terms
reads and writes the plane's accumulator) and are left to im2col and Winograd (MIN_AREA).
On two threads the batch is split from DIRECT_WORK·MIN_CHUNK_WORK multiply-adds (both of
LeNet's layers): LeNet's learning step 5.4 → 4.9 ms per batch of 64, inference unchanged.
"""
from dataclasses import dataclass

import numpy as np

from n2d2py import backend
from n2d2py.activations import Rectifier
from n2d2py.parallel import slices

MAX_PAIRS = 64  # mapped (output, input) channel pairs
MAX_OUTPUTS = 8  # output maps of a full channel map (a partial one: MAX_PAIRS only)
MIN_AREA = 25  # kernel offsets (5×5 and more)
MIN_WIDTH = 8  # output pixels per row: a narrower row fills less than one vector (unmeasured)
DIRECT_WORK = 8  # multiply-adds per elementary operation: a split from 2 M of them


@dataclass(frozen=True)
class Plan:
    """What a forward kept for its backward."""

    x: object  # the input (N, C, H, W)
    y: object  # the output (N, O, Ho, Wo)
    chunks: list  # the batch's chunks on the threads
    cut: object  # the micro-slices (``parallel.slices.Cut``)
    act: int  # 1: the kernels ran the activation (and run its gradient), else 0


def worth(cell, x):
    """Whether the convolution of ``cell`` on ``x`` runs here (see the module's docstring)."""
    o, ho, wo = cell.out_shape
    pairs = int(cell.mask.sum())
    return (backend.cpu_kernels(x) is not None and cell.stride == (1, 1)
            and x.dtype in (np.float32, np.float64) and x.dtype == cell.weights.data.dtype
            and wo >= MIN_WIDTH and ho * wo > 1
            and cell.kernel[0] * cell.kernel[1] >= MIN_AREA and pairs <= MAX_PAIRS
            and (o <= MAX_OUTPUTS or pairs < cell.mask.size))


def _table(mask):
    """(starts, chans): output o reads the channels chans[starts[o]:starts[o + 1]]."""
    starts = np.zeros(mask.shape[0] + 1, dtype=np.int64)
    starts[1:] = np.cumsum(mask.sum(axis=1))
    return starts, np.nonzero(mask)[1].astype(np.int64)


def _tables(cell):
    """The channel map's lists for the forward and for the input gradient (transposed)."""
    tables = cell.__dict__.get("_direct_tables")
    if tables is None:
        tables = cell.__dict__["_direct_tables"] = (_table(cell.mask), _table(cell.mask.T))
    return tables


def _kernel(kernels, name, cell, act, hw, dtype):
    """The compiled kernel ``name`` for the cell's window on input planes of ``hw``."""
    return getattr(kernels, name)(*cell.kernel, *cell.dilation, *cell.padding, *hw,
                                  np.dtype(dtype), act)


def _activation(cell, dtype):
    """(act, leak, clip) for the kernels: act 1 when they run the cell's activation (a
    Rectifier with LeakSlope ≥ 0, ``kernels.direct``), else 0 (none, or the cell runs it)."""
    act = cell.activation
    if type(act) is Rectifier and act.leak_slope >= 0:
        return 1, dtype.type(act.leak_slope), dtype.type(act.clipping)
    return 0, dtype.type(0), dtype.type(0)


def forward(cell, x, y):
    """y (N, O, Ho, Wo) = the convolution of x, bias included, and the activation when the
    kernels run it (``Plan.act``); returns the backward's Plan."""
    n, xp = x.shape[0], cell.xp
    kernels = backend.cpu_kernels(x)
    x = xp.ascontiguousarray(x)
    (starts, chans), _ = _tables(cell)
    act, leak, clip = _activation(cell, x.dtype)
    run = _kernel(kernels, "direct_conv", cell, act, x.shape[2:], x.dtype)
    weights = xp.ascontiguousarray(cell.weights.data)
    bias = (xp.zeros(y.shape[1], x.dtype) if cell.bias is None  # (one signature per kernel)
            else xp.ascontiguousarray(cell.bias.data, dtype=x.dtype))

    def part(a, b):
        run(x[a:b], weights, bias, starts, chans, leak, clip, y[a:b])

    cut = slices.cut(cell.device, n)
    macs = y.size // y.shape[1] * int(starts[-1]) * cell.kernel[0] * cell.kernel[1]
    chunks = backend.split_batch(x, n, macs // DIRECT_WORK, cut.bounds)
    backend.run_split(chunks, part)
    return Plan(x, y, chunks, cut, act)


def backward(cell, plan, dy, want_dx):
    """(dw (O, C, kh, kw), db (O,) or None, both float64 summed per micro-slice, dx or None)
    for dy (N, O, Ho, Wo): the gradient of the outputs after the activation when the kernels
    ran it, else before."""
    x, cut, xp = plan.x, plan.cut, cell.xp
    kernels = backend.cpu_kernels(dy)
    dy = xp.ascontiguousarray(dy, dtype=x.dtype)
    y = plan.y if plan.act else dy
    (starts, chans), (starts_t, chans_t) = _tables(cell)
    _, leak, clip = _activation(cell, x.dtype)
    run_dw = _kernel(kernels, "direct_conv_weights", cell, plan.act, x.shape[2:], x.dtype)
    dx = run_dx = flipped = None
    if want_dx:
        run_dx = _kernel(kernels, "direct_conv_input", cell, plan.act, x.shape[2:], x.dtype)
        flipped = xp.ascontiguousarray(cell.weights.data[:, :, ::-1, ::-1].transpose(1, 0, 2, 3))
        dx = xp.empty(x.shape, dtype=x.dtype)
    shape, outputs = cell.weights.shape, dy.shape[1]

    def part(a, b):
        total = None  # float64 (O·C·kh·kw + O): the slices' float32 partials added in order
        for s, e in cut.within(a, b):
            sums = xp.empty(shape[0] * shape[1] * shape[2] * shape[3] + outputs, x.dtype)
            gw, gb = sums[:-outputs].reshape(shape), sums[-outputs:]
            run_dw(dy[s:e], y[s:e], leak, clip, x[s:e], starts, chans, gw, gb)
            total = slices.add64([sums]) if total is None else slices.add_into(total, sums)
        if dx is not None:
            run_dx(dy[a:b], y[a:b], leak, clip, flipped, starts_t, chans_t, dx[a:b])
        return total

    total = slices.add_chunks(backend.run_split(plan.chunks, part))
    db = None if cell.bias is None else total[-outputs:]
    return total[:-outputs].reshape(shape), db, dx
