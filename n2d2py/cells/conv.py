"""2-D convolution (N2D2: ConvCell, spec §3.2) as im2col + one GEMM per pass.

Weights are stored dense (O, C_total, kh, kw) whatever the channel map; unmapped weights are
kept at 0 by ``Param.mask`` (applied to the filled values, the forward weights and the
gradient). Grouped/depthwise maps take this same dense masked path for now: correct, but
G times the work of a true grouped GEMM.
"""

import numpy as np

from n2d2py.activations import make_activation
from n2d2py.cells import _windows as win
from n2d2py.cells.base import Cell, Param
from n2d2py.cells.mapping import build_mapping, nb_groups, read_groups
from n2d2py.errors import N2D2PyError
from n2d2py.fillers import NormalFiller, make_filler
from n2d2py.registry import CELLS

_KERNEL_KEYS = ("KernelDims", "KernelSize", "Kernel", "KernelWidth", "KernelHeight")


def check_window(sec, family, keys, in_hw, kernel, stride, padding, dilation=(1, 1)):
    """Output (h, w) of a sliding-window cell, or a located error if the window does not fit."""
    out = []
    for axis in range(2):
        extent = dilation[axis] * (kernel[axis] - 1) + 1
        size = win.out_size(in_hw[axis], kernel[axis], stride[axis], padding[axis], dilation[axis])
        if extent > in_hw[axis] + 2 * padding[axis] or size < 1:
            key = next((k for k in keys if sec.has(k)), keys[0])
            raise sec.error(
                key,
                f"{family} {kernel[0]}×{kernel[1]} (extent {extent} along "
                f"{'height' if axis == 0 else 'width'}) does not fit the {in_hw[0]}×{in_hw[1]} "
                f"input with padding {padding[0]}×{padding[1]}",
            )
        out.append(size)
    return tuple(out)


def read_window_size(sec, family, keys, noun):
    """NbOutputs and the window size (h, w) of ``family`` ("Kernel"/"Pool"), both ≥ 1."""
    size = sec.dims(family)
    nb_outputs = sec.get_uint("NbOutputs")
    if nb_outputs < 1:
        raise sec.error("NbOutputs", "must be at least 1")
    if min(size) < 1:
        raise sec.error(next((k for k in keys if sec.has(k)), family + "Dims"),
                        f"{noun} sizes must be at least 1, got {size[1]}×{size[0]} (x×y)")
    return nb_outputs, size


def read_window_keys(sec):
    """Stride, Padding (may be negative) and Dilation as (h, w) pairs, validated."""
    stride = sec.dims("Stride", 1)
    padding = sec.dims("Padding", 0)
    dilation = sec.dims("Dilation", 1)
    for family, values in (("Stride", stride), ("Dilation", dilation)):
        if min(values) < 1:
            got = f"{values[1]}×{values[0]} (x×y)"
            raise sec.error(family, f"{family} must be at least 1, got {got}")
    return stride, padding, dilation


def same_spatial_size(sec, inputs):
    sizes = {tuple(p.shape[1:]) for p in inputs}
    if len(sizes) != 1:
        detail = ", ".join(f"{p.name} {p.shape[1]}×{p.shape[2]}" for p in inputs)
        raise sec.error("Input", f"inputs must have the same height×width ({detail})")
    return inputs[0].shape[1:]


