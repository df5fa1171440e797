#!/usr/bin/env python3
"""Look at a run folder: ``python tools/test.py RUN_DIR [--save OUT_DIR] [--html FILE]
[--set test] [--stimulus K]`` (see ``n2d2py.viewer``; ``--help`` for every option)."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from n2d2py.viewer import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
