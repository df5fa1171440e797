"""The array backend: numpy on the CPU or CuPy on a GPU, chosen once per run.

Everything numerical takes ``xp`` from a Device (cells) or from its input arrays
(``array_module``); the few numpy/CuPy differences are wrapped here and only here: compiled
CPU kernels (``cpu_kernels``) and the CPU worker threads (``split_batch``/``run_split``).
"""

import os
import sys
import threading
from dataclasses import dataclass

import numpy as np


@dataclass
class Device:
    name: str  # "cpu" or "cuda:N"
    xp: object  # numpy or cupy
    rng: np.random.Generator  # host RNG seeded by -seed: fillers, partitions, shuffling, dropout
    group: object = None  # parallel.group.Group under mpiexec (this rank's part of each batch)

    def asarray(self, a, dtype=np.float32):
        return self.xp.asarray(a, dtype=dtype)

    def to_host(self, a):
        return to_host(a)

    def synchronize(self):
        if self.xp is not np:
            self.xp.cuda.Stream.null.synchronize()

    def reseed(self, seed):
        self.rng = np.random.default_rng(seed)


def to_host(a, copy=False):
    """A numpy array of ``a`` (a numpy or CuPy array, or a sequence); ``copy=True`` never
    shares memory with ``a`` (a CuPy array's ``get()`` is always a copy)."""
    if hasattr(a, "get"):
        return a.get()
    return np.array(a, copy=True) if copy else np.asarray(a)


def cpu(seed=0):
    return Device("cpu", np, np.random.default_rng(seed))


def select(model="Frame", dev=0, seed=0, stream=None):
    """Device for an N2D2 ``DefaultModel``; ``*_CUDA`` falls back to numpy with a warning."""
    if not model.endswith("_CUDA"):
        return cpu(seed)
    try:
        import cupy

        cupy.cuda.Device(dev).use()
        return Device(f"cuda:{dev}", cupy, np.random.default_rng(seed))
    except Exception as exc:  # CuPy missing, no driver, no such device
        base = model[: -len("_CUDA")]
        print(
            f"warning: {model} needs CuPy and a GPU ({type(exc).__name__}: {exc}); "
            f"using the {base} model on the CPU instead",
            file=stream or sys.stderr,
        )
        return cpu(seed)


def array_module(a):
    """numpy or cupy, whichever owns ``a``."""
    return sys.modules["cupy"] if type(a).__module__.startswith("cupy") else np


def scatter_add(target, index, values):
    """``target[index] += values`` with repeated indices accumulated (numpy.add.at)."""
    xp = array_module(target)
    if xp is np:
        np.add.at(target, index, values)
    else:
        import cupyx

        cupyx.scatter_add(target, index, values)


def keep_freed_memory():
    """Ask glibc's malloc to keep freed memory for reuse rather than hand it back to the
    system (done once, for the CPU). numpy allocates each cell's outputs and gradients anew at
    every batch; blocks of a few MB above malloc's mmap threshold, or freed at the top of the
    heap, otherwise return to the system and cost page faults again at the next batch: 8
    GEMMs writing fresh 1.2 MB arrays measured 13-22 ms here instead of 1.7 ms. The process
    then keeps its peak working set resident between batches (what one step needs anyway).
    No-op where the C library has no ``mallopt`` (not glibc)."""
    global _malloc_tuned
    if _malloc_tuned:
        return
    _malloc_tuned = True
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return
    m_trim_threshold, m_mmap_threshold = -1, -3
    mallopt(m_trim_threshold, (1 << 31) - 1)
    if not mallopt(m_mmap_threshold, 1 << 30):
        mallopt(m_mmap_threshold, 32 << 20)  # the largest older glibc versions accept


_malloc_tuned = False


def cpu_kernels(a):
    """The compiled CPU kernels (the ``n2d2py.kernels`` package, numba) for a numpy array, None
    for a CuPy one. The one place that picks them: callers run the kernel when given one, else
    the xp path that computes the same values on either array module."""
    if type(a).__module__.startswith("cupy"):
        return None
    keep_freed_memory()
    from n2d2py import kernels  # imported on first use: numba loads in ~0.5 s

    return kernels


# -- CPU worker threads -------------------------------------------------------------------
# On the CPU a cell splits its batch into one chunk per thread and runs the chunks at once:
# numpy's GEMMs and the compiled kernels release the GIL. Threads that block when idle,
# rather than OpenMP's or OpenBLAS's busy-waiting ones, keep a shared machine usable: on a
# loaded 2-core machine busy-waiting pools slowed LeNet's step 20-50×. For the same reason
# numpy's OpenBLAS is set to one thread (their GEMMs are per chunk; with one n2d2py thread too,
# so that a GEMM's result never depends on the number of threads).
# A call costs a thread wake-up (~10-20 µs), so small operations stay on the caller.

MIN_CHUNK_WORK = 1 << 18  # elementary operations below which a chunk is not worth a thread
# Multiply-adds of a GEMM (BLAS) per elementary operation of MIN_CHUNK_WORK: a convolution's
# batch is split from about 8 M of them. Below, the threads' hand-offs (the Python loop over
# groups of images takes the GIL between every call) cost more than they save: LeNet-sized
# layers of 3-4 M multiply-adds ran 1.5-2.5× slower on two threads than on one.
GEMM_WORK = 32
_workers = None
_workers_lock = threading.Lock()


def cpu_threads():
    """Threads for n2d2py's CPU work: OMP_NUM_THREADS when set, else the usable cores, at most
    8 (a split wakes its workers one by one; only 1 and 2 threads were measured)."""
    env = os.environ.get("OMP_NUM_THREADS", "").strip()
    if env.isdigit() and int(env) > 0:
        return int(env)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, min(cores or 1, 8))


