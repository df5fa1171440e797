"""The compiled production engine against the pure-Python reference, event for event.

Both engines order events identically (time, then inputs by node, then emission order) and
draw the same input spikes (counter-based generator), so every per-neuron count must be
identical, for deterministic and random codings alike.
"""

import numpy as np
import pytest
from spike_nets import CODINGS, random_input, random_network

from n2d2py.spike.simulator import Simulator, reference_run
from n2d2py.spike.time import NS

END = 300 * NS  # 30 periods of a white pixel: enough activity, fast reference runs


def assert_same(ref, prod):
    for name in ref["pos"]:
        np.testing.assert_array_equal(prod["pos"][name], ref["pos"][name], err_msg=f"{name} pos")
        np.testing.assert_array_equal(prod["neg"][name], ref["neg"][name], err_msg=f"{name} neg")
    assert (prod["reads"], prod["pool_ops"], prod["terminated"]) == (
        ref["reads"], ref["pool_ops"], ref["terminated"])


CASES = [
    ("JitteredPeriodic", dict()),
    ("Periodic", dict(stride=2, padding=0)),
    ("SingleBurst", dict(bipolar=True)),
    ("Poissonian", dict(pooling="Average")),
    ("JitteredPeriodic+jitter", dict(general_pool=True, refractory=3 * NS)),
    ("Linear", dict(leak=50 * NS, delay=2)),
    ("JitteredPeriodic", dict(terminate=3, bipolar=True, scale=0.9)),
    ("Poissonian", dict(pooling="Average", general_pool=True, terminate=2, delay=5)),
]


@pytest.mark.parametrize("case", range(len(CASES)))
def test_production_engine_matches_reference_per_neuron(case):
    coding, options = CASES[case]
    for seed in range(3):
        snet = random_network(seed, CODINGS[coding], **options)
        x = random_input(seed, signed=seed == 2)
        ref = reference_run(snet, x, seed=7, stimulus=seed, end=END)
        prod = Simulator(snet, seed=7, end=END).run_one(x, seed, record="fc")
        assert_same(ref, prod)
        assert sum(int(v.sum()) for v in ref["pos"].values()) > 0  # the net did something
        out_spikes = [(t, n, s) for t, layer, n, s in ref["spikes"] if layer == "fc"]
        assert prod["spikes"] == out_spikes


def test_terminate_delta_stops_two_femtoseconds_after_the_deciding_spike():
    snet = random_network(1, CODINGS["JitteredPeriodic"], terminate=2, bipolar=True, scale=0.9)
    x = random_input(1)
    ref = reference_run(snet, x, seed=3, stimulus=0, end=END)
    assert ref["terminated"] >= 0
    assert max(t for t, _, _, _ in ref["spikes"]) <= ref["terminated"] + 2
    counts = np.sort(ref["pos"]["fc"] - ref["neg"]["fc"])
    assert counts[-1] - counts[-2] >= 2
    # without TerminateDelta the same stimulus keeps going
    free = reference_run(random_network(1, CODINGS["JitteredPeriodic"], bipolar=True, scale=0.9), x,
                         seed=3, stimulus=0, end=END)
    assert free["terminated"] == -1 and free["reads"] > ref["reads"]


def test_batch_run_in_parallel_equals_one_at_a_time():
    snet = random_network(4, CODINGS["JitteredPeriodic+jitter"], bipolar=True)
    xs = np.stack([random_input(s, signed=s % 2 == 1) for s in range(9)])
    sim = Simulator(snet, seed=5, end=END, threads=2)
    counts, events, info = sim.run(xs, np.arange(9))
    for i in range(9):
        one = Simulator(snet, seed=5, end=END).run_one(xs[i], i)
        np.testing.assert_array_equal(counts[i], one["pos"]["fc"] - one["neg"]["fc"])
        assert events[i].tolist() == [int(one["pos"][n].sum() + one["neg"][n].sum()) for n in sim.names]
        assert info[i].tolist() == [one["reads"], one["pool_ops"], one["terminated"]]


def test_seed_and_stimulus_index_drive_the_jitter():
    snet = random_network(0, CODINGS["JitteredPeriodic"])
    x = random_input(0)
    runs = [Simulator(snet, seed=s, end=END).run_one(x, i)["pos"]["conv"] for s, i in
            ((1, 0), (1, 0), (2, 0), (1, 1))]
    np.testing.assert_array_equal(runs[0], runs[1])
    assert not np.array_equal(runs[0], runs[2]) and not np.array_equal(runs[0], runs[3])


def test_input_node_counts_follow_the_coding():
    snet = random_network(2, CODINGS["Poissonian"])
    x = random_input(2, signed=True)
    prod = Simulator(snet, seed=1, end=END).run_one(x, 3)
    times, nodes, signs = CODINGS["Poissonian"].spike_train(x, END, seed=1, stimulus=3)
    np.testing.assert_array_equal(prod["pos"]["env"], np.bincount(nodes[signs > 0], minlength=98))
    np.testing.assert_array_equal(prod["neg"]["env"], np.bincount(nodes[signs < 0], minlength=98))


def test_lenet_spike_geometry_matches_reference():
    """LeNet_Spike.ini's own layers (partial conv2 map, pools, TerminateDelta), filler weights."""
    import io
    from pathlib import Path

    from n2d2py import backend, network
    from n2d2py.errors import Diagnostics
    from n2d2py.ini import parse_file
    from n2d2py.spike import transcode

    ini = Path(__file__).parents[2] / "models" / "LeNet_Spike.ini"
    net = network.build(parse_file(ini, Diagnostics(stream=io.StringIO())), backend.cpu(3),
                        load_data=False)
    net.initialize()
    net.spike.check_range = False
    net.spike.normalization = "None"
    snet = transcode.transcode(net, net.spike)
    rng = np.random.default_rng(0)
    for i in range(2):
        x = rng.random((1, 32, 32)) * (rng.random((1, 32, 32)) < 0.3)
        ref = reference_run(snet, x, seed=1, stimulus=i, end=150 * NS)
        assert_same(ref, Simulator(snet, seed=1, end=150 * NS).run_one(x, i))
        assert ref["reads"] > 10_000 and int(ref["pos"]["fc2"].sum() + ref["neg"]["fc2"].sum()) > 0
