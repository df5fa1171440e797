"""Element-wise combination of several same-shaped inputs (N2D2: ElemWiseCell, spec §3.3).

``Operation`` (required), with per-input ``Weights`` wᵢ [1] and ``Shifts`` sᵢ [0] as N2D2's
``Frame`` model computes them:

* ``Sum``: Σ(wᵢxᵢ + sᵢ)
* ``AbsSum``: Σ wᵢ|xᵢ| (no shifts; d|x|/dx = 1 at x = 0, as N2D2)
* ``EuclideanSum``: sqrt(Σ(wᵢ²xᵢ² + sᵢ²)) (the spec's sqrt(Σ(wᵢxᵢ+sᵢ)²) agrees when sᵢ = 0)
* ``Prod``: Πxᵢ and ``Max``: maxᵢ xᵢ (the first input wins ties): weights and shifts unused.

As in N2D2, a list shorter than the inputs is completed with 1 (weights) or 0 (shifts): a
single ``Weights=0.5`` on two inputs means w = (0.5, 1), not (0.5, 0.5); a warning says so.
``CoeffMode``: ``PerInput`` (default) and ``PerLayer`` (the same, as in N2D2's Frame model),
or ``PerChannel`` for ``Sum``: one weight and shift per channel, shared by all inputs.
"""

from n2d2py import backend
from n2d2py.activations import Linear, Rectifier, by_image, make_activation
from n2d2py.cells.base import Cell
from n2d2py.registry import CELLS

OPERATIONS = ("Sum", "AbsSum", "EuclideanSum", "Prod", "Max")
COEFF_MODES = ("PerInput", "PerLayer", "PerChannel")
_USES = {"Sum": ("Weights", "Shifts"), "AbsSum": ("Weights",),
         "EuclideanSum": ("Weights", "Shifts"), "Prod": (), "Max": ()}


