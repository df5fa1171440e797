"""The CLI side of edge learning: ``-edge-learn N``, ``-edge-stats N``, ``-edge-sweep CLASS``,
and the edge state that ``-test`` reads back from the run folder.

Called by runner.run once the network is built and the extractor weights are in (``-w``).
"""

import os
import time

import numpy as np

from n2d2py.edge import features
from n2d2py.edge.layer import EdgeLayer
from n2d2py.errors import N2D2PyError


def state_path(directory, cell):
    """``<cell>_edge.npz`` in a weights folder: where ``-edge-learn`` saves the state of
    ``cell`` (beside the extractor's weights) and ``-test`` reads it (from ``-w DIR`` if given)."""
    return os.path.join(directory, f"{cell.name}_edge.npz")


def weights_dir(net, out):
    """The folder that ``-test`` alone reads the extractor's weights from (runner's rule)."""
    from n2d2py import weights

    return weights.best_weights_dir(out, net.provider.size("Validation") > 0)


def check(net, opts):
    """The model's EdgeFc cell (or None), after checking the options go with it."""
    cells = features.edge_cells(net)
    alone = [name for name, on in (("-edge-stats", opts.edge_stats),
                                   ("-edge-sweep", opts.edge_sweep is not None)) if on]
    if (opts.edge_learn or alone) and not cells:
        raise N2D2PyError("-edge-learn, -edge-stats and -edge-sweep need a Type=EdgeFc layer in "
                          "the model (see models/LeNet_Edge.ini)", net.doc.path)
    if not cells:
        return None
    if len(cells) > 1:
        raise N2D2PyError(f"one EdgeFc layer per model, found {', '.join(c.name for c in cells)}",
                          net.doc.path)
    cell = cells[0]
    if opts.learning or opts.find_lr:
        raise N2D2PyError(f"[{cell.name}] is an EdgeFc layer: it learns with -edge-learn N, not "
                          "-learn, -learn-epoch or -find-lr (the layers below it are frozen: "
                          "learn them with their own model and load them with -w DIR)")
    others = opts.edge_learn or opts.test
    if len(alone) > 1 or (alone and others):
        raise N2D2PyError(f"{alone[0]} runs alone and exits: drop -edge-learn, -test and the "
                          "other estimation option")
    return cell


def run(net, opts, out):
    """Do what the edge options ask; True when the run is over (the estimation tools)."""
    cell = check(net, opts)
    if cell is None:
        return False
    if not opts.weights and not os.path.isdir(weights_dir(net, out)):
        print(f"warning: no -w DIR: the layers below [{cell.name}] keep their initial weights")
    rng = np.random.default_rng(net.device.rng.integers(2**63))
    if opts.edge_stats or opts.edge_sweep is not None:
        from n2d2py.edge import estimate

        if opts.edge_stats:
            estimate.stats_command(net, cell, opts.edge_stats, rng, out)
        else:
            estimate.sweep_command(net, cell, opts.edge_sweep, rng, out)
        return True
    if opts.edge_learn:
        learn(net, cell, opts.edge_learn, rng, out)
    elif opts.test:
        load_state(cell, state_path(opts.weights or weights_dir(net, out), cell))
    return False


def learn(net, cell, nb_stimuli, rng, out):
    """One pass over ``nb_stimuli`` shuffled Learn stimuli; saves the edge state and the
    extractor's weights in ``out``'s weights folder, where ``-test`` alone finds both."""
    from n2d2py import weights

    positions = features.learn_positions(net, nb_stimuli, rng)
    if len(positions) < nb_stimuli:
        print(f"note: the Learn set holds {len(positions)} stimuli; each is learned once")
    start = time.perf_counter()
    bits, labels = features.collect(net, cell, "Learn", positions)
    extract = time.perf_counter() - start
    classes = features.classes_of(net, cell, labels)
    start = time.perf_counter()
    winners = cell.layer.fit(bits, classes)
    fit = time.perf_counter() - start
    layer = cell.layer
    print(f"Edge learning [{cell.name}]: {len(bits)} stimuli ({features.input_description(cell)},"
          f" median {np.median(bits.sum(axis=1)):g} spikes) in {fit:.2f} s "
          f"(+ {extract:.1f} s through the layers below)")
    print(f"    {int((winners >= 0).sum())} stimuli learned, {int(layer.learned.sum())}/"
          f"{layer.nb_neurons} neurons learned ({layer.neurons_per_class} per class, "
          f"{layer.num_weights} weights, competition {layer.learning_competition:g})")
    folder = weights_dir(net, out)
    weights.save_weights([c for c in net.cells.values() if c is not cell], folder)
    layer.save(state_path(folder, cell))
    print(f"Edge state saved to {state_path(folder, cell)}, with the weights of the layers below")


def load_state(cell, path):
    """Replace ``cell``'s layer with the one saved at ``path`` (same shape required)."""
    if not os.path.isfile(path):
        raise N2D2PyError(f"no edge state for [{cell.name}] (run -edge-learn N first)", path)
    layer = EdgeLayer.load(path, xp=cell.xp)
    if not cell.layer.compatible(layer):
        raise N2D2PyError(f"the saved state is {layer!r}, but [{cell.name}] is "
                          f"{cell.layer!r}: learn again with -edge-learn N", path)
    layer.learning_competition = cell.layer.learning_competition
    cell.layer = layer
    print(f"Edge state loaded from {path}: {int(layer.learned.sum())}/{layer.nb_neurons} "
          "neurons learned")
