"""Trusted checks: decide each autograded test cell outside the student's process.

    results = run_checks("session07_residual_cnn", {"residual_block": code, ...}, student="ana")

The student's answer cells run in a sandbox (autograder/sandbox.py) together with the probes of
autograder/checks/<assignment>.py, on inputs drawn here for this submission. The sandbox hands
back plain data (JSON); each check's judge compares it, in this process, with what the
reference gives. Whatever the submission does to its own process, the worst it can do is
report values, and values are only accepted when they are what correct code gives.
"""

from __future__ import annotations

import builtins
import dataclasses
import hashlib
import importlib
import inspect
import io
import json
import os
import re
import sys
from pathlib import Path
from typing import Callable

import numpy as np

from autograder.sandbox import RUNTIME, Limits, run_limited, run_sandboxed

REPO = Path(__file__).resolve().parent.parent
COURSE_ROOT_VARIABLE = "GRADER_COURSE_ROOT"
MAX_REPORT_LINE = 4 * 2**20


@dataclasses.dataclass
class Check:
    """One autograded test cell: a probe (sandbox), a judge (grader) and a hint for feedback."""

    grade_id: str
    probe: Callable
    judge: Callable
    hint: str
    timeout: int = 10           # seconds; correct code needs well under one


@dataclasses.dataclass
class CheckResult:
    grade_id: str
    passed: bool
    message: str = ""          # why it failed, in the words of the notebook's assert
    hint: str = ""

    def feedback(self) -> str:
        return "passed" if self.passed else f"{self.message}. Hint: {self.hint}"


class MalformedReport(ValueError):
    """The sandbox reported data that is not what a probe returns."""


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


def as_array(value, shape=None) -> np.ndarray:
    """A probe's tensor ({"array", "shape", "finite"}) as a float array; MalformedReport if not."""
    if not isinstance(value, dict) or "array" not in value:
        raise MalformedReport(f"expected a tensor, got {type(value).__name__}")
    try:
        array = np.asarray(value["array"], dtype=np.float64)
    except (TypeError, ValueError):
        raise MalformedReport("the tensor's data is not a rectangular array of numbers") from None
    if list(array.shape) != list(value.get("shape", array.shape)):
        raise MalformedReport("the tensor's data does not match its shape")
    if shape is not None and tuple(array.shape) != tuple(shape):
        raise MalformedReport(f"expected a tensor of shape {tuple(shape)}, got {tuple(array.shape)}")
    if value.get("finite") is False:
        array = array.copy()
        array[...] = np.nan  # NaN anywhere fails every comparison, as it would in the notebook
    return array


