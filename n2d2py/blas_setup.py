"""Which OpenBLAS kernels numpy's GEMMs run: chosen before numpy is imported.

numpy's OpenBLAS (a DYNAMIC_ARCH build) picks its kernels from the CPU's model number when it
loads. CPUs newer than its tables, AMD's Zen 4/5 among them, get its AVX2 ("Haswell") kernels
even when they have AVX-512: on this project's 2-core Zen machine the convolution GEMMs then
run at about 100 GFLOP/s per core instead of 170-200 with the AVX-512 kernels. So, when the
user has not chosen (``OPENBLAS_CORETYPE`` unset) and the CPU reports the AVX-512 subsets those
kernels use, n2d2py asks for them: ``Cooperlake`` when AVX-512 BF16 is there too, else
``SkylakeX`` (what OpenBLAS itself picks on the Intel CPUs it knows with those features). It
must run before numpy loads OpenBLAS: ``n2d2py/__init__.py`` calls it first, so the CLI and any
program importing n2d2py before numpy get it; a program that imported numpy first keeps the
kernels OpenBLAS chose.
"""

import os
import sys

AVX512_SUBSETS = {"avx512f", "avx512bw", "avx512dq", "avx512vl"}


def cpu_flags(path="/proc/cpuinfo"):
    """The CPU's feature flags (Linux), an empty set elsewhere or when unreadable."""
    try:
        with open(path) as info:
            for line in info:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def openblas_coretype(flags):
    """The OpenBLAS core type to ask for with these CPU flags, or None (OpenBLAS's choice)."""
    if not AVX512_SUBSETS <= flags:
        return None
    return "Cooperlake" if "avx512_bf16" in flags else "SkylakeX"


def choose_blas_kernels():
    """Set OPENBLAS_CORETYPE (see the module) unless it is set or numpy is loaded already."""
    if "OPENBLAS_CORETYPE" in os.environ or "numpy" in sys.modules:
        return
    core = openblas_coretype(cpu_flags())
    if core:
        os.environ["OPENBLAS_CORETYPE"] = core
