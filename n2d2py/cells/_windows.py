"""Sliding windows over NCHW arrays (im2col / col2im), shared by Conv and Pool.

Everything works on whatever array module owns the input (numpy or CuPy): windows are a
strided view from ``backend.sliding_window_view``, and col2im is a loop over the kernel
offsets only (kh·kw slice-adds over the whole batch), never over samples or pixels.
"""

from n2d2py.backend import array_module, sliding_window_view


def out_size(size, kernel, stride, pad, dilation=1):
    """N2D2's output size along one axis: floor((in + 2p - (d(k-1)+1) + s) / s)."""
    extent = dilation * (kernel - 1) + 1
    return (size + 2 * pad - extent + stride) // stride


def pad2d(x, pad, value=0.0):
    """Pad H and W of ``x`` by ``pad`` = (ph, pw) on both sides; a negative pad crops."""
    xp = array_module(x)
    ph, pw = pad
    if ph < 0:
        x = x[:, :, -ph : x.shape[2] + ph]
    if pw < 0:
        x = x[:, :, :, -pw : x.shape[3] + pw]
    ph, pw = max(ph, 0), max(pw, 0)
    if ph or pw:
        x = xp.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=value)
    return x


def unpad2d(g, pad):
    """Gradient of ``pad2d``: crop what was padded, zero-fill what was cropped."""
    return pad2d(g, (-pad[0], -pad[1]), 0.0)


def windows(x, kernel, stride=(1, 1), dilation=(1, 1)):
    """View (N, C, Ho, Wo, kh, kw) of the (already padded) ``x``; no copy."""
    (kh, kw), (sh, sw), (dh, dw) = kernel, stride, dilation
    extent = (dh * (kh - 1) + 1, dw * (kw - 1) + 1)
    view = sliding_window_view(x, extent, axis=(2, 3))
    return view[:, :, ::sh, ::sw, ::dh, ::dw]


def col2im(dwin, padded_hw, stride=(1, 1), dilation=(1, 1)):
    """Adjoint of ``windows``: sum (N, C, Ho, Wo, kh, kw) window gradients into (N, C, Hp, Wp)."""
    xp = array_module(dwin)
    n, c, ho, wo, kh, kw = dwin.shape
    (sh, sw), (dh, dw) = stride, dilation
    out = xp.zeros((n, c) + tuple(padded_hw), dtype=dwin.dtype)
    for i in range(kh):
        for j in range(kw):
            top, left = i * dh, j * dw
            rows = slice(top, top + sh * (ho - 1) + 1, sh)
            cols = slice(left, left + sw * (wo - 1) + 1, sw)
            out[:, :, rows, cols] += dwin[:, :, :, :, i, j]
    return out


def concat_channels(xs):
    """The inputs of a multi-input cell, concatenated along channels (no copy for one)."""
    if len(xs) == 1:
        return xs[0]
    return array_module(xs[0]).concatenate(xs, axis=1)


def split_channels(g, counts):
    """Inverse of ``concat_channels`` for gradients: one array per input."""
    if len(counts) == 1:
        return [g]
    bounds, total = [], 0
    for count in counts[:-1]:
        total += count
        bounds.append(total)
    return array_module(g).split(g, bounds, axis=1)
