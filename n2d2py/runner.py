"""One run of the simulator: options → network → dry run, learning, testing."""

import os
import time
from dataclasses import dataclass
from typing import Callable

from n2d2py import backend, blas_setup, frozen_heap, parallel
from n2d2py.errors import Diagnostics, N2D2PyError
from n2d2py.ini import parse_file


@dataclass
class Options:
    ini: str
    learn: int = 0
    learn_epoch: int = 0
    log: int | None = None
    log_epoch: int = 1
    report: int = 100
    test: bool = False
    find_lr: int = 0
    edge_learn: int = 0
    edge_stats: int = 0
    edge_sweep: str | None = None
    seed: int = 0
    weights: str | None = None
    weights_ignore: bool = False
    load_state: str | None = None
    nb_test: int = -1
    test_index: int | None = None
    valid_metric: str = "Sensitivity"
    stop_valid: int = 0
    ws: int = 10000
    dev: int = 0
    fuse: bool = False
    export: str | None = None
    out: str = "."
    dry_run: bool = False
    strict: bool = False
    debug: bool = False
    parallel: str = "auto"  # parallel.KINDS: a communicator only under mpiexec unless asked

    @property
    def learning(self):
        return self.learn > 0 or self.learn_epoch > 0


@dataclass
class Run:
    """What every mode works on: the options, the built network and the run folder."""

    opts: Options
    net: object
    out: str
    progress: object = None  # learning.Progress when resuming (-l)
    learned_weights_in: bool = False  # the run folder's best weights were imported (export, test)


@dataclass(frozen=True)
class Mode:
    """One thing a run can do. ``asked(opts)`` says whether the options ask for it; ``check``
    refuses option combinations before anything is parsed or written; ``run`` does it and
    returns True when the run is over (nothing after it runs)."""

    name: str
    asked: Callable[[Options], bool]
    run: Callable[[Run], bool]
    check: Callable[[Options], None] = lambda opts: None


def _check_find_lr(opts):
    if opts.learning or opts.test:
        raise N2D2PyError("-find-lr runs alone and exits: drop -learn, -learn-epoch and -test")


def _edge(r):
    from n2d2py.edge import run as edge_run

    return edge_run.run(r.net, r.opts, r.out)


def _find_lr(r):
    from n2d2py import find_lr

    find_lr.run(r.net, r.opts, r.out)  # spec §7: the range test, then exit; no weights saved
    return True


def _learn(r):
    from n2d2py import learning, run_folder

    if parallel.writes(r.net.device):  # under mpiexec rank 0 alone writes the run folder
        for _, _, target in r.net.targets:
            run_folder.defer(r.out, lambda t=target: t.write_labels_mapping(r.out))
    learning.learn(r.net, r.opts, r.out, r.progress)
    return False


def _use_learned_weights(r):
    """The run folder's best learned weights, unless -w gave weights and nothing was learned;
    a network that starts from a file's values (Type=ONNX) keeps them when none were learned."""
    from n2d2py import weights

    net, opts = r.net, r.opts
    if r.learned_weights_in or (opts.weights and not opts.learning):
        return  # -export then -test: imported once
    r.learned_weights_in = True
    folder = weights.best_weights_dir(r.out, net.provider.size("Validation") > 0)
    # under mpiexec rank 0 looks in the run folder
    if net.pretrained and not opts.learning and not parallel.on_root(net.device, os.path.isdir, folder):
        return
    _import_weights(net, parallel.on_root(net.device, best_weights, net, r.out), False)


EXPORTS = ("ONNX",)  # -export TYPE (N2D2's C/CPP/... exports are not implemented)


def _check_export(opts):
    if opts.export not in EXPORTS:
        raise N2D2PyError(f"-export {opts.export}: not implemented in n2d2py (N2D2's C, CPP, "
                          f"... exports are not; available: {', '.join(EXPORTS)})")


def _export(r):
    from n2d2py.onnx import export

    _use_learned_weights(r)
    print(f"Exported the network to {export.write(r.net, r.out)}")
    return False


def _test(r):
    from n2d2py import evaluation

    net, opts = r.net, r.opts
    _use_learned_weights(r)
    if net.provider.size("Test") == 0:
        raise N2D2PyError("the Test set is empty: nothing to test")
    if opts.fuse:
        _fuse(net)
    if net.spike is not None:  # Transcode: refuse what cannot spike before testing
        from n2d2py.spike import evaluation as spike_evaluation

        spike_evaluation.check(net)
    evaluation.test(net, opts, r.out)
    if net.spike is not None:  # then the spike test on the same stimuli (spec §6.7)
        spike_evaluation.test(net, opts, r.out)
    return True


