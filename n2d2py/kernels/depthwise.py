"""Depthwise convolution (one input channel per output map, its own kh×kw kernel) as a
direct loop: no im2col columns, no dense (C, C, kh, kw) weights multiplied by zeros.

Each kernel loops over the kh·kw offsets and, for each, over the output rows, the inner loop
running along a row (contiguous in the input at stride 1, so the compiler vectorises it). The
valid output columns of an offset are computed once (``xa``..``xb``) as in ``im2col``, so
padding costs nothing; rows falling in the padding are skipped.
"""

from n2d2py.kernels._compile import _specialised


@_specialised
def depthwise(kh, kw, sh, sw, dh, dw, ph, pw, dtype):
    """kernel(x, w, y): y[n, c, oy, ox] = Σ_ij w[c, i, j]·x[n, c, oy·sh + i·dh − ph,
    ox·sw + j·dw − pw] (0 outside x); x (N, C, H, W), w (C, kh, kw), y (N, C, Ho, Wo)."""

    def kernel(x, w, y):
        n_, c_, h, wd = x.shape
        ho, wo = y.shape[2], y.shape[3]
        for n in range(n_):
            for c in range(c_):
                plane, out = x[n, c], y[n, c]
                out[:] = 0
                for i in range(kh):
                    for j in range(kw):
                        wv = w[c, i, j]
                        x0 = j * dw - pw
                        xa = 0 if x0 >= 0 else min(wo, (sw - 1 - x0) // sw)
                        xb = max(xa, min(wo, (wd - x0 + sw - 1) // sw))
                        for oy in range(ho):
                            iy = oy * sh + i * dh - ph
                            if 0 <= iy < h:
                                row, src = out[oy], plane[iy]
                                for ox in range(xa, xb):
                                    row[ox] += wv * src[ox * sw + x0]
        return y

    return kernel


@_specialised
def depthwise_backward_input(kh, kw, sh, sw, dh, dw, ph, pw, dtype):
    """kernel(dy, w, dx): the adjoint of ``depthwise`` in x; dx (N, C, H, W) zeroed here."""

    def kernel(dy, w, dx):
        n_, c_, h, wd = dx.shape
        ho, wo = dy.shape[2], dy.shape[3]
        for n in range(n_):
            for c in range(c_):
                plane, grad = dx[n, c], dy[n, c]
                plane[:] = 0
                for i in range(kh):
                    for j in range(kw):
                        wv = w[c, i, j]
                        x0 = j * dw - pw
                        xa = 0 if x0 >= 0 else min(wo, (sw - 1 - x0) // sw)
                        xb = max(xa, min(wo, (wd - x0 + sw - 1) // sw))
                        for oy in range(ho):
                            iy = oy * sh + i * dh - ph
                            if 0 <= iy < h:
                                row, src = plane[iy], grad[oy]
                                for ox in range(xa, xb):
                                    row[ox * sw + x0] += wv * src[ox]
        return dx

    return kernel


@_specialised
def depthwise_backward_weights(kh, kw, sh, sw, dh, dw, ph, pw, dtype):
    """kernel(dy, x, gw): gw[c, i, j] (zeroed here) = Σ over images and output pixels of
    dy·(the input pixel that offset (i, j) read); sums in float64."""

    def kernel(dy, x, gw):
        n_, c_, h, wd = x.shape
        ho, wo = dy.shape[2], dy.shape[3]
        for c in range(c_):
            for i in range(kh):
                for j in range(kw):
                    x0 = j * dw - pw
                    xa = 0 if x0 >= 0 else min(wo, (sw - 1 - x0) // sw)
                    xb = max(xa, min(wo, (wd - x0 + sw - 1) // sw))
                    total = 0.0
                    for n in range(n_):
                        for oy in range(ho):
                            iy = oy * sh + i * dh - ph
                            if 0 <= iy < h:
                                row, src = dy[n, c, oy], x[n, c, iy]
                                part = 0.0
                                for ox in range(xa, xb):
                                    part += row[ox] * src[ox * sw + x0]
                                total += part
                    gw[c, i, j] = total
        return gw

    return kernel