@CELLS.register("ElemWise")
class ElemWiseCell(Cell):
    """y = Σ(wᵢxᵢ+sᵢ) | Σwᵢ|xᵢ| | sqrt(Σ(wᵢ²xᵢ²+sᵢ²)) | Πxᵢ | maxᵢ xᵢ over the inputs."""

    def __init__(self, name, inputs, device, operation, weights=None, shifts=None,
                 activation=None, per_channel=False):
        super().__init__(name, inputs, inputs[0].shape, device, activation)
        self.operation = operation
        self.per_channel = per_channel
        count = self.out_shape[0] if per_channel else len(inputs)
        self.weights = _complete(weights, count, 1.0)
        self.shifts = _complete(shifts, count, 0.0)
        if per_channel:  # (C, 1, 1) arrays, broadcast over every input
            self._w = device.asarray(self.weights).reshape(-1, 1, 1)
            self._s = device.asarray(self.shifts).reshape(-1, 1, 1)

    @classmethod
    def from_section(cls, sec, inputs, device):
        shapes = {tuple(p.shape) for p in inputs}
        if len(shapes) != 1:
            detail = ", ".join(f"{p.name} {'x'.join(map(str, p.shape))}" for p in inputs)
            raise sec.error("Input", f"ElemWise inputs must have the same dimensions ({detail})")
        operation = sec.get_enum("Operation", OPERATIONS)
        mode = sec.get_enum("CoeffMode", COEFF_MODES, "PerInput")
        if mode == "PerChannel" and operation != "Sum":
            raise sec.error("CoeffMode", "PerChannel is only defined for Operation=Sum")
        count = inputs[0].shape[0] if mode == "PerChannel" else len(inputs)
        what = "channel" if mode == "PerChannel" else "input"
        coeffs = {}
        for key, fill in (("Weights", 1.0), ("Shifts", 0.0)):
            values = sec.get_floats(key, [])
            if values and key not in _USES[operation]:
                message = f"Operation={operation} does not use {key} (as in N2D2)"
                sec.doc.warn(message, sec.prop(key))
            elif 0 < len(values) < count:
                sec.doc.warn(f"{len(values)} value(s) for {count} {what}s: the others take "
                             f"{fill:g}, as in N2D2", sec.prop(key))
            elif len(values) > count:
                sec.doc.warn(f"{len(values)} values for {count} {what}s: the extra ones are "
                             "ignored, as in N2D2", sec.prop(key))
            coeffs[key] = values
        return cls(sec.name, inputs, device, operation, coeffs["Weights"], coeffs["Shifts"],
                   make_activation(sec), mode == "PerChannel")

    def _coeffs(self, i, dtype):
        """(wᵢ, sᵢ) for input i: numbers, or (C, 1, 1) arrays in PerChannel mode."""
        if self.per_channel:
            return self._w.astype(dtype, copy=False), self._s.astype(dtype, copy=False)
        return dtype.type(self.weights[i]), dtype.type(self.shifts[i])

    def forward(self, xs, train=False):
        fused = self._fused_activation(xs)
        if fused is None:
            return super().forward(xs, train)
        kernels, act, leak, clip = fused  # Σxᵢ, its last addition and the activation in one pass
        dtype = xs[0].dtype
        head = xs[:-1]
        a = head[0] if len(head) == 1 else _sum_on_threads(
            head, [self._coeffs(i, dtype) for i in range(len(head))])
        y = self.xp.empty_like(a)
        kernel = kernels.add_rectifier(act, dtype)
        leak, clip = dtype.type(leak), dtype.type(clip)
        by_image(lambda a, b, y: kernel(a, b, leak, clip, y), a, xs[-1], y)
        if act:
            self.activation.fused_output(y)
        self.xs, self.y = xs, y
        return y

    def _fused_activation(self, xs):
        """(kernels, act code, leak, clip) when a plain sum (weights 1, shifts 0) of CPU
        arrays and its activation (none, Linear, or a Rectifier with LeakSlope ≥ 0) run as
        one compiled pass (``kernels.add_rectifier``), else None. The values are the generic
        path's: the same additions in the same order, then the same activation."""
        act = self.activation
        if (self.operation != "Sum" or self.per_channel or len(xs) < 2 or not _threaded(xs)
                or xs[0].dtype.kind != "f" or any(w != 1 for w in self.weights)
                or any(s != 0 for s in self.shifts)):
            return None
        if act is None or type(act) is Linear:
            return backend.cpu_kernels(xs[0]), 0, 0.0, 0.0
        if type(act) is Rectifier and act.leak_slope >= 0:
            return backend.cpu_kernels(xs[0]), 1, act.leak_slope, act.clipping
        return None

    def _forward(self, xs, train):
        self.xs = xs
        xp, op, dtype = self.xp, self.operation, xs[0].dtype
        coeffs = [self._coeffs(i, dtype) for i in range(len(xs))]
        if op == "Sum" and _threaded(xs):
            y = _sum_on_threads(xs, coeffs)
        elif op == "Sum":  # a weight of 1 and a shift of 0 cost no pass over the data
            y = None
            for x, (w, s) in zip(xs, coeffs):
                term = _affine(x, w, s)
                y = term if y is None else y + term
        elif op == "AbsSum":
            y = sum(w * xp.abs(x) for x, (w, _) in zip(xs, coeffs))
        elif op == "EuclideanSum":
            y = xp.sqrt(sum(w * w * x * x + s * s for x, (w, s) in zip(xs, coeffs)))
        elif op == "Prod":
            y = xs[0]
            for x in xs[1:]:
                y = y * x
        else:
            y = xs[0]
            for x in xs[1:]:
                y = xp.maximum(y, x)
        self.y = y
        return y.astype(dtype, copy=False) if y is not xs[0] else y.copy()

    def _backward(self, dz):
        if not self.needs_input_grad:
            return [None] * len(self.inputs)
        xp, op, xs = self.xp, self.operation, self.xs
        coeffs = [self._coeffs(i, dz.dtype) for i in range(len(xs))]
        if op == "Sum":
            grads = [_affine(dz, w, 0) for w, _ in coeffs]
        elif op == "AbsSum":
            grads = [w * xp.where(x >= 0, dz, -dz) for x, (w, _) in zip(xs, coeffs)]
        elif op == "EuclideanSum":
            nonzero = self.y != 0
            ratio = dz / xp.where(nonzero, self.y, 1) * nonzero
            grads = [w * w * x * ratio for x, (w, _) in zip(xs, coeffs)]
        elif op == "Prod":
            grads = [self._prod_grad(i, dz) for i in range(len(xs))]
        else:
            taken = xp.zeros(self.y.shape, dtype=bool)
            grads = []
            for x in xs:
                first = (x == self.y) & ~taken
                taken |= first
                grads.append(dz * first)
        return [g.astype(dz.dtype, copy=False) for g in grads]

    def _prod_grad(self, i, dz):
        g = dz
        for j, x in enumerate(self.xs):
            if j != i:
                g = g * x
        return g

    def nb_virtual_synapses(self):
        c, h, w = self.out_shape
        return c * h * w * len(self.inputs)

    def __repr__(self):
        ins = ",".join(p.name for p in self.inputs)
        act = f" {type(self.activation).__name__}" if self.activation else ""
        return f"ElemWiseCell({self.name} <- {ins}: {self.out_shape} {self.operation}{act})"


def _threaded(xs):
    """Whether the inputs are numpy arrays of one dtype on the CPU, contiguous (a sum over
    them then runs on the worker threads, batch chunk by batch chunk)."""
    return (backend.cpu_kernels(xs[0]) is not None and xs[0].ndim > 1
            and all(x.dtype == xs[0].dtype and x.flags.c_contiguous for x in xs))


def _sum_on_threads(xs, coeffs):
    """Σ(wᵢxᵢ + sᵢ) as the generic path computes it (the same terms added in the same order),
    each chunk of the batch on a worker thread, into one output (a residual sum was one
    serial pass, the same at one and two threads)."""
    y = backend.array_module(xs[0]).empty_like(xs[0])
    n = len(y)

    def part(a, b):
        out = y[a:b]
        for i, (x, (w, s)) in enumerate(zip(xs, coeffs)):
            term = _affine(x[a:b], w, s)
            if i == 0:
                out[...] = term
            else:
                out += term

    backend.run_split(backend.split_batch(y, n, y.size * len(xs)), part)
    return y


def _affine(x, w, s):
    """w·x + s, skipping the multiply by a scalar 1 and the addition of a scalar 0 (numpy
    scalars included: they have a shape, ())."""
    if not (getattr(w, "ndim", 0) == 0 and w == 1):
        x = w * x
    if not (getattr(s, "ndim", 0) == 0 and s == 0):
        x = x + s
    return x


def _complete(values, count, fill):
    """N2D2's resize: the first ``count`` values, completed with ``fill``."""
    values = [float(v) for v in (values or [])][:count]
    return values + [fill] * (count - len(values))
