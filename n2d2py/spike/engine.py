"""The production engine: the exact event loop of spec §6.4, compiled with numba.

Same semantics as the reference loop in simulator.py, event for event: one priority queue
keyed by (time, sequence); input spikes go first on ties, ordered by node, then internal
events in the order they were emitted. Inputs are generated lazily (one pending spike per
input node) rather than all at once: with TerminateDelta most of a window's input spikes are
never reached. Stimuli are independent and run in parallel (``prange`` over chunks). The
network comes flattened into CSR tables (tables.py).

This module is the honest exception to "no numpy loops": an event loop cannot be
vectorised, so it is written as plain loops over numpy arrays for numba to compile. Helpers
take arrays, not the network tuple: passing the tuple to a call costs more than the call.
"""

import math

import numpy as np
from numba import njit, prange

from n2d2py.spike import coding as cd
from n2d2py.spike.neuron import integrate_fire, leak
from n2d2py.spike.tables import FIRST_INTERNAL, K_IF, K_MAX, MAX_TIME, SEQ_BITS
from n2d2py.spike.time import HOP, TERMINATE_AFTER

# -- the compiled loop ----------------------------------------------------------------------
# Queue: the pending input spikes (one per node) in a binary heap keyed time << 32 | node,
# and the internal events in one FIFO ring per distinct arrival delay: events enter a ring in
# (time, sequence) order, so the earliest event is the smallest of the heads. Together they
# give exactly the order of one priority queue keyed (time, sequence) with inputs first.


@njit(cache=True, inline="always")
def _push(keys, nodes, signs, n, key, node, sign):
    i = n
    while i > 0:
        parent = (i - 1) >> 1
        if keys[parent] <= key:
            break
        keys[i], nodes[i], signs[i] = keys[parent], nodes[parent], signs[parent]
        i = parent
    keys[i], nodes[i], signs[i] = key, node, sign
    return n + 1


@njit(cache=True, inline="always")
def _replace_top(keys, nodes, signs, n, key, node, sign):
    """Pop the smallest entry and push (key, node, sign) in one sift-down; returns n."""
    i = 0
    while True:
        child = 2 * i + 1
        if child >= n:
            break
        if child + 1 < n and keys[child + 1] < keys[child]:
            child += 1
        if keys[child] >= key:
            break
        keys[i], nodes[i], signs[i] = keys[child], nodes[child], signs[child]
        i = child
    keys[i], nodes[i], signs[i] = key, node, sign
    return n


@njit(cache=True, inline="always")
def _pop(keys, nodes, signs, n):
    n -= 1
    if n > 0:
        _replace_top(keys, nodes, signs, n, keys[n], nodes[n], signs[n])
    return n


@njit(cache=True)
def _terminated(pos, neg, lo, size, delta, most):
    """TerminateDelta/TerminateMax reached on neurons [lo, lo + size) (best and second-best
    net counts; a single neuron's second best is 0)."""
    best = -(1 << 40)
    second = -(1 << 40)
    for n in range(lo, lo + size):
        c = pos[n] - neg[n]
        if c > best:
            second = best
            best = c
        elif c > second:
            second = c
    if size == 1:
        second = 0
    return (delta > 0 and best - second >= delta) or (most > 0 and best >= most)


@njit(cache=True, inline="always")
def _max_pool_change(fin_ptr, fin_src, g, sign, out, delivered, pmax):
    """New maximum of pool output ``out`` after a spike of input ``g`` (count already updated)."""
    c = delivered[g]
    if sign > 0:
        return c if c > pmax[out] else pmax[out]
    if c + 1 != pmax[out]:
        return pmax[out]
    best = c
    for e in range(fin_ptr[out], fin_ptr[out + 1]):
        best = max(best, delivered[fin_src[e]])
    return best


@njit(cache=True)
def allocate(net, ring=1024):
    """Per-worker state: neuron arrays, input generators, the input heap and the rings."""
    n_total, n_env, k = net.layer_of.size, net.size[0], net.n_classes
    ring = 1 << int(math.ceil(math.log2(max(ring, 2 * net.max_fanout))))
    f = np.zeros
    return (f(n_total), f(n_total, np.int64), f(n_total, np.int64),
            f(n_total, np.int32), f(n_total, np.int32), f(n_total, np.int32),
            f(n_total, np.int32), f(n_total, np.int32), f(n_total, np.int32),
            f(n_env), f(n_env, np.int64), f(n_env, np.int64), f(n_env, np.int32), f(n_env, np.int8),
            f(net.max_fanout, np.int64), f(net.max_fanout, np.int8),
            f((k, ring), np.int64), f((k, ring), np.int64), f((k, ring), np.int64), f((k, ring), np.int8),
            f(k, np.int64), f(k, np.int64))


