"""Every autograded test cell has one check, and the cell's hidden test is that check."""

import re

import pytest

from nbgrader_harness import REPO
import build_course

from autograder.trusted import load_checks

ASSIGNMENTS = sorted(p.name for p in (REPO / "source").iterdir()
                     if p.is_dir() and p.name != build_course.DEMOS and list(p.glob("*.py")))
HIDDEN = re.compile(r"### BEGIN HIDDEN TESTS\n(.*?)### END HIDDEN TESTS", re.S)


def autograded_test_cells(assignment: str) -> dict[str, dict[str, str]]:
    """notebook -> grade_id -> source of its autograded (code, graded, not an answer) cells."""
    cells = {}
    for lesson in sorted((REPO / "source" / assignment).glob("*.py")):
        notebook = build_course.source_notebook(lesson)
        cells[lesson.stem] = {c.metadata["nbgrader"]["grade_id"]: c.source for c in notebook.cells
                              if c.cell_type == "code" and c.metadata.get("nbgrader", {}).get("grade")
                              and not c.metadata["nbgrader"].get("solution")}
    return cells


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_each_hidden_test_is_the_check_that_grades_it(assignment):
    module = load_checks(assignment)
    assert module is not None, f"add autograder/checks/{assignment}.py (see session07_residual_cnn.py)"
    lesson = module.lesson
    cells = autograded_test_cells(assignment)[lesson.notebook]
    assert set(lesson.checks) == set(cells)
    for grade_id, source in cells.items():
        hidden = HIDDEN.findall(source)
        assert len(hidden) == 1 and hidden[0].split() == [
            "from", f"autograder.checks.{assignment}", "import", "lesson",
            f'lesson.verify("{grade_id}",', "globals())"], f"{grade_id}'s hidden test is not its check"
    assert set(lesson.answer_cells) <= set(build_course.solution_cells(
        REPO / "source" / assignment / f"{lesson.notebook}.py"))
