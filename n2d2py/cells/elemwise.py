"""Element-wise combination of several same-shaped inputs (N2D2: ElemWiseCell)."""

from n2d2py.activations import make_activation
from n2d2py.cells.base import Cell
from n2d2py.registry import CELLS

OPERATIONS = ("Sum", "AbsSum", "EuclideanSum", "Prod", "Max")


@CELLS.register("ElemWise")
class ElemWiseCell(Cell):
    """y = Σ(wᵢxᵢ+sᵢ) | Σwᵢ|xᵢ| | sqrt(Σ(wᵢxᵢ+sᵢ)²) | Πxᵢ | maxᵢ xᵢ over the inputs."""

    def __init__(self, name, inputs, device, operation, weights=None, shifts=None, activation=None):
        super().__init__(name, inputs, inputs[0].shape, device, activation)
        self.operation = operation
        self.weights = list(weights or [1.0] * len(inputs))
        self.shifts = list(shifts or [0.0] * len(inputs))

    @classmethod
    def from_section(cls, sec, inputs, device):
        shapes = {tuple(p.shape) for p in inputs}
        if len(shapes) != 1:
            detail = ", ".join(f"{p.name} {'x'.join(map(str, p.shape))}" for p in inputs)
            raise sec.error("Input", f"ElemWise inputs must have the same dimensions ({detail})")
        operation = sec.get_enum("Operation", OPERATIONS)
        n = len(inputs)
        weights = sec.get_floats("Weights", [1.0] * n)
        shifts = sec.get_floats("Shifts", [0.0] * n)
        weights = weights * n if len(weights) == 1 else weights
        shifts = shifts * n if len(shifts) == 1 else shifts
        for key, values in (("Weights", weights), ("Shifts", shifts)):
            if len(values) != n:
                raise sec.error(key, f"expected 1 or {n} values (one per input), got {len(values)}")
        sec.get_enum("CoeffMode", ("PerInput",), "PerInput")
        return cls(sec.name, inputs, device, operation, weights, shifts, make_activation(sec))

    def _forward(self, xs, train):
        self.xs = xs
        xp, op = self.xp, self.operation
        terms = [w * x + s for x, w, s in zip(xs, self.weights, self.shifts)]
        if op == "Sum":
            y = sum(terms)
        elif op == "AbsSum":
            y = sum(w * xp.abs(x) for x, w in zip(xs, self.weights))
        elif op == "EuclideanSum":
            self.terms = terms
            y = xp.sqrt(sum(t * t for t in terms))
        elif op == "Prod":
            y = xs[0]
            for x in xs[1:]:
                y = y * x
        else:
            y = xs[0]
            for x in xs[1:]:
                y = xp.maximum(y, x)
        self.y = y
        return y

    def _backward(self, dz):
        xp, op, xs = self.xp, self.operation, self.xs
        if op == "Sum":
            grads = [w * dz for w in self.weights]
        elif op == "AbsSum":
            grads = [w * xp.sign(x) * dz for x, w in zip(xs, self.weights)]
        elif op == "EuclideanSum":
            safe = xp.where(self.y > 0, self.y, 1)
            grads = [w * t / safe * dz * (self.y > 0) for t, w in zip(self.terms, self.weights)]
        elif op == "Prod":
            grads = []
            for i in range(len(xs)):
                g = dz
                for j, x in enumerate(xs):
                    if j != i:
                        g = g * x
                grads.append(g)
        else:
            taken = xp.zeros(self.y.shape, dtype=bool)
            grads = []
            for x in xs:
                first = (x == self.y) & ~taken
                taken |= first
                grads.append(dz * first)
        return [g.astype(dz.dtype, copy=False) for g in grads]

    def nb_virtual_synapses(self):
        c, h, w = self.out_shape
        return c * h * w * len(self.inputs)
