"""Targets with ``DataAsTarget=1``: the network learns to output its own input (spec §9).

The target tensor is the input stimulus after the transformations (N2D2 also reads target
files when ``[sp]`` declares ``TargetSize*``; n2d2py does not yet). The target cell's output
must have the input's size (an auto-encoder: ``mnist-autoencoder.ini``).

Loss (N2D2's ``applyLossDistribWeighted(20, -1, 1)``): the target values of the whole batch
are binned in 20 bins over [−1, 1] (bin = clamp(round(19·(t + 1)/2), 0, 19), round half away
from zero); each element's error t − y is divided by the number of elements of its bin, so
rare values (strokes against a dominant background) weigh more. Gradient y − (that target)
likewise, loss value = Σ error² / batch size.

Score: per stimulus the mean squared error of the output against the target, which is the
stimulus's "success": the success rates printed and logged are 100 × MSE (lower is better,
as in N2D2). The confusion matrix is ``ConfusionQuantSteps``² [10] of (target, estimate)
values quantised over [``ConfusionRangeMin``, ``ConfusionRangeMax``] [0, 1]; the validation
score that picks the best weights is its ``-valid-metric`` averaged over the rows that have
samples (higher is better). N2D2 clamps a negative bin index through an unsigned cast into
the top bin; n2d2py clamps it to bin 0. The per-stimulus ``_target``/``_estimated`` images
N2D2 writes are not written.
"""

import os

import numpy as np

from n2d2py.backend import array_module, to_host
from n2d2py.errors import N2D2PyError
from n2d2py.targets import (METRICS, Scores, TargetScore, class_metrics, confusion_text,
                            score_text)
from n2d2py.atomic import atomic_write_text

LOSS_BINS, LOSS_MIN, LOSS_MAX = 20, -1.0, 1.0


def round_half_away(v, xp=np):
    return xp.sign(v) * xp.floor(xp.abs(v) + 0.5)


def quantize(v, steps, lo, hi, xp=np):
    """Bin index in 0 … steps − 1 of values ``v`` over [lo, hi] (N2D2's rounding)."""
    q = round_half_away((steps - 1) * (v - lo) / (hi - lo), xp)
    return xp.clip(q, 0, steps - 1).astype(xp.int64)


def distribution_weighted_error(y, t):
    """(error t − y divided by its target bin's count, loss Σ error² / batch)."""
    xp = array_module(y)
    bins = quantize(t, LOSS_BINS, LOSS_MIN, LOSS_MAX, xp)
    counts = xp.bincount(bins.reshape(-1), minlength=LOSS_BINS)
    error = (t - y) / counts[bins].astype(y.dtype)
    return error, float(xp.sum(error * error)) / y.shape[0]


class DataScores(Scores):
    """Scores of one set for a DataAsTarget target: per-stimulus MSE and the value matrix."""

    def clear(self):
        super().clear()
        self.sum_mse = 0.0

    def add_data(self, mse, confusion):
        self.matrix += confusion
        self.total += len(mse)
        self.sum_mse += float(np.sum(mse))
        self.recent.extend(float(m) for m in mse)

    def success_rate(self):
        """Mean squared error per stimulus since the last clear() (N2D2's "success")."""
        return self.sum_mse / self.total if self.total else 0.0

    def average(self, metric):
        """``metric`` averaged over the target values that occurred (N2D2's relevant rows)."""
        if metric not in METRICS:
            raise N2D2PyError(f"unknown metric '{metric}' (known: {', '.join(METRICS)})")
        rows = self.matrix.sum(axis=1) > 0
        return float(np.mean(class_metrics(self.matrix)[metric][rows])) if rows.any() else 0.0


class DataAsTarget(TargetScore):
    """Reconstruction target: the input stimulus is the target of the cell's output."""

    def __init__(self, name, cell_name, nb_outputs, quant_steps=10, range_min=0.0,
                 range_max=1.0, where=None):
        super().__init__(name, cell_name, nb_outputs, where=where)
        self.nb_targets = int(quant_steps)
        self.range_min, self.range_max = float(range_min), float(range_max)
        self.net = None

    @classmethod
    def from_section(cls, sec, cell_name, nb_outputs, label_names=()):
        for key in ("LabelsMapping", "TargetValue", "DefaultValue", "TopN"):
            if sec.has(key):
                raise sec.error(key, f"{key} has no meaning with DataAsTarget=1 (the target "
                                "is the input data)")
        steps = sec.get_uint("ConfusionQuantSteps", 10)
        if steps < 2:
            raise sec.error("ConfusionQuantSteps", f"must be at least 2, got {steps}")
        lo, hi = sec.get_float("ConfusionRangeMin", 0.0), sec.get_float("ConfusionRangeMax", 1.0)
        if hi <= lo:
            raise sec.error("ConfusionRangeMax", f"must exceed ConfusionRangeMin ({lo}), got {hi}")
        err = sec.error(None, "")
        return cls(sec.name, cell_name, nb_outputs, steps, lo, hi,
                   where=(err.file, err.line, err.section))

    def bind(self, net):
        """The network whose input batch is the target."""
        self.net = net
        out_shape = tuple(net.cells[self.cell_name].out_shape)
        if tuple(net.provider.shape) != out_shape:
            raise self._error(
                "wrong target size: with DataAsTarget=1 the output of "
                f"{self.cell_name} ({'x'.join(map(str, out_shape))}, channels x height x "
                f"width) must have the input's size ({'x'.join(map(str, net.provider.shape))})")

    def _target(self, y):
        x = self.net.last_input
        return x.reshape(y.shape).astype(y.dtype, copy=False)

    def loss_grad(self, y, labels):
        error, loss = distribution_weighted_error(y, self._target(y))
        return (-error).astype(y.dtype, copy=False), loss

    def process(self, set_name, y, labels, ids=None, names=None):
        t = to_host(self._target(y)).reshape(y.shape[0], -1).astype(np.float64)
        e = to_host(y).reshape(y.shape[0], -1).astype(np.float64)
        mse = ((t - e) ** 2).mean(axis=1)
        q = self.nb_targets
        pairs = (quantize(t, q, self.range_min, self.range_max) * q
                 + quantize(e, q, self.range_min, self.range_max))
        confusion = np.bincount(pairs.reshape(-1), minlength=q * q).reshape(q, q)
        self.scores(set_name).add_data(mse, confusion)
        return None

    def scores(self, set_name):
        if set_name not in self.sets:
            self.sets[set_name] = DataScores(self.nb_targets, 1, self.window)
        return self.sets[set_name]

    def output_names(self):
        """The value range of each quantisation step."""
        step = (self.range_max - self.range_min) / (self.nb_targets - 1)
        return [f"{self.range_min + k * step:.3g}" for k in range(self.nb_targets)]

    def write_labels_mapping(self, run_dir):
        """No labels: nothing to write (as N2D2)."""

    def write_logs(self, run_dir, set_name):
        """The value confusion matrix and its scores (no per-stimulus class logs)."""
        matrix, folder = self.scores(set_name).matrix, self.folder(run_dir)
        atomic_write_text(os.path.join(folder, f"ConfusionMatrix_{set_name}.dat"),
                          confusion_text(matrix))
        atomic_write_text(os.path.join(folder, f"ConfusionMatrix_{set_name}_score.dat"),
                          score_text(matrix, self.output_names()))

    def __repr__(self):
        return f"DataAsTarget({self.name} on {self.cell_name})"
