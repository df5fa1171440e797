"""``[section] Type=ONNX``: an ONNX graph becomes ordinary cells, named as N2D2 names them.

A cell is named after its node's first output (``node.output[0]``), so ``[<name>.Target]``,
``Input=<name>`` and per-node sections work as in N2D2's model files. Nodes are read once, in
file order. A tensor is either a constant (numpy array: initializers, ``Constant`` nodes, and
any node whose inputs are all constants, folded at import) or ``Data``: the output of a cell.
Activations fold into the cell that produced their input when nothing else reads it (else an
identity ElemWise cell named after the activation carries them).

Keys of the section (N2D2's): ``Input``, ``File``, ``Ignore``, ``IgnoreInputSize``,
``Transpose`` (0 only), ``CNTK`` [1: a constant Add after a bias-less Conv/Fc becomes its
bias], ``ONNX_init`` [1: parameters from the file; 0: from the fillers]. Per node, the section
``[<output name>]``, else ``[<section>:<Kind>_def]`` (Kind: Conv, Fc, Pool, BatchNorm,
Dropout), gives solvers, fillers and a ``ConfigSection`` chain; ``[<activation output>]`` may
replace a folded activation (``ActivationFunction=...``).
"""

import os
from dataclasses import dataclass

import numpy as np

from n2d2py.activations import make_activation
from n2d2py.cells.base import Port
from n2d2py.errors import N2D2PyError
from n2d2py.ini.section import Section
from n2d2py.onnx import graph as g

KEYS = ("File", "Input", "Type", "Ignore", "IgnoreInputSize", "Transpose", "CNTK", "ONNX_init")
INPUT_NAMES = ("cenv", "env", "sp")
FOLD_INTO = ("Conv", "Fc", "Pool", "BatchNorm", "ElemWise")  # cells an activation folds into


@dataclass(frozen=True)
class Data:
    """A tensor computed by a cell: its producer, n2d2py shape (C, H, W) and ONNX rank
    (4: NCHW; 3: [N, C, L] held as (C, 1, L); 2: [N, F] held as the producer's (C, H, W))."""

    cell: str
    shape: tuple
    rank: int

    def onnx_shape(self, batch):
        c, h, w = self.shape
        return {4: [batch, c, h, w], 3: [batch, c, w], 2: [batch, c * h * w]}[self.rank]


class ValuesFiller:
    """Initial values read from the ONNX file (not an INI filler)."""

    def __init__(self, values):
        self.values = np.asarray(values, dtype=np.float32)

    def fill(self, shape, fan_in, fan_out, rng):
        return self.values.reshape(shape).copy()

    def __repr__(self):
        return f"ValuesFiller({self.values.shape})"


def check_file(sec):
    """``File`` is given and names a file: else one line naming the path and the section."""
    if sec.prop("File") is None:
        raise sec.error(None, "File is required in a Type=ONNX section (the ONNX model)")
    path = sec.get_path("File")
    if not os.path.isfile(path):
        raise sec.error("File", f"ONNX file not found: {path}")
    return path


def build_section(sec, built, provider, device):
    """The cells of ONNX section ``sec`` (name → cell, in graph order)."""
    imp = Importer(sec, built, provider, device)
    imp.run()
    return imp.cells


