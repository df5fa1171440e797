"""The spike network flattened for the compiled engine: CSR fan-out tables and per-layer
parameter arrays (``compile_network``).

Neurons are numbered globally (input nodes first, then each layer in order). Every
(consumer layer, input) pair is a projection whose ``ptr`` rows list, per source neuron, its
targets (local to the consumer) and weights, sorted by target.
"""

from collections import namedtuple

import numpy as np

from n2d2py.spike.layers import AVERAGE, IF, MAX
from n2d2py.spike.time import HOP

K_ENV, K_IF, K_MAX, K_AVG = 0, 1, 2, 3
_KINDS = {IF: K_IF, MAX: K_MAX, AVERAGE: K_AVG}
SEQ_BITS = 32  # queue key = time << SEQ_BITS | sequence
FIRST_INTERNAL = 1 << 24  # sequences below are input nodes (inputs first on time ties)
MAX_TIME = (1 << (63 - SEQ_BITS)) - 1

Flat = namedtuple("Flat", "layer_of start size kind threshold bipolar leak refractory arrive "
                  "klass term_delta term_max proj_lo proj_hi p_cons p_base ptr tgt weight "
                  "fin_ptr fin_src divisor max_fanout n_classes")


def compile_network(snet):
    """``snet`` (SpikeNetwork) → (Flat arrays, layer names, entry sources, synapse ids)."""
    names = [snet.env_name] + list(snet.layers)
    layers = [None] + list(snet.layers.values())
    sizes = [snet.env_size] + [layer.size for layer in layers[1:]]
    start = np.cumsum([0] + sizes)[:-1]
    n_total = int(sum(sizes))
    if snet.env_size >= FIRST_INTERNAL:
        raise ValueError(f"at most {FIRST_INTERNAL - 1} input nodes")
    layer_of = np.repeat(np.arange(len(names), dtype=np.int32), sizes)
    per_layer = _layer_arrays(snet, layers)
    proj = _projections(snet, names, layers, start)
    fin_ptr, fin_src, divisor = _pool_tables(snet, names, layers, start, n_total)
    fanout = np.zeros(len(names), dtype=np.int64)
    for li, (p_lo, p_hi) in enumerate(zip(proj["lo"], proj["hi"])):
        for p in range(p_lo, p_hi):
            rows = proj["ptr"][proj["base"][p] : proj["base"][p] + sizes[li] + 1]
            fanout[li] += int(np.max(np.diff(rows))) if len(rows) > 1 else 0
    flat = Flat(
        layer_of, start.astype(np.int64), np.array(sizes, dtype=np.int64), *per_layer,
        proj["lo"], proj["hi"], proj["cons"], proj["base"], proj["ptr"],
        proj["tgt"], proj["weight"], fin_ptr, fin_src, divisor, int(fanout.max()) + 1,
        max(1, int(per_layer[6].max()) + 1),
    )
    return flat, names, proj["src"], proj["synapse"]


def _layer_arrays(snet, layers):
    """Per layer (index 0: the input node): kind and neuron parameters, arrival delay."""
    n = len(layers)
    kind = np.zeros(n, np.int64)
    threshold, bipolar, leak_tau = np.ones(n), np.zeros(n, np.bool_), np.zeros(n)
    refractory, term_delta, term_max = (np.zeros(n, np.int64) for _ in range(3))
    arrive = np.full(n, -1, np.int64)
    for i, layer in enumerate(layers):
        name = snet.env_name if layer is None else layer.name
        if layer is not None:
            p = layer.params
            kind[i] = _KINDS[layer.kind]
            threshold[i], bipolar[i], leak_tau[i] = p.threshold, p.bipolar, p.leak
            refractory[i], term_delta[i], term_max[i] = p.refractory, p.terminate_delta, p.terminate_max
        delays = {_delay_of(c) for c, _ in snet.consumers(name)}
        if len(delays) > 1:
            raise ValueError(f"the layers reading {name} have different IncomingDelay values")
        if delays:
            arrive[i] = HOP + delays.pop()
    # one FIFO queue per distinct arrival delay (their events come in time order)
    values = sorted(set(arrive[arrive >= 0].tolist()))
    klass = np.array([values.index(a) if a >= 0 else -1 for a in arrive], np.int64)
    return kind, threshold, bipolar, leak_tau, refractory, arrive, klass, term_delta, term_max


def _delay_of(layer):
    return layer.params.incoming_delay if layer.synaptic else 0


def _projections(snet, names, layers, start):
    """CSR tables of every (consumer, input) pair, grouped by source layer."""
    index = {name: i for i, name in enumerate(names)}
    lo, hi, cons, base = [], [], [], []
    ptrs, tgts, weights, srcs, synapses = [], [], [], [], []
    n_ptr = n_entries = 0
    syn_offset = {}
    offset = 0
    for layer in layers[1:]:
        syn_offset[layer.name] = offset
        offset += layer.synapse_space()
    for li, name in enumerate(names):
        lo.append(len(cons))
        n_src = int(snet.env_size if layers[li] is None else layers[li].size)
        for layer, k in snet.consumers(name):
            src, tgt, w, synapse = layer.fanout(k)
            counts = np.bincount(src, minlength=n_src)
            ptrs.append(n_entries + np.concatenate([[0], np.cumsum(counts)]))
            cons.append(index[layer.name])
            base.append(n_ptr)
            n_ptr += n_src + 1
            n_entries += src.size
            tgts.append(tgt)
            weights.append(w)
            srcs.append(start[li] + src)
            synapses.append(np.where(synapse >= 0, synapse + syn_offset[layer.name], -1))
        hi.append(len(cons))
    cat = lambda parts, dtype: np.concatenate(parts).astype(dtype) if parts else np.zeros(0, dtype)
    return dict(lo=np.array(lo, np.int64), hi=np.array(hi, np.int64), cons=np.array(cons, np.int64),
                base=np.array(base, np.int64),
                ptr=cat(ptrs, np.int64), tgt=cat(tgts, np.int32), weight=cat(weights, np.float32),
                src=cat(srcs, np.int64), synapse=cat(synapses, np.int64))


def _pool_tables(snet, names, layers, start, n_total):
    """Max pools: each output's input neurons (global ids, CSR); Average: its divisor."""
    index = {name: i for i, name in enumerate(names)}
    sources, targets = [np.zeros(0, np.int64)], [np.zeros(0, np.int64)]
    divisor = np.zeros(n_total, np.int64)
    for li, layer in enumerate(layers):
        if layer is None or layer.synaptic:
            continue
        if layer.kind == AVERAGE:
            divisor[start[li] : start[li] + layer.size] = layer.divisors()
            continue
        for k, (src_name, _) in enumerate(layer.inputs):
            src, tgt, _, _ = layer.fanout(k)
            sources.append(start[index[src_name]] + src)
            targets.append(start[li] + tgt)
    src, tgt = np.concatenate(sources), np.concatenate(targets)
    order = np.argsort(tgt, kind="stable")
    ptr = np.concatenate([[0], np.cumsum(np.bincount(tgt, minlength=n_total))]).astype(np.int64)
    return ptr, src[order].astype(np.int64), divisor
