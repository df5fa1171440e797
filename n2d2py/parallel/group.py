"""Data parallelism over a communicator: which stimuli a rank computes, one learning step
(forward and backward on this rank's slice, ONE packed all-reduce), score reduction.

The rule that makes N processes compute what one does: ``BatchSize`` is the global batch.
Every rank walks the same stream of global batches (same seed, same shuffles); rank r of N
computes the stimuli ``[r·n/N, (r+1)·n/N)`` of a batch of n. Random numbers that depend on
the batch (Dropout's masks, on-the-fly transformations) are drawn for the whole batch on
every rank, from the same generators, and each rank keeps its slice; BatchNorm's statistics
are summed over the ranks (synchronised BatchNorm). Sums over the batch are taken per
micro-slice (``slices``), so that N ranks, N dividing 8, compute the bits one process does. A
batch smaller than N (the last one of an epoch) is computed whole by every rank, and only rank
0's gradients are summed.

Validation and test are split in contiguous ranges of the set, one per rank; their counts
(confusion matrices, misclassified stimuli, classif.log lines in set order) are gathered.
"""

from dataclasses import dataclass

import numpy as np


@dataclass
class Slice:
    """The learning batch being computed: this rank's rows ``lo:hi`` of ``n``."""

    lo: int
    hi: int
    n: int
    replicated: bool  # every rank computes the whole batch (n < ranks)


