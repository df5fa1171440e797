"""Cell types, one module per family; importing this package registers every ``Type=``."""

from n2d2py.cells import batchnorm, conv, deconv, detection, dropout, elemwise, fc, lrn  # noqa: F401
from n2d2py.cells import padding  # noqa: F401
from n2d2py.cells import pool, reshape, resize, softmax, threshold, transformation  # noqa: F401
from n2d2py.cells import transpose  # noqa: F401
