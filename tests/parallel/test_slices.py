"""Micro-slices (``parallel.slices``): their bounds line up with the ranks' slices and the
worker threads' chunks, float64 accumulation does not depend on the order, and one process
learns bit for bit the same weights with 1 and with 2 worker threads."""

import itertools
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness import mnist_head, softmax_tail
from n2d2py import backend, runner, weights
from n2d2py.cells import _winograd
from n2d2py.parallel import slices
from n2d2py.parallel.group import Group, Slice


class FakeRank:
    def __init__(self, rank, size):
        self.rank, self.size, self.local_rank = rank, size, rank


class FakeDevice:
    def __init__(self, group=None):
        self.group = group


def rank_cut(rank, size, n):
    """The Cut of rank ``rank`` of ``size`` while it computes its slice of a batch of n."""
    group = Group(FakeRank(rank, size))
    lo, hi = group.part(n)
    group.batch = Slice(lo, hi, n, replicated=hi - lo == n and size > 1)
    return slices.cut(FakeDevice(group), hi - lo), (lo, hi)


def test_the_micro_slices_of_one_process_tile_the_batch():
    cut = slices.cut(FakeDevice(), 128)
    assert slices.MICRO_SLICES == 8
    assert cut.bounds == tuple((16 * i, 16 * (i + 1)) for i in range(8))
    assert cut.slots == tuple(range(8)) and cut.rows == 128 and not cut.shared
    small = slices.cut(FakeDevice(), 3)  # empty slices are left out, the slots say which
    assert small.bounds == ((0, 1), (1, 2), (2, 3)) and small.slots == (2, 5, 7)


@given(st.sampled_from([1, 2, 4, 8]), st.integers(1, 400))
def test_ranks_dividing_8_compute_whole_micro_slices_of_the_global_batch(size, n):
    whole = [(a, b) for a, b in slices.even(n) if b > a]
    mine = []
    for rank in range(size):
        cut, (lo, hi) = rank_cut(rank, size, n)
        if n < size:  # every rank computes the whole batch (rank 0's gradients count)
            assert cut.bounds == tuple(whole) and not cut.shared
            return
        local = [(a + lo, b + lo) for a, b in cut.bounds]
        assert local[0][0] == lo and local[-1][1] == hi  # Group.part's rows exactly
        assert [slices.even(n)[s] for s in cut.slots] == local  # the global slices themselves
        mine += local
    assert mine == whole


@given(st.sampled_from([3, 5, 6, 7, 9, 12]), st.integers(12, 200))
def test_other_rank_counts_use_their_own_slice(size, n):
    for rank in range(size):
        cut, (lo, hi) = rank_cut(rank, size, n)
        assert cut.bounds == ((0, hi - lo),) and cut.slots == (rank,)
        assert cut.count == size and cut.shared and cut.rows == n


@given(st.integers(1, 300), st.integers(1, 8))
def test_thread_chunks_are_unions_of_whole_micro_slices(n, threads):
    bounds = slices.cut(FakeDevice(), n).bounds

    class Pool:
        pass

    pool = Pool()
    pool.threads = threads
    real, backend._pool = backend._pool, lambda: pool
    try:
        chunks = backend.split_batch(np.zeros(1), n, 1 << 40, bounds)
    finally:
        backend._pool = real
    assert len(chunks) == min(threads, len(bounds))
    assert chunks[0][0] == 0 and chunks[-1][1] == n
    assert all(a[1] == b[0] for a, b in zip(chunks, chunks[1:]))
    starts = {a for a, _ in bounds}
    assert all(a in starts for a, _ in chunks)
    assert sum(len(slices.Cut(bounds, (), 8, n, False).within(a, b)) for a, b in chunks) == len(bounds)


def test_float64_sums_of_float32_partials_do_not_depend_on_the_order():
    """8 float32 partials of mixed signs and magnitudes (within 2^20 of each other): every
    order and every grouping (threads, ranks, the all-reduce) gives the same float64 sum,
    which a float32 sum does not."""
    rng = np.random.default_rng(0)
    parts = [(rng.standard_normal(2000) * 10.0 ** rng.uniform(-3, 3, 2000)).astype(np.float32)
             for _ in range(8)]
    reference = slices.add64(parts)
    float32_orders = set()
    for order in itertools.islice(itertools.permutations(range(8)), 0, 40320, 997):
        shuffled = [parts[i] for i in order]
        assert np.array_equal(slices.add64(shuffled), reference)
        halves = slices.add64(shuffled[:4]) + slices.add64(shuffled[4:])  # two ranks
        assert np.array_equal(halves, reference)
        total = np.zeros(2000, np.float32)
        for p in shuffled:
            total += p
        float32_orders.add(total.tobytes())
    assert len(float32_orders) > 1  # the test would catch a float32 accumulation


