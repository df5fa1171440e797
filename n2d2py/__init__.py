"""n2d2py: an INI-driven deep neural network simulator in the lineage of CEA-LIST's N2D2."""

from n2d2py.blas_setup import choose_blas_kernels

choose_blas_kernels()  # before anything imports numpy

__version__ = "0.1.0"
