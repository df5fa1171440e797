"""The event queue and loop (spec §6.4, §6.7): the reference engine, and the driver of the
compiled production engine (engine.py) over batches of stimuli.

Semantics, shared by both engines:
- one queue of events ordered by (time in fs, sequence); the input spikes of the window are
  queued first (sequence = their rank in (time, node) order), then every emitted spike gets
  the next sequence number: simultaneous events are handled inputs first, then in emission
  order;
- an event of neuron g delivers its sign to every target of g; a target that fires emits a
  spike at t + 1 fs, which reaches the next layers 1 fs + their IncomingDelay after t;
- targets of one event are updated in increasing target order;
- after a spike of a layer with TerminateDelta/TerminateMax whose condition holds, events
  later than (that spike's time + 2 fs) are discarded; the window ends at ``end``.
"""

import heapq
import math
import os
import time

import numpy as np

from n2d2py.spike import engine, tables
from n2d2py.spike.layers import IF, MAX
from n2d2py.spike.neuron import integrate_fire, leak
from n2d2py.spike.time import HOP, TERMINATE_AFTER, WINDOW


def reference_run(snet, values, seed=0, stimulus=0, end=WINDOW):
    """Simulate one stimulus, one event at a time in plain Python (tests only: slow).

    Returns a dict: ``pos``/``neg`` {layer name (input node included): per-neuron spike
    counts}, ``reads`` (synaptic updates), ``pool_ops``, ``terminated`` (time of the spike
    that met the Terminate condition, or −1) and ``spikes`` [(time, layer, neuron, sign)].
    """
    st = _State(snet)
    times, nodes, signs = snet.coding.spike_train(values, end, seed, stimulus)
    queue = [(int(t), seq, snet.env_name, int(n), int(s))
             for seq, (t, n, s) in enumerate(zip(times, nodes, signs))]
    heapq.heapify(queue)
    seq, stop, terminated, spikes = len(queue), end, -1, []
    while queue:
        t, _, src_name, src, s = heapq.heappop(queue)
        if t > stop:
            break
        if src_name == snet.env_name:
            (st.pos if s > 0 else st.neg)[src_name][src] += 1
        st.delivered[src_name][src] += s
        for layer, k in st.consumers[src_name]:
            name = layer.name
            for tgt, w in layer.targets(k, src):
                o = _update(st, layer, k, tgt, w, s, t)
                if not o:
                    continue
                (st.pos if o > 0 else st.neg)[name][tgt] += 1
                spikes.append((t + HOP, name, tgt, o))
                if st.consumers[name]:
                    heapq.heappush(queue, (t + st.arrive[name], seq, name, tgt, o))
                seq += 1
                if layer.params.terminates and _terminate(layer.params, st.pos[name], st.neg[name]):
                    terminated = t + HOP if terminated < 0 else terminated
                    stop = min(stop, t + HOP + TERMINATE_AFTER)
    return dict(pos={n: np.array(v) for n, v in st.pos.items()},
                neg={n: np.array(v) for n, v in st.neg.items()},
                reads=st.reads, pool_ops=st.pool_ops, terminated=terminated, spikes=spikes)


class _State:
    """Per-neuron state of the reference engine, as lists per layer (input node included)."""

    def __init__(self, snet):
        names = [snet.env_name] + list(snet.layers)
        sizes = {snet.env_name: snet.env_size, **{n: l.size for n, l in snet.layers.items()}}
        zeros = lambda: {name: [0] * sizes[name] for name in names}
        self.pos, self.neg, self.delivered = zeros(), zeros(), zeros()
        self.pmax, self.psum, self.pemit, self.t_last, self.refr = (zeros() for _ in range(5))
        self.u = {name: [0.0] * sizes[name] for name in names}
        self.consumers = {name: snet.consumers(name) for name in names}
        self.arrive = {name: HOP + _consumer_delay(self.consumers[name]) for name in names}
        self.reads = self.pool_ops = 0


