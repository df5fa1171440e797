"""The spike test of the trained LeNet on the 10,000 MNIST test images, timed.

    python benchmarks/spike_lenet.py                         # models/LeNet_Spike.ini, runs/lenet
    python benchmarks/spike_lenet.py --weights DIR --nb-test 2000 --threads 2
    python benchmarks/spike_lenet.py --set conv3.Threshold=0.5 --set Threshold=0.25  # a faster setting

``--set`` items: ``Key=value`` for fc2, ``layer.Key=value`` for another layer (a config
section is appended to the layer's ConfigSection list, so that it overrides), and
``global.Key=value`` for a key before the first section (e.g. global.WeightsNormalization=None).

Prints the formal rate and the spiking rate of the same weights, the read events per virtual
synapse per pattern (spec §6.8), stimuli/s and synaptic events/s, and the wall time of the
spike simulation alone (the numba compilation is done, and timed, before it).
"""

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from n2d2py import backend, network, runner  # noqa: E402
from n2d2py.errors import Diagnostics  # noqa: E402
from n2d2py.ini import parse_file  # noqa: E402

CHUNK = 512


def variant(ini, sets):
    """A copy of ``ini`` with spike keys changed: ``Key=value`` goes to [fc2.config],
    ``layer.Key=value`` to a config section appended to that layer's ConfigSection list."""
    lines = Path(ini).read_text().splitlines()
    by_section = {}
    for item in sets:
        key, value = item.split("=", 1)
        layer, _, key = key.rpartition(".")
        by_section.setdefault(layer or "fc2", []).append((key, value))
    for key, value in by_section.pop("global", []):  # keys before the first section
        at = next(i for i, line in enumerate(lines) if line.startswith(f"{key}="))
        lines[at] = f"{key}={value}"
    for layer, items in by_section.items():
        start = lines.index(f"[{layer}]") + 1
        end = next((i for i in range(start, len(lines)) if lines[i].startswith("[")), len(lines))
        at = next(i for i in range(start, end) if lines[i].startswith("ConfigSection="))
        lines[at] += f",{layer}.bench"
        lines += ["", f"[{layer}.bench]"] + [f"{k}={v}" for k, v in items]
    folder = tempfile.mkdtemp(prefix="spike_bench_")
    path = os.path.join(folder, Path(ini).name)
    Path(path).write_text("\n".join(lines) + "\n")
    return path


def build(ini, weights, seed=1):
    doc = parse_file(ini, Diagnostics(stream=open(os.devnull, "w")))
    net = network.build(doc, backend.cpu(seed))
    net.seed = seed
    net.initialize()
    runner._import_weights(net, weights, False)
    return net


def formal_rate(net, n, set_name="Test"):
    x, labels, _ = net.provider.read(set_name, np.arange(n), np.random.default_rng(0))
    start = time.perf_counter()
    outs = [net.forward(net.device.asarray(x[i:i + 1000]))[net.targets[0][1]] for i in range(0, n, 1000)]
    elapsed = time.perf_counter() - start
    estimated = np.concatenate([o.reshape(o.shape[0], -1) for o in outs]).argmax(axis=1)
    return float((estimated == labels).mean()), elapsed, x, labels


def spike_run(net, x, labels, threads=None):
    """(spiking rate, stats, wall time, compile time) of the production engine on ``x``."""
    from n2d2py.spike import evaluation
    from n2d2py.spike.simulator import Simulator
    from n2d2py.spike.stats import SpikeStats

    snet = evaluation.spike_network(net)
    sim = Simulator(snet, seed=net.seed, threads=threads)
    start = time.perf_counter()
    sim.run(x[:8], np.arange(8))  # compiles (or loads the cache) outside the timed run
    compile_s = time.perf_counter() - start
    sim.fires[:] = 0
    stats = SpikeStats(snet, sim)
    correct = 0
    start, cpu = time.perf_counter(), time.process_time()
    for lo in range(0, len(x), CHUNK):
        counts, events, info = sim.run(x[lo:lo + CHUNK], np.arange(lo, min(lo + CHUNK, len(x))))
        correct += int((np.argsort(-counts, axis=1, kind="stable")[:, 0] == labels[lo:lo + CHUNK]).sum())
        stats.add(events, info)
    elapsed = time.perf_counter() - start
    stats.cpu_seconds = time.process_time() - cpu
    return correct / len(x), stats, elapsed, compile_s


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ini", default=str(ROOT / "models" / "LeNet_Spike.ini"))
    parser.add_argument("--weights", default=str(ROOT / "runs" / "lenet" / "weights_validation"))
    parser.add_argument("--nb-test", type=int, default=10000)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--data-set", default="Test", choices=("Test", "Validation"),
                        help="stimuli to test (Validation: to choose settings without the Test set)")
    parser.add_argument("--set", action="append", default=[], help="[layer.]Key=value (fc2 by default)")
    args = parser.parse_args()
    ini = variant(args.ini, args.set) if args.set else args.ini
    net = build(ini, args.weights, args.seed)
    n = min(args.nb_test, net.provider.size(args.data_set))
    formal, formal_s, x, labels = formal_rate(net, n, args.data_set)
    rate, stats, elapsed, compile_s = spike_run(net, x, labels, args.threads)
    print(f"settings: {ini} {' '.join(args.set)}")
    print(f"formal recognition rate:   {100 * formal:.2f}%   ({n} {args.data_set} stimuli, {formal_s:.2f} s)")
    print(f"spiking recognition rate:  {100 * rate:.2f}%   (difference {100 * (rate - formal):+.2f} points)")
    print(f"read events per virtual synapse per pattern: {stats.activity():.4f}   "
          f"(synaptic events per pattern: {stats.reads / n:,.0f}; pool updates: {stats.pool_ops / n:,.0f})")
    print(f"spikes per pattern:{stats.layer_line(patterns=n)}")
    print(f"spike test wall time: {elapsed:.2f} s   ({n / elapsed:,.0f} stimuli/s, "
          f"{stats.reads / elapsed:.3g} synaptic events/s, {args.threads or 'all'} threads; "
          f"compilation or cache load before it: {compile_s:.1f} s)")
    print(f"CPU time of the spike test (all threads): {stats.cpu_seconds:.2f} s = "
          f"{1e3 * stats.cpu_seconds / n:.3f} ms per stimulus")


if __name__ == "__main__":
    main()
