"""Which OpenBLAS kernels numpy's GEMMs run: chosen before numpy is imported.

numpy's OpenBLAS (a DYNAMIC_ARCH build) picks its kernels when it loads, and
``OPENBLAS_CORETYPE`` overrides that pick. A pin to a core without AVX-512 (``Haswell``, ``Zen``,
...) on a CPU that has it halves n2d2py's convolutions: this project's 2-core AMD EPYC (Zen 5,
AVX-512) is pinned to ``Haswell`` by its environment, and the convolution GEMMs then run at
about 100 GFLOP/s per core instead of 150-200, while PyTorch's oneDNN convolutions use AVX-512
whatever the variable says. So n2d2py asks for the AVX-512 kernels (``Cooperlake`` when the CPU
has AVX-512 BF16, else ``SkylakeX``: what OpenBLAS picks itself on such CPUs) when the CPU
reports the AVX-512 subsets they use and ``OPENBLAS_CORETYPE`` is unset or names a core without
them. It says so: ``describe()`` is on the run's header line and in ``run.json``.

``N2D2PY_OPENBLAS_CORETYPE`` decides instead when set: ``keep`` leaves ``OPENBLAS_CORETYPE`` as
the caller set it (or unset), any other value is given to OpenBLAS as the core type.

It must run before numpy loads OpenBLAS: ``n2d2py/__init__.py`` calls it first, so the CLI and
any program importing n2d2py before numpy get it; a program that imported numpy first keeps the
kernels OpenBLAS chose (``describe()`` says that too).
"""

import os
import sys

AVX512_SUBSETS = {"avx512f", "avx512bw", "avx512dq", "avx512vl"}
OWN_VARIABLE = "N2D2PY_OPENBLAS_CORETYPE"
# OpenBLAS's x86-64 core types without AVX-512 kernels (its names, compared case-blind).
NARROWER_CORES = {
    "haswell", "zen", "sandybridge", "nehalem", "penryn", "dunnington", "core2", "prescott",
    "katmai", "coppermine", "northwood", "banias", "atom", "bulldozer", "piledriver",
    "steamroller", "excavator", "barcelona", "opteron", "opteron_sse3", "athlon", "nano",
    "bobcat", "sse_generic",
}
AVX512_CORES = {"skylakex", "cooperlake", "sapphirerapids"}

# What choose_blas_kernels did: (core type asked for or None, the caller's value it replaced
# or None, why nothing was changed or None).
choice = (None, None, "not run")


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
    """The AVX-512 OpenBLAS core type for CPUs with these flags, or None (no AVX-512)."""
    if not AVX512_SUBSETS <= flags:
        return None
    return "Cooperlake" if "avx512_bf16" in flags else "SkylakeX"


def choose_blas_kernels():
    """Set OPENBLAS_CORETYPE as the module says, unless numpy is loaded already."""
    global choice
    if "numpy" in sys.modules:
        choice = (None, None, "numpy was imported before n2d2py: OpenBLAS's own choice")
        return
    given = os.environ.get("OPENBLAS_CORETYPE")
    own = os.environ.get(OWN_VARIABLE, "").strip()
    if own.lower() == "keep":
        choice = (None, None, f"{OWN_VARIABLE}=keep")
        return
    if own:
        if own.lower() not in NARROWER_CORES | AVX512_CORES:  # OpenBLAS would ignore it
            choice = (None, None, f"unknown {OWN_VARIABLE}={own}")
            return
        os.environ["OPENBLAS_CORETYPE"] = own
        choice = (own, given, None)
        return
    core = openblas_coretype(cpu_flags())
    if core is None:
        choice = (None, None, "no AVX-512 on this CPU")
    elif given is not None and given.strip().lower() not in NARROWER_CORES:
        choice = (None, None, f"OPENBLAS_CORETYPE={given} kept")
    else:
        os.environ["OPENBLAS_CORETYPE"] = core
        choice = (core, given, None)


def check():
    """Refuse, by name, an ``N2D2PY_OPENBLAS_CORETYPE`` that names no OpenBLAS x86-64 core
    (OpenBLAS would silently keep its own choice)."""
    if choice[2] and choice[2].startswith("unknown "):
        from n2d2py.errors import N2D2PyError

        names = sorted(NARROWER_CORES | AVX512_CORES)
        raise N2D2PyError(f"{OWN_VARIABLE}={os.environ.get(OWN_VARIABLE, '').strip()}: not an "
                          f"OpenBLAS x86-64 core type (keep, or one of {', '.join(names)})")


def describe():
    """One line for the run's header: which kernels and why, or '' when n2d2py chose nothing
    and nobody pinned anything."""
    core, replaced, why = choice
    if core is None:
        given = os.environ.get("OPENBLAS_CORETYPE")
        return f"OpenBLAS {given} ({why})" if given else ""
    if replaced is None:
        return f"OpenBLAS {core}"
    if os.environ.get(OWN_VARIABLE):
        return f"OpenBLAS {core} (from {OWN_VARIABLE}; OPENBLAS_CORETYPE was {replaced})"
    return (f"OpenBLAS {core} for this CPU's AVX-512, not OPENBLAS_CORETYPE={replaced} "
            f"({OWN_VARIABLE}=keep keeps it)")
