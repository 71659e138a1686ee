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


def pytest_collection_modifyitems(config, items):
    """The class run (tests/test_grade_class.py) and the JupyterHub term (tests/test_hub.py) are
    the longest modules: they start first, one on each pytest worker, and the rest fills in
    around them (the Makefile's --no-loadscope-reorder).

    The live demo runs once: where Chromium is installed the browser test runs it in JupyterLab
    (no error, its figures drawn), so nbval leaves it out; it has no outputs for nbval to compare."""
    from test_browser import BROWSER_RUNS_THE_DEMO, DEMO_NOTEBOOK

    if BROWSER_RUNS_THE_DEMO:
        demo = [item for item in items if item.nodeid.startswith(f"notebooks/{DEMO_NOTEBOOK}::")]
        if demo:
            config.hook.pytest_deselected(items=demo)
            items[:] = [item for item in items if item not in demo]
    first = ("tests/test_grade_class.py::", "tests/test_hub.py::")   # the two longest modules
    items.sort(key=lambda item: next((i for i, start in enumerate(first) if item.nodeid.startswith(start)),
                                     len(first)))
