"""Regenerate everything derived from source/: the nbgrader source notebooks, release/ and notebooks/.

    python tools/build_course.py [--course-dir DIR] [--no-execute] [ASSIGNMENT ...]

Lessons are authored as jupytext percent files, source/<assignment>/<notebook>.py. From each:
1. source/<assignment>/<notebook>.ipynb, the notebook nbgrader reads (never edited by hand);
2. release/<assignment>/<notebook>.ipynb, the student version, by `nbgrader generate_assignment`;
3. notebooks/<notebook>.ipynb, the instructor copy: the full solution without nbgrader's markers
   or metadata. Lessons in demos/ (outside source/, so nbgrader never lists them as
   assignments) are instructor demos: they get only this copy. Cells tagged `nbval-check-output` keep the outputs of a quick-budget run, which
   nbval then checks exactly; every other output is left empty.
"""

from __future__ import annotations

import argparse
import copy
import os
import subprocess
import sys
from pathlib import Path

import jupytext
import nbformat

REPO = Path(__file__).resolve().parent.parent
CHECK_OUTPUT_TAG = "nbval-check-output"
DEMOS = "demos"  # demos/*.py: instructor demos, no nbgrader assignment
MARKERS = ("### BEGIN SOLUTION", "### END SOLUTION", "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS")
NBGRADER_DEFAULTS = {"grade": False, "solution": False, "task": False, "schema_version": 3}
JUPYTEXT_ONLY_METADATA = ("lines_to_next_cell", "cell_marker")


def read_lesson(lesson: Path) -> nbformat.NotebookNode:
    """The authored percent file as a notebook, minus what only jupytext's round trip needs."""
    notebook = jupytext.read(lesson)
    notebook.metadata.pop("jupytext", None)
    notebook.metadata["language_info"] = {"name": "python"}
    for index, cell in enumerate(notebook.cells):
        for key in JUPYTEXT_ONLY_METADATA:
            cell.metadata.pop(key, None)
        # Stable ids (nbformat would draw random ones), so a rebuild reproduces release/ exactly.
        cell.id = cell.metadata.get("nbgrader", {}).get("grade_id") or f"cell-{index}"
    return notebook


def lesson_sources(course: Path, assignments: list[str]) -> list[Path]:
    """The authored percent files of the chosen assignments (source/<assignment>/*.py), and of
    the instructor demos (demos/*.py) when no assignment is named or "demos" is."""
    if assignments:
        folders = [course / (DEMOS if name == DEMOS else f"source/{name}") for name in assignments]
    else:
        folders = [*sorted(p for p in (course / "source").iterdir() if p.is_dir()), course / DEMOS]
    return sorted(path for folder in folders for path in folder.glob("*.py"))


def complete_nbgrader_metadata(metadata: dict) -> dict:
    """Fill in what authors leave out: graded tests and read-only cells are locked, answers are not."""
    full = {**NBGRADER_DEFAULTS, **metadata}
    full.setdefault("locked", full["grade"] and not full["solution"])
    return dict(sorted(full.items()))


def source_notebook(lesson: Path) -> nbformat.NotebookNode:
    """The nbgrader source notebook of one authored lesson, without outputs."""
    notebook = read_lesson(lesson)
    for cell in notebook.cells:
        if "nbgrader" in cell.metadata:
            cell.metadata["nbgrader"] = complete_nbgrader_metadata(cell.metadata["nbgrader"])
        tags = [t for t in cell.metadata.get("tags", []) if t != CHECK_OUTPUT_TAG]
        if tags:
            cell.metadata["tags"] = tags
        else:
            cell.metadata.pop("tags", None)
    return notebook


def instructor_notebook(lesson: Path) -> nbformat.NotebookNode:
    """The instructor copy: the solution as a plain notebook, markers and nbgrader metadata gone."""
    notebook = read_lesson(lesson)
    for cell in notebook.cells:
        cell.metadata.pop("nbgrader", None)
        lines = [line for line in cell.source.split("\n") if line.strip() not in MARKERS]
        cell.source = "\n".join(lines)
    return notebook


