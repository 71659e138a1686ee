"""What a student wrote reaches people as text: formgrader views, feedback, summary, CSVs, messages.

Issue 11's cases at the level of the function that writes each: stored XSS through outputs and
markdown answers, formula and markup injection through names and reasons, and hidden inputs or
probe source raised into a submission's own feedback.
"""

import csv
import json

import nbformat
import pytest
from nbconvert import HTMLExporter

from autograder import report
from autograder.nbgrader_plugin import NOT_SHOWN, sanitize_markdown_cells, sanitized_outputs
from autograder.trusted import safe_error, safe_problem

SCRIPT = "<script>alert('xss')</script>"
IMG = "<img src=x onerror=alert(1)>"
ATTACKS = [SCRIPT, IMG, "<iframe src=javascript:alert(2)>"]


def student_notebook() -> nbformat.NotebookNode:
    """A notebook with every way the red team put script in front of the instructor."""
    notebook = nbformat.v4.new_notebook()
    answer = nbformat.v4.new_markdown_cell(
        f"My answer {SCRIPT} {IMG} [click](javascript:alert(3)) [ok](JaVaScRiPt :alert(4))",
        metadata={"nbgrader": {"grade_id": "reflection", "solution": True, "grade": True, "points": 1,
                               "locked": False}})
    answer.attachments = {"x.svg": {"image/svg+xml": "<svg onload=alert(5)></svg>"},
                          "y.png": {"image/png": "iVBORw0KGgo="}}
    course = nbformat.v4.new_markdown_cell("The course's own <b>bold</b> text",
                                           metadata={"nbgrader": {"grade_id": "intro", "locked": True,
                                                                  "solution": False, "grade": False}})
    code = nbformat.v4.new_code_cell("display(HTML(...))")
    code.outputs = sanitized_outputs([
        {"output_type": "display_data", "data": {"text/html": SCRIPT, "text/plain": "<HTML object>"}},
        {"output_type": "display_data", "data": {"application/javascript": "alert(6)"}},
        {"output_type": "execute_result", "data": {"image/svg+xml": "<svg onload=alert(7)/>"}},
        {"output_type": "display_data", "data": {"text/markdown": IMG, "text/latex": "\\href{javascript:x}{y}"}},
        {"output_type": "display_data", "data": {"image/png": '" onerror="alert(8)'}},
        {"output_type": "display_data", "data": {"image/png": "iVBORw0KGgo="}},
        {"output_type": "stream", "name": "stdout", "text": SCRIPT},
        {"output_type": "error", "ename": "ValueError", "evalue": IMG, "traceback": [SCRIPT]},
    ])
    notebook.cells = [course, answer, code]
    return notebook


def test_rich_outputs_reach_graders_as_text_and_plain_images():
    outputs = student_notebook().cells[2].outputs
    assert outputs[0].data == {"text/plain": f"<HTML object>\n{NOT_SHOWN}"}
    assert outputs[1].data == outputs[2].data == outputs[3].data == outputs[4].data == {"text/plain": NOT_SHOWN}
    assert outputs[5].data == {"image/png": "iVBORw0KGgo="}


def test_markdown_answers_show_their_html_as_text():
    notebook = student_notebook()
    sanitize_markdown_cells(notebook)
    course, answer, _ = notebook.cells
    assert course.source == "The course's own <b>bold</b> text"   # locked: the course's, untouched
    assert "<" not in answer.source and "javascript:" not in answer.source.lower()
    assert answer.source.startswith("My answer &lt;script>alert('xss')&lt;/script> &lt;img src=x")
    assert answer.attachments == {"x.svg": {}, "y.png": {"image/png": "iVBORw0KGgo="}}


@pytest.mark.parametrize("sanitized", [True, False])
def test_the_formgraders_html_view_runs_no_student_script(sanitized):
    """The autograded notebook as nbconvert renders it (formgrader, feedback). Unsanitized, the
    same notebook does carry the attacks: the test can tell."""
    notebook = student_notebook()
    if sanitized:
        sanitize_markdown_cells(notebook)
    else:
        notebook.cells[2].outputs = [nbformat.v4.new_output("display_data", data={"text/html": SCRIPT})]
    page, _ = HTMLExporter(template_name="classic").from_notebook_node(notebook)
    found = [attack for attack in ATTACKS if attack in page]
    if sanitized:
        assert not found and 'href="javascript:' not in page.lower() and "onload=alert" not in page
        assert "&lt;script&gt;alert(" in page  # the student's text is there, as text
    else:
        assert found


HOSTILE_RECORD = {
    "student": "=HYPERLINK(\"http://evil\",\"x\")", "name": "@SUM(A1) <script>alert(1)</script>",
    "status": "graded, needs review", "gradable": True,
    "reasons": ["the notebook was named '-2+3.ipynb'", "line one\n## Forged heading\n| a | b |",
                f"extra files ignored: {SCRIPT}"],
    "grades": [{"grade_id": "block_keeps_shape", "part": "Part A", "kind": "autograded", "score": 0,
                "max_score": 1, "passed": False, "message": "+cmd|' /C calc'!A0", "hint": IMG}],
    "auto_score": 0, "auto_max": 1, "max_score": 1,
}


