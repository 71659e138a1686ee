"""A throwaway nbgrader course for tests: generate, fill in answers, submit, autograde, read scores."""

from __future__ import annotations

import copy
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tools"))
import build_course  # noqa: E402

def nbgrader(course: Path, *arguments: str, unset: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    """Run an nbgrader command in `course` (without the environment variables `unset`);
    fail the test with its output if it fails."""
    env = {name: value for name, value in build_course.with_venv_on_path().items() if name not in unset}
    result = subprocess.run([sys.executable, "-m", "nbgrader", *arguments, "--log-level=WARN"],
                            cwd=course, env=env,
                            capture_output=True, text=True)
    assert result.returncode == 0, f"nbgrader {' '.join(arguments)} failed:\n{result.stdout}\n{result.stderr}"
    return result


def make_course(root: Path, assignment: str) -> Path:
    """A fresh course directory with this repository's config and one assignment, generated."""
    course = root / "course"
    (course / "source").mkdir(parents=True)
    shutil.copy(REPO / "nbgrader_config.py", course)
    shutil.copytree(REPO / "source" / assignment, course / "source" / assignment,
                    ignore=shutil.ignore_patterns("*.ipynb", "__pycache__"))
    build_course.build(course, [assignment], execute=False, sources_only=True)
    nbgrader(course, "generate_assignment", assignment, "--force")
    return course


def released(course: Path, assignment: str, notebook: str) -> nbformat.NotebookNode:
    return nbformat.read(course / "release" / assignment / f"{notebook}.ipynb", as_version=4)


def solution_answers(assignment: str, notebook: str) -> dict[str, str]:
    """grade_id -> the solution's source of every answer cell of the lesson."""
    return build_course.solution_cells(REPO / "source" / assignment / f"{notebook}.py")


def answer_namespace(lesson, answers: dict[str, str]) -> dict:
    """The globals a notebook has after its preamble and the answer cells `answers` ran, for
    `lesson.verify` in this process. Keep it alive while verifying: verify caches exports by class object."""
    namespace = {"__name__": "__main__"}
    exec(lesson.preamble, namespace)
    for grade_id in lesson.answer_cells:
        exec(answers[grade_id], namespace)
    return namespace


def fill_answers(notebook: nbformat.NotebookNode, answers: dict[str, str]) -> nbformat.NotebookNode:
    """The student's notebook: `answers` (grade_id -> source) written into the answer cells."""
    notebook = nbformat.from_dict(copy.deepcopy(notebook))
    unknown = set(answers) - {c.metadata.get("nbgrader", {}).get("grade_id") for c in notebook.cells}
    assert not unknown, f"no answer cells named {unknown}"
    for cell in notebook.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if grade_id in answers:
            cell.source = answers[grade_id]
    return notebook


def submit(course: Path, assignment: str, student: str, notebook_name: str,
           notebook: nbformat.NotebookNode | None = None, raw: str | None = None) -> None:
    """Place a submission where `nbgrader autograde` looks for it (a notebook or raw file text)."""
    folder = course / "submitted" / student / assignment
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{notebook_name}.ipynb"
    if raw is not None:
        path.write_text(raw)
    else:
        nbformat.write(notebook, path)


def autograde(course: Path, assignment: str, *extra: str) -> subprocess.CompletedProcess:
    """Autograde every submission of `assignment` as a grader would (the quick budget applies)."""
    # Without the tests' DEEPNETS_BUDGET, as a grader runs it: nbgrader's own NBGRADER_EXECUTION
    # picks 'quick'. Only for this command: nbval's kernels, started later, still need it.
    return nbgrader(course, "autograde", assignment, "--force", *extra, unset=("DEEPNETS_BUDGET",))


def scores(course: Path, assignment: str, student: str, notebook: str) -> dict[str, tuple[float, float]]:
    """grade_id -> (score, max_score) of every autograded test cell of one graded submission."""
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
        submitted = gradebook.find_submission_notebook(notebook, assignment, student)
        return {grade.name: (grade.score, grade.max_score)
                for grade in submitted.grades if grade.cell.cell_type == "code"}
