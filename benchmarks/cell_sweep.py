"""One cell at a time against PyTorch: where a network you have not seen would lose time.

For each case of a table (convolutions of several shapes, strides, dilations, groups and
activations; pooling; Fc; BatchNorm; LRN; Dropout; Softmax; Deconv) it builds the n2d2py cell
from INI text and its PyTorch twin, then times, alternating in this process, the forward
(learning mode) and the learning step (forward + backward) of both, best of several rounds,
and prints PyTorch's time over n2d2py's (above 1: n2d2py is faster). With ``--gemm`` it first
times the SGEMMs of the convolutions' shapes in numpy's OpenBLAS and in PyTorch's BLAS: the
ceiling that im2col + GEMM convolutions can reach against oneDNN's.

    python benchmarks/cell_sweep.py                      # 2 threads, batch 64
    python benchmarks/cell_sweep.py --threads 1 --gemm   # one thread (thread CPU time)
    python benchmarks/cell_sweep.py --only conv          # the cases whose label has "conv"
"""

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--only", default="", help="cases whose label contains this text")
    parser.add_argument("--rounds", type=int, default=5, help="best of this many timings")
    parser.add_argument("--gemm", action="store_true", help="SGEMM rates first")
    return parser.parse_args()


def conv(c, o, k, stride=1, pad=0, dilation=1, groups=1, act=None):
    """(INI keys, PyTorch module factory) of a Conv cell."""
    keys = f"KernelDims={k} {k}\nNbOutputs={o}\nStride={stride}\nPadding={pad}\n"
    keys += f"Dilation={dilation}\n"
    if groups > 1:
        keys += f"Mapping.ChannelsPerGroup={c // groups}\n"
    if act:
        keys += f"ActivationFunction={act}\n"

    def twin(torch):
        layer = torch.nn.Conv2d(c, o, k, stride, pad, dilation=dilation, groups=groups)
        tail = {None: None, "Rectifier": torch.nn.ReLU(), "Tanh": torch.nn.Tanh(),
                "Logistic": torch.nn.Sigmoid()}[act]
        return layer if tail is None else torch.nn.Sequential(layer, tail)

    return "Conv", keys, twin


def pool(c, k, stride, kind="Max", pad=0):
    keys = (f"PoolDims={k} {k}\nStride={stride}\nPadding={pad}\nPooling={kind}\nNbOutputs={c}\n"
            "Mapping.Size=1\n")

    def twin(torch):
        if kind == "Max":
            return torch.nn.MaxPool2d(k, stride, pad)
        return torch.nn.AvgPool2d(k, stride, pad, count_include_pad=False)

    return "Pool", keys, twin


def fc(inputs, outputs):
    return "Fc", f"NbOutputs={outputs}\n", lambda torch: torch.nn.Sequential(
        torch.nn.Flatten(), torch.nn.Linear(inputs, outputs))


def other(kind, keys, make):
    return kind, keys, make


# (label, input C×H×W, (Type, INI keys, twin factory))
CASES = [
    ("conv 3x3 3->32 32x32", (3, 32, 32), conv(3, 32, 3, pad=1)),
    ("conv 3x3 32->32 32x32", (32, 32, 32), conv(32, 32, 3, pad=1)),
    ("conv 3x3 32->64 32x32 s2", (32, 32, 32), conv(32, 64, 3, 2, 1)),
    ("conv 3x3 64->64 16x16", (64, 16, 16), conv(64, 64, 3, pad=1)),
    ("conv 3x3 128->128 8x8", (128, 8, 8), conv(128, 128, 3, pad=1)),
    ("conv 3x3 256->256 8x8", (256, 8, 8), conv(256, 256, 3, pad=1)),
    ("conv 3x3 512->512 4x4", (512, 4, 4), conv(512, 512, 3, pad=1)),
    ("conv 3x3 512->512 2x2", (512, 2, 2), conv(512, 512, 3, pad=1)),
    ("conv 3x3 32->32 30x30 no padding", (32, 30, 30), conv(32, 32, 3)),
    ("conv 3x3 32->32 32x32 dilation 2", (32, 32, 32), conv(32, 32, 3, pad=2, dilation=2)),
    ("conv 3x3 64->64 16x16 4 groups", (64, 16, 16), conv(64, 64, 3, pad=1, groups=4)),
    ("conv 3x3 128 16x16 depthwise", (128, 16, 16), conv(128, 128, 3, pad=1, groups=128)),
    ("conv 1x1 64->128 32x32", (64, 32, 32), conv(64, 128, 1)),
    ("conv 1x1 256->64 8x8", (256, 8, 8), conv(256, 64, 1)),
    ("conv 5x5 32->64 16x16", (32, 16, 16), conv(32, 64, 5, pad=2)),
    ("conv 7x7 3->64 64x64 s2", (3, 64, 64), conv(3, 64, 7, 2, 3)),
    ("conv 4x4 1->16 28x28 s2 (MNIST)", (1, 28, 28), conv(1, 16, 4, 2)),
    ("conv 5x5 6->16 12x12 (LeNet)", (6, 12, 12), conv(6, 16, 5)),
    ("conv 3x3 32->32 32x32 + ReLU", (32, 32, 32), conv(32, 32, 3, pad=1, act="Rectifier")),
    ("conv 3x3 32->32 32x32 + Tanh", (32, 32, 32), conv(32, 32, 3, pad=1, act="Tanh")),
    ("conv 3x3 32->32 32x32 + Logistic", (32, 32, 32), conv(32, 32, 3, pad=1, act="Logistic")),
    ("max pool 2x2 64 32x32", (64, 32, 32), pool(64, 2, 2)),
    ("max pool 3x3 s2 64 32x32", (64, 32, 32), pool(64, 3, 2, pad=1)),
    ("average pool 2x2 64 32x32", (64, 32, 32), pool(64, 2, 2, "Average")),
    ("fc 800->500", (800, 1, 1), fc(800, 500)),
    ("fc 4096->1024", (4096, 1, 1), fc(4096, 1024)),
    ("fc 64x8x8->512", (64, 8, 8), fc(4096, 512)),
    ("batchnorm + ReLU 64 32x32", (64, 32, 32), other(
        "BatchNorm", "NbOutputs=64\nActivationFunction=Rectifier\n",
        lambda torch: torch.nn.Sequential(torch.nn.BatchNorm2d(64), torch.nn.ReLU()))),
    ("lrn 5 64 16x16", (64, 16, 16), other(
        "LRN", "NbOutputs=64\nSize=5\n", lambda torch: torch.nn.LocalResponseNorm(5))),
    ("dropout 64 32x32", (64, 32, 32), other(
        "Dropout", "NbOutputs=64\n", lambda torch: torch.nn.Dropout(0.5))),
    ("softmax 1000", (1000, 1, 1), other(
        "Softmax", "NbOutputs=1000\n", lambda torch: torch.nn.Softmax(1))),
    ("deconv 3x3 s2 32->16 16x16", (32, 16, 16), other(
        "Deconv", "KernelDims=3 3\nNbOutputs=16\nStride=2\n",
        lambda torch: torch.nn.ConvTranspose2d(32, 16, 3, 2))),
]