class _Worker:
    """A daemon thread that runs one call at a time, handed over through two locks."""

    def __init__(self):
        self._go, self._done = threading.Lock(), threading.Lock()
        self._go.acquire()
        self._done.acquire()
        self._call = self._outcome = None
        threading.Thread(target=self._loop, name="n2d2py-cpu", daemon=True).start()

    def _loop(self):
        while True:
            self._go.acquire()
            fn, args = self._call
            try:
                self._outcome = (fn(*args), None)
            except BaseException as exc:  # raised again in the caller
                self._outcome = (None, exc)
            self._done.release()

    def start(self, fn, args):
        self._call = (fn, args)
        self._go.release()

    def wait(self):
        """(result, exception or None) of the call started last."""
        self._done.acquire()
        outcome, self._outcome = self._outcome, None
        return outcome


class _Pool:
    def __init__(self, threads):
        self.threads = threads
        self.workers = [_Worker() for _ in range(threads - 1)]
        self.busy = threading.Lock()  # one split at a time; another caller runs serially


def _pool():
    """The worker threads (the caller runs one chunk itself), or None with one CPU thread."""
    global _workers
    with _workers_lock:
        if _workers is None:
            threads = cpu_threads()
            _workers = _Pool(threads) if threads > 1 else False
            _single_threaded_blas()  # also with one thread: BLAS's results then never depend
            # on its thread count (OpenBLAS's GEMM sums in another order on 2 threads)
    return _workers or None


def stack_gemm_is_loop(a):
    """Whether ``matmul`` on a stack of matrices computes each matrix as ``matmul`` on it alone
    would, for arrays like ``a``: numpy runs one BLAS GEMM per matrix (checked bit for bit in
    tests/parallel/test_slices.py); CuPy runs a batched GEMM that may pick other kernels."""
    return type(a).__module__ == "numpy"


def cpu_setup(a):
    """Before a GEMM on a numpy ``a`` that no split has preceded: the worker threads made and
    BLAS set to one thread (``_pool``), so that its results do not depend on the call order."""
    if type(a).__module__ == "numpy":
        _pool()


def _forget_pool():
    global _workers, _workers_lock
    _workers, _workers_lock = None, threading.Lock()  # a forked child has none of the threads


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool)


def _single_threaded_blas():
    """Set numpy's OpenBLAS (found among the loaded libraries) to one thread, if it is one."""
    import ctypes

    try:
        with open("/proc/self/maps") as maps:
            paths = {line.split()[-1] for line in maps if "openblas" in line and "/" in line}
    except OSError:
        return
    names = ("scipy_openblas_set_num_threads64_", "scipy_openblas_set_num_threads",
             "openblas_set_num_threads64_", "openblas_set_num_threads")
    for path in paths:
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for name in names:
            if hasattr(lib, name):
                getattr(lib, name)(1)
                break


def split_batch(a, n, work, slices=None):
    """(start, stop) chunks of ``range(n)``: one per CPU thread for a numpy ``a`` when the
    ``work`` (elementary operations over the whole batch) is worth it, else one chunk. With
    ``slices`` (the (start, stop) micro-slices tiling ``range(n)``, ``parallel.slices``) each
    chunk is a union of whole, consecutive slices."""
    pool = _pool() if type(a).__module__ == "numpy" else None
    pieces = n if slices is None else len(slices)
    parts = min(pool.threads, pieces, max(1, work // MIN_CHUNK_WORK)) if pool else 1
    if slices is None:
        bounds = [n * i // parts for i in range(parts + 1)]
    else:
        bounds = [slices[pieces * i // parts][0] for i in range(parts)] + [n]
    return list(zip(bounds[:-1], bounds[1:]))


def run_split(chunks, fn, *per_chunk):
    """[fn(start, stop, *items) for each chunk], the chunks run at once on the worker threads;
    ``per_chunk``: lists with one item per chunk (what the forward kept for the backward)."""
    calls = [(a, b, *(items[i] for items in per_chunk)) for i, (a, b) in enumerate(chunks)]
    pool = _pool() if len(calls) > 1 else None
    if pool is None or not pool.busy.acquire(blocking=False):
        return [fn(*args) for args in calls]
    try:
        started = []
        for worker, args in zip(pool.workers, calls[1:]):
            worker.start(fn, args)
            started.append(worker)
        try:
            first = fn(*calls[0])
        finally:
            outcomes = [worker.wait() for worker in started]  # never leave one writing behind
        for _, error in outcomes:
            if error is not None:
                raise error
        rest = [fn(*args) for args in calls[1 + len(started):]]  # more chunks than workers
        return [first] + [result for result, _ in outcomes] + rest
    finally:
        pool.busy.release()


def add(a, b):
    """a + b; for numpy arrays of one shape and dtype, C-contiguous, the batch's chunks on the
    worker threads (the same values: a gradient that two cells send to one input was one
    serial pass)."""
    same = type(b) is type(a) and a.shape == b.shape and a.dtype == b.dtype
    if (type(a).__module__ != "numpy" or not same or a.ndim < 2
            or not (a.flags.c_contiguous and b.flags.c_contiguous)):
        return a + b
    out = np.empty_like(a)
    chunks = split_batch(a, len(a), a.size // 2)  # memory-bound, as ``activations.by_image``
    run_split(chunks, lambda lo, hi: np.add(a[lo:hi], b[lo:hi], out=out[lo:hi]))
    return out


def sliding_window_view(x, window_shape, axis):
    xp = array_module(x)
    return xp.lib.stride_tricks.sliding_window_view(x, window_shape, axis=axis)
