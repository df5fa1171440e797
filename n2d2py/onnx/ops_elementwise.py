"""Element-wise ONNX ops (Add, Sub, Mul, Div, Sum, Max) and activations (Relu, LeakyRelu,
Sigmoid, Tanh, Softplus, Clip): ElemWise cells, folded biases and folded activations."""

import numpy as np

from n2d2py import activations as act
from n2d2py.cells.elemwise import ElemWiseCell
from n2d2py.onnx.ops import converter


# -- arithmetic -----------------------------------------------------------------------------
def _per_channel(imp, node, value, x):
    """A constant operand as a scalar (float) or a per-channel vector (C,), else an error."""
    full = tuple(x.onnx_shape(1))
    try:
        fits = np.broadcast_shapes(value.shape, full) == full
    except ValueError:
        fits = False
    if not fits:
        raise imp.fail(node, f"constant of shape {list(value.shape)} does not broadcast to the "
                       f"input's shape {list(full[1:])}")
    v = np.broadcast_to(value.astype(np.float32), full)[0]
    if np.all(v == v.flat[0]):
        return float(v.flat[0])
    if x.rank == 2 and x.shape[1:] == (1, 1):
        return v.copy()
    flat = v.reshape(v.shape[0], -1)
    if x.rank != 2 and np.all(flat == flat[:, :1]):
        return flat[:, 0].copy()
    raise imp.fail(node, f"a constant of shape {list(value.shape)} that varies over positions "
                   "is not supported (scalars and per-channel constants are)")


def _affine(imp, node, x, weight, shift):
    """y = weight·x + shift (scalars or per-channel vectors) as an ElemWise Sum cell."""
    per_channel = not (np.isscalar(weight) and np.isscalar(shift))
    c = x.shape[0]
    w = np.broadcast_to(weight, (c,)).tolist() if per_channel else [weight]
    s = np.broadcast_to(shift, (c,)).tolist() if per_channel else [shift]
    make = lambda n, p, sec: ElemWiseCell(n, p, imp.device, "Sum", w, s, None, per_channel)
    imp.add(node, make, [x])


def _fold_bias(imp, node, x, shift):
    """CNTK=1: a constant Add right after a bias-less Conv/Fc becomes its bias."""
    from n2d2py.cells.base import Param

    cell = imp.cells.get(x.cell)
    if not (imp.cntk and cell is not None and cell.type_name in ("Conv", "Fc")
            and cell.bias is None and cell.activation is None
            and imp.uses.get(node.input[0], 0) == 1 and not np.isscalar(shift)):
        return False
    o = cell.out_shape[0]
    w = cell.weights
    cell.bias = Param("bias", (o,), imp.filler(cell.section, "BiasFiller", shift), "Bias",
                      w.fan_in, w.fan_out)
    imp.alias(node, x)
    return True


@converter("Add", "Sub", "Mul", "Div", "Sum", "Max")
def elementwise(imp, node, a):
    names = [n for n in node.input if n]
    consts = [isinstance(imp.tensors.get(n), np.ndarray) for n in names]
    if not any(consts):
        return _data_elementwise(imp, node, [imp.data(node, i) for i in range(len(names))])
    if len(names) != 2 or node.op_type in ("Sum", "Max"):
        raise imp.fail(node, f"{node.op_type} with a constant operand is not supported")
    i = consts.index(False)
    x, value = imp.data(node, i), imp.tensors[names[1 - i]]
    c = _per_channel(imp, node, value, x)
    op = node.op_type
    if op == "Div" and i == 1:
        raise imp.fail(node, "dividing a constant by a tensor is not supported")
    if op in ("Add", "Sub") and i == 0 and _fold_bias(imp, node, x, c if op == "Add" else -c):
        return
    if op == "Div" and np.any(np.asarray(c) == 0):
        raise imp.fail(node, "division by a constant holding 0")
    weight, shift = {"Add": lambda: (1.0, c), "Mul": lambda: (c, 0.0),
                     "Div": lambda: (1.0 / np.asarray(c, np.float64), 0.0),
                     "Sub": lambda: (1.0, -c) if i == 0 else (-1.0, c)}[op]()
    _affine(imp, node, x, weight, shift)


def _data_elementwise(imp, node, xs):
    shapes = {(x.shape, x.rank) for x in xs}
    if len(shapes) != 1:
        raise imp.fail(node, "inputs of different shapes (broadcasting between computed "
                       f"tensors is not supported): {[list(x.shape) for x in xs]}")
    op = node.op_type
    if op == "Div":
        raise imp.fail(node, "Div of two computed tensors is not supported")
    operation = {"Add": "Sum", "Sum": "Sum", "Sub": "Sum", "Mul": "Prod", "Max": "Max"}[op]
    weights = [1.0, -1.0] if op == "Sub" else None
    make = lambda n, p, s: ElemWiseCell(n, p, imp.device, operation, weights)
    imp.add(node, make, xs)


# -- activations ------------------------------------------------------------------------------
@converter("Relu")
def relu(imp, node, a):
    imp.activation(node, act.Rectifier())


@converter("LeakyRelu")
def leaky_relu(imp, node, a):
    imp.activation(node, act.Rectifier(leak_slope=a.get("alpha", 0.01)))


@converter("Sigmoid")
def sigmoid(imp, node, a):
    imp.activation(node, act.Logistic())


@converter("Tanh")
def tanh(imp, node, a):
    imp.activation(node, act.Tanh())


@converter("Softplus")
def softplus(imp, node, a):
    imp.activation(node, act.Softplus())


@converter("Clip")
def clip(imp, node, a):
    low, high = a.get("min", -np.inf), a.get("max", np.inf)
    if len(node.input) > 1 and node.input[1]:
        low = float(imp.const(node, 1, "min").reshape(-1)[0])
    if len(node.input) > 2 and node.input[2]:
        high = float(imp.const(node, 2, "max").reshape(-1)[0])
    if low == 0 and high > 0:
        imp.activation(node, act.Rectifier(clipping=0.0 if np.isinf(high) else high))
    elif low == -high and high > 0 and not np.isinf(high):
        imp.activation(node, act.Saturation(high))
    else:
        raise imp.fail(node, f"Clip to [{low}, {high}] is not supported ([0, max] and "
                       "[-t, t] are)")



