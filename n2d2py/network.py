"""INI document → Network: the input provider, cells in topological order, targets, solvers.

``build`` is the only code that reads ``Type=``; classes come from the registries.
"""

from n2d2py import activations as _activations  # noqa: F401  (fills ACTIVATIONS)
from n2d2py import cells as _cells  # noqa: F401  (fills CELLS)
from n2d2py import data as _data  # noqa: F401  (fills DATABASES, TRANSFORMATIONS)
from n2d2py import edge as _edge  # noqa: F401  (fills CELLS: EdgeFc)
from n2d2py import fillers as _fillers  # noqa: F401  (fills FILLERS)
from n2d2py import solvers, targets as _targets  # noqa: F401  (fills SOLVERS, TARGETS)
from n2d2py import backend, unsupported
from n2d2py.cells.base import Port
from n2d2py.data.provider import StimuliProvider
from n2d2py.errors import N2D2PyError, did_you_mean
from n2d2py.ini.section import Section, config_probe_name
from n2d2py.registry import CELLS, DATABASES, TARGETS

INPUT_NAMES = ("cenv", "env", "sp")  # all aliases of the single input node
MODELS = ("Frame", "Frame_CUDA", "Transcode", "Transcode_CUDA")
UNSUPPORTED_MODELS = ("Spike", "Spike_Analog", "Spike_RRAM", "Spike_PCM", "Frame_EXT_CUDA")


def global_section(doc):
    return Section(doc, [doc.GLOBAL], label=None)


def default_model(doc):
    """``DefaultModel`` (N2D2's default is Transcode) after checking it is one we run."""
    model = global_section(doc).get_enum(
        "DefaultModel", MODELS + UNSUPPORTED_MODELS, default="Transcode"
    )
    if model in UNSUPPORTED_MODELS:
        raise global_section(doc).error("DefaultModel", f"model {model} is not supported yet")
    return model


class Network:
    """The built graph: provider → cells (topological order) → targets."""

    pretrained = ()  # sections whose cells start from a file's values (Type=ONNX)

    def __init__(self, doc, device, provider, database, cells, targets, spike=None, seed=0):
        self.doc = doc
        self.device = device
        self.provider = provider
        self.database = database
        self.cells = cells  # name -> Cell, in topological order
        self.targets = targets  # list of (target section name, cell name, target)
        self.spike = spike  # Transcode models: spike.transcode.Settings (the spike test's keys)
        self.seed = seed  # -seed (or the run's resolved seed): the spike test's random draws

    @property
    def input_name(self):
        return self.provider.name

    def params(self):
        return [p for cell in self.cells.values() for p in cell.params()]

    def initialize(self):
        """Fill every parameter from its filler, in topological order (seeded by -seed)."""
        for p in self.params():
            p.initialize(self.device)

    def forward(self, x, train=False, labels=None):
        """Run all cells; returns {cell name: output}. ``labels`` (learning) are handed first
        to the cells that read their target before the forward pass (TargetBias)."""
        if labels is not None:
            self.provide_targets(labels)
        self.last_input = x  # the target of DataAsTarget targets
        outputs = {self.input_name: x}
        for name, cell in self.cells.items():
            outputs[name] = cell.forward([outputs[p.name] for p in cell.inputs], train)
        return outputs

    def provide_targets(self, labels):
        """Target values (N, C, H, W) of ``labels`` to each cell with ``set_marks``."""
        for _, cell_name, target in self.targets:
            cell = self.cells[cell_name]
            if hasattr(cell, "set_marks"):
                cell.set_marks(self.device.asarray(target.target_values(labels, cell.out_shape)))

    def backward(self, grads):
        """Back-propagate ``grads`` ({cell name: dL/doutput}), accumulating param grads."""
        grads = dict(grads)
        for name, cell in reversed(self.cells.items()):
            dy = grads.pop(name, None)
            if dy is None:
                continue
            for port, dx in zip(cell.inputs, cell.backward(dy)):
                if dx is not None and port.name in self.cells:
                    known = grads.get(port.name)
                    grads[port.name] = dx if known is None else backend.add(known, dx)

    def loss_grads(self, outputs, labels, score_set=None, ids=None):
        """Every target's gradient at its cell and loss: ({cell: dL/dy}, [loss per target]);
        with ``score_set`` the outputs are also scored there."""
        grads, losses = {}, []
        for _, cell_name, target in self.targets:
            y = outputs[cell_name]
            if getattr(self.cells[cell_name], "takes_no_loss", False):
                if score_set is not None:
                    target.process(score_set, y, labels, ids)
                losses.append(0.0)
                continue
            dy, loss = target.loss_grad(y, labels)
            if score_set is not None:
                target.process(score_set, y, labels, ids)
            losses.append(loss)
            if dy is None:  # a target that only scores (TargetROIs)
                continue
            grads[cell_name] = dy if cell_name not in grads else grads[cell_name] + dy
        return grads, losses

    def zero_grad(self):
        for cell in self.cells.values():
            cell.zero_grad()

    def summary(self):
        """Rows (name, type, inputs, output dims, shared synapses, virtual synapses)."""
        rows = []
        for name, cell in self.cells.items():
            c, h, w = cell.out_shape
            rows.append(
                (
                    name,
                    cell.type_name,
                    ",".join(p.name for p in cell.inputs),
                    f"{c}x{h}x{w}",
                    cell.nb_synapses(),
                    cell.nb_virtual_synapses(),
                )
            )
        return rows


