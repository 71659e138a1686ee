"""Every autograded test cell of every assignment has a trusted check, and only its probes leave the grader."""

import pytest

from nbgrader_harness import REPO
import build_course

from autograder.trusted import load_checks, probes_source

ASSIGNMENTS = sorted(p.name for p in (REPO / "source").iterdir()
                     if p.is_dir() and p.name != build_course.DEMOS and list(p.glob("*.py")))


def autograded_test_cells(assignment: str) -> dict[str, set[str]]:
    """notebook -> grade_ids of its autograded (code, graded, not an answer) cells."""
    cells = {}
    for lesson in sorted((REPO / "source" / assignment).glob("*.py")):
        notebook = build_course.source_notebook(lesson)
        cells[lesson.stem] = {c.metadata["nbgrader"]["grade_id"] for c in notebook.cells
                              if c.cell_type == "code" and c.metadata.get("nbgrader", {}).get("grade")
                              and not c.metadata["nbgrader"].get("solution")}
    return cells


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_every_autograded_cell_has_a_trusted_check(assignment):
    module = load_checks(assignment)
    assert module is not None, f"add autograder/checks/{assignment}.py (see session07_residual_cnn.py)"
    cells = autograded_test_cells(assignment)
    assert module.NOTEBOOK in cells
    assert {check.grade_id for check in module.CHECKS} == cells[module.NOTEBOOK]
    assert set(module.ANSWER_CELLS) <= set(build_course.solution_cells(
        REPO / "source" / assignment / f"{module.NOTEBOOK}.py"))


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_only_probes_are_sent_to_the_sandbox(assignment):
    module = load_checks(assignment)
    sent = probes_source(module)
    assert "def judge_" not in sent and "make_context" not in sent and "threshold" not in sent
    for check in module.CHECKS:
        assert f"def {check.probe.__name__}(" in sent
