"""Batch normalisation fused with its activation (identity or Rectifier), in two passes.

Arrays are (N, C, P) views of NCHW data (P = H·W). ``act`` is 0 (identity) or 1 (Rectifier:
``leak`` below 0, clipped at ``clip`` when clip > 0); the backward reads the cell's output y
to know where the Rectifier passed the gradient (y > 0 exactly where its input was, and
y < clip exactly where its input was below clip), so nothing but x and y is kept. Sums are in
float64.
"""

from n2d2py.kernels._compile import _float64_sums, _specialised, helper
from n2d2py.kernels.activations import _rectified


@_float64_sums
def channel_sums(dtype):
    """kernel(x, out): out[0, c] += Σ x[:, c], out[1, c] += Σ x[:, c]² (out float64)."""

    def kernel(x, out):
        for n in range(x.shape[0]):
            for c in range(x.shape[1]):
                row = x[n, c]
                s = 0.0
                q = 0.0
                for k in range(row.size):
                    v = row[k]
                    s += v
                    q += v * v
                out[0, c] += s
                out[1, c] += q
        return out

    return kernel


@_specialised
def normalize(act, dtype):
    """kernel(x, mean, a, b, leak, clip, y): y = f((x − mean[c])·a[c] + b[c]), f the
    activation."""
    rectified = helper(_rectified)

    def kernel(x, mean, a, b, leak, clip, y):
        for n in range(x.shape[0]):
            for c in range(x.shape[1]):
                src, dst = x[n, c], y[n, c]
                m, av, bv = mean[c], a[c], b[c]
                for k in range(src.size):
                    v = (src[k] - m) * av + bv
                    dst[k] = rectified(v, leak, clip) if act == 1 else v
        return y

    return kernel


@_float64_sums
def normalize_backward_sums(act, dtype):
    """kernel(dy, x, y, mean, inv_std, leak, clip, out): with dz = f'·dy, out[0, c] += Σ dz,
    out[1, c] += Σ dz·(x − mean[c])·inv_std[c] (out float64)."""

    def kernel(dy, x, y, mean, inv_std, leak, clip, out):
        for n in range(x.shape[0]):
            for c in range(x.shape[1]):
                g, src, dst = dy[n, c], x[n, c], y[n, c]
                m = mean[c]
                s1 = 0.0
                s2 = 0.0
                for k in range(src.size):
                    d = g[k]
                    if act == 1:
                        v = dst[k]
                        d = (d if (clip <= 0 or v < clip) else 0) if v > 0 else leak * d
                    s1 += d
                    s2 += d * (src[k] - m)
                out[0, c] += s1
                out[1, c] += s2 * inv_std[c]
        return out

    return kernel


@_specialised
def normalize_backward(act, dtype):
    """kernel(dy, x, y, mean, inv_std, k1, k2, k3, leak, clip, dx): dx = k1[c]·(dz − k2[c] −
    (x − mean[c])·inv_std[c]·k3[c]), dz = f'·dy."""

    def kernel(dy, x, y, mean, inv_std, k1, k2, k3, leak, clip, dx):
        for n in range(x.shape[0]):
            for c in range(x.shape[1]):
                g, src, dst, out = dy[n, c], x[n, c], y[n, c], dx[n, c]
                m, s, a, b, e = mean[c], inv_std[c], k1[c], k2[c], k3[c]
                for k in range(src.size):
                    d = g[k]
                    if act == 1:
                        v = dst[k]
                        d = (d if (clip <= 0 or v < clip) else 0) if v > 0 else leak * d
                    out[k] = a * (d - b - (src[k] - m) * s * e)
        return dx

    return kernel
