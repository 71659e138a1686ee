"""Each assignment's checks: autograder/checks/<assignment>.py, or <course>/checks/<assignment>.py
for a course of your own (README, "Writing an assignment"); the course's folder is found through
GRADER_COURSE_ROOT, which nbgrader_config.py sets."""

import os
from pathlib import Path

_course_checks = Path(os.environ.get("GRADER_COURSE_ROOT") or ".") / "checks"
if os.environ.get("GRADER_COURSE_ROOT") and _course_checks.is_dir():
    __path__.append(str(_course_checks))  # noqa: F821 (a package's own __path__)
