"""Transposed 2-D convolution (N2D2: DeconvCell, spec §3.3): GEMMs + im2col's adjoint.

Every input pixel (i, j) of channel c adds W[o, c]·x[c, i, j] to the output window that starts
at (i·stride, j·stride) (taps spaced by the dilation); ``Padding`` then crops that many rows
and columns on each side (a negative padding adds zeros). Output size per axis:
(in − 1)·stride + dilation·(kernel − 1) + 1 − 2·padding. This is PyTorch's conv_transpose2d
with its weight (C, O, kh, kw) = our W (O, C, kh, kw) with the first two axes swapped.

Keys as Conv: Kernel*/Stride*/Padding*/Dilation*, ``NbOutputs``, fillers, ``Mapping*`` (one
row of the map per output map, masked like Conv) and the config keys ``NoBias``,
``BackPropagate``, ``WeightsExportFormat`` (OCHW only). Weight files are laid out as Conv's:
one line per output map, the kernels of its connected channels.
"""

import numpy as np

from n2d2py.activations import make_activation
from n2d2py.cells import _windows as win
from n2d2py.cells.base import Cell, Param, same_spatial_size
from n2d2py.cells.conv import masked, read_kernel_config, read_window_keys, read_window_size
from n2d2py.cells.mapping import build_mapping, nb_groups, read_groups
from n2d2py.errors import N2D2PyError
from n2d2py.fillers import NormalFiller, make_filler
from n2d2py.registry import CELLS

_KERNEL_KEYS = ("KernelDims", "KernelSize", "Kernel", "KernelWidth", "KernelHeight")
_UNSUPPORTED = ("WeightsSharing", "BiasesSharing")


def deconv_size(size, kernel, stride, pad, dilation=1):
    """N2D2's Deconv output size along one axis."""
    return (size - 1) * stride + dilation * (kernel - 1) + 1 - 2 * pad


@CELLS.register("Deconv")
class DeconvCell(Cell):
    """y = Wᵀ-scatter of x + b over a (possibly partial) channel map."""

    def __init__(self, name, inputs, device, nb_outputs, kernel, stride=(1, 1), padding=(0, 0),
                 dilation=(1, 1), masks=None, weights_filler=None, bias_filler=None,
                 no_bias=False, activation=None, groups=1, back_propagate=True):
        in_hw = inputs[0].shape[1:]
        out_hw = [deconv_size(in_hw[i], kernel[i], stride[i], padding[i], dilation[i])
                  for i in range(2)]
        super().__init__(name, inputs, (nb_outputs, *out_hw), device, activation)
        self.kernel, self.stride = tuple(kernel), tuple(stride)
        self.padding, self.dilation = tuple(padding), tuple(dilation)
        self.channels = [p.shape[0] for p in inputs]
        if masks is None:
            masks = [np.ones((nb_outputs, c), dtype=bool) for c in self.channels]
        self.mask = np.concatenate(masks, axis=1)  # host (O, C_total)
        self.back_propagate = back_propagate
        kh, kw = self.kernel
        fan_in = kh * kw * sum(self.channels) // max(groups, 1)
        fan_out = kh * kw * nb_outputs
        self.weights = Param(
            "weights", (nb_outputs, sum(self.channels), kh, kw),
            weights_filler or NormalFiller(0.0, 0.05), "Weights", fan_in, fan_out,
            None if self.mask.all() else self.mask[:, :, None, None],
        )
        self.bias = None if no_bias else Param(
            "bias", (nb_outputs,), bias_filler or NormalFiller(0.0, 0.05), "Bias", fan_in, fan_out
        )

    @classmethod
    def from_section(cls, sec, inputs, device):
        for key in _UNSUPPORTED:
            if sec.has(key):
                raise sec.error(key, f"{key} is not supported for Deconv yet")
        nb_outputs, kernel = read_window_size(sec, "Kernel", _KERNEL_KEYS, "kernel")
        stride, padding, dilation = read_window_keys(sec)
        in_hw = same_spatial_size(sec, inputs)
        for axis, name in ((0, "height"), (1, "width")):
            size = deconv_size(in_hw[axis], kernel[axis], stride[axis], padding[axis],
                               dilation[axis])
            if size < 1:
                raise sec.error("Padding", f"padding {padding[axis]} leaves no output {name} "
                                f"(the {in_hw[0]}×{in_hw[1]} input gives {size})")
        groups = nb_groups(read_groups(sec), sum(p.shape[0] for p in inputs))
        masks = build_mapping(sec, inputs, nb_outputs)
        cfg = sec.config
        no_bias, back_propagate = read_kernel_config(cfg)
        for key in ("WeightsExportFlip", "OutputsRemap"):
            if cfg.get_str(key, "0" if key == "WeightsExportFlip" else "") not in ("", "0"):
                raise cfg.error(key, f"{key} is not supported yet")
        return cls(
            sec.name, inputs, device, nb_outputs, kernel, stride, padding, dilation, masks,
            make_filler(sec, "WeightsFiller"), make_filler(sec, "BiasFiller"), no_bias,
            make_activation(sec), groups, back_propagate,
        )

    def params(self):
        return [self.weights] if self.bias is None else [self.weights, self.bias]

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
        dw = self.xp.tensordot(cols, self._x, axes=([0, 2], [0, 2]))  # (O·kh·kw, C)
        dw = dw.reshape(o, kh, kw, c).transpose(0, 3, 1, 2)
        if self.weights.mask is not None:
            dw = dw * self.weights.mask
        self.weights.grad += dw
        if self.bias is not None:
            self.bias.grad += dz.sum(axis=(0, 2, 3))
        if not (self.needs_input_grad and self.back_propagate):
            return [None] * len(self.inputs)
        dx = self.xp.matmul(self._weight_matrix().T, cols)  # (N, C, H·W)
        return win.split_channels(dx.reshape(self._x_shape), self.channels)

    # -- counts and weights files -----------------------------------------------------------
    def nb_synapses(self):
        kh, kw = self.kernel
        return int(self.mask.sum()) * kh * kw + (0 if self.bias is None else self.out_shape[0])

    def nb_virtual_synapses(self):
        kh, kw = self.kernel
        _, h, w = self.inputs[0].shape
        return int(self.mask.sum()) * kh * kw * h * w

    def export_rows(self, param):
        """Weights: one row per output map, the kernels of its connected channels only."""
        if param is not self.weights:
            return super().export_rows(param)
        data = self.device.to_host(param.data)
        return [data[o, self.mask[o]].reshape(-1) for o in range(data.shape[0])]

    def import_rows(self, param, rows):
        if param is not self.weights:
            return super().import_rows(param, rows)
        kh, kw = self.kernel
        values = np.zeros(param.shape, dtype=np.float32)
        for o, row in enumerate(rows):
            row = np.asarray(row, dtype=np.float32).reshape(-1)
            if row.size != int(self.mask[o].sum()) * kh * kw:
                raise N2D2PyError(f"{self.name}: row {o + 1} of the weights has {row.size} values, "
                                  f"expected {int(self.mask[o].sum()) * kh * kw}")
            values[o, self.mask[o]] = row.reshape(-1, kh, kw)
        param.data[...] = self.device.asarray(values)
