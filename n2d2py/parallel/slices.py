"""Micro-slices: a fixed cut of every learning batch, so that batch-summed results do not
depend on how the batch is spread over processes and threads.

A global batch of n stimuli is cut into ``MICRO_SLICES`` (8) slices, slice i holding the rows
``[i·n//8, (i+1)·n//8)``. Whatever sums over the batch is computed slice by slice, each slice
by the same code on the same rows, so that each slice's partial is bitwise the same in one
process with any number of worker threads and on N ranks; only the way the partials are added
could differ, and it is made not to matter:

- parameter gradients: a float32 partial per slice, added into the float64 ``Param.grad``
  (``add64``). A float64 sum of at most 8 float32 terms is exact unless the terms span more
  than 2^26 in magnitude, so in practice it is the same in any order, through the all-reduce
  too; the solver rounds it to float32 once (``Solver.update``).
- batch statistics (BatchNorm's sums and means): each slice's partial goes into its own slot
  of a (slices, ...) buffer, zeros elsewhere, the ranks all-reduce it (adding zeros only), and
  every process adds the slots in slice order (``exchange``): bitwise equal, whatever the
  partials' dtype.

Products over the rows of a batch (Fc, a convolution with few output pixels) are also taken
per micro-slice (``matmul``), so that a stimulus's outputs and input gradients do not depend on
the batch either (BLAS's results do depend on the number of rows of a GEMM).

Rank r of N computes slices ``[r·8/N, (r+1)·8/N)`` when N divides 8 (1, 2, 4, 8): exactly
rows ``[r·n//N, (r+1)·n//N)``, ``Group.part``'s. For other N (3, 5, 6, 7, more than 8) the
micro-slices are the ranks' own slices: each step's sums then differ from one process's by
float32 rounding, and learning may drift apart from it once a max-pooling or ReLU decision
flips (LeNet on 3 processes after 40 batches of 128: 2.4e-7 or 2.2e-2 from one process,
depending on OpenBLAS's kernels); rank 0 says so in one line at the start
(``parallel.start``). The worker threads of a process take unions of whole micro-slices
(``backend.split_batch``).
"""

from dataclasses import dataclass

from n2d2py import backend
from n2d2py.backend import array_module

MICRO_SLICES = 8


@dataclass(frozen=True)
class Cut:
    """This process's micro-slices of the batch being computed."""

    bounds: tuple  # ((a, b), ...): the local rows of each non-empty micro-slice, in order
    slots: tuple  # the index of each among the micro-slices of the global batch
    count: int  # micro-slices of the global batch
    rows: int  # stimuli of the global batch
    shared: bool  # the slices are spread over the ranks (an exchange all-reduces)

    def within(self, a, b):
        """The micro-slices inside the rows [a, b) (a chunk of whole slices)."""
        return [(s, e) for s, e in self.bounds if a <= s and e <= b]