def solution_cells(lesson: Path) -> dict[str, str]:
    """grade_id -> the solution's source, for every answer cell, with nbgrader's markers removed."""
    return {
        cell.metadata["nbgrader"]["grade_id"]: "\n".join(
            line for line in cell.source.split("\n") if line.strip() not in MARKERS)
        for cell in source_notebook(lesson).cells
        if cell.metadata.get("nbgrader", {}).get("solution")
    }


def hidden_and_visible_lines(lesson: Path, min_length: int = 13) -> tuple[set[str], set[str]]:
    """The stripped lines a lesson hides from students (solutions, hidden tests, model answers and
    mark schemes) and those it shows them; lines shorter than `min_length` are too generic to tell."""
    hidden, visible = set(), set()
    for cell in source_notebook(lesson).cells:
        secret_cell = cell.cell_type == "markdown" and cell.metadata.get("nbgrader", {}).get("solution")
        inside = False
        for line in cell.source.split("\n"):
            if line.strip() in ("### BEGIN SOLUTION", "### BEGIN HIDDEN TESTS"):
                inside = True
            elif line.strip() in ("### END SOLUTION", "### END HIDDEN TESTS"):
                inside = False
            elif len(line.strip()) >= min_length:
                (hidden if inside or secret_cell else visible).add(line.strip())
    return hidden, visible


def keep_checked_outputs(notebook: nbformat.NotebookNode, run_dir: Path) -> None:
    """Run `notebook` in the quick budget; keep outputs only where nbval will compare them."""
    from nbclient import NotebookClient

    executed = copy.deepcopy(notebook)
    os.environ["DEEPNETS_BUDGET"] = "quick"
    NotebookClient(executed, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(run_dir)}}).execute()
    for cell, ran in zip(notebook.cells, executed.cells):
        if cell.cell_type == "code" and CHECK_OUTPUT_TAG in cell.metadata.get("tags", []):
            cell.outputs = [output for output in ran.outputs if output.get("name") != "stderr"]
            cell.execution_count = ran.execution_count  # nbval skips cells that never ran


def write(notebook: nbformat.NotebookNode, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.validate(notebook)
    nbformat.write(notebook, path)


def with_venv_on_path() -> dict:
    """The environment for nbgrader: it runs `alembic` and kernels found on PATH."""
    return {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}


def build(course: Path, assignments: list[str], execute: bool, sources_only: bool = False) -> None:
    lessons = lesson_sources(course, assignments)
    if not lessons:
        sys.exit(f"No lessons (source/<assignment>/*.py) found under {course}")
    for lesson in lessons:
        if lesson.parent.name != DEMOS:
            write(source_notebook(lesson), lesson.with_suffix(".ipynb"))
    if sources_only:
        return
    for lesson in lessons:
        assignment = lesson.parent.name
        instructor = instructor_notebook(lesson)
        if execute:
            (course / "notebooks").mkdir(exist_ok=True)
            keep_checked_outputs(instructor, course / "notebooks")
        write(instructor, course / "notebooks" / f"{lesson.stem}.ipynb")
        print(f"{assignment}: notebooks/{lesson.stem}.ipynb")
    for assignment in sorted({lesson.parent.name for lesson in lessons} - {DEMOS}):
        subprocess.run([sys.executable, "-m", "nbgrader", "generate_assignment", assignment,
                        "--force", "--log-level=WARN"], cwd=course, check=True, env=with_venv_on_path())
        print(f"{assignment}: release/{assignment}/")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("assignments", nargs="*", help="assignment folders (default: all)")
    parser.add_argument("--course-dir", type=Path, default=REPO)
    parser.add_argument("--no-execute", action="store_true",
                        help="leave every output of the instructor copies empty")
    parser.add_argument("--sources-only", action="store_true",
                        help="only regenerate the nbgrader source notebooks (fast; `make setup`)")
    arguments = parser.parse_args()
    build(arguments.course_dir.resolve(), arguments.assignments,
          execute=not arguments.no_execute, sources_only=arguments.sources_only)


if __name__ == "__main__":
    main()
