"""The binary samples an EdgeFc cell learns from: the frozen layers below it, binarised."""

import numpy as np
from tqdm import tqdm

from n2d2py.errors import N2D2PyError


def edge_cells(net):
    """The EdgeFc cells of ``net``, in topological order."""
    from n2d2py.edge.cell import EdgeFcCell

    return [cell for cell in net.cells.values() if isinstance(cell, EdgeFcCell)]


def target_of(net, cell):
    """The first target placed on ``cell`` (None when it has none)."""
    return next((t for _, name, t in net.targets if name == cell.name), None)


def classes_of(net, cell, labels):
    """Class indices (N,) of database ``labels`` for ``cell``: its target's LabelsMapping if it
    has a target, the labels themselves otherwise; −1 = ignored."""
    target = target_of(net, cell)
    classes = target.targets_of(labels) if target is not None else np.asarray(labels, np.int64)
    nb = cell.layer.nb_classes
    bad = classes[(classes >= nb) | (classes < -1)]
    if len(bad):
        raise N2D2PyError(f"[{cell.name}] label maps to class {int(bad[0])}, but EdgeFc has "
                          f"{nb} outputs (NbOutputs; or map labels with LabelsMapping)")
    return classes


def learn_positions(net, limit, rng):
    """The first ``limit`` positions of a random permutation of the Learn set (all if larger)."""
    n = net.provider.size("Learn")
    if n == 0:
        raise N2D2PyError("the Learn set is empty: nothing to learn from")
    return rng.permutation(n)[: min(limit, n)]


def collect(net, cell, set_name, positions, desc="Edge features"):
    """(bits uint8 (N, inputs) on the host, database labels (N,)) of ``positions`` of a set,
    through the layers below ``cell`` (no learning), with a progress bar."""
    provider = net.provider
    positions = np.asarray(positions, np.int64)
    chunks = [positions[i : i + provider.batch_size]
              for i in range(0, len(positions), provider.batch_size)]
    bits, labels = [], []
    rng = np.random.default_rng(0)  # on-the-fly transformations, if any
    with tqdm(total=len(positions), unit="img", desc=desc, leave=False, dynamic_ncols=True,
              mininterval=0.5, disable=None) as bar:
        for chunk in chunks:
            x, y, _ = provider.read(set_name, chunk, rng)
            spikes = cell.binarize(_inputs_of(net, cell, net.device.asarray(x)))
            bits.append(net.device.to_host(spikes).astype(np.uint8))
            labels.append(np.asarray(y, np.int64))
            bar.update(len(chunk))
    if not bits:
        return np.zeros((0, cell.layer.nb_inputs), np.uint8), np.zeros(0, np.int64)
    return np.concatenate(bits), np.concatenate(labels)


def _inputs_of(net, cell, x):
    """The outputs feeding ``cell``: every cell before it in topological order, in test mode."""
    outputs = {net.input_name: x}
    for name, other in net.cells.items():
        if other is cell:
            break
        outputs[name] = other.forward([outputs[p.name] for p in other.inputs], False)
    return [outputs[p.name] for p in cell.inputs]


def input_description(cell):
    """'fc1 > 0' : what a spike is at the input of ``cell``."""
    return f"{','.join(p.name for p in cell.inputs)} > {cell.input_threshold:g}"
