"""Data-parallel LeNet on the CPU: learning throughput of 1 process × 1 thread, 1 process ×
2 threads and ``mpiexec -n 2`` × 1 thread each, measured side by side (the three alternate,
``--runs`` times), and the communication time of a step under MPI.

Each run is a child process that builds models/LeNet.ini as the CLI does (BatchSize 128, the
global batch), learns ``--warmup`` batches, then times ``--batches`` learning steps
(``learning._step``: forward, backward, the packed all-reduce, the solver). Under MPI it also
reports the time spent in the step's all-reduce (which includes waiting for the slower rank),
and the time of the same all-reduce alone, back to back after learning.

    pip install -e ".[mpi]"
    python benchmarks/mpi_lenet.py [--runs 3] [--batches 30] [--batch-size 128]
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--batches", type=int, default=30)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    return p.parse_args()


def child(args):
    import numpy as np

    from n2d2py import backend, learning, network, parallel
    from n2d2py.errors import Diagnostics
    from n2d2py.ini import parse_file

    group = parallel.start("auto")
    doc = parse_file(str(ROOT / "models" / "LeNet.ini"), Diagnostics())
    doc.sections["sp"].props["BatchSize"].raw = str(args.batch_size)
    device = backend.select("Frame", 0, 1)
    device.group = group
    net = network.build(doc, device, seed=1)
    net.initialize()
    provider = net.provider
    total = (args.warmup + args.batches) * provider.batch_size
    stream = provider.random_batches(total, np.random.default_rng(2))
    for i, (x, labels, ids) in enumerate(stream):
        if i == args.warmup:
            started, comm_before = time.perf_counter(), group.comm_seconds if group else 0.0
        learning._step(net, x, labels, i * provider.batch_size, ids)
    elapsed = time.perf_counter() - started
    result = {"img_s": args.batches * provider.batch_size / elapsed, "step_ms": 1e3 * elapsed / args.batches}
    if group is not None:
        result["comm_ms"] = 1e3 * (group.comm_seconds - comm_before) / args.batches
        size = sum(p.data.size for p in net.params()) + 2 + provider.batch_size * 10
        buf = np.zeros(size, np.float64)  # the packed buffer is float64, as Param.grad
        group.comm.allreduce(buf)
        t = time.perf_counter()
        for _ in range(50):
            group.comm.allreduce(buf)
        result["allreduce_ms"] = 1e3 * (time.perf_counter() - t) / 50
        result["floats"] = size
    if group is None or group.root:
        print("RESULT " + json.dumps(result), flush=True)


def run(kind, args):
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="2" if kind == "1x2" else "1")
    cmd = [sys.executable, __file__, "--child", "--batches", str(args.batches),
           "--warmup", str(args.warmup), "--batch-size", str(args.batch_size)]
    if kind == "2x1":
        mpiexec = shutil.which("mpiexec", path=os.path.dirname(sys.executable)) or shutil.which("mpiexec")
        if mpiexec is None:
            sys.exit("no mpiexec: pip install -e '.[mpi]'")
        cmd = [mpiexec, "-n", "2"] + cmd
    else:
        env = {k: v for k, v in env.items() if not k.startswith(("PMI_", "OMPI_", "MV2_"))}
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout
    return json.loads(next(l for l in out.splitlines() if l.startswith("RESULT "))[7:])


def main():
    args = parse_args()
    if args.child:
        return child(args)
    kinds = {"1x1": "1 process x 1 thread", "1x2": "1 process x 2 threads", "2x1": "mpiexec -n 2 x 1 thread"}
    results = {k: [] for k in kinds}
    for r in range(args.runs):
        for kind in kinds:
            results[kind].append(run(kind, args))
            print(f"run {r + 1}/{args.runs} {kinds[kind]}: {results[kind][-1]}", file=sys.stderr)
    print(f"LeNet, global batch {args.batch_size}, {args.batches} timed steps after {args.warmup}, "
          f"{args.runs} runs alternating; cores: {os.cpu_count()}")
    median = {}
    for kind, label in kinds.items():
        rates = [x["img_s"] for x in results[kind]]
        median[kind] = statistics.median(rates)
        print(f"  {label:26s} {median[kind]:7.0f} img/s  (min {min(rates):.0f}, max {max(rates):.0f})")
    print(f"  ratio 2 processes / 1 process x 1 thread : {median['2x1'] / median['1x1']:.2f}")
    print(f"  ratio 2 processes / 1 process x 2 threads: {median['2x1'] / median['1x2']:.2f}")
    comm = [x["comm_ms"] for x in results["2x1"]]
    alone = [x["allreduce_ms"] for x in results["2x1"]]
    steps = [x["step_ms"] for x in results["2x1"]]
    print(f"  MPI step {statistics.median(steps):.1f} ms, of which in the all-reduce "
          f"{statistics.median(comm):.2f} ms (min {min(comm):.2f}, max {max(comm):.2f}; includes waiting "
          f"for the slower rank); the all-reduce of {results['2x1'][0]['floats']} float64 alone: "
          f"{statistics.median(alone):.3f} ms")


if __name__ == "__main__":
    main()
