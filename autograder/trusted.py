"""Trusted checks: decide each autograded test cell across the trust boundary.

    results = run_checks("session07_residual_cnn", {"residual_block": code, ...}, student="ana")

The student's answer cells run in a sandbox (autograder/sandbox.py) that only exports the
models the checks need (sandbox_runtime/exporting.py); the checks of
autograder/checks/<assignment>.py then run in a process no student code ran in
(check_worker.py), on those models rebuilt with the grader's weights (graphs.py) and inputs
drawn for this submission. README, "How grading is kept honest".
"""

from __future__ import annotations

import builtins
import dataclasses
import hashlib
import importlib
import json
import os
import re
import sys
from pathlib import Path


from autograder.sandbox import EXPORTER, RUNTIME, Limits, run_limited, run_sandboxed
from autograder.secret import grader_secret

REPO = Path(__file__).resolve().parent.parent
COURSE_ROOT_VARIABLE = "GRADER_COURSE_ROOT"


@dataclasses.dataclass
class CheckResult:
    grade_id: str
    passed: bool
    message: str = ""          # why it failed, in the words of the notebook's assert
    hint: str = ""

    def feedback(self) -> str:
        return "passed" if self.passed else f"{self.message}. Hint: {self.hint}"


def course_root() -> Path:
    return Path(os.environ.get(COURSE_ROOT_VARIABLE) or REPO)


def lesson_path(assignment: str) -> Path:
    """The authored lesson (source/<assignment>/<notebook>.py) of the course being graded."""
    for root in (course_root(), REPO):
        found = sorted((root / "source" / assignment).glob("*.py"))
        if found:
            return found[0]
    raise FileNotFoundError(f"no lesson source/{assignment}/*.py under {course_root()}")


def load_checks(assignment: str):
    """The module autograder/checks/<assignment>.py (or the course's own), None when there is none."""
    import autograder.checks

    autograder.checks.find_course_checks()
    try:
        return importlib.import_module(f"autograder.checks.{assignment}")
    except ModuleNotFoundError as error:
        if error.name == f"autograder.checks.{assignment}":
            return None
        raise


