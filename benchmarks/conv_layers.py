"""One convolution layer at a time: Winograd F(4×4, 3×3) against im2col + GEMM, in n2d2py.

For each (C → O, plane) of a table of 3×3 stride-1 layers (padding 1, batch 64; 32 at 56×56)
it times the forward and a learning step (forward + backward) of one Conv cell with Winograd
forced on every plane size and with it forced off, alternating, in this thread's CPU time
(best of several: one thread, readable on a shared machine). The table in
``n2d2py/cells/_winograd.py`` (which planes take Winograd) comes from this script.

    OMP_NUM_THREADS=1 python benchmarks/conv_layers.py
"""

import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]
os.environ.setdefault("OMP_NUM_THREADS", "1")
import n2d2py  # noqa: E402,F401  first: the BLAS kernels (blas_setup)
import numpy as np  # noqa: E402
from harness import build  # noqa: E402  (tests/harness.py: a cell from INI text)

from n2d2py.cells import _winograd  # noqa: E402
from n2d2py.cells.conv import ConvCell  # noqa: E402

LAYERS = [(64, 32, 32, 32), (64, 32, 64, 16), (64, 64, 64, 16), (64, 128, 128, 16),
          (64, 64, 128, 8), (64, 128, 128, 8), (64, 256, 256, 8), (32, 64, 64, 56),
          (64, 64, 64, 12), (64, 32, 32, 14), (32, 128, 128, 14), (32, 64, 64, 28),
          (64, 16, 16, 32), (64, 8, 8, 32), (64, 128, 128, 4), (32, 512, 512, 8)]


def best(fn, rounds=7):
    b = float("inf")
    for _ in range(rounds):
        t = time.thread_time()
        fn()
        b = min(b, time.thread_time() - t)
    return b * 1e3


def main():
    rng = np.random.default_rng(0)
    real = _winograd.worth
    print("n, C -> O, plane: forward Winograd / im2col (ratio) | step Winograd / im2col (ratio)")
    for n, c, o, h in LAYERS:
        ini = f"[conv]\nType=Conv\nKernelDims=3 3\nNbOutputs={o}\nPadding=1\n[cfg]\n"
        cell = build(ConvCell, ini, "conv", [(c, h, h)], ["cfg"])
        x = rng.standard_normal((n, c, h, h), dtype=np.float32)
        dy = rng.standard_normal((n, o, h, h), dtype=np.float32)

        def step():
            cell.forward([x], train=True)
            cell.backward(dy)

        times = []
        for forced in (True, False):
            _winograd.worth = lambda *a, forced=forced: forced
            times += [best(lambda: cell.forward([x])), best(step)]
        _winograd.worth = real
        fw, sw, fi, si = times
        print(f"{n:3d}, {c:3d} -> {o:3d}, {h}x{h}: forward {fw:7.2f} / {fi:7.2f} ms "
              f"({fi / fw:.2f}x) | step {sw:7.2f} / {si:7.2f} ms ({si / sw:.2f}x)")


if __name__ == "__main__":
    main()
