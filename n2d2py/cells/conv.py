"""2-D convolution (N2D2: ConvCell, spec §3.2) as im2col + GEMMs, one per image.

On the CPU the batch is split into one chunk of images per worker thread (``backend``); each
thread runs im2col and the GEMMs on groups of images in a reused buffer, and its backward
computes the same columns again for the partial weight gradients and the input gradient
through im2col's adjoint (CuPy keeps one chunk's columns instead). A 3×3 stride-1
convolution with enough channels and tiles (``_winograd.worth``) runs its forward, input
gradient and weight gradient by Winograd's F(4×4, 3×3) instead, without columns. The chunks are
unions of the batch's micro-slices (``parallel.slices``), and the work inside a chunk is
grouped slice by slice: the weight and bias gradients are float32 sums per micro-slice added
in float64, and every GEMM sees the same images whatever the threads and processes.

Keys, channel map, Params and weight files: ``cells.kernel.KernelCell``. Grouped and
depthwise maps (``mapping.even_groups``) are computed group by group (``_grouped``), never as
the dense masked GEMM. Stride-1 layers with 5×5 kernels or larger and few channel pairs
(LeNet's conv1 and conv2) run as direct convolutions, their Rectifier and bias inside the
kernels (``_direct``). A 1×1 convolution at stride 1 without padding reads its input as the
columns (no im2col copy) and writes its input gradient in place.
"""

from functools import cached_property

from n2d2py import backend
from n2d2py.backend import array_module
from n2d2py.cells import _direct, _grouped, _winograd
from n2d2py.cells import _windows as win
from n2d2py.cells.kernel import KERNEL_KEYS, KernelCell, check_window, masked
from n2d2py.cells.mapping import even_groups
from n2d2py.parallel import slices
from n2d2py.registry import CELLS

# A convolution runs one GEMM per image on im2col's (N, K, L) columns when each image has
# enough output pixels L to reuse its O×K weights (L ≥ 64, or L ≥ 16 with small weights);
# otherwise one GEMM over the (N·L, K) rows of the whole batch (a free reshape when L = 1).
# Measured: per image is 2-6× faster than one GEMM over the batch on LeNet's conv1/conv2,
# and 1.6-3× slower on 512×512×3×3 layers at 7×7 or 4×4 pixels (large weight gradients).
PER_IMAGE_MIN_PIXELS = 64
PER_IMAGE_SMALL_WEIGHTS = (16, 1 << 16)  # (pixels, O·K elements)
WEIGHT_GRAD_CHUNK = 1 << 18  # elements of the (images, K, O) weight-gradient temporary
# On the CPU the per-image path runs im2col and the GEMMs on groups of images whose columns
# fit in COLS_BUDGET elements (1 MiB of float32: they stay in the L2 cache, in a buffer reused
# by the thread), and the backward computes the columns again rather than keeping the whole
# batch's (a 32-channel 3×3 layer on 32×32 at batch 64 has 75 MB of them): measured 2-4×
# faster than one im2col of the chunk, and the step's peak memory falls with it.
COLS_BUDGET = 1 << 18
# Groups of images whose planes have at most INNER_PIXELS output pixels lay their columns side
# by side, (K, images·L) (``im2col(inner=True)``): the forward, the weight gradient and the
# input gradient's columns are then one GEMM per group, not one per image (per-image GEMMs
# with L = 64 pixels run at 150 GFLOP/s, a group of 3-4 images at 180-200; the weight gradient
# gains most: no per-image (K, O) products to add), for a transpose of the group's outputs,
# which small weights do not pay for. Small planes with large weights, which took one GEMM
# over the rows of a micro-slice, take it too (1.3-1.6× faster forward on 4×4 and 2×2 planes
# of 256-512 maps: no transposed copies of the columns).
INNER_PIXELS = 256
INNER_WEIGHTS = 1 << 14  # and O·K weights at least (LeNet's 16×150 conv2: 1.2× slower so)
TRANSPOSED_GRAD = 1 << 17  # O·K elements from which a group's weight gradient is made (O, K)
# Side by side, a group's columns are the N dimension of its GEMMs: OpenBLAS's SGEMM on
# (256, 2304) weights runs at 119 GFLOP/s with N = 64 and 150 with N = 256, so the groups of
# layers with at least LARGE_WEIGHTS weights may take 4 MiB of columns (a 256→256 8×8
# layer's learning step: 145 → 110 ms, 512→512 on 4×4: 160 → 124 ms; one thread, thread CPU
# time). Smaller ones keep COLS_BUDGET: their forward was 5-8 % slower with the larger
# groups (128→128 and 64→128 on 8×8). Groups stay within a micro-slice.
INNER_COLS_BUDGET = 1 << 20
LARGE_WEIGHTS = 1 << 18


