"""n2d2py: an INI-driven deep neural network simulator in the lineage of CEA-LIST's N2D2."""

__version__ = "0.1.0"
