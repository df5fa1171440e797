"""What every cell is: shapes known at construction, parameters, forward and backward.

Arrays are NCHW float32. A cell's activation function (N2D2 cells own theirs) is applied by
this base class, so subclasses implement only ``_forward``/``_backward`` of the pre-activation.
"""

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Port:
    """One input of a cell: the producing section's name and its output shape (C, H, W)."""

    name: str
    shape: tuple


class Param:
    """A learnable tensor: its shape and filler now, its data once the network is initialised.

    ``role`` picks the solver keys: "Weights" reads ``WeightsSolver.*``, "Bias" ``BiasSolver.*``
    (both fall back to ``Solvers.*``). ``mask`` (0/1, broadcastable) zeroes unmapped weights.

    ``grad`` is float64 whatever the data's dtype: cells add one float32 partial per
    micro-slice of the batch into it (``parallel.slices``), so that its value does not depend
    on how the batch was cut over threads and processes; the solver rounds it once.
    """

    def __init__(self, name, shape, filler, role="Weights", fan_in=1, fan_out=1, mask=None):
        self.name = name
        self.shape = tuple(shape)
        self.filler = filler
        self.role = role
        self.fan_in = fan_in
        self.fan_out = fan_out
        self.mask = mask
        self.data = None
        self.grad = None
        self.solver = None

    @property
    def size(self):
        if self.mask is not None:
            return int(np.broadcast_to(np.asarray(self.mask), self.shape).sum())
        return int(np.prod(self.shape))

    def initialize(self, device):
        values = self.filler.fill(self.shape, self.fan_in, self.fan_out, device.rng)
        if self.mask is not None:
            values = values * np.asarray(self.mask, dtype=np.float32)
            self.mask = device.asarray(self.mask)
        self.data = device.asarray(values)
        self.grad = self.new_grad(device.xp)

    def new_grad(self, xp):
        """A zero gradient for this Param (float64, see the class)."""
        return xp.zeros(self.shape, dtype=xp.float64)

    def __repr__(self):
        return f"Param({self.name}, {self.shape}, {self.role})"


class Cell:
    """Base of every layer. Subclasses set ``out_shape`` and implement the numerics.

    Contract:
    - ``from_section(sec, inputs, device)``: the only place INI keys are read (``sec`` for
      structural keys, ``sec.config`` for the ConfigSection chain); ``inputs`` is a list of
      Port; returns the cell.
    - ``_forward(xs, train)`` → pre-activation output (N, C, H, W) from the list of inputs.
    - ``_backward(dz)`` → list of input gradients (None where ``needs_input_grad`` is False),
      accumulating parameter gradients into ``param.grad`` (summed over the batch).
    - ``params()``: learnable Params; ``nb_synapses()``/``nb_virtual_synapses()``: counts for
      the summary (shared weights incl. biases / multiply-accumulates per stimulus).
    """

    def __init__(self, name, inputs, out_shape, device, activation=None):
        self.name = name
        self.inputs = list(inputs)
        self.out_shape = tuple(int(d) for d in out_shape)
        self.device = device
        self.xp = device.xp
        self.activation = activation
        self.needs_input_grad = True

    @classmethod
    def from_section(cls, sec, inputs, device):
        raise NotImplementedError

    def params(self):
        return []

    def buffers(self):
        """Saved, not learned state (BatchNorm's moving statistics), as Params without solvers."""
        return []

    def nb_synapses(self):
        return sum(p.size for p in self.params())

    def nb_virtual_synapses(self):
        return 0

    def forward(self, xs, train=False):
        z = self._forward(xs, train)
        return z if self.activation is None else self.activation.forward(z)

    def backward(self, dy):
        dz = dy if self.activation is None else self.activation.backward(dy)
        return self._backward(dz)

    def export_rows(self, param):
        """``param`` as the rows of N2D2's ``.syntxt`` file (one row per output)."""
        data = self.device.to_host(param.data)
        return data.reshape(data.shape[0], -1) if data.ndim > 1 else data.reshape(-1, 1)

    def import_rows(self, param, rows):
        """Inverse of ``export_rows``: set ``param.data`` from a list of rows of floats."""
        values = np.asarray(rows, dtype=np.float32).reshape(param.shape)
        param.data[...] = self.device.asarray(values)

    def zero_grad(self):
        for p in self.params():
            p.grad[...] = 0

    def __repr__(self):
        ins = ",".join(p.name for p in self.inputs)
        act = f" {type(self.activation).__name__}" if self.activation else ""
        return f"{type(self).__name__}({self.name} <- {ins}: {self.out_shape}{act})"


def stacked_shape(inputs):
    """Output shape of a cell that stacks its inputs' channels (Dropout, Softmax, ...)."""
    return (sum(p.shape[0] for p in inputs),) + tuple(inputs[0].shape[1:])


def check_stacked_inputs(sec, inputs):
    """NbOutputs must equal the stacked input channels, and the inputs share H×W."""
    channels = stacked_shape(inputs)[0]
    nb_outputs = sec.get_uint("NbOutputs")
    if nb_outputs != channels:
        raise sec.error("NbOutputs", f"must equal the {channels} input channels, got {nb_outputs}")
    same_spatial_size(sec, inputs)


def same_spatial_size(sec, inputs):
    """The inputs' common (H, W); an error naming each input's size when they differ."""
    sizes = {tuple(p.shape[1:]) for p in inputs}
    if len(sizes) != 1:
        detail = ", ".join(f"{p.name} {p.shape[1]}×{p.shape[2]}" for p in inputs)
        raise sec.error("Input", f"inputs must have the same height×width ({detail})")
    return inputs[0].shape[1:]


def refuse_input_crop(sec):
    """N2D2's InputOffsetX/Y and InputWidth/Height (reading a window of the input): not yet."""
    for key in ("InputOffsetX", "InputOffsetY", "InputWidth", "InputHeight"):
        if sec.get_uint(key, 0):
            raise sec.error(key, f"{key} (cropping the input) is not supported yet")
