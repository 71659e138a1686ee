"""nbgrader preprocessors that make `nbgrader autograde` trustworthy; nbgrader_config.py wires them in.

* SandboxedExecute replaces nbgrader's Execute. By default it runs nothing: graders see each
  student's own outputs as submitted, sanitized and labelled as such, the outputs the student's
  reflections were written about (grades do not depend on them: the trusted checks run the
  student's code). A submission that carries no outputs is re-run for graders' eyes, and with
  `c.SandboxedExecute.rerun = True` every notebook is: in a sandbox (autograder/sandbox.py),
  without its hidden tests, so student code never sees hidden tests, the course or other students.
* TrustedChecks then decides every autograded test cell from the assignment's trusted checks
  (autograder/trusted.py) and writes the verdict as that cell's only output: nothing, or an
  error saying what failed with a hint. nbgrader's SaveAutoGrades records the points from it.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import os
import re
import sys
from pathlib import Path

import nbformat
from nbformat.notebooknode import NotebookNode
from traitlets import Bool, Float, Integer, Unicode

from nbgrader.preprocessors import ClearHiddenTests, Execute, NbGraderPreprocessor
from nbgrader import utils

from autograder.cache import cache_dir, cache_get, cache_put, code_version, fingerprint  # noqa: F401
from autograder.sandbox import RUNTIME, Limits, isolation_level, run_sandboxed
from autograder import trusted
from autograder.secret import grader_secret, use_course_secret
from autograder.trusted import (CheckResult, course_root, lesson_path, load_checks, run_checks,
                               reported_seconds, safe_error, safe_problem)

# Results handed from a class run's worker to its writer (autograder/grade_class.py): what the
# worker computed for a submission, by the key of everything it depends on. The writer's
# `nbgrader autograde` uses them when the key is the same; on a miss it computes afresh and
# the record says so (grading_recomputed), never silently.
HANDOVER: dict = {}


def hand_over(student: str, results: dict) -> None:
    HANDOVER.setdefault("given", {})[student] = results


def handed_over(kind: str, resources, key: str):
    given = HANDOVER.get("given", {}).get(resources.get("nbgrader", {}).get("student"), {})
    found = given.get(kind)
    return found[1] if found and found[0] == key else None


def note_recomputed(nb, resources, kind: str) -> None:
    """`kind` is computed now, not taken from the worker's hand-over or the cache: the writer notes
    it in the notebook; a worker's timings (grade_class.prepare) count only what it computed."""
    HANDOVER.setdefault("computed", set()).add(kind)
    if resources.get("nbgrader", {}).get("student") in HANDOVER.get("given", {}):
        nb.metadata.setdefault("grading", {}).setdefault("recomputed", []).append(kind)


MAX_EXTRA_FILES_BYTES = 50 * 2**20
# Outputs shown as submitted (rerun = False) are read from a notebook of at most this size.
MAX_SUBMITTED_NOTEBOOK_BYTES = 64 * 2**20
SUBMITTED_OUTPUTS_LABEL = (
    "[The outputs in this notebook are the student's own, as submitted: the grader did not re-run "
    "it (c.SandboxedExecute.rerun = True would). Autograded cells show the trusted checks' verdicts.]\n")
RERUN_WITHOUT_OUTPUTS_LABEL = (
    "[The submission carried no outputs to show, so the grader re-ran this notebook (in the quick "
    "budget) and these outputs are from that run, not the student's. Autograded cells show the "
    "trusted checks' verdicts.]\n")
OUTPUT_TYPES = {"stream", "error", "display_data", "execute_result"}


def is_test_cell(cell) -> bool:
    return cell.cell_type == "code" and utils.is_grade(cell) and not utils.is_solution(cell)


def label_outputs(nb: NotebookNode, label: str) -> None:
    """`label` above the outputs of the notebook's first code cell that is not a test cell."""
    first = next((c for c in nb.cells if c.cell_type == "code" and not is_test_cell(c)), None)
    if first is not None:
        first.outputs.insert(0, nbformat.v4.new_output("stream", name="stderr", text=label))


def without_hidden_tests(notebook: NotebookNode) -> NotebookNode:
    """A copy of `notebook` whose test cells keep only their visible part (what students saw)."""
    visible = copy.deepcopy(notebook)
    clear = ClearHiddenTests(enforce_metadata=False)
    for cell in visible.cells:
        if cell.cell_type == "code":
            clear._remove_hidden_test_region(cell)
    return visible


