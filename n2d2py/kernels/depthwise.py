"""Depthwise convolution (one input channel per output map, its own kh×kw kernel) as a
direct loop: no im2col columns, no dense (C, C, kh, kw) weights multiplied by zeros.

Each kernel copies one image channel at a time into a padded scratch plane (the padding, or a
negative padding's crop, applied there once). The forward sums each output pixel's kh·kw
terms in a register (``depthwise``); at stride 1 the input gradient is that same kernel on
dz with the kernels flipped (``cells._grouped``). At other strides the input gradient splits
the plane into its stride phases and runs one loop over a whole "wide" plane per kernel
offset (i, j); the weight gradient runs, for every output row and offset, a loop along the
row whose indices ox·sw + j·dw are non-negative by construction, so the compiler drops
numba's negative-index wrap-around and vectorises it.
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


def _pad_phases(plane, ph, pw, sh, sw, wq, out):
    """The plane padded by (ph, pw) (a negative padding crops) and split into its sh×sw
    stride phases, each flattened with row length wq, zeros elsewhere (out's tail, the slack
    shifted reads run into, included): out[a, b, u·wq + v] = plane[u·sh + a − ph,
    v·sw + b − pw]. A strided window offset (i, j) then reads one contiguous shift of one
    phase. One pass over the plane, each row read once per column phase (2.6× faster at
    stride 2 than padding into a scratch plane and splitting that)."""
    h, w = plane.shape
    out[:] = 0
    hp, wp = h + 2 * ph, w + 2 * pw
    lo_x, hi_x = max(0, -pw), min(w, wp - pw)  # source columns inside the padded plane
    for sy in range(max(0, -ph), min(h, hp - ph)):
        row = sy + ph
        a, u = row % sh, row // sh
        src = plane[sy]
        for b in range(sw):
            first = lo_x + (b - lo_x - pw) % sw  # the first column of phase b
            if first >= hi_x:
                continue
            count = (hi_x - first + sw - 1) // sw
            dst = out[a, b, u * wq + (first + pw) // sw:]
            line = src[first:]
            for t in range(count):
                dst[t] = line[t * sw]


def _unphases(parts, sh, sw, wq, buf):
    """Inverse of ``_pad_phases``'s split: the padded plane ``buf`` put back together from
    its phases (every pixel of buf belongs to one phase)."""
    hp, wp = buf.shape
    for row in range(hp):
        a, u = row % sh, row // sh
        for col in range(wp):
            buf[row, col] = parts[a, col % sw, u * wq + col // sw]


def _layout(h, w, ph, pw, kw, sh, sw, dw):
    """(hp, wp, hq, wq, size): the padded plane, the phase planes' rows and row length, and
    the flat length of one phase plane with the slack its shifted reads run into."""
    hp, wp = h + 2 * ph, w + 2 * pw
    hq, wq = (hp + sh - 1) // sh, (wp + sw - 1) // sw
    return hp, wp, hq, wq, hq * wq + (kw - 1) * dw // sw + 1


@_specialised
def depthwise(kh, kw, sh, sw, dh, dw, ph, pw, dtype):
    """kernel(x, w, y): y[n, c, oy, ox] = Σ_ij w[c, i, j]·x[n, c, oy·sh + i·dh − ph,
    ox·sw + j·dw − pw] (0 outside x); x (N, C, H, W), w (C, kh, kw), y (N, C, Ho, Wo).

    Each image channel is copied into a padded scratch plane (the padding, or a negative
    padding's crop, applied there once); each output pixel is then one sum of its kh·kw
    terms in (i, j) order, in a register: the (i, j) loops have constant trip counts, so the
    compiler unrolls them and vectorises the loop along the output row. Measured against one
    multiply-add pass over the plane per offset (which loads and stores the accumulator
    kh·kw times), bit for bit the same values: 2.4× faster on 32×32 planes, 1.7× on 16×16,
    1.4× on 8×8 (short rows), 1.5-2× at stride 2. Flattening the plane "wide" instead
    measured slower: its shifted indices keep numba's negative-index checks."""
    pad = helper(_pad_into)
    zero = np.dtype(dtype).type(0)

    def kernel(x, w, y):
        n_, c_, h, wd = x.shape
        ho, wo = y.shape[2], y.shape[3]
        buf = np.empty((h + 2 * ph, wd + 2 * pw), dtype=x.dtype)
        for n in range(n_):
            for c in range(c_):
                pad(x[n, c], ph, pw, buf)
                wc, out = w[c], y[n, c]
                for oy in range(ho):
                    row = out[oy]
                    for ox in range(wo):
                        total = zero
                        for i in range(kh):
                            for j in range(kw):
                                total += wc[i, j] * buf[oy * sh + i * dh, ox * sw + j * dw]
                        row[ox] = total
        return y

    return kernel


@_specialised
def depthwise_backward_input(kh, kw, sh, sw, dh, dw, ph, pw, dtype):
    """kernel(dy, w, dx): the adjoint of ``depthwise`` in x; dx (N, C, H, W) set here. The
    same wide layout: dy is spread on wide rows (zeros past Wo), each offset (i, j) adds one
    shifted multiple of it into its phase plane, and the phases are put back and cropped."""
    crop, unphases, layout = helper(_crop_from), helper(_unphases), helper(_layout)

    def kernel(dy, w, dx):
        n_, c_, h, wd = dx.shape
        ho, wo = dy.shape[2], dy.shape[3]
        hp, wp, hq, wq, size = layout(h, wd, ph, pw, kw, sh, sw, dw)
        direct = sh == 1 and sw == 1
        parts = np.empty((sh, sw, size), dtype=dx.dtype)
        buf = parts[0, 0, :hp * wp].reshape((hp, wp)) if direct else np.empty((hp, wp), dx.dtype)
        wide = np.zeros(ho * wq, dtype=dx.dtype)  # its columns past Wo stay 0
        for n in range(n_):
            for c in range(c_):
                grad = dy[n, c]
                for oy in range(ho):
                    for ox in range(wo):
                        wide[oy * wq + ox] = grad[oy, ox]
                parts[:] = 0
                for i in range(kh):
                    for j in range(kw):
                        wv = w[c, i, j]
                        off = ((i * dh) // sh) * wq + (j * dw) // sw
                        dst = parts[(i * dh) % sh, (j * dw) % sw, off:off + ho * wq]
                        for t in range(ho * wq):
                            dst[t] += wv * wide[t]
                if not direct:
                    unphases(parts, sh, sw, wq, buf)
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
