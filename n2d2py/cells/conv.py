"""2-D convolution (N2D2: ConvCell, spec §3.2) as im2col + GEMMs, one per image.

On the CPU the batch is split into one chunk of images per worker thread (``backend``); the
columns of each chunk are kept for the backward, where the same chunks give the partial
weight gradients (summed in chunk order) and the input gradient through im2col's adjoint.

Keys, channel map, Params and weight files: ``cells.kernel.KernelCell``. Grouped/depthwise
maps take the dense masked path for now: correct, but G times the work of a true grouped GEMM.
"""

from n2d2py import backend
from n2d2py.backend import array_module
from n2d2py.cells import _windows as win
from n2d2py.cells.kernel import KERNEL_KEYS, KernelCell, check_window, masked
from n2d2py.registry import CELLS

# A convolution runs one GEMM per image on im2col's (N, K, L) columns when each image has
# enough output pixels L to reuse its O×K weights (L ≥ 64, or L ≥ 16 with small weights);
# otherwise one GEMM over the (N·L, K) rows of the whole batch (a free reshape when L = 1).
# Measured: per image is 2-6× faster than one GEMM over the batch on LeNet's conv1/conv2,
# and 1.6-3× slower on 512×512×3×3 layers at 7×7 or 4×4 pixels (large weight gradients).
PER_IMAGE_MIN_PIXELS = 64
PER_IMAGE_SMALL_WEIGHTS = (16, 1 << 16)  # (pixels, O·K elements)
WEIGHT_GRAD_CHUNK = 1 << 18  # elements of the (images, K, O) weight-gradient temporary


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

    def out_hw(self, in_hw):
        return [win.out_size(in_hw[i], self.kernel[i], self.stride[i], self.padding[i],
                             self.dilation[i]) for i in range(2)]

    @classmethod
    def check_section(cls, sec, in_hw, kernel, stride, padding, dilation):
        if sec.dims("SubSample", 1) != (1, 1):
            raise sec.error("SubSample", "SubSample other than 1 is not supported yet")
        check_window(sec, "kernel", KERNEL_KEYS, in_hw, kernel, stride, padding, dilation)

    def _weight_matrix(self):
        w = masked(self.weights)
        return w.reshape(w.shape[0], -1)

    def _forward(self, xs, train):
        x = win.concat_channels(xs)
        n, (o, ho, wo) = x.shape[0], self.out_shape
        w = self._weight_matrix()
        y = self.xp.empty((n, o, ho * wo), dtype=self.xp.result_type(x.dtype, w.dtype))
        per_image = _per_image(o, w.shape[1], ho * wo)

        def part(a, b):
            cols = win.im2col(x[a:b], self.kernel, self.stride, self.padding, self.dilation)
            if per_image:  # one GEMM per image, (O, K) @ (K, L): NCHW as it comes
                self.xp.matmul(w, cols, out=y[a:b])
                return cols
            rows = _rows(cols)  # few output pixels: one GEMM on the (n·L, K) rows
            y[a:b] = _unrows(rows @ w.T, b - a, ho * wo)
            return rows

        self._x_shape = x.shape
        self._chunks = backend.split_batch(x, n, y.size * w.shape[1])
        self._cols = backend.run_split(self._chunks, part)
        if self.bias is not None:
            y += self.bias.data[:, None]
        return y.reshape((n,) + self.out_shape)

    def _backward(self, dz):
        xp, (n, o) = self.xp, dz.shape[:2]
        dz = dz.reshape(n, o, -1)
        pixels = dz.shape[2]
        w = self._weight_matrix()
        per_image = _per_image(o, w.shape[1], pixels)
        dx = None
        if self.needs_input_grad and self.back_propagate:
            dx = xp.empty(self._x_shape, dtype=xp.result_type(dz.dtype, w.dtype))

        def part(a, b, cols):
            dzc = dz[a:b]
            if per_image:
                dw = _weight_grad(xp, dzc, cols)
            else:
                dzc = _rows(dzc)
                dw = dzc.T @ cols
            if dx is not None:
                if per_image:
                    dcols = xp.matmul(w.T, dzc)  # (n, K, L)
                else:
                    dcols = (dzc @ w).reshape(b - a, pixels, -1).transpose(0, 2, 1)
                win.im2col_backward(dcols, dx[a:b].shape, self.kernel, self.stride,
                                    self.padding, self.dilation, out=dx[a:b])
            return dw

        dw = sum(backend.run_split(self._chunks, part, self._cols)).reshape(self.weights.shape)
        if self.weights.mask is not None:
            dw *= self.weights.mask
        self.weights.grad += dw
        if self.bias is not None:
            self.bias.grad += dz.sum(axis=(0, 2))
        if dx is None:
            return [None] * len(self.inputs)
        return win.split_channels(dx, self.channels)

    def nb_virtual_synapses(self):
        kh, kw = self.kernel
        return int(self.mask.sum()) * kh * kw * self.out_shape[1] * self.out_shape[2]
