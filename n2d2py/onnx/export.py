"""``-export ONNX``: a built (learned) Network → ``export_ONNX_float32/model.onnx`` (opset 13).

Each cell becomes the nodes that compute it; the node computing the cell's pre-activation
output is named after the cell and its activation writes ``<cell>_act``, so importing the file
again gives cells of the same names (activations fold back into them, as N2D2 folds them). The graph input is named after
the provider (``sp``), with a symbolic batch; the graph outputs are the target cells. Cell
types or activations with no ONNX form are refused by name.
"""

import os

import numpy as np

from n2d2py.errors import N2D2PyError
from n2d2py.onnx import require_onnx

OPSET = 13
FOLDER = "export_ONNX_float32"


def write(net, out_dir):
    """Write the network's ONNX model (atomically); returns its path."""
    from n2d2py.atomic import atomic_write_bytes

    onnx = require_onnx("-export ONNX: ")
    model = Writer(onnx, net).model()
    try:
        onnx.checker.check_model(model)
    except Exception as exc:  # a bug of ours, not the user's: still one line
        raise N2D2PyError(f"-export ONNX: the written model fails onnx's checker ({exc})") from None
    path = os.path.join(out_dir, FOLDER, "model.onnx")
    atomic_write_bytes(path, model.SerializeToString())  # temp file + rename
    return path


class Writer:
    def __init__(self, onnx, net):
        self.onnx, self.h, self.net = onnx, onnx.helper, net
        self.nodes, self.inits = [], []
        self.tensors = {net.input_name: (net.input_name, 4)}  # cell → (tensor name, rank)

    def model(self):
        from n2d2py.onnx.export_cells import WRITERS

        h, net = self.h, self.net
        for name, cell in net.cells.items():
            write = WRITERS.get(cell.type_name)
            if write is None:
                raise N2D2PyError(f"-export ONNX: cell {name} of type {cell.type_name} has no "
                                  "ONNX form")
            ins = [self.tensors[p.name] for p in cell.inputs]
            self.name = name
            out, rank = write(self, cell, ins)
            self.tensors[name] = (self.activation(cell, out), rank)
        c, hh, w = net.provider.shape
        inputs = [h.make_tensor_value_info(net.input_name, 1, ["batch", c, hh, w])]
        outputs, seen = [], set()
        for _, cell_name, _ in net.targets:
            tensor, rank = self.tensors[cell_name]
            if tensor in seen:
                continue
            seen.add(tensor)
            oc, oh, ow = net.cells[cell_name].out_shape
            dims = ["batch", oc] if rank == 2 else ["batch", oc, oh, ow]
            outputs.append(h.make_tensor_value_info(tensor, 1, dims))
        graph = h.make_graph(self.nodes, "n2d2py", inputs, outputs, self.inits)
        model = h.make_model(graph, producer_name="n2d2py",
                             opset_imports=[h.make_opsetid("", OPSET)])
        model.ir_version = 8
        return model

    # -- building blocks --------------------------------------------------------------------
    def const(self, name, values, dtype=np.float32):
        array = np.asarray(values, dtype=dtype)
        self.inits.append(self.onnx.numpy_helper.from_array(array, name))
        return name

    def node(self, op, inputs, output, **attrs):
        self.nodes.append(self.h.make_node(op, list(inputs), [output], name=output, **attrs))
        return output

    def param(self, cell, param):
        return self.net.device.to_host(param.data).astype(np.float32)

    def as4d(self, tensor, shape):
        """A rank-2 tensor of (C, H, W) values as NCHW (a Reshape); rank 4 as is."""
        name, rank = tensor
        if rank == 4:
            return name
        shape_name = self.const(f"{name}_4d_shape", [-1, *shape], np.int64)
        return self.node("Reshape", [name, shape_name], f"{name}_4d")

    def as2d(self, tensor):
        name, rank = tensor
        return name if rank == 2 else self.node("Flatten", [name], f"{name}_flat", axis=1)

    def joined(self, cell, ins, rank4=True):
        """The cell's inputs stacked on channels (a Concat when there are several)."""
        names = [self.as4d(t, p.shape) if rank4 else t[0] for t, p in zip(ins, cell.inputs)]
        if len(names) == 1:
            return names[0]
        return self.node("Concat", names, f"{cell.name}_concat", axis=1)

    @staticmethod
    def has_activation(cell):
        return cell.activation is not None and type(cell.activation).__name__ != "Linear"

    def activation(self, cell, out):
        from n2d2py.onnx.export_cells import write_activation

        if not self.has_activation(cell):
            return out
        return write_activation(self, cell, out, f"{cell.name}_act")