@CELLS.register("Conv")
class ConvCell(Cell):
    """y = W ⊛ x + b over a (possibly partial) channel map."""

    def __init__(self, name, inputs, device, nb_outputs, kernel, stride=(1, 1), padding=(0, 0),
                 dilation=(1, 1), masks=None, weights_filler=None, bias_filler=None,
                 no_bias=False, activation=None, groups=1, back_propagate=True):
        in_hw = inputs[0].shape[1:]
        out_hw = [
            win.out_size(in_hw[i], kernel[i], stride[i], padding[i], dilation[i]) for i in range(2)
        ]
        super().__init__(name, inputs, (nb_outputs, *out_hw), device, activation)
        self.kernel, self.stride = tuple(kernel), tuple(stride)
        self.padding, self.dilation = tuple(padding), tuple(dilation)
        self.channels = [p.shape[0] for p in inputs]
        total = sum(self.channels)
        if masks is None:
            masks = [np.ones((nb_outputs, c), dtype=bool) for c in self.channels]
        self.mask = np.concatenate(masks, axis=1)  # host (O, C_total)
        self.back_propagate = back_propagate
        kh, kw = self.kernel
        fan_in = kh * kw * total // max(groups, 1)
        fan_out = kh * kw * nb_outputs
        full = bool(self.mask.all())
        self.weights = Param(
            "weights", (nb_outputs, total, kh, kw), weights_filler or NormalFiller(0.0, 0.05),
            "Weights", fan_in, fan_out, None if full else self.mask[:, :, None, None],
        )
        self.bias = None if no_bias else Param(
            "bias", (nb_outputs,), bias_filler or NormalFiller(0.0, 0.05), "Bias", fan_in, fan_out
        )

    @classmethod
    def from_section(cls, sec, inputs, device):
        nb_outputs, kernel = read_window_size(sec, "Kernel", _KERNEL_KEYS, "kernel")
        stride, padding, dilation = read_window_keys(sec)
        if sec.dims("SubSample", 1) != (1, 1):
            raise sec.error("SubSample", "SubSample other than 1 is not supported yet")
        in_hw = same_spatial_size(sec, inputs)
        check_window(sec, "kernel", _KERNEL_KEYS, in_hw, kernel, stride, padding, dilation)
        groups = read_groups(sec)
        masks = build_mapping(sec, inputs, nb_outputs)
        cfg = sec.config
        no_bias = cfg.get_bool("NoBias", False)
        back_propagate = cfg.get_bool("BackPropagate", True)
        export_format = cfg.get_str("WeightsExportFormat", "OCHW")
        if export_format != "OCHW":
            message = f"'{export_format}' is not supported yet (only OCHW)"
            raise cfg.error("WeightsExportFormat", message)
        groups = nb_groups(groups, sum(p.shape[0] for p in inputs))
        return cls(
            sec.name, inputs, device, nb_outputs, kernel, stride, padding, dilation, masks,
            make_filler(sec, "WeightsFiller"), make_filler(sec, "BiasFiller"), no_bias,
            make_activation(sec), groups, back_propagate,
        )

    def params(self):
        return [self.weights] if self.bias is None else [self.weights, self.bias]

    def _weight_matrix(self):
        w = self.weights.data
        if self.weights.mask is not None:
            w = w * self.weights.mask
        return w.reshape(w.shape[0], -1)

    def _forward(self, xs, train):
        x = win.pad2d(win.concat_channels(xs), self.padding)
        self._padded_hw = x.shape[2:]
        windows = win.windows(x, self.kernel, self.stride, self.dilation)  # N C Ho Wo kh kw
        n, c, ho, wo, kh, kw = windows.shape
        # Columns (C·kh·kw, N·Ho·Wo): one GEMM for the whole batch; also the fastest layout
        # for dW and col2im (measured against (N·Ho·Wo, C·kh·kw) and (N, C·kh·kw, Ho·Wo)).
        self._cols = windows.transpose(1, 4, 5, 0, 2, 3).reshape(c * kh * kw, n * ho * wo)
        y = (self._weight_matrix() @ self._cols).reshape(-1, n, ho, wo)
        if self.bias is not None:
            y += self.bias.data[:, None, None, None]
        return self.xp.ascontiguousarray(y.transpose(1, 0, 2, 3))

    def _backward(self, dz):
        n, o, ho, wo = dz.shape
        dzt = dz.transpose(1, 0, 2, 3).reshape(o, n * ho * wo)
        dw = (dzt @ self._cols.T).reshape(self.weights.shape)
        if self.weights.mask is not None:
            dw *= self.weights.mask
        self.weights.grad += dw
        if self.bias is not None:
            self.bias.grad += dzt.sum(axis=1)
        if not (self.needs_input_grad and self.back_propagate):
            return [None] * len(self.inputs)
        kh, kw = self.kernel
        dcols = (self._weight_matrix().T @ dzt).reshape(-1, kh, kw, n, ho, wo)
        dcols = dcols.transpose(3, 0, 4, 5, 1, 2)  # N C Ho Wo kh kw
        dxp = win.col2im(dcols, self._padded_hw, self.stride, self.dilation)
        return win.split_channels(win.unpad2d(dxp, self.padding), self.channels)

    # -- counts and weights files -----------------------------------------------------------
    def nb_synapses(self):
        kh, kw = self.kernel
        return int(self.mask.sum()) * kh * kw + (0 if self.bias is None else self.out_shape[0])

    def nb_virtual_synapses(self):
        kh, kw = self.kernel
        return int(self.mask.sum()) * kh * kw * self.out_shape[1] * self.out_shape[2]

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
        if len(rows) != self.mask.shape[0]:
            raise N2D2PyError(
                f"{self.name}: expected {self.mask.shape[0]} rows of weights, got {len(rows)}"
            )
        values = np.zeros(param.shape, dtype=np.float32)
        for o, row in enumerate(rows):
            row = np.asarray(row, dtype=np.float32).reshape(-1)
            expected = int(self.mask[o].sum()) * kh * kw
            if row.size != expected:
                raise N2D2PyError(
                    f"{self.name}: row {o + 1} of the weights has {row.size} values, expected "
                    f"{expected} ({int(self.mask[o].sum())} connected channels × {kh}×{kw})"
                )
            values[o, self.mask[o]] = row.reshape(-1, kh, kw)
        if param.data is None:
            param.data = self.device.asarray(values)
        else:
            param.data[...] = self.device.asarray(values, dtype=param.data.dtype)
