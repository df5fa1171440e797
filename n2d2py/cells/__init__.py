"""Cell types, one module per family; importing this package registers every ``Type=``."""

from n2d2py.cells import conv, dropout, elemwise, fc, pool, softmax  # noqa: F401
