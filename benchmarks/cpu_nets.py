"""Convolutional networks on the CPU: n2d2py against a PyTorch twin, alternating in one run.

For each network (an INI file) and batch size it times, in one process per thread count:

* the step alone: n2d2py's learning step (``learning._step``, what ``-learn`` runs) and its
  inference forward, against the same network written in PyTorch (``torch_twin``: nn.Conv2d
  with groups, nn.BatchNorm2d, pooling, dropout, residual sums, cross-entropy and SGD with
  momentum and decay, built from the n2d2py network's layer list, never running n2d2py code);
* the CLI's loops (with ``--cli``, on by default): ``n2d2py INI -learn N`` and ``-test``
  (``-nb-test N``) run in-process through ``cli.main``: data pipeline, StimuliData
  normalisation, on-the-fly transformations, progress and logs. Each is run with a small and
  a large N (2 and 2 + ``--cli-batches`` batches); images/s = (difference of N) / (difference
  of wall time), which cancels start-up (imports, data reading, StimuliData) and the final log
  step (one validation, plots). Start-up takes seconds and varies by tenths: 30 extra batches
  (the default) keep that noise to a few % of the difference. Each row is followed by the CLI
  loops' rates over n2d2py's own step and forward: what the loops cost beyond the step.

The runs alternate (n2d2py step, PyTorch step, ...) ``--runs`` times; the median is printed
with the spread (min-max) of each. The CIFAR networks read a generated CIFAR-10 data set in a
temporary folder (random pixels: speed only). ``--memory`` instead runs one n2d2py ``-learn``
and one PyTorch learning of the same batches in child processes and prints their peak RSS.

    python benchmarks/cpu_nets.py                     # all five networks, batch 64, 2 threads
    python benchmarks/cpu_nets.py --nets cifar,resnet --batches 32,64,128 --threads 1,2
    python benchmarks/cpu_nets.py --no-cli --runs 5   # the steps only
    python benchmarks/cpu_nets.py --profile mobilenet # per-cell ms, torch.profiler
    python benchmarks/cpu_nets.py --memory
    python benchmarks/cpu_nets.py --threads 1 --cpu-time   # on a shared machine, see below

``--cpu-time`` (one thread only) times with the process's CPU time instead of the wall clock:
on a machine other programs load, a 1-thread process's CPU time is nearly what it would take
alone (the wall clock also counts the time it waited for a core), so the 1-thread ratios stay
readable under load. It is no evidence for the 2-thread targets.
"""

import argparse
import contextlib
import io
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import lenet_cpu
from lenet_cpu import blas_setup, _time_cell, print_profile, rate, torch_steps_of

ROOT = Path(__file__).resolve().parents[1]
NETS = {
    "lenet": ROOT / "models" / "LeNet.ini",
    "cifar": ROOT / "models" / "cifar-10.ini",
    "mobilenet": ROOT / "models" / "cifar-10-mobilenet.ini",
    "resnet": ROOT / "models" / "cifar-10-resnet.ini",
    "vgg": ROOT / "models" / "cifar-10-vgg.ini",
}
CLI_SCALE = {"lenet": 20}  # LeNet's steps are short: more extra batches for the CLI difference
CIFAR_PER_FILE = 1000  # generated images per data_batch file (5 files), and in test_batch


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--nets", default=",".join(NETS), help=f"among {', '.join(NETS)}")
    p.add_argument("--batches", default="64", help="batch sizes, e.g. 32,64,128")
    p.add_argument("--threads", default="2", help="thread counts, e.g. 1,2 (one child each)")
    p.add_argument("--runs", type=int, default=3, help="alternations (median and spread)")
    p.add_argument("--steps", type=int, default=5, help="batches per step timing")
    p.add_argument("--cli-batches", type=int, default=30,
                   help="extra batches of the large CLI run over the small one")
    p.add_argument("--no-cli", dest="cli", action="store_false", help="the steps only")
    p.add_argument("--profile", metavar="NET", help="per-cell times of NET (first batch size)")
    p.add_argument("--memory", action="store_true", help="peak RSS of -learn against PyTorch")
    p.add_argument("--cpu-time", action="store_true",
                   help="time with the process's CPU time (--threads 1 only): for loaded machines")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--torch-learn", metavar="NET", help=argparse.SUPPRESS)
    return p.parse_args()


