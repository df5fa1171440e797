"""The estimation tips for an edge layer (BrainChip's "tips to set Akida learning parameters").

- ``spike_stats``: spikes per sample at the layer's input; ``NumWeights`` ≈ 1.2 × the median.
- ``sweep``: for the samples of one class, learn a one-class layer with n neurons for several n;
  the loss (num_weights − best potential, averaged over the samples) and the number of neurons
  that learned stop improving where NeuronsPerClass is large enough.

The ``*_command`` functions are ``-edge-stats N`` and ``-edge-sweep CLASS``: they print a table
and write a PNG in the run folder (n2d2py/edge/figures.py).
"""

import os
import time

import numpy as np
from tqdm import tqdm

from n2d2py.edge import features, figures
from n2d2py.edge.layer import EdgeLayer
from n2d2py.errors import N2D2PyError

WEIGHTS_PER_MEDIAN_SPIKE = 1.2
NEURONS = (2, 3, 4, 5, 6, 7, 8, 9, 10, 15, 20, 25, 30, 35, 40, 45, 50, 60, 70, 80, 90, 100,
           150, 200, 250, 300, 350, 400, 450, 500, 750, 1000)


def suggested_num_weights(bits):
    """1.2 × the median number of spikes per sample (at least 1)."""
    return max(1, int(WEIGHTS_PER_MEDIAN_SPIKE * np.median(bits.sum(axis=1))))


def spike_stats(bits, classes, nb_classes):
    """Spike counts per sample, overall and per class: a dict of arrays and numbers."""
    counts = bits.sum(axis=1).astype(np.int64)
    per_class = [counts[classes == c] for c in range(nb_classes)]
    return {
        "counts": counts, "per_class": per_class, "nb_inputs": bits.shape[1],
        "median": float(np.median(counts)) if len(counts) else 0.0,
        "suggested": suggested_num_weights(bits) if len(counts) else 1,
    }


def sweep(bits, num_weights, neurons=NEURONS, competition=0.1, repetitions=1, seed=1,
          progress=True):
    """(neurons, mean loss, neurons that learned) of one class's samples ``bits``.

    For each n, ``repetitions`` one-class layers of n neurons learn a random permutation of
    the samples; the loss is mean(num_weights − best potential of the learned neurons) and,
    as in the tips, the smallest loss and count over the repetitions are kept.
    """
    if len(bits) == 0:
        raise N2D2PyError("the neurons-per-class sweep has no samples of this class")
    neurons = [n for n in neurons if n <= len(bits)] or [1]
    rng = np.random.default_rng(seed)
    losses = np.zeros((len(neurons), repetitions))
    learned = np.zeros((len(neurons), repetitions), np.int64)
    zeros = np.zeros(len(bits), np.int64)
    with tqdm(total=len(neurons) * repetitions, unit="fit", desc="Edge sweep", leave=False,
              dynamic_ncols=True, mininterval=0.5, disable=None if progress else True) as bar:
        for i, n in enumerate(neurons):
            for r in range(repetitions):
                layer = EdgeLayer(bits.shape[1], 1, num_weights, n, competition,
                                  seed=int(rng.integers(2**31)))
                shuffled = bits[rng.permutation(len(bits))]
                layer.fit(shuffled, zeros)
                best = layer.class_scores(layer.forward(shuffled))[:, 0]
                losses[i, r] = float(np.mean(num_weights - best))
                learned[i, r] = int(layer.learned.sum())
                bar.update(1)
    return np.asarray(neurons), losses.min(axis=1), learned.min(axis=1)


# -- commands -------------------------------------------------------------------------------


def stats_command(net, cell, nb_stimuli, rng, out):
    """``-edge-stats N``: spike statistics over N random Learn stimuli; edge_spikes.png."""
    positions = features.learn_positions(net, nb_stimuli, rng)
    bits, labels = features.collect(net, cell, "Learn", positions)
    classes = features.classes_of(net, cell, labels)
    stats = spike_stats(bits, classes, cell.layer.nb_classes)
    names = _class_names(net, cell)
    what = features.input_description(cell)
    counts = stats["counts"]
    print(f"Spikes per stimulus at the input of [{cell.name}] ({what}; {stats['nb_inputs']} "
          f"inputs), {len(bits)} Learn stimuli:")
    print(f"    median {stats['median']:g}, mean {counts.mean():.1f}, min {counts.min()}, "
          f"max {counts.max()}")
    print(f"    suggested NumWeights={stats['suggested']} (1.2 x median); the model has "
          f"NumWeights={cell.layer.num_weights}")
    print(f"    {'class':>8} {'stimuli':>8} {'median':>7} {'mean':>6} {'min':>4} {'max':>4}")
    for name, c in zip(names, stats["per_class"]):
        if len(c):
            print(f"    {name:>8} {len(c):>8} {np.median(c):>7g} {c.mean():>6.1f} {c.min():>4} "
                  f"{c.max():>4}")
    path = os.path.join(out, f"{cell.name}_spikes.png")
    figures.plot_spike_stats(path, stats, names, f"[{cell.name}] input: {what}",
                             cell.layer.num_weights)
    print(f"Plot: {path}")
    return stats


def sweep_command(net, cell, label, rng, out):
    """``-edge-sweep CLASS``: the neurons-per-class sweep on the Learn stimuli of one class."""
    names = _class_names(net, cell)
    index = _class_index(label, names)
    all_labels = net.database.labels("Learn")
    positions = np.nonzero(features.classes_of(net, cell, all_labels) == index)[0]
    bits, _ = features.collect(net, cell, "Learn", positions)
    layer = cell.layer
    start = time.perf_counter()
    neurons, losses, learned = sweep(bits, layer.num_weights, NEURONS,
                                     layer.learning_competition, seed=int(rng.integers(2**31)))
    print(f"Neurons-per-class sweep of class {names[index]} ({len(bits)} Learn stimuli, "
          f"NumWeights={layer.num_weights}, LearningCompetition={layer.learning_competition:g},"
          f" {time.perf_counter() - start:.1f} s):")
    print(f"    {'neurons':>8} {'loss':>8} {'learned':>8}")
    for n, loss, k in zip(neurons, losses, learned):
        print(f"    {n:>8} {loss:>8.3f} {k:>8}")
    path = os.path.join(out, f"{cell.name}_sweep_{_file_safe(names[index])}.png")
    figures.plot_sweep(path, neurons, losses, learned, names[index], layer.neurons_per_class)
    print(f"Plot: {path}")
    return neurons, losses, learned


def _class_names(net, cell):
    """A display name per class of ``cell`` (its target's output names when it has one)."""
    target = features.target_of(net, cell)
    names = target.output_names() if target is not None else []
    return [n or str(i) for i, n in enumerate(names[: cell.layer.nb_classes])] or [
        str(i) for i in range(cell.layer.nb_classes)]


def _class_index(label, names):
    if label in names:
        return names.index(label)
    if label.isdigit() and int(label) < len(names):
        return int(label)
    raise N2D2PyError(f"-edge-sweep {label}: no such class (classes: {', '.join(names)})")


def _file_safe(name):
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name) or "class"