def even(n, slices=MICRO_SLICES):
    """The bounds ``i·n//slices`` of a batch of n: (start, stop) pairs, empty ones included."""
    return [(i * n // slices, (i + 1) * n // slices) for i in range(slices)]


def _local(n):
    pairs = [(i, ab) for i, ab in enumerate(even(n)) if ab[1] > ab[0]]
    return Cut(tuple(ab for _, ab in pairs), tuple(i for i, _ in pairs), MICRO_SLICES, n, False)


def divides(size):
    """Whether N ranks compute whole micro-slices (results bitwise those of one process)."""
    return MICRO_SLICES % size == 0


def cut(device, n):
    """The micro-slices of a local batch of ``n`` rows on ``device`` (its group's slice of the
    learning batch under mpiexec)."""
    group = getattr(device, "group", None)
    batch = group.batch if group is not None else None
    if batch is None or batch.replicated or group.size == 1:
        return _local(n)
    if n != batch.hi - batch.lo:
        raise ValueError(f"a batch of {n} rows, not this rank's {batch.hi - batch.lo}")
    if not divides(group.size):
        return Cut(((0, n),), (group.rank,), group.size, batch.n, True)
    per = MICRO_SLICES // group.size
    first = group.rank * per
    pairs = [(i, (a - batch.lo, b - batch.lo)) for i, (a, b) in enumerate(even(batch.n))
             if first <= i < first + per and b > a]
    return Cut(tuple(ab for _, ab in pairs), tuple(i for i, _ in pairs), MICRO_SLICES,
               batch.n, True)


STACK_LIMIT = 1 << 20  # elements of the (slices, O, K) float32 partials ``matmul_sum`` stacks


def _stack(a, bounds):
    """The (slices, rows, ...) view of a C-contiguous ``a`` whose slices ``bounds`` are equal
    and cover it, when one matmul over the stack computes what the loop over the slices does
    (``backend.stack_gemm_is_loop``: numpy); else None. Saves a Python call per slice."""
    if not bounds:
        return None
    rows = bounds[0][1] - bounds[0][0]
    if (not backend.stack_gemm_is_loop(a) or not a.flags.c_contiguous
            or bounds[0][0] != 0 or bounds[-1][1] != len(a)
            or any(e - s != rows for s, e in bounds)):
        return None
    return a.reshape((len(bounds), rows) + tuple(a.shape[1:]))


# A right operand given as the transposed view of a C-contiguous matrix W (an Fc or a convolution
# forward's Wᵀ) with at least TRANSPOSED_ROWS elements: ``matmul`` computes each group's
# (W @ aᵀ)ᵀ, the rows of W as they are, rather than a @ (a contiguous copy of Wᵀ): a 1024×4096
# Fc layer's forward at batch 64 on one thread took 37 ms with the copy, 20 ms on the
# transposed view and 11 ms so; 1.2-1.9× faster down to 500×800 weights (smaller ones, such as
# LeNet's 120×400 conv3: one stacked GEMM on the copy, cheaper than a call per group).
TRANSPOSED_ROWS = 1 << 16


def matmul(xp, bounds, a, b):
    """``a @ b`` for a 2-D ``a`` whose rows belong to stimuli, one GEMM per (start, stop) group
    of rows in ``bounds``: BLAS's value for a row depends on how many rows its GEMM has
    (OpenBLAS picks its kernels and blocking by size), so GEMMs over a fixed cut give every
    stimulus the same result in every layout. On the CPU the groups run on the worker
    threads, a chunk of whole groups each."""
    backend.cpu_setup(a)
    bounds = list(bounds)
    rows = None  # W, when b is Wᵀ (see TRANSPOSED_ROWS)
    if (b.ndim == 2 and not b.flags.c_contiguous and b.T.flags.c_contiguous
            and b.size >= TRANSPOSED_ROWS):
        rows = b.T
    else:  # OpenBLAS's AVX-512 GEMMs of few rows with a transposed right operand (Wᵀ) ran
        b = xp.ascontiguousarray(b)  # 2.5× slower than with a contiguous copy of it
    out = xp.empty((a.shape[0], b.shape[1]), dtype=xp.result_type(a.dtype, b.dtype))

    def part(lo, hi):
        mine = [(s, e) for s, e in bounds if lo <= s and e <= hi]
        if rows is not None:
            for s, e in mine:
                out[s:e] = (rows @ a[s:e].T).T
            return
        stack = _stack(a[lo:hi], [(s - lo, e - lo) for s, e in mine])
        if stack is not None:
            xp.matmul(stack, b, out=out[lo:hi].reshape(stack.shape[:2] + (b.shape[1],)))
            return
        for s, e in mine:
            xp.matmul(a[s:e], b, out=out[s:e])

    tiled = [0] + [e for _, e in bounds] == [s for s, _ in bounds] + [len(a)]
    # a thread hand-off costs tens of µs: worth it from a few million multiply-adds
    work = a.size * b.shape[1] // backend.GEMM_WORK
    chunks = backend.split_batch(a, len(a), work, bounds) if tiled else [(0, len(a))]
    backend.run_split(chunks, part)
    return out


# Rows of the weight gradient computed at a time by ``matmul_sum``: each slice's float32 partial
# of ROW_BLOCK elements stays in the L2 cache until it is added (a 1024×4096 Fc layer's gradient
# over 8 slices of 8 rows: 29.8 → 19.2 ms on one thread; the same values).
ROW_BLOCK = 1 << 16


def matmul_sum(xp, bounds, a, b):
    """Σ over the slices ``bounds`` of ``a[s:e].T @ b[s:e]`` (a weight gradient), one float32
    GEMM per slice, added in float64. Large ones on the CPU go by blocks of rows of the result
    (``ROW_BLOCK``), the blocks on the worker threads: every slice's partial is still one GEMM
    per block, of a size fixed by the layer, so the sum does not depend on the threads."""
    backend.cpu_setup(a)
    o, k = a.shape[1], b.shape[1]
    kernels = backend.cpu_kernels(a)
    if kernels is not None and len(bounds) * o * k > STACK_LIMIT:
        return _blocked_sum(xp, kernels, bounds, a, b)
    stack_a, stack_b = _stack(a, bounds), _stack(b, bounds)
    if (stack_a is not None and stack_b is not None
            and len(bounds) * o * k <= STACK_LIMIT):
        parts = xp.matmul(stack_a.transpose(0, 2, 1), stack_b)
        if kernels is None:
            return parts.sum(axis=0, dtype=xp.float64)
        out = xp.zeros(parts[0].size, dtype=xp.float64)
        kernels.add_rows(parts.dtype)(parts.reshape(len(parts), -1), out)
        return out.reshape(parts.shape[1:])
    return add64(a[s:e].T @ b[s:e] for s, e in bounds)


def _blocked_sum(xp, kernels, bounds, a, b):
    """``matmul_sum`` on the CPU by blocks of rows of the (O, K) result: each slice's float32
    partial of a block, then their float64 sum into the block (``kernels.add_rows``)."""
    o, k = a.shape[1], b.shape[1]
    height = max(1, min(o, ROW_BLOCK // k))
    blocks = [(r, min(o, r + height)) for r in range(0, o, height)]
    total = xp.zeros((o, k), dtype=xp.float64)
    dtype = xp.result_type(a.dtype, b.dtype)
    add = kernels.add_rows(dtype)

    def part(lo, hi):
        parts = xp.empty((len(bounds), height, k), dtype=dtype)
        for top, bottom in blocks[lo:hi]:
            rows = parts if bottom - top == height else xp.empty(
                (len(bounds), bottom - top, k), dtype=dtype)
            for i, (s, e) in enumerate(bounds):
                xp.matmul(a[s:e, top:bottom].T, b[s:e], out=rows[i])
            add(rows.reshape(len(bounds), -1), total[top:bottom].reshape(-1))

    work = len(a) * o * k // backend.GEMM_WORK
    backend.run_split(backend.split_batch(total, len(blocks), work), part)
    return total


def add64(parts):
    """The float64 sum of float32 partials, in order (None for none), in the first one's
    memory layout."""
    total = None
    for part in parts:
        if total is None:
            total = part.astype(array_module(part).float64)
        else:
            add_into(total, part)
    return total


def add_chunks(totals):
    """The float64 sum, in order, of the worker threads' float64 totals: arrays the caller
    owns (each chunk's ``add64``), added into the first rather than into a copy of it (a
    512→512 3×3 layer's gradient is 19 MB, copied on one thread while the other waits)."""
    totals = list(totals)
    first = totals[0]
    if first.dtype != array_module(first).float64:
        return add64(totals)
    for part in totals[1:]:
        add_into(first, part)
    return first


def add_into(total, part):
    """total (float64) += part, of its shape: on the CPU by a compiled pass when their layouts
    match (split over the worker threads when large: a 128 → 128 Winograd layer's 4.7 MB of
    tile sums, the threads' totals, added while the other thread waited) or ``part`` is the
    transpose of ``total``'s (numpy's mixed-dtype add buffers, and its add of a transposed
    view strides through memory: 3-10× slower on large weight gradients). The same float64
    sums either way."""
    kernels = backend.cpu_kernels(part)
    if kernels is not None and part.shape == total.shape:
        if ((part.flags.c_contiguous and total.flags.c_contiguous)
                or (part.flags.f_contiguous and total.flags.f_contiguous)):
            add, src, dst = kernels.add_rows(part.dtype), part.ravel("K")[None], total.ravel("K")
            # on the worker threads when called outside them (a chunk's adds, inside one,
            # run on it): element by element, the same sums
            backend.run_split(backend.split_batch(dst, dst.size, dst.size),
                              lambda a, b: add(src[:, a:b], dst[a:b]))
            return total
        if part.ndim == 2 and part.T.flags.c_contiguous and total.flags.c_contiguous:
            kernels.add_transposed(part.dtype)(part.T, total)
            return total
    total += part
    return total


def exchange(device, cut_, partials):
    """The sum over every micro-slice of the global batch of ``partials`` (one array per
    slice of ``cut_``, of one shape), in float64, added in slice order: bitwise the same on
    every rank and in one process."""
    xp = array_module(partials[0])
    buf = xp.zeros((cut_.count,) + tuple(partials[0].shape), dtype=xp.float64)
    for slot, part in zip(cut_.slots, partials):
        buf[slot] = part
    if cut_.shared:
        device.group.comm.allreduce(buf)
    total = buf[0].copy()
    for i in range(1, cut_.count):
        total += buf[i]
    return total
