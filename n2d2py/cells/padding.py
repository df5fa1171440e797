"""Zero padding of each side of the maps (N2D2: PaddingCell, spec §3.3).

``TopPadding``, ``BottomPadding``, ``LeftPadding`` and ``RightPadding`` are all required and may
be negative (a negative value crops that side). Several inputs are stacked along channels.
"""

from n2d2py.backend import array_module
from n2d2py.cells._windows import concat_channels, split_channels
from n2d2py.cells.base import Cell, check_stacked_inputs, stacked_shape
from n2d2py.registry import CELLS

_KEYS = ("TopPadding", "BottomPadding", "LeftPadding", "RightPadding")


def pad_sides(x, top, bottom, left, right):
    """``x`` (N, C, H, W) with each side padded by zeros (positive) or cropped (negative)."""
    h, w = x.shape[2:]
    x = x[:, :, max(-top, 0) : h - max(-bottom, 0), max(-left, 0) : w - max(-right, 0)]
    widths = ((0, 0), (0, 0), (max(top, 0), max(bottom, 0)), (max(left, 0), max(right, 0)))
    if any(a or b for a, b in widths):
        x = array_module(x).pad(x, widths)
    return x


@CELLS.register("Padding")
class PaddingCell(Cell):
    """y = x with ``top``/``bottom`` rows and ``left``/``right`` columns added (or removed)."""

    def __init__(self, name, inputs, device, top=0, bottom=0, left=0, right=0):
        c, h, w = stacked_shape(inputs)
        super().__init__(name, inputs, (c, h + top + bottom, w + left + right), device)
        self.sides = (int(top), int(bottom), int(left), int(right))
        self.channels = [p.shape[0] for p in inputs]

    @classmethod
    def from_section(cls, sec, inputs, device):
        check_stacked_inputs(sec, inputs)
        top, bottom, left, right = (sec.get_int(key) for key in _KEYS)
        _, h, w = stacked_shape(inputs)
        for size, (first, second), noun in ((h + top + bottom, _KEYS[:2], "row"),
                                            (w + left + right, _KEYS[2:], "column")):
            if size < 1:
                raise sec.error(first, f"{first} + {second} leaves no {noun} of the {h}×{w} input")
        return cls(sec.name, inputs, device, top, bottom, left, right)

    def _forward(self, xs, train):
        return pad_sides(concat_channels(xs), *self.sides)

    def _backward(self, dz):
        if not self.needs_input_grad:
            return [None] * len(self.inputs)
        top, bottom, left, right = self.sides
        dx = pad_sides(dz, -top, -bottom, -left, -right)
        return split_channels(self.xp.ascontiguousarray(dx), self.channels)

    def __repr__(self):
        ins = ",".join(p.name for p in self.inputs)
        return f"PaddingCell({self.name} <- {ins}: {self.out_shape} pad t/b/l/r={self.sides})"
