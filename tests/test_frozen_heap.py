"""The run's set-up objects are frozen while its modes run (frozen_heap.py): collections skip
them, they are unfrozen afterwards, and a caller's own freeze is left alone."""

import gc
import weakref

import numpy as np
import pytest

from harness import mnist_head, softmax_tail
from n2d2py import cli, frozen_heap, learning
from n2d2py.data.databases import write_idx

INI = (
    mnist_head("DataPath={data}\nValidation=0.2\n", "SizeX=5\nSizeY=6\nBatchSize=8\n")
    + softmax_tail("sp")
)


class Node:
    """A container that can hold a reference cycle and be weakly referenced."""


def cycle():
    """(weak reference to) an object kept alive only by a reference cycle."""
    a, b = Node(), Node()
    a.other, b.other = b, a
    return weakref.ref(a)


@pytest.fixture
def ini(tmp_path):
    for split, n in (("train", 40), ("t10k", 16)):
        write_idx(tmp_path / f"{split}-images-idx3-ubyte.gz",
                  np.random.default_rng(n).integers(0, 256, (n, 6, 5), dtype=np.uint8))
        write_idx(tmp_path / f"{split}-labels-idx1-ubyte.gz", (np.arange(n) % 10).astype(np.uint8))
    path = tmp_path / "f.ini"
    path.write_text(INI.format(data=tmp_path))
    return path


def test_a_run_freezes_its_set_up_and_unfreezes_it(ini, tmp_path, monkeypatch):
    counts, step = [], learning._step

    def counting(*args, **kwargs):
        counts.append(gc.get_freeze_count())
        return step(*args, **kwargs)

    monkeypatch.setattr(learning, "_step", counting)
    with pytest.raises(SystemExit) as info:
        cli.main([str(ini), "-learn", "32", "-seed", "1", "-o", str(tmp_path / "run")])
    assert info.value.code in (0, None)
    assert len(counts) == 4 and counts[0] > 1000  # imports, network, data: all frozen
    assert counts[1] > counts[0]  # and what the first batch loaded (settle)
    assert max(counts[2:]) <= counts[1]  # once per run (frozen objects may still be freed)
    assert gc.get_freeze_count() == 0  # unfrozen when the run ends


def test_frozen_objects_are_not_collected_until_the_block_ends():
    with frozen_heap.frozen():
        old = cycle()
        gc.collect()
        assert old() is None  # made inside the block: collected as usual
        old = cycle()
        frozen_heap.settle()  # frozen now
        gc.collect()
        assert old() is not None
        young = cycle()
        frozen_heap.settle()  # once per block: no second freeze
        gc.collect()
        assert young() is None
    gc.collect()
    assert old() is None and gc.get_freeze_count() == 0


def test_a_callers_freeze_is_left_alone():
    gc.freeze()
    try:
        count = gc.get_freeze_count()
        assert count > 0
        with frozen_heap.frozen():
            frozen_heap.settle()
            assert gc.get_freeze_count() == count
        assert gc.get_freeze_count() == count  # not unfrozen: the freeze is the caller's
    finally:
        gc.unfreeze()


def test_settle_outside_a_run_does_nothing():
    frozen_heap.settle()
    assert gc.get_freeze_count() == 0


def test_garbage_is_collected_before_the_freeze():
    """A previous run's cyclic garbage (its data sets: 160 MB a run for cifar-10) is not frozen
    into the next run, where nothing could collect it."""
    gc.disable()  # no automatic collection may take it first
    try:
        old = cycle()
    finally:
        gc.enable()
    assert old() is not None
    with frozen_heap.frozen():
        assert old() is None and gc.get_freeze_count() > 0
