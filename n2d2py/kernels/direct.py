"""Direct stride-1 convolution over a channel map: no im2col columns, no GEMM, for layers with
few channels (LeNet's conv1 and conv2), where the GEMMs are too small to run fast.

The kernels lay each padded input plane out flat, "wide": output pixel (oy, ox) is position
t = oy·Wp + ox of a row of length Wp (the padded width), so that kernel offset (i, j) reads
the plane at t + i·dh·Wp + j·dw, one contiguous shift for every output pixel; the loop along
t is long and vectorises (the Wp − Wo positions at the end of each row are computed and
dropped: 14 % more work on LeNet's conv1, 36 % on conv2). The plane's size is a constant of
the kernel, so every offset is one and numba's negative-index checks compile away.

The channel map is given as lists: output o reads the channels ``chans[starts[o]:
starts[o + 1]]`` (all of them for a full map); unmapped pairs cost nothing and their weights
are never read.

With ``act`` 1 the kernels also run the cell's Rectifier (LeakSlope ≥ 0, Clipping): the
forward on its outputs as it writes them, the two gradients on dy as they read it (dz = the
Rectifier's gradient, from the outputs y: y > 0 exactly where the pre-activation is, y <
Clipping too), so that neither the activation nor its gradient takes a pass of its own over
the batch (LeNet's conv1: 0.07 and 0.13 ms per batch of 64).
"""

import numba
import numpy as np

from n2d2py.kernels._compile import _specialised, helper
from n2d2py.kernels.activations import _rectified
from n2d2py.kernels.depthwise import _crop_from, _pad_into


def _fastmath(flags):
    """``_specialised`` with numba's fastmath ``flags``."""
    return lambda builder: _specialised(builder, fastmath=flags)


def _geometry(kh, kw, dh, dw, ph, pw, h, w):
    """(hp, wp, ho, wo, span): the padded plane, the output plane and the wide positions
    (ho − 1)·wp + wo that reach every output pixel."""
    hp, wp = h + 2 * ph, w + 2 * pw
    ho, wo = hp - dh * (kh - 1), wp - dw * (kw - 1)
    return hp, wp, ho, wo, (ho - 1) * wp + wo


def _taps(kh, kw, row, col, zero):
    """taps(acc, src, wc, n): acc[t] += Σ_ij wc[i, j]·src[t + i·row + j·col] for t < n, each
    kernel row's kw terms summed in a register before the row is added (independent chains:
    see ``conv``). Inlined into the kernel that calls it, with its constants (its loops
    unrolled, the weights in registers, the caller's fastmath flags)."""

    def taps(acc, src, wc, n):
        for t in range(n):
            total = acc[t]
            for i in range(kh):
                part = zero
                for j in range(kw):
                    part += wc[i, j] * src[t + i * row + j * col]
                total += part
            acc[t] = total

    return numba.njit(inline="always")(taps)


def _rectified_grad(g, v, leak, clip):
    """The gradient through the Rectifier of one output v (``_rectified``'s) of g: g where
    0 < v (and v < clip when clip > 0), leak·g where v ≤ 0, else 0."""
    if v > 0:
        return g if (clip <= 0 or v < clip) else leak - leak  # (leak: the dtype's 0)
    return leak * g


@_fastmath({"contract"})
def conv(kh, kw, dh, dw, ph, pw, h, w, dtype, act=0):
    """kernel(x, wt, bias, starts, chans, leak, clip, y): y[n, o] = f(bias[o] + Σ over the
    mapped channels c of o and the offsets (i, j) of wt[o, c, i, j]·x[n, c, oy + i·dh − ph,
    ox + j·dw − pw] (0 outside x)), f the identity (act 0) or the Rectifier of ``leak`` and
    ``clip`` (act 1); x (N, C, h, w), wt (O, C, kh, kw), y (N, O, Ho, Wo) set here.

    Each wide position sums one kernel row's kw terms in a register, then the rows, then adds
    that into the output plane's accumulator: the kh·kw weights of a channel stay in vector
    registers, and the kh sums are independent chains, contracted into FMAs (``contract``):
    1.25× faster on LeNet than one chain of kh·kw multiplications and additions. The values
    are the same whatever the threads: an image is always computed alone."""
    pad, rectified = helper(_pad_into), helper(_rectified)
    hp, wp, ho, wo, span = _geometry(kh, kw, dh, dw, ph, pw, h, w)
    taps = _taps(kh, kw, dh * wp, dw, np.dtype(dtype).type(0))

    def kernel(x, wt, bias, starts, chans, leak, clip, y):
        n_, c_ = x.shape[0], x.shape[1]
        buf = np.zeros((c_, hp, wp), dtype=x.dtype)
        acc = np.empty(span, dtype=x.dtype)
        for n in range(n_):
            for c in range(c_):
                pad(x[n, c], ph, pw, buf[c])
            for o in range(y.shape[1]):
                acc[:] = bias[o]
                for q in range(starts[o], starts[o + 1]):
                    c = chans[q]
                    src, wc = buf[c].reshape(hp * wp), wt[o, c]
                    taps(acc, src, wc, span)
                out = y[n, o]
                for oy in range(ho):
                    row, line = out[oy], acc[oy * wp:]
                    for ox in range(wo):
                        row[ox] = rectified(line[ox], leak, clip) if act == 1 else line[ox]
        return y

    return kernel


