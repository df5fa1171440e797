"""Resize the maps to ``OutputWidth``×``OutputHeight`` (N2D2: ResizeCell, spec §3.3).

``Mode`` (required), with source coordinates as N2D2 computes them (in = input size, out =
output size, o = output index):

* ``NearestNeighbor``: i = floor(o·in/out).
* ``BilinearTF`` (TensorFlow's legacy resize, N2D2's working bilinear mode): x = o·r with
  r = (in−1)/(out−1) when the config key ``AlignCorners`` [1] is set (and out > 1), else
  in/out; linear interpolation between floor(x) and min(floor(x)+1, in−1).
* ``Bilinear`` (OpenCV's INTER_LINEAR; declared by N2D2 but not implemented there): half-pixel
  centres, x = max((o+0.5)·in/out − 0.5, 0). ``AlignCorners`` does not apply.

Each mode is a pair of interpolation matrices (out×in), one per axis, so that
y = R_h · x · R_wᵀ per map and the gradient is the exact adjoint R_hᵀ · dy · R_w (N2D2's
nearest-neighbour backward samples the gradient instead of summing it). Several inputs are
stacked along channels.
"""

import numpy as np

from n2d2py.cells._windows import concat_channels, split_channels
from n2d2py.cells.base import Cell, check_stacked_inputs, stacked_shape
from n2d2py.registry import CELLS

MODES = ("Bilinear", "BilinearTF", "NearestNeighbor")


def interpolation_matrix(size_in, size_out, mode, align_corners=True):
    """(size_out, size_in) float32 matrix mapping one axis of the input to the output."""
    out = np.arange(size_out, dtype=np.float32)
    if mode == "NearestNeighbor":
        index = np.minimum((out * np.float32(size_in / size_out)).astype(np.int64), size_in - 1)
        low, high, frac = index, index, np.zeros(size_out, np.float32)
    else:
        if mode == "BilinearTF":
            aligned = align_corners and size_out > 1
            ratio = (size_in - 1) / (size_out - 1) if aligned else size_in / size_out
            x = out * np.float32(ratio)
        else:  # Bilinear: half-pixel centres
            x = np.maximum((out + 0.5) * np.float32(size_in / size_out) - 0.5, 0)
        low = np.minimum(x.astype(np.int64), size_in - 1)
        high = np.minimum(low + 1, size_in - 1)
        frac = (x - low).astype(np.float32)
    matrix = np.zeros((size_out, size_in), dtype=np.float32)
    rows = np.arange(size_out)
    np.add.at(matrix, (rows, low), 1 - frac)
    np.add.at(matrix, (rows, high), frac)
    return matrix


@CELLS.register("Resize")
class ResizeCell(Cell):
    """y = R_h · x · R_wᵀ for every map."""

    def __init__(self, name, inputs, device, width, height, mode="NearestNeighbor",
                 align_corners=True):
        c, h, w = stacked_shape(inputs)
        super().__init__(name, inputs, (c, height, width), device)
        self.mode, self.align_corners = mode, bool(align_corners)
        self.channels = [p.shape[0] for p in inputs]
        self._rows = device.asarray(interpolation_matrix(h, height, mode, align_corners))
        self._cols = device.asarray(interpolation_matrix(w, width, mode, align_corners).T)

    @classmethod
    def from_section(cls, sec, inputs, device):
        check_stacked_inputs(sec, inputs)
        width, height = sec.get_uint("OutputWidth"), sec.get_uint("OutputHeight")
        for key, value in (("OutputWidth", width), ("OutputHeight", height)):
            if value < 1:
                raise sec.error(key, "must be at least 1")
        mode = sec.get_enum("Mode", MODES)
        align_corners = sec.config.get_bool("AlignCorners", True)
        return cls(sec.name, inputs, device, width, height, mode, align_corners)

    def _forward(self, xs, train):
        x = concat_channels(xs)
        dtype = x.dtype
        return self._rows.astype(dtype, copy=False) @ (x @ self._cols.astype(dtype, copy=False))

    def _backward(self, dz):
        if not self.needs_input_grad:
            return [None] * len(self.inputs)
        dtype = dz.dtype
        dx = (self._rows.T.astype(dtype, copy=False) @ dz) @ self._cols.T.astype(dtype, copy=False)
        return split_channels(dx, self.channels)

    def nb_virtual_synapses(self):
        c, h, w = self.out_shape
        return c * h * w * (1 if self.mode == "NearestNeighbor" else 4)

    def __repr__(self):
        ins = ",".join(p.name for p in self.inputs)
        return f"ResizeCell({self.name} <- {ins}: {self.out_shape} {self.mode})"
