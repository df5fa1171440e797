"""Winograd F(4×4, 3×3) transforms of a 3×3, stride-1 convolution (Lavin & Gray, 2016).

An output tile of 4×4 pixels of one map is Aᵀ [Σ_c (G g_c Gᵀ) ⊙ (Bᵀ d_c B)] A, where d_c is
the 6×6 input tile of channel c (the padded input at rows 4ty..4ty+5, columns 4tx..4tx+5)
and g_c its 3×3 kernel: 36 multiplications per tile and channel instead of 144. The sum over
channels is 36 GEMMs, (O, C) @ (C, tiles), one per position ξ = 6a + b of the 6×6 tile
(numpy's BLAS: ``cells._winograd``); these kernels do the transforms around them, for a group
of images, with (interpolation points 0, ±1, ±2, ∞)

    Bᵀ = [[4, 0, −5, 0, 1, 0], [0, −4, −4, 1, 1, 0], [0, 4, −4, −1, 1, 0],
          [0, −2, −1, 2, 1, 0], [0, 2, −1, −2, 1, 0], [0, 4, 0, −5, 0, 1]],
    Aᵀ = [[1, 1, 1, 1, 1, 0], [0, 1, −1, 2, −2, 0], [0, 1, 1, 4, 4, 0], [0, 1, −1, 8, −8, 1]],
    G  = [[1/4, 0, 0], [−1/6, −1/6, −1/6], [−1/6, 1/6, −1/6], [1/24, 1/12, 1/6],
          [1/24, −1/12, 1/6], [0, 0, 1]].

Layout: a "plane" is one (channel, image) pair of the group, numbered k = c·g + i, so that the
GEMMs' (C, g·R) operands are the planes one after the other, each with its R = th·tw tiles,
p = ty·tw + tx. The input transform first combines the tile rows along each padded row of the
input (contiguous reads), into ``rows``: for each row of tiles its padded columns 0..4tw − 1
and, shifted, 4..4tw + 3 (the two columns each tile reads past its own four); then the
columns, tile by tile, with stride-4 reads. The output transform does the reverse and copies
the rows out; the gradient transform (for the weight gradient) is the output's adjoint. Each
loop computes all the outputs of one input group (one row of Bᵀ d, one column block of ξ),
written through a 2-D block with constant row indices: the forms the compiler vectorises
(one loop per output over 1-D views ran 2.6× slower; strided views, 1.5× slower). Constants are
the arrays' dtype (a Python 4 would make the arithmetic float64).
"""

import numpy as np

from n2d2py.kernels._compile import _specialised, helper

G = np.array([[1 / 4, 0, 0], [-1 / 6, -1 / 6, -1 / 6], [-1 / 6, 1 / 6, -1 / 6],
              [1 / 24, 1 / 12, 1 / 6], [1 / 24, -1 / 12, 1 / 6], [0, 0, 1]])


def _bt(out, q, a0, a1, a2, a3, a4, a5, two, four, five):
    """out[0:6, q] = Bᵀ (a0, ..., a5): one row or column of a 6×6 input tile transformed."""
    out[0, q] = four * a0 - five * a2 + a4
    out[1, q] = (a3 + a4) - four * (a1 + a2)
    out[2, q] = (a4 - a3) + four * (a1 - a2)
    out[3, q] = (a4 - a2) + two * (a3 - a1)
    out[4, q] = (a4 - a2) - two * (a3 - a1)
    out[5, q] = four * a1 - five * a3 + a5


def _a(out, q, a0, a1, a2, a3, two, four, eight):
    """out[0:6, q] = A (a0, ..., a3): one row or column of a 4×4 gradient tile transformed."""
    out[0, q] = a0
    out[1, q] = a0 + a1 + a2 + a3
    out[2, q] = a0 - a1 + a2 - a3
    out[3, q] = a0 + two * a1 + four * a2 + eight * a3
    out[4, q] = a0 - two * a1 + four * a2 - eight * a3
    out[5, q] = a3


