"""What Conv and Deconv share: the window keys, the channel map and its mask, the kernel and
bias Params, the config keys, the counts and the weight-file rows.

A kernel cell's weights are stored dense (O, C_total, kh, kw) whatever the channel map;
unmapped weights are kept at 0 by ``Param.mask`` (applied to the filled values, the forward
weights and the gradient). Weight files hold one row per output map: the kernels of its
connected channels only. Subclasses give ``out_hw(in_hw)``, the numerics and, if they have
any, their own section checks (``check_section``).
"""

import numpy as np

from n2d2py.activations import make_activation
from n2d2py.cells import _windows as win
from n2d2py.cells.base import Cell, Param, same_spatial_size
from n2d2py.cells.mapping import build_mapping, nb_groups, read_groups
from n2d2py.errors import N2D2PyError
from n2d2py.fillers import NormalFiller, make_filler

KERNEL_KEYS = ("KernelDims", "KernelSize", "Kernel", "KernelWidth", "KernelHeight")


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


def read_kernel_config(cfg):
    """(NoBias, BackPropagate) of a Conv-family ConfigSection; only the OCHW export exists."""
    export_format = cfg.get_str("WeightsExportFormat", "OCHW")
    if export_format != "OCHW":
        raise cfg.error("WeightsExportFormat", f"'{export_format}' is not supported yet (only OCHW)")
    return cfg.get_bool("NoBias", False), cfg.get_bool("BackPropagate", True)


def masked(param):
    """A kernel tensor with its unmapped connections zeroed (the mask is None when all are)."""
    return param.data if param.mask is None else param.data * param.mask


class KernelCell(Cell):
    """Base of the cells with a kernel per (output, input channel) pair: Conv, Deconv."""

    def __init__(self, name, inputs, device, nb_outputs, kernel, stride=(1, 1), padding=(0, 0),
                 dilation=(1, 1), masks=None, weights_filler=None, bias_filler=None,
                 no_bias=False, activation=None, groups=1, back_propagate=True):
        self.kernel, self.stride = tuple(kernel), tuple(stride)
        self.padding, self.dilation = tuple(padding), tuple(dilation)
        out_hw = self.out_hw(inputs[0].shape[1:])
        super().__init__(name, inputs, (nb_outputs, *out_hw), device, activation)
        self.channels = [p.shape[0] for p in inputs]
        total = sum(self.channels)
        if masks is None:
            masks = [np.ones((nb_outputs, c), dtype=bool) for c in self.channels]
        self.mask = np.concatenate(masks, axis=1)  # host (O, C_total)
        self.back_propagate = back_propagate
        kh, kw = self.kernel
        fan_in = kh * kw * total // max(groups, 1)
        fan_out = kh * kw * nb_outputs
        self.weights = Param(
            "weights", (nb_outputs, total, kh, kw), weights_filler or NormalFiller(0.0, 0.05),
            "Weights", fan_in, fan_out, None if self.mask.all() else self.mask[:, :, None, None],
        )
        self.bias = None if no_bias else Param(
            "bias", (nb_outputs,), bias_filler or NormalFiller(0.0, 0.05), "Bias", fan_in, fan_out
        )

    def out_hw(self, in_hw):
        """Output (h, w) for an input of (h, w), from the kernel, stride, padding, dilation."""
        raise NotImplementedError

    @classmethod
    def check_section(cls, sec, in_hw, kernel, stride, padding, dilation):
        """The subclass's own key checks (located errors); none by default."""

    @classmethod
    def from_section(cls, sec, inputs, device):
        nb_outputs, kernel = read_window_size(sec, "Kernel", KERNEL_KEYS, "kernel")
        stride, padding, dilation = read_window_keys(sec)
        in_hw = same_spatial_size(sec, inputs)
        cls.check_section(sec, in_hw, kernel, stride, padding, dilation)
        groups = nb_groups(read_groups(sec), sum(p.shape[0] for p in inputs))
        masks = build_mapping(sec, inputs, nb_outputs)
        no_bias, back_propagate = read_kernel_config(sec.config)
        return cls(
            sec.name, inputs, device, nb_outputs, kernel, stride, padding, dilation, masks,
            make_filler(sec, "WeightsFiller"), make_filler(sec, "BiasFiller"), no_bias,
            make_activation(sec), groups, back_propagate,
        )

    def params(self):
        return [self.weights] if self.bias is None else [self.weights, self.bias]

    def nb_synapses(self):
        kh, kw = self.kernel
        return int(self.mask.sum()) * kh * kw + (0 if self.bias is None else self.out_shape[0])

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
