"""stats_spike.log (spec §6.8): every line, and figures that agree with the engine's counts."""

import re

import numpy as np
from spike_nets import CODINGS, random_input, random_network

from n2d2py.spike.simulator import Simulator
from n2d2py.spike.stats import SpikeStats
from n2d2py.spike.time import NS

SPEC_LINES = [
    "[Global stats]", "Patterns:", "Patterns channels:", "Neurons:", "Nodes:", "Synapses:",
    "Virtual synapses:", "Connections:", "[Neuron stats]", "env output events:",
    "env output events per pattern (average):", "env output events per pattern per neuron (average):",
    "conv output events:", "pool output events:", "fc output events:", "fc terminate delta:",
    "[Synapse stats]", "Read events:", "Read events per pattern (average):",
    "Read events per pattern channel (average):", "Read events per synapse (average):",
    "Max. read events per synapse:", "Read events per virtual synapse (average):",
    "Read events per synapse per pattern (average):",
    "Read events per virtual synapse per pattern (average):",
    "Max. read events per synapse per pattern (average):",
]


def test_every_line_of_the_spec_with_consistent_figures(tmp_path):
    snet = random_network(3, CODINGS["JitteredPeriodic"], terminate=3, bipolar=True)
    sim = Simulator(snet, seed=2, end=300 * NS)
    stats = SpikeStats(snet, sim)
    xs = np.stack([random_input(s) for s in range(6)])
    counts, events, info = sim.run(xs, np.arange(6))
    stats.add(events, info)
    text = open(stats.write(tmp_path)).read()
    lines = text.splitlines()
    for label in SPEC_LINES:
        assert any(line.startswith(label) for line in lines), label
    value = lambda label: float(next(l for l in lines if l.startswith(label + ":")).split(": ")[1])
    reads, v, s = int(info[:, 0].sum()), value("Virtual synapses"), value("Synapses")
    assert value("Patterns") == 6 and value("Patterns channels") == 98
    assert s == 3 * 9 * 2 - 9 * (~snet.layers["conv"].mask).sum() + snet.layers["fc"].weights.size
    assert v == snet.layers["conv"].nb_virtual_synapses() + snet.layers["fc"].weights.size
    assert value("Read events") == reads > 0
    assert value("Read events per virtual synapse per pattern (average)") == float(f"{reads / v / 6:g}")
    assert value("Read events per virtual synapse per pattern (average)") == float(f"{stats.activity():g}")
    per_synapse = stats.synapse_reads()
    assert per_synapse.sum() == reads  # every read event belongs to one shared synapse
    assert value("Max. read events per synapse") == float(f"{per_synapse.max():g}")
    assert value("conv output events") == events[:, 1].sum()
    assert value("fc terminate delta") == 3


def test_layer_line_lists_every_layer_and_the_total():
    snet = random_network(0, CODINGS["Periodic"])
    sim = Simulator(snet, end=200 * NS)
    stats = SpikeStats(snet, sim)
    line = stats.layer_line(np.array([10, 4, 2, 1]))
    assert re.fullmatch(r"\s+env: 10\s+conv: 4\s+pool: 2\s+fc: 1\s+\(total: 7\)", line)
