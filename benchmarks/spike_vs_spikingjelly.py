"""n2d2py's event-driven spike test against SpikingJelly 2.0's ANN→SNN conversion, side by side.

    pip install -e ".[bench]" && pip install --no-deps spikingjelly==2.0.0 loguru scienceplots requests
    python benchmarks/spike_vs_spikingjelly.py            # 10,000 test images, 2 threads
    python benchmarks/spike_vs_spikingjelly.py --nb-test 2000 --threads 2

Both tools get the same trained LeNet weights (runs/lenet/weights_validation, learned by
n2d2py with models/LeNet.ini), the same 10,000 32×32 test images and the same 1,000 Learn
images for calibration. SpikingJelly: RateCodingRecipe with robust 99.9 % normalisation
(ReLU → IF neurons, soft reset), the analog image as the input current at every step, T = 8,
16, 32 clock-driven steps. n2d2py: models/LeNet_Spike.ini (event-driven, rate-coded input
spikes, TerminateDelta=4) and two faster settings of the same INI (lower thresholds in the
last layers: the decision comes after fewer input spikes). Wall times are the best of two runs.

Operation counts per image. n2d2py: synaptic read events (one accumulation per synapse a
spike goes through) and pool updates, as counted by the engine. SpikingJelly: the dense
multiply-accumulates it executes (T × the network's MACs), and the accumulations an
event-driven chip would do on its spikes (Σ over steps of nonzero inputs × their fan-out).
"""

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT.parent))

import spike_lenet  # noqa: E402  (the n2d2py side: build, formal rate, spike run)

# n2d2py settings: name -> overrides of models/LeNet_Spike.ini ([layer.]Key=value, fc2 by default)
SETTINGS = {
    "default (LeNet_Spike.ini)": [],
    "fast: conv3 Threshold=0.5, fc2 0.25": ["conv3.Threshold=0.5", "Threshold=0.25"],
    "faster: conv3, fc1, fc2 Threshold=0.5": ["conv3.Threshold=0.5", "fc1.Threshold=0.5",
                                              "Threshold=0.5"],
}
REPEATS = 2  # timed runs per setting (the machine is shared): the best is kept
STEPS = (8, 16, 32)


def torch_lenet(net):
    """LeNet in PyTorch (no bias; conv2's partial map as zero weights) with n2d2py's weights."""
    import torch
    from torch import nn

    cells = net.cells
    model = nn.Sequential(
        nn.Conv2d(1, 6, 5, bias=False), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5, bias=False), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 120, 5, bias=False), nn.ReLU(), nn.Flatten(),
        nn.Linear(120, 84, bias=False), nn.ReLU(), nn.Linear(84, 10, bias=False),
    )
    layers = [model[0], model[3], model[6], model[9], model[11]]
    for layer, name in zip(layers, ("conv1", "conv2", "conv3", "fc1", "fc2")):
        w = np.asarray(cells[name].weights.data, dtype=np.float32)
        mask = getattr(cells[name], "mask", None)
        if mask is not None and w.ndim == 4:
            w = w * mask[:, :, None, None]
        layer.weight.data = torch.from_numpy(w.reshape(layer.weight.shape).copy())
    return model.eval(), layers


def fanout_maps(layers, in_shapes):
    """Per synaptic layer, the number of connections leaving each input element."""
    import torch
    import torch.nn.functional as F

    maps = []
    for layer, shape in zip(layers, in_shapes):
        if isinstance(layer, torch.nn.Conv2d):
            pairs = (layer.weight != 0).any(dim=3).any(dim=2).float()  # mapped (out, in) pairs
            taps = pairs[:, :, None, None].expand_as(layer.weight).contiguous()
            out_hw = tuple(s - k + 1 for s, k in zip(shape[1:], layer.kernel_size))
            maps.append(F.conv_transpose2d(torch.ones((1, layer.out_channels) + out_hw), taps)[0])
        else:
            maps.append(torch.full((layer.in_features,), float(layer.out_features)))
    return maps


