"""Data: databases (DATABASES), transformations (TRANSFORMATIONS), the stimuli provider.

Importing this package registers every database and transformation type.
"""

from n2d2py.data import databases, provider, transformations  # noqa: F401
from n2d2py.data.databases import Database, data_root
from n2d2py.data.provider import StimuliProvider

__all__ = ["Database", "StimuliProvider", "data_root", "databases", "provider", "transformations"]