# -- data and INI files -------------------------------------------------------------------------
def write_cifar(root, per_file=CIFAR_PER_FILE, seed=0, test_size=CIFAR_PER_FILE):
    """A CIFAR-10 binary data set of random images and labels under ``root`` (``test_size``
    images in test_batch: enough for the large ``-test -nb-test N``)."""
    import numpy as np

    from n2d2py.data.cifar import CIFAR10_NAMES, write_batch

    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    for name in [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]:
        n = test_size if name == "test_batch.bin" else per_file
        images = rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)
        write_batch(root / name, images, rng.integers(0, 10, n))
    (root / "batches.meta.txt").write_text("\n".join(CIFAR10_NAMES) + "\n")


def ini_copy(net, batch_size, folder):
    """The network's INI with its batch size set, written in ``folder``; its path."""
    text = NETS[net].read_text()
    text, count = re.subn(r"(?m)^(\$BATCH_SIZE=|BatchSize=)\d+", rf"\g<1>{batch_size}", text)
    assert count, f"no batch size in {NETS[net]}"
    if net == "lenet":  # the copy is elsewhere: find the shipped MNIST by its path
        mnist = ROOT / "n2d2py" / "datasets" / "mnist"
        text = text.replace("Type=MNIST_IDX_Database",
                            f"Type=MNIST_IDX_Database\nDataPath={mnist}", 1)
    path = Path(folder) / f"{net}-{batch_size}.ini"
    path.write_text(text)
    return path


# -- n2d2py -------------------------------------------------------------------------------------
def n2d2py_net(ini, timings=None):
    """(net, train, infer, x, labels): n2d2py's network from ``ini`` and closures of one
    learning step / inference forward on its first Learn batch."""
    from n2d2py import backend, learning, network
    from n2d2py.errors import Diagnostics
    from n2d2py.ini import parse_file

    doc = parse_file(ini, Diagnostics(stream=open(os.devnull, "w")))
    net = network.build(doc, backend.cpu(1))
    net.initialize()
    x, labels, _ = next(net.provider.batches("Learn", limit=net.provider.batch_size))
    if timings is not None:
        for name, cell in net.cells.items():
            _time_cell(cell, name, timings)

    def train():
        learning._step(net, x, labels, 0)

    def infer():
        net.forward(x, train=False)

    return net, train, infer, x, labels


def cli_seconds(argv):
    """Wall time of ``n2d2py argv`` run in-process (its output swallowed)."""
    from n2d2py import cli

    start = lenet_cpu.CLOCK()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        try:
            cli.main([str(a) for a in argv])
        except SystemExit as exc:
            if exc.code not in (0, None):
                raise RuntimeError(f"n2d2py {' '.join(map(str, argv))} failed") from None
    return lenet_cpu.CLOCK() - start


class CliLoops:
    """``-learn`` and ``-test`` of one INI: each timing runs a small and a large N."""

    def __init__(self, ini, batch_size, extra_batches, folder):
        self.ini, self.bs, self.extra, self.folder = ini, batch_size, extra_batches, Path(folder)
        self.count = 0
        self.weights = self._run_dir()
        cli_seconds([ini, "-learn", batch_size, "-log", 10**9, "-seed", 1, "-o", self.weights])

    def _run_dir(self):
        self.count += 1
        return self.folder / f"run{self.count}"

    def learn_rate(self):
        small, large = 2 * self.bs, (2 + self.extra) * self.bs
        times = [cli_seconds([self.ini, "-learn", n, "-log", 10**9, "-seed", 1,
                              "-o", self._run_dir()]) for n in (small, large)]
        return (large - small) / (times[1] - times[0])

    def test_rate(self):
        small, large = 2 * self.bs, (2 + self.extra) * self.bs
        times = [cli_seconds([self.ini, "-test", "-nb-test", n, "-w",
                              self.weights / "weights", "-seed", 1, "-o", self._run_dir()])
                 for n in (small, large)]
        return (large - small) / (times[1] - times[0])


