"""Makes tests/harness.py importable as ``harness`` from the cell tests."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