# In order; each asked-for mode runs until one says the run is over. Edge learning comes first:
# it refuses -learn/-find-lr with an EdgeFc layer and may end the run (its estimation tools).
MODES = (
    Mode("edge", lambda o: True, _edge),
    Mode("find-lr", lambda o: o.find_lr > 0, _find_lr, _check_find_lr),
    Mode("learn", lambda o: o.learning, _learn),
    Mode("export", lambda o: o.export is not None, _export, _check_export),
    Mode("test", lambda o: o.learning or o.test, _test),
)


def run(opts):
    from n2d2py import network

    for mode in MODES:
        if mode.asked(opts):
            mode.check(opts)
    blas_setup.check()
    group = parallel.start(opts.parallel)  # None in a plain run; this rank's Group under mpiexec
    doc = parse_file(opts.ini, Diagnostics(strict=opts.strict))
    model = network.default_model(doc)
    seed = group.on_root(resolve_seed, opts) if group else resolve_seed(opts)
    device = backend.select(model, parallel.device_index(group, opts.dev), seed)
    device.group = group
    net = network.build(doc, device, load_data=not opts.dry_run, seed=seed)
    parallel.check(opts, net)
    print_summary(net, model)
    if opts.dry_run:
        return net
    from n2d2py import limits, run_folder

    limits.check_memory(net)
    if opts.learning or opts.test:  # the test mode will run: a spike test that cannot is
        # refused now, before any learning (N2D2 tests after learning, hence -learn too)
        from n2d2py import unsupported

        unsupported.refuse_untranscodable(net)
    writes = parallel.writes(net.device)  # under mpiexec rank 0 alone writes the run folder
    if writes:
        run_folder.check_output(opts.out, limits.saved_bytes(net) if opts.learning else 0)
        run_folder.acquire(opts.out)  # before anything is written; released however the run ends
    try:
        r = _prepare(opts, net, model, seed)
        with frozen_heap.frozen(plots=opts.learning or opts.test):  # see frozen_heap.py
            for mode in MODES:
                if mode.asked(opts) and mode.run(r):
                    break
    finally:
        if writes:
            run_folder.release(opts.out)
    return net


def _prepare(opts, net, model, seed):
    """Check the options against the built network, lay out the run folder, and set the
    weights: resumed state, imported -w weights, or the initial ones (saved when learning)."""
    from n2d2py import atomic, learning, run_folder, targets, weights

    if opts.valid_metric not in targets.METRICS:
        raise N2D2PyError(f"-valid-metric {opts.valid_metric}: expected one of {', '.join(targets.METRICS)}")
    out = opts.out

    def write_start():
        atomic.atomic_write_text(os.path.join(out, "seed.dat"), f"{seed}\n")
        _write_run_info(out, opts, model, seed)

    writes = parallel.writes(net.device)  # under mpiexec rank 0 alone writes the run folder
    if writes and opts.learning:  # a learning run replaces the previous run's files at its first save
        run_folder.defer(out, write_start)
    elif writes:
        write_start()
    _print_sizes(net)
    net.initialize()
    progress = None
    if opts.load_state:
        progress = learning.load_checkpoint(net, opts.load_state)
        print(f"Resuming from {opts.load_state}: {progress.seen} stimuli already learned")
    elif opts.weights:
        _import_weights(net, opts.weights, opts.weights_ignore)
    elif opts.learning and writes:
        init = os.path.join(out, "weights_init")
        weights.save_weights(net.cells, init, commit=False)
        run_folder.defer(out, lambda: atomic.commit_staged(init))
    return Run(opts, net, out, progress)


def _fuse(net):
    from n2d2py import fuse

    pairs = fuse.fuse_batchnorm(net)
    print(f"Fused {len(pairs)} BatchNorm layer(s) into their Conv: "
          + (", ".join(f"{bn} -> {conv}" for conv, bn in pairs) or "none eligible"))