# -- PyTorch --------------------------------------------------------------------------------------
def torch_twin(net):
    """The n2d2py network ``net`` as a PyTorch module (same layers, shapes, groups, padding,
    activations) and its SGD (momentum 0.9, decay 1e-4); a module's forward returns the
    logits of the Softmax cell with loss (cross-entropy)."""
    import numpy as np
    import torch
    from torch import nn

    from n2d2py.cells.mapping import grouped_mask

    def activation(cell):
        act = cell.activation
        name = type(act).__name__ if act is not None else "Linear"
        if name == "Rectifier":
            if act.clipping > 0:
                raise NotImplementedError("clipped ReLU")
            return nn.LeakyReLU(act.leak_slope) if act.leak_slope else nn.ReLU()
        return {"Linear": nn.Identity, "Tanh": nn.Tanh, "Logistic": nn.Sigmoid}[name]()

    def groups_of(cell):
        o, c = cell.mask.shape
        for g in range(1, c + 1):
            if c % g == 0 and g <= o and (cell.mask == grouped_mask(g, c, o)).all():
                return g
        return 1  # another partial map: a dense convolution (the same work as n2d2py's)

    layers, kinds = nn.ModuleDict(), {}
    for name, cell in net.cells.items():
        kind = type(cell).__name__
        c_in = sum(p.shape[0] for p in cell.inputs)
        if kind == "ConvCell":
            if min(cell.padding) < 0:
                raise NotImplementedError("negative padding")
            layer = nn.Conv2d(c_in, cell.out_shape[0], cell.kernel, cell.stride, cell.padding,
                              cell.dilation, groups_of(cell), bias=cell.bias is not None)
        elif kind == "BatchNormCell":
            layer = nn.BatchNorm2d(c_in, cell.epsilon, cell.momentum)
        elif kind == "PoolCell":
            if not cell.one_to_one:
                raise NotImplementedError("pooling over a channel map")
            pool = nn.MaxPool2d if cell.pooling == "Max" else nn.AvgPool2d
            layer = pool(cell.pool, cell.stride, cell.padding)
        elif kind == "FcCell":
            size = sum(int(np.prod(p.shape)) for p in cell.inputs)
            layer = nn.Sequential(nn.Flatten(), nn.Linear(size, cell.out_shape[0],
                                                          bias=cell.bias is not None))
        elif kind == "DropoutCell":
            layer = nn.Dropout(cell.drop)
        elif kind == "ElemWiseCell":
            if cell.operation != "Sum" or cell.per_channel or set(cell.weights) != {1.0}:
                raise NotImplementedError("ElemWise other than a plain Sum")
            layer = nn.Identity()
        elif kind == "SoftmaxCell":
            layer = nn.Identity()  # the loss takes the logits
        else:
            raise NotImplementedError(f"no PyTorch twin for {kind}")
        layers[name.replace(".", "_")] = nn.Sequential(layer, activation(cell))
        kinds[name] = kind
    order = [(name, name.replace(".", "_"), [p.name for p in cell.inputs], kinds[name])
             for name, cell in net.cells.items()]
    first, last = net.input_name, next(reversed(net.cells))

    class Twin(nn.Module):
        def __init__(self):
            super().__init__()
            self.layers = layers

        def forward(self, x):
            outputs = {first: x}
            for name, key, inputs, kind in order:
                xs = [outputs[i] for i in inputs]
                if kind == "ElemWiseCell":
                    xs = [sum(xs)]
                elif len(xs) > 1:
                    xs = [torch.cat(xs, dim=1)]
                outputs[name] = self.layers[key](xs[0])
            return outputs[last].flatten(1)

    model = Twin()
    return model, torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)


def torch_steps(net, x, labels):
    return torch_steps_of(*torch_twin(net), x, labels)