# Student outputs reach graders (formgrader, feedback) only as text and plain images: HTML,
# JavaScript, SVG, Markdown, LaTeX and widget outputs can carry script that would run in the
# instructor's browser, logged in to the formgrader.
SHOWN_IMAGES = {"image/png", "image/jpeg", "image/gif"}
BASE64 = re.compile(r"^[A-Za-z0-9+/=\s]*$")
NOT_SHOWN = "[rich output (HTML, JavaScript, SVG...) not shown: graders see student outputs as text]"
SCRIPT_URL = re.compile(r"(?i)\b(java|vb)script(\s*):")


def shown_data(data: dict) -> dict:
    """The mime bundle of a display: text/plain and base64 images only; a note for the rest."""
    shown = {}
    for mime, value in data.items():
        text = "".join(value) if isinstance(value, list) else value
        if mime == "text/plain":
            shown[mime] = text
        elif mime in SHOWN_IMAGES and BASE64.match(text):
            shown[mime] = text
    if data and set(data) - set(shown):
        shown["text/plain"] = (shown.get("text/plain", "") + "\n" + NOT_SHOWN).lstrip("\n")
    return shown


def escaped_markdown(source: str) -> str:
    """A student's markdown with its HTML shown as text: the same words, no tags, no script links."""
    return SCRIPT_URL.sub(r"\1script \2:", source.replace("&", "&amp;").replace("<", "&lt;"))


def sanitize_markdown_cells(nb: NotebookNode) -> None:
    """Every markdown cell the student could edit, as a grader will see it: no raw HTML, no SVG."""
    for cell in nb.cells:
        if cell.cell_type != "markdown" or utils.is_locked(cell):
            continue
        cell.source = escaped_markdown("".join(cell.source) if isinstance(cell.source, list) else cell.source)
        if "attachments" in cell:
            cell.attachments = {name: {mime: value for mime, value in bundle.items()
                                       if mime in SHOWN_IMAGES and isinstance(value, str) and BASE64.match(value)}
                                for name, bundle in (cell.attachments or {}).items() if isinstance(bundle, dict)}


def sanitized_outputs(outputs) -> list:
    """Outputs as nbformat allows them and graders may see, from the sandbox's report (which the
    student controls)."""
    clean = []
    if not isinstance(outputs, list):
        return clean
    for output in outputs[:500]:
        if not isinstance(output, dict) or output.get("output_type") not in OUTPUT_TYPES:
            continue
        kind = output["output_type"]
        if kind == "stream":
            text = output.get("text", "")
            text = "".join(text) if isinstance(text, list) else text
            if isinstance(text, str) and output.get("name") in ("stdout", "stderr"):
                clean.append(nbformat.v4.new_output("stream", name=output["name"], text=text))
        elif kind == "error":
            traceback = output.get("traceback", [])
            clean.append(nbformat.v4.new_output(
                "error", ename=str(output.get("ename", ""))[:200], evalue=str(output.get("evalue", ""))[:2000],
                traceback=[str(line) for line in traceback][:200] if isinstance(traceback, list) else []))
        else:
            data = output.get("data", {})
            if not isinstance(data, dict):
                continue
            data = shown_data({str(mime): value for mime, value in data.items() if isinstance(value, str)
                               or (isinstance(value, list) and all(isinstance(v, str) for v in value))})
            if kind == "execute_result":
                clean.append(nbformat.v4.new_output(kind, data=data, execution_count=None))
            else:
                clean.append(nbformat.v4.new_output(kind, data=data))
    return clean


def cell_keys(cell) -> list[tuple[str, str]]:
    """How a cell is found in another copy of its notebook: by its grade_id, then by its cell id
    (nbgrader autograde drops the nbgrader metadata of cells its gradebook does not hold, such as
    a lesson's unlocked demo cells, but keeps their ids)."""
    metadata = cell.get("metadata") if isinstance(cell.get("metadata"), dict) else {}
    grade_id = metadata.get("nbgrader", {}).get("grade_id") if isinstance(metadata.get("nbgrader"), dict) else None
    keys = [("grade_id", grade_id)] if isinstance(grade_id, str) and grade_id else []
    return keys + ([("id", cell["id"])] if isinstance(cell.get("id"), str) else [])


def submitted_outputs(submitted) -> dict[tuple[str, str], list]:
    """The sanitized outputs of each code cell of a submitted notebook (a dict the student wrote),
    by each of its cell_keys; where a key repeats, the first cell's, as intake.rebuild grades the first."""
    found = {}
    cells = submitted.get("cells") if isinstance(submitted, dict) else None
    for cell in cells if isinstance(cells, list) else []:
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        keys = [key for key in cell_keys(cell) if key not in found]
        outputs = sanitized_outputs(cell.get("outputs")) if keys else None
        found.update((key, outputs) for key in keys)
    return found


