"""The objects that exist once a run is set up are kept out of Python's cyclic garbage
collections while its modes run.

A run's set-up (imports: numba, matplotlib, the INI document, the network, the data sets, the
compiled kernels loaded at the first batch) leaves 150,000-175,000 objects tracked by the
collector of a CIFAR run, and more when the caller imported other libraries (with PyTorch, in
``benchmarks/cpu_nets.py``: 440,000). Every collection of the oldest generation walks all of
them: 80-350 ms measured on this machine, one or two learning steps of the CIFAR networks or
several test batches. Such collections come after the set-up and after each log step (the
figures' garbage), in the learning or test loop: 1-2 per 12-batch ``-learn`` of the benchmark.
Frozen (``gc.freeze``), the set-up's objects are skipped: a collection walks only what the run
made since (60-70 ms at a log step, the figures' garbage), and the run's own garbage is
collected as usual. The one full collection left is made just before the freeze, in the
set-up, so that no garbage is frozen: without it, repeated in-process runs (the tests, the
benchmarks) froze each previous run's garbage into the next and grew by 160 MB a run. When
the run ends the objects are unfrozen.

Two freezes: when the modes start (``frozen``), with matplotlib imported first when the run
will plot, and once more after the first batch a loop has computed (``settle``, called by the
batch iterator), which takes in numba and the kernels it loaded for that batch.
"""

import contextlib
import gc

_state = {"active": False, "settled": True}


@contextlib.contextmanager
def frozen(plots=False):
    """Freeze the tracked objects for the ``with`` block (left alone where a caller already
    froze some, or disabled the collector: the freeze is theirs). ``plots``: import the
    plotting module first (its matplotlib objects are long-lived)."""
    if gc.get_freeze_count() or not gc.isenabled() or _state["active"]:
        yield
        return
    if plots:
        from n2d2py import plots as _  # noqa: F401
    gc.collect()  # garbage frozen would stay: a previous in-process run's data, 160 MB a run
    gc.freeze()
    _state.update(active=True, settled=False)
    try:
        yield
    finally:
        _state.update(active=False, settled=True)
        gc.unfreeze()


def settle():
    """Freeze again, once per ``frozen`` block: what the first batch loaded (numba, compiled
    kernels) joins the frozen objects. A no-op outside a ``frozen`` block or once done."""
    if not _state["settled"]:
        _state["settled"] = True
        gc.freeze()
