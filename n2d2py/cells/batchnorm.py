"""Batch normalisation per channel (N2D2: BatchNormCell, spec §3.3).

Learning (``MovingAverageMomentum`` > 0): y = scale·(x − μ_B)/sqrt(σ²_B + ε) + bias with the
batch statistics over N×H×W (biased σ²_B), and the moving averages
mean ← m·μ_B + (1−m)·mean, variance ← m·σ²_B·n/(n−1) + (1−m)·variance (unbiased, as cuDNN in
N2D2's CUDA model and PyTorch; N2D2's CPU ``Frame`` model keeps the biased σ²_B there).
Testing, or ``MovingAverageMomentum=0`` (frozen statistics, also while learning): the moving
mean and variance replace the batch ones. As in N2D2, scales start at 1, biases, means and
variances at 0, and the activation is applied after the normalisation.

Under mpiexec the batch statistics are those of the whole batch, summed over the ranks
(synchronised BatchNorm, ``parallel.batch_mean_var``): N processes learn what one does. Both
paths take every sum over the batch per micro-slice (``parallel.slices``): the statistics
are exchanged slot by slot, the scale and bias gradients added in float64.

On the CPU (``backend.cpu_kernels``), with no activation, Linear or a Rectifier, the cell
runs fused compiled passes instead (under mpiexec too): one pass for the batch sums, one that
normalises and applies the activation; in the backward one pass for the two gradient sums,
one for the input gradient. It keeps only references to its input and output (no x̂ copy).

Means and variances are not learned: they are ``buffers()`` (saved in ``<cell>_means.syntxt``
/ ``<cell>_variances.syntxt`` and in checkpoints, never given a solver).
"""

from n2d2py import backend, parallel
from n2d2py.parallel import slices
from n2d2py.activations import Linear, Rectifier, make_activation
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

    # -- fused CPU path --------------------------------------------------------------------
    def _fused_activation(self, x):
        """(kernels, act code, leak, clip) when the fused CPU kernels apply to ``x``."""
        kernels = backend.cpu_kernels(x)
        act = self.activation
        if kernels is None or x.dtype.kind != "f" or x.ndim != 4:
            return None
        if act is None or type(act) is Linear:
            return kernels, 0, 0.0, 0.0
        if type(act) is Rectifier and act.leak_slope >= 0:
            return kernels, 1, act.leak_slope, act.clipping
        return None

    def forward(self, xs, train=False):
        x = concat_channels(xs)
        self._fused = self._fused_activation(x)
        if self._fused is None:
            return super().forward(xs, train)
        kernels, act, leak, clip = self._fused
        xp, dtype = self.xp, x.dtype
        x = xp.ascontiguousarray(x)
        n, c = x.shape[:2]
        flat = x.reshape(n, c, -1)
        cut = self._cut = slices.cut(self.device, n)
        chunks = self._chunks = backend.split_batch(x, n, x.size, cut.bounds)
        self._batch_stats = train and self.momentum > 0
        if self._batch_stats:
            count = cut.rows * (x[0].size // c)
            sums = kernels.channel_sums(dtype)
            total = self._exchange(chunks, lambda s, e: sums(flat[s:e], xp.zeros((2, c), xp.float64)))
            mean = total[0] / count
            var = xp.maximum(total[1] / count - mean * mean, 0.0)
            self._update_moving_averages(mean, var, count)
            mean, var = mean.astype(dtype), var.astype(dtype)
        else:
            mean, var = self.mean.data.astype(dtype), self.variance.data.astype(dtype)
        inv_std = (1.0 / xp.sqrt(var + dtype.type(self.epsilon))).astype(dtype)
        scale = self.scale.data.astype(dtype)
        a, bias = scale * inv_std, self.bias.data.astype(dtype)
        y = xp.empty_like(x)
        out = y.reshape(n, c, -1)
        kernel = kernels.normalize(act, dtype)
        leak, clip = dtype.type(leak), dtype.type(clip)
        backend.run_split(chunks, lambda lo, hi: kernel(flat[lo:hi], mean, a, bias, leak, clip,
                                                        out[lo:hi]))
        self._x, self._y, self._mean, self._inv_std = flat, out, mean, inv_std
        self._xhat = None
        return y

    def backward(self, dy):
        if self._fused is None:
            return super().backward(dy)
        kernels, act, leak, clip = self._fused
        xp, dtype = self.xp, self._x.dtype
        n, c = self._x.shape[:2]
        g = xp.ascontiguousarray(dy, dtype=dtype).reshape(n, c, -1)
        x, y, mean, inv_std = self._x, self._y, self._mean, self._inv_std
        leak, clip = dtype.type(leak), dtype.type(clip)
        chunks = self._chunks
        sums = kernels.normalize_backward_sums(act, dtype)
        total = self._exchange(chunks, lambda a, b: sums(
            g[a:b], x[a:b], y[a:b], mean, inv_std, leak, clip, xp.zeros((2, c), xp.float64)),
            grads=True)
        if not (self.needs_input_grad and self.back_propagate):
            return [None] * len(self.inputs)
        k1 = self.scale.data.astype(dtype) * inv_std
        if self._batch_stats:  # the batch mean and variance depend on x too
            count = self._cut.rows * (x[0].size // c)
            k2, k3 = (total[0] / count).astype(dtype), (total[1] / count).astype(dtype)
        else:
            k2 = k3 = xp.zeros(c, dtype=dtype)
        dx = xp.empty((n, c) + tuple(dy.shape[2:]), dtype=dtype)
        flat = dx.reshape(n, c, -1)
        kernel = kernels.normalize_backward(act, dtype)
        backend.run_split(chunks, lambda a, b: kernel(
            g[a:b], x[a:b], y[a:b], mean, inv_std, k1, k2, k3, leak, clip, flat[a:b]))
        return split_channels(dx, self.channels)

    def _exchange(self, chunks, sums, grads=False):
        """The (2, C) float64 ``sums(start, stop)`` over the whole batch, taken per micro-slice
        on the worker threads and exchanged slot by slot (``slices.exchange``). ``grads``: add
        the slices' sums, rounded to the data's dtype, to the bias and scale gradients."""
        cut = self._cut
        parts = backend.run_split(chunks, lambda a, b: [sums(s, e) for s, e in cut.within(a, b)])
        partials = [p for chunk in parts for p in chunk]
        if grads:
            dtype = self._x.dtype
            mine = slices.add64(p.astype(dtype) for p in partials)
            self.scale.grad += mine[1]
            self.bias.grad += mine[0]
        return slices.exchange(self.device, cut, partials)

    # -- generic path (CuPy, other activations) ----------------------------------------------
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
        bounds = slices.cut(self.device, len(dz)).bounds
        self.scale.grad += slices.add64((dz[a:b] * self._xhat[a:b]).sum(axis=axes) for a, b in bounds)
        self.bias.grad += slices.add64(dz[a:b].sum(axis=axes) for a, b in bounds)
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
