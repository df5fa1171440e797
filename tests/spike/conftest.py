"""Makes tests/spike/spike_nets.py importable as ``spike_nets`` from the spike tests."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
