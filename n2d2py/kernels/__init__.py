"""Compiled CPU kernels (numba) for the loops numpy cannot run in one pass.

numpy has no scatter-add over overlapping windows (col2im), no fused max-with-index over a
window (max pooling), and spends one temporary per operator in ReLU's backward. These kernels
do each in a single pass, for float32 and float64 alike (the gradient checks run in float64).
They are CPU-only: only ``backend.cpu_kernels`` hands them out, for numpy arrays; CuPy arrays
take the xp path next to each call site, which computes the same values (tests compare both on
numpy arrays). They run serially on the chunk of images they are given (``nogil``): the
callers spread the chunks of a batch over the worker threads (``backend.run_split``).

Each public function here builds a kernel for some constants (the window geometry, and the
dtype of the arrays it will see) and returns it compiled: numba takes the closure's integers
as constants, unrolls the window loops and drops the bounds checks that cannot fail, 3-10×
faster than a kernel reading the geometry at run time. A kernel is compiled on first use and
cached on disk (``cache=True``): the first run on a machine pays about a second per kernel,
later runs load the machine code. Every kernel has a cache name of its own (constants and
dtype included) and is only ever called with one signature (C-contiguous arrays of that
dtype): numba's on-disk index is not safe against two processes adding different entries to
the same index at once, which happens when test runs compile kernels side by side.

Indices: numba wraps a negative index as Python does, a select on every access that keeps
LLVM from vectorising a loop unless it can prove the index non-negative. A loop counter from
``range`` is; an offset computed from the arguments (a tile row's start, ``(k·th + ty)·4tw``)
is not, so the kernels write such offsets as ``max(0, offset)``: Winograd's row stage ran
scalar before, 1.5× slower over the whole input transform of a 32×32 plane.
"""

from n2d2py.kernels.activations import add_rectifier, rectifier, rectifier_backward
from n2d2py.kernels.batchnorm import (
    channel_sums, normalize, normalize_backward, normalize_backward_sums,
)
from n2d2py.kernels.depthwise import (
    depthwise, depthwise_backward_input, depthwise_backward_weights,
)
from n2d2py.kernels.direct import conv as direct_conv
from n2d2py.kernels.direct import conv_input as direct_conv_input
from n2d2py.kernels.direct import conv_weights as direct_conv_weights
from n2d2py.kernels.sgd import sgd_momentum
from n2d2py.kernels.sums import add_rows, add_transposed
from n2d2py.kernels.winograd import gradient_transform as winograd_gradient
from n2d2py.kernels.winograd import input_transform as winograd_input
from n2d2py.kernels.winograd import kernel_gradient as winograd_kernel_gradient
from n2d2py.kernels.winograd import kernel_transform as winograd_kernels
from n2d2py.kernels.winograd import output_transform as winograd_output
from n2d2py.kernels.windows import (
    average_pool, average_pool_backward, col2im, im2col, max_pool, max_pool_backward,
    transpose_last,
)

__all__ = [
    "add_rectifier", "add_rows", "add_transposed", "average_pool", "average_pool_backward",
    "channel_sums", "col2im", "depthwise", "depthwise_backward_input",
    "depthwise_backward_weights", "direct_conv", "direct_conv_input", "direct_conv_weights",
    "im2col", "max_pool", "max_pool_backward", "normalize", "normalize_backward",
    "normalize_backward_sums", "rectifier", "rectifier_backward", "sgd_momentum",
    "transpose_last", "winograd_gradient", "winograd_input",
    "winograd_kernel_gradient", "winograd_kernels", "winograd_output",
]
