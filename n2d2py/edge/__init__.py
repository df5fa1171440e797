"""Edge learning: an Akida-style binary-weight layer (``Type=EdgeFc``) that learns classes in one
pass on top of a frozen feature extractor, and the tools to size it. Importing this package
registers ``EdgeFc`` in CELLS."""

from n2d2py.edge import cell  # noqa: F401  (fills CELLS: EdgeFc)
from n2d2py.edge.layer import EdgeLayer  # noqa: F401
