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
    """1/(1+e⁻ˣ) as 1/(1+e) for x ≥ 0 and e/(1+e) for x < 0, e = e^−|x| (exp of a non-positive
    number only: no overflow for large |x|). The two are chosen by bit masks, not ``where``:
    numpy's ``where`` branches per element, and on random signs it cost 2/3 of the time."""
    xp = array_module(x)
    e = xp.exp(-xp.abs(x))
    d = 1 + e
    bits = xp.int32 if x.dtype.itemsize == 4 else xp.int64
    negative = -(x < 0).astype(bits)  # all ones where x < 0
    high, low = (1 / d).view(bits), (e / d).view(bits)
    return ((low & negative) | (high & ~negative)).view(x.dtype)


# Elements per piece of ``chunked``: an expression's temporaries (exp, where, ...) stay in the
# L2 cache instead of streaming whole batches through memory; smaller pieces cost more GIL
# hand-offs between numpy calls at two threads (a Logistic's forward: 6.0 ms at 32 K, 3.7 at
# 128 K, 8.6 in one piece).
CHUNK = 1 << 17


def chunked(fn, *arrays):
    """``fn(*arrays)`` for an element-wise numpy expression ``fn`` of same-shaped arrays,
    evaluated piece by piece (CHUNK elements of the flattened arrays), the pieces on the worker
    threads: the same values (each element's operations are unchanged) in one pass over
    memory instead of one per operation (a Logistic's forward and backward over 2 M values at
    two threads: 15.5 → 4.9 ms, with ``_sigmoid``'s masks; Softplus 49 → 6.9 ms). CuPy and
    small arrays: ``fn(*arrays)``."""
    first = arrays[0]
    if (cpu_kernels(first) is None or first.size < 2 * CHUNK
            or any(a.shape != first.shape for a in arrays)):
        return fn(*arrays)
    xp = array_module(first)
    flats = [xp.ascontiguousarray(a).reshape(-1) for a in arrays]
    out = xp.empty(first.size, dtype=xp.result_type(*arrays))
    pieces = [(s, min(first.size, s + CHUNK)) for s in range(0, first.size, CHUNK)]

    def run(lo, hi):
        for s, e in pieces[lo:hi]:
            out[s:e] = fn(*(f[s:e] for f in flats))

    run_split(split_batch(first, len(pieces), first.size * 4), run)
    return out.reshape(first.shape)


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
        xp, alpha = array_module(x), self.alpha
        self._y = chunked(lambda x: xp.tanh(alpha * x) if alpha != 1 else xp.tanh(x), x)
        return self._y

    def backward(self, dy):
        alpha = self.alpha
        return chunked(lambda dy, y: dy * (alpha * (1 - y * y)), dy, self._y)


@ACTIVATIONS.register("TanhLeCun")
class TanhLeCun(Activation):
    """y = 1.7159·tanh(2x/3) (LeCun's scaled tanh)."""

    SCALE = 1.7159
    SLOPE = 2.0 / 3.0

    def forward(self, x):
        xp, scale, slope = array_module(x), self.SCALE, self.SLOPE
        self._t = chunked(lambda x: xp.tanh(slope * x), x)
        return chunked(lambda t: scale * t, self._t)

    def backward(self, dy):
        gain = self.SCALE * self.SLOPE
        return chunked(lambda dy, t: dy * (gain * (1 - t * t)), dy, self._t)


@ACTIVATIONS.register("Logistic")
class Logistic(Activation):
    """y = 1/(1+e⁻ˣ)."""

    def forward(self, x):
        self._y = chunked(_sigmoid, x)
        return self._y

    def backward(self, dy):
        return chunked(lambda dy, y: dy * (y * (1 - y)), dy, self._y)


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
        # numpy's logaddexp(0, x) computes this with scalar code, 8× slower
        return chunked(lambda x: xp.maximum(x, x.dtype.type(0)) + xp.log1p(xp.exp(-xp.abs(x))), x)

    def backward(self, dy):
        return chunked(lambda dy, x: dy * _sigmoid(x), dy, self._x)


@ACTIVATIONS.register("Swish")
class Swish(Activation):
    """y = x·σ(x)."""

    def forward(self, x):
        self._x = x
        self._s = chunked(_sigmoid, x)
        return chunked(lambda x, s: x * s, x, self._s)

    def backward(self, dy):
        return chunked(lambda dy, s, x: dy * (s + x * s * (1 - s)), dy, self._s, self._x)
