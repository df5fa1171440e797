"""LeNet training and inference speed: n2d2py's own step (the code the CLI runs, on the
network built from models/LeNet.ini) against PyTorch's equivalent, alternating in one process,
same threads, batch, dtype, after warm-up. Prints images/s, the ratios and peak memory.

    pip install -e ".[bench]"        # torch==2.13.0 (CPU)
    python benchmarks/lenet_cpu.py [--runs 3] [--batches 30] [--threads 2]
"""

import argparse
import os
import resource
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--batches", type=int, default=30)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=128)
    return p.parse_args()


def n2d2py_lenet(batch_size):
    from n2d2py import backend, learning, network
    from n2d2py.errors import Diagnostics
    from n2d2py.ini import parse_file

    doc = parse_file(ROOT / "models" / "LeNet.ini", Diagnostics(stream=open(os.devnull, "w")))
    net = network.build(doc, backend.cpu(1))
    net.initialize()
    x, labels, _ = next(net.provider.batches("Learn", limit=batch_size))

    def train():
        learning._step(net, x, labels, 0)

    def infer():
        net.forward(x, train=False)

    return train, infer, x, labels


def torch_lenet(x, labels):
    import numpy as np
    import torch
    from torch import nn

    model = nn.Sequential(
        nn.Conv2d(1, 6, 5, bias=False), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5, bias=False), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 120, 5, bias=False), nn.ReLU(), nn.Flatten(),
        nn.Linear(120, 84, bias=False), nn.ReLU(), nn.Dropout(0.5),
        nn.Linear(84, 10, bias=False),
    )
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=0.0005)
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


def rate(fn, batches, batch_size):
    t = time.perf_counter()
    for _ in range(batches):
        fn()
    return batches * batch_size / (time.perf_counter() - t)


def main():
    args = parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    try:
        import torch
    except ImportError:
        sys.exit("PyTorch is needed for the comparison: pip install -e '.[bench]'")
    torch.set_num_threads(args.threads)
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
          f"median of {args.runs} alternating runs of {args.batches} batches")
    for k, v in results.items():
        print(f"  {k:13s} {med[k]:9,.0f} images/s   runs: {', '.join(f'{r:,.0f}' for r in v)}")
    print(f"  ratio n2d2py/torch: training {med['n2d2py train'] / med['torch train']:.2f}x, "
          f"inference {med['n2d2py infer'] / med['torch infer']:.2f}x")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"  peak resident memory of this process (both frameworks): {peak:,.0f} MiB")


if __name__ == "__main__":
    main()
