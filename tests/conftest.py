"""Test-wide settings: notebooks run in the quick budget, helpers import from tests/."""

import os
import sys
from pathlib import Path

# nbval's kernels inherit this environment: every notebook runs in the quick budget.
os.environ.setdefault("DEEPNETS_BUDGET", "quick")
# ... and their OpenMP threads sleep when idle instead of spinning (see deepnets/__init__.py).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
sys.path.insert(0, str(Path(__file__).resolve().parent))