def submission_seed(assignment: str, student: str) -> int:
    """Inputs differ per submission and per course secret, and are the same when regraded."""
    digest = hashlib.sha256(f"{grader_secret()}:{assignment}:{student}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


def run_checks(assignment: str, answers: dict[str, str], *, student: str = "",
               limits: Limits | None = None, seed: int | None = None,
               timeout_scale: float = 1.0) -> dict[str, CheckResult]:
    """grade_id -> CheckResult of every check of `assignment` on the answer cells `answers`.

    When the student's process did not end normally (a limit), `run_checks.last_problem` says why;
    `run_checks.last_timings` says where the seconds went.
    """
    module = load_checks(assignment)
    if module is None:
        raise LookupError(f"no checks for {assignment}: add autograder/checks/{assignment}.py")
    return run_exported_checks(module.lesson, answers, student=student, limits=limits,
                               seed=seed, timeout_scale=timeout_scale)


# What feedback may say about an exception from student code. Its text is never passed on: a
# submission can put anything there (hidden inputs it was given, the probe's source) and would
# get it back in its own feedback. It gets the exception's type when that is a known one, where
# in its own cells it happened, and a description from this fixed list.
KNOWN_ERRORS = {name for name, value in vars(builtins).items()
                if isinstance(value, type) and issubclass(value, BaseException)} | {
    "OutOfMemoryError", "CellTimeoutError", "OutputLimitError", "DeadKernelError", "CellExecutionError", "ProbeTimeout",
    "CheckFailed"}
ERROR_DESCRIPTIONS = [
    (("shape", "size mismatch", "mat1", "dimension", "must match the size"), "tensor shapes or sizes do not match"),
    (("dtype", "scalar type", "expected type"), "tensor types do not match"),
    (("is not defined",), "a name is not defined (a cell that did not run, or a typo)"),
    (("has no attribute",), "an attribute or method is missing"),
    (("positional argument", "keyword argument", "takes no arguments"), "called with the wrong arguments"),
    (("inplace", "in-place"), "an in-place operation broke autograd"),
    (("does not require grad", "grad_fn"), "a tensor has no gradient"),
    (("not implemented",), "not implemented yet"),
    (("of output",), "the notebook printed more than the grader reads back"),
]
WHERE = re.compile(r" \(in your cell (?P<cell>[A-Za-z0-9_]{1,40}), line (?P<line>\d{1,5})\)$")
TIMED_OUT = "took longer than "     # how safe_error starts a time limit's message, and only then
TIMEOUT = re.compile(rf"^{TIMED_OUT}\d{{1,5}} s$")
EXIT_STATUS = re.compile(r"^(the process exited with status -?\d+) \(.*\)$", re.DOTALL)


def safe_error(text, cells=()) -> str:
    """An exception from student code (`Type: message (in your cell c, line n)`) as feedback shows it."""
    first = str(text or "").strip().split("\n")[0][:2000]
    where = WHERE.search(first)
    first = first[:where.start()] if where else first
    place = f" in your cell {where['cell']}, line {where['line']}" \
        if where and where["cell"] in cells else ""
    if TIMEOUT.match(first):
        return first + place
    name, _, message = first.partition(":")
    name = name.strip().rsplit(".", 1)[-1]
    kind = name if name in KNOWN_ERRORS else "an exception"
    said = next((said for words, said in ERROR_DESCRIPTIONS
                 if any(word in message.lower() for word in words)), None)
    return kind + (f" ({said})" if said else "") + place


def safe_problem(problem: str | None) -> str | None:
    """A sandbox's reason for stopping without what the process printed (the student wrote that)."""
    if not problem:
        return problem
    status = EXIT_STATUS.match(problem)
    return status.group(1) if status else problem[:200]


def reported_seconds(value, most: float) -> float:
    """A duration a process reported about itself, for the timing breakdown only (never a grade):
    a number between 0 and the process's own measured run time, else 0."""
    return min(float(value), most) if isinstance(value, (int, float)) and 0 <= value < float("inf") else 0.0


MAX_MODEL_BYTES = 64 * 2**20
MODEL_CACHE_VARIABLE = "GRADER_MODEL_CACHE_DIR"


def model_cache() -> Path:
    """Where checks whose result depends on the model alone keep it (Check.by_model)."""
    from autograder.cache import cache_dir

    return Path(os.environ.get(MODEL_CACHE_VARIABLE) or cache_dir() / "by-model")


def run_exported_checks(lesson, answers: dict[str, str], *, student: str = "",
                        limits: Limits | None = None, seed: int | None = None,
                        timeout_scale: float = 1.0, threads: int = 1) -> dict[str, CheckResult]:
    """The checks of an Assignment (autograder/assignment.py), across the trust boundary.

    1. The sandbox runs the answer cells and exports the models the checks need
       (sandbox_runtime/exporting.py). Nothing else comes back from it.
    2. A second process, which no student code runs in, rebuilds those models with fresh
       weights and runs every check on inputs drawn for this submission (check_worker.py).
    """
    seed = submission_seed(lesson.name, student) if seed is None else seed
    limits = limits or Limits()
    cell_timeout = max(5, int(lesson.cell_timeout * timeout_scale))
    build_timeout = max(5, int(lesson.build_timeout * timeout_scale))
    header = {"preamble": lesson.preamble, "cell_timeout": cell_timeout, "build_timeout": build_timeout,
              "cells": [[grade_id, answers.get(grade_id, "")] for grade_id in lesson.answer_cells],
              "builds": [build.spec() for build in lesson.builds()]}
    builds = len(header["builds"])
    export_limits = dataclasses.replace(
        limits, wall_seconds=min(limits.wall_seconds,
                                 cell_timeout * len(lesson.answer_cells) + build_timeout * builds + 30),
        output_bytes=max(limits.output_bytes, builds * 2 * MAX_MODEL_BYTES // 16))
    exported = run_sandboxed(EXPORTER,
                             stdin=json.dumps(header).encode() + b"\n", limits=export_limits)
    models, cell_errors, timed_out_builds, finished = {}, {}, set(), False
    reported = {"answer cells": 0.0, "models built and exported": 0.0}
    for line in exported.stdout.split(b"\n"):
        try:
            record = json.loads(line) if line.strip() and len(line) <= MAX_MODEL_BYTES * 2 else None
        except (ValueError, RecursionError):
            continue
        if not isinstance(record, dict):
            continue
        part = "answer cells" if "cell" in record else "models built and exported" if "build" in record else None
        if part:
            reported[part] += reported_seconds(record.get("seconds"), exported.seconds)
        if record.get("done") is True:
            finished = True
        elif isinstance(record.get("cell"), str) and isinstance(record.get("error"), str):
            cell_errors.setdefault(record["cell"], safe_error(record["error"], lesson.answer_cells))
        elif isinstance(record.get("build"), str) and record["build"] not in models:
            if isinstance(record.get("model"), str):
                models[record["build"]] = {"model": record["model"]}
            elif isinstance(record.get("error"), str):
                said = safe_error(record["error"], lesson.answer_cells)
                if said.startswith(TIMED_OUT):
                    timed_out_builds.add(record["build"])
                models[record["build"]] = {"error": ("it " if record["build"] in timed_out_builds
                                                     else "it raised ") + said}
    broken = "; ".join(f"your cell {cell} raised {error}" for cell, error in cell_errors.items())
    for build in lesson.builds():
        if build.key not in models:
            models[build.key] = {"error": broken or safe_problem(exported.problem) or "it was not exported"}
    total = sum(max(1, int(c.timeout * timeout_scale)) for c in lesson.checks.values()) + 60
    checked = run_limited([sys.executable, "-m", "autograder.check_worker"],
                          stdin=json.dumps({"assignment": lesson.name, "seed": seed, "models": models,
                                            "timeout_scale": timeout_scale, "cache": str(model_cache()),
                                            "threads": threads}).encode() + b"\n",
                          limits=dataclasses.replace(limits, wall_seconds=min(limits.wall_seconds, total)))
    # A limit reached is a problem for a person to look at, even when the checks' verdicts stand.
    timed_out = sorted({f"your cell {cell}" for cell, error in cell_errors.items() if error.startswith(TIMED_OUT)} |
                       {f"building {build.cls}" for build in lesson.builds() if build.key in timed_out_builds})
    run_checks.last_problem = safe_problem(exported.problem) or (
        None if finished else "the submission's process ended before every model was exported") or (
        f"time limit reached ({', '.join(timed_out)})" if timed_out else None)
    verdicts = {}
    for line in checked.stdout.split(b"\n"):
        try:
            record = json.loads(line) if line.strip() else None
        except ValueError:
            continue
        if isinstance(record, dict) and record.get("check") in lesson.checks:
            verdicts[record["check"]] = record
    undecided = [grade_id for grade_id in lesson.checks if grade_id not in verdicts]
    if undecided and not run_checks.last_problem:
        # The checks' process stopped early (its wall limit: one operation of the model can
        # outlast every per-check timer): the points are lost, and a person should look.
        run_checks.last_problem = (f"the checks stopped before deciding {len(undecided)} of them "
                                   f"({safe_problem(checked.problem) or 'no reason given'})")
    check_seconds = {grade_id: reported_seconds(record.get("seconds"), checked.seconds)
                     for grade_id, record in verdicts.items()}
    # Wall seconds of each part, for the grading benchmark (benchmarks/grading_benchmark.py).
    run_checks.last_timings = {"export sandbox": round(exported.seconds, 2),
                               **{f"export sandbox: {part}": round(v, 2) for part, v in reported.items()},
                               "checks process": round(checked.seconds, 2),
                               **{f"check {grade_id}": round(v, 2) for grade_id, v in check_seconds.items()}}
    results = {}
    for grade_id, check in lesson.checks.items():
        record = verdicts.get(grade_id)
        if record is None:
            results[grade_id] = CheckResult(grade_id, False, f"not checked: {checked.problem or 'the checks stopped'}",
                                            check.hint)
        else:
            results[grade_id] = CheckResult(grade_id, bool(record["passed"]), record["message"], check.hint)
    return results