# -- the measurements -----------------------------------------------------------------------------
def measure(net_name, batch_size, args, folder):
    """One row: images/s (each run) of every timing of ``net_name`` at ``batch_size``."""
    ini = ini_copy(net_name, batch_size, folder)
    net, ours_train, ours_infer, x, labels = n2d2py_net(ini)
    torch_train, torch_infer = torch_steps(net, x, labels)
    timings = {"n2d2py train": ours_train, "torch train": torch_train,
               "n2d2py infer": ours_infer, "torch infer": torch_infer}
    for fn in timings.values():  # warm-up: compiled kernels loaded, buffers allocated
        rate(fn, 2, batch_size)
    extra = args.cli_batches * CLI_SCALE.get(net_name, 1)
    cli = CliLoops(ini, batch_size, extra, folder) if args.cli else None
    results = {k: [] for k in timings}
    if cli:
        results.update({"cli learn": [], "cli test": []})
    for _ in range(args.runs):
        for key, fn in timings.items():
            results[key].append(rate(fn, args.steps, batch_size))
        if cli:
            results["cli learn"].append(cli.learn_rate())
            results["cli test"].append(cli.test_rate())
    return {"net": net_name, "batch": batch_size, "threads": int(os.environ["OMP_NUM_THREADS"]),
            "results": results}


def child(args):
    """Runs in a child with OMP_NUM_THREADS set: prints one JSON row per measurement."""
    import torch

    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
    with tempfile.TemporaryDirectory() as folder:
        for net_name in args.nets.split(","):
            for batch_size in map(int, args.batches.split(",")):
                row = measure(net_name, batch_size, args, folder)
                print("ROW " + json.dumps(row), flush=True)


def ratio_line(results, ours, theirs):
    med = {k: statistics.median(results[k]) for k in (ours, theirs)}
    ratios = [a / b for a, b in zip(results[ours], results[theirs])]
    return med[ours] / med[theirs], min(ratios), max(ratios)


def report(rows, header=True):
    if header:
        _header()
    _rows(rows)


def _header():
    print("\nimages/s, median of the alternating runs [min-max]; ratio n2d2py/PyTorch of the "
          "medians [range of the per-run ratios]")
    print(f"{'network':10s} {'batch':>5s} {'thr':>3s}  {'what':9s} {'n2d2py':>20s} "
          f"{'PyTorch step':>20s} {'ratio':>6s} {'range':>11s}")


def _rows(rows):
    lines = [("train", "n2d2py train", "torch train"), ("infer", "n2d2py infer", "torch infer"),
             ("CLI learn", "cli learn", "torch train"), ("CLI test", "cli test", "torch infer")]
    for row in rows:
        res = row["results"]
        for what, ours, theirs in lines:
            if ours not in res:
                continue
            r, lo, hi = ratio_line(res, ours, theirs)

            def cell(k):
                return (f"{statistics.median(res[k]):7,.0f} [{min(res[k]):,.0f}-"
                        f"{max(res[k]):,.0f}]")

            print(f"{row['net']:10s} {row['batch']:5d} {row['threads']:3d}  {what:9s} "
                  f"{cell(ours):>20s} {cell(theirs):>20s} {r:5.2f}x {lo:5.2f}-{hi:4.2f}x",
                  flush=True)
        if "cli learn" in res:  # what the loops cost over n2d2py's own step / forward
            own = [f"{what} {ratio_line(res, ours, theirs)[0]:.2f}x "
                   f"[{ratio_line(res, ours, theirs)[1]:.2f}-{ratio_line(res, ours, theirs)[2]:.2f}]"
                   for what, ours, theirs in (("-learn/step", "cli learn", "n2d2py train"),
                                              ("-test/infer", "cli test", "n2d2py infer"))]
            print(f"{'':21s}  CLI loop against n2d2py's own step: {', '.join(own)}", flush=True)