def _update(st, layer, k, tgt, w, s, t):
    """Deliver sign ``s`` (through weight ``w``) to neuron ``tgt`` of ``layer`` from its input
    ``k``; returns the sign of the spike it emits (0: none)."""
    name = layer.name
    if layer.kind == IF:
        st.reads += 1
        p = layer.params
        st.u[name][tgt] = leak(st.u[name][tgt], st.t_last[name][tgt], t, float(p.leak))
        st.t_last[name][tgt] = t if p.leak > 0 else st.t_last[name][tgt]
        st.u[name][tgt], o = integrate_fire(st.u[name][tgt], w, s, p.threshold, p.bipolar, t,
                                            st.refr[name][tgt])
        if o:
            st.refr[name][tgt] = t + p.refractory
        return o
    st.pool_ops += 1
    if layer.kind == MAX:  # the net count follows the largest net count of the pooled inputs
        best = max(st.delivered[layer.inputs[k2][0]][j] for k2, j in layer.sources(tgt))
        o, st.pmax[name][tgt] = best - st.pmax[name][tgt], best
        return o
    st.psum[name][tgt] += s  # Average: it follows round(sum / divisor)
    o = _round_half_away(st.psum[name][tgt] / int(layer.divisors()[tgt])) - st.pemit[name][tgt]
    st.pemit[name][tgt] += o
    return o


def _consumer_delay(consumers):
    delays = {layer.params.incoming_delay if layer.synaptic else 0 for layer, _ in consumers}
    return delays.pop() if delays else 0


def _round_half_away(x):
    return int(math.floor(x + 0.5)) if x >= 0 else -int(math.floor(-x + 0.5))


def _terminate(params, pos, neg):
    counts = sorted((p - n for p, n in zip(pos, neg)), reverse=True)
    best, second = counts[0], counts[1] if len(counts) > 1 else 0
    if params.terminate_delta > 0 and best - second >= params.terminate_delta:
        return True
    return params.terminate_max > 0 and best >= params.terminate_max


class Simulator:
    """The production engine over batches of stimuli (compiled, parallel over stimuli)."""

    def __init__(self, snet, seed=0, end=WINDOW, threads=None):
        self.snet = snet
        self.seed = int(seed)
        self.end = int(end)
        self.flat, self.names, self.entry_src, self.entry_synapse = tables.compile_network(snet)
        self.params = snet.coding.params()
        self.out_layer = self.names.index(snet.outputs[0])
        self.threads = threads or _threads()
        self.fires = np.zeros((self.threads, self.flat.layer_of.size), np.int64)

    def compile(self):
        """Compile the engine (or load it from numba's cache) on one silent stimulus; returns
        the seconds it took. The counters are left as they were."""
        start = time.perf_counter()
        fires = self.fires.copy()
        self.run(np.zeros((1,) + tuple(self.snet.env_shape)), [0])
        self.fires[...] = fires
        return time.perf_counter() - start

    @property
    def nb_outputs(self):
        return int(self.flat.size[self.out_layer])

    def run(self, values, stimuli):
        """Simulate a batch: ``values`` (n, C, H, W) host array, ``stimuli`` their indices
        (which seed their input jitter). Returns (counts (n, outputs), events (n, layers),
        info (n, 3): synaptic reads, pool updates, stop time or −1)."""
        values = np.ascontiguousarray(np.asarray(values, dtype=np.float64).reshape(len(values), -1))
        n = values.shape[0]
        counts = np.zeros((n, self.nb_outputs), np.int64)
        events = np.zeros((n, len(self.names)), np.int64)
        info = np.zeros((n, 3), np.int64)
        chunks = max(1, min(self.threads, n))
        engine.run_batch(self.flat, self.params, values, np.asarray(stimuli, np.int64), self.seed,
                         self.end, self.out_layer, chunks, counts, events, info, self.fires)
        return counts, events, info

    def run_one(self, values, stimulus, record=None, capacity=1 << 20):
        """One stimulus with its per-neuron counts, and the spikes of layer ``record``
        [(time, neuron, sign)] (the plot of -test-index)."""
        state = engine.allocate(self.flat)
        rec = (np.zeros(capacity, np.int64), np.zeros(capacity, np.int64), np.zeros(capacity, np.int8))
        layer = self.names.index(record) if record else -1
        values = np.ascontiguousarray(np.asarray(values, dtype=np.float64).reshape(-1))
        reads, pool_ops, stop, n_rec = engine.simulate(
            self.flat, self.params, values, int(stimulus), self.seed, self.end, state,
            self.fires[0], rec, layer)
        pos, neg = state[4], state[5]
        split = lambda a: {name: a[s : s + z].copy() for name, s, z in
                           zip(self.names, self.flat.start, self.flat.size)}
        return dict(pos=split(pos), neg=split(neg), reads=int(reads), pool_ops=int(pool_ops),
                    terminated=int(stop), spikes=[(int(rec[0][i]), int(rec[1][i]), int(rec[2][i]))
                                                  for i in range(n_rec)])

    def neuron_events(self):
        """Events delivered per neuron since construction (summed over workers)."""
        return self.fires.sum(axis=0)


def _threads():
    import numba

    return max(1, min(numba.get_num_threads(), os.cpu_count() or 1))