class Group:
    """This process's place among the ranks of one data-parallel run."""

    def __init__(self, comm):
        self.comm = comm
        self.rank, self.size = comm.rank, comm.size
        self.batch = None  # the Slice while a learning batch runs forward and backward
        self.comm_seconds = 0.0  # time spent in the step's all-reduce (benchmarks read it)

    @property
    def root(self):
        return self.rank == 0

    def part(self, n):
        """(lo, hi): the rows of a learning batch of ``n`` this rank computes."""
        if n < self.size:
            return 0, n
        return self.rank * n // self.size, (self.rank + 1) * n // self.size

    def share(self, n):
        """(lo, hi): this rank's contiguous range of a set of ``n`` stimuli (may be empty)."""
        return self.rank * n // self.size, (self.rank + 1) * n // self.size

    # -- reading ---------------------------------------------------------------------------
    def reader(self, provider, set_name, chunks, rng, learning):
        """The producer of this rank's batches (see StimuliProvider._iterate). ``learning``:
        (x of this rank's slice, labels and ids of the whole batch) per global batch; else
        (x, labels, ids) of this rank's range of the set, in batches of at most BatchSize."""
        draws = bool(chunks) and provider.draws_at_read(set_name)
        db = provider.database

        def learning_batches():
            for positions in chunks:
                lo, hi = self.part(len(positions))
                if draws:  # the whole batch's random numbers, this rank's slice
                    x, labels, ids = provider.read(set_name, positions, rng)
                    yield x[lo:hi], labels, ids
                else:
                    x = provider.read(set_name, positions[lo:hi], rng)[0]
                    yield x, db.labels(set_name, positions), db.ids(set_name, positions)

        def range_batches():
            lo, hi = self.share(sum(len(c) for c in chunks))
            start = 0
            for positions in chunks:
                a, b = max(lo - start, 0), min(hi - start, len(positions))
                begins, start = start, start + len(positions)
                if draws and begins < hi:  # earlier batches still draw their numbers
                    x, labels, ids = provider.read(set_name, positions, rng)
                    if a < b:
                        yield x[a:b], labels[a:b], ids[a:b]
                elif a < b:
                    yield provider.read(set_name, positions[a:b], rng)

        return learning_batches if learning else range_batches

    # -- one learning step ---------------------------------------------------------------
    def learn_batch(self, net, x, labels, ids, stop):
        """Forward and backward on this rank's slice, then one all-reduce of a buffer holding
        the gradients, the loss, the stop requests and the targets' outputs. Leaves the
        global batch's summed gradient in every ``param.grad`` and its outputs scored in the
        "learning" scores of every rank. Returns (loss, whether any rank asked to stop)."""
        import time

        n = len(labels)
        lo, hi = self.part(n)
        self.batch = Slice(lo, hi, n, replicated=hi - lo == n and self.size > 1)
        params = net.params()
        carried = self._carry(params)
        try:
            outputs = net.forward(x, train=True, labels=labels[lo:hi])
            grads, losses = net.loss_grads(outputs, labels[lo:hi])
            net.backward(grads)
        finally:
            replicated, self.batch = self.batch.replicated, None
        ys = [outputs[cell] for _, cell, _ in net.targets]
        xp = net.device.xp
        sizes = [p.grad.size for p in params]
        rows = [y[0].size if len(y) else int(np.prod(y.shape[1:])) for y in ys]
        buf = xp.zeros(sum(sizes) + 2 + n * sum(rows), dtype=xp.float64)  # Param.grad's
        contributes = self.root or not replicated
        off = 0
        for p, k in zip(params, sizes):
            if contributes:
                buf[off:off + k] = p.grad.ravel()
            off += k
        buf[off] = sum(losses) * (hi - lo) if contributes else 0.0
        buf[off + 1] = 1.0 if stop else 0.0
        off += 2
        for y, k in zip(ys, rows):
            if contributes:
                buf[off + lo * k:off + hi * k] = y.ravel()
            off += n * k
        started = time.perf_counter()
        self.comm.allreduce(buf)
        self.comm_seconds += time.perf_counter() - started
        off = 0
        for i, (p, k) in enumerate(zip(params, sizes)):
            p.grad[...] = buf[off:off + k].reshape(p.grad.shape)
            if carried[i] is not None:
                p.grad += carried[i]
            off += k
        loss, stop_any = float(buf[off]) / max(n, 1), bool(buf[off + 1] > 0)
        off += 2
        for (_, _, target), y, k in zip(net.targets, ys, rows):
            whole = buf[off:off + n * k].reshape((n,) + tuple(y.shape[1:]))
            target.process("learning", whole, labels, ids)
            off += n * k
        return loss, stop_any

    @staticmethod
    def _carry(params):
        """Gradients accumulated by earlier batches (IterationSize > 1), set aside so that only
        this batch's are summed over the ranks; None where nothing is accumulated."""
        carried = []
        for p in params:
            if getattr(p.solver, "pass_", 0) > 0:
                carried.append(p.grad.copy())
                p.grad[...] = 0
            else:
                carried.append(None)
        return carried

    # -- random numbers of the whole batch ------------------------------------------------
    def random(self, rng, shape):
        """Uniform numbers for this rank's slice of the whole batch's draw of ``shape``."""
        b = self.batch
        return rng.random((b.n,) + tuple(shape[1:]))[b.lo:b.hi]

    # -- scores --------------------------------------------------------------------------
    def reduce_scores(self, scores):
        """Sum a set's counts over the ranks; rank 0 also gets every rank's misclassified
        stimuli and classif.log rows, in set order (ranks hold consecutive ranges)."""
        counts = np.concatenate([[scores.total, scores.correct, scores.correct_top_n],
                                 scores.matrix.ravel()]).astype(np.int64)
        self.comm.allreduce(counts)
        scores.total, scores.correct, scores.correct_top_n = (int(v) for v in counts[:3])
        scores.matrix = counts[3:].reshape(scores.matrix.shape)
        parts = self.comm.gather((scores._classif, scores.misclassified))
        if parts is None:
            return
        scores._classif = [batch for classif, _ in parts for batch in classif]
        merged = {}
        for _, misclassified in parts:
            for key, (name, count) in misclassified.items():
                merged.setdefault(key, [name, 0])[1] += count
        scores.misclassified = merged

    # -- sharing rank 0's state ------------------------------------------------------------
    def on_root(self, fn, *args, **kwargs):
        """``fn(*args)`` run on rank 0 (reading files that may exist there only), its result,
        or the N2D2PyError it raised, handed to every rank."""
        from n2d2py.errors import N2D2PyError

        outcome = None
        if self.root:
            try:
                outcome = (True, fn(*args, **kwargs))
            except N2D2PyError as exc:
                outcome = (False, exc)
        ok, value = self.comm.bcast(outcome)
        if not ok:
            raise value
        return value

    def share_params(self, cells):
        """Rank 0's parameters and buffers (BatchNorm means, variances) on every rank."""
        for cell in cells.values():
            for p in list(cell.params()) + list(cell.buffers()):
                if p.data is not None:
                    self.comm.bcast_array(p.data)
