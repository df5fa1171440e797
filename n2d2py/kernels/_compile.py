"""How every compiled CPU kernel is built: specialised on its constants, cached on disk."""

from functools import lru_cache, wraps

import numba


def _specialised(builder, fastmath=False):
    """``builder(*constants)`` → its inner function compiled by numba under the cache name
    ``<builder>_<constants>``, memoised."""

    @lru_cache(maxsize=None)
    @wraps(builder)
    def get(*constants):
        fn = builder(*constants)
        fn.__name__ = fn.__qualname__ = "_".join(
            [builder.__name__] + [str(c).replace("-", "m") for c in constants]
        )
        return numba.njit(cache=True, nogil=True, fastmath=fastmath)(fn)

    return get


def _float64_sums(builder):
    """``_specialised`` for kernels whose loops sum float32 values into float64 accumulators:
    the compiler may reorder those additions (vectorised, several partial sums: 7× faster than
    one serial chain on BatchNorm's channel sums). The result does not depend on the order in
    practice: float32 values and their float32 products carry 24 significant bits, so float64
    (53 bits) holds their sum exactly unless it spans more than 2^29 terms or widely different
    magnitudes."""
    return _specialised(builder, fastmath={"reassoc"})


_helpers = {}


def helper(fn):
    """A plain function ``fn`` compiled once (cached on disk), for kernels to call."""
    if fn not in _helpers:
        _helpers[fn] = numba.njit(cache=True, nogil=True)(fn)
    return _helpers[fn]
