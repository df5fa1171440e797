"""The communicator interface (ChainerMN's design): what data-parallel learning needs from a
transport, and the single-process implementation.

Four operations, each collective (every rank calls it, in the same order):

- ``allreduce(array)``: element-wise sum over the ranks, in place (numpy or CuPy array);
- ``bcast(obj)``: rank 0's picklable object on every rank;
- ``gather(obj)``: the list of every rank's object on rank 0 (None elsewhere);
- ``bcast_array(array)``: rank 0's values copied into ``array`` on every rank, in place.

and ``abort(code)``, which ends every rank at once (after a failure on one of them). ``rank``,
``size`` and ``local_rank`` (the rank among the processes of its host: which GPU to use) say
where a process stands. Implementations: ``SingleCommunicator`` here (one process: every
operation is the identity), ``mpi.MPICommunicator`` (mpi4py) and ``nccl.NCCLCommunicator``
(CuPy's NCCL for device arrays, MPI for the rest).
"""

import sys


class Communicator:
    """Base of the communicators: documents the contract; subclasses implement it."""

    name = "?"
    rank = 0
    size = 1
    local_rank = 0

    def allreduce(self, array):
        """Sum ``array`` over all ranks, in place; returns it."""
        raise NotImplementedError

    def bcast(self, obj):
        """Rank 0's ``obj`` on every rank."""
        raise NotImplementedError

    def bcast_array(self, array):
        """Rank 0's values of ``array`` copied into ``array`` on every rank; returns it."""
        raise NotImplementedError

    def gather(self, obj):
        """[obj of rank 0, obj of rank 1, ...] on rank 0; None on the other ranks."""
        raise NotImplementedError

    def abort(self, code):
        """End every rank now with exit status ``code``."""
        raise NotImplementedError

    def __repr__(self):
        return f"{type(self).__name__}(rank {self.rank} of {self.size})"


class SingleCommunicator(Communicator):
    """One process: the sums, broadcasts and gathers of one rank are the identity."""

    name = "single"

    def allreduce(self, array):
        return array

    def bcast(self, obj):
        return obj

    def bcast_array(self, array):
        return array

    def gather(self, obj):
        return [obj]

    def abort(self, code):
        sys.exit(code)