@njit(cache=True)
def _reset(state):
    state[0][:] = 0.0
    state[1][:] = 0
    state[2][:] = 0
    for a in (state[3], state[4], state[5], state[6], state[7], state[8]):
        a[:] = 0
    state[20][:] = 0
    state[21][:] = 0


@njit(cache=True)
def _start_inputs(params, values, stimulus, seed, end, period, k_next, keys, nodes, signs):
    """Queue the first spike of every input node; returns the heap size."""
    n = 0
    for node in range(values.size):
        period[node] = cd.mean_period(params, values[node], end)
        k_next[node] = 1
        t = cd.first_spike(params, period[node], seed, stimulus, node, end)
        if t >= 0:
            n = _push(keys, nodes, signs, n, (t << SEQ_BITS) | node, node,
                      -1 if values[node] < 0 else 1)
    return n


@njit(cache=True)
def _grow_rings(qt, qn, qq, qs, head, tail):
    """Double the rings' capacity, keeping every pending event in order."""
    k, cap = qt.shape
    t2, n2, q2, s2 = (np.zeros((k, 2 * cap), np.int64), np.zeros((k, 2 * cap), np.int64),
                      np.zeros((k, 2 * cap), np.int64), np.zeros((k, 2 * cap), np.int8))
    for c in range(k):
        count = tail[c] - head[c]
        for j in range(count):
            src = (head[c] + j) & (cap - 1)
            t2[c, j], n2[c, j], q2[c, j], s2[c, j] = qt[c, src], qn[c, src], qq[c, src], qs[c, src]
        head[c], tail[c] = 0, count
    return t2, n2, q2, s2


@njit(cache=True, inline="always")
def _earliest_ring(qt, qq, head, tail):
    """(ring, time) of the earliest pending internal event by (time, sequence); (−1, MAX)."""
    mask = qt.shape[1] - 1
    cls, t, q = -1, MAX_TIME, MAX_TIME
    for c in range(qt.shape[0]):
        if head[c] < tail[c]:
            j = head[c] & mask
            if qt[c, j] < t or (qt[c, j] == t and qq[c, j] < q):
                cls, t, q = c, qt[c, j], qq[c, j]
    return cls, t


@njit(cache=True)
def simulate(net, params, values, stimulus, seed, end, state, fires, rec, rec_layer):
    """One stimulus. Returns (synaptic reads, pool updates, stop time or −1, recorded spikes);
    neuron counts are left in ``state`` (pos, neg), delivered events added to ``fires``."""
    u, t_last, refr, delivered, pos, neg, pmax, psum, pemit, period, k_next, keys, nodes, \
        signs, fired, fired_sign, qt, qn, qq, qs, head, tail = state
    _reset(state)
    n_env = net.size[0]
    n = _start_inputs(params, values, stimulus, seed, end, period, k_next, keys, nodes, signs)
    seq, stop, terminated = FIRST_INTERNAL, end, -1
    reads, pool_ops, n_rec = 0, 0, 0
    while True:
        cls, t = _earliest_ring(qt, qq, head, tail)
        if n > 0 and (keys[0] >> SEQ_BITS) <= t:  # inputs first on ties
            t, g, s = keys[0] >> SEQ_BITS, np.int64(nodes[0]), np.int64(signs[0])
            if t > stop:
                break
            n = _next_input(params, period, k_next, keys, nodes, signs, n, t, g, s, seed, stimulus, end)
            pos[g] += s > 0
            neg[g] += s < 0
        elif cls >= 0:
            j = head[cls] & (qt.shape[1] - 1)
            g, s = qn[cls, j], np.int64(qs[cls, j])
            if t > stop:
                break
            head[cls] += 1
        else:
            break
        delivered[g] += s
        fires[g] += 1
        src_layer = net.layer_of[g]
        i = g - net.start[src_layer]
        for p in range(net.proj_lo[src_layer], net.proj_hi[src_layer]):
            c = net.p_cons[p]
            e0, e1 = net.ptr[net.p_base[p] + i], net.ptr[net.p_base[p] + i + 1]
            if net.kind[c] == K_IF:
                reads += e1 - e0
                nf = _integrate(net.tgt, net.weight, e0, e1, net.start[c], s, t, net.threshold[c],
                                net.bipolar[c], net.leak[c], net.refractory[c], u, t_last, refr,
                                fired, fired_sign)
            else:
                pool_ops += e1 - e0
                nf = _pool(net.tgt, e0, e1, net.start[c], net.kind[c] == K_MAX, g, s, net.fin_ptr,
                           net.fin_src, net.divisor, delivered, pmax, psum, pemit, fired, fired_sign)
            k = net.klass[c]
            if k >= 0 and tail[k] - head[k] + nf > qt.shape[1]:
                qt, qn, qq, qs = _grow_rings(qt, qn, qq, qs, head, tail)
            for f in range(nf):  # the spikes of this update, in target order
                out, o = fired[f], np.int64(fired_sign[f])
                pos[out] += o > 0
                neg[out] += o < 0
                if k >= 0:
                    j = tail[k] & (qt.shape[1] - 1)
                    qt[k, j], qn[k, j], qq[k, j], qs[k, j] = t + net.arrive[c], out, seq, o
                    tail[k] += 1
                seq += 1
                if c == rec_layer and n_rec < rec[0].size:
                    rec[0][n_rec], rec[1][n_rec], rec[2][n_rec] = t + HOP, out - net.start[c], o
                    n_rec += 1
                if (net.term_delta[c] > 0 or net.term_max[c] > 0) and _terminated(
                        pos, neg, net.start[c], net.size[c], net.term_delta[c], net.term_max[c]):
                    terminated = t + HOP if terminated < 0 else terminated
                    stop = min(stop, t + HOP + TERMINATE_AFTER)
    return reads, pool_ops, terminated, n_rec


