"""How every compiled CPU kernel is built: specialised on its constants, cached on disk."""

from functools import lru_cache, wraps

import numba


def _specialised(builder):
    """``builder(*constants)`` → its inner function compiled by numba under the cache name
    ``<builder>_<constants>``, memoised."""

    @lru_cache(maxsize=None)
    @wraps(builder)
    def get(*constants):
        fn = builder(*constants)
        fn.__name__ = fn.__qualname__ = "_".join(
            [builder.__name__] + [str(c).replace("-", "m") for c in constants]
        )
        return numba.njit(cache=True, nogil=True)(fn)

    return get


_helpers = {}


def helper(fn):
    """A plain function ``fn`` compiled once (cached on disk), for kernels to call."""
    if fn not in _helpers:
        _helpers[fn] = numba.njit(cache=True, nogil=True)(fn)
    return _helpers[fn]
