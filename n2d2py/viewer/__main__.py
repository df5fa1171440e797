"""``python -m n2d2py.viewer RUN_DIR``."""

import sys

from n2d2py.viewer.command import main

sys.exit(main())
