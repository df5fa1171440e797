"""Reshape each sample's C×H×W values (N2D2: ReshapeCell).

``Dims`` lists up to 4 sizes in N2D2 order (width, height, channels[, batch]); missing ones
are 1, ``0`` keeps the input's size on that axis and ``-1`` (at most one) takes what remains.
The values keep their memory order (N2D2's x-fastest order is NCHW's), so this is a plain
reshape. A batch size other than 0 is ignored with a warning, as in N2D2. Several inputs are
stacked along channels first.
"""

import math

from n2d2py.cells._windows import concat_channels, split_channels
from n2d2py.cells.base import Cell, refuse_input_crop, same_spatial_size, stacked_shape
from n2d2py.registry import CELLS


def reshaped(in_shape, dims):
    """(C, H, W) after N2D2's ``Dims`` (x, y, z) on an input of ``in_shape`` (C, H, W); raises
    ValueError with the reason when ``dims`` do not fit."""
    in_xyz = tuple(reversed(in_shape))
    xyz = [in_xyz[i] if d == 0 else d for i, d in enumerate(dims)]
    if xyz.count(-1) > 1:
        raise ValueError("at most one size can be -1")
    if any(d < -1 for d in xyz):
        raise ValueError("sizes must be positive, 0 (keep) or -1 (infer)")
    total, known = math.prod(in_shape), math.prod(d for d in xyz if d != -1)
    if -1 in xyz and known > 0 and total % known == 0:
        xyz[xyz.index(-1)] = total // known
    if math.prod(xyz) != total:
        raise ValueError(f"{'x'.join(map(str, xyz))} (x×y×channels) does not hold the "
                         f"{total} values of the {in_shape[2]}x{in_shape[1]}x{in_shape[0]} input")
    return tuple(reversed(xyz))


@CELLS.register("Reshape")
class ReshapeCell(Cell):
    """y = x.reshape(N, *out_shape)."""

    def __init__(self, name, inputs, device, out_shape):
        super().__init__(name, inputs, out_shape, device)
        self.channels = [p.shape[0] for p in inputs]

    @classmethod
    def from_section(cls, sec, inputs, device):
        sec.get_uint("NbOutputs")  # checked against the output channels by the builder
        same_spatial_size(sec, inputs)
        refuse_input_crop(sec)
        dims = sec.get_ints("Dims")
        if not 1 <= len(dims) <= 4:
            message = f"expected 1 to 4 sizes (x y channels [batch]), got {len(dims)}"
            raise sec.error("Dims", message)
        if len(dims) == 4 and dims[3] != 0:
            sec.doc.warn("the fourth (batch) size is ignored", sec.prop("Dims"))
        dims = (list(dims[:3]) + [1, 1])[:3]
        try:
            out_shape = reshaped(stacked_shape(inputs), dims)
        except ValueError as exc:
            raise sec.error("Dims", str(exc)) from None
        return cls(sec.name, inputs, device, out_shape)

    def _forward(self, xs, train):
        x = concat_channels(xs)
        return x.reshape((x.shape[0],) + self.out_shape)

    def _backward(self, dz):
        if not self.needs_input_grad:
            return [None] * len(self.inputs)
        shape = stacked_shape(self.inputs)
        return split_channels(dz.reshape((dz.shape[0],) + tuple(shape)), self.channels)