def spikingjelly_runs(model, layers, calib, x, labels, steps, threads):
    """{T: (accuracy, seconds, dense MACs/image, spike-driven ops/image)}."""
    import copy

    import torch
    from spikingjelly.activation_based import ann2snn, functional

    torch.set_num_threads(threads)
    loader = [torch.from_numpy(calib[i:i + 100]) for i in range(0, len(calib), 100)]
    recipe = ann2snn.RateCodingRecipe(dataloader=loader, mode="99.9%")
    snn = ann2snn.FXConverter(recipe=recipe, device="cpu").convert(copy.deepcopy(model)).eval()
    macs = 117_600 + 150_000 + 48_000 + 10_080 + 840
    convs = [m for m in snn.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    fan = fanout_maps(layers, [(1, 32, 32), (6, 14, 14), (16, 5, 5), (120,), (84,)])
    results = {}
    xt = torch.from_numpy(x)
    for steps_t in steps:
        ops = [0.0]

        def count(module, inputs, _out, f=None):
            nz = (inputs[0] != 0).float()
            ops[0] += float((nz * f).sum())

        handles = [m.register_forward_hook(lambda m, i, o, f=f: count(m, i, o, f)) for m, f in zip(convs, fan)]
        correct, start = 0, time.perf_counter()
        with torch.no_grad():
            for i in range(0, len(x), 1000):
                functional.reset_net(snn)
                out = sum(snn(xt[i:i + 1000]) for _ in range(steps_t))
                correct += int((out.argmax(1).numpy() == labels[i:i + 1000]).sum())
        elapsed = time.perf_counter() - start
        for h in handles:
            h.remove()
        # the timed run includes the hooks; time once more without them
        start = time.perf_counter()
        with torch.no_grad():
            for i in range(0, len(x), 1000):
                functional.reset_net(snn)
                out = sum(snn(xt[i:i + 1000]) for _ in range(steps_t))
        elapsed = min(elapsed, time.perf_counter() - start)
        results[steps_t] = (correct / len(x), elapsed, steps_t * macs, ops[0] / len(x))
    return results


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--weights", default=str(ROOT.parent / "runs" / "lenet" / "weights_validation"))
    parser.add_argument("--nb-test", type=int, default=10000)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    import numba
    import torch

    numba.set_num_threads(args.threads)
    torch.set_num_threads(args.threads)
    ini = str(ROOT.parent / "models" / "LeNet_Spike.ini")
    net = spike_lenet.build(ini, args.weights)
    n = min(args.nb_test, net.provider.size("Test"))
    formal, _, x, labels = spike_lenet.formal_rate(net, n)
    calib, _, _ = net.provider.read("Learn", np.arange(1000), np.random.default_rng(0))
    model, layers = torch_lenet(net)
    with torch.no_grad():
        ann = float((model(torch.from_numpy(x)).argmax(1).numpy() == labels).mean())
    rows = []
    for name, sets in SETTINGS.items():  # n2d2py
        variant = spike_lenet.variant(ini, sets) if sets else ini
        vnet = spike_lenet.build(variant, args.weights)
        runs = [spike_lenet.spike_run(vnet, x, labels, args.threads) for _ in range(REPEATS)]
        rate, stats, elapsed, _ = runs[0][0], runs[0][1], min(r[2] for r in runs), None
        rows.append((f"n2d2py {name}", rate, elapsed, f"{stats.reads / n:,.0f} synaptic + "
                     f"{stats.pool_ops / n:,.0f} pool (R/V/P {stats.activity():.3f})"))
    for steps_t, (acc, elapsed, macs, ops) in spikingjelly_runs(model, layers, calib, x, labels, STEPS,
                                                                 args.threads).items():
        rows.append((f"SpikingJelly 2.0 T={steps_t}", acc, elapsed,
                     f"{macs:,.0f} dense MACs executed; {ops:,.0f} spike-driven"))
    print(f"\n{n} test images, {args.threads} threads. Formal (n2d2py): {100 * formal:.2f}%   "
          f"ANN in PyTorch, same weights: {100 * ann:.2f}%   target: >= {100 * formal - 0.3:.2f}%")
    width = max(len(r[0]) for r in rows)
    print(f"{'setting':<{width}}  {'accuracy':>8}  {'vs formal':>9}  {'wall s':>7}  operations per image")
    for label, acc, elapsed, ops in rows:
        print(f"{label:<{width}}  {100 * acc:7.2f}%  {100 * (acc - formal):+8.2f}  {elapsed:7.2f}  {ops}")


if __name__ == "__main__":
    main()