class Importer:
    def __init__(self, sec, built, provider, device):
        self.sec, self.doc, self.device = sec, sec.doc, device
        self.built, self.provider = built, provider
        self.path = check_file(sec)
        self.where = sec.prop("File")
        self.ignore = set(sec.get_str("Ignore", "").replace('"', " ").split())
        self.ignore_input_size = sec.get_bool("IgnoreInputSize", False)
        if sec.get_bool("Transpose", False):
            raise sec.error("Transpose", "Transpose=1 (swapping x and y across the graph) is "
                            "not supported yet")
        self.cntk = sec.get_bool("CNTK", True)
        self.onnx_init = sec.get_bool("ONNX_init", True)
        for key in self.doc.sections[sec.name].props:
            if key not in KEYS and not key.startswith("_"):
                raise sec.error(key, f"unknown key {key} in a Type=ONNX section "
                                f"(known: {', '.join(KEYS)})")
        self.onnx, self.model = g.load(self.path, self.where)
        self.opset = g.opset(self.model)
        self.tensors = {}  # name -> np.ndarray | Data
        self.dead = set()  # outputs of ignored nodes and of nodes fed only by them
        self.cells = {}
        self.uses = g.consumers(self.model.graph)
        self.consumer_ops = {}
        for node in self.model.graph.node:
            for name in node.input:
                self.consumer_ops.setdefault(name, []).append(node.op_type)
        self.batch = provider.batch_size if hasattr(provider, "batch_size") else 1

    # -- the loop ---------------------------------------------------------------------------
    def run(self):
        from n2d2py.onnx.ops import CONVERTERS

        if self.opset != -1 and not g.OPSETS[0] <= self.opset <= g.OPSETS[1]:
            self.doc.warn(f"{self.path}: opset {self.opset} is outside the tested range "
                          f"{g.OPSETS[0]}-{g.OPSETS[1]}", self.where)
        for tensor in self.model.graph.initializer:
            self.tensors[tensor.name] = g.to_array(self.onnx, tensor, self.path)
        self._inputs()
        for node in self.model.graph.node:
            self.node = node
            if self._skipped(node):
                continue
            if node.op_type == "Constant":
                self.tensors[node.output[0]] = g.constant_value(self.onnx, node, self.path)
            elif node.op_type == "Shape" and isinstance(self.tensors.get(node.input[0]), Data):
                self._shape(node)
            elif all(isinstance(self.tensors.get(n), np.ndarray) for n in node.input if n):
                if node.op_type not in g.FOLDABLE and node.op_type not in CONVERTERS:
                    self.unsupported(node)
                values = g.evaluate(self.onnx, node, self.tensors, self.opset, self.path)
                self.tensors.update(zip([n for n in node.output if n], values))
            elif node.op_type in CONVERTERS:
                CONVERTERS[node.op_type](self, node, g.attributes(self.onnx, node))
            else:
                self.unsupported(node)
        if not self.cells:
            raise self.error(f"{self.path}: no cell was created from the ONNX graph")
        self._name_outputs()

    def _name_outputs(self):
        """A graph output that is no cell's name (computed by a folded activation or a no-cell
        op: Flatten, Squeeze, Identity...) gets an identity cell of its name when the INI
        names it (``[<output>.Target]``, ``Input=<output>``); N2D2 would not find it."""
        from n2d2py.cells.elemwise import ElemWiseCell

        for out in self.model.graph.output:
            x = self.tensors.get(out.name)
            if (isinstance(x, Data) and x.cell != out.name and out.name not in self.built
                    and self._named_in_ini(out.name)):
                node = self.onnx.helper.make_node("Identity", [out.name], [out.name])
                self.add(node, lambda n, p, s: ElemWiseCell(n, p, self.device, "Sum"), [x])

    def _skipped(self, node):
        """Ignored nodes, and nodes reading only dead tensors, produce dead tensors."""
        inputs = [n for n in node.input if n]
        dead = [n for n in inputs if n in self.dead]
        live = [n for n in inputs if isinstance(self.tensors.get(n), Data)]
        if node.output[0] in self.ignore or (dead and not live):
            self.dead.update(node.output)
            return True
        if dead:
            raise self.fail(node, f"reads '{dead[0]}', the output of an ignored node (Ignore= "
                            "can cut the end of a graph, not a node that others still use)")
        return False

    def _inputs(self):
        """Graph inputs (those not initializers) take the section's Input= parents in order."""
        parents = self.sec.get_list("Input")
        inits = {t.name for t in self.model.graph.initializer}
        inputs = [i for i in self.model.graph.input if i.name not in inits]
        if len(parents) != len(inputs):
            raise self.sec.error("Input", f"{len(parents)} input(s) given, the ONNX graph "
                                 f"{self.path} has {len(inputs)} data input(s) "
                                 f"({', '.join(i.name for i in inputs)})")
        for parent, value_info in zip(parents, inputs):
            if parent in INPUT_NAMES:
                data = Data(self.provider.name, tuple(self.provider.shape), 4)
            elif parent in self.built:
                data = Data(parent, tuple(self.built[parent].out_shape), 4)
            else:
                raise self.sec.error("Input", f"unknown input '{parent}' (sp, or a layer "
                                     "built before this section)")
            dims = g.input_dims(value_info)
            data = self._check_input(value_info.name, dims, data)
            self.tensors[value_info.name] = data

    def _check_input(self, name, dims, data):
        c, h, w = data.shape
        if len(dims) == 2 and dims[1] in (0, c * h * w):
            return Data(data.cell, data.shape, 2)
        if len(dims) == 4 and all(d in (0, s) for d, s in zip(dims[1:], data.shape)):
            return data
        if not self.ignore_input_size:
            self.doc.warn(f"ONNX input '{name}' has dims {dims[1:]} but [{data.cell}] provides "
                          f"{c}x{h}x{w} (CxHxW): the provider's size is used (only a warning; "
                          "IgnoreInputSize=1 silences it)", self.where)
        return data

    def _shape(self, node):
        attrs = g.attributes(self.onnx, node)
        shape = np.array(self.tensors[node.input[0]].onnx_shape(self.batch), dtype=np.int64)
        self.tensors[node.output[0]] = shape[attrs.get("start", 0):attrs.get("end", None)]

    # -- helpers for the converters ---------------------------------------------------------
    def error(self, message):
        w = self.where
        return N2D2PyError(message, w.file, w.line, w.section, w.key)

    def fail(self, node, message):
        return self.error(f"{self.path}: {node.op_type} node '{node.output[0]}': {message}")

    def unsupported(self, node):
        raise self.error(f"{self.path}: ONNX operator {node.op_type} (node '{node.output[0]}') "
                         "is not supported")

    def data(self, node, index=0):
        name = node.input[index] if index < len(node.input) else ""
        value = self.tensors.get(name)
        if not isinstance(value, Data):
            what = "a constant" if isinstance(value, np.ndarray) else "missing"
            raise self.fail(node, f"input {index} ('{name}') is {what}; a computed tensor is "
                            "expected there")
        return value

    def const(self, node, index, what, optional=False):
        name = node.input[index] if index < len(node.input) else ""
        if not name and optional:
            return None
        value = self.tensors.get(name)
        if not isinstance(value, np.ndarray):
            raise self.fail(node, f"the {what} (input {index}, '{name}') must be a constant")
        return value

    def ports(self, datas):
        return [Port(d.cell, tuple(d.shape)) for d in datas]

    def node_section(self, name, kind):
        """The Section that configures cell ``name``: ``[name]``, else ``[<s>:<kind>_def]``."""
        names = []
        if name in self.doc and "Input" not in self.doc.sections[name].props:
            names = [name]
        elif kind and f"{self.sec.name}:{kind}_def" in self.doc:
            names = [f"{self.sec.name}:{kind}_def"]
        sec = Section(self.doc, names, label=name)
        chain = []
        if names:
            for item in sec.get_list("ConfigSection", default=[]):
                if item not in self.doc:
                    raise sec.error("ConfigSection", f"config section [{item}] does not exist")
                chain.append(item)
        sec.config = Section(self.doc, names + chain, label=name)
        return sec

    def filler(self, sec, key, values):
        """Initial values from the file (ONNX_init=1) or from ``sec``'s filler key."""
        if self.onnx_init:
            return ValuesFiller(values)
        from n2d2py.fillers import make_filler

        return make_filler(sec, key)

    def add(self, node, make, inputs, kind=None, name=None, rank=None):
        """Create the cell ``make(name, ports, sec)`` for ``node`` and record its output."""
        name = name or node.output[0]
        if name in self.cells or name in self.built:
            raise self.fail(node, f"a layer named '{name}' already exists")
        sec = self.node_section(name, kind)
        cell = make(name, self.ports(inputs), sec)
        cell.section = sec
        cell.needs_input_grad = any(d.cell in self.cells or d.cell in self.built for d in inputs)
        self.cells[name] = cell
        self.tensors[node.output[0]] = Data(name, tuple(cell.out_shape),
                                            rank if rank is not None else inputs[0].rank)
        return cell

    def alias(self, node, data, rank=None):
        self.tensors[node.output[0]] = Data(data.cell, data.shape, data.rank if rank is None
                                            else rank)

    def _named_in_ini(self, name):
        for section, raw in self.doc.sections.items():
            if section.startswith(f"{name}.Target"):
                return True
            if "Input" in raw.props and name in raw.props["Input"].raw.split(","):
                return True
        return False

    def auto_target(self, name):
        """N2D2: an imported Softmax gets a target ``[<name>.Target]`` unless the INI has one."""
        from n2d2py.ini.parse import RawSection

        if not any(s == f"{name}.Target" or s.startswith(f"{name}.Target") for s in self.doc.sections):
            w = self.where
            self.doc.sections[f"{name}.Target"] = RawSection(f"{name}.Target", w.file, w.line)

    def activation(self, node, act):
        """Fold ``act`` into the producer of input 0, or carry it in an identity cell."""
        from n2d2py.cells.elemwise import ElemWiseCell

        x = self.data(node)
        override = Section(self.doc, [node.output[0]]) if node.output[0] in self.doc else None
        if override is not None and override.has("ActivationFunction"):
            act = make_activation(override)
        cell = self.cells.get(x.cell)
        if (cell is not None and cell.type_name in FOLD_INTO and cell.activation is None
                and self.uses.get(node.input[0], 0) == 1 and x.cell not in self.ignore):
            cell.activation = act
            self.alias(node, x)
            return
        self.add(node, lambda n, p, s: ElemWiseCell(n, p, self.device, "Sum", activation=act),
                 [x])
