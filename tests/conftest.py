"""Test-wide settings: notebooks run in the quick budget, helpers import from tests/."""

import os
import sys
from pathlib import Path

# nbval's kernels inherit this environment: every notebook runs in the quick budget.
os.environ.setdefault("DEEPNETS_BUDGET", "quick")
# One PyTorch thread in every test process and kernel (set before anything imports torch): the
# suite runs one pytest worker per core (the Makefile's TEST_WORKERS), so a second thread only
# waits at each operation's end for a core the other worker holds. With two, the ResNet
# notebook's small-image training cell took 25-34 s under the suite against 5 s alone.
os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))
# One grading secret for the whole run (autograder/secret.py), so that every class and course the
# tests grade draws the same inputs and shares the model cache below; tests/test_secret.py proves
# the course's own secret, made when none is set.
os.environ.setdefault("GRADER_SECRET", "the test suite's grading secret")
# One folder for the whole run where checks that depend on a model alone (the grader's training
# of a network) keep their results: the course solution's network is trained once, not per test.
if "GRADER_MODEL_CACHE_DIR" not in os.environ:
    import tempfile

    os.environ["GRADER_MODEL_CACHE_DIR"] = tempfile.mkdtemp(prefix="grader-models-")


# The longest modules and notebooks, longest first, as measured (pytest --durations=0, 4 December
# 2026, evening): each pytest worker takes whole modules (the Makefile's --dist loadscope), in this
# order and then the rest in collection order, so that the last minutes hold the short ones and
# both workers finish together. The class run and the JupyterHub term start first, one on each worker.
LONGEST_FIRST = ["tests/test_grade_class.py", "tests/test_hub.py", "tests/test_hostile_day13.py",
                 "tests/test_hostile_session07_direct.py", "tests/test_browser.py", "notebooks/resnet.ipynb",
                 "tests/test_sandbox.py", "tests/test_writing_an_assignment.py", "tests/test_student_distribution.py",
                 "notebooks/vgg.ipynb", "tests/test_day13_vgg.py", "tests/test_calibration.py",
                 "tests/test_warm_start.py", "tests/test_grader_data.py", "notebooks/residual_cnn.ipynb"]


def pytest_collection_modifyitems(config, items):
    """Modules in the order LONGEST_FIRST gives (the Makefile's --no-loadscope-reorder keeps it).

    The live demo runs once: where Chromium is installed the browser test runs it in JupyterLab
    (no error, its figures drawn), so nbval leaves it out; it has no outputs for nbval to compare."""
    from test_browser import BROWSER_RUNS_THE_DEMO, DEMO_NOTEBOOK

    if BROWSER_RUNS_THE_DEMO:
        demo = [item for item in items if item.nodeid.startswith(f"notebooks/{DEMO_NOTEBOOK}::")]
        if demo:
            config.hook.pytest_deselected(items=demo)
            items[:] = [item for item in items if item not in demo]
    rank = {module: i for i, module in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::")[0], len(rank)))   # stable: cells stay in order
