"""The README's recipe, "Writing an assignment", followed for a throwaway assignment and graded end to end.

A course of its own (a temporary folder): a lesson with one answer cell and two graded cells
whose hidden parts call `lesson.verify`, and its checks in <course>/checks/tiny.py. The
instructor's notebook runs (so the solution passes the checks that grade), then `nbgrader
autograde` grades a correct and a wrong submission through the trusted path.
"""

import os
import shutil
import textwrap

import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from nbgrader_harness import REPO, autograde, fill_answers, nbgrader, released, scores, submit
import build_course

ASSIGNMENT = "tiny"
LESSON = textwrap.dedent('''\
    # %% nbgrader={"grade_id": "setup", "locked": true}
    import torch
    from torch import nn

    # %% nbgrader={"grade_id": "tiny_net", "solution": true}
    class TinyNet(nn.Module):
        def __init__(self):
            super().__init__()
            ### BEGIN SOLUTION
            self.fc = nn.Linear(4, 3)
            ### END SOLUTION

        def forward(self, x):
            ### BEGIN SOLUTION
            return torch.relu(self.fc(x))
            ### END SOLUTION

    # %% nbgrader={"grade": true, "grade_id": "tiny_net_output_shape", "points": 1}
    """TinyNet maps 4 features to 3 scores."""
    assert TinyNet()(torch.randn(2, 4)).shape == (2, 3)
    ### BEGIN HIDDEN TESTS
    from autograder.checks.tiny import lesson

    lesson.verify("tiny_net_output_shape", globals())
    ### END HIDDEN TESTS

    # %% nbgrader={"grade": true, "grade_id": "tiny_net_never_negative", "points": 2}
    """TinyNet's scores pass through a ReLU."""
    ### BEGIN HIDDEN TESTS
    from autograder.checks.tiny import lesson

    lesson.verify("tiny_net_never_negative", globals())
    ### END HIDDEN TESTS
    ''')
CHECKS = textwrap.dedent('''\
    from autograder.assignment import Assignment, Build, normal

    lesson = Assignment("tiny", notebook="tiny", answer_cells=("tiny_net",),
                        preamble="import torch\\nfrom torch import nn\\n")
    NET = Build("TinyNet", (), (2, 4))

    @lesson.check("tiny_net_output_shape", builds=[NET], hint="Map 4 features to 3 scores.")
    def tiny_net_output_shape(models, rng):
        scores = models[NET.key].eval()(normal(rng, 5, 4))
        assert tuple(scores.shape) == (5, 3), f"expected (5, 3), got {tuple(scores.shape)}"

    @lesson.check("tiny_net_never_negative", builds=[NET], hint="End forward with a ReLU.")
    def tiny_net_never_negative(models, rng):
        assert models[NET.key].eval()(normal(rng, 64, 4) * 10).min() >= 0, "some scores are negative"
    ''')
WRONG = "class TinyNet(nn.Module):\n    def __init__(self):\n        super().__init__()\n" \
        "        self.fc = nn.Linear(4, 3)\n\n    def forward(self, x):\n        return self.fc(x)\n"


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    course = tmp_path_factory.mktemp("recipe") / "course"
    (course / "source" / ASSIGNMENT).mkdir(parents=True)
    (course / "checks").mkdir()
    shutil.copy(REPO / "nbgrader_config.py", course)
    (course / "source" / ASSIGNMENT / "tiny.py").write_text(LESSON)
    (course / "checks" / "tiny.py").write_text(CHECKS)
    build_course.build(course, [ASSIGNMENT], execute=False, sources_only=True)
    nbgrader(course, "generate_assignment", ASSIGNMENT, "--force")
    return course


def run_notebook(notebook, course):
    os.environ["GRADER_COURSE_ROOT"] = str(course)   # how nbgrader_config.py finds the course's checks
    try:
        NotebookClient(notebook, timeout=300, kernel_name="python3",
                       resources={"metadata": {"path": str(course)}}).execute()
    finally:
        os.environ.pop("GRADER_COURSE_ROOT")


def test_the_solution_passes_its_hidden_tests_which_are_the_checks(course):
    instructor = build_course.source_notebook(course / "source" / ASSIGNMENT / "tiny.py")
    run_notebook(instructor, course)
    broken = fill_answers(instructor, {"tiny_net": WRONG})
    with pytest.raises(CellExecutionError, match="some scores are negative. Hint: End forward with a ReLU"):
        run_notebook(broken, course)


def test_nbgrader_autograde_grades_it_through_the_trusted_path(course):
    release = released(course, ASSIGNMENT, "tiny")
    solution = build_course.solution_cells(course / "source" / ASSIGNMENT / "tiny.py")
    submit(course, ASSIGNMENT, "right", "tiny", fill_answers(release, solution))
    submit(course, ASSIGNMENT, "wrong", "tiny", fill_answers(release, {"tiny_net": WRONG}))
    submit(course, ASSIGNMENT, "blank", "tiny", release)          # submitted untouched
    autograde(course, ASSIGNMENT)
    assert scores(course, ASSIGNMENT, "right", "tiny") == {
        "tiny_net_output_shape": (1, 1), "tiny_net_never_negative": (2, 2)}
    assert scores(course, ASSIGNMENT, "wrong", "tiny") == {
        "tiny_net_output_shape": (1, 1), "tiny_net_never_negative": (0, 2)}
    assert scores(course, ASSIGNMENT, "blank", "tiny") == {
        "tiny_net_output_shape": (0, 1), "tiny_net_never_negative": (0, 2)}
    nbgrader(course, "generate_feedback", ASSIGNMENT, "--force")
    feedback = (course / "feedback" / "wrong" / ASSIGNMENT / "tiny.html").read_text()
    assert "some scores are negative" in feedback and "lesson.verify" not in feedback
    blank = (course / "feedback" / "blank" / ASSIGNMENT / "tiny.html").read_text()
    assert "tiny (Score: 0.0 / 3.0)" in blank and "lesson.verify" not in blank
    # nbval's kernels start after this test and inherit the environment: they must still run in
    # the quick budget (the harness's autograde once removed DEEPNETS_BUDGET for good, so every
    # notebook after it ran in the demo budget).
    assert os.environ.get("DEEPNETS_BUDGET") == "quick"