def memory(args, data_root):
    """Peak RSS of n2d2py's -learn and of PyTorch learning the same batches, each a child."""
    steps = 60
    with tempfile.TemporaryDirectory() as folder:
        for net_name in args.nets.split(","):
            for batch_size in map(int, args.batches.split(",")):
                ini = ini_copy(net_name, batch_size, folder)
                runs = {
                    "n2d2py": [sys.executable, "-m", "n2d2py", str(ini), "-learn",
                               str(steps * batch_size), "-log", str(10**9), "-seed", "1",
                               "-o", str(Path(folder) / f"mem-{net_name}-{batch_size}")],
                    "torch": [sys.executable, __file__, "--torch-learn", str(ini),
                              "--batches", str(batch_size)],
                }
                peaks = {}
                for name, cmd in runs.items():
                    child = subprocess.Popen(cmd, env=_env(args.threads.split(",")[-1], data_root),
                                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                             text=True)
                    output = child.stdout.read()
                    _, status, usage = os.wait4(child.pid, 0)
                    if status:
                        sys.exit(f"{name} failed:\n{output}")
                    peaks[name] = usage.ru_maxrss / 1024
                print(f"{net_name:10s} batch {batch_size:4d}: peak RSS n2d2py -learn "
                      f"{peaks['n2d2py']:5,.0f} MiB, PyTorch {peaks['torch']:5,.0f} MiB "
                      f"({peaks['n2d2py'] / peaks['torch']:.2f}x), {steps} batches each")


def torch_learn(ini, steps=60):
    """PyTorch learning ``steps`` batches of ``ini``'s Learn set (the --memory child)."""
    import torch

    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
    net, _, _, x, labels = n2d2py_net(ini)
    train, _ = torch_steps(net, x, labels)
    batches = net.provider.random_batches(steps * net.provider.batch_size,
                                          __import__("numpy").random.default_rng(1))
    for _ in batches:
        train()


def _env(threads, data_root):
    return dict(os.environ, OMP_NUM_THREADS=str(threads), N2D2_DATA=str(data_root),
                PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))


def main():
    args = parse_args()
    if args.child or args.torch_learn or args.profile:
        os.environ.setdefault("OMP_NUM_THREADS", args.threads.split(",")[0])
        sys.path.insert(0, str(ROOT))
    if args.cpu_time and not args.child and args.threads != "1":
        sys.exit("--cpu-time measures one thread: use it with --threads 1")
    if args.child:
        if args.cpu_time:
            lenet_cpu.CLOCK = time.process_time
        return child(args)
    if args.torch_learn:
        return torch_learn(args.torch_learn)
    with tempfile.TemporaryDirectory() as data_root:
        largest = (2 + args.cli_batches) * max(map(int, args.batches.split(",")))
        write_cifar(Path(data_root) / "cifar-10-batches-bin",
                    test_size=max(CIFAR_PER_FILE, largest))
        if args.profile:
            import torch

            torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
            os.environ["N2D2_DATA"] = data_root
            batch_size = int(args.batches.split(",")[0])
            with tempfile.TemporaryDirectory() as folder:
                timings = {}
                net, ours_train, ours_infer, x, labels = n2d2py_net(
                    ini_copy(args.profile, batch_size, folder), timings)
                torch_train, torch_infer = torch_steps(net, x, labels)
                print_profile(ours_train, ours_infer, torch_train, torch_infer, timings,
                              batch_size, max(args.steps, 10))
            return
        if args.memory:
            return memory(args, data_root)
        rows = []
        print(f"load average at the start: {os.getloadavg()[0]:.2f} (2 cores); n2d2py's "
              f"BLAS: {blas_setup.describe() or 'OpenBLAS, its own choice'}"
              + ("; timed in CPU seconds (--cpu-time)" if args.cpu_time else ""), flush=True)
        for threads in args.threads.split(","):
            cmd = [sys.executable, __file__, "--child", "--nets", args.nets, "--batches",
                   args.batches, "--runs", str(args.runs), "--steps", str(args.steps),
                   "--cli-batches", str(args.cli_batches)] + ([] if args.cli else ["--no-cli"])
            cmd += ["--cpu-time"] if args.cpu_time else []
            print(f"{threads} thread(s): {args.nets} at batch {args.batches} ...", flush=True)
            proc = subprocess.Popen(cmd, env=_env(threads, data_root), stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True)
            other = []
            for line in proc.stdout:  # each row as it comes
                if line.startswith("ROW "):
                    rows.append(json.loads(line[4:]))
                    report(rows[-1:], header=len(rows) == 1)
                else:
                    other.append(line)
            if proc.wait():
                sys.exit(f"the {threads}-thread child failed:\n{''.join(other)}")
        print(f"load average when done: {os.getloadavg()[0]:.2f} (2 cores)")


if __name__ == "__main__":
    main()
