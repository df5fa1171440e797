"""Activation functions (spec §3.4): ``ActivationFunction=<Name>`` with ``ActivationFunction.*``.

Each object caches what its backward needs during ``forward`` (one cached call per cell, as
the cell owns its activation). Arrays keep their dtype; ``xp`` comes from the input array.
"""

from n2d2py.backend import array_module, cpu_kernels, run_split, split_batch
from n2d2py.registry import ACTIVATIONS


def make_activation(sec):
    """The activation of layer section ``sec``; None (identity, N2D2's default since 2021)
    when ``ActivationFunction`` is absent."""
    name, view = sec.sub("ActivationFunction", None)
    if name is None:
        return None
    return ACTIVATIONS.get(name, where=sec.prop("ActivationFunction")).from_section(view)


class Activation:
    """Base: element-wise y = f(x) with ``forward(x)`` then ``backward(dy)`` → dx."""

    @classmethod
    def from_section(cls, view):
        return cls()

    def __repr__(self):
        args = ", ".join(f"{k}={v}" for k, v in vars(self).items() if not k.startswith("_"))
        return f"{type(self).__name__}({args})"


def _sigmoid(x):
    xp = array_module(x)
    # exp of a non-positive number only: no overflow warnings for large |x|.
    e = xp.exp(-xp.abs(x))
    return xp.where(x >= 0, 1 / (1 + e), e / (1 + e))


def by_image(kernel, *arrays):
    """Run an element-wise CPU ``kernel`` on the flattened chunks of images of the
    same-shaped contiguous ``arrays``, the chunks on the worker threads; returns the last
    array (the output)."""
    if arrays[0].size == 0:
        return arrays[-1]
    n = arrays[0].shape[0]
    flat = [a.reshape(n, -1) for a in arrays]
    # memory-bound: a second thread pays from about 1M elements (a residual sum and its ReLU,
    # 64×32×32×32: 0.88 → 0.59 ms; 64×64×16×16: 0.46 → 0.38 ms)
    chunks = split_batch(arrays[0], n, arrays[0].size // 2)
    run_split(chunks, lambda a, b: kernel(*(f[a:b].reshape(-1) for f in flat)))
    return arrays[-1]


@ACTIVATIONS.register("Linear")
class Linear(Activation):
    """y = x."""

    def forward(self, x):
        return x

    def backward(self, dy):
        return dy


@ACTIVATIONS.register("Rectifier")
class Rectifier(Activation):
    """y = x (x > 0) or LeakSlope·x; positive part clipped at Clipping when Clipping > 0."""

    def __init__(self, leak_slope=0.0, clipping=0.0):
        self.leak_slope = leak_slope
        self.clipping = clipping

    @classmethod
    def from_section(cls, view):
        clipping = view.get_float("Clipping", 0.0)
        if clipping < 0:
            raise view.error("Clipping", f"must be 0 (off) or positive, got {clipping}")
        return cls(view.get_float("LeakSlope", 0.0), clipping)

    def forward(self, x):
        xp, kernels = array_module(x), cpu_kernels(x)
        if kernels is not None and x.ndim:  # one pass, no masks: the backward reads x again
            self._x = x = xp.ascontiguousarray(x)
            leak, clip = x.dtype.type(self.leak_slope), x.dtype.type(self.clipping)
            kernel = kernels.rectifier(x.dtype)
            return by_image(lambda x, y: kernel(x, leak, clip, y), x, xp.empty_like(x))
        self._x = None
        positive = x > 0
        self._negative = ~positive
        y = xp.where(positive, x, self.leak_slope * x)
        if self.clipping > 0:
            positive &= x < self.clipping  # gradient 0 where y == Clipping
            y = xp.minimum(y, self.clipping).astype(x.dtype, copy=False)
        self._positive = positive
        return y

    def fused_output(self, y):
        """A cell computed y = f(x) itself (one compiled pass with what made x): the backward
        reads y where it would read x, and the gradient is the same when LeakSlope ≥ 0 (y > 0
        exactly where x > 0, y < Clipping exactly where x < Clipping). CPU arrays only."""
        assert self.leak_slope >= 0 and cpu_kernels(y) is not None
        self._x = y

    def backward(self, dy):
        if self._x is not None:
            xp = array_module(dy)
            dy = xp.ascontiguousarray(dy)
            x = self._x.astype(dy.dtype, copy=False)
            leak, clip = dy.dtype.type(self.leak_slope), dy.dtype.type(self.clipping)
            backward = cpu_kernels(dy).rectifier_backward(dy.dtype)
            return by_image(lambda dy, x, dx: backward(dy, x, leak, clip, dx), dy, x,
                             xp.empty_like(dy))
        if self.leak_slope == 0:
            return dy * self._positive
        return array_module(dy).where(self._negative, self.leak_slope * dy, dy * self._positive)


@ACTIVATIONS.register("Tanh")
class Tanh(Activation):
    """y = tanh(Alpha·x)."""

    def __init__(self, alpha=1.0):
        self.alpha = alpha

    @classmethod
    def from_section(cls, view):
        return cls(view.get_float("Alpha", 1.0))

    def forward(self, x):
        xp = array_module(x)
        self._y = xp.tanh(self.alpha * x) if self.alpha != 1 else xp.tanh(x)
        return self._y

    def backward(self, dy):
        return dy * (self.alpha * (1 - self._y * self._y))


@ACTIVATIONS.register("TanhLeCun")
class TanhLeCun(Activation):
    """y = 1.7159·tanh(2x/3) (LeCun's scaled tanh)."""

    SCALE = 1.7159
    SLOPE = 2.0 / 3.0

    def forward(self, x):
        self._t = array_module(x).tanh(self.SLOPE * x)
        return self.SCALE * self._t

    def backward(self, dy):
        return dy * (self.SCALE * self.SLOPE * (1 - self._t * self._t))


@ACTIVATIONS.register("Logistic")
class Logistic(Activation):
    """y = 1/(1+e⁻ˣ)."""

    def forward(self, x):
        self._y = _sigmoid(x)
        return self._y

    def backward(self, dy):
        return dy * (self._y * (1 - self._y))


@ACTIVATIONS.register("LogisticWithLoss")
class LogisticWithLoss(Logistic):
    """Logistic whose backward passes dy through (the target gives the BCE gradient)."""

    def backward(self, dy):
        return dy


@ACTIVATIONS.register("Saturation")
class Saturation(Activation):
    """y = clamp(x, -Threshold, Threshold), gradient 0 outside."""

    def __init__(self, threshold=1.0):
        self.threshold = threshold

    @classmethod
    def from_section(cls, view):
        threshold = view.get_float("Threshold", 1.0)
        if threshold <= 0:
            raise view.error("Threshold", f"must be positive, got {threshold}")
        return cls(threshold)

    def forward(self, x):
        xp = array_module(x)
        self._inside = xp.abs(x) < self.threshold
        return xp.clip(x, -self.threshold, self.threshold).astype(x.dtype, copy=False)

    def backward(self, dy):
        return dy * self._inside


@ACTIVATIONS.register("Softplus")
class Softplus(Activation):
    """y = ln(1+eˣ)."""

    def forward(self, x):
        xp = array_module(x)
        self._x = x
        return xp.logaddexp(x.dtype.type(0), x)

    def backward(self, dy):
        return dy * _sigmoid(self._x)


@ACTIVATIONS.register("Swish")
class Swish(Activation):
    """y = x·σ(x)."""

    def forward(self, x):
        self._x = x
        self._s = _sigmoid(x)
        return x * self._s

    def backward(self, dy):
        s = self._s
        return dy * (s + self._x * s * (1 - s))
