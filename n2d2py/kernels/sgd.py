"""SGD's update with momentum as one pass: the float64 gradient sum rounded, the velocity and
the weights updated, element by element (numpy's expression makes six passes and two
temporaries: 3-4× slower on the 9 M weights of a VGG). A masked Param (a partial or grouped
channel map, stored dense) is updated at its mapped elements only: a 256-channel depthwise
layer's 2,304 weights, not the 589,824 of its dense (O, C, 3, 3) storage."""

import numpy as np

from n2d2py.kernels._compile import _specialised


@_specialised
def sgd_momentum(decay, dtype, indexed=False):
    """kernel(grad, v, w, at, m, r, d): for every element (with ``indexed``: for the flat
    indices ``at`` only, the others keeping their values; else ``at`` is not read), g =
    dtype(grad), v ← v·m − r·g (− d·w with ``decay``), w ← w + v; the float operations of
    ``solvers.SGD.step`` in its order, each rounded to ``dtype`` (m, r, d are ``dtype``
    scalars; no contraction into fused multiply-adds). Where the mask is 0 the update ``step``
    applies is 0, so the indexed pass computes the same weights."""
    cast = np.float32 if np.dtype(dtype) == np.float32 else np.float64

    def kernel(grad, v, w, at, m, r, d):
        for k in range(at.size if indexed else w.size):
            i = at[k] if indexed else k
            g = cast(grad[i])
            vi = v[i] * m
            vi = vi - r * g
            if decay:
                vi = vi - d * w[i]
            v[i] = vi
            w[i] = w[i] + vi
        return w

    return kernel
