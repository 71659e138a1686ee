"""End to end: Session 7 submissions autograded by nbgrader with this course's configuration."""

import sys
import time

import pytest

from nbgrader_harness import (REPO, autograde, fill_answers, make_course, released, scores,
                              solution_answers, submit)

sys.path.insert(0, str(REPO / "autograder" / "calibration"))
import lesson_plan_session07  # noqa: E402  (the lesson plan's own answer, written independently)

ASSIGNMENT, NOTEBOOK = "session07_residual_cnn", "residual_cnn"

SKIP_CHECKS = {"block_skip_connection", "block_gradient_through_skip"}
SHAPE_CHECKS = {"block_keeps_shape", "cnn_output_shape", "cnn_parameter_count",
                "block_has_convs_and_batchnorms"}


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """Four submissions graded in one `nbgrader autograde` run; grade_id -> (score, max) each."""
    course = make_course(tmp_path_factory.mktemp("session07"), ASSIGNMENT)
    release = released(course, ASSIGNMENT, NOTEBOOK)
    solution = solution_answers(ASSIGNMENT, NOTEBOOK)
    no_skip = dict(solution, residual_block=solution["residual_block"].replace(
        "return F.relu(out + x)", "return F.relu(out)"))
    assert no_skip != solution, "the no-skip mutation did not apply"
    submissions = {
        "solution": fill_answers(release, solution),
        "untouched": release,
        "no_skip": fill_answers(release, no_skip),
        "lesson_plan": fill_answers(release, lesson_plan_session07.ANSWERS),
    }
    for student, notebook in submissions.items():
        submit(course, ASSIGNMENT, student, NOTEBOOK, notebook)
    start = time.perf_counter()
    autograde(course, ASSIGNMENT)
    print(f"autograded {len(submissions)} submissions in {time.perf_counter() - start:.0f} s")
    return {student: scores(course, ASSIGNMENT, student, NOTEBOOK) for student in submissions}


def failed(cells):
    return {name for name, (score, maximum) in cells.items() if score < maximum}


def test_there_are_many_small_autograded_checks(graded):
    cells = graded["solution"]
    assert len(cells) >= 12
    assert all(0 < maximum <= 2 for _, maximum in cells.values())


def test_solution_gets_full_marks_on_every_autograded_cell(graded):
    assert failed(graded["solution"]) == set()


def test_lesson_plan_answer_written_independently_gets_full_marks(graded):
    assert failed(graded["lesson_plan"]) == set()


def test_untouched_release_scores_zero(graded):
    assert sum(score for score, _ in graded["untouched"].values()) == 0
    assert set(graded["untouched"]) == set(graded["solution"]), "some checks were not graded"


def test_block_without_skip_fails_skip_checks_and_passes_shape_checks(graded):
    failures = failed(graded["no_skip"])
    assert SKIP_CHECKS <= failures
    assert not SHAPE_CHECKS & failures


def test_autograding_leaves_the_budget_of_later_notebooks_alone(graded):
    """nbval's kernels start after this module and inherit the environment: they must still run
    in the quick budget (the harness once removed DEEPNETS_BUDGET for good, so every notebook
    after it ran in the demo budget)."""
    import os

    assert os.environ.get("DEEPNETS_BUDGET") == "quick"
