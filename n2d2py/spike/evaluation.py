"""The spike test (spec §6.7): transcode the network, simulate the Test stimuli, score the
output spike counts, print N2D2's lines and write the logs and statistics."""

import os
import time

import numpy as np
from tqdm import tqdm

from n2d2py.errors import N2D2PyError
from n2d2py.spike import plot, transcode
from n2d2py.spike.simulator import Simulator
from n2d2py.spike.stats import SpikeStats
from n2d2py.spike.time import WINDOW
from n2d2py.atomic import atomic_write_text

SET = "test_spike"  # the targets' score set: <target>/ConfusionMatrix_test_spike.dat, ...
CHUNK = 512  # stimuli handed to the compiled engine at a time


def check(net):
    """Refuse a network that cannot be transcoded before the formal test runs."""
    transcode.transcode_check(net.spike)


def spike_network(net):
    """Transcode ``net`` with its current weights (normalised on Learn stimuli if asked)."""
    settings = net.spike
    batches = None
    if settings.normalization != "None":
        if net.provider.size("Learn") == 0:
            raise N2D2PyError("WeightsNormalization needs Learn stimuli, and the Learn set is empty")
        rng = np.random.default_rng(net.seed)
        batches = (x for x, _, _ in net.provider.batches("Learn", rng=rng, limit=settings.nb_stimuli))
    snet = transcode.transcode(net, settings, batches)
    if snet.scales:
        how = "max" if settings.normalization == "Max" else f"{settings.percentile:g}th percentile"
        lams = "  ".join(f"{n}: {v:.3g}" for n, v in snet.scales.items() if n in net.cells)
        print(f"Weights normalised by the {how} of each layer's activation "
              f"({min(settings.nb_stimuli, net.provider.size('Learn'))} Learn stimuli): {lams}")
    return snet


def test(net, opts, out_dir):
    """The spike test on the Test set (or on -test-index); returns the spiking rate."""
    snet = spike_network(net)
    sim = Simulator(snet, seed=net.seed)
    seconds = sim.compile()
    if seconds > 2.0:
        print(f"Spike engine compiled in {seconds:.0f} s (numba caches it for the next runs)")
    section, _, target = net.targets[0]
    scores = target.scores(SET)
    scores.clear()
    stats = SpikeStats(snet, sim)
    if getattr(opts, "test_index", None) is not None:
        return _test_one(net, snet, sim, stats, target, opts.test_index, out_dir)
    provider = net.provider
    n = provider.size("Test")
    total = n if opts.nb_test is None or opts.nb_test < 0 else min(opts.nb_test, n)
    rng = np.random.default_rng(net.seed)
    start = time.perf_counter()
    with tqdm(total=total, unit="img", desc="Spike test", leave=False, dynamic_ncols=True,
              mininterval=0.5, disable=None) as bar:
        for lo in range(0, total, CHUNK):
            positions = np.arange(lo, min(lo + CHUNK, total))
            x, labels, ids = provider.read("Test", positions, rng)
            counts, events, info = sim.run(x, positions)
            _score(target, counts, labels, ids)
            stats.add(events, info)
            bar.update(len(positions))
            bar.set_postfix(success=f"{scores.success_rate():.2%}", refresh=False)
    elapsed = time.perf_counter() - start
    return _report(net, stats, target, section, out_dir, elapsed)


def _score(target, counts, labels, ids):
    """Decision = the output with the largest net count, the first one on ties."""
    order = np.argsort(-counts, axis=1, kind="stable")[:, : target.top_n]
    values = np.take_along_axis(counts, order, axis=1).astype(np.float64)
    target.scores(SET).add(target.targets_of(labels), order, values, counts, ids)
    return order[:, 0]


def _report(net, stats, target, section, out_dir, elapsed):
    from n2d2py.evaluation import print_metrics

    scores = target.scores(SET)
    rate = scores.success_rate()
    p = max(stats.patterns, 1)
    print(f"Spikes per pattern (average):\n{stats.layer_line(patterns=p)}")
    print(f"Network activity (events/connection/pattern): {stats.activity():g}")
    print(f"Spike test: {stats.patterns} stimuli in {elapsed:.2f} s ({stats.patterns / elapsed:,.0f} "
          f"stimuli/s, {stats.reads / elapsed:,.3g} synaptic events/s)")
    if len(net.targets) > 1:
        print(f"[{section}] (spiking decisions are scored on the first target only)")
    print(f"Final spiking recognition rate: {100 * rate:.2f}%    (error rate: {100 * (1 - rate):.2f}%)")
    print_metrics(scores)
    target.write_logs(out_dir, SET)
    atomic_write_text(os.path.join(out_dir, "test_success_spike.dat"), f"{stats.patterns} {rate:g}\n")
    stats.write(out_dir)
    return rate


def _test_one(net, snet, sim, stats, target, index, out_dir):
    """-test-index: one stimulus, its per-layer and per-output counts, and its plot."""
    n = net.provider.size("Test")
    if not 0 <= index < n:
        raise N2D2PyError(f"-test-index {index}: the Test set has {n} stimuli (0 to {n - 1})")
    x, labels, ids = net.provider.read("Test", np.array([index]), np.random.default_rng(net.seed))
    out = snet.outputs[0]
    start = time.perf_counter()
    result = sim.run_one(x[0], index, record=out)
    elapsed = time.perf_counter() - start
    pos, neg = result["pos"], result["neg"]
    events = np.array([[int(pos[name].sum() + neg[name].sum()) for name in sim.names]])
    info = np.array([[result["reads"], result["pool_ops"], result["terminated"]]])
    stats.add(events, info)
    counts = (pos[out] - neg[out])[None, :]
    decision = int(_score(target, counts, labels, ids)[0])
    label = int(target.targets_of(labels)[0])
    print(f"Stimulus #{index} (id {ids[0]}, target {label}):")
    print(stats.layer_line(events[0]))
    for k in range(counts.shape[1]):
        mark = " ***" if k == decision else ""
        print(f"   out #{k}: {counts[0, k]} (= {pos[out][k]} - {neg[out][k]}){mark}")
    names = target.output_names()
    path = os.path.join(out_dir, f"output_spikes_{index}.png")
    title = (f"stimulus #{index}: target {names[label] if label >= 0 else '-'}, "
             f"spiking decision {names[decision]}")
    plot.plot_output_spikes(path, result["spikes"], names, WINDOW, result["terminated"],
                            label, title)
    rows = "".join(f"{t} {k} {s}\n" for t, k, s in result["spikes"])
    atomic_write_text(os.path.join(out_dir, f"output_spikes_{index}.dat"), "# time_fs output sign\n" + rows)
    print(f"Output spikes over time: {path}")
    section = net.targets[0][0]
    return _report(net, stats, target, section, out_dir, elapsed)
