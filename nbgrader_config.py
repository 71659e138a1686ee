"""nbgrader configuration of the course: this folder is the course directory."""

import os
import sys
from pathlib import Path

c = get_config()  # noqa: F821 (nbgrader provides get_config)

COURSE_ROOT = Path(__file__).resolve().parent

c.CourseDirectory.course_id = "deep-networks"
c.CourseDirectory.root = str(COURSE_ROOT)
# Lessons are authored as jupytext percent files (source/<assignment>/*.py); the .ipynb beside
# each is generated from it. Neither the .py sources nor caches belong in a release or submission.
c.CourseDirectory.ignore = [".ipynb_checkpoints", "*.pyc", "__pycache__", "feedback", "*.py"]

# nbgrader's exchange (release, fetch, submit, collect): the hub's (hub/jupyterhub_config.py sets
# DEEPNETS_EXCHANGE), else the system-wide one where a JupyterHub install made it, else a folder in
# the course, so that the formgrader's Release and Collect and the Assignments tab work on a
# single machine (`make lab`).
if os.environ.get("DEEPNETS_EXCHANGE"):
    c.Exchange.root = os.environ["DEEPNETS_EXCHANGE"]
elif not Path("/usr/local/share/nbgrader/exchange").is_dir():
    c.Exchange.root = str(COURSE_ROOT / "exchange")
    try:  # nbgrader uses the exchange only if the folder exists; it never creates it
        (COURSE_ROOT / "exchange").mkdir(exist_ok=True)
    except OSError:
        pass  # a read-only course copy: release and collect say the exchange is missing

# Stubs the students see in place of the solutions.
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"

# Grading budget: one completed notebook autogrades in well under a minute on 2 CPU cores;
# a cell that runs past this (5 minutes, for slow or shared machines) is stopped, so one
# runaway submission cannot hold up the class.
c.Execute.timeout = 300
c.Execute.interrupt_on_timeout = True
# Student notebooks run the training cells in the quick budget while validated or autograded
# (deepnets.pick_budget reads NBGRADER_EXECUTION, which nbgrader sets).

# Trusted grading (autograder/): `nbgrader autograde` runs each notebook in a sandbox without
# its hidden tests (SandboxedExecute, in place of Execute), then decides every autograded test
# cell from autograder/checks/<assignment>.py outside the student's process (TrustedChecks).
# Feedback never shows hidden tests. Limits: SandboxedExecute.notebook_timeout, .memory_mb,
# .processes, .output_mb; TrustedChecks.wall_seconds, .memory_mb.
# Graders see each student's outputs as submitted; a submission without outputs is re-run in
# the sandbox. `c.SandboxedExecute.rerun = True` re-runs every notebook for graders' eyes: the
# same grades, at the cost of that run (README, "Outputs as submitted, or re-run").
os.environ["GRADER_COURSE_ROOT"] = str(COURSE_ROOT)
try:
    from autograder.nbgrader_plugin import SandboxedExecute, TrustedChecks
except ImportError:  # the course package is not installed: `pip install -e .` (make setup)
    sys.path.insert(0, str(COURSE_ROOT))
    from autograder.nbgrader_plugin import SandboxedExecute, TrustedChecks
from nbconvert.preprocessors import ClearMetadataPreprocessor, CSSHTMLHeaderPreprocessor  # noqa: E402
from nbgrader.preprocessors import (AssignLatePenalties, CheckCellMetadata, ClearHiddenTests,  # noqa: E402
                                    GetGrades, IgnorePattern, LimitOutput, SaveAutoGrades)

c.Autograde.autograde_preprocessors = [
    SandboxedExecute, TrustedChecks, IgnorePattern, ClearMetadataPreprocessor, LimitOutput,
    SaveAutoGrades, AssignLatePenalties, CheckCellMetadata]
c.ClearHiddenTests.enforce_metadata = False
c.GenerateFeedback.preprocessors = [GetGrades, ClearHiddenTests, CSSHTMLHeaderPreprocessor]
# zip_collect (an LMS download): student ids from the file names of common LMS layouts.
c.ZipCollectApp.collector_plugin = "autograder.intake.CourseFileNameCollector"
c.ZipCollectApp.extractor_plugin = "autograder.intake.CourseExtractor"  # bounded unpacking
