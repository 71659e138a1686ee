"""Test-wide settings: notebooks run in the quick budget, helpers import from tests/."""

import os
import sys
from pathlib import Path

# nbval's kernels inherit this environment: every notebook runs in the quick budget.
os.environ.setdefault("DEEPNETS_BUDGET", "quick")
sys.path.insert(0, str(Path(__file__).resolve().parent))
# One folder for the whole run where checks that depend on a model alone (the grader's training
# of a network) keep their results: the course solution's network is trained once, not per test.
if "GRADER_MODEL_CACHE_DIR" not in os.environ:
    import tempfile

    os.environ["GRADER_MODEL_CACHE_DIR"] = tempfile.mkdtemp(prefix="grader-models-")


def pytest_collection_modifyitems(items):
    """The class run (tests/test_grade_class.py) is the longest module: it starts first, so the
    other pytest worker runs everything else meanwhile (the Makefile's --no-loadscope-reorder)."""
    items.sort(key=lambda item: not item.nodeid.startswith("tests/test_grade_class.py::"))
