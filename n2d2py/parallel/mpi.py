"""The MPI communicator (mpi4py), imported only when n2d2py runs under ``mpiexec``.

Every collective is started non-blocking and waited for here, with a short sleep between
tests (a waiting rank leaves its core to the others: MPICH's blocking calls poll at 100 %
CPU) and a deadline: a rank that gets no answer for ``timeout`` seconds (a process died or
hangs) prints one line and aborts the job, instead of waiting for ever. ``mpiexec`` itself
ends the job when a process is killed; the deadline covers the cases it does not see (a hung
process, a lost host). ``N2D2PY_MPI_TIMEOUT`` sets it (seconds, default 600: rank 0 writes
the weights and checkpoints of a log step while the others wait for the next step).

CuPy arrays are staged through host memory (a CUDA-aware MPI is not assumed); on GPUs the
NCCL communicator sums device arrays without that copy.
"""

import os
import pickle
import sys
import time

import numpy as np

from n2d2py.errors import N2D2PyError
from n2d2py.parallel.communicator import Communicator

DEFAULT_TIMEOUT = 600.0
SPIN = 0.002  # seconds of busy testing before a waiting rank starts sleeping
_LOCAL_RANK_VARS = ("MPI_LOCALRANKID", "OMPI_COMM_WORLD_LOCAL_RANK", "MV2_COMM_WORLD_LOCAL_RANK",
                    "SLURM_LOCALID", "PMIX_LOCAL_RANK")


def timeout_from_env():
    text = os.environ.get("N2D2PY_MPI_TIMEOUT", "").strip()
    if not text:
        return DEFAULT_TIMEOUT
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if value <= 0:
        raise N2D2PyError(f"N2D2PY_MPI_TIMEOUT={text}: expected a number of seconds > 0")
    return value


def local_rank(rank):
    for var in _LOCAL_RANK_VARS:
        value = os.environ.get(var, "")
        if value.isdigit():
            return int(value)
    return rank


class MPICommunicator(Communicator):
    name = "mpi"

    def __init__(self, comm=None, timeout=None):
        try:
            from mpi4py import MPI
        except ImportError as exc:
            raise N2D2PyError(f"running under mpiexec needs mpi4py ({exc}): pip install "
                              "'n2d2py[mpi]'") from None
        self.MPI = MPI
        self.comm = comm if comm is not None else MPI.COMM_WORLD
        self.comm.Set_errhandler(MPI.ERRORS_RETURN)  # failures come back as exceptions
        self.rank = self.comm.Get_rank()
        self.size = self.comm.Get_size()
        self.local_rank = local_rank(self.rank)
        self.timeout = timeout if timeout is not None else timeout_from_env()

    # -- waiting -------------------------------------------------------------------------
    def _wait(self, request, what):
        """Test ``request`` without sleeping for SPIN seconds (a step's sum takes ~0.3 ms),
        then with sleeps growing to 1 ms, until it completes or the deadline passes."""
        now = time.monotonic()
        spin_until, deadline = now + SPIN, now + self.timeout
        delay = 0.0
        try:
            while not request.Test():
                now = time.monotonic()
                if now > deadline:
                    self._fail(f"no answer from the other ranks for {self.timeout:g} s during "
                               f"{what} (a process died or hangs; N2D2PY_MPI_TIMEOUT sets the wait)")
                if now > spin_until:
                    time.sleep(delay)
                    delay = min(2 * delay or 5e-5, 1e-3)
        except self.MPI.Exception as exc:
            self._fail(f"MPI failed during {what}: {exc.Get_error_string()}")

    def _fail(self, message):
        print(f"error: rank {self.rank} of {self.size}: {message}; stopping all ranks",
              file=sys.stderr, flush=True)
        self.abort(3)

    # -- collectives -----------------------------------------------------------------------
    def allreduce(self, array):
        if type(array).__module__.startswith("cupy"):
            host = array.get()
            self.allreduce(host)
            array.set(host)
            return array
        self._wait(self.comm.Iallreduce(self.MPI.IN_PLACE, array, op=self.MPI.SUM), "a sum")
        return array

    def bcast_array(self, array):
        if type(array).__module__.startswith("cupy"):
            host = array.get()
            self.bcast_array(host)
            array.set(host)
            return array
        self._wait(self.comm.Ibcast(array, root=0), "a broadcast")
        return array

    def bcast(self, obj):
        data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL) if self.rank == 0 else b""
        length = self.bcast_array(np.array([len(data)], np.int64))[0]
        buffer = np.frombuffer(data, np.uint8).copy() if self.rank == 0 else np.empty(length, np.uint8)
        self.bcast_array(buffer)
        return obj if self.rank == 0 else pickle.loads(buffer.tobytes())

    def gather(self, obj):
        data = np.frombuffer(pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL), np.uint8)
        lengths = np.zeros(self.size, np.int64)
        lengths[self.rank] = len(data)
        self.allreduce(lengths)
        received = np.empty(int(lengths.sum()) if self.rank == 0 else 0, np.uint8)
        spec = [received, (lengths, np.concatenate([[0], np.cumsum(lengths)[:-1]])), self.MPI.BYTE]
        self._wait(self.comm.Igatherv(data, spec if self.rank == 0 else None, root=0), "a gather")
        if self.rank != 0:
            return None
        bounds = np.concatenate([[0], np.cumsum(lengths)])
        return [pickle.loads(received[a:b].tobytes()) for a, b in zip(bounds[:-1], bounds[1:])]

    def abort(self, code):
        sys.stdout.flush()
        sys.stderr.flush()
        time.sleep(0.5)  # mpiexec forwards the error line before it tears the job down
        try:
            self.comm.Abort(code)  # MPICH may return from it while the job is being torn down
        finally:
            os._exit(code)  # an exit without MPI_Finalize: mpiexec ends the other ranks
