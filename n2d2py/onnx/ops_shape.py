"""Layout and parameter-free ONNX ops: Flatten, Reshape, Squeeze, Unsqueeze, Transpose,
Identity, Cast, Resize, Upsample, Concat, Pad, Softmax, Dropout. A reshape that keeps n2d2py's
(C, H, W) layout makes no cell; one that changes it becomes a Reshape cell named after the
node."""

import numpy as np

from n2d2py.cells.dropout import DropoutCell
from n2d2py.cells.padding import PaddingCell
from n2d2py.cells.softmax import SoftmaxCell
from n2d2py.cells.reshape import ReshapeCell
from n2d2py.cells.resize import ResizeCell
from n2d2py.cells.transpose import TransposeCell
from n2d2py.onnx.ops import converter

_DENSE = ("Gemm", "MatMul")  # consumers that flatten their input themselves


def reshape_to(imp, node, x, shape):
    """Record ``node``'s output as ``x`` seen with ONNX shape ``shape`` (batch first)."""
    shape = [int(v) for v in shape]
    if len(shape) not in (2, 3, 4) or shape[0] != imp.batch:
        raise imp.fail(node, f"reshape to {shape}: only [N, F], [N, C, L] and [N, C, H, W] "
                       "keeping the batch axis first are supported")
    if len(shape) == 2:
        flat = (shape[1], 1, 1)
        readers = imp.consumer_ops.get(node.output[0], [])
        if x.shape == flat or (readers and all(op in _DENSE for op in readers)):
            return imp.alias(node, x, rank=2)
        target, rank = flat, 2
    else:
        target = tuple(shape[1:]) if len(shape) == 4 else (shape[1], 1, shape[2])
        rank = len(shape)
        if target == x.shape:
            return imp.alias(node, x, rank=rank)
    imp.add(node, lambda n, p, s: ReshapeCell(n, p, imp.device, target), [x], rank=rank)


@converter("Flatten")
def flatten(imp, node, a):
    x = imp.data(node)
    if a.get("axis", 1) % max(x.rank, 1) != 1:
        raise imp.fail(node, f"Flatten axis {a.get('axis')}: only axis 1 is supported")
    reshape_to(imp, node, x, [imp.batch, int(np.prod(x.shape))])


@converter("Reshape")
def reshape(imp, node, a):
    x = imp.data(node)
    target = list(a["shape"] if "shape" in a else imp.const(node, 1, "shape").tolist())
    current = x.onnx_shape(imp.batch)
    if target and target[0] in (1, imp.batch):  # the batch axis, even of a batch-1 graph
        target[0] = imp.batch
    out = [current[i] if v == 0 and not a.get("allowzero", 0) else int(v)
           for i, v in enumerate(target)]
    if out.count(-1) == 1:
        known = int(np.prod([v for v in out if v != -1]))
        out[out.index(-1)] = int(np.prod(current)) // max(known, 1)
    if int(np.prod(out)) != int(np.prod(current)):
        raise imp.fail(node, f"shape {target} does not fit the input's {current}")
    reshape_to(imp, node, x, out)


def _axes(imp, node, a):
    if "axes" in a:
        return list(a["axes"])
    return imp.const(node, 1, "axes").tolist() if len(node.input) > 1 and node.input[1] else None


@converter("Squeeze")
def squeeze(imp, node, a):
    x = imp.data(node)
    shape = x.onnx_shape(imp.batch)
    axes = _axes(imp, node, a)
    axes = [i for i, v in enumerate(shape) if v == 1 and i] if axes is None else \
        [int(v) % len(shape) for v in axes]
    if 0 in axes or any(shape[i] != 1 for i in axes):
        raise imp.fail(node, f"squeezing axes {axes} of {shape} is not supported")
    reshape_to(imp, node, x, [v for i, v in enumerate(shape) if i not in axes])


