"""ONNX op type → converter: one small function per op, each building existing cells.

A converter gets the Importer, the node and its attributes; it reads its inputs with
``imp.data`` (a computed tensor) or ``imp.const`` (a constant), and records its output with
``imp.add`` (a new cell), ``imp.alias`` (no cell: same values) or ``imp.activation``.
Shape-only ops (Flatten, Reshape, Squeeze, Transpose, ...) are in ``ops_shape``.
"""

import math

import numpy as np

from n2d2py import activations as act
from n2d2py.cells.batchnorm import BatchNormCell
from n2d2py.cells.conv import ConvCell
from n2d2py.cells.kernel import read_kernel_config
from n2d2py.cells.dropout import DropoutCell
from n2d2py.cells.elemwise import ElemWiseCell
from n2d2py.cells.fc import FcCell
from n2d2py.cells.padding import PaddingCell
from n2d2py.cells.pool import PoolCell
from n2d2py.cells.softmax import SoftmaxCell
from n2d2py.onnx.importer import ValuesFiller

CONVERTERS = {}


def converter(*names):
    def deco(fn):
        for name in names:
            CONVERTERS[name] = fn
        return fn

    return deco


# -- windows: Conv and pools ------------------------------------------------------------------
def window_pads(imp, node, a, in_hw, kernel, stride, dilation=(1, 1)):
    """(begin (h, w), end (h, w)) from ``pads`` or ``auto_pad`` (SAME_* from the input size)."""
    auto = a.get("auto_pad", "NOTSET")
    if auto == "NOTSET":
        pads = list(a.get("pads", [0, 0, 0, 0]))
        if len(pads) != 4:
            raise imp.fail(node, f"pads {pads}: only 2-D windows are supported")
        return tuple(pads[:2]), tuple(pads[2:])
    if auto == "VALID":
        return (0, 0), (0, 0)
    begin, end = [], []
    for size, k, s, d in zip(in_hw, kernel, stride, dilation):
        total = max((math.ceil(size / s) - 1) * s + (k - 1) * d + 1 - size, 0)
        small, big = total // 2, total - total // 2
        begin.append(small if auto == "SAME_UPPER" else big)
        end.append(big if auto == "SAME_UPPER" else small)
    return tuple(begin), tuple(end)


def pad_first(imp, node, x, begin, end):
    """A zero Padding cell ``<out>_padding`` in front of a window with asymmetric pads."""
    make = lambda n, p, s: PaddingCell(n, p, imp.device, begin[0], end[0], begin[1], end[1])
    imp.add(node, make, [x], name=node.output[0] + "_padding")
    return imp.tensors[node.output[0]]


def _pair(imp, node, a, key, default):
    values = tuple(a.get(key, default))
    if len(values) != 2:
        raise imp.fail(node, f"{key} {list(values)}: only 2-D windows are supported")
    return values


@converter("Conv")
def conv(imp, node, a):
    x, w = imp.data(node), imp.const(node, 1, "weights")
    bias = imp.const(node, 2, "bias", optional=True)
    if x.rank != 4 or w.ndim != 4:
        raise imp.fail(node, f"only 2-D convolutions are supported (weights {list(w.shape)})")
    o, per_group, kh, kw = w.shape
    groups, c = int(a.get("group", 1)), x.shape[0]
    if per_group * groups != c or o % groups:
        raise imp.fail(node, f"weights {list(w.shape)} with group={groups} do not fit {c} "
                       "input channels")
    kernel = _pair(imp, node, a, "kernel_shape", (kh, kw))
    stride = _pair(imp, node, a, "strides", (1, 1))
    dilation = _pair(imp, node, a, "dilations", (1, 1))
    begin, end = window_pads(imp, node, a, x.shape[1:], kernel, stride, dilation)
    if begin != end:
        x, begin = pad_first(imp, node, x, begin, end), (0, 0)
    dense = np.zeros((o, c, kh, kw), np.float32)
    mask = np.zeros((o, c), bool)
    og = o // groups
    for grp in range(groups):
        rows, cols = slice(grp * og, (grp + 1) * og), slice(grp * per_group, (grp + 1) * per_group)
        dense[rows, cols] = w[rows]
        mask[rows, cols] = True

    def make(name, ports, sec):
        no_bias, back_propagate = read_kernel_config(sec.config)
        cell = ConvCell(name, ports, imp.device, o, kernel, stride, begin, dilation, [mask],
                        imp.filler(sec, "WeightsFiller", dense),
                        imp.filler(sec, "BiasFiller", bias if bias is not None else np.zeros(o)),
                        no_bias or bias is None, None, groups, back_propagate)
        return cell

    imp.add(node, make, [x], kind="Conv")


