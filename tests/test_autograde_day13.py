"""End to end: Day 13 submissions autograded by nbgrader with this course's configuration.

One nbgrader run (the solution and the untouched release) proves the path from a submitted
notebook to its scores; the exact scores of the lesson plan's answer, the subtly wrong
submissions and tampering are decided by the same checks and tested straight through
run_checks, which costs less (tests/test_hostile_day13.py).
"""

import os
import re

import pytest

from nbgrader_harness import (REPO, autograde, build_course, fill_answers, make_course, released,
                              scores, solution_answers, submit)

ASSIGNMENT, NOTEBOOK = "day13_vgg_resnet", "resnet"
LESSON = REPO / "source" / ASSIGNMENT / f"{NOTEBOOK}.py"


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """Both submissions graded in one `nbgrader autograde` run; student -> grade_id -> (score, max)."""
    course = make_course(tmp_path_factory.mktemp("day13"), ASSIGNMENT)
    release = released(course, ASSIGNMENT, NOTEBOOK)
    solution = solution_answers(ASSIGNMENT, NOTEBOOK)
    submissions = {
        "solution": fill_answers(release, solution),
        "untouched": release,
    }
    for student, notebook in submissions.items():
        submit(course, ASSIGNMENT, student, NOTEBOOK, notebook)
    autograde(course, ASSIGNMENT)
    return {student: scores(course, ASSIGNMENT, student, NOTEBOOK) for student in submissions}


def failed(cells):
    return {name for name, (score, maximum) in cells.items() if score < maximum}


def test_there_are_many_small_autograded_checks(graded):
    cells = graded["solution"]
    assert len(cells) >= 15
    assert all(0 < maximum <= 2 for _, maximum in cells.values())


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


def test_solution_gets_full_marks_on_every_autograded_cell(graded):
    assert failed(graded["solution"]) == set()


def test_untouched_release_scores_only_the_unattempted_option(graded):
    """Nothing but the bottleneck check, which passes when that option of the open part is not chosen."""
    scored = {grade_id for grade_id, (score, _) in graded["untouched"].items() if score}
    assert scored == {"bottleneck_block_if_attempted"}
    assert set(graded["untouched"]) == set(graded["solution"]), "some checks were not graded"


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


def test_autograding_leaves_the_budget_of_later_notebooks_alone(graded):
    """nbval's kernels start after this module and inherit the environment: they must still run
    in the quick budget (the harness once removed DEEPNETS_BUDGET for good, so every notebook
    after it ran in the demo budget)."""
    assert os.environ.get("DEEPNETS_BUDGET") == "quick"
