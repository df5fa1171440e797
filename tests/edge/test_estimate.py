"""The estimation tips: suggested NumWeights and the neurons-per-class sweep."""

import numpy as np

from n2d2py.edge import estimate


def test_suggested_num_weights_is_1_2_median():
    bits = np.zeros((5, 30), np.uint8)
    for i, k in enumerate((8, 9, 10, 11, 20)):
        bits[i, :k] = 1
    assert estimate.suggested_num_weights(bits) == 12
    stats = estimate.spike_stats(bits, np.array([0, 0, 1, 1, 1]), 3)
    assert stats["median"] == 10 and [len(c) for c in stats["per_class"]] == [2, 3, 0]


def test_sweep_loss_falls_and_learned_neurons_saturate():
    rng = np.random.default_rng(0)
    prototypes = (rng.random((4, 60)) < 0.3).astype(np.uint8)
    noise = (rng.random((400, 60)) < 0.03).astype(np.uint8)
    bits = prototypes[rng.integers(0, 4, 400)] ^ noise
    neurons, losses, learned = estimate.sweep(bits, 18, (1, 2, 4, 8, 16, 64), competition=0.5,
                                              progress=False)
    assert list(neurons) == [1, 2, 4, 8, 16, 64]
    assert (learned <= neurons).all() and (losses >= 0).all()
    assert losses[-1] < losses[0] and learned[-1] < 64
