"""Threshold (N2D2: ThresholdCell, spec §6.1): an element-wise threshold, no gradient.

With a strict comparison ``v > Threshold``: ``Binary`` → MaxValue or 0, ``BinaryInverted`` →
0 or MaxValue, ``Truncate`` → Threshold or v, ``ToZero`` → v or 0, ``ToZeroInverted`` → 0 or v.
It is post-processing (e.g. before TargetROIs): backward gives nothing upstream.

N2D2 reads ``Operation`` and ``MaxValue`` of this cell from its ConfigSection only, so that
``Operation=ToZero`` in the layer section of N2D2's ``IMDBWIKI.ini`` is ignored there and
``Binary`` runs. Here the layer section is honoured as the model file means it, with a warning
that says so; the ConfigSection is read as N2D2 does.
"""

from n2d2py.cells.base import Cell, refuse_input_crop
from n2d2py.registry import CELLS

OPERATIONS = ("Binary", "BinaryInverted", "Truncate", "ToZero", "ToZeroInverted")


def threshold(xp, x, value, operation="Binary", max_value=1.0):
    """``x`` thresholded at ``value`` as ``operation`` says (the formulas above)."""
    above = x > value
    zero = xp.zeros((), dtype=x.dtype)
    if operation == "Binary":
        return xp.where(above, x.dtype.type(max_value), zero)
    if operation == "BinaryInverted":
        return xp.where(above, zero, x.dtype.type(max_value))
    if operation == "Truncate":
        return xp.where(above, x.dtype.type(value), x)
    if operation == "ToZero":
        return xp.where(above, x, zero)
    if operation == "ToZeroInverted":
        return xp.where(above, zero, x)
    raise ValueError(f"unknown threshold operation {operation!r}")


def check_single_input(sec, inputs):
    """One input, and NbOutputs equal to its channels (output dims = input dims)."""
    if len(inputs) != 1:
        raise sec.error("Input", f"{sec.get_str('Type')} takes exactly one input, got {len(inputs)}")
    nb_outputs = sec.get_uint("NbOutputs")
    if nb_outputs != inputs[0].shape[0]:
        raise sec.error("NbOutputs", f"must equal the {inputs[0].shape[0]} input channels, "
                        f"got {nb_outputs}")


class Thresholding(Cell):
    """A post-processing threshold of one input (Threshold and Transformation cells): the
    forward only, no gradient upstream."""

    def __init__(self, name, inputs, device, value, operation="Binary", max_value=1.0):
        super().__init__(name, inputs, inputs[0].shape, device)
        self.value = float(value)
        self.operation = operation
        self.max_value = float(max_value)

    def _forward(self, xs, train):
        return threshold(self.xp, xs[0], self.value, self.operation, self.max_value)

    def _backward(self, dz):
        return [None] * len(self.inputs)


@CELLS.register("Threshold")
class ThresholdCell(Thresholding):
    @classmethod
    def from_section(cls, sec, inputs, device):
        check_single_input(sec, inputs)
        refuse_input_crop(sec)
        value = sec.get_float("Threshold")
        for key in ("Operation", "MaxValue"):
            if sec.has(key):  # N2D2 ignores these here; honoured, and said
                sec.doc.warn(f"N2D2 reads {key} of a Threshold cell from its ConfigSection only "
                             "(it would ignore this line); honoured here", sec.prop(key))
        where = sec if sec.has("Operation") else sec.config
        operation = where.get_enum("Operation", OPERATIONS, "Binary")
        where = sec if sec.has("MaxValue") else sec.config
        max_value = where.get_float("MaxValue", 1.0)
        return cls(sec.name, inputs, device, value, operation, max_value)
