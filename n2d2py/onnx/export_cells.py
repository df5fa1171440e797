"""One writer per cell type (and per activation): cell → ONNX nodes (opset 13).

A writer gets the Writer, the cell and its inputs as (tensor name, rank) pairs; it returns
(output tensor name, rank), the output being named after the cell.
"""

import numpy as np

from n2d2py.errors import N2D2PyError

WRITERS = {}


def writes(*types):
    def deco(fn):
        for t in types:
            WRITERS[t] = fn
        return fn

    return deco


def _groups(mask):
    """The group count g whose block-diagonal map is ``mask`` (O, C), or None."""
    o, c = mask.shape
    if mask.all():
        return 1
    for g in range(2, min(o, c) + 1):
        if o % g or c % g:
            continue
        block = np.kron(np.eye(g, dtype=bool), np.ones((o // g, c // g), dtype=bool))
        if (block == mask).all():
            return g
    return None


@writes("Conv")
def conv(w, cell, ins):
    x = w.joined(cell, ins)
    weights = w.param(cell, cell.weights)
    groups = _groups(cell.mask) or 1
    if groups > 1:  # keep each output's own group of channels: (O, C/g, kh, kw)
        o, c = cell.mask.shape
        og, cg = o // groups, c // groups
        weights = np.concatenate([weights[g * og:(g + 1) * og, g * cg:(g + 1) * cg]
                                  for g in range(groups)])
    else:
        weights = weights * cell.mask[:, :, None, None]
    inputs = [x, w.const(f"{w.name}_w", weights)]
    if cell.bias is not None:
        inputs.append(w.const(f"{w.name}_b", w.param(cell, cell.bias)))
    ph, pw = cell.padding
    if min(ph, pw) < 0:
        raise N2D2PyError(f"-export ONNX: cell {w.name} has negative padding")
    w.node("Conv", inputs, w.name, kernel_shape=list(cell.kernel), strides=list(cell.stride),
           pads=[ph, pw, ph, pw], dilations=list(cell.dilation), group=groups)
    return w.name, 4


@writes("Fc")
def fc(w, cell, ins):
    flat = [w.as2d(t) for t in ins]
    x = flat[0] if len(flat) == 1 else w.node("Concat", flat, f"{w.name}_concat", axis=1)
    inputs = [x, w.const(f"{w.name}_w", w.param(cell, cell.weights))]
    if cell.bias is not None:
        inputs.append(w.const(f"{w.name}_b", w.param(cell, cell.bias)))
    w.node("Gemm", inputs, w.name, transB=1)
    return w.name, 2


@writes("Pool")
def pool(w, cell, ins):
    if not cell.one_to_one:
        raise N2D2PyError(f"-export ONNX: Pool {w.name} has a channel map other than "
                          "one-to-one (no ONNX form)")
    x = w.joined(cell, ins)
    ph, pw = cell.padding
    op = "MaxPool" if cell.pooling == "Max" else "AveragePool"
    extra = {} if op == "MaxPool" else {"count_include_pad": 1}
    w.node(op, [x], w.name, kernel_shape=list(cell.pool), strides=list(cell.stride),
           pads=[ph, pw, ph, pw], **extra)
    return w.name, 4


@writes("BatchNorm")
def batchnorm(w, cell, ins):
    x = w.joined(cell, ins, rank4=len(ins) > 1)
    rank = 4 if len(ins) > 1 else ins[0][1]
    names = [w.const(f"{w.name}_{role}", w.param(cell, p)) for role, p in
             (("scale", cell.scale), ("bias", cell.bias), ("mean", cell.mean),
              ("variance", cell.variance))]
    w.node("BatchNormalization", [x] + names, w.name, epsilon=cell.epsilon,
           momentum=1.0 - cell.momentum)
    return w.name, rank


@writes("ElemWise")
def elemwise(w, cell, ins):
    ranks = {r for _, r in ins}
    xs = [t[0] for t in ins] if len(ranks) == 1 else [w.as4d(t, p.shape) for t, p in
                                                       zip(ins, cell.inputs)]
    rank = ranks.pop() if len(ranks) == 1 else 4
    op = cell.operation
    if op in ("Prod", "Max"):
        if len(xs) == 1:
            return w.node("Identity", xs, w.name), rank
        return w.node("Mul" if op == "Prod" else "Max", xs, w.name), rank
    if op != "Sum":
        raise N2D2PyError(f"-export ONNX: ElemWise {w.name} Operation={op} has no ONNX form")
    shape = [-1] + [1] * (rank - 2) if cell.per_channel else []
    terms = []
    for i, x in enumerate(xs):
        weight = np.asarray(cell.weights if cell.per_channel else cell.weights[i], np.float32)
        if np.any(weight != 1):
            x = w.node("Mul", [x, w.const(f"{w.name}_w{i}", weight.reshape(shape))],
                       f"{w.name}_mul{i}")
        terms.append(x)
    shift = (np.asarray(cell.shifts, np.float32) * (len(xs) if cell.per_channel else 1)
             if cell.per_channel else np.float32(sum(cell.shifts)))
    total = terms[0] if len(terms) == 1 else None
    if len(terms) > 1:
        total = w.node("Sum", terms, f"{w.name}_sum" if np.any(shift != 0) else w.name)
    if np.any(shift != 0):
        return w.node("Add", [total, w.const(f"{w.name}_s", shift.reshape(shape))],
                      w.name), rank
    if total != w.name:
        total = w.node("Identity", [total], w.name)
    return total, rank


@writes("Softmax")
def softmax(w, cell, ins):
    rank = ins[0][1] if len(ins) == 1 else 4
    x = w.joined(cell, ins, rank4=len(ins) > 1)
    return w.node("Softmax", [x], w.name, axis=1), rank


@writes("Dropout")
def dropout(w, cell, ins):
    rank = ins[0][1] if len(ins) == 1 else 4
    return w.node("Identity", [w.joined(cell, ins, rank4=len(ins) > 1)], w.name), rank


@writes("Padding")
def padding(w, cell, ins):
    x = w.joined(cell, ins)
    top, bottom, left, right = cell.sides
    if not any(cell.sides):
        return (w.node("Identity", [x], w.name) if x != w.name else x), 4
    pads = w.const(f"{w.name}_pads", [0, 0, top, left, 0, 0, bottom, right], np.int64)
    return w.node("Pad", [x, pads], w.name, mode="constant"), 4


@writes("Reshape")
def reshape(w, cell, ins):
    x = w.joined(cell, ins)
    shape = w.const(f"{w.name}_shape", [-1, *cell.out_shape], np.int64)
    return w.node("Reshape", [x, shape], w.name), 4


@writes("Transpose")
def transpose(w, cell, ins):
    return w.node("Transpose", [w.joined(cell, ins)], w.name, perm=list(cell.axes)), 4


@writes("Resize")
def resize(w, cell, ins):
    x = w.joined(cell, ins)
    _, height, width = cell.out_shape
    shape = w.node("Shape", [x], f"{w.name}_inshape")
    nc = w.node("Slice", [shape, w.const(f"{w.name}_s0", [0], np.int64),
                          w.const(f"{w.name}_s1", [2], np.int64)], f"{w.name}_nc")
    sizes = w.node("Concat", [nc, w.const(f"{w.name}_hw", [height, width], np.int64)],
                   f"{w.name}_sizes", axis=0)
    if cell.mode == "NearestNeighbor":
        attrs = dict(mode="nearest", coordinate_transformation_mode="asymmetric",
                     nearest_mode="floor")
    elif cell.mode == "BilinearTF":
        attrs = dict(mode="linear", coordinate_transformation_mode="align_corners"
                     if cell.align_corners and height > 1 and width > 1 else "asymmetric")
    else:
        attrs = dict(mode="linear", coordinate_transformation_mode="half_pixel")
    return w.node("Resize", [x, "", "", sizes], w.name, **attrs), 4


def write_activation(w, cell, x, out):
    a = cell.activation
    kind = type(a).__name__
    if kind == "Rectifier":
        if a.leak_slope and a.clipping:
            raise N2D2PyError(f"-export ONNX: {w.name}: a leaky and clipped Rectifier has "
                              "no ONNX form")
        if a.clipping:
            return w.node("Clip", [x, w.const(f"{out}_min", 0.0), w.const(f"{out}_max",
                                                                         a.clipping)], out)
        if a.leak_slope:
            return w.node("LeakyRelu", [x], out, alpha=float(a.leak_slope))
        return w.node("Relu", [x], out)
    if kind in ("Logistic", "LogisticWithLoss"):
        return w.node("Sigmoid", [x], out)
    if kind == "Tanh" and a.alpha == 1:
        return w.node("Tanh", [x], out)
    if kind == "Saturation":
        t = a.threshold
        return w.node("Clip", [x, w.const(f"{out}_min", -t), w.const(f"{out}_max", t)], out)
    if kind == "Softplus":
        return w.node("Softplus", [x], out)
    raise N2D2PyError(f"-export ONNX: {w.name}: activation {kind} has no ONNX form here")