GEMMS = [(32, 288, 1024), (64, 576, 256), (128, 1152, 512), (256, 2304, 256), (512, 4608, 128),
         (288, 32, 1024), (1152, 128, 512), (1024, 1024, 1024)]


def best(clock, fn, rounds):
    fn()
    fastest = float("inf")
    for _ in range(rounds):
        start = clock()
        fn()
        fastest = min(fastest, clock() - start)
    return fastest * 1e3


def gemm_rates(np, torch, clock, rounds):
    print("SGEMM (M×K @ K×N) GFLOP/s: numpy's OpenBLAS | PyTorch's BLAS")
    for m, k, n in GEMMS:
        a = np.random.default_rng(0).random((m, k), dtype=np.float32)
        b = np.random.default_rng(1).random((k, n), dtype=np.float32)
        out = np.empty((m, n), np.float32)
        ta, tb = torch.from_numpy(a), torch.from_numpy(b)
        flops = 2 * m * k * n / 1e6
        ours = flops / best(clock, lambda: np.matmul(a, b, out=out), rounds)
        theirs = flops / best(clock, lambda: ta @ tb, rounds)
        print(f"  {m:5d}×{k:5d} @ {k:5d}×{n:5d}: {ours:6.0f} | {theirs:6.0f}  ({ours / theirs:.2f}×)")
    print()


def main():
    args = parse_args()
    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    sys.path[:0] = [str(ROOT), str(ROOT / "tests")]
    import n2d2py  # noqa: F401  first: the BLAS kernels (blas_setup)
    import n2d2py.network  # noqa: F401  fills the registries
    import numpy as np
    import torch
    from harness import build  # tests/harness.py: a cell from INI text

    from n2d2py.registry import CELLS

    torch.set_num_threads(args.threads)
    clock = time.thread_time if args.threads == 1 else time.perf_counter
    if args.gemm:
        gemm_rates(np, torch, clock, args.rounds)
    rng = np.random.default_rng(0)
    print(f"batch {args.batch}, {args.threads} thread(s), float32, best of {args.rounds}; "
          "ms n2d2py / PyTorch (PyTorch over n2d2py)")
    for label, shape, (kind, keys, twin) in CASES:
        if args.only not in label:
            continue
        cell = build(CELLS.get(kind), f"[c]\nType={kind}\n{keys}[cfg]\n", "c", [shape], ["cfg"])
        x = rng.standard_normal((args.batch,) + shape, dtype=np.float32)
        dy = rng.standard_normal((args.batch,) + tuple(cell.out_shape), dtype=np.float32)
        module = twin(torch)
        module.train()
        tx = torch.from_numpy(x).requires_grad_(True)
        tdy = torch.from_numpy(dy).reshape(module(tx).shape)

        def step():
            cell.forward([x], train=True)
            cell.backward(dy)

        def torch_forward():
            with torch.no_grad():
                module(tx)

        forward = best(clock, lambda: cell.forward([x], train=True), args.rounds)
        theirs = best(clock, torch_forward, args.rounds)
        learning = best(clock, step, args.rounds)
        their_step = best(clock, lambda: module(tx).backward(tdy), args.rounds)
        print(f"  {label:36s} forward {forward:7.2f} / {theirs:7.2f} ({theirs / forward:4.2f}×)"
              f"   step {learning:7.2f} / {their_step:7.2f} ({their_step / learning:4.2f}×)",
              flush=True)


if __name__ == "__main__":
    main()
