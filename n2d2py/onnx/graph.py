"""Reading an ONNX file: the model, its tensors as numpy arrays, and constant folding.

Every failure is one line naming the file: a missing file, a file protobuf cannot parse,
a tensor stored outside the file, a constant subgraph the reference evaluator cannot run.
"""

import os

import numpy as np

from n2d2py.errors import N2D2PyError
from n2d2py.onnx import require_onnx

OPSETS = (9, 18)  # default-domain opsets the importer is tested on
# Ops whose outputs are computed at import time when all of their inputs are constants
# (PyTorch's Shape → Gather → Unsqueeze → Concat chains in front of a Reshape, and the like).
FOLDABLE = ("Shape", "Gather", "Unsqueeze", "Squeeze", "Concat", "Cast", "Slice", "Reshape",
            "Add", "Sub", "Mul", "Div", "Identity", "ConstantOfShape", "Range", "Floor", "Ceil",
            "Sqrt", "Neg", "Transpose", "Expand", "Flatten", "ReduceProd", "Equal", "Where",
            "Min", "Max", "Pow", "Not", "Less", "Greater", "Abs", "Size")


def load(path, where):
    """(onnx module, ModelProto) of ``path``; ``where`` (a Prop) locates the INI key."""
    onnx = require_onnx()
    if not os.path.isfile(path):
        raise _error(f"ONNX file not found: {path}", where)
    try:
        model = onnx.load(path, load_external_data=False)
    except Exception as exc:  # protobuf's DecodeError and friends: one line, no traceback
        raise _error(f"{path}: not a readable ONNX model ({type(exc).__name__}: "
                     f"{str(exc).splitlines()[0] if str(exc) else 'parse error'})", where) from None
    if len(model.graph.node) == 0:
        raise _error(f"{path}: the ONNX graph has no nodes", where)
    return onnx, model


def opset(model):
    """The default-domain opset version (N2D2: −1 when there is none)."""
    for entry in model.opset_import:
        if entry.domain in ("", "ai.onnx"):
            return int(entry.version)
    return -1


def to_array(onnx, tensor, path):
    """A TensorProto as a numpy array; external data is refused (as N2D2)."""
    if tensor.data_location == onnx.TensorProto.EXTERNAL:
        raise N2D2PyError(f"{path}: tensor '{tensor.name}' is stored outside the file "
                          "(external data is not supported)")
    try:
        return np.array(onnx.numpy_helper.to_array(tensor))
    except Exception as exc:
        raise N2D2PyError(f"{path}: tensor '{tensor.name}' cannot be decoded ({exc})") from None


def attributes(onnx, node):
    """{name: python value} of a node's attributes."""
    out = {}
    for attr in node.attribute:
        value = onnx.helper.get_attribute_value(attr)
        if isinstance(value, bytes):
            value = value.decode()
        elif isinstance(value, onnx.TensorProto):
            value = np.array(onnx.numpy_helper.to_array(value))
        out[attr.name] = value
    return out


def constant_value(onnx, node, path):
    """The value of a ``Constant`` node (value, value_float(s), value_int(s))."""
    attrs = attributes(onnx, node)
    for key, dtype in (("value", None), ("value_float", np.float32), ("value_floats", np.float32),
                       ("value_int", np.int64), ("value_ints", np.int64)):
        if key in attrs:
            return np.asarray(attrs[key], dtype=dtype)
    raise N2D2PyError(f"{path}: Constant node '{node.output[0]}' has no dense value "
                      f"(attributes: {', '.join(attrs) or 'none'})")


def evaluate(onnx, node, values, version, path):
    """Run one node on constant inputs with onnx's reference evaluator; its output arrays."""
    from onnx import helper
    from onnx.reference import ReferenceEvaluator

    names = [n for n in node.input if n]
    inputs = [helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(values[n].dtype),
                                            values[n].shape) for n in names]
    outputs = [helper.make_tensor_value_info(n, onnx.TensorProto.UNDEFINED, None)
               for n in node.output if n]
    graph = helper.make_graph([node], "fold", inputs, outputs)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", max(version, 7))])
    try:
        results = ReferenceEvaluator(model).run(None, {n: values[n] for n in names})
    except Exception as exc:
        raise N2D2PyError(f"{path}: constant node {node.op_type} '{node.output[0]}' cannot be "
                          f"evaluated ({str(exc).splitlines()[0] if str(exc) else exc})") from None
    return [np.asarray(r) for r in results]


def consumers(graph):
    """{tensor name: number of nodes (and graph outputs) reading it}."""
    count = {}
    for node in graph.node:
        for name in node.input:
            count[name] = count.get(name, 0) + 1
    for out in graph.output:
        count[out.name] = count.get(out.name, 0) + 1
    return count


def input_dims(value_info):
    """A graph input's dims (0 for a symbolic one)."""
    dims = value_info.type.tensor_type.shape.dim
    return [d.dim_value if d.HasField("dim_value") else 0 for d in dims]


def _error(message, where):
    if where is not None:
        return N2D2PyError(message, where.file, where.line, where.section, where.key)
    return N2D2PyError(message)
