"""The course's grading secret: the one place every seed and fingerprint that must stay private reads it.

Grading draws what a student must not predict from it: each submission's check inputs, which
digits the accuracy check uses and how they are disguised, the overfit batch. A secret anyone
can reproduce (the empty string, as before 4 December 2026) makes all of that public, so grading
never runs without one: GRADER_SECRET where the instructor sets it (one value shared by several
graders or machines), else the course's own, drawn at random the first time the course grades
and kept in grading/.secret, readable by its owner only, so that a regrade draws the same inputs.

A student's own run of the checks (`lesson.verify` in their notebook) is not grading and uses
no secret: it reads the variable, which is not set there, and gets the public empty string.
"""

from __future__ import annotations

import os
import secrets
import sys
from pathlib import Path

SECRET_VARIABLE = "GRADER_SECRET"
SECRET_FILE = Path("grading") / ".secret"


def grader_secret() -> str:
    """The secret this process grades with ('' outside grading: see use_course_secret)."""
    return os.environ.get(SECRET_VARIABLE, "")


def use_course_secret(course: Path) -> str:
    """Make the course's secret this process's (and its children's) GRADER_SECRET; return it.

    GRADER_SECRET, where set, wins. Else grading/.secret in `course`, created with 256 random
    bits (mode 0600) when missing. A course folder that cannot be written gets a secret for this
    run only, with a warning: its inputs cannot be predicted, but a regrade draws new ones.
    """
    if grader_secret():
        return grader_secret()
    path = Path(course) / SECRET_FILE
    try:
        secret = _read_or_create(path)
    except OSError as error:
        secret = secrets.token_hex(32)
        print(f"WARNING: cannot keep the course's grading secret in {path} ({error.strerror}); "
              f"this run uses a random one, so a regrade will draw other inputs. "
              f"Set {SECRET_VARIABLE} to keep it fixed.", file=sys.stderr)
    os.environ[SECRET_VARIABLE] = secret
    return secret


def _read_or_create(path: Path) -> str:
    """The secret in `path`; made there (0600) if there is none. Created exclusively, so two
    graders of one course starting together end up with the same secret."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        secret = path.read_text().strip()
        if secret:
            return secret
        path.unlink()   # empty: a crash between creating and writing it; draw again
        return _read_or_create(path)
    secret = secrets.token_hex(32)
    with os.fdopen(descriptor, "w") as file:
        file.write(secret + "\n")
    return secret
