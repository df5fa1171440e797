"""Fully connected layer (N2D2: FcCell, spec §3.3): flattens C×H×W and applies one GEMM.

Its GEMMs are taken per micro-slice of the batch (``parallel.slices``), the parameter
gradients added in float64: the results do not depend on how the batch is cut over processes."""

import numpy as np

from n2d2py.activations import make_activation
from n2d2py.cells.base import Cell, Param
from n2d2py.fillers import NormalFiller, make_filler
from n2d2py.parallel import slices
from n2d2py.registry import CELLS


@CELLS.register("Fc")
class FcCell(Cell):
    """y = W·flatten(x) + b; several inputs are flattened then concatenated."""

    def __init__(self, name, inputs, device, nb_outputs, weights_filler=None, bias_filler=None,
                 no_bias=False, activation=None, back_propagate=True, normalize=False):
        super().__init__(name, inputs, (nb_outputs, 1, 1), device, activation)
        self.sizes = [int(np.prod(p.shape)) for p in inputs]
        total = sum(self.sizes)
        self.back_propagate = back_propagate
        self.normalize = normalize  # Normalize=1: unit-norm weight rows, rescaled at each forward
        self.weights = Param(
            "weights", (nb_outputs, total), weights_filler or NormalFiller(0.0, 0.05), "Weights",
            total, nb_outputs,
        )
        self.bias = None if no_bias else Param(
            "bias", (nb_outputs,), bias_filler or NormalFiller(0.0, 0.05), "Bias", total, nb_outputs
        )

    @classmethod
    def from_section(cls, sec, inputs, device):
        nb_outputs = sec.get_uint("NbOutputs")
        if nb_outputs < 1:
            raise sec.error("NbOutputs", "must be at least 1")
        cfg = sec.config
        no_bias = cfg.get_bool("NoBias", False)
        back_propagate = cfg.get_bool("BackPropagate", True)
        if cfg.get_float("DropConnect", 1.0) != 1.0:
            raise cfg.error("DropConnect", "DropConnect other than 1.0 is not supported yet")
        export_format = cfg.get_str("WeightsExportFormat", "OC")
        if export_format != "OC":
            message = f"'{export_format}' is not supported yet (only OC)"
            raise cfg.error("WeightsExportFormat", message)
        return cls(
            sec.name, inputs, device, nb_outputs, make_filler(sec, "WeightsFiller"),
            make_filler(sec, "BiasFiller"), no_bias, make_activation(sec), back_propagate,
            cfg.get_bool("Normalize", False),
        )

    def params(self):
        return [self.weights] if self.bias is None else [self.weights, self.bias]

    def _forward(self, xs, train):
        if self.normalize:  # N2D2 rescales the stored weights in place, then uses them as is
            w = self.weights.data
            w /= self.xp.sqrt((w * w).sum(axis=1, keepdims=True) + w.dtype.type(1e-6))
        flat = [x.reshape(x.shape[0], -1) for x in xs]
        self._x = flat[0] if len(flat) == 1 else self.xp.concatenate(flat, axis=1)
        n = len(self._x)  # one GEMM when not learning (no sum over the batch follows)
        self._bounds = slices.cut(self.device, n).bounds if train else ((0, n),)
        y = slices.matmul(self.xp, self._bounds, self._x, self.weights.data.T)
        if self.bias is not None:
            y += self.bias.data
        return y.reshape(y.shape[0], -1, 1, 1)

    def _backward(self, dz):
        dz = dz.reshape(dz.shape[0], -1)
        bounds = self._bounds  # float32 sums per micro-slice
        self.weights.grad += slices.matmul_sum(self.xp, bounds, dz, self._x)
        if self.bias is not None:
            self.bias.grad += slices.add64(dz[a:b].sum(axis=0) for a, b in bounds)
        if not (self.needs_input_grad and self.back_propagate):
            return [None] * len(self.inputs)
        dx = slices.matmul(self.xp, bounds, dz, self.weights.data)
        grads, start = [], 0
        for port, size in zip(self.inputs, self.sizes):
            grads.append(dx[:, start : start + size].reshape((dx.shape[0],) + tuple(port.shape)))
            start += size
        return grads

    def nb_virtual_synapses(self):
        return self.weights.shape[0] * self.weights.shape[1]
