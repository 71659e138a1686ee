"""End to end: Session 7 submissions autograded by nbgrader with this course's configuration."""

import sys
import time

import pytest

from nbgrader_harness import REPO, autograde, fill_answers, make_course, released, scores, submit

sys.path.insert(0, str(REPO / "autograder" / "calibration"))
import lesson_plan_session07  # noqa: E402  (the lesson plan's own answer, written independently)

ASSIGNMENT, NOTEBOOK = "session07_residual_cnn", "residual_cnn"


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """Plain `nbgrader autograde` on the lesson plan's own answer and an untouched release.

    The course solution is graded in the class run (test_grade_class.py) and the block without
    its skip straight through the checks (test_hostile_session07_direct.py)."""
    course = make_course(tmp_path_factory.mktemp("session07"), ASSIGNMENT)
    release = released(course, ASSIGNMENT, NOTEBOOK)
    submissions = {
        "untouched": release,
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
    cells = graded["lesson_plan"]
    assert len(cells) >= 12
    assert all(0 < maximum <= 2 for _, maximum in cells.values())


def test_lesson_plan_answer_written_independently_gets_full_marks(graded):
    assert failed(graded["lesson_plan"]) == set()


def test_untouched_release_scores_zero(graded):
    assert sum(score for score, _ in graded["untouched"].values()) == 0
    assert set(graded["untouched"]) == set(graded["lesson_plan"]), "some checks were not graded"


def test_autograding_leaves_the_budget_of_later_notebooks_alone(graded):
    """nbval's kernels start after this module and inherit the environment: they must still run
    in the quick budget (the harness once removed DEEPNETS_BUDGET for good, so every notebook
    after it ran in the demo budget)."""
    import os

    assert os.environ.get("DEEPNETS_BUDGET") == "quick"
