"""``Type=EdgeFc``: an EdgeLayer placed on top of a network's layer, as a cell of the graph.

Its input is binarised (a formal activation above ``InputThreshold`` is a spike); its output is
one score per class, the best potential of the class's learned neurons (−1 when none learned),
so that any target scores it. It has no parameters for the solvers and no gradient: it learns
with ``-edge-learn N`` (n2d2py/edge/run.py), and the layers below it are used as they are.

    [edge]
    Input=fc1
    Type=EdgeFc
    NbOutputs=10            ; classes
    NumWeights=33           ; ones per neuron (-edge-stats suggests 1.2 x median spikes)
    NeuronsPerClass=50
    LearningCompetition=0.1 ; [0, 1]
    InputThreshold=0        ; input > InputThreshold is a spike [0]
"""

import numpy as np

from n2d2py.cells.base import Cell
from n2d2py.edge.layer import EdgeLayer
from n2d2py.errors import N2D2PyError
from n2d2py.registry import CELLS


@CELLS.register("EdgeFc")
class EdgeFcCell(Cell):
    """Binarised inputs (flattened, concatenated) → EdgeLayer → per-class scores (C, 1, 1)."""

    def __init__(self, name, inputs, device, nb_classes, num_weights, neurons_per_class=1,
                 learning_competition=0.1, input_threshold=0.0, seed=1):
        super().__init__(name, inputs, (nb_classes, 1, 1), device)
        self.input_threshold = float(input_threshold)
        nb_inputs = sum(int(np.prod(p.shape)) for p in inputs)
        self.layer = EdgeLayer(nb_inputs, nb_classes, num_weights, neurons_per_class,
                               learning_competition, seed, device.xp)

    @classmethod
    def from_section(cls, sec, inputs, device):
        nb_inputs = sum(int(np.prod(p.shape)) for p in inputs)
        nb_classes = sec.get_uint("NbOutputs")
        if nb_classes < 1:
            raise sec.error("NbOutputs", "must be at least 1 (one output per class)")
        num_weights = sec.get_uint("NumWeights")
        if not 1 <= num_weights <= nb_inputs:
            ins = ",".join(p.name for p in inputs)
            raise sec.error("NumWeights", f"must be between 1 and the {nb_inputs} inputs of "
                                          f"{ins}, got {num_weights}")
        neurons = sec.get_uint("NeuronsPerClass", 1)
        if neurons < 1:
            raise sec.error("NeuronsPerClass", "must be at least 1")
        competition = sec.get_float("LearningCompetition", 0.1)
        if not 0.0 <= competition <= 1.0:
            raise sec.error("LearningCompetition", f"must be between 0 and 1, got {competition:g}")
        threshold = sec.get_float("InputThreshold", 0.0)
        seed = int(device.rng.integers(2**31))
        return cls(sec.name, inputs, device, nb_classes, num_weights, neurons, competition,
                   threshold, seed)

    def binarize(self, xs):
        """The spikes (N, inputs) float32 0/1 of the inputs ``xs``, on the device."""
        xp = self.xp
        flat = [x.reshape(x.shape[0], -1) for x in xs]
        x = flat[0] if len(flat) == 1 else xp.concatenate(flat, axis=1)
        return (x > self.input_threshold).astype(xp.float32)

    def _forward(self, xs, train):
        scores = self.layer.class_scores(self.layer.forward(self.binarize(xs)))
        return scores.reshape(scores.shape[0], -1, 1, 1)

    def _backward(self, dz):
        raise N2D2PyError(f"[{self.name}] EdgeFc has no gradient: it learns with -edge-learn N")

    def nb_synapses(self):
        return self.layer.nb_neurons * self.layer.num_weights

    def nb_virtual_synapses(self):
        return self.layer.nb_neurons * self.layer.nb_inputs

    def __repr__(self):
        ins = ",".join(p.name for p in self.inputs)
        return f"EdgeFcCell({self.name} <- {ins} > {self.input_threshold:g}: {self.layer})"
