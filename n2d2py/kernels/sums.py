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