@njit(cache=True, inline="always")
def _next_input(params, period, k_next, keys, nodes, signs, n, t, g, s, seed, stimulus, end):
    """Replace input node g's spike at the top of the heap by its next one; returns n."""
    tn = cd.next_spike(params, period[g], t, k_next[g], seed, stimulus, g, end)
    k_next[g] += 1
    if tn >= 0:
        _replace_top(keys, nodes, signs, n, (tn << SEQ_BITS) | g, g, s)
        return n
    return _pop(keys, nodes, signs, n)


@njit(cache=True)
def _integrate(tgt, weight, e0, e1, base, s, t, threshold, bipolar, tau, refractory, u, t_last,
               refr, fired, fired_sign):
    """Deliver sign ``s`` through entries [e0, e1) to integrate-and-fire neurons ``base + tgt``;
    the neurons that fire are listed in ``fired``/``fired_sign``; returns how many. (Arrays are
    passed one by one, not as the network tuple: a call then costs no reference counting.)"""
    nf = 0
    for e in range(e0, e1):
        out = base + tgt[e]
        if tau > 0:  # (a loop-invariant test: the compiler moves it out of the loop)
            u[out] = leak(u[out], t_last[out], t, tau)
            t_last[out] = t
        v, o = integrate_fire(u[out], weight[e], s, threshold, bipolar, t, refr[out])
        u[out] = v
        if o != 0:
            refr[out] = t + refractory
            fired[nf] = out
            fired_sign[nf] = o
            nf += 1
    return nf


@njit(cache=True)
def _pool(tgt, e0, e1, base, is_max, g, s, fin_ptr, fin_src, divisor, delivered, pmax, psum,
          pemit, fired, fired_sign):
    """Deliver a spike of input ``g`` to pool outputs ``base + tgt[e0:e1]``."""
    nf = 0
    for e in range(e0, e1):
        out = base + tgt[e]
        if is_max:
            best = _max_pool_change(fin_ptr, fin_src, g, s, out, delivered, pmax)
            o = best - pmax[out]
            pmax[out] = best
        else:
            psum[out] += s
            target = _round_half_away(psum[out] / divisor[out])
            o = 0 if target == pemit[out] else (1 if target > pemit[out] else -1)
            pemit[out] += o
        if o != 0:
            fired[nf] = out
            fired_sign[nf] = o
            nf += 1
    return nf


@njit(cache=True, inline="always")
def _round_half_away(x):
    return math.floor(x + 0.5) if x >= 0 else -math.floor(-x + 0.5)


@njit(parallel=True, cache=True)
def run_batch(net, params, values, stimuli, seed, end, out_layer, n_chunks, counts, events, info,
              fires):
    """Simulate ``values`` (n, input nodes) in ``n_chunks`` parallel chunks.

    Fills counts (n, outputs: pos − neg of ``out_layer``), events (n, layers: output spikes of
    each layer, the input node first), info (n, 3: reads, pool updates, stop time) and
    fires (n_chunks, neurons: events delivered per neuron, summed over the chunk).
    """
    n_stim = values.shape[0]
    n_layers = net.size.size
    for ch in prange(n_chunks):
        lo, hi = ch * n_stim // n_chunks, (ch + 1) * n_stim // n_chunks
        state = allocate(net)
        pos, neg = state[4], state[5]
        rec = (np.zeros(1, np.int64), np.zeros(1, np.int64), np.zeros(1, np.int8))
        for i in range(lo, hi):
            reads, pool_ops, stop, _ = simulate(net, params, values[i], stimuli[i], seed, end,
                                                state, fires[ch], rec, -1)
            info[i, 0], info[i, 1], info[i, 2] = reads, pool_ops, stop
            for layer in range(n_layers):
                total = 0
                for g in range(net.start[layer], net.start[layer] + net.size[layer]):
                    total += pos[g] + neg[g]
                events[i, layer] = total
            first = net.start[out_layer]
            for j in range(net.size[out_layer]):
                counts[i, j] = pos[first + j] - neg[first + j]