def run_records(stdout: str):
    """The JSON objects, one a line, that run_notebook.py wrote (anything else is skipped)."""
    for line in stdout.split("\n"):
        try:
            record = json.loads(line) if line.strip() else None
        except ValueError:
            continue
        if isinstance(record, dict):
            yield record


def notebook_run_parts(stdout: str, seconds: float) -> dict[str, float]:
    """Where the sandboxed run's `seconds` went, as run_notebook.py reported it (the grading
    benchmark's breakdown only: the student's process could have written any of it)."""
    kernel, cells, done = None, {}, None
    for record in run_records(stdout):
        if "kernel" in record:
            kernel = reported_seconds(record["kernel"], seconds)
        elif isinstance(record.get("index"), int):
            cells.setdefault(record["index"], reported_seconds(record.get("seconds"), seconds))
        elif record.get("done") is True:
            done = reported_seconds(record.get("seconds"), seconds)
    parts = {}
    if done is not None:
        parts["notebook run: sandbox and Python start, and exit"] = round(seconds - done, 2)
    if kernel is not None:
        parts["notebook run: kernel start"] = round(kernel, 2)
    if cells:
        first = min(cells)
        parts["notebook run: first code cell (imports, data)"] = round(cells[first], 2)
        parts["notebook run: the other cells"] = round(sum(v for i, v in cells.items() if i != first), 2)
    return parts


