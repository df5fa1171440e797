"""Float64 sums of float32 partials (the micro-slices' weight gradients, ``parallel.slices``)."""

from n2d2py.kernels._compile import _specialised


@_specialised
def add_rows(dtype):
    """kernel(parts, out): out += parts[0] + parts[1] + ..., row by row in order; ``parts``
    (S, M) of ``dtype``, ``out`` (M,) float64. One pass per row, the conversion to float64
    included (numpy's mixed-dtype add buffers it: 2-3× slower)."""

    def kernel(parts, out):
        for i in range(parts.shape[0]):
            row = parts[i]
            for j in range(out.size):
                out[j] += row[j]
        return out

    return kernel


@_specialised
def add_transposed(dtype):
    """kernel(a, out): out += a.T for ``a`` (N, M) of ``dtype`` and ``out`` (M, N) float64,
    both C-contiguous, in 16×16 tiles that stay in the L1 cache (numpy's add of the
    transposed view strides through one of them: 1.3× slower on a 4608×512 weight gradient,
    and its mixed-dtype add buffers)."""

    def kernel(a, out):
        m, n = out.shape
        for i0 in range(0, m, 16):
            for j0 in range(0, n, 16):
                top = min(i0 + 16, m)
                end = min(j0 + 16, n)
                for i in range(i0, top):
                    row = out[i]
                    for j in range(j0, end):
                        row[j] += a[j, i]
        return out

    return kernel
