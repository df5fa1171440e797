"""The array backend: numpy on the CPU or CuPy on a GPU, chosen once per run.

Everything numerical takes ``xp`` from a Device (cells) or from its input arrays
(``array_module``); the few numpy/CuPy differences are wrapped here and only here.
"""

import sys
from dataclasses import dataclass

import numpy as np


@dataclass
class Device:
    name: str  # "cpu" or "cuda:N"
    xp: object  # numpy or cupy
    rng: np.random.Generator  # host RNG seeded by -seed: fillers, partitions, shuffling, dropout

    def asarray(self, a, dtype=np.float32):
        return self.xp.asarray(a, dtype=dtype)

    def to_host(self, a):
        return a.get() if hasattr(a, "get") else np.asarray(a)

    def synchronize(self):
        if self.xp is not np:
            self.xp.cuda.Stream.null.synchronize()

    def reseed(self, seed):
        self.rng = np.random.default_rng(seed)


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


def sliding_window_view(x, window_shape, axis):
    xp = array_module(x)
    return xp.lib.stride_tricks.sliding_window_view(x, window_shape, axis=axis)
