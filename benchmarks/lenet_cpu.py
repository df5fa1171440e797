"""LeNet training and inference speed: n2d2py's own step (the code the CLI runs, on the
network built from models/LeNet.ini) against PyTorch's equivalent, alternating in one process,
same threads, batch, dtype, after warm-up. Prints images/s and the ratios.

With --memory it runs instead two whole ``-learn-epoch 1`` runs as child processes, n2d2py's
CLI and the same learning in PyTorch (same MNIST files, 32×32 uint8 cache, batch, epoch,
validation and test), and prints the peak resident memory and wall time of each.

    pip install -e ".[bench]"        # torch==2.13.0 (CPU)
    python benchmarks/lenet_cpu.py [--runs 3] [--batches 30] [--threads 2]
    python benchmarks/lenet_cpu.py --memory [--threads 2]
    python benchmarks/lenet_cpu.py --profile [--batches 100]
"""

import argparse
import gzip
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
import n2d2py  # noqa: E402,F401  first: n2d2py picks OpenBLAS's kernels before numpy loads it
from n2d2py import blas_setup  # noqa: E402


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--batches", type=int, default=30)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--memory", action="store_true", help="peak memory of two -learn-epoch 1 runs")
    p.add_argument("--profile", action="store_true",
                   help="per-cell times of n2d2py's step, torch.profiler of PyTorch's")
    p.add_argument("--torch-learn", action="store_true", help=argparse.SUPPRESS)  # the child
    return p.parse_args()


def n2d2py_lenet(batch_size, timings=None):
    """(train, infer, x, labels) closures over n2d2py's LeNet; with a ``timings`` dict, every
    cell's forward and backward add their wall time to it."""
    from n2d2py import backend, learning, network
    from n2d2py.errors import Diagnostics
    from n2d2py.ini import parse_file

    doc = parse_file(ROOT / "models" / "LeNet.ini", Diagnostics(stream=open(os.devnull, "w")))
    net = network.build(doc, backend.cpu(1))
    net.initialize()
    x, labels, _ = next(net.provider.batches("Learn", limit=batch_size))
    if timings is not None:
        for name, cell in net.cells.items():
            _time_cell(cell, name, timings)

    def train():
        learning._step(net, x, labels, 0)

    def infer():
        net.forward(x, train=False)

    return train, infer, x, labels


def _time_cell(cell, name, timings):
    """Wrap ``cell``'s forward and backward so that they add their wall time to ``timings``."""

    def timed(method, key):
        def call(*args):
            start = time.perf_counter()
            out = method(*args)
            timings[key] = timings.get(key, 0.0) + time.perf_counter() - start
            return out

        return call

    cell.forward = timed(cell.forward, f"{name} forward")
    cell.backward = timed(cell.backward, f"{name} backward")


def profile(batch_size, batches):
    """ms per batch of each n2d2py cell (forward includes its activation), then PyTorch's
    operators by self CPU time (torch.profiler), for a training and an inference step."""
    timings = {}
    ours_train, ours_infer, x, labels = n2d2py_lenet(batch_size, timings)
    torch_train, torch_infer = torch_lenet(x, labels)
    print_profile(ours_train, ours_infer, torch_train, torch_infer, timings, batch_size, batches)


