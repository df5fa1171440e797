"""Depthwise convolution (one input channel per output map, its own kh×kw kernel) as a
direct loop: no im2col columns, no dense (C, C, kh, kw) weights multiplied by zeros.

Each kernel copies one image channel at a time into a padded scratch plane (the padding, or a
negative padding's crop, applied there once), then runs, for every output row and kernel
offset (i, j), a loop along the row whose indices ox·sw + j·dw are non-negative by
construction: the compiler drops numba's negative-index wrap-around and vectorises it (the
same loops on the unpadded plane, bounded by per-offset column ranges, measured 3-6× slower).
The weight gradient accumulates element-wise products per output column in a (kh, kw, Wo)
array of the arrays' dtype (vectorised too), summed in float64 once per channel.
"""

import numpy as np

from n2d2py.kernels._compile import _specialised, helper


def _pad_into(plane, ph, pw, buf):
    """buf = ``plane`` padded by (ph, pw) on each side (a negative padding crops), zeros
    elsewhere."""
    h, w = plane.shape
    for py in range(buf.shape[0]):
        sy = py - ph
        if sy < 0 or sy >= h:
            buf[py, :] = 0
            continue
        for px in range(buf.shape[1]):
            sx = px - pw
            buf[py, px] = plane[sy, sx] if 0 <= sx < w else 0


def _crop_from(buf, ph, pw, plane):
    """plane = the (H, W) window of ``buf`` that ``_pad_into`` filled from it, 0 where it
    was cropped away."""
    h, w = plane.shape
    for sy in range(h):
        py = sy + ph
        for sx in range(w):
            px = sx + pw
            inside = 0 <= py < buf.shape[0] and 0 <= px < buf.shape[1]
            plane[sy, sx] = buf[py, px] if inside else 0


@_specialised
def depthwise(kh, kw, sh, sw, dh, dw, ph, pw, dtype):
    """kernel(x, w, y): y[n, c, oy, ox] = Σ_ij w[c, i, j]·x[n, c, oy·sh + i·dh − ph,
    ox·sw + j·dw − pw] (0 outside x); x (N, C, H, W), w (C, kh, kw), y (N, C, Ho, Wo)."""
    pad = helper(_pad_into)

    def kernel(x, w, y):
        n_, c_, h, wd = x.shape
        ho, wo = y.shape[2], y.shape[3]
        buf = np.empty((h + 2 * ph, wd + 2 * pw), dtype=x.dtype)
        for n in range(n_):
            for c in range(c_):
                pad(x[n, c], ph, pw, buf)
                out = y[n, c]
                for oy in range(ho):
                    out[oy, :] = 0
                    for i in range(kh):
                        py = oy * sh + i * dh
                        for j in range(kw):
                            wv = w[c, i, j]
                            for ox in range(wo):
                                out[oy, ox] += wv * buf[py, ox * sw + j * dw]
        return y

    return kernel


@_specialised
def depthwise_backward_input(kh, kw, sh, sw, dh, dw, ph, pw, dtype):
    """kernel(dy, w, dx): the adjoint of ``depthwise`` in x; dx (N, C, H, W) set here."""
    crop = helper(_crop_from)

    def kernel(dy, w, dx):
        n_, c_, h, wd = dx.shape
        ho, wo = dy.shape[2], dy.shape[3]
        buf = np.empty((h + 2 * ph, wd + 2 * pw), dtype=dx.dtype)
        for n in range(n_):
            for c in range(c_):
                buf[:] = 0
                grad = dy[n, c]
                for oy in range(ho):
                    for i in range(kh):
                        py = oy * sh + i * dh
                        for j in range(kw):
                            wv = w[c, i, j]
                            for ox in range(wo):
                                buf[py, ox * sw + j * dw] += wv * grad[oy, ox]
                crop(buf, ph, pw, dx[n, c])
        return dx

    return kernel


@_specialised
def depthwise_backward_weights(kh, kw, sh, sw, dh, dw, ph, pw, dtype):
    """kernel(dy, x, gw): gw[c, i, j] (float64, set here) = Σ over images and output pixels
    of dy·(the input pixel that offset (i, j) read)."""
    pad = helper(_pad_into)

    def kernel(dy, x, gw):
        n_, c_, h, wd = x.shape
        ho, wo = dy.shape[2], dy.shape[3]
        buf = np.empty((h + 2 * ph, wd + 2 * pw), dtype=x.dtype)
        acc = np.empty((kh, kw, wo), dtype=dy.dtype)
        for c in range(c_):
            acc[:] = 0
            for n in range(n_):
                pad(x[n, c], ph, pw, buf)
                grad = dy[n, c]
                for oy in range(ho):
                    for i in range(kh):
                        py = oy * sh + i * dh
                        for j in range(kw):
                            for ox in range(wo):
                                acc[i, j, ox] += grad[oy, ox] * buf[py, ox * sw + j * dw]
            for i in range(kh):
                for j in range(kw):
                    total = 0.0
                    for ox in range(wo):
                        total += acc[i, j, ox]
                    gw[c, i, j] = total
        return gw

    return kernel
