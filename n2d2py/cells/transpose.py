"""Permute the axes of each sample (N2D2: TransposeCell).

``Perm`` lists up to 4 axes in N2D2 order (0 = x/width, 1 = y/height, 2 = channels, 3 =
batch); missing trailing axes stay in place and the batch axis cannot move. Output axis d takes
input axis Perm[d] (as numpy's and ONNX's transpose). Several inputs are stacked along
channels first.
"""

from n2d2py.cells._windows import concat_channels, split_channels
from n2d2py.cells.base import Cell, refuse_input_crop, same_spatial_size, stacked_shape
from n2d2py.registry import CELLS


def numpy_axes(perm):
    """N2D2 ``Perm`` (x, y, z, b order) → the equivalent axes of ``ndarray.transpose`` on NCHW."""
    perm = list(perm) + list(range(len(perm), 4))
    return tuple(3 - perm[3 - axis] for axis in range(4))


@CELLS.register("Transpose")
class TransposeCell(Cell):
    """y = x.transpose(axes) with the batch axis fixed."""

    def __init__(self, name, inputs, device, perm=(0, 1, 2)):
        self.axes = numpy_axes(perm)
        in_shape = (0,) + tuple(stacked_shape(inputs))
        super().__init__(name, inputs, tuple(in_shape[a] for a in self.axes[1:]), device)
        self.perm = tuple(perm)
        self.inverse = tuple(self.axes.index(a) for a in range(4))
        self.channels = [p.shape[0] for p in inputs]

    @classmethod
    def from_section(cls, sec, inputs, device):
        sec.get_uint("NbOutputs")  # checked against the output channels by the builder
        same_spatial_size(sec, inputs)
        refuse_input_crop(sec)
        perm = sec.get_ints("Perm")
        full = list(perm) + list(range(len(perm), 4))
        if len(perm) > 4 or sorted(full) != [0, 1, 2, 3]:
            raise sec.error("Perm", f"{' '.join(map(str, perm))} is not a permutation of "
                            "0 1 2 (x y channels)")
        if full[3] != 3:
            raise sec.error("Perm", "the fourth (batch) axis cannot be permuted")
        return cls(sec.name, inputs, device, perm)

    def _forward(self, xs, train):
        return self.xp.ascontiguousarray(concat_channels(xs).transpose(self.axes))

    def _backward(self, dz):
        if not self.needs_input_grad:
            return [None] * len(self.inputs)
        dx = self.xp.ascontiguousarray(dz.transpose(self.inverse))
        return split_channels(dx, self.channels)

    def __repr__(self):
        ins = ",".join(p.name for p in self.inputs)
        return f"TransposeCell({self.name} <- {ins}: {self.out_shape} Perm={self.perm})"