def build(doc, device, load_data=True, seed=0):
    """Build the Network described by ``doc`` on ``device``.

    With ``load_data=False`` (dry run) a database that cannot be loaded is a warning and
    ``[sp]_EpochSize`` is 0.
    """
    model = default_model(doc)
    gsec = global_section(doc)
    unsupported.check_document(doc)  # DefaultDataType, InsertBatchNormAfterConv, quantisation
    gsec.get_str("CheckWeightRange", None)  # read by the spike test (Transcode models)
    for name in _layer_names(doc):  # a missing ONNX file is said first, before any data loads
        if _is_onnx(doc, name):
            from n2d2py.onnx import importer

            importer.check_file(Section(doc, [name]))
    database = _database(doc)
    provider = _provider(doc, database, device, load_data)
    cells, pretrained = {}, []
    for name in _topological_order(doc, provider.name):
        if _is_onnx(doc, name):  # an ONNX graph: many cells, named after its nodes
            from n2d2py.onnx import importer

            cells.update(importer.build_section(Section(doc, [name]), cells, provider, device))
            pretrained.append(name)
        else:
            cells[name] = _cell(doc, name, cells, provider, device, model)
    targets = _targets_of(doc, cells, provider)
    for name, cell in cells.items():
        _attach_solvers(doc, name, cell)
    spike = None
    if model.startswith("Transcode"):  # read the spike keys now, so that typos are reported
        from n2d2py.spike import transcode

        spike = transcode.read_settings(doc, cells, provider)
        unsupported.transcode_notice(doc, cells, spike)
    report_unused(doc, {name: cell.section.config.names for name, cell in cells.items()})
    net = Network(doc, device, provider, database, cells, targets, spike=spike, seed=seed)
    net.pretrained = pretrained
    for _, _, target in targets:
        if hasattr(target, "bind"):  # targets that read the network's input (DataAsTarget)
            target.bind(net)
    return net


def _database(doc):
    if "database" not in doc:
        doc.warn("no [database] section: no data to learn or test from", section=None)
        return None
    sec = Section(doc, ["database"])
    cls = DATABASES.get(sec.get_str("Type"), where=sec.prop("Type"))
    return cls.from_section(sec)


def _provider(doc, database, device, load_data):
    name = next((n for n in INPUT_NAMES if n in doc), None)
    if name is None:
        raise N2D2PyError("missing input section: add [sp] (or [env] for spiking models)", doc.path)
    sec = Section(doc, [name])
    provider = StimuliProvider.from_section(sec, database, device)
    epoch_size = 0
    if database is not None:
        try:
            provider.load(device.rng)
            epoch_size = provider.epoch_size
        except N2D2PyError as exc:
            if load_data:
                raise
            doc.warn(f"database not loaded ({exc}); [{name}]_EpochSize set to 0", section="database")
    doc.set_generated(name, "_EpochSize", epoch_size)
    return provider


def _layer_names(doc):
    return [n for n in doc.section_names() if "Input" in doc.sections[n].props]


def _is_onnx(doc, name):
    return Section(doc, [name]).get_str("Type", "") == "ONNX"


def _topological_order(doc, input_name):
    """Layers sorted by depth (1 + max depth of inputs), file order within a depth."""
    layers = _layer_names(doc)
    inputs = {name: Section(doc, [name]).get_list("Input") for name in layers}
    onnx = [name for name in layers if _is_onnx(doc, name)]
    for name, names in inputs.items():
        for item in list(names):
            if item not in INPUT_NAMES and item not in inputs and onnx and name not in onnx:
                names[names.index(item):names.index(item) + 1] = onnx  # an ONNX node's name
            elif item not in INPUT_NAMES and item not in inputs:
                hint = did_you_mean(item, layers + [input_name])
                why = " (a section without Input= is not a layer)" if item in doc else ""
                raise Section(doc, [name]).error("Input", f"unknown input '{item}'{why}{hint}")
    depth = {}
    while len(depth) < len(layers):
        progress = False
        for name in layers:
            if name in depth:
                continue
            parents = [i for i in inputs[name] if i not in INPUT_NAMES]
            if all(p in depth for p in parents):
                depth[name] = 1 + max((depth[p] for p in parents), default=0)
                progress = True
        if not progress:
            stuck = [n for n in layers if n not in depth]
            raise Section(doc, [stuck[0]]).error(
                "Input", "cycle between layers: " + " -> ".join(stuck)
            )
    return sorted(layers, key=lambda n: (depth[n], layers.index(n)))


