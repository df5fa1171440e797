"""Batch normalisation per channel (N2D2: BatchNormCell, spec §3.3).

Learning (``MovingAverageMomentum`` > 0): y = scale·(x − μ_B)/sqrt(σ²_B + ε) + bias with the
batch statistics over N×H×W (biased σ²_B), and the moving averages
mean ← m·μ_B + (1−m)·mean, variance ← m·σ²_B·n/(n−1) + (1−m)·variance (unbiased, as cuDNN in
N2D2's CUDA model and PyTorch; N2D2's CPU ``Frame`` model keeps the biased σ²_B there).
Testing, or ``MovingAverageMomentum=0`` (frozen statistics, also while learning): the moving
mean and variance replace the batch ones. As in N2D2, scales start at 1, biases, means and
variances at 0, and the activation is applied after the normalisation.

Under mpiexec the batch statistics are those of the whole batch, summed over the ranks
(synchronised BatchNorm, ``parallel.batch_mean_var``): N processes learn what one does.

Means and variances are not learned: they are ``buffers()`` (saved in ``<cell>_means.syntxt``
/ ``<cell>_variances.syntxt`` and in checkpoints, never given a solver).
"""

from n2d2py import parallel
from n2d2py.activations import make_activation
from n2d2py.cells._windows import concat_channels, split_channels
from n2d2py.cells.base import Cell, Param, check_stacked_inputs, stacked_shape
from n2d2py.errors import N2D2PyError
from n2d2py.fillers import ConstantFiller
from n2d2py.registry import CELLS

_SHARING_KEYS = ("ScalesSharing", "BiasesSharing", "MeansSharing", "VariancesSharing")


@CELLS.register("BatchNorm")
class BatchNormCell(Cell):
    """y = scale·(x − mean)/sqrt(var + ε) + bias, per channel."""

    def __init__(self, name, inputs, device, epsilon=1e-5, momentum=0.1, activation=None,
                 back_propagate=True):
        super().__init__(name, inputs, stacked_shape(inputs), device, activation)
        self.channels = [p.shape[0] for p in inputs]
        self.epsilon = float(epsilon)
        self.momentum = float(momentum)
        self.back_propagate = back_propagate
        c = self.out_shape[0]
        self.scale = Param("scale", (c,), ConstantFiller(1.0), "Scale", c, c)
        self.bias = Param("bias", (c,), ConstantFiller(0.0), "Bias", c, c)
        self.mean = Param("mean", (c,), ConstantFiller(0.0), "Mean", c, c)
        self.variance = Param("variance", (c,), ConstantFiller(0.0), "Variance", c, c)
        for buffer in self.buffers():  # constants: no random draw, so -seed sequences are kept
            buffer.initialize(device)

    @classmethod
    def from_section(cls, sec, inputs, device):
        check_stacked_inputs(sec, inputs)
        for key in _SHARING_KEYS:
            if sec.has(key):
                raise sec.error(key, f"{key} is not supported yet")
        cfg = sec.config
        epsilon = cfg.get_float("Epsilon", 1e-5)
        if epsilon < 0:
            raise cfg.error("Epsilon", f"must be >= 0, got {epsilon}")
        momentum = cfg.get_float("MovingAverageMomentum", 0.1)
        if not 0.0 <= momentum < 1.0:
            raise cfg.error("MovingAverageMomentum", f"must be in [0, 1), got {momentum}")
        back_propagate = cfg.get_bool("BackPropagate", True)
        return cls(sec.name, inputs, device, epsilon, momentum, make_activation(sec),
                   back_propagate)

    def params(self):
        return [self.scale, self.bias]

    def buffers(self):
        """Non-learned state saved with the weights: the moving mean and variance."""
        return [self.mean, self.variance]

    def _forward(self, xs, train):
        x = concat_channels(xs)
        xp, dtype = self.xp, x.dtype
        self._batch_stats = train and self.momentum > 0
        if self._batch_stats:
            mean, var, count = parallel.batch_mean_var(self.device, x, (0, 2, 3))
            self._update_moving_averages(mean, var, count)
        else:
            mean, var = self.mean.data.astype(dtype), self.variance.data.astype(dtype)
        self._inv_std = (1.0 / xp.sqrt(var + dtype.type(self.epsilon))).astype(dtype)
        self._xhat = (x - mean[:, None, None]) * self._inv_std[:, None, None]
        scale = self.scale.data.astype(dtype, copy=False)[:, None, None]
        return self._xhat * scale + self.bias.data.astype(dtype, copy=False)[:, None, None]

    def _update_moving_averages(self, mean, var, count):
        m = self.momentum
        unbiased = var * (count / (count - 1)) if count > 1 else var
        self.mean.data[...] = m * mean + (1 - m) * self.mean.data
        self.variance.data[...] = m * unbiased + (1 - m) * self.variance.data

    def _backward(self, dz):
        axes = (0, 2, 3)
        self.scale.grad += (dz * self._xhat).sum(axis=axes)
        self.bias.grad += dz.sum(axis=axes)
        if not (self.needs_input_grad and self.back_propagate):
            return [None] * len(self.inputs)
        scale = self.scale.data.astype(dz.dtype, copy=False)
        dxhat = dz * (scale * self._inv_std)[:, None, None]
        if self._batch_stats:  # the batch mean and variance depend on x too
            mean_dxhat, mean_dxhat_xhat = parallel.batch_means(self.device, [dxhat, dxhat * self._xhat], axes)
            dxhat = dxhat - mean_dxhat[:, None, None] - self._xhat * mean_dxhat_xhat[:, None, None]
        return split_channels(dxhat.astype(dz.dtype, copy=False), self.channels)

    def import_rows(self, param, rows):
        if param is self.variance and any(v < 0 for row in rows for v in row):
            raise N2D2PyError(f"{self.name}: negative value in the variances")
        super().import_rows(param, rows)

    def __repr__(self):
        act = f" {type(self.activation).__name__}" if self.activation else ""
        return (f"BatchNormCell({self.name} <- {','.join(p.name for p in self.inputs)}: "
                f"{self.out_shape} eps={self.epsilon:g} momentum={self.momentum:g}{act})")