@_specialised
def input_transform(ph, pw, dtype):
    """kernel(x, th, tw, rows, v): x (g, C, H, W) a group of images, padded by (ph, pw) ≥ 0
    and with zeros past it; rows (12, C·g·R·4 + 8) scratch; v (36, C·g·R) set here."""
    two, four, five = (np.dtype(dtype).type(k) for k in (2, 4, 5))
    b_row = helper(_bt)

    def kernel(x, th, tw, rows, v):
        g_, c_, h, w = x.shape
        wide = 4 * tw  # a row of tiles, in padded columns
        zero = np.zeros(w, dtype=x.dtype)
        near, far = rows[0:6], rows[6:12]  # its columns 0..4tw−1, and 4..4tw+3
        lo, hi = min(w, wide - pw), max(0, w + pw - 4)  # source columns in near, in far
        for k in range(c_ * g_):  # Bᵀ d: the tile rows' combinations, row by row
            plane = x[k % g_, k // g_]
            for ty in range(th):
                r = 4 * ty - ph
                d0 = plane[r] if 0 <= r < h else zero
                d1 = plane[r + 1] if 0 <= r + 1 < h else zero
                d2 = plane[r + 2] if 0 <= r + 2 < h else zero
                d3 = plane[r + 3] if 0 <= r + 3 < h else zero
                d4 = plane[r + 4] if 0 <= r + 4 < h else zero
                d5 = plane[r + 5] if 0 <= r + 5 < h else zero
                at = max(0, (k * th + ty) * wide)  # known ≥ 0: vectorised (kernels/__init__)
                for j in range(6):
                    for q in range(pw):
                        near[j, at + q] = 0
                    for q in range(pw + lo, wide):
                        near[j, at + q] = 0
                    for q in range(hi, wide):
                        far[j, at + q] = 0
                b = at + pw
                for q in range(lo):
                    b_row(near, b + q, d0[q], d1[q], d2[q], d3[q], d4[q], d5[q], two, four, five)
                s = 4 - pw
                for q in range(hi):  # the same, 4 columns to the left
                    b_row(far, at + q, d0[q + s], d1[q + s], d2[q + s], d3[q + s], d4[q + s],
                          d5[q + s], two, four, five)
        for a in range(6):  # (Bᵀ d) B: the columns' combinations, tile by tile
            e, f = near[a], far[a]
            t = v[6 * a:6 * a + 6]
            for p in range(c_ * g_ * th * tw):
                b_row(t, p, e[4 * p], e[4 * p + 1], e[4 * p + 2], e[4 * p + 3], f[4 * p],
                   f[4 * p + 1], two, four, five)
        return v

    return kernel


@_specialised
def output_transform(dtype):
    """kernel(m, th, tw, s, rows, bias, y): m (36, O·g·R) the GEMMs' results for a group of
    images; s (6, 4, n·R) and rows (4, n·4R) scratch for n planes at a time (any n ≥ 1);
    y (g, O, Ho, Wo) set here to the transform plus ``bias`` (O,) (pixels past Ho or Wo
    dropped)."""
    two, four, eight = (np.dtype(dtype).type(k) for k in (2, 4, 8))

    def kernel(m, th, tw, s, rows, bias, y):
        g_, o_, ho, wo = y.shape
        wp = 4 * tw
        rr = th * tw
        chunk = s.shape[2] // rr  # planes at a time: their sums stay in the cache
        for first in range(0, o_ * g_, chunk):
            last = min(o_ * g_, first + chunk)
            at = max(0, first * rr)  # known ≥ 0: vectorised (kernels/__init__)
            n = (last - first) * rr
            for b in range(6):  # Aᵀ m: the tile rows' combinations
                m0, m1, m2 = m[b], m[6 + b], m[12 + b]
                m3, m4, m5 = m[18 + b], m[24 + b], m[30 + b]
                t = s[b]
                for p in range(n):
                    a1, a2, a3, a4 = m1[at + p], m2[at + p], m3[at + p], m4[at + p]
                    t[0, p] = m0[at + p] + a1 + a2 + a3 + a4
                    t[1, p] = (a1 - a2) + two * (a3 - a4)
                    t[2, p] = (a1 + a2) + four * (a3 + a4)
                    t[3, p] = (a1 - a2) + eight * (a3 - a4) + m5[at + p]
            for i in range(4):  # (Aᵀ m) A: the columns', in the output rows' order
                t0, t1, t2 = s[0, i], s[1, i], s[2, i]
                t3, t4, t5 = s[3, i], s[4, i], s[5, i]
                out = rows[i]
                for p in range(n):
                    a1, a2, a3, a4 = t1[p], t2[p], t3[p], t4[p]
                    out[4 * p] = t0[p] + a1 + a2 + a3 + a4
                    out[4 * p + 1] = (a1 - a2) + two * (a3 - a4)
                    out[4 * p + 2] = (a1 + a2) + four * (a3 + a4)
                    out[4 * p + 3] = (a1 - a2) + eight * (a3 - a4) + t5[p]
            for k in range(first, last):  # the rows of each plane into y
                o = k // g_
                shift = bias[o]
                dst = y[k % g_, o]
                base = (k - first) * 4 * rr
                for oy in range(ho):
                    start = base + (oy // 4) * wp
                    src = rows[oy % 4, start:start + wo]
                    row = dst[oy]
                    for ox in range(wo):
                        row[ox] = src[ox] + shift
        return y

    return kernel


@_specialised
def gradient_transform(dtype):
    """kernel(dz, th, tw, rows, z): dz (g, O, Ho, Wo) the output gradient of a group of
    images; rows (6, O·g·4R + 8) scratch; z (36, O·g·R) set here to A dY Aᵀ of every 4×4 tile
    of dz (zeros past Ho and Wo). With the input's transform
    V, Σ_tiles z[ξ] V[ξ]ᵀ is the gradient of U = G g Gᵀ, which Gᵀ · G turns into g's."""
    two, four, eight = (np.dtype(dtype).type(k) for k in (2, 4, 8))
    a_row = helper(_a)

    def kernel(dz, th, tw, rows, z):
        g_, o_, ho, wo = dz.shape
        wp = 4 * tw
        stride = th * wp
        zero = np.zeros(wo, dtype=dz.dtype)
        for k in range(o_ * g_):  # A dY: the tile rows' combinations, row by row
            plane = dz[k % g_, k // g_]
            for ty in range(th):
                at = max(0, k * stride + ty * wp)  # known ≥ 0: vectorised (kernels/__init__)
                for j in range(6):
                    for q in range(wo, wp):
                        rows[j, at + q] = 0
                r = 4 * ty
                d0 = plane[r]
                d1 = plane[r + 1] if r + 1 < ho else zero
                d2 = plane[r + 2] if r + 2 < ho else zero
                d3 = plane[r + 3] if r + 3 < ho else zero
                for q in range(wo):
                    a_row(rows, at + q, d0[q], d1[q], d2[q], d3[q], two, four, eight)
        end = o_ * g_ * stride
        for a in range(6):  # (A dY) Aᵀ: the columns' combinations, tile by tile
            e = rows[a]
            t = z[6 * a:6 * a + 6]
            for p in range(end // 4):
                a_row(t, p, e[4 * p], e[4 * p + 1], e[4 * p + 2], e[4 * p + 3], two, four, eight)
        return z

    return kernel


@_specialised
def kernel_transform(w_dtype, dtype):
    """kernel(w, u, o0, o1): u[:, o0:o1] (u (36, O, C) of ``dtype``) set to U = G g Gᵀ of each
    3×3 kernel g = w[o, c] (w (O, C, 3, 3) of ``w_dtype``), computed in float64 and rounded
    once. One
    output map at a time: its kernels transposed to (9, C), then G g and (G g) Gᵀ row by row,
    vectorised over the channels (a 128 → 128 layer: 0.25 ms, writing U's 2.4 MB; the float64
    GEMM by G ⊗ G it replaces took 0.8 ms with its conversions, each batch)."""
    g = G  # a constant of the compiled code

    def kernel(w, u, o0, o1):
        o_, c_ = w.shape[0], w.shape[1]
        k9 = np.empty((9, c_))  # one map's kernels, transposed
        t = np.empty((18, c_))  # G g: t[3a + s] = Σ_r G[a, r] g[r, s]
        flat = w.reshape(o_, c_ * 9)
        for o in range(o0, o1):
            src = flat[o]
            for c in range(c_):
                for k in range(9):
                    k9[k, c] = src[9 * c + k]
            for a in range(6):
                for s in range(3):
                    dst, r0, r1, r2 = t[3 * a + s], k9[s], k9[3 + s], k9[6 + s]
                    for c in range(c_):
                        dst[c] = g[a, 0] * r0[c] + g[a, 1] * r1[c] + g[a, 2] * r2[c]
            for a in range(6):
                t0, t1, t2 = t[3 * a], t[3 * a + 1], t[3 * a + 2]
                for b in range(6):
                    dst = u[6 * a + b, o]
                    for c in range(c_):
                        dst[c] = t0[c] * g[b, 0] + t1[c] * g[b, 1] + t2[c] * g[b, 2]
        return u

    return kernel


@_specialised
def kernel_gradient(dtype):
    """kernel(m, dw, o0, o1): dw[o0:o1] (dw (O, C·9) float64) set to Gᵀ m G for each (o, c),
    from the sums of the tiles' products m (36, O, C) float64: the gradient of the 3×3 kernels
    from that of U.
    Row by row over the channels as ``kernel_transform``, transposed into dw at the end."""
    g = G

    def kernel(m, dw, o0, o1):
        c_ = m.shape[2]
        t = np.empty((18, c_))  # Gᵀ m: t[6r + b] = Σ_a G[a, r] m[6a + b]
        k9 = np.empty((9, c_))
        for o in range(o0, o1):
            for r in range(3):
                for b in range(6):
                    dst = t[6 * r + b]
                    m0, m1, m2 = m[b, o], m[6 + b, o], m[12 + b, o]
                    m3, m4, m5 = m[18 + b, o], m[24 + b, o], m[30 + b, o]
                    for c in range(c_):
                        dst[c] = (g[0, r] * m0[c] + g[1, r] * m1[c] + g[2, r] * m2[c]
                                  + g[3, r] * m3[c] + g[4, r] * m4[c] + g[5, r] * m5[c])
            for r in range(3):
                for s in range(3):
                    dst = k9[3 * r + s]
                    for c in range(c_):
                        dst[c] = (t[6 * r, c] * g[0, s] + t[6 * r + 1, c] * g[1, s]
                                  + t[6 * r + 2, c] * g[2, s] + t[6 * r + 3, c] * g[3, s]
                                  + t[6 * r + 4, c] * g[4, s] + t[6 * r + 5, c] * g[5, s])
            row = dw[o]
            for c in range(c_):
                for k in range(9):
                    row[9 * c + k] = k9[k, c]
        return dw

    return kernel