def _config_chain(doc, sec, model):
    key = f"ConfigSection({model})" if sec.has(f"ConfigSection({model})") else "ConfigSection"
    names = sec.get_list(key, default=[])
    for item in names:
        if item not in doc:
            hint = did_you_mean(item, doc.section_names())
            raise sec.error(key, f"config section [{item}] does not exist{hint}")
    return names


def _cell(doc, name, built, provider, device, default):
    sec = Section(doc, [name])
    model = sec.get_enum("Model", MODELS, default=default)
    sec.config = Section(doc, _config_chain(doc, sec, model), label=name)
    ports = []
    for item in sec.get_list("Input"):
        if item not in INPUT_NAMES and item not in built:
            if item in doc and _is_onnx(doc, item):  # N2D2: "Input=onnx,<node>" orders after [onnx], no port
                continue
            hint = did_you_mean(item, list(built))
            raise sec.error("Input", f"unknown input '{item}': no layer or ONNX node has that name{hint}")
        shape = provider.shape if item in INPUT_NAMES else built[item].out_shape
        ports.append(Port(provider.name if item in INPUT_NAMES else item, tuple(shape)))
    if not ports:
        raise sec.error("Input", "names only ONNX sections: add the ONNX node to read from")
    cls = CELLS.get(sec.get_str("Type"), where=sec.prop("Type"))
    cell = cls.from_section(sec, ports, device)
    cell.section = sec
    cell.needs_input_grad = any(p.name in built for p in ports)
    channels = sum(p.shape[0] for p in ports)
    _, in_h, in_w = ports[0].shape
    out_c, out_h, out_w = cell.out_shape
    for key, value in (
        ("_NbChannels", channels),
        ("_ChannelsHeight", in_h),
        ("_ChannelsWidth", in_w),
        ("_NbOutputs", out_c),
        ("_OutputsHeight", out_h),
        ("_OutputsWidth", out_w),
    ):
        doc.set_generated(name, key, value)
    nb_outputs = sec.get_uint("NbOutputs", None)
    if nb_outputs is not None and nb_outputs != out_c:
        raise sec.error("NbOutputs", f"{nb_outputs} outputs declared, but the cell produces {out_c}")
    return cell


def _attach_solvers(doc, name, cell):
    sec = cell.section
    for param in cell.params():
        key = f"{param.role}Solver"
        type_key = key if sec.has(key) else "Solvers"
        type_name = sec.get_str(type_key, "SGD")
        param.solver = solvers.make_solver(sec.config, param.role, type_name, where=sec.prop(type_key))


def _targets_of(doc, cells, provider):
    found = []
    for name in cells:
        for section in doc.section_names():
            if section == f"{name}.Target" or section.startswith(f"{name}.Target"):
                sec = Section(doc, [section])
                cls = TARGETS.get(sec.get_str("Type", "TargetScore"), where=sec.prop("Type"))
                cell = cells[name]
                target = cls.from_section(sec, name, cell.out_shape[0], provider.label_names)
                target.name_of = getattr(provider.database, "stimulus_name", None)  # for logs
                found.append((section, name, target))
    # Targets that only mark the target class for their cell (TargetBias) go last, so that the
    # first target, whose score picks the best weights, is one that learns (spec §8.2).
    found.sort(key=lambda item: getattr(cells[item[1]], "takes_no_loss", False))
    if not found:
        raise N2D2PyError(
            "missing target: no [<layer>.Target] section names a layer "
            f"(layers: {', '.join(cells) or 'none'})",
            doc.path,
        )
    return _targets.link_targets(found)  # MaskLabelTarget, ROIsLabelTarget


def report_unused(doc, config_chains):
    """Warn (or, in strict mode, fail) about keys and sections that nothing read.

    ``config_chains`` maps each layer to its ConfigSection names, so that a configuration key
    written in the layer's own section (N2D2 ignores it there) gets a precise message.
    """
    for name in doc.section_names():
        raw = doc.sections[name]
        unread = [
            p
            for key, p in raw.props.items()
            if (name, key) not in doc.read and (p.section, key) not in doc.read
        ]
        if not unread:
            continue
        if len(unread) == len(raw.props):
            doc.diagnostics.unused("section is never used", raw.file, raw.line, name)
            continue
        probed = doc.probed.get(name, set())
        config_probed = set()
        if name in config_chains:
            for chain_name in config_chains[name]:
                config_probed |= doc.probed.get(chain_name, set())
            config_probed |= doc.probed.get(config_probe_name(name), set())
        for prop in unread:
            message = _unused_message(prop.key, probed, config_probed)
            doc.diagnostics.unused(message, prop.file, prop.line, prop.section, prop.key)


def _unused_message(key, probed, config_probed):
    if key in config_probed:
        return (
            f"{key} is a configuration key: it is read only from the layer's ConfigSection, "
            "so it has no effect here"
        )
    hint = did_you_mean(key, sorted(probed | config_probed))
    return f"unknown or unused key {key}{hint}"
