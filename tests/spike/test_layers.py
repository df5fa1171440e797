"""Spike layers: connection geometry against the formal cells, pooling rules (spec §6.6)."""

import numpy as np
import pytest
from spike_nets import CODINGS, random_mask

from n2d2py import backend
from n2d2py.cells.base import Port
from n2d2py.cells.conv import ConvCell
from n2d2py.cells.fc import FcCell
from n2d2py.spike import coding as cd
from n2d2py.spike.layers import SpikeConv, SpikeFc, SpikeNetwork, SpikePool
from n2d2py.spike.simulator import Simulator, reference_run
from n2d2py.spike.time import NS, US


def fanout_product(layer, xs):
    """Σ over the fan-out tables of x[src]·w, per target: what a formal forward computes."""
    y = np.zeros(layer.size)
    for k, x in enumerate(xs):
        src, tgt, w, _ = layer.fanout(k)
        y += np.bincount(tgt, weights=x.reshape(-1)[src] * w, minlength=layer.size)
    return y


@pytest.mark.parametrize("stride, padding", [((1, 1), (0, 0)), ((2, 1), (1, 2)), ((2, 2), (2, 1))])
def test_conv_fanout_computes_the_formal_convolution(stride, padding):
    rng = np.random.default_rng(0)
    device = backend.cpu(0)
    ports = [Port("a", (2, 9, 8)), Port("b", (3, 9, 8))]
    masks = [random_mask(rng, 4, 2), random_mask(rng, 4, 3)]
    cell = ConvCell("conv", ports, device, 4, (3, 2), stride, padding, masks=masks, no_bias=True)
    for p in cell.params():
        p.initialize(device)
    xs = [rng.random((1,) + p.shape) for p in ports]
    formal = cell.forward([x.astype(np.float32) for x in xs])[0].reshape(-1)
    layer = SpikeConv("conv", [(p.name, p.shape) for p in ports], cell.out_shape,
                      cell.weights.data * cell.mask[:, :, None, None], cell.stride, cell.padding,
                      cell.mask)
    np.testing.assert_allclose(fanout_product(layer, [x[0] for x in xs]), formal, rtol=1e-5, atol=1e-6)
    assert layer.nb_virtual_synapses() == cell.nb_virtual_synapses()
    assert layer.nb_synapses() == cell.nb_synapses()


def test_fc_fanout_computes_the_formal_product():
    rng = np.random.default_rng(1)
    device = backend.cpu(0)
    ports = [Port("a", (2, 3, 3)), Port("b", (5, 1, 1))]
    cell = FcCell("fc", ports, device, 6, no_bias=True)
    for p in cell.params():
        p.initialize(device)
    xs = [rng.random((1,) + p.shape) for p in ports]
    formal = cell.forward([x.astype(np.float32) for x in xs])[0].reshape(-1)
    layer = SpikeFc("fc", [(p.name, p.shape) for p in ports], cell.weights.data)
    np.testing.assert_allclose(fanout_product(layer, [x[0] for x in xs]), formal, rtol=1e-5, atol=1e-6)


def test_fanout_tables_list_the_same_targets_as_the_geometry():
    rng = np.random.default_rng(2)
    conv = SpikeConv("c", [("e", (2, 6, 5))], (3, 3, 4), rng.normal(size=(3, 2, 3, 2)), (2, 1),
                     (1, 0), random_mask(rng, 3, 2))
    pool = SpikePool("p", [("e", (2, 6, 5))], (3, 3, 2), (2, 2), (2, 2), (0, 0),
                     random_mask(rng, 3, 2), "Max")
    for layer in (conv, pool):
        src, tgt, w, _ = layer.fanout(0)
        for s in range(60):
            rows = [(int(t), float(x)) for t, x in zip(tgt[src == s], w[src == s])]
            assert rows == [(t, pytest.approx(x)) for t, x in layer.targets(0, s)]


def pool_network(values, pooling):
    """env (1×2×2) → one 2×2 pool, periodic coding: a value v gives round(99·v)-ish spikes."""
    pool = SpikePool("pool", [("env", (1, 2, 2))], (1, 1, 1), (2, 2), (2, 2), (0, 0),
                     np.ones((1, 1), bool), pooling)
    coding = cd.Periodic(period_min=NS, period_mean_min=10 * NS, period_mean_max=100 * US, rel_std=0.0)
    return SpikeNetwork("env", (1, 2, 2), coding, {"pool": pool}, ["pool"]), np.array(values).reshape(1, 2, 2)


@pytest.mark.parametrize("values, pooling", [
    ([1.0, 0.5, -1.0, 0.0], "Max"),  # the maximum only rises: positive spikes
    ([-1.0, -0.5, -0.25, -1.0], "Max"),  # every count falls: the maximum falls, negative spikes
    ([1.0, 0.5, -1.0, 0.0], "Average"),
    ([-1.0, -0.5, 0.0, -0.02], "Average"),
])
def test_pool_output_count_follows_the_max_or_average_count(values, pooling):
    snet, x = pool_network(values, pooling)
    _, nodes, signs = snet.coding.spike_train(x, US)
    counts = np.bincount(nodes, weights=signs, minlength=4)
    if pooling == "Max":
        expected = counts.max()
    else:  # round(sum / 4), halves away from zero
        expected = np.sign(counts.sum()) * np.floor(abs(counts.sum()) / 4 + 0.5)
    assert expected != 0
    for result in (reference_run(snet, x, end=US), Simulator(snet, end=US).run_one(x, 0)):
        pos, neg = int(result["pos"]["pool"][0]), int(result["neg"]["pool"][0])
        assert pos - neg == expected
        if pooling == "Max":  # the maximum moves one way here: spikes of one sign only
            assert min(pos, neg) == 0


def test_max_pool_count_tracks_the_running_maximum_at_every_spike():
    """After every pool spike, its net count equals the largest net input count so far."""
    snet, x = pool_network([0.9, -0.6, 0.3, 0.6], "Max")
    ref = reference_run(snet, x, end=300 * NS)
    times, nodes, signs = CODINGS["Periodic"].spike_train(x, 300 * NS)
    counts, out = np.zeros(4, int), 0
    for t, node, s in zip(times, nodes, signs):
        counts[node] += s
        spikes = [o for (tt, layer, _, o) in ref["spikes"] if tt == t + 1]
        out += sum(spikes)
        assert out == counts.max()