def _write_run_info(out, opts, model, seed):
    """``run.json``: which INI made this run folder, so that tools (the viewer) can rebuild it.

    A run that learns writes it, and so does any run where no learning run has written one; a
    test, find-lr or spike test of another INI in a folder where one learned (N2D2's flow for
    LeNet_Spike.ini) leaves the learning run's record.
    """
    import json
    import sys

    from n2d2py import __version__, atomic

    path = os.path.join(out, "run.json")
    if not opts.learning and os.path.isfile(path):
        try:
            with open(path, encoding="utf-8") as f:
                if json.load(f).get("learned", True):
                    return
        except (OSError, ValueError, AttributeError):
            pass  # unreadable: replaced below
    info = {"ini": os.path.abspath(opts.ini), "cwd": os.getcwd(), "model": model, "seed": seed,
            "argv": sys.argv[1:], "learned": bool(opts.learning), "n2d2py": __version__,
            "blas": blas_setup.describe()}
    atomic.atomic_write_text(path, json.dumps(info, indent=1) + "\n")


def _print_sizes(net):
    for set_name in ("Learn", "Validation", "Test"):
        print(f"{set_name} set size: {net.provider.size(set_name)} stimuli")


def best_weights(net, out):
    from n2d2py import weights

    path = weights.best_weights_dir(out, net.provider.size("Validation") > 0)
    if not os.path.isdir(path):
        raise N2D2PyError(f"no learned weights in {path}/ (learn first, or give -w DIR)")
    return path


def _import_weights(net, directory, ignore_missing):
    from n2d2py import weights

    if directory == "/dev/null":  # N2D2's way of skipping the default import
        return
    group = net.device.group  # mpiexec: rank 0 reads the files, every rank gets its values
    if group is None:
        missing = weights.load_weights(net.cells, directory, ignore_missing=ignore_missing)
    else:
        missing = group.on_root(weights.load_weights, net.cells, directory, ignore_missing=ignore_missing)
        group.share_params(net.cells)
    for path in missing or []:
        print(f"warning: {path} not found; keeping initial values (-w-ignore)")
    print(f"Weights imported from {directory}/")


MAX_SEED = 2**32 - 1  # N2D2's seeds are unsigned 32-bit integers


def resolve_seed(opts):
    """N2D2's rule: -seed N if given; the checkpoint's when resuming; else seed.dat when only
    testing; else time-based."""
    if opts.seed:
        return opts.seed
    if opts.load_state:
        from n2d2py import weights

        seed = weights.read_state_meta(opts.load_state).get("seed")
        if seed:
            if type(seed) is not int or not 0 < seed <= MAX_SEED:
                raise N2D2PyError(f"checkpoint field seed holds {str(seed)[:40]!r}, not a seed "
                                  f"(1 to {MAX_SEED})", os.path.join(opts.load_state, "state.json"))
            return seed
    path = os.path.join(opts.out, "seed.dat")
    if not opts.learning and os.path.isfile(path):
        text = open(path, errors="replace").read(64).strip()
        if not text.isdigit() or int(text) > MAX_SEED:
            raise N2D2PyError(f"seed file holds '{text[:40]}', not an integer seed (0 to "
                              f"{MAX_SEED})", path)
        return int(text)
    return int(time.time()) % 2**31 or 1


def print_summary(net, model):
    """The dry-run table: one row per layer, then totals."""
    rows = net.summary()
    c, h, w = net.provider.shape
    header = ("Layer", "Type", "Inputs", "Output (CxHxW)", "Params", "MACs/stimulus")
    body = [(net.input_name, "Input", "-", f"{c}x{h}x{w}", "-", "-")]
    body += [(n, t, i, o, f"{p:,}", f"{m:,}") for n, t, i, o, p, m in rows]
    widths = [max(len(str(r[k])) for r in [header] + body) for k in range(len(header))]
    line = "  ".join("{:<%d}" % w for w in widths[:4]) + "  " + "  ".join(
        "{:>%d}" % w for w in widths[4:]
    )
    print(f"Model: {model}   device: {net.device.name}   file: {net.doc.path}")
    blas = blas_setup.describe() if net.device.name == "cpu" else ""
    if blas:
        print(f"BLAS: {blas}")
    print(line.format(*header))
    print("  ".join("-" * w for w in widths))
    for row in body:
        print(line.format(*row))
    total_params = sum(r[4] for r in rows)
    total_macs = sum(r[5] for r in rows)
    print("  ".join("-" * w for w in widths))
    print(f"Total: {len(rows)} layers, {total_params:,} parameters, {total_macs:,} MACs per stimulus")
    for section, cell, _ in net.targets:
        print(f"Target: [{section}] on {cell}")
