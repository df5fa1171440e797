"""Cell types, one module per family; importing this package registers every ``Type=``."""

from n2d2py.cells import batchnorm, conv, deconv, dropout, elemwise, fc, lrn, padding  # noqa: F401
from n2d2py.cells import pool, reshape, resize, softmax, threshold, transformation  # noqa: F401
from n2d2py.cells import transpose  # noqa: F401
