"""Data-parallel learning over several processes: ``mpiexec -n N n2d2py MODEL.ini -learn ...``.

A plain run never imports MPI: ``start`` returns None unless n2d2py was launched by a process
manager with more than one rank (``mpiexec``/``mpirun``/``srun`` set PMI_*, OMPI_COMM_WORLD_*
or MV2_* variables) or ``--parallel`` asks for a communicator. The Group it returns hangs on
``device.group``; the learning loop, evaluation, Dropout and BatchNorm ask it through the
helpers below, which do what one process does when there is no group.

Modules: ``communicator`` (the interface and its single-process implementation), ``mpi``
(mpi4py), ``nccl`` (CuPy's NCCL, not run here), ``group`` (slices, the packed all-reduce of a
learning step, score reduction), ``slices`` (the micro-slices that make batch sums independent
of the number of ranks and threads).
"""

import os
import sys

from n2d2py.errors import N2D2PyError

KINDS = ("auto", "off", "single", "mpi", "nccl")
_RANK_VARS = ("PMI_RANK", "OMPI_COMM_WORLD_RANK", "MV2_COMM_WORLD_RANK", "PMIX_RANK")
_SIZE_VARS = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE")


def launched():
    """(rank, size) from the process manager's environment, or None outside one. ``size`` is
    None when the manager does not say it (PMIx)."""
    rank = next((os.environ[v] for v in _RANK_VARS if os.environ.get(v, "").isdigit()), None)
    if rank is None:
        return None
    size = next((int(os.environ[v]) for v in _SIZE_VARS if os.environ.get(v, "").isdigit()), None)
    return int(rank), size


def start(kind="auto"):
    """The Group of this process, or None for a plain single-process run."""
    if kind not in KINDS:
        raise N2D2PyError(f"--parallel {kind}: expected one of {', '.join(KINDS)}")
    env = launched()
    if kind == "off" or (kind == "auto" and (env is None or env[1] == 1)):
        return None
    from n2d2py.parallel.group import Group

    if kind == "single":
        from n2d2py.parallel.communicator import SingleCommunicator

        return Group(SingleCommunicator())
    if kind == "nccl":
        from n2d2py.parallel.nccl import NCCLCommunicator as cls
    else:
        from n2d2py.parallel.mpi import MPICommunicator as cls
    comm = cls()
    if comm.size == 1 and kind == "auto":
        return None
    group = Group(comm)
    if not group.root:
        quiet()
    else:
        _notice_inexact(group.size)
    global current
    current = group
    return group


current = None  # this process's Group once start() made one


def _notice_inexact(size):
    """One line when N processes will not compute one process's bits (``slices``)."""
    from n2d2py.parallel import slices

    if not slices.divides(size):
        print(f"note: {size} processes do not divide a batch's {slices.MICRO_SLICES} "
              f"micro-slices: their gradient sums round differently from one process's, so the "
              f"weights may drift from a one-process run (1, 2, 4 or 8 processes learn its "
              f"bits)", file=sys.stderr, flush=True)


def rank_prefix():
    """'rank r of N: ' for the error lines of a rank other than 0, else ''."""
    if current is None or current.root:
        return ""
    return f"rank {current.rank} of {current.size}: "


def abort(code):
    """After an error on this rank: end the other ranks of a run of several (no-op alone)."""
    if current is not None and current.size > 1:
        current.comm.abort(code)


def quiet():
    """A rank other than 0 prints nothing on stdout and shows no progress bar (its errors
    still reach stderr)."""
    os.environ["TQDM_DISABLE"] = "1"
    sys.stdout = open(os.devnull, "w")


def group_of(device):
    return getattr(device, "group", None)


def writes(device):
    """Whether this process writes the run folder: rank 0, or a plain run."""
    group = group_of(device)
    return group is None or group.root


def on_root(device, fn, *args, **kwargs):
    """``fn(*args)``; under a group run on rank 0 alone (files that may exist there only) and
    its result, or its N2D2PyError, handed to every rank."""
    group = group_of(device)
    return fn(*args, **kwargs) if group is None else group.on_root(fn, *args, **kwargs)


def device_index(group, dev):
    """The GPU of this rank: ``-dev`` plus its rank among the processes of its host."""
    return dev + (group.comm.local_rank if group is not None else 0)


def check(opts, net):
    """Refuse, by name, what does not run in parallel yet."""
    if group_of(net.device) is None:
        return
    refused = [(opts.find_lr, "-find-lr"), (opts.edge_learn, "-edge-learn"),
               (opts.edge_stats, "-edge-stats"), (opts.edge_sweep, "-edge-sweep"),
               (opts.test_index is not None, "-test-index"),
               (opts.test and net.spike is not None, "the spike test of a Transcode model (-test)")]
    for given, name in refused:
        if given:
            raise N2D2PyError(f"{name} runs in one process: run it without mpiexec")


# -- what cells ask (no group: exactly what one process computes) ---------------------------


def batch_random(device, shape):
    """Uniform [0, 1) numbers of ``shape`` for a learning batch (Dropout's mask): under a
    group, this rank's rows of the whole batch's draw."""
    group = group_of(device)
    if group is None or group.batch is None:
        return device.rng.random(shape)
    return group.random(device.rng, shape)


def batch_mean_var(device, x, axes):
    """(mean, biased variance, count) over ``axes`` of a learning batch (BatchNorm): sums per
    micro-slice added in slice order (``slices.exchange``), over the ranks under a group."""
    from n2d2py.parallel import slices

    cut = slices.cut(device, len(x))
    count = cut.rows * (x[0].size // x.shape[1])
    dtype = x.dtype
    mean = (slices.exchange(device, cut, [x[a:b].sum(axis=axes) for a, b in cut.bounds])
            / count).astype(dtype)
    shape = [1] * x.ndim
    shape[1] = -1
    centred = mean.reshape(shape)
    squares = [((x[a:b] - centred) ** 2).sum(axis=axes) for a, b in cut.bounds]
    return mean, (slices.exchange(device, cut, squares) / count).astype(dtype), count


def batch_means(device, arrays, axes):
    """Means over ``axes`` of a learning batch of each of ``arrays`` (BatchNorm's backward),
    summed per micro-slice as ``batch_mean_var`` does, in one exchange."""
    from n2d2py.parallel import slices

    a0 = arrays[0]
    cut = slices.cut(device, len(a0))
    count = cut.rows * (a0[0].size // a0.shape[1])
    xp = device.xp
    partials = [xp.stack([a[s:e].sum(axis=axes) for a in arrays]) for s, e in cut.bounds]
    return list((slices.exchange(device, cut, partials) / count).astype(a0.dtype))
