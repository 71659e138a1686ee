"""Each assignment's checks: autograder/checks/<assignment>.py, or <course>/checks/<assignment>.py
for a course of your own (README, "Writing an assignment").

The course is GRADER_COURSE_ROOT (nbgrader_config.py sets it), else the nearest folder above the
working directory that holds nbgrader_config.py (a notebook runs in the course's notebooks/ or
source/<assignment>/).
"""

import os
from pathlib import Path


def course_checks_folder():
    candidates = [Path(os.environ["GRADER_COURSE_ROOT"])] if os.environ.get("GRADER_COURSE_ROOT") else \
        [folder for folder in (Path.cwd(), *Path.cwd().parents[:2]) if (folder / "nbgrader_config.py").is_file()][:1]
    for course in candidates:
        if (course / "checks").is_dir():
            return str(course / "checks")
    return None


def find_course_checks():
    """Let `import autograder.checks.<assignment>` find the course's own checks too."""
    folder = course_checks_folder()
    if folder and folder not in __path__:  # noqa: F821 (a package's own __path__)
        __path__.append(folder)  # noqa: F821


find_course_checks()
