"""Counters of the spike test and what they print and write (spec §6.7, §6.8).

P = patterns (stimuli) simulated, S = shared synapses (weights of the spike Conv/Fc cells),
V = virtual synapses (the formal network's connections: what a formal inference reads, ≈ its
MACs), R = synaptic read events (one per synapse a delivered spike goes through), Nenv =
input nodes. ``R/V/P`` < 1 means fewer accumulations than the formal network's MACs.
"""

import os

import numpy as np

from n2d2py.atomic import atomic_write_text


class SpikeStats:
    """Running totals over the stimuli of one spike test."""

    def __init__(self, snet, simulator):
        self.snet = snet
        self.sim = simulator
        self.names = simulator.names
        self.patterns = 0
        self.events = np.zeros(len(self.names), np.int64)  # output spikes per layer (input first)
        self.reads = 0
        self.pool_ops = 0
        self.terminated = 0

    def add(self, events, info):
        """One batch from Simulator.run: events (n, layers), info (n, 3)."""
        self.patterns += len(events)
        self.events += events.sum(axis=0)
        self.reads += int(info[:, 0].sum())
        self.pool_ops += int(info[:, 1].sum())
        self.terminated += int((info[:, 2] >= 0).sum())

    # -- derived figures ---------------------------------------------------------------------
    @property
    def nb_synapses(self):
        return sum(layer.nb_synapses() for layer in self.snet.synaptic_layers())

    @property
    def nb_virtual_synapses(self):
        return sum(layer.nb_virtual_synapses() for layer in self.snet.synaptic_layers())

    def activity(self):
        """Read events per virtual synapse per pattern (the console's network activity)."""
        return self.reads / max(self.nb_virtual_synapses, 1) / max(self.patterns, 1)

    def synapse_reads(self):
        """Read events of every shared synapse, from the events each neuron delivered."""
        syn = self.sim.entry_synapse
        keep = syn >= 0
        if not keep.any():
            return np.zeros(0)
        weights = self.sim.neuron_events()[self.sim.entry_src[keep]]
        return np.bincount(syn[keep], weights=weights)

    def layer_line(self, events=None, patterns=None):
        """``   env: N   conv1: N …   (total: N)``: spikes per layer (per pattern if averaged)."""
        events = self.events if events is None else events
        per = (lambda v: f"{v / patterns:.1f}") if patterns else (lambda v: f"{int(v)}")
        parts = [f"{name}: {per(v)}" for name, v in zip(self.names, events)]
        return "   " + "   ".join(parts) + f"   (total: {per(events[1:].sum())})"

    # -- files ------------------------------------------------------------------------------
    def lines(self):
        """The text of ``stats_spike.log``."""
        p, nenv = max(self.patterns, 1), self.snet.env_size
        s, v, r = self.nb_synapses, self.nb_virtual_synapses, self.reads
        per_synapse = self.synapse_reads()
        peak = float(per_synapse.max()) if per_synapse.size else 0.0
        neurons = sum(layer.size for layer in self.snet.layers.values())
        connections = int(self.sim.entry_src.size)
        out = ["[Global stats]", f"Patterns: {self.patterns}", f"Patterns channels: {nenv}",
               f"Neurons: {neurons}", f"Nodes: {nenv}", f"Synapses: {s}",
               f"Virtual synapses: {v}", f"Connections: {connections}", "", "[Neuron stats]"]
        sizes = [nenv] + [layer.size for layer in self.snet.layers.values()]
        layers = [None] + list(self.snet.layers.values())
        for name, events, size, layer in zip(self.names, self.events, sizes, layers):
            out += [f"{name} output events: {int(events)}",
                    f"{name} output events per pattern (average): {events / p:g}",
                    f"{name} output events per pattern per neuron (average): {events / p / size:g}"]
            if layer is not None and layer.params.terminate_delta > 0:
                out.append(f"{name} terminate delta: {layer.params.terminate_delta}")
            if layer is not None and layer.params.terminate_max > 0:
                out.append(f"{name} terminate max: {layer.params.terminate_max}")
        out += ["", "[Synapse stats]", f"Read events: {r}",
                f"Read events per pattern (average): {r / p:g}",
                f"Read events per pattern channel (average): {r / p / nenv:g}",
                f"Read events per synapse (average): {r / max(s, 1):g}",
                f"Max. read events per synapse: {peak:g}",
                f"Read events per virtual synapse (average): {r / max(v, 1):g}",
                f"Read events per synapse per pattern (average): {r / max(s, 1) / p:g}",
                f"Read events per virtual synapse per pattern (average): {r / max(v, 1) / p:g}",
                f"Max. read events per synapse per pattern (average): {peak / p:g}",
                "", "[Other stats]", f"Pool updates: {self.pool_ops}",
                f"Pool updates per pattern (average): {self.pool_ops / p:g}",
                f"Patterns stopped by TerminateDelta/TerminateMax: {self.terminated}"]
        return out

    def write(self, out_dir):
        path = os.path.join(out_dir, "stats_spike.log")
        atomic_write_text(path, "\n".join(self.lines()) + "\n")
        return path
