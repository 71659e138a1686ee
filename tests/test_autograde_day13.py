"""Day 13's graded notebook against its checks: the untouched release, the points, the wiring.

Straight through run_checks (the sandboxed export, then the checks' own process), which decides
exactly what `nbgrader autograde` records: the path from a submitted notebook through nbgrader
to the gradebook is proven once, end to end, by the class run (tests/test_grade_class.py) and by
the README's sample assignment (tests/test_writing_an_assignment.py).
"""

import re

import nbformat

from autograder.trusted import run_checks
from nbgrader_harness import REPO, build_course

ASSIGNMENT, NOTEBOOK = "day13_vgg_resnet", "resnet"
LESSON = REPO / "source" / ASSIGNMENT / f"{NOTEBOOK}.py"


def release_answers() -> dict[str, str]:
    """grade_id -> source of every answer cell of the committed release (what students start from)."""
    release = nbformat.read(REPO / "release" / ASSIGNMENT / f"{NOTEBOOK}.ipynb", as_version=4)
    return {cell.metadata.nbgrader["grade_id"]: cell.source for cell in release.cells
            if cell.cell_type == "code" and cell.metadata.get("nbgrader", {}).get("solution")}


def passed(answers: dict[str, str], student: str) -> dict[str, bool]:
    return {grade_id: result.passed for grade_id, result in run_checks(ASSIGNMENT, answers, student=student).items()}


def test_there_are_many_small_checks():
    """That the solution passes every check is the instructor notebook's hidden tests under nbval
    (the same checks, in-process); that it does through the sandbox, the lesson plan's answer
    (test_hostile_day13.py) and the solution's mutants, each of which passes every check but its own."""
    from autograder.checks.day13_vgg_resnet import lesson

    points = [cell.metadata["nbgrader"]["points"] for cell in build_course.source_notebook(LESSON).cells
              if cell.cell_type == "code" and cell.metadata.get("nbgrader", {}).get("grade")]
    assert len(lesson.checks) == len(points) >= 15
    assert all(0 < p <= 2 for p in points)


def test_untouched_release_passes_only_the_unattempted_option():
    """Nothing but the bottleneck check, which passes when that option of the open part is not chosen."""
    results = passed(release_answers(), "untouched")
    assert {grade_id for grade_id, ok in results.items() if ok} == {"bottleneck_block_if_attempted"}


def test_points_in_each_heading_add_up():
    """'## Part X: ... (N points)' equals the points of the graded cells that follow it."""
    parts, current = {}, None
    for cell in build_course.source_notebook(LESSON).cells:
        heading = re.search(r"^## Part ([A-Z]):.*\((\d+) points\)", cell.source, re.MULTILINE)
        if cell.cell_type == "markdown" and heading:
            current = heading.group(1)
            parts[current] = [int(heading.group(2)), 0]
        nbgrader = cell.metadata.get("nbgrader", {})
        if nbgrader.get("grade"):
            assert current is not None, f"{nbgrader['grade_id']} comes before any part"
            parts[current][1] += nbgrader["points"]
    assert set(parts) == {"A", "B", "C", "D"}
    assert {part: stated for part, (stated, _) in parts.items()} == \
        {part: counted for part, (_, counted) in parts.items()}


def test_every_autograded_cell_is_decided_by_its_own_check():
    """Each graded code cell's hidden part is exactly `lesson.verify(<its grade_id>)`, and each
    check of autograder/checks/day13_vgg_resnet.py decides one cell."""
    from autograder.checks.day13_vgg_resnet import lesson

    cells = [cell for cell in build_course.source_notebook(LESSON).cells
             if cell.cell_type == "code" and cell.metadata.get("nbgrader", {}).get("grade")]
    for cell in cells:
        grade_id = cell.metadata["nbgrader"]["grade_id"]
        hidden = re.findall(r"### BEGIN HIDDEN TESTS\n(.*?)### END HIDDEN TESTS", cell.source, re.DOTALL)
        assert hidden == [f"from autograder.checks.{ASSIGNMENT} import lesson\n\n"
                          f"lesson.verify(\"{grade_id}\", globals())\n"], grade_id
    assert sorted(cell.metadata["nbgrader"]["grade_id"] for cell in cells) == sorted(lesson.checks)