def test_csv_cells_never_start_a_formula(tmp_path):
    report.write_grades([HOSTILE_RECORD], tmp_path)
    row = next(csv.DictReader(open(tmp_path / "grades.csv")))
    assert row["student"] == "'=HYPERLINK(\"http://evil\",\"x\")"
    assert row["name"] == "'@SUM(A1) <script>alert(1)</script>"
    assert row["review_reasons"].startswith("the notebook was named") and "\n" not in row["review_reasons"]
    by_check = next(csv.DictReader(open(tmp_path / "grades_by_check.csv")))
    assert by_check["message"] == "'+cmd|' /C calc'!A0"
    for path in (tmp_path / "grades.csv", tmp_path / "grades_by_check.csv"):
        for cells in csv.reader(open(path)):
            assert not any(cell.startswith(report.FORMULA_START) for cell in cells), cells


def test_summary_markdown_shows_names_and_reasons_as_text(tmp_path):
    report.write_summary([HOSTILE_RECORD], tmp_path, "session07_residual_cnn", {"isolation": "namespaces"})
    text = (tmp_path / "summary.md").read_text()
    assert "<script" not in text and "<img" not in text
    assert not any(line.startswith(("## Forged", "| a |")) for line in text.splitlines())
    review = [line for line in text.splitlines() if line.startswith("- **")]
    assert len(review) == 1 and "line one \\#\\# Forged heading \\| a \\| b \\|" in review[0]
    assert json.loads((tmp_path / "summary.json").read_text())["needs_review"][0]["reasons"] == HOSTILE_RECORD["reasons"]


def test_feedback_html_escapes_everything_the_student_wrote():
    page = report.feedback_html(HOSTILE_RECORD, "session07_residual_cnn")
    assert not any(attack in page for attack in ATTACKS)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "Forged heading" in page


HIDDEN = "0.73194, -1.2281, 0.00912"          # values the probe was given
PROBE_SOURCE = "def probe_skip(cells, arrays): x = arrays['x']"


@pytest.mark.parametrize("raised, shown", [
    (f"ValueError: [{HIDDEN}]", "ValueError"),
    (f"RuntimeError: mat1 and mat2 shapes cannot be multiplied (4x8 and {HIDDEN}) "
     "(in your cell residual_block, line 12)",
     "RuntimeError (tensor shapes or sizes do not match) in your cell residual_block, line 12"),
    (f"Exception_{HIDDEN}: {PROBE_SOURCE}", "an exception"),
    (f"NameError: name 'ResidualBlok' is not defined {PROBE_SOURCE}",
     "NameError (a name is not defined (a cell that did not run, or a typo))"),
    (f"KeyError: {PROBE_SOURCE} (in your cell probe_{HIDDEN}, line 1)", "KeyError"),
    (f"TypeError: x\n{PROBE_SOURCE}", "TypeError"),
    ("took longer than 5 s", "took longer than 5 s"),
    (None, "an exception"),
])
def test_exception_text_never_reaches_feedback(raised, shown):
    assert safe_error(raised, cells=("residual_block",)) == shown


def test_a_sandbox_problem_loses_what_the_process_printed():
    assert safe_problem(f"the process exited with status 1 ({PROBE_SOURCE})") == "the process exited with status 1"
    assert safe_problem("stopped by the grader: wall time over 150 s") == "stopped by the grader: wall time over 150 s"
    assert safe_problem(None) is None


LEAKING_BLOCK = '''
import sys

def _leak():
    frames, frame = [], sys._getframe(1)
    while frame is not None:
        frames.append(repr(frame.f_locals)[:400])
        frame = frame.f_back
    return " ".join(frames)

class ResidualBlock(nn.Module):
    def __init__(self, channels):
        super().__init__()

    def forward(self, x):
        raise ValueError(f"{x.flatten()[:8].tolist()} {_leak()}")
'''
LEAKING_CNN = '''
class ResidualCNN(nn.Module):
    def __init__(self):
        super().__init__()
        raise RuntimeError(_leak())
'''


def test_a_submission_that_raises_its_hidden_inputs_gets_only_exception_types_back():
    """Through the real sandbox: every failure names a type and a place, no number, no source."""
    import re

    from autograder.trusted import run_checks

    results = run_checks("session07_residual_cnn", {"residual_block": LEAKING_BLOCK, "residual_cnn": LEAKING_CNN},
                         student="leaks-inputs")
    shown = re.compile(r"^not checked: building (ResidualBlock\(\d+\)|ResidualCNN\(\)) failed: it raised "
                       r"(ValueError in your cell residual_block|RuntimeError in your cell residual_cnn), line \d+$")
    for grade_id, result in results.items():
        assert shown.match(result.message), (grade_id, result.message)
        assert not re.search(r"\d\.\d{3}|def |f_locals|array\(", result.feedback()), result.feedback()