@_fastmath({"contract"})
def conv_input(kh, kw, dh, dw, ph, pw, h, w, dtype, act=0):
    """kernel(dy, y, leak, clip, wf, starts, chans, dx): the gradient of ``conv`` in x:
    dx (N, C, h, w) set here from dy (N, O, Ho, Wo) (with act 1, through the Rectifier of
    the outputs y: dz), with wf[c, o] = wt[o, c] flipped (kernel offsets reversed) and the
    channel map transposed (input c feeds the outputs chans[starts[c]:starts[c + 1]]).

    The gather of ``conv`` over x's own wide layout: dz is laid on rows of x's padded width Wp
    after (kh − 1)·dh rows and (kw − 1)·dw positions of zeros, so that position t of the
    padded plane reads dz at t + i·dh·Wp + j·dw; a column left of the plane falls on the
    previous row's Wp − Wo = dw·(kw − 1) positions past Wo, zeros too. Per channel pair that
    is Hp·Wp positions, where ``conv`` on dz padded by d·(k − 1) − p did (H − 1)·(Wo + 2·dw·
    (kw − 1)) + W (LeNet's conv2: 196 instead of 248: 1.3× faster)."""
    crop, grad = helper(_crop_from), helper(_rectified_grad)
    hp, wp, ho, wo, _ = _geometry(kh, kw, dh, dw, ph, pw, h, w)
    front = (kh - 1) * dh * wp + (kw - 1) * dw
    zero = np.dtype(dtype).type(0)
    taps = _taps(kh, kw, dh * wp, dw, zero)

    def kernel(dy, y, leak, clip, wf, starts, chans, dx):
        o_ = dy.shape[1]
        buf = np.zeros((o_, front + hp * wp), dtype=dy.dtype)  # only dz's pixels written
        acc = np.empty((hp, wp), dtype=dy.dtype)
        flat = acc.reshape(hp * wp)
        for n in range(dy.shape[0]):
            for o in range(o_):
                for oy in range(ho):
                    row, yr, line = dy[n, o, oy], y[n, o, oy], buf[o, front + oy * wp:]
                    for ox in range(wo):
                        line[ox] = grad(row[ox], yr[ox], leak, clip) if act == 1 else row[ox]
            for c in range(dx.shape[1]):
                flat[:] = zero
                for q in range(starts[c], starts[c + 1]):
                    o = chans[q]
                    src, wc = buf[o], wf[c, o]
                    taps(flat, src, wc, hp * wp)
                crop(acc, ph, pw, dx[n, c])
        return dx

    return kernel


@_fastmath({"reassoc", "contract"})
def conv_weights(kh, kw, dh, dw, ph, pw, h, w, dtype, act=0):
    """kernel(dy, y, leak, clip, x, starts, chans, gw, gb): gw[o, c, i, j] (set here; 0 for
    unmapped pairs) = Σ over the images and output pixels of dz[n, o, oy, ox]·x[n, c,
    oy + i·dh − ph, ox + j·dw − pw], and gb[o] = Σ dz[n, o], in dy's dtype: one
    micro-slice's partials (``parallel.slices``). dz is dy, or with act 1 dy through the
    Rectifier of the outputs y (``conv_input``).

    dz is spread on wide rows (zeros past Wo), so that each weight is a dot product along t
    of dz's wide plane and a shift of x's; the compiler vectorises it into partial sums
    (``reassoc``), and four kernel rows share each load of dz (1.15× faster than one)."""
    pad, grad = helper(_pad_into), helper(_rectified_grad)
    hp, wp, ho, wo, span = _geometry(kh, kw, dh, dw, ph, pw, h, w)
    zero = np.dtype(dtype).type(0)

    def kernel(dy, y, leak, clip, x, starts, chans, gw, gb):
        n_, c_, o_ = x.shape[0], x.shape[1], dy.shape[1]
        buf = np.zeros((c_, hp, wp), dtype=x.dtype)
        wide = np.zeros((o_, span), dtype=dy.dtype)  # its positions past Wo stay 0
        gw[:] = zero
        gb[:] = zero
        for n in range(n_):
            for c in range(c_):
                pad(x[n, c], ph, pw, buf[c])
            for o in range(o_):
                total = zero
                for oy in range(ho):
                    row, yr, line = dy[n, o, oy], y[n, o, oy], wide[o, oy * wp:]
                    for ox in range(wo):
                        v = grad(row[ox], yr[ox], leak, clip) if act == 1 else row[ox]
                        line[ox] = v
                        total += v
                gb[o] += total
            for o in range(o_):
                g = wide[o]
                for q in range(starts[o], starts[o + 1]):
                    c = chans[q]
                    src, out = buf[c].reshape(hp * wp), gw[o, c]
                    for j in range(kw):
                        for i0 in range(0, kh, 4):  # constants: the guards compile away
                            s0 = s1 = s2 = s3 = zero
                            for t in range(span):
                                gt = g[t]
                                s0 += gt * src[t + i0 * dh * wp + j * dw]
                                if i0 + 1 < kh:
                                    s1 += gt * src[t + (i0 + 1) * dh * wp + j * dw]
                                if i0 + 2 < kh:
                                    s2 += gt * src[t + (i0 + 2) * dh * wp + j * dw]
                                if i0 + 3 < kh:
                                    s3 += gt * src[t + (i0 + 3) * dh * wp + j * dw]
                            out[i0, j] += s0
                            if i0 + 1 < kh:
                                out[i0 + 1, j] += s1
                            if i0 + 2 < kh:
                                out[i0 + 2, j] += s2
                            if i0 + 3 < kh:
                                out[i0 + 3, j] += s3
        return gw

    return kernel


