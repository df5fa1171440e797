"""The sequential part of edge learning, compiled with numba (host arrays only).

One labelled sample at a time (the rule is order-dependent, as on the chip): the potentials of
the sample's class neurons, the choice of the neuron that learns, the move of some of its ones
from silent inputs onto active inputs, and the rise of its learning threshold.
"""

import numba
import numpy as np


@numba.njit(cache=True, nogil=True)
def _seed(seed):
    np.random.seed(seed)


@numba.njit(cache=True, nogil=True)
def _take(indices, count, m):
    """Move ``m`` entries drawn at random (without replacement) to the front of indices[:count]."""
    for i in range(m):
        j = i + np.random.randint(count - i)
        indices[i], indices[j] = indices[j], indices[i]


@numba.njit(cache=True, nogil=True)
def fit_loop(weights, thresholds, counts, bits, classes, neurons_per_class, competition, seed,
             winners, potentials_before):
    """Learn ``bits`` (N, n_in; 0/1) with labels ``classes`` (N; −1 = skip), in order.

    ``weights`` (n_neurons, n_in; 0/1), ``thresholds`` (float32) and ``counts`` (learning steps
    per neuron) are updated in place. ``winners[i]`` gets the neuron that learned sample i, or
    −1; ``potentials_before[i]`` its potential before the update.
    """
    _seed(seed)
    n_in = bits.shape[1]
    active = np.empty(n_in, np.int64)
    silent_ones = np.empty(n_in, np.int64)
    free_inputs = np.empty(n_in, np.int64)
    for i in range(bits.shape[0]):
        winners[i] = -1
        potentials_before[i] = 0
        c = classes[i]
        if c < 0:
            continue
        k = 0
        for f in range(n_in):
            if bits[i, f]:
                active[k] = f
                k += 1
        if k == 0:
            continue
        first = c * neurons_per_class
        best, best_p, free = -1, -1, -1
        for j in range(first, first + neurons_per_class):
            if counts[j] == 0:
                if free < 0:
                    free = j
                continue
            p = 0
            for a in range(k):
                p += weights[j, active[a]]
            if p >= thresholds[j] and p > best_p:
                best, best_p = j, p
        if best < 0:
            if free < 0:
                continue
            best = free
            best_p = 0
            for a in range(k):
                best_p += weights[best, active[a]]
        winners[i] = best
        potentials_before[i] = best_p
        _learn(weights, thresholds, counts, best, bits[i], active, k, silent_ones, free_inputs,
               competition, best_p)


@numba.njit(cache=True, nogil=True)
def _learn(weights, thresholds, counts, j, x, active, k, silent_ones, free_inputs, competition,
           potential):
    """Neuron ``j`` moves some ones from silent inputs onto active ones; its threshold rises.

    A neuron that never learned takes the sample whole; afterwards at most
    ceil(mismatch / (steps + 1)) ones move, so that the weights follow the running mean of the
    samples the neuron learned (with ``num_weights`` ones, always).
    """
    n_in = x.shape[0]
    n_silent = 0
    for f in range(n_in):
        if weights[j, f] and not x[f]:
            silent_ones[n_silent] = f
            n_silent += 1
    n_free = 0
    for a in range(k):
        if not weights[j, active[a]]:
            free_inputs[n_free] = active[a]
            n_free += 1
    m = min(n_silent, n_free)
    if counts[j] > 0:
        m = min(m, (n_free + counts[j]) // (counts[j] + 1))
    _take(silent_ones, n_silent, m)
    _take(free_inputs, n_free, m)
    for i in range(m):
        weights[j, silent_ones[i]] = 0
        weights[j, free_inputs[i]] = 1
    after = potential + m
    old = thresholds[j]
    new = old + competition * (after - old)
    thresholds[j] = max(old, new, 1.0)
    counts[j] += 1