def _pool(imp, node, x, pooling, kernel, stride, begin, rank=4):
    c = x.shape[0]
    make = lambda n, p, s: PoolCell(n, p, imp.device, c, kernel, pooling, stride, begin,
                                    [np.eye(c, dtype=bool)])
    imp.add(node, make, [x], kind="Pool", rank=rank)


@converter("MaxPool", "AveragePool")
def pool(imp, node, a):
    x = imp.data(node)
    if x.rank != 4:
        raise imp.fail(node, "only 2-D pooling is supported")
    if len([o for o in node.output if o]) > 1 and imp.uses.get(node.output[1], 0):
        raise imp.fail(node, "the Indices output is not supported")
    kernel = _pair(imp, node, a, "kernel_shape", None)
    stride = _pair(imp, node, a, "strides", (1, 1))
    if _pair(imp, node, a, "dilations", (1, 1)) != (1, 1):
        raise imp.fail(node, "dilated pooling is not supported")
    begin, end = window_pads(imp, node, a, x.shape[1:], kernel, stride)
    if begin != end:
        raise imp.fail(node, f"asymmetric pads {list(begin) + list(end)} are not supported")
    if a.get("ceil_mode", 0):
        for size, k, s, p in zip(x.shape[1:], kernel, stride, begin):
            if (size + 2 * p - k) % s:
                raise imp.fail(node, "ceil_mode=1 with a window past the border is not supported")
    average = node.op_type == "AveragePool"
    if average and any(begin) and not a.get("count_include_pad", 0):
        raise imp.fail(node, "count_include_pad=0 with padding is not supported (n2d2py's "
                       "average includes the padding)")
    _pool(imp, node, x, "Average" if average else "Max", kernel, stride, begin)


@converter("GlobalAveragePool", "GlobalMaxPool")
def global_pool(imp, node, a):
    x = imp.data(node)
    pooling = "Average" if node.op_type == "GlobalAveragePool" else "Max"
    _pool(imp, node, x, pooling, x.shape[1:], (1, 1), (0, 0))


@converter("ReduceMean", "ReduceMax")
def reduce(imp, node, a):
    x = imp.data(node)
    axes = a.get("axes")
    if axes is None and len(node.input) > 1 and node.input[1]:
        axes = imp.const(node, 1, "axes").tolist()
    if x.rank != 4 or sorted(int(v) % 4 for v in (axes or [])) != [2, 3]:
        raise imp.fail(node, f"only a reduction over the spatial axes [2, 3] of an NCHW tensor "
                       f"is supported (axes {axes})")
    pooling = "Average" if node.op_type == "ReduceMean" else "Max"
    _pool(imp, node, x, pooling, x.shape[1:], (1, 1), (0, 0), 4 if a.get("keepdims", 1) else 2)


# -- dense layers -----------------------------------------------------------------------------
def _fc(imp, node, x, weights, bias):
    if x.rank != 2:
        raise imp.fail(node, f"the data input has rank {x.rank}; Gemm/MatMul need [N, features]")
    size = int(np.prod(x.shape))
    if weights.shape[1] != size:
        raise imp.fail(node, f"weights for {weights.shape[1]} inputs, the input has {size} "
                       f"values ({'x'.join(map(str, x.shape))})")
    n = weights.shape[0]

    def make(name, ports, sec):
        cfg = sec.config
        no_bias, back_propagate = cfg.get_bool("NoBias", False), cfg.get_bool("BackPropagate", True)
        return FcCell(name, ports, imp.device, n, imp.filler(sec, "WeightsFiller", weights),
                      imp.filler(sec, "BiasFiller", bias if bias is not None else np.zeros(n)),
                      no_bias or bias is None, None, back_propagate)

    imp.add(node, make, [x], kind="Fc", rank=2)


@converter("Gemm")
def gemm(imp, node, a):
    x, b = imp.data(node), imp.const(node, 1, "weights (B)")
    c = imp.const(node, 2, "bias (C)", optional=True)
    if a.get("transA", 0):
        raise imp.fail(node, "transA=1 is not supported")
    weights = (b if a.get("transB", 0) else b.T) * np.float32(a.get("alpha", 1.0))
    if c is not None:
        c = np.broadcast_to(c.astype(np.float32) * np.float32(a.get("beta", 1.0)),
                            (1, weights.shape[0])).reshape(-1)
    _fc(imp, node, x, weights, c)


