"""Dropout (N2D2: DropoutCell, spec §3.3); config ``Dropout`` = drop probability [0.5].

Inverted dropout: kept units are scaled by 1/(1-p) in training and the cell is the identity at
test time. N2D2's CPU ``Frame`` model instead keeps kept units unscaled; its CUDA model (cuDNN)
is inverted like this one, which keeps test-time outputs free of any rescaling. The mask is
drawn on the host from ``device.rng`` (so ``-seed`` fixes it on CPU and GPU alike) and then
moved to the device. Under mpiexec every rank draws the whole batch's mask and keeps its rows
(``parallel.batch_random``), so N processes drop what one process drops.
"""

from n2d2py import parallel
from n2d2py.cells._windows import concat_channels, split_channels
from n2d2py.cells.base import Cell, check_stacked_inputs, stacked_shape
from n2d2py.registry import CELLS


@CELLS.register("Dropout")
class DropoutCell(Cell):
    """y = x·mask/(1-p) in training (mask ~ Bernoulli(1-p)), y = x at test time."""

    def __init__(self, name, inputs, device, drop=0.5):
        super().__init__(name, inputs, stacked_shape(inputs), device)
        self.channels = [p.shape[0] for p in inputs]
        self.drop = drop
        self._mask = None

    @classmethod
    def from_section(cls, sec, inputs, device):
        check_stacked_inputs(sec, inputs)
        drop = sec.config.get_float("Dropout", 0.5)
        if not 0.0 <= drop < 1.0:
            raise sec.config.error("Dropout", f"drop probability must be in [0, 1), got {drop}")
        return cls(sec.name, inputs, device, drop)

    def _forward(self, xs, train):
        x = concat_channels(xs)
        if not train or self.drop == 0:
            self._mask = None
            return x
        keep = parallel.batch_random(self.device, x.shape) >= self.drop  # mpiexec: whole batch's draw
        scale = x.dtype.type(1.0 / (1.0 - self.drop))
        self._mask = self.device.asarray(keep, dtype=x.dtype) * scale
        return x * self._mask

    def _backward(self, dz):
        if not self.needs_input_grad:
            return [None] * len(self.inputs)
        dx = dz if self._mask is None else dz * self._mask
        return split_channels(dx, self.channels)
