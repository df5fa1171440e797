"""Transposed 2-D convolution (N2D2: DeconvCell, spec §3.3): GEMMs + im2col's adjoint.

Every input pixel (i, j) of channel c adds W[o, c]·x[c, i, j] to the output window that starts
at (i·stride, j·stride) (taps spaced by the dilation); ``Padding`` then crops that many rows
and columns on each side (a negative padding adds zeros). Output size per axis:
(in − 1)·stride + dilation·(kernel − 1) + 1 − 2·padding. This is PyTorch's conv_transpose2d
with its weight (C, O, kh, kw) = our W (O, C, kh, kw) with the first two axes swapped.

The parameter gradients are summed per micro-slice of the batch (``parallel.slices``) in
float64. Keys, channel map, Params and weight files as Conv's (``cells.kernel.KernelCell``); Deconv
adds the refusal of ``WeightsSharing``, ``BiasesSharing``, ``WeightsExportFlip`` and
``OutputsRemap``.
"""

from n2d2py.cells import _windows as win
from n2d2py.cells.kernel import KernelCell, masked
from n2d2py.parallel import slices
from n2d2py.registry import CELLS

_UNSUPPORTED = ("WeightsSharing", "BiasesSharing")


def deconv_size(size, kernel, stride, pad, dilation=1):
    """N2D2's Deconv output size along one axis."""
    return (size - 1) * stride + dilation * (kernel - 1) + 1 - 2 * pad


@CELLS.register("Deconv")
class DeconvCell(KernelCell):
    """y = Wᵀ-scatter of x + b over a (possibly partial) channel map."""

    def out_hw(self, in_hw):
        return [deconv_size(in_hw[i], self.kernel[i], self.stride[i], self.padding[i],
                            self.dilation[i]) for i in range(2)]

    @classmethod
    def check_section(cls, sec, in_hw, kernel, stride, padding, dilation):
        for key in _UNSUPPORTED:
            if sec.has(key):
                raise sec.error(key, f"{key} is not supported for Deconv yet")
        for axis, name in ((0, "height"), (1, "width")):
            size = deconv_size(in_hw[axis], kernel[axis], stride[axis], padding[axis],
                               dilation[axis])
            if size < 1:
                raise sec.error("Padding", f"padding {padding[axis]} leaves no output {name} "
                                f"(the {in_hw[0]}×{in_hw[1]} input gives {size})")
        cfg = sec.config
        for key in ("WeightsExportFlip", "OutputsRemap"):
            if cfg.get_str(key, "0" if key == "WeightsExportFlip" else "") not in ("", "0"):
                raise cfg.error(key, f"{key} is not supported yet")

    def _weight_matrix(self):
        """(O·kh·kw, C): rows in im2col's (channel, i, j) order of the output maps."""
        w = masked(self.weights)
        o, c, kh, kw = w.shape
        return w.transpose(0, 2, 3, 1).reshape(o * kh * kw, c)

    def _forward(self, xs, train):
        # The adjoint of a convolution from the output maps to the input ones: each input
        # pixel's column W·x is scattered back by im2col's adjoint (padding crops there).
        x = win.concat_channels(xs)
        n, c, h, w = self._x_shape = x.shape
        self._x = x.reshape(n, c, h * w)
        dcols = self.xp.matmul(self._weight_matrix(), self._x)  # (N, O·kh·kw, H·W)
        y = win.im2col_backward(dcols, (n,) + self.out_shape, self.kernel, self.stride,
                                self.padding, self.dilation)
        if self.bias is not None:
            y += self.bias.data[:, None, None]
        return y

    def _backward(self, dz):
        cols = win.im2col(dz, self.kernel, self.stride, self.padding, self.dilation)
        o, c, kh, kw = self.weights.shape
        bounds = slices.cut(self.device, len(dz)).bounds  # float32 sums per micro-slice
        dw = slices.add64(self.xp.tensordot(cols[a:b], self._x[a:b], axes=([0, 2], [0, 2]))
                          for a, b in bounds)  # (O·kh·kw, C)
        dw = dw.reshape(o, kh, kw, c).transpose(0, 3, 1, 2)
        if self.weights.mask is not None:
            dw = dw * self.weights.mask
        self.weights.grad += dw
        if self.bias is not None:
            self.bias.grad += slices.add64(dz[a:b].sum(axis=(0, 2, 3)) for a, b in bounds)
        if not (self.needs_input_grad and self.back_propagate):
            return [None] * len(self.inputs)
        dx = self.xp.matmul(self._weight_matrix().T, cols)  # (N, C, H·W)
        return win.split_channels(dx.reshape(self._x_shape), self.channels)

    def nb_virtual_synapses(self):
        kh, kw = self.kernel
        _, h, w = self.inputs[0].shape
        return int(self.mask.sum()) * kh * kw * h * w