def _image_step(x, o, k, pixels):
    """Images per im2col + GEMM group: on the CPU as many as keep their columns within
    COLS_BUDGET (INNER_COLS_BUDGET side by side with large weights), else None (CuPy: the
    whole chunk at once, columns kept for the backward)."""
    if backend.cpu_kernels(x) is None:
        return None
    large = _inner(o, k, pixels) and o * k >= LARGE_WEIGHTS
    budget = INNER_COLS_BUDGET if large else COLS_BUDGET
    return max(1, budget // (k * pixels))


def _groups(lo, hi, step):
    """(start, stop) groups of the images [lo, hi) (one micro-slice) of about ``step`` images
    each: the nearest whole number of groups, of equal sizes (16 images at a step of 13 make
    one group, not 13 + 3: every group costs a few calls)."""
    count = max(1, round((hi - lo) / step))
    return [(lo + (hi - lo) * i // count, lo + (hi - lo) * (i + 1) // count) for i in range(count)]


def _inner(o, k, pixels):
    """Whether a group's columns are laid side by side (see INNER_PIXELS)."""
    return 1 < pixels <= INNER_PIXELS and o * k >= INNER_WEIGHTS


def _per_image(o, k, pixels):
    few, small = PER_IMAGE_SMALL_WEIGHTS
    return pixels >= PER_IMAGE_MIN_PIXELS or (pixels >= few and o * k <= small)


def _rows(cols):
    """(N, K, L) → (N·L, K): a copy, or a free reshape when L = 1."""
    n, k, pixels = cols.shape
    return cols.transpose(0, 2, 1).reshape(n * pixels, k)


def _unrows(rows, n, pixels):
    """(N·L, O) → contiguous (N, O, L)."""
    out = rows.reshape(n, pixels, -1).transpose(0, 2, 1)
    return out.reshape(n, -1, 1) if pixels == 1 else array_module(rows).ascontiguousarray(out)


def _weight_grad(xp, dz, cols):
    """(Σₙ cols[n] (K, L) @ dz[n]ᵀ (L, O))ᵀ, per-image GEMMs summed over chunks of images so
    that the (images, K, O) temporary stays within WEIGHT_GRAD_CHUNK elements. With few pixels
    and K ≫ O, dz is first transposed into a contiguous copy: measured (OpenBLAS) 1.5× faster
    there than the transposed operand (LeNet's conv2), slower elsewhere (conv1 among them)."""
    n, o, pixels = dz.shape
    k = cols.shape[1]
    dzt = win.transpose_last(dz) if pixels <= 128 and k >= 8 * o else dz.transpose(0, 2, 1)
    step = max(1, WEIGHT_GRAD_CHUNK // (o * k))
    total = None
    for a in range(0, n, step):
        part = xp.matmul(cols[a : a + step], dzt[a : a + step]).sum(axis=0)
        total = part if total is None else total + part
    return total.T


@CELLS.register("Conv")
class ConvCell(KernelCell):
    """y = W ⊛ x + b over a (possibly partial) channel map."""

    _direct = None  # the forward's ``_direct.Plan`` when it took the direct path
    _winograd_plan = None  # the forward's ``_winograd.Plan`` when it took Winograd's

    def forward(self, xs, train=False):
        z = self._forward(xs, train)
        if self.activation is None or (self._direct is not None and self._direct.act):
            return z  # (the direct kernels ran the activation)
        return self.activation.forward(z)

    def backward(self, dy):
        if self._direct is not None and self._direct.act:  # and run its gradient
            return self._backward(dy)
        return super().backward(dy)

    def out_hw(self, in_hw):
        return [win.out_size(in_hw[i], self.kernel[i], self.stride[i], self.padding[i],
                             self.dilation[i]) for i in range(2)]

    @cached_property
    def _groups(self):
        """G > 1 when the channel map is G even groups (computed group by group), else 1."""
        return even_groups(self.mask)

    @classmethod
    def check_section(cls, sec, in_hw, kernel, stride, padding, dilation):
        if sec.dims("SubSample", 1) != (1, 1):
            raise sec.error("SubSample", "SubSample other than 1 is not supported yet")
        check_window(sec, "kernel", KERNEL_KEYS, in_hw, kernel, stride, padding, dilation)

    def _weight_matrix(self):
        w = masked(self.weights)
        return w.reshape(w.shape[0], -1)

    def _pointwise(self):
        """A 1×1 convolution at stride 1 without padding: its columns are its input."""
        return self.kernel == (1, 1) and self.stride == (1, 1) and self.padding == (0, 0)

    def _forward(self, xs, train):
        x = win.concat_channels(xs)
        n, (o, ho, wo) = x.shape[0], self.out_shape
        self._direct = self._winograd_plan = None  # set by the path this forward takes
        if self._groups > 1:
            return self._add_bias(_grouped.forward(self, x)).reshape((n,) + self.out_shape)
        if _direct.worth(self, x):  # few channels: no columns, no GEMMs
            y = self.xp.empty((n,) + self.out_shape, dtype=x.dtype)
            self._direct = _direct.forward(self, x, y)
            self._chunks, self._cut = self._direct.chunks, self._direct.cut
            return y
        w = self._weight_matrix()
        xp, k = self.xp, w.shape[1]
        y = xp.empty((n, o, ho * wo), dtype=xp.result_type(x.dtype, w.dtype))
        per_image = _per_image(o, k, ho * wo)
        pointwise = self._pointwise()
        grouped = (per_image or _inner(o, k, ho * wo)) and not pointwise
        step = _image_step(x, o, k, ho * wo) if grouped else None

        bias = None if self.bias is None else self.bias.data[:, None]

        def part(a, b):
            if step is not None:  # groups of images, columns in the thread's buffer
                for s, e in [g for ab in self._cut.within(a, b) for g in _groups(*ab, step)]:
                    self._group_forward(x[s:e], w, y[s:e])
                    if bias is not None:  # while the group's outputs are in the cache
                        y[s:e] += bias
                return None  # computed again in the backward
            if pointwise:
                cols = xp.ascontiguousarray(x[a:b]).reshape(b - a, x.shape[1], -1)
            else:
                cols = win.im2col(x[a:b], self.kernel, self.stride, self.padding, self.dilation)
            if per_image:  # one GEMM per image, (O, K) @ (K, L): NCHW as it comes
                xp.matmul(w, cols, out=y[a:b])
                return cols
            rows = _rows(cols)  # few output pixels: GEMMs on the (n·L, K) rows of a slice
            bounds = self._row_bounds(a, b) if train else [(0, len(rows))]
            y[a:b] = _unrows(slices.matmul(xp, bounds, rows, w.T), b - a, ho * wo)
            return rows

        self._x_shape, self._x, self._step = x.shape, x, step
        self._cut = slices.cut(self.device, n)
        self._chunks = backend.split_batch(x, n, y.size * k // backend.GEMM_WORK,
                                           self._cut.bounds)
        if step is not None and _winograd.for_forward(self, x):  # the backward: columns again
            self._winograd_plan = _winograd.forward(self, x, w.reshape(1, o, -1, 3, 3), y,
                                                    self._chunks, self._cut, bias)
            self._cols = [None] * len(self._chunks)
        else:
            self._cols = backend.run_split(self._chunks, part)
        if step is None:  # the grouped paths added it group by group
            self._add_bias(y)
        return y.reshape((n,) + self.out_shape)

    def _group_forward(self, x, w, y):
        """y (g, O, L) = w (O, K) @ the columns of the group of images x: one GEMM per image,
        or one for the group (INNER_PIXELS), in the thread's buffers."""
        xp, (g, o, pixels), k = self.xp, y.shape, w.shape[1]
        inner = _inner(o, k, pixels)
        shape = (k, g * pixels) if inner else (g, k, pixels)
        cols = win.im2col(x, self.kernel, self.stride, self.padding, self.dilation,
                          out=win.scratch(xp, shape, x.dtype), inner=inner)
        if inner:
            out = xp.matmul(w, cols, out=win.scratch(xp, (o, g * pixels), y.dtype, 1))
            y[...] = out.reshape(o, g, pixels).transpose(1, 0, 2)
        else:
            xp.matmul(w, cols, out=y)

    def _group_backward(self, x, w, dz, dx, slot):
        """The weight gradient (O, K) of the group of images x (in the thread's buffer
        ``slot`` where the group's columns are side by side), and its input gradient into
        ``dx`` unless None: the columns computed again, in the thread's buffers."""
        xp, (g, o, pixels), k = self.xp, dz.shape, w.shape[1]
        inner = _inner(o, k, pixels)
        shape = (k, g * pixels) if inner else (g, k, pixels)
        cols = win.im2col(x, self.kernel, self.stride, self.padding, self.dilation,
                          out=win.scratch(xp, shape, x.dtype), inner=inner)
        if inner:  # dz's images side by side too: (O, g·L)
            dzt = win.scratch(xp, (o, g, pixels), dz.dtype, 2)
            dzt[...] = dz.transpose(1, 0, 2)
            dz = dzt.reshape(o, g * pixels)
            # (K, O)ᵀ is the faster GEMM (up to 1.4× on small layers), (O, K) the faster sum
            # into the float64 gradient where it is large (no transpose to add)
            dtype = xp.result_type(cols.dtype, dz.dtype)
            if k * o >= TRANSPOSED_GRAD:
                dw = xp.matmul(dz, cols.T, out=win.scratch(xp, (o, k), dtype, slot))
            else:
                dw = xp.matmul(cols, dz.T, out=win.scratch(xp, (k, o), dtype, slot)).T
        else:
            dw = _weight_grad(xp, dz, cols)
        if dx is not None:
            dcols = xp.matmul(w.T, dz, out=win.scratch(xp, shape, dx.dtype, 1))
            win.im2col_backward(dcols, dx.shape, self.kernel, self.stride, self.padding,
                                self.dilation, out=dx, inner=inner)
        return dw

    def _add_bias(self, y):
        """y (N, O, L) + the bias: a pass over y, on the threads chunk by chunk."""
        if self.bias is not None:
            bias = self.bias.data[:, None]

            def add(a, b):
                y[a:b] += bias

            backend.run_split(self._chunks, add)
        return y

    def _backward(self, dz):
        xp, (n, o) = self.xp, dz.shape[:2]
        dz = dz.reshape(n, o, -1)
        pixels = dz.shape[2]
        want_dx = self.needs_input_grad and self.back_propagate
        if self._groups > 1:  # the diagonal blocks of the gradient, added in place
            dw, dx = _grouped.backward(self, dz, want_dx)
            _grouped.blocks(xp, self._groups, self.weights.grad)[...] += dw
            return self._accumulate(None, dz, dx)
        if self._direct is not None:
            dw, db, dx = _direct.backward(self, self._direct, dz.reshape((n,) + self.out_shape),
                                          want_dx)
            return self._accumulate(dw, dz, dx, db)
        w = self._weight_matrix()
        per_image = _per_image(o, w.shape[1], pixels)
        pointwise = self._pointwise() and per_image
        dx = None
        if want_dx:
            dx = xp.empty(self._x_shape, dtype=xp.result_type(dz.dtype, w.dtype))

        step, cut = self._step, self._cut
        winograd = None  # the input gradient as a Winograd convolution of dz
        if (dx is not None and step is not None and dx.dtype == dz.dtype
                and _winograd.for_input_gradient(self, self._x_shape, dz)):
            winograd = _winograd.input_gradient_plan(self, w.reshape(1, o, -1, 3, 3),
                                                     self._x_shape, dz.dtype)
        weights = None  # the weight gradient by Winograd too (when dx needs no columns)
        if (self._winograd_plan is not None and (dx is None or winograd is not None)
                and self._x.dtype == dz.dtype):
            weights = self._winograd_plan
            x_planes = xp.ascontiguousarray(self._x)
        if winograd is not None or weights is not None:
            dz_planes = xp.ascontiguousarray(dz).reshape((n,) + self.out_shape)

        def grouped(a, b):  # per micro-slice, groups of images in the thread's buffers
            total = None  # float64: the slices' float32 partials added in order
            for lo, hi in cut.within(a, b):
                if weights is not None:  # no columns: Winograd throughout
                    dw = _winograd.weight_gradient(xp, weights, x_planes[lo:hi],
                                                   dz_planes[lo:hi])
                    if winograd is not None:
                        _winograd.run(xp, winograd, dz_planes[lo:hi], dx[lo:hi])
                    total = slices.add64([dw]) if total is None else slices.add_into(total, dw)
                    continue
                dw = None
                for s, e in _groups(lo, hi, step):
                    into = None if dx is None or winograd is not None else dx[s:e]
                    part_dw = self._group_backward(self._x[s:e], w, dz[s:e], into,
                                                   "dw" if dw is None else "dw+")
                    if dw is None:
                        dw = part_dw
                    else:
                        dw += part_dw
                if winograd is not None:  # its GEMMs' groups of images start at the slice
                    _winograd.run(xp, winograd, dz_planes[lo:hi], dx[lo:hi])
                total = slices.add64([dw]) if total is None else slices.add_into(total, dw)
            return total

        def part(a, b, cols):
            if step is not None:
                return grouped(a, b)
            dzc = dz[a:b]
            if per_image:
                dw = slices.add64(_weight_grad(xp, dzc[s - a:e - a], cols[s - a:e - a])
                                  for s, e in cut.within(a, b))
            else:
                dzc = _rows(dzc)
                rows = self._row_bounds(a, b, pixels)
                dw = slices.matmul_sum(xp, rows, dzc, cols)
            if dx is not None and pointwise:  # the columns were the input itself
                xp.matmul(w.T, dzc, out=dx[a:b].reshape(b - a, -1, pixels))
            elif dx is not None:
                if per_image:
                    dcols = xp.matmul(w.T, dzc)  # (n, K, L)
                else:
                    dcols = slices.matmul(xp, rows, dzc, w)
                    dcols = dcols.reshape(b - a, pixels, -1).transpose(0, 2, 1)
                win.im2col_backward(dcols, dx[a:b].shape, self.kernel, self.stride,
                                    self.padding, self.dilation, out=dx[a:b])
            return dw

        dw = slices.add_chunks(backend.run_split(self._chunks, part, self._cols))  # float64
        if weights is not None:  # the sums of its tiles' products, (1, 36, O, C), not (O, K)
            dw = _winograd.weights_from_tiles(xp, dw)
        if self.weights.mask is not None:
            dw = dw.reshape(self.weights.shape) * self.weights.mask
        return self._accumulate(dw, dz, dx)

    def _row_bounds(self, a, b, pixels=None):
        """The micro-slices of the images [a, b) as rows of their (images·L, K) matrix."""
        pixels = pixels or self.out_shape[1] * self.out_shape[2]
        return [((s - a) * pixels, (e - a) * pixels) for s, e in self._cut.within(a, b)]

    def _accumulate(self, dw, dz, dx, db=None):
        """Add the weight gradient (float64, summed per micro-slice; (O, K) in either memory
        layout, or the weights' shape; None when the caller added it) and the bias gradient
        (``db``, summed likewise, or from dz); the input gradients, one per input."""
        grad, o = self.weights.grad, self.weights.shape[0]
        if dw is not None and grad.flags.c_contiguous:  # (O, K) is a view of it
            slices.add_into(grad.reshape(o, -1), dw.reshape(o, -1))
        elif dw is not None:
            grad += dw.reshape(grad.shape)
        if db is not None:
            self.bias.grad += db
        elif self.bias is not None:  # per micro-slice sums, the slices' chunks on the threads
            cut = self._cut
            sums = backend.run_split(self._chunks, lambda a, b: [
                dz[s:e].sum(axis=(0, 2)) for s, e in cut.within(a, b)])
            self.bias.grad += slices.add64(s for chunk in sums for s in chunk)
        if dx is None:
            return [None] * len(self.inputs)
        return win.split_channels(dx, self.channels)

    def nb_virtual_synapses(self):
        kh, kw = self.kernel
        return int(self.mask.sum()) * kh * kw * self.out_shape[1] * self.out_shape[2]
