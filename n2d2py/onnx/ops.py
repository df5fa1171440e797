"""ONNX op type → converter: one small function per op, each building existing cells.

A converter gets the Importer, the node and its attributes; it reads its inputs with
``imp.data`` (a computed tensor) or ``imp.const`` (a constant), and records its output with
``imp.add`` (a new cell), ``imp.alias`` (no cell: same values) or ``imp.activation``.
Element-wise ops and activations are in ``ops_elementwise``; layout and parameter-free ops
(Flatten, Reshape, Transpose, Concat, Pad, Softmax, Dropout, Resize...) in ``ops_shape``.
"""

import math

import numpy as np

from n2d2py.cells.batchnorm import BatchNormCell
from n2d2py.cells.conv import ConvCell
from n2d2py.cells.kernel import read_kernel_config
from n2d2py.cells.fc import FcCell
from n2d2py.cells.padding import PaddingCell
from n2d2py.cells.pool import PoolCell
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


from n2d2py.onnx import ops_elementwise, ops_shape  # noqa: E402,F401  (register theirs)
