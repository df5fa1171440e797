"""A margin added at the target class while learning (N2D2: TargetBiasCell, spec §8.2).

Used by AM-Softmax: after a normalised Fc (outputs cos θ), ``Bias`` (e.g. −0.35) is added to
the output of the stimulus's target class, where that output is above −``Bias``; the other
outputs, and every output at inference, pass unchanged. The backward pass is the identity.
The target section on this cell (``[<cell>.Target]``) only says which output is the target
class (the outputs where the target value is > 0): it adds no loss and no gradient.
"""

from n2d2py.cells.base import Cell
from n2d2py.registry import CELLS


@CELLS.register("TargetBias")
class TargetBiasCell(Cell):
    """y = x + Bias at the target output where x > −Bias (learning only); else y = x."""

    takes_no_loss = True  # its target gives the marks of the forward pass, not an error

    def __init__(self, name, inputs, device, bias):
        if len(inputs) != 1:
            raise ValueError("TargetBias takes one input")
        super().__init__(name, inputs, inputs[0].shape, device)
        self.bias = float(bias)
        self.marks = None  # (N, C, H, W) target values of the batch being learned

    @classmethod
    def from_section(cls, sec, inputs, device):
        if len(inputs) != 1:
            raise sec.error("Input", f"TargetBias takes one input, got {len(inputs)}")
        nb_outputs = sec.get_uint("NbOutputs")
        if nb_outputs != inputs[0].shape[0]:
            raise sec.error("NbOutputs", f"must equal the {inputs[0].shape[0]} input channels, "
                            f"got {nb_outputs}")
        return cls(sec.name, inputs, device, sec.get_float("Bias"))

    def set_marks(self, marks):
        """The target values of the next learning forward pass (same shape as the output)."""
        self.marks = marks

    def _forward(self, xs, train):
        x = xs[0]
        marks, self.marks = self.marks, None  # used once, as N2D2 clears its marks
        if not train or marks is None:
            return x
        t = x.dtype.type
        add = (marks > 0) & (x > t(-self.bias))
        return x + add.astype(x.dtype) * t(self.bias)

    def _backward(self, dz):
        return [dz if self.needs_input_grad else None]

    def __repr__(self):
        return f"TargetBiasCell({self.name} <- {self.inputs[0].name}: {self.out_shape} " \
               f"Bias={self.bias:g})"
