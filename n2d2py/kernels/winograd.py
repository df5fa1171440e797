"""Winograd F(2×2, 3×3) transforms of a 3×3, stride-1 convolution (Lavin & Gray, 2016).

An output tile of 2×2 pixels of one map is Aᵀ [Σ_c (G g_c Gᵀ) ⊙ (Bᵀ d_c B)] A, where d_c is
the 4×4 input tile of channel c (the padded input at rows 2ty..2ty+3, columns 2tx..2tx+3)
and g_c its 3×3 kernel: 16 multiplications per tile and channel instead of 36. The sum over
channels is 16 GEMMs, (O, C) @ (C, tiles), one per position ξ = 4a + b of the 4×4 tile
(numpy's BLAS: ``cells._winograd``); these kernels do the transforms around them, for one
image, with

    Bᵀ = [[1, 0, −1, 0], [0, 1, 1, 0], [0, −1, 1, 0], [0, 1, 0, −1]],
    Aᵀ = [[1, 1, 1, 0], [0, 1, −1, −1]].

Layout: tiles are numbered "wide", p = ty·(tw + 1) + tx, one unused tile per row of tiles.
The padded input is split into its four (row, column) parity planes, each flattened with row
length tw + 1: the input pixel (2ty + a, 2tx + b) of tile p is element p + (a // 2)·(tw + 1)
+ b // 2 of parity plane (a % 2, b % 2). Every row of Bᵀ d B (and of Aᵀ m A) is then a sum of
shifted flat arrays, and each is computed by its own loop over all tiles with one output and
two or three inputs, which the compiler vectorises (one loop writing sixteen outputs at once
was 2-3× slower: it is not vectorised).
"""

import numpy as np

from n2d2py.kernels._compile import _specialised


@_specialised
def input_transform(ph, pw, dtype):
    """kernel(x, th, tw, v, p0): x (C, H, W) one image, padded by (ph, pw) ≥ 0 and with zeros
    past it; v[:, :, p0 : p0 + th·(tw + 1)] (16, C, ·) set here, unused tiles included."""

    def kernel(x, th, tw, v, p0):
        c_, h, w = x.shape
        half = tw + 1
        wide = th * half
        n = wide + 1
        par = np.empty((2, 2, (th + 2) * half + 2), dtype=x.dtype)
        u = np.empty((4, 2, n), dtype=x.dtype)
        for c in range(c_):
            par[:, :, :] = 0
            plane = x[c]
            for sy in range(h):  # the plane into its parity planes
                py = sy + ph
                row = (py // 2) * half
                src = plane[sy]
                for cp in range(2):
                    dst = par[py % 2, cp, row:row + half]
                    for sx in range((cp - pw) % 2, w, 2):
                        dst[(sx + pw) // 2] = src[sx]
            for cp in range(2):  # Bᵀ d: the tile rows' combinations, per column parity
                a0, a2 = par[0, cp, 0:n], par[0, cp, half:half + n]
                a1, a3 = par[1, cp, 0:n], par[1, cp, half:half + n]
                u0, u1, u2, u3 = u[0, cp], u[1, cp], u[2, cp], u[3, cp]
                for q in range(n):
                    u0[q] = a0[q] - a2[q]
                for q in range(n):
                    u1[q] = a1[q] + a2[q]
                for q in range(n):
                    u2[q] = a2[q] - a1[q]
                for q in range(n):
                    u3[q] = a1[q] - a3[q]
            for a in range(4):  # (Bᵀ d) B: the columns' combinations
                e, o = u[a, 0], u[a, 1]
                e1, o1 = e[1:n], o[1:n]
                v0, v1 = v[4 * a, c, p0:p0 + wide], v[4 * a + 1, c, p0:p0 + wide]
                v2, v3 = v[4 * a + 2, c, p0:p0 + wide], v[4 * a + 3, c, p0:p0 + wide]
                for p in range(wide):
                    v0[p] = e[p] - e1[p]
                for p in range(wide):
                    v1[p] = o[p] + e1[p]
                for p in range(wide):
                    v2[p] = e1[p] - o[p]
                for p in range(wide):
                    v3[p] = o[p] - o1[p]
        return v

    return kernel


@_specialised
def output_transform(dtype):
    """kernel(m, th, tw, y, p0): m[:, :, p0 : p0 + th·(tw + 1)] (16, O, ·) one image's GEMM
    results; y (O, Ho, Wo) set here (unused tiles, and pixels past an odd Ho or Wo, dropped)."""

    def kernel(m, th, tw, y, p0):
        o_, ho, wo = y.shape
        half = tw + 1
        wide = th * half
        s = np.empty((2, 4, wide), dtype=y.dtype)
        r = np.empty((2, 2, wide), dtype=y.dtype)
        for o in range(o_):
            for b in range(4):  # Aᵀ m: the tile rows' combinations
                m0, m1 = m[b, o, p0:p0 + wide], m[4 + b, o, p0:p0 + wide]
                m2, m3 = m[8 + b, o, p0:p0 + wide], m[12 + b, o, p0:p0 + wide]
                s0, s1 = s[0, b], s[1, b]
                for p in range(wide):
                    s0[p] = m0[p] + m1[p] + m2[p]
                for p in range(wide):
                    s1[p] = m1[p] - m2[p] - m3[p]
            for dy in range(2):  # (Aᵀ m) A: the columns' combinations
                t0, t1, t2, t3 = s[dy, 0], s[dy, 1], s[dy, 2], s[dy, 3]
                r0, r1 = r[dy, 0], r[dy, 1]
                for p in range(wide):
                    r0[p] = t0[p] + t1[p] + t2[p]
                for p in range(wide):
                    r1[p] = t1[p] - t2[p] - t3[p]
            out = y[o]
            for oy in range(ho):  # the 2×2 tiles into the output's rows
                base = (oy // 2) * half
                even, odd = r[oy % 2, 0, base:base + half], r[oy % 2, 1, base:base + half]
                row = out[oy]
                for t in range(wo // 2):
                    row[2 * t] = even[t]
                    row[2 * t + 1] = odd[t]
                if wo % 2:
                    row[wo - 1] = even[wo // 2]
        return y

    return kernel
