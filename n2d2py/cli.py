"""The ``n2d2py`` command: N2D2's single-dash options, verbatim, mapped onto runner.Options.

No numerics here. User errors print as one line and exit with status 2; tracebacks only with
``--debug``.
"""

import sys

import click

from n2d2py import __version__
from n2d2py.errors import N2D2PyError, did_you_mean
from n2d2py.unsupported import N2D2_OPTIONS

# N2D2 options that n2d2py does not implement yet: accepted by name, refused clearly.
NOT_YET = {
    "-check": "the numerical gradient check",
    "-bench": "per-layer timings",
    "-cfg": "writing <cell>.cfg files",
    "-log-outputs": "dumping layer outputs",
    "-log-kernels": "dumping kernels",
    "-log-json": "JSON annotations",
    "-log-db-stats": "dataset statistics",
    "-pre-samples": "pre-processed samples",
    "-save-test-set": "exporting the test set",
    "-calib": "calibration",
    "-learn-stdp": "STDP learning",
    "-test-id": "testing one stimulus by id",
    "-multidev": "multi-GPU runs",
}
NOT_YET.update(N2D2_OPTIONS)  # the other N2D2 options n2d2py lacks (n2d2py/unsupported.py)


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("ini", type=click.Path(dir_okay=False))
@click.option("-learn", "learn", type=click.IntRange(0), default=None, help="Learn N stimuli (random batches).")
@click.option("-learn-epoch", "learn_epoch", type=click.IntRange(0), default=None, help="Learn N epochs.")
@click.option("-log", "log", type=click.IntRange(1), default=None, help="Stimuli between logs/validations [1000, or an epoch with -learn-epoch].")
@click.option("-log-epoch", "log_epoch", type=click.IntRange(1), default=1, help="Epochs between logs with -learn-epoch [1].")
@click.option("-report", "report", type=click.IntRange(1), default=100, help="Stimuli between progress updates [100].")
@click.option("-find-lr", "find_lr", type=click.IntRange(1), default=None, help="Learning-rate range test over N stimuli, suggest a rate, exit.")
@click.option("-edge-learn", "edge_learn", type=click.IntRange(1), default=None, help="EdgeFc: learn N Learn stimuli in one pass, save its state.")
@click.option("-edge-stats", "edge_stats", type=click.IntRange(1), default=None, help="EdgeFc: spike statistics of N Learn stimuli, suggest NumWeights, exit.")
@click.option("-edge-sweep", "edge_sweep", default=None, help="EdgeFc: neurons-per-class sweep on one CLASS (loss, neurons learned), exit.")
@click.option("-test", "test", is_flag=True, help="Test on the Test set.")
@click.option("-seed", "seed", type=click.IntRange(0, 2**32 - 1), default=0, help="Random seed (0: time-based, or read back from seed.dat).")
@click.option("-w", "weights", default=None, help="Import weights from DIR (N2D2 .syntxt).")
@click.option("-w-ignore", "weights_ignore", is_flag=True, help="Missing weight files keep their initial values.")
@click.option("-l", "load_state", default=None, help="Resume from a saved state DIR (weights + solvers).")
@click.option("-nb-test", "nb_test", type=int, default=-1, help="Test only the first N stimuli.")
@click.option("-test-index", "test_index", type=click.IntRange(0), default=None, help="Test only stimulus I of the Test set (spike models: its counts and a plot).")
@click.option("-valid-metric", "valid_metric", default="Sensitivity", help="Metric for the best validation score.")
@click.option("-stop-valid", "stop_valid", type=click.IntRange(0), default=0, help="Stop after N validations without improvement.")
@click.option("-ws", "ws", type=click.IntRange(1), default=10000, help="Window (stimuli) of the learning success average.")
@click.option("-fuse", "fuse", is_flag=True, help="Fold each BatchNorm into the Conv before it, for testing.")
@click.option("-export", "export", default=None, help="Export the learned network (ONNX only: export_ONNX_float32/model.onnx), after any -learn.")
@click.option("-dev", "dev", type=click.IntRange(0), default=0, help="CUDA device for *_CUDA models.")
@click.option("-v", "version", is_flag=True, help="Print the version and exit.")
@click.option("-o", "--out", "out", default=".", help="Run folder [current directory, as in N2D2].")
@click.option("--dry-run", "dry_run", is_flag=True, help="Parse and build, print the layer table, exit.")
@click.option("--strict", "strict", is_flag=True, help="Unused or unknown keys are errors.")
@click.option("--debug", "debug", is_flag=True, help="Show tracebacks.")
@click.option("--parallel", "parallel", type=click.Choice(["auto", "off", "single", "mpi", "nccl"]), default="auto",
              help="Data-parallel communicator: auto = MPI when launched by mpiexec with several ranks [auto].")
def command(**kwargs):
    """Simulate the network described by the N2D2 INI file INI."""
    if kwargs.pop("version"):
        click.echo(f"n2d2py {__version__}")
        return
    from n2d2py import runner

    debug = kwargs["debug"]
    kwargs["find_lr"] = kwargs["find_lr"] or 0
    kwargs["edge_learn"], kwargs["edge_stats"] = kwargs["edge_learn"] or 0, kwargs["edge_stats"] or 0
    try:
        _check_counts(kwargs)
        runner.run(runner.Options(**kwargs))
    except N2D2PyError as exc:
        if debug:
            raise
        from n2d2py import parallel

        click.echo(f"error: {parallel.rank_prefix()}{exc}", err=True)
        parallel.abort(2)  # under mpiexec the other ranks stop too, instead of waiting
        sys.exit(2)
    except OSError as exc:  # an output problem met outside the atomic writers
        from n2d2py.atomic import OUTPUT_ERRNOS, output_error

        if debug or exc.errno not in OUTPUT_ERRNOS:
            raise
        click.echo(f"error: {output_error(exc, exc.filename or kwargs['out'])}", err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)


def _check_counts(kwargs):
    """Counts that would make a run do nothing are refused, not run silently."""
    for option, key in (("-learn", "learn"), ("-learn-epoch", "learn_epoch")):
        if kwargs[key] == 0:
            raise N2D2PyError(f"{option} 0 learns nothing: give a count of at least 1 (or leave "
                              f"{option} out)")
        kwargs[key] = kwargs[key] or 0
    if kwargs["nb_test"] == 0 or kwargs["nb_test"] < -1:
        raise N2D2PyError(f"-nb-test {kwargs['nb_test']} tests nothing: give a count of at least "
                          "1 (or leave -nb-test out to test the whole Test set)")


def _known_options():
    names = set()
    for param in command.params:
        names.update(getattr(param, "opts", []))
    return names | {"-h", "--help"}


def check_arguments(argv):
    """Refuse unknown and not-yet-implemented options before click sees them."""
    known = _known_options()
    for arg in argv:
        if not arg.startswith("-") or arg == "-" or _is_number(arg) or arg in known:
            continue
        if arg in NOT_YET:
            raise N2D2PyError(f"option {arg} ({NOT_YET[arg]}) is not implemented in n2d2py yet")
        hint = did_you_mean(arg, sorted(known | set(NOT_YET)), "{}")
        raise N2D2PyError(f"unknown option {arg}{hint} (see n2d2py --help)")


def _is_number(text):
    try:
        float(text)
        return True
    except ValueError:
        return False


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        check_arguments(argv)
    except N2D2PyError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    command.main(args=argv, prog_name="n2d2py", standalone_mode=True)
