"""Softmax over channels (N2D2: SoftmaxCell, spec §3.3 and §3.7)."""

from n2d2py.cells._windows import concat_channels, split_channels
from n2d2py.cells.base import Cell, check_stacked_inputs, stacked_shape
from n2d2py.registry import CELLS


@CELLS.register("Softmax")
class SoftmaxCell(Cell):
    """y = exp(x)/Σ_channels exp(x); WithLoss=1 passes dy through (cross-entropy on logits)."""

    def __init__(self, name, inputs, device, with_loss=False):
        super().__init__(name, inputs, stacked_shape(inputs), device)
        self.channels = [p.shape[0] for p in inputs]
        self.with_loss = with_loss

    @classmethod
    def from_section(cls, sec, inputs, device):
        check_stacked_inputs(sec, inputs)
        if sec.get_uint("GroupSize", 0) != 0:
            message = "GroupSize other than 0 (all channels) is not supported yet"
            raise sec.error("GroupSize", message)
        return cls(sec.name, inputs, device, sec.get_bool("WithLoss", False))

    def _forward(self, xs, train):
        x = concat_channels(xs)
        e = self.xp.exp(x - x.max(axis=1, keepdims=True))
        self._y = e / e.sum(axis=1, keepdims=True)
        return self._y

    def _backward(self, dz):
        if not self.needs_input_grad:
            return [None] * len(self.inputs)
        if self.with_loss:
            # The target already gave output − target: the cross-entropy gradient on the logits.
            return split_channels(dz, self.channels)
        y = self._y
        return split_channels(y * (dz - (dz * y).sum(axis=1, keepdims=True)), self.channels)
