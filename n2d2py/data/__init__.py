"""Data: databases (DATABASES), transformations (TRANSFORMATIONS), the stimuli provider.

Importing this package registers every database and transformation type.
"""

from n2d2py.data import (  # noqa: F401
    augment,
    cifar,
    csv_database,
    databases,
    dir_database,
    imdbwiki,
    provider,
    transformations,
)
from n2d2py.data.databases import Database, data_root
from n2d2py.data.provider import StimuliProvider

__all__ = ["Database", "StimuliProvider", "data_root", "databases", "provider", "transformations"]