@converter("Unsqueeze")
def unsqueeze(imp, node, a):
    x = imp.data(node)
    shape = list(x.onnx_shape(imp.batch))
    axes = _axes(imp, node, a) or []
    rank = len(shape) + len(axes)
    for axis in sorted(int(v) % rank for v in axes):
        shape.insert(axis, 1)
    reshape_to(imp, node, x, shape)


@converter("Transpose")
def transpose(imp, node, a):
    x = imp.data(node)
    perm = list(a.get("perm", range(x.rank)[::-1]))
    if perm == list(range(x.rank)):
        return imp.alias(node, x)
    if x.rank != 4 or perm[0] != 0:
        raise imp.fail(node, f"perm {perm}: only permutations of C, H, W of an NCHW tensor "
                       "are supported")
    n2d2_perm = [3 - perm[3 - i] for i in range(4)]  # N2D2's reversed-axes order
    imp.add(node, lambda n, p, s: TransposeCell(n, p, imp.device, n2d2_perm), [x])


@converter("Identity", "Cast")
def identity(imp, node, a):
    if node.op_type == "Cast" and a.get("to") not in (1, 10, 11):  # float, float16, double
        raise imp.fail(node, f"a cast of a computed tensor to type {a.get('to')} (not float) "
                       "is not supported")
    imp.alias(node, imp.data(node))


def _resize_mode(imp, node, a, integer_scale):
    mode = a.get("mode", "nearest")
    old = node.op_type == "Upsample" or imp.opset < 11  # asymmetric coordinates, floor
    coords = a.get("coordinate_transformation_mode", "asymmetric" if old else "half_pixel")
    if mode == "nearest":
        rounding = a.get("nearest_mode", "floor" if old else "round_prefer_floor")
        if (coords == "asymmetric" and rounding == "floor") or (
                integer_scale and coords in ("half_pixel", "pytorch_half_pixel")
                and rounding in ("round_prefer_floor", "round_prefer_ceil")):
            return "NearestNeighbor", True
    elif mode in ("linear", "bilinear"):
        if coords in ("align_corners", "asymmetric"):
            return "BilinearTF", coords == "align_corners"
        if coords in ("half_pixel", "pytorch_half_pixel"):
            return "Bilinear", False
    raise imp.fail(node, f"mode={mode} with coordinate_transformation_mode={coords} "
                   f"(nearest_mode={a.get('nearest_mode', 'round_prefer_floor')}) is not supported")


@converter("Resize", "Upsample")
def resize(imp, node, a):
    x = imp.data(node)
    if x.rank != 4:
        raise imp.fail(node, "only NCHW tensors can be resized")
    inputs = list(node.input) + [""] * 4
    scales_at, sizes_at = (1, None) if node.op_type == "Upsample" or imp.opset < 11 else (2, 3)
    sizes = imp.const(node, sizes_at, "sizes", True) if sizes_at and inputs[sizes_at] else None
    scales = a.get("scales") if "scales" in a else (
        imp.const(node, scales_at, "scales", True) if inputs[scales_at] else None)
    h, w = x.shape[1:]
    if sizes is not None and len(sizes):
        out_h, out_w = int(sizes[-2]), int(sizes[-1])
    elif scales is not None and len(scales) == 4:
        if scales[0] != 1 or scales[1] != 1:
            raise imp.fail(node, f"scales {list(scales)}: batch and channels cannot be resized")
        out_h, out_w = int(np.floor(h * scales[2])), int(np.floor(w * scales[3]))
        if out_h != h * scales[2] or out_w != w * scales[3]:
            raise imp.fail(node, f"scales {list(scales)} do not give whole output sizes")
    else:
        raise imp.fail(node, "neither sizes nor 4 scales are given as constants")
    if a.get("antialias", 0) and (out_h < h or out_w < w):
        raise imp.fail(node, "antialias=1 when downscaling is not supported")
    integer = out_h % h == 0 and out_w % w == 0
    mode, align = _resize_mode(imp, node, a, integer)
    imp.add(node, lambda n, p, s: ResizeCell(n, p, imp.device, out_w, out_h, mode, align), [x])


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
        raise imp.fail(node, "only a concatenation over channels (axis 1) is supported")
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
