"""Element-wise activation kernels (flat arrays)."""

from n2d2py.kernels._compile import _specialised, helper


def _rectified(v, leak, clip):
    """The Rectifier of one value: v (v > 0) or leak·v, then clip where clip > 0 and v > clip."""
    v = v if v > 0 else leak * v
    return clip if (clip > 0 and v > clip) else v


@_specialised
def rectifier(dtype):
    """kernel(x, leak, clip, y): y = x (x > 0) or leak·x, then min(y, clip) when clip > 0;
    flat arrays, leak and clip of the arrays' dtype."""

    rectified = helper(_rectified)

    def kernel(x, leak, clip, y):
        for k in range(x.size):
            y[k] = rectified(x[k], leak, clip)
        return y

    return kernel


@_specialised
def rectifier_backward(dtype):
    """kernel(dy, x, leak, clip, dx): dx = dy where 0 < x (< clip when clip > 0), leak·dy
    where x ≤ 0, else 0; flat arrays."""

    def kernel(dy, x, leak, clip, dx):
        for k in range(x.size):
            v = x[k]
            if v > 0:
                dx[k] = dy[k] if (clip <= 0 or v < clip) else 0
            else:
                dx[k] = leak * dy[k]
        return dx

    return kernel


@_specialised
def add_rectifier(act, dtype):
    """kernel(a, b, leak, clip, y): y = f(a + b), f the identity (act 0) or the Rectifier
    (act 1: ``rectifier``'s leak and clip); flat arrays. A residual sum and its ReLU in one
    pass over the data instead of two."""

    rectified = helper(_rectified)

    def kernel(a, b, leak, clip, y):
        for k in range(y.size):
            v = a[k] + b[k]
            y[k] = rectified(v, leak, clip) if act == 1 else v
        return y

    return kernel