class SandboxedExecute(Execute):
    """nbgrader's Execute, but the kernel runs in a sandbox and never sees hidden tests."""

    notebook_timeout = Integer(900, help="Wall-clock seconds for the whole notebook.").tag(config=True)
    memory_mb = Integer(6144, help="Address-space limit of the sandbox, in MiB.").tag(config=True)
    processes = Integer(256, help="Processes and threads the sandbox may run.").tag(config=True)
    output_mb = Integer(16, help="Output (all cells together) read back, in MiB.").tag(config=True)
    disk_mb = Integer(256, help="Space in the sandbox's home and /tmp, in MiB.").tag(config=True)
    rerun = Bool(False, help="Re-run every notebook in the sandbox for the outputs graders see. False "
                 "(the default): run nothing and show each student's own outputs as submitted (sanitized "
                 "and labelled), the ones their reflections discuss; a submission with none is re-run "
                 "(rerun_when_no_outputs). The grades are the same either way (the trusted checks run the "
                 "student's code), but outputs as submitted are the student's word, not the grader's run."
                 ).tag(config=True)
    rerun_when_no_outputs = Bool(True, help="With rerun = False, re-run a notebook whose submission "
                                 "carries no outputs to show (say, the student cleared them), so that "
                                 "graders still see it run.").tag(config=True)

    def limits(self) -> Limits:
        return Limits(wall_seconds=self.notebook_timeout, cpu_seconds=self.notebook_timeout * 2,
                      memory_bytes=self.memory_mb * 2**20, processes=self.processes,
                      output_bytes=self.output_mb * 2**20, disk_bytes=self.disk_mb * 2**20)

    def preprocess(self, nb, resources):
        sanitize_markdown_cells(nb)
        for cell in nb.cells:  # what graders see comes from one source: this run, or the submission
            if cell.cell_type == "code":
                cell.outputs = []
        rerun_because = None
        if not self.rerun:
            shown, problem = self.outputs_to_show(nb, resources)
            if shown or not self.rerun_when_no_outputs:
                return self.show_submitted_outputs(nb, resources, shown, problem)
            rerun_because = problem or "the submission carried no outputs"
        visible = without_hidden_tests(nb)   # a copy: its code cells' outputs are already cleared above
        kernel = nb.metadata.get("kernelspec", {}).get("name", "python3")
        header = {"timeout": self.timeout, "kernel": kernel,  # c.Execute.timeout, said once in nbgrader_config.py
                  "output_bytes": self.limits().output_bytes}
        files = self._extra_files(resources.get("metadata", {}).get("path"))
        key = fingerprint([(c.cell_type, c.source) for c in visible.cells], header,
                          dataclasses.asdict(self.limits()),
                          {name: hashlib.sha256(data).hexdigest() for name, data in files.items()},
                          code_version(RUNTIME / "run_notebook.py", Path(__file__)))
        cached = handed_over("execute", resources, key) or cache_get("execute", key)
        if cached is None:
            note_recomputed(nb, resources, "execute")
            run = run_sandboxed([sys.executable, "-I", str(RUNTIME / "run_notebook.py")],
                                stdin=json.dumps(header).encode() + b"\n" + nbformat.writes(visible).encode(),
                                limits=self.limits(), files=files, with_data=True)
            cached = {"stdout": run.stdout.decode("utf-8", "replace"), "problem": run.problem,
                      "isolation": run.isolation, "seconds": round(run.seconds, 1)}
            cached["parts"] = notebook_run_parts(cached["stdout"], run.seconds)
            cache_put("execute", key, cached)
        HANDOVER.setdefault("made", {})["execute"] = (key, cached)
        finished, stopped = set(), None
        for record in run_records(cached["stdout"]):
            index = record.get("index")
            if isinstance(index, int) and 0 <= index < len(nb.cells) and index not in finished \
                    and nb.cells[index].cell_type == "code":
                nb.cells[index].outputs = sanitized_outputs(record.get("outputs"))
                finished.add(index)
            elif "stopped" in record:  # the student's process printed this: its type only
                stopped = f"the kernel stopped: {safe_error(record.get('error'))}"
        problem = safe_problem(cached["problem"]) or stopped
        if problem:
            self.log.warning("Sandboxed run of %s stopped: %s", resources.get("unique_key"), problem)
            for index, cell in enumerate(nb.cells):
                if cell.cell_type == "code" and index not in finished:
                    cell.outputs = [nbformat.v4.new_output(
                        "error", ename="NotRun", evalue=f"not run: {problem}",
                        traceback=[f"This cell did not run: {problem}"])]
                    break
        nb.metadata.setdefault("grading", {})["execution"] = {
            "isolation": cached["isolation"], "seconds": cached["seconds"], "problem": problem,
            "outputs": "re-run by the grader", "rerun_because": rerun_because}
        if rerun_because:
            label_outputs(nb, RERUN_WITHOUT_OUTPUTS_LABEL)
        return nb, resources

    def outputs_to_show(self, nb, resources) -> tuple[dict, str | None]:
        """The outputs the student submitted with each code cell of `nb` (test cells excepted:
        TrustedChecks writes theirs), sanitized, by cell index; and why none could be read, if so."""
        info = resources.get("nbgrader", {})
        try:
            from nbgrader.coursedir import CourseDirectory

            coursedir = CourseDirectory(config=self.config, root=str(course_root()))
            path = Path(coursedir.format_path(coursedir.submitted_directory, info["student"],
                                              info["assignment"])) / f"{info['notebook']}.ipynb"
            if path.stat().st_size > MAX_SUBMITTED_NOTEBOOK_BYTES:
                raise ValueError(f"larger than {MAX_SUBMITTED_NOTEBOOK_BYTES // 2**20} MiB")
            found = submitted_outputs(json.loads(path.read_bytes()))
        except Exception as error:  # a missing or unreadable file: no outputs, and the record says why
            return {}, f"the submitted outputs could not be read ({type(error).__name__})"
        shown = {}
        for index, cell in enumerate(nb.cells):
            outputs = next((found[key] for key in cell_keys(cell) if key in found), None)
            if outputs and cell.cell_type == "code" and not is_test_cell(cell):
                shown[index] = list(outputs)
        return shown, None

    def show_submitted_outputs(self, nb, resources, shown: dict, problem: str | None):
        """Each code cell shows the outputs its student submitted (`shown`, by cell index), within
        output_mb, under a label saying whose they are."""
        room = self.limits().output_bytes
        for index, outputs in sorted(shown.items()):
            size = len(json.dumps(outputs))
            room -= size
            nb.cells[index].outputs = outputs if room >= 0 else [nbformat.v4.new_output("stream", name="stderr", text=(
                f"[outputs not shown: past the {self.output_mb} MiB of outputs shown per notebook]\n"))]
        label_outputs(nb, SUBMITTED_OUTPUTS_LABEL)
        nb.metadata.setdefault("grading", {})["execution"] = {
            "isolation": None, "seconds": 0.0, "problem": problem, "outputs": "as submitted"}
        return nb, resources

    def _extra_files(self, folder) -> dict[str, bytes]:
        """The submission's other files (data it reads), small ones only, flat."""
        files, total = {}, 0
        if not folder or not Path(folder).is_dir():
            return files
        for path in sorted(Path(folder).iterdir()):
            if path.is_file() and not path.is_symlink() and path.suffix != ".ipynb" \
                    and path.name != "timestamp.txt":
                size = path.stat().st_size
                if total + size <= MAX_EXTRA_FILES_BYTES:
                    files[path.name] = path.read_bytes()
                    total += size
        return files