@pytest.mark.parametrize("layout", ["C", "F", "transposed"])
def test_add_into_is_numpys_float64_add_in_every_layout(layout):
    """The compiled adds (same layout, or the transpose of a C-contiguous partial, as Conv's
    weight gradients come) give numpy's float64 sums bit for bit."""
    rng = np.random.default_rng(3)
    part = rng.standard_normal((70, 45)).astype(np.float32)
    if layout == "F":
        part = np.asfortranarray(part)
    elif layout == "transposed":
        part = np.ascontiguousarray(part.T).T
    total = rng.standard_normal((70, 45)) * 1e3
    if layout == "F":
        total = np.asfortranarray(total)
    expected = total + part.astype(np.float64)
    assert slices.add_into(total, part) is total
    assert np.array_equal(total, expected)


def test_an_exchange_adds_the_slots_in_slice_order():
    cut = slices.cut(FakeDevice(), 40)
    rng = np.random.default_rng(1)
    partials = [rng.standard_normal(5) for _ in cut.bounds]  # float64: inexact sums
    expected = partials[0].copy()
    for p in partials[1:]:
        expected += p
    assert np.array_equal(slices.exchange(FakeDevice(), cut, partials), expected)


@pytest.mark.parametrize("rows, k, o", [(16, 400, 120), (16, 120, 84), (1, 84, 10), (3, 25, 6)])
def test_products_per_slice_are_those_of_the_slice_alone(rows, k, o):
    """``slices.matmul``/``matmul_sum`` give each slice what a GEMM on that slice alone gives
    (stacked or looped), which one GEMM over the whole batch need not (BLAS's result for a row
    depends on the number of rows)."""
    rng = np.random.default_rng(rows)
    n = 8 * rows
    bounds = slices.cut(FakeDevice(), n).bounds
    x = rng.standard_normal((n, k)).astype(np.float32)
    w = rng.standard_normal((k, o)).astype(np.float32)
    dz = rng.standard_normal((n, o)).astype(np.float32)
    y = slices.matmul(np, bounds, x, w)
    for a, b in bounds:
        alone = np.array(x[a:b]) @ w  # a copy: another address, same shape
        assert np.array_equal(y[a:b], alone)
        assert np.array_equal(slices.matmul(np, [(0, b - a)], x[a:b].copy(), w), alone)
    expected = slices.add64(np.array(dz[a:b]).T @ np.array(x[a:b]) for a, b in bounds)
    assert np.array_equal(slices.matmul_sum(np, bounds, dz, x), expected)  # stacked
    wide = np.zeros((n, k + 5), np.float32)
    wide[:, :k] = x
    looped = slices.matmul(np, bounds, wide[:, :k], w)  # not C-contiguous: one call per slice
    assert np.array_equal(looped, y)


