"""The NCCL communicator: one rank per GPU, device arrays summed by NCCL (``cupy.cuda.nccl``)
without a copy to the host; host arrays and objects go through MPI (``MPICommunicator``),
which also hands every rank NCCL's unique id.

NOT RUN: it was written for the interface and read against CuPy's NCCL binding, but the
machine it was written on has no GPU. ``--parallel nccl`` selects it; ``mpiexec`` still
launches the ranks, and each rank uses GPU ``-dev`` + its local rank.
"""

from n2d2py.errors import N2D2PyError
from n2d2py.parallel.mpi import MPICommunicator


class NCCLCommunicator(MPICommunicator):
    name = "nccl"

    def __init__(self, comm=None, timeout=None):
        super().__init__(comm, timeout)
        try:
            from cupy.cuda import nccl
        except ImportError as exc:
            raise N2D2PyError(f"--parallel nccl needs CuPy with NCCL ({exc})") from None
        self.nccl = nccl
        uid = self.bcast(nccl.get_unique_id() if self.rank == 0 else None)
        self.nccl_comm = nccl.NcclCommunicator(self.size, uid, self.rank)
        self._types = {"float32": nccl.NCCL_FLOAT32, "float64": nccl.NCCL_FLOAT64,
                       "float16": nccl.NCCL_FLOAT16, "int64": nccl.NCCL_INT64,
                       "int32": nccl.NCCL_INT32, "uint8": nccl.NCCL_UINT8}

    def _device_args(self, array):
        import cupy

        kind = self._types.get(array.dtype.name)
        if kind is None or not array.flags.c_contiguous:
            return None
        return array.data.ptr, array.size, kind, cupy.cuda.get_current_stream().ptr

    def allreduce(self, array):
        args = self._device_args(array) if type(array).__module__.startswith("cupy") else None
        if args is None:
            return super().allreduce(array)
        ptr, count, kind, stream = args
        self.nccl_comm.allReduce(ptr, ptr, count, kind, self.nccl.NCCL_SUM, stream)
        return array

    def bcast_array(self, array):
        args = self._device_args(array) if type(array).__module__.startswith("cupy") else None
        if args is None:
            return super().bcast_array(array)
        ptr, count, kind, stream = args
        self.nccl_comm.bcast(ptr, count, kind, 0, stream)
        return array