# The code a check's result depends on besides its own module: a change to any invalidates the cache.
GRADING_CODE = [RUNTIME / "exporting.py", Path(__file__).parent / "check_worker.py",
                Path(__file__).parent / "graphs.py", Path(__file__).parent / "assignment.py",
                Path(__file__).parent / "policy.py"]


class TrustedChecks(NbGraderPreprocessor):
    """Decide each autograded test cell outside the student's process; write the verdict as its output."""

    memory_mb = Integer(6144, help="Address-space limit of the checks' sandbox, in MiB.").tag(config=True)
    wall_seconds = Float(900, help="Wall-clock seconds for all checks of one notebook.").tag(config=True)
    probe_timeout_scale = Float(1.0, help="Multiply every check's own time limit.").tag(config=True)
    missing = Unicode("fail", help="A test cell without a trusted check: 'fail' it (safe) or "
                      "'kernel' (keep the in-kernel verdict: only for trusted students).").tag(config=True)

    def preprocess(self, nb, resources):
        self._nb, self._resources = nb, resources
        use_course_secret(course_root())  # never grade with a secret anyone can reproduce
        info = resources["nbgrader"]
        assignment, student, notebook = info["assignment"], info["student"], info["notebook"]
        module = load_checks(assignment)
        results, problem = {}, None
        owner = module.lesson.notebook if hasattr(module, "lesson") else getattr(module, "NOTEBOOK", notebook)
        if module is not None and owner == notebook:
            answers = {cell.metadata.nbgrader["grade_id"]: cell.source for cell in nb.cells
                       if cell.cell_type == "code" and utils.is_solution(cell)}
            results, problem = self.checked(module, assignment, student, answers)
            problem = problem and f"the checks' run was stopped: {problem}"
        else:
            problem = f"no trusted checks for {assignment}/{notebook}"
            self.log.warning("%s: add autograder/checks/%s.py", problem, assignment)
        verdicts = {}
        for cell in nb.cells:
            if not is_test_cell(cell):
                continue
            grade_id = cell.metadata.nbgrader["grade_id"]
            result = results.get(grade_id)
            if result is None and self.missing == "kernel":
                continue
            if result is None:
                cell.outputs = [self._error(f"No trusted check is defined for {grade_id}; "
                                            "the instructor grades it by hand.")]
                verdicts[grade_id] = {"passed": False, "message": "no trusted check", "hint": ""}
            elif result.passed:
                cell.outputs = [nbformat.v4.new_output("stream", name="stdout",
                                                       text="Passed (checked by the grader).\n")]
                verdicts[grade_id] = {"passed": True, "message": "", "hint": ""}
            else:
                cell.outputs = [self._error(result.feedback())]
                verdicts[grade_id] = {"passed": False, "message": result.message, "hint": result.hint}
        nb.metadata.setdefault("grading", {}).update(
            {"checks": verdicts, "checks_problem": problem, "isolation": isolation_level()})
        return nb, resources

    def checked(self, module, assignment, student, answers) -> tuple[dict[str, CheckResult], str | None]:
        """run_checks, or its result from an earlier run on exactly the same inputs."""
        limits = Limits(wall_seconds=self.wall_seconds, cpu_seconds=int(self.wall_seconds * 2),
                        memory_bytes=self.memory_mb * 2**20)
        key = fingerprint(assignment, student, answers, dataclasses.asdict(limits),
                          self.probe_timeout_scale, grader_secret(),
                          code_version(Path(module.__file__), lesson_path(assignment), Path(trusted.__file__),
                                       *GRADING_CODE))
        cached = handed_over("checks", self._resources, key) or cache_get("checks", key)
        if cached is None:
            note_recomputed(self._nb, self._resources, "checks")
            results = run_checks(assignment, answers, student=student, limits=limits,
                                 timeout_scale=self.probe_timeout_scale)
            cached = {"results": {grade_id: dataclasses.asdict(r) for grade_id, r in results.items()},
                      "problem": run_checks.last_problem, "timings": run_checks.last_timings}
            cache_put("checks", key, cached)
        HANDOVER.setdefault("made", {})["checks"] = (key, cached)
        return ({grade_id: CheckResult(**value) for grade_id, value in cached["results"].items()},
                cached["problem"])

    @staticmethod
    def _error(message: str) -> NotebookNode:
        return nbformat.v4.new_output("error", ename="CheckFailed", evalue=message,
                                      traceback=[f"CheckFailed: {message}"])