def test_large_products_on_the_worker_threads_do_not_depend_on_them(monkeypatch):
    """Large products go slice by slice on the worker threads (``matmul``: chunks of whole
    slices; a large transposed right operand Wᵀ as (W @ aᵀ)ᵀ) and the weight gradient by blocks
    of rows (``matmul_sum``, the last block shorter): the same bits on one thread and three,
    each slice's rows those of a GEMM on that slice alone, the sum that of float64 algebra."""
    rng = np.random.default_rng(11)
    n, k, o = 64, 700, 1500  # 8·o·k > STACK_LIMIT; ROW_BLOCK // k = 93 rows
    assert o * k > slices.TRANSPOSED_ROWS and o % (slices.ROW_BLOCK // k)
    bounds = slices.cut(FakeDevice(), n).bounds
    x = rng.standard_normal((n, k)).astype(np.float32)
    w = rng.standard_normal((o, k)).astype(np.float32)  # passed as its transposed view
    dz = rng.standard_normal((n, o)).astype(np.float32)
    monkeypatch.setattr(backend, "MIN_CHUNK_WORK", 1)
    results = []
    for threads in (1, 3):
        monkeypatch.setattr(backend, "_workers", backend._Pool(threads))
        results.append((slices.matmul(np, bounds, x, w.T), slices.matmul_sum(np, bounds, dz, x)))
    (y, total), (y3, total3) = results
    assert np.array_equal(y, y3) and np.array_equal(total, total3)
    for a, b in bounds:
        assert np.array_equal(y[a:b], (w @ np.array(x[a:b]).T).T)
    np.testing.assert_allclose(y, x.astype(np.float64) @ w.T.astype(np.float64), rtol=1e-4,
                               atol=1e-3)
    exact = dz.T.astype(np.float64) @ x.astype(np.float64)
    np.testing.assert_allclose(total, exact, rtol=1e-5, atol=1e-4)


_ROWS = ["1 0 1 1", "1 1 0 1", "0 1 1 0", "1 0 1 1", "0 1 0 1", "1 1 1 0", "0 0 1 1", "1 1 0 0"]
MAP = "Mapping(pool1)=" + " \\\n".join(_ROWS * 2) + "\n"  # conv2's partial map of pool1's 16

NET = (
    mnist_head("Validation=0.002\n", "SizeX=32\nSizeY=32\nBatchSize=24\n")
    + """[sp.Transformation]
Type=RescaleTransformation
Width=32
Height=32
[conv1]
Input=sp
Type=Conv
KernelDims=3 3
Padding=1
NbOutputs=16
ActivationFunction=Rectifier
ConfigSection=common.config
[conv1b]
Input=conv1
Type=Conv
KernelDims=3 3
Padding=1
NbOutputs=16
ActivationFunction=Rectifier
ConfigSection=common.config
[pool1]
Input=conv1b
Type=Pool
PoolDims=4 4
Stride=4
NbOutputs=16
Pooling=Max
Mapping.Size=1
[conv2]
Input=pool1
Type=Conv
KernelDims=3 3
NbOutputs=4
ActivationFunction=Rectifier
"""
    + MAP
    + """ConfigSection=common.config
[conv3]
Input=conv2
Type=Conv
KernelDims=3 3
NbOutputs=4
Mapping.NbGroups=4
ConfigSection=common.config
[bn]
Input=conv3
Type=BatchNorm
NbOutputs=4
ActivationFunction=Rectifier
[conv4]
Input=bn
Type=Conv
KernelDims=3 3
NbOutputs=6
ActivationFunction=Rectifier
ConfigSection=common.config
"""
    + softmax_tail("conv4", config="Solvers.LearningRate=0.05\nSolvers.Momentum=0.9")
)


def test_one_and_two_worker_threads_learn_bit_identical_weights(tmp_path, monkeypatch, capsys):
    """Conv with biases (dense per image, Winograd, partial map, depthwise, and on the rows of
    a 2×2 output), max pooling, BatchNorm and Fc learn 6 batches of 24 with the batch split
    over 1 and over 2 threads: the same bits."""
    ini = tmp_path / "net.ini"
    ini.write_text(NET)
    monkeypatch.setattr(backend, "MIN_CHUNK_WORK", 1)  # split even this small network
    winograd = []  # conv1b's forward, input and weight gradients (16 channels on 32×32)
    for name in ("run", "weight_gradient"):
        real = getattr(_winograd, name)
        monkeypatch.setattr(_winograd, name,
                            lambda *a, name=name, real=real: winograd.append(name) or real(*a))
    splits = []
    real_split = backend.split_batch
    monkeypatch.setattr(backend, "split_batch",
                        lambda *a, **k: splits.append(len(r := real_split(*a, **k))) or r)
    learned = {}
    try:
        for threads in (1, 2):
            monkeypatch.setenv("OMP_NUM_THREADS", str(threads))
            backend._forget_pool()
            splits.clear()
            out = tmp_path / f"t{threads}"
            runner.run(runner.Options(str(ini), learn=6 * 24, log=1000, seed=4, nb_test=24, out=str(out)))
            assert max(splits) == threads
            learned[threads] = weights.load_state(str(Path(out) / "net_state"))[0]
    finally:
        monkeypatch.delenv("OMP_NUM_THREADS")
        backend._forget_pool()
    capsys.readouterr()
    assert "run" in winograd and "weight_gradient" in winograd
    assert learned[1].keys() == learned[2].keys()
    assert {"conv1/bias", "conv3/weights", "bn/scale", "conv4/weights", "fc1/bias"} <= set(learned[1])
    for name, value in learned[1].items():
        assert np.array_equal(value, learned[2][name]), name