def submission_seed(assignment: str, student: str) -> int:
    """Inputs differ per submission and per course secret, and are the same when regraded."""
    secret = os.environ.get("GRADER_SECRET", "")
    digest = hashlib.sha256(f"{secret}:{assignment}:{student}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


def probes_source(module) -> str:
    """The source of the module's probe functions (and PROBE_HELPERS) only: what the sandbox sees."""
    functions = [obj for name, obj in vars(module).items()
                 if inspect.isfunction(obj) and obj.__module__ == module.__name__
                 and (name.startswith("probe_") or name in getattr(module, "PROBE_HELPERS", ()))]
    seen, parts = set(), []
    for function in functions:
        if function.__name__ not in seen:
            seen.add(function.__name__)
            parts.append(inspect.getsource(function))
    return "\n\n".join(parts)


_contexts: dict[str, dict] = {}


def run_checks(assignment: str, answers: dict[str, str], *, student: str = "",
               limits: Limits | None = None, seed: int | None = None,
               timeout_scale: float = 1.0) -> dict[str, CheckResult]:
    """grade_id -> CheckResult of every check of `assignment` on the answer cells `answers`.

    When the sandbox did not end normally (a limit), `run_checks.last_problem` says why.
    """
    module = load_checks(assignment)
    if module is None:
        raise LookupError(f"no trusted checks for {assignment}: add autograder/checks/{assignment}.py")
    if hasattr(module, "lesson"):
        return run_exported_checks(module.lesson, answers, student=student, limits=limits,
                                   seed=seed, timeout_scale=timeout_scale)
    if assignment not in _contexts:
        _contexts[assignment] = module.make_context()
    context = _contexts[assignment]
    seed = submission_seed(assignment, student) if seed is None else seed
    inputs = module.make_inputs(np.random.default_rng(seed))
    buffer = io.BytesIO()
    np.savez(buffer, **inputs)
    arrays = buffer.getvalue()
    header = {
        "preamble": module.PREAMBLE,
        "cells": [[grade_id, answers.get(grade_id, "")] for grade_id in module.ANSWER_CELLS],
        "probes_source": probes_source(module),
        "probes": [{"check": c.grade_id, "function": c.probe.__name__,
                    "timeout": max(1, int(c.timeout * timeout_scale))} for c in module.CHECKS],
        "arrays": len(arrays),
        "cell_timeout": max(5, int(60 * timeout_scale)),
    }
    total = sum(probe["timeout"] for probe in header["probes"]) + 60
    limits = limits or Limits()
    limits = dataclasses.replace(limits, wall_seconds=min(limits.wall_seconds, total))
    run = run_sandboxed([sys.executable, "-I", str(RUNTIME / "probe_worker.py")],
                        stdin=json.dumps(header).encode() + b"\n" + arrays, limits=limits)
    finished = any(line.strip() == b'{"done": true}' for line in run.stdout.split(b"\n"))
    run_checks.last_problem = safe_problem(run.problem) or (
        None if finished else "the submission's process ended before every check had run")
    records, cell_errors = parse_report(run.stdout)
    results = {}
    for check in module.CHECKS:
        results[check.grade_id] = judge(check, records.get(check.grade_id), inputs, context,
                                        cell_errors, run, module.ANSWER_CELLS)
    return results


def parse_report(stdout: bytes) -> tuple[dict[str, list], dict[str, str]]:
    """check -> its records (a probe reporting twice is suspect); answer cell -> its error."""
    records: dict[str, list] = {}
    cell_errors: dict[str, str] = {}
    for line in stdout.split(b"\n"):
        if not line.strip() or len(line) > MAX_REPORT_LINE:
            continue
        try:
            record = json.loads(line)
        except (ValueError, RecursionError):
            continue
        if not isinstance(record, dict):
            continue
        if isinstance(record.get("check"), str):
            records.setdefault(record["check"], []).append(record)
        elif isinstance(record.get("cell"), str) and isinstance(record.get("error"), str):
            cell_errors[record["cell"]] = record["error"][:500]
    return records, cell_errors


# What feedback may say about an exception from student code. Its text is never passed on: a
# submission can put anything there (hidden inputs it was given, the probe's source) and would
# get it back in its own feedback. It gets the exception's type when that is a known one, where
# in its own cells it happened, and a description from this fixed list.
KNOWN_ERRORS = {name for name, value in vars(builtins).items()
                if isinstance(value, type) and issubclass(value, BaseException)} | {
    "OutOfMemoryError", "CellTimeoutError", "DeadKernelError", "CellExecutionError", "ProbeTimeout",
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
]
WHERE = re.compile(r" \(in your cell (?P<cell>[A-Za-z0-9_]{1,40}), line (?P<line>\d{1,5})\)$")
TIMEOUT = re.compile(r"^took longer than \d{1,5} s$")
EXIT_STATUS = re.compile(r"^(the process exited with status -?\d+) \(.*\)$", re.DOTALL)


def safe_error(text, cells=()) -> str:
    """An exception from student code (`Type: message (in your cell c, line n)`) as feedback shows it."""
    first = str(text or "").strip().split("\n")[0][:2000]
    if TIMEOUT.match(first):
        return first
    where = WHERE.search(first)
    first = first[:where.start()] if where else first
    name, _, message = first.partition(":")
    name = name.strip().rsplit(".", 1)[-1]
    kind = name if name in KNOWN_ERRORS else "an exception"
    said = next((said for words, said in ERROR_DESCRIPTIONS
                 if any(word in message.lower() for word in words)), None)
    place = f" in your cell {where['cell']}, line {where['line']}" \
        if where and where["cell"] in cells else ""
    return kind + (f" ({said})" if said else "") + place


def safe_problem(problem: str | None) -> str | None:
    """A sandbox's reason for stopping without what the process printed (the student wrote that)."""
    if not problem:
        return problem
    status = EXIT_STATUS.match(problem)
    return status.group(1) if status else problem[:200]


def judge(check: Check, records, inputs, context, cell_errors, run, cells=()) -> CheckResult:
    def fail(message: str) -> CheckResult:
        return CheckResult(check.grade_id, False, message, check.hint)

    if not records:
        reason = safe_problem(run.problem) or "the check did not report"
        broken = "; ".join(f"your cell {cell} raised {safe_error(error, cells)}"
                           for cell, error in cell_errors.items() if cell in cells)
        return fail(f"not checked: {broken or reason}")
    if len(records) > 1:
        return fail("the check reported more than once (the submission interfered with grading)")
    record = records[0]
    if "error" in record:
        return fail(f"your code raised {safe_error(record['error'], cells)}")
    try:
        message = check.judge(record.get("value"), inputs, context)
    except MalformedReport as error:
        return fail(f"your code returned something unexpected ({error})")
    except (KeyError, IndexError, TypeError, ValueError, AttributeError) as error:
        return fail(f"your code returned something unexpected ({type(error).__name__})")
    if message:
        return fail(message)
    return CheckResult(check.grade_id, True, "", check.hint)


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
    exported = run_sandboxed([sys.executable, "-I", str(RUNTIME / "exporting.py")],
                             stdin=json.dumps(header).encode() + b"\n", limits=export_limits)
    models, cell_errors, finished = {}, {}, False
    for line in exported.stdout.split(b"\n"):
        try:
            record = json.loads(line) if line.strip() and len(line) <= MAX_MODEL_BYTES * 2 else None
        except (ValueError, RecursionError):
            continue
        if not isinstance(record, dict):
            continue
        if record.get("done") is True:
            finished = True
        elif isinstance(record.get("cell"), str) and isinstance(record.get("error"), str):
            cell_errors.setdefault(record["cell"], safe_error(record["error"], lesson.answer_cells))
        elif isinstance(record.get("build"), str) and record["build"] not in models:
            if isinstance(record.get("model"), str):
                models[record["build"]] = {"model": record["model"]}
            elif isinstance(record.get("error"), str):
                models[record["build"]] = {"error": f"it raised {safe_error(record['error'], lesson.answer_cells)}"}
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
    run_checks.last_problem = safe_problem(exported.problem) or (
        None if finished else "the submission's process ended before every model was exported")
    verdicts = {}
    for line in checked.stdout.split(b"\n"):
        try:
            record = json.loads(line) if line.strip() else None
        except ValueError:
            continue
        if isinstance(record, dict) and record.get("check") in lesson.checks:
            verdicts[record["check"]] = record
    results = {}
    for grade_id, check in lesson.checks.items():
        record = verdicts.get(grade_id)
        if record is None:
            results[grade_id] = CheckResult(grade_id, False, f"not checked: {checked.problem or 'the checks stopped'}",
                                            check.hint)
        else:
            results[grade_id] = CheckResult(grade_id, bool(record["passed"]), record["message"], check.hint)
    return results
