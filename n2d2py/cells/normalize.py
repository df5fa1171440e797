"""Normalisation of each position's channel vector (N2D2: NormalizeCell, spec §8.1).

``Norm=L2``: at every (x, y) of every stimulus, s = sqrt(Σ_c x_c² + 1e-6) and y_c = x_c / s
(for an Fc output: the feature vector scaled to unit length). Backward (exact):
dx_c = (dy_c − y_c · Σ_k y_k dy_k) / s. No parameters, no activation, no configuration keys.
N2D2 accepts ``Norm=L1`` when building but fails at its first forward ("Unsupported norm."),
so n2d2py refuses it when building.
"""

from n2d2py.cells.base import Cell
from n2d2py.registry import CELLS

EPSILON = 1e-6  # added to Σx² under the square root, as N2D2


@CELLS.register("Normalize")
class NormalizeCell(Cell):
    """y = x / sqrt(Σ_channels x² + 1e-6), position by position."""

    def __init__(self, name, inputs, device, norm="L2"):
        if len(inputs) != 1:
            raise ValueError("Normalize takes one input")
        super().__init__(name, inputs, inputs[0].shape, device)
        self.norm = norm

    @classmethod
    def from_section(cls, sec, inputs, device):
        if len(inputs) != 1:
            raise sec.error("Input", f"Normalize takes one input, got {len(inputs)}")
        nb_outputs = sec.get_uint("NbOutputs")
        if nb_outputs != inputs[0].shape[0]:
            raise sec.error("NbOutputs", f"must equal the {inputs[0].shape[0]} input channels "
                            f"(the output has the input's size), got {nb_outputs}")
        norm = sec.get_enum("Norm", ("L1", "L2"))
        if norm != "L2":
            raise sec.error("Norm", "only L2 is implemented (N2D2 accepts L1 here but stops "
                            "with 'Unsupported norm.' at its first forward)")
        return cls(sec.name, inputs, device, norm)

    def _forward(self, xs, train):
        x = xs[0]
        t = x.dtype.type
        self._s = self.xp.sqrt((x * x).sum(axis=1, keepdims=True) + t(EPSILON))
        self._y = x / self._s
        return self._y

    def _backward(self, dz):
        if not self.needs_input_grad:
            return [None]
        a = (self._y * dz).sum(axis=1, keepdims=True)
        return [((dz - self._y * a) / self._s).astype(dz.dtype, copy=False)]

    def __repr__(self):
        return f"NormalizeCell({self.name} <- {self.inputs[0].name}: {self.out_shape} {self.norm})"
