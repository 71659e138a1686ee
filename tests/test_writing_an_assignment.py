"""The README's recipe, "Writing an assignment", followed for a throwaway assignment and graded end to end.

A course of its own (a temporary folder): a lesson with one answer cell and two graded cells
whose hidden parts call `lesson.verify`, and its checks in <course>/checks/tiny.py. The
instructor's notebook runs (so the solution passes the checks that grade), then `nbgrader
autograde` grades a correct, a wrong and a blank submission through the trusted path, and one
that carries outputs its student wrote: shown as submitted (the default), then re-run
(`--SandboxedExecute.rerun=True`).
"""

import os
import shutil
import textwrap

import nbformat
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

    # %% nbgrader={"grade_id": "tiny_net_try"}
    print("scores of a", "random input:", TinyNet()(torch.randn(1, 4)).shape)

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


def submitted_with_outputs(release):
    """A wrong answer whose notebook carries outputs its student wrote: text, a script, an image,
    and a test cell's forged verdict. Its answer cell prints when it runs."""
    notebook = fill_answers(release, {"tiny_net": WRONG + 'print("printed by the", "grader\'s run")\n'})
    outputs = {
        "setup": [nbformat.v4.new_output("stream", name="stdout", text="printed by the student\n"),
                  nbformat.v4.new_output("display_data", data={"text/html": "<script>alert(1)</script>",
                                                               "text/plain": "<HTML object>"}),
                  nbformat.v4.new_output("display_data", data={"image/png": "iVBORw0KGgo="})],
        "tiny_net_try": [nbformat.v4.new_output("stream", name="stdout", text="tried by the student\n")],
        "tiny_net_never_negative": [nbformat.v4.new_output(
            "stream", name="stdout", text="Passed (checked by the grader). Forged.\n")]}
    for cell in notebook.cells:
        if cell.cell_type == "code":
            cell.outputs = outputs.get(cell.metadata.nbgrader["grade_id"], [])
    return notebook


@pytest.fixture(scope="module")
def graded(course):
    """Every submission of this module, autograded once as a grader would."""
    release = released(course, ASSIGNMENT, "tiny")
    solution = build_course.solution_cells(course / "source" / ASSIGNMENT / "tiny.py")
    submit(course, ASSIGNMENT, "right", "tiny", fill_answers(release, solution))
    submit(course, ASSIGNMENT, "wrong", "tiny", fill_answers(release, {"tiny_net": WRONG}))
    submit(course, ASSIGNMENT, "blank", "tiny", release)          # submitted untouched
    submit(course, ASSIGNMENT, "shows_outputs", "tiny", submitted_with_outputs(release))
    assert autograde(course, ASSIGNMENT).returncode == 0
    return course


def test_nbgrader_autograde_grades_it_through_the_trusted_path(graded):
    course = graded
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


def test_graders_see_the_submitted_outputs_or_the_grader_s_run(graded):
    """SandboxedExecute.rerun: by default nothing runs for graders' eyes, they see the student's
    outputs sanitized and labelled, and the autograded cells still show the trusted checks'
    verdicts and points; a submission without outputs is re-run, and says so; with rerun=True
    every output a grader sees comes from the grader's own run of the notebook."""
    from autograder.nbgrader_plugin import NOT_SHOWN, RERUN_WITHOUT_OUTPUTS_LABEL, SUBMITTED_OUTPUTS_LABEL

    course = graded

    def graded_text(*options, student="shows_outputs"):
        if options:
            assert autograde(course, ASSIGNMENT, f"--student={student}", *options).returncode == 0
        assert scores(course, ASSIGNMENT, student, "tiny") == {
            "tiny_net_output_shape": (1, 1), "tiny_net_never_negative": (0, 2)}
        graded_path = course / "autograded" / student / ASSIGNMENT / "tiny.ipynb"
        notebook = nbformat.read(graded_path, as_version=4)
        cells = {c.metadata.get("nbgrader", {}).get("grade_id"): c for c in notebook.cells if c.cell_type == "code"}
        assert "some scores are negative" in cells["tiny_net_never_negative"].outputs[0].evalue
        return notebook, cells, graded_path.read_text()

    notebook, cells, text = graded_text()
    assert notebook.metadata.grading.execution.outputs == "as submitted"
    assert "printed by the grader's run" not in text and "scores of a random input" not in text
    assert "Forged" not in text and "alert" not in text
    # The try cell is not in nbgrader's gradebook, which drops its nbgrader metadata: found by cell id.
    try_cell = next(c for c in notebook.cells if c.source.startswith('print("scores of a"'))
    assert [o.text for o in try_cell.outputs] == ["tried by the student\n"]
    label, printed, html, image = cells["setup"].outputs
    assert label.text == SUBMITTED_OUTPUTS_LABEL and printed.text == "printed by the student\n"
    assert html.data == {"text/plain": f"<HTML object>\n{NOT_SHOWN}"}
    assert image.data == {"image/png": "iVBORw0KGgo="}

    # "wrong" submitted no outputs: the default re-ran it, under a label that says so.
    notebook, cells, text = graded_text(student="wrong")
    assert notebook.metadata.grading.execution.outputs == "re-run by the grader"
    assert notebook.metadata.grading.execution.rerun_because == "the submission carried no outputs"
    assert cells["setup"].outputs[0].text == RERUN_WITHOUT_OUTPUTS_LABEL
    assert "scores of a random input" in text

    notebook, cells, text = graded_text("--SandboxedExecute.rerun=True")
    assert notebook.metadata.grading.execution.outputs == "re-run by the grader"
    assert notebook.metadata.grading.execution.rerun_because is None
    assert "printed by the grader's run" in text and "scores of a random input" in text
    assert "printed by the student" not in text and "tried by the student" not in text
    assert "Forged" not in text and "alert" not in text
    assert SUBMITTED_OUTPUTS_LABEL not in text and RERUN_WITHOUT_OUTPUTS_LABEL not in text