@converter("MatMul")
def matmul(imp, node, a):
    x, b = imp.data(node), imp.const(node, 1, "weights (second operand)")
    if b.ndim != 2:
        raise imp.fail(node, f"weights of shape {list(b.shape)}: a 2-D constant is expected")
    _fc(imp, node, x, b.T, None)


@converter("BatchNormalization")
def batchnorm(imp, node, a):
    x = imp.data(node)
    scale, bias, mean, var = (imp.const(node, i, what) for i, what in
                              enumerate(("scale", "bias", "mean", "variance"), 1))
    if any(imp.uses.get(o, 0) for o in node.output[1:] if o):
        raise imp.fail(node, "the running-statistics outputs (training mode) are not supported")
    epsilon, momentum = a.get("epsilon", 1e-5), 1.0 - a.get("momentum", 0.9)

    def make(name, ports, sec):
        cfg = sec.config
        cell = BatchNormCell(name, ports, imp.device, cfg.get_float("Epsilon", epsilon),
                             cfg.get_float("MovingAverageMomentum", momentum), None,
                             cfg.get_bool("BackPropagate", True))
        if imp.onnx_init:
            cell.scale.filler, cell.bias.filler = ValuesFiller(scale), ValuesFiller(bias)
            cell.mean.data[...] = imp.device.asarray(mean.astype(np.float32))
            cell.variance.data[...] = imp.device.asarray(var.astype(np.float32))
        return cell

    imp.add(node, make, [x], kind="BatchNorm")


# -- element-wise -----------------------------------------------------------------------------
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


@converter("Softmax")
def softmax(imp, node, a):
    x = imp.data(node)
    axis = a.get("axis", 1 if imp.opset < 13 else -1)
    channel = axis % x.rank == 1 and (imp.opset >= 13 or x.rank == 2 or x.shape[1:] == (1, 1))
    if not channel and not (x.rank == 2 and axis % 2 == 1):
        raise imp.fail(node, f"softmax over axis {axis} of a rank-{x.rank} tensor (opset "
                       f"{imp.opset}) is not supported; only over channels")
    if x.rank == 2 and x.shape[1:] != (1, 1):
        raise imp.fail(node, "softmax over a flattened map is not supported")
    imp.add(node, lambda n, p, s: SoftmaxCell(n, p, imp.device, with_loss=True), [x])
    imp.auto_target(node.output[0])


@converter("Dropout")
def dropout(imp, node, a):
    x = imp.data(node)
    ratio = a.get("ratio", 0.5)
    if len(node.input) > 1 and node.input[1]:
        ratio = float(imp.const(node, 1, "ratio").reshape(-1)[0])

    def make(name, ports, sec):
        return DropoutCell(name, ports, imp.device, sec.config.get_float("Dropout", ratio))

    imp.add(node, make, [x], kind="Dropout")


@converter("Concat")
def concat(imp, node, a):
    xs = [imp.data(node, i) for i in range(len(node.input))]
    if a.get("axis") % xs[0].rank != 1 or len({x.rank for x in xs}) != 1:
        raise imp.fail(node, f"only a concatenation over channels (axis 1) is supported")
    if len({x.shape[1:] for x in xs}) != 1:
        raise imp.fail(node, "inputs of different heights and widths")
    imp.add(node, lambda n, p, s: PaddingCell(n, p, imp.device), xs)


@converter("Pad")
def pad(imp, node, a):
    x = imp.data(node)
    if a.get("mode", "constant") != "constant":
        raise imp.fail(node, f"mode {a.get('mode')}: only constant padding is supported")
    pads = a.get("pads") if imp.opset < 11 else imp.const(node, 1, "pads").tolist()
    value = a.get("value", 0.0) if imp.opset < 11 else imp.const(node, 2, "value", True)
    if value is not None and np.any(np.asarray(value) != 0):
        raise imp.fail(node, "padding with a value other than 0 is not supported")
    if x.rank != 4 or len(pads) != 8 or any(pads[i] for i in (0, 1, 4, 5)):
        raise imp.fail(node, f"pads {pads}: only height and width of an NCHW tensor can be padded")
    top, left, bottom, right = pads[2], pads[3], pads[6], pads[7]
    imp.add(node, lambda n, p, s: PaddingCell(n, p, imp.device, top, bottom, left, right), [x])


from n2d2py.onnx import ops_shape  # noqa: E402,F401  (registers the shape-only ops)