def print_profile(ours_train, ours_infer, torch_train, torch_infer, timings, batch_size, batches):
    """Per-cell ms per batch of n2d2py's steps (``timings`` filled by ``_time_cell``), then
    PyTorch's operators by self CPU time (torch.profiler), training then inference."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    for kind, ours, theirs in (("training", ours_train, torch_train),
                               ("inference", ours_infer, torch_infer)):
        rate(ours, 5, batch_size)
        timings.clear()
        step = batch_size / rate(ours, batches, batch_size) * 1e3
        print(f"n2d2py {kind} step: {step:.2f} ms per batch of {batch_size}")
        for key, total in timings.items():
            print(f"   {key:20s} {total / batches * 1e3:7.3f} ms")
        rest = step - sum(timings.values()) / batches * 1e3
        print(f"   {'(rest of the step)':20s} {rest:7.3f} ms")
        rate(theirs, 5, batch_size)
        step = batch_size / rate(theirs, batches, batch_size) * 1e3
        with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
            rate(theirs, batches, batch_size)
        print(f"PyTorch {kind} step: {step:.2f} ms per batch (unprofiled); self CPU per batch:")
        for event in sorted(prof.key_averages(), key=lambda e: -e.self_cpu_time_total)[:12]:
            print(f"   {event.key[:40]:40s} {event.self_cpu_time_total / batches / 1e3:7.3f} ms"
                  f"  x{event.count // batches}")


def torch_model():
    """PyTorch's LeNet (full conv2 table, no biases, dropout) and its SGD, as in LeNet.ini's
    old solver settings (rate 0.05, momentum 0.9, decay 0.0005)."""
    import torch
    from torch import nn

    model = nn.Sequential(
        nn.Conv2d(1, 6, 5, bias=False), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5, bias=False), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 120, 5, bias=False), nn.ReLU(), nn.Flatten(),
        nn.Linear(120, 84, bias=False), nn.ReLU(), nn.Dropout(0.5),
        nn.Linear(84, 10, bias=False),
    )
    return model, torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=0.0005)


def torch_steps_of(model, opt, x, labels):
    """(train, infer) closures of a PyTorch model and its optimiser on one batch."""
    import numpy as np
    import torch
    from torch import nn

    xt, yt = torch.from_numpy(np.asarray(x)), torch.from_numpy(np.asarray(labels))
    loss_fn = nn.CrossEntropyLoss()

    def train():
        model.train()
        opt.zero_grad(set_to_none=True)
        loss_fn(model(xt), yt).backward()
        opt.step()

    def infer():
        model.eval()
        with torch.no_grad():
            model(xt)

    return train, infer


def torch_lenet(x, labels):
    return torch_steps_of(*torch_model(), x, labels)


def torch_learn(batch_size, seed=1):
    """PyTorch's -learn-epoch 1 on LeNet.ini's data: 48,000 learning / 12,000 validation
    images of MNIST's training file, rescaled to 32×32 once and kept as uint8 (as n2d2py's
    cache), one epoch of batches, then validation and test. Returns the test accuracy."""
    import numpy as np
    import torch
    from torch import nn
    from torch.nn import functional

    def idx(name):
        data = gzip.decompress((ROOT / "n2d2py" / "datasets" / "mnist" / name).read_bytes())
        ndim = data[3]
        dims = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
        return np.frombuffer(data, np.uint8, offset=4 + 4 * ndim).reshape(dims)

    def rescaled(images):
        out = torch.empty((len(images), 1, 32, 32), dtype=torch.uint8)
        for i in range(0, len(images), 4096):
            part = torch.from_numpy(images[i : i + 4096].astype(np.float32))[:, None]
            part = functional.interpolate(part, size=(32, 32), mode="bilinear", align_corners=False)
            out[i : i + 4096] = part.round().clamp(0, 255).to(torch.uint8)
        return out

    torch.manual_seed(seed)
    train_x = rescaled(idx("train-images-idx3-ubyte.gz"))
    train_y = idx("train-labels-idx1-ubyte.gz")
    test_x, test_y = rescaled(idx("t10k-images-idx3-ubyte.gz")), idx("t10k-labels-idx1-ubyte.gz")
    order = torch.randperm(len(train_x))
    learn, valid = order[:48000], order[48000:]
    model, opt = torch_model()
    loss_fn = nn.CrossEntropyLoss()
    labels = torch.from_numpy(train_y.astype(np.int64))
    model.train()
    for i in range(0, len(learn), batch_size):
        batch = learn[i : i + batch_size]  # the learning set is in random order already
        opt.zero_grad(set_to_none=True)
        loss_fn(model(train_x[batch].float() / 255), labels[batch]).backward()
        opt.step()

    def accuracy(x, y):
        model.eval()
        hits = 0
        with torch.no_grad():
            for i in range(0, len(x), batch_size):
                scores = model(x[i : i + batch_size].float() / 255)
                hits += int((scores.argmax(1) == y[i : i + batch_size]).sum())
        return hits / len(x)

    accuracy(train_x[valid], labels[valid])
    return accuracy(test_x, torch.from_numpy(test_y.astype(np.int64)))


def memory(threads):
    """Peak RSS and wall time of n2d2py's and PyTorch's -learn-epoch 1, each in a child."""
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    runs = {
        "n2d2py": [sys.executable, "-m", "n2d2py", str(ROOT / "models" / "LeNet.ini"),
                   "-learn-epoch", "1", "-seed", "1"],
        "torch": [sys.executable, __file__, "--torch-learn", "--threads", str(threads)],
    }
    print(f"-learn-epoch 1 on LeNet (models/LeNet.ini), batch 128, {threads} threads, "
          "one child process each")
    peaks = {}
    for name, cmd in runs.items():
        with tempfile.TemporaryDirectory() as out:
            start = time.perf_counter()
            child = subprocess.Popen(cmd + (["-o", out] if name == "n2d2py" else []), env=env,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            output = child.stdout.read()
            _, status, usage = os.wait4(child.pid, 0)
            wall = time.perf_counter() - start
        if status != 0:
            sys.exit(f"{name} failed:\n{output}")
        peaks[name] = usage.ru_maxrss / 1024
        last = [line for line in output.splitlines()
                if "recognition rate" in line or "accuracy" in line]
        print(f"  {name:7s} peak resident memory {peaks[name]:6,.0f} MiB   wall {wall:6.1f} s   "
              f"{last[-1].strip() if last else ''}")
    print(f"  ratio n2d2py/torch peak memory: {peaks['n2d2py'] / peaks['torch']:.2f}x")


# What rate() and cpu_nets' CLI timings measure: wall time, or with cpu_nets.py --cpu-time
# the process's CPU time (one thread: time not taken by other programs sharing the machine).
CLOCK = time.perf_counter


def rate(fn, batches, batch_size):
    t = CLOCK()
    for _ in range(batches):
        fn()
    return batches * batch_size / (CLOCK() - t)


def main():
    args = parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    try:
        import torch
    except ImportError:
        sys.exit("PyTorch is needed for the comparison: pip install -e '.[bench]'")
    torch.set_num_threads(args.threads)
    if args.torch_learn:
        print(f"test accuracy {100 * torch_learn(args.batch_size):.2f}%")
        return
    if args.memory:
        return memory(args.threads)
    if args.profile:
        return profile(args.batch_size, args.batches)
    ours_train, ours_infer, x, labels = n2d2py_lenet(args.batch_size)
    torch_train, torch_infer = torch_lenet(x, labels)
    for fn in (ours_train, ours_infer, torch_train, torch_infer):  # warm-up
        rate(fn, 3, args.batch_size)
    results = {k: [] for k in ("n2d2py train", "torch train", "n2d2py infer", "torch infer")}
    for run in range(args.runs):
        results["n2d2py train"].append(rate(ours_train, args.batches, args.batch_size))
        results["torch train"].append(rate(torch_train, args.batches, args.batch_size))
        results["n2d2py infer"].append(rate(ours_infer, args.batches, args.batch_size))
        results["torch infer"].append(rate(torch_infer, args.batches, args.batch_size))
    med = {k: statistics.median(v) for k, v in results.items()}
    print(f"LeNet (models/LeNet.ini), batch {args.batch_size}, float32, {args.threads} threads, "
          f"median of {args.runs} alternating runs of {args.batches} batches; n2d2py's BLAS: "
          f"{blas_setup.describe() or 'OpenBLAS, its own choice'}")
    for k, v in results.items():
        print(f"  {k:13s} {med[k]:9,.0f} images/s   runs: {', '.join(f'{r:,.0f}' for r in v)}")
    print(f"  ratio n2d2py/torch: training {med['n2d2py train'] / med['torch train']:.2f}x, "
          f"inference {med['n2d2py infer'] / med['torch infer']:.2f}x")


if __name__ == "__main__":
    main()
