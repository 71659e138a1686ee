"""JupyterLab as instructors and students use it, driven in Debian's Chromium through Playwright.

Starts JupyterLab on a free localhost port over a temporary copy of the course, then:
an instructor runs a demo notebook and sees no error and its figures; a student validates a
completed and an incomplete notebook with nbgrader's Validate button; an instructor opens the
formgrader. Screenshots go to build/screenshots/ (the best are copied to docs/screenshots/).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

from nbgrader_harness import REPO, fill_answers, nbgrader, solution_answers

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SCREENSHOTS = REPO / "build" / "screenshots"
ASSIGNMENT, NOTEBOOK = "session07_residual_cnn", "residual_cnn"
DEMO_NOTEBOOK = "session07_vanishing_gradients.ipynb"  # the Session 7 live demo, in notebooks/
# The notebook in front: JupyterLab keeps other open notebooks in the DOM, hidden.
ACTIVE = ".jp-NotebookPanel:not(.lm-mod-hidden)"
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]

# Then this test is the live demo's one run in the suite (tests/conftest.py leaves it out of nbval).
BROWSER_RUNS_THE_DEMO = Path(CHROMIUM).exists()
pytestmark = pytest.mark.skipif(not BROWSER_RUNS_THE_DEMO,
                                reason="Chromium is not installed (.ci/run installs Debian's chromium)")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def course(tmp_path_factory) -> Path:
    """A copy of the course with a gradebook and two student notebooks, complete and untouched."""
    course = tmp_path_factory.mktemp("lab") / "course"
    course.mkdir()
    shutil.copy(REPO / "nbgrader_config.py", course)
    for folder in ("source", "notebooks"):
        shutil.copytree(REPO / folder, course / folder)
    nbgrader(course, "generate_assignment", ASSIGNMENT, "--force")
    release = nbformat.read(course / "release" / ASSIGNMENT / f"{NOTEBOOK}.ipynb", as_version=4)
    for student, notebook in [("complete", fill_answers(release, solution_answers(ASSIGNMENT, NOTEBOOK))),
                              ("incomplete", release)]:
        folder = course / "students" / student
        folder.mkdir(parents=True)
        nbformat.write(notebook, folder / f"{NOTEBOOK}.ipynb")
    return course


def write_lab_settings(folder: Path) -> None:
    """Render every cell (no windowing), so the test sees every prompt; no news pop-up."""
    for plugin, values in {
        "@jupyterlab/notebook-extension/tracker": {"windowingMode": "none"},
        "@jupyterlab/apputils-extension/notification": {"fetchNews": "false"},
    }.items():
        path = folder / f"{plugin}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))


@pytest.fixture(scope="module")
def lab(course):
    """JupyterLab on localhost over `course`; always stopped, whatever the tests do."""
    port, token = free_port(), secrets.token_hex(16)
    settings = course.parent / "lab-settings"
    write_lab_settings(settings)
    environment = dict(os.environ, DEEPNETS_BUDGET="quick", JUPYTERLAB_SETTINGS_DIR=str(settings),
                       PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    log = open(course / "jupyterlab.log", "w")
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
         f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={course}", "--allow-root",
         "--LabApp.news_url=None", f"--LabApp.workspaces_dir={course.parent / 'workspaces'}"],
        cwd=course, env=environment, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert server.poll() is None, (course / "jupyterlab.log").read_text()[-3000:]
                assert time.monotonic() < deadline, "JupyterLab did not start within 90 s"
                time.sleep(0.5)
        yield f"http://127.0.0.1:{port}", token
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    yield context.new_page()
    context.close()


def screenshot(page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"))


def open_notebook(page, lab, path: str) -> None:
    url, token = lab
    # reset: a fresh layout with only this notebook. A restored workspace (the notebooks of
    # earlier tests, possibly side by side) can leave too little width for the notebook's
    # toolbar, which then hides buttons such as Validate in its overflow menu.
    page.goto(f"{url}/lab/tree/{path}?reset&token={token}")
    page.locator(f"{ACTIVE} .jp-Notebook .jp-Cell").first.wait_for(timeout=90_000)
    page.wait_for_function(
        "() => document.querySelector('#jp-main-statusbar')?.innerText.includes('Idle')",
        timeout=90_000)


def run_all_cells(page) -> None:
    page.get_by_role("menuitem", name="Run", exact=True).click()
    page.get_by_text("Run All Cells", exact=True).click()


def wait_until_done(page, timeout_s: float) -> None:
    """Until every code cell has an execution count and none is queued or running ([*])."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        prompts = page.locator(f"{ACTIVE} .jp-CodeCell .jp-InputArea-prompt").all_inner_texts()
        if prompts and all(p.strip() not in ("[ ]:", "[*]:", "") for p in prompts):
            return
        time.sleep(2)
    raise AssertionError(f"cells still running after {timeout_s:.0f} s: {prompts}")


def test_instructor_runs_the_demo_notebook_without_errors(page, lab):
    open_notebook(page, lab, f"notebooks/{DEMO_NOTEBOOK}")
    run_all_cells(page)
    wait_until_done(page, timeout_s=400)
    outputs = page.locator(f"{ACTIVE} .jp-OutputArea-output").all_inner_texts()
    errors = [text for text in outputs if "Traceback" in text or "Error" in text.split("\n")[0]]
    assert not errors, f"cells show errors: {errors[:2]}"
    figures = page.locator(f"{ACTIVE} .jp-OutputArea-output img")
    assert figures.count() >= 3, f"expected the demo's figures, {figures.count()} rendered"
    assert all(figures.nth(i).evaluate("img => img.naturalWidth > 100") for i in range(figures.count()))
    figures.last.scroll_into_view_if_needed()
    screenshot(page, "instructor-demo-figure")


def validate(page) -> str:
    # The panel in front: JupyterLab may restore an earlier notebook, hidden, with its own Validate button.
    page.locator(ACTIVE).get_by_role("button", name="Validate").click()
    dialog = page.locator(".jp-Dialog")
    dialog.wait_for(timeout=300_000)
    page.wait_for_function(
        "() => !document.querySelector('.jp-Dialog')?.innerText.includes('Validating')",
        timeout=300_000)
    return dialog.inner_text()


def test_student_validates_a_completed_notebook(page, lab):
    open_notebook(page, lab, f"students/complete/{NOTEBOOK}.ipynb")
    message = validate(page)
    screenshot(page, "student-validate-success")
    assert "Success" in message and "passes all the tests" in message, message


def test_student_validating_an_incomplete_notebook_sees_the_failing_checks(page, lab):
    open_notebook(page, lab, f"students/incomplete/{NOTEBOOK}.ipynb")
    message = validate(page)
    screenshot(page, "student-validate-failure")
    assert "failed" in message.lower(), message
    assert "NotImplementedError" in message
    assert "The block's output has the shape of its input" in message, "the failing check is not named"


def test_instructor_sees_the_assignments_in_the_formgrader(page, lab):
    url, token = lab
    page.goto(f"{url}/formgrader?token={token}")
    page.wait_for_selector(f"text={ASSIGNMENT}", timeout=60_000)
    page.wait_for_selector("text=day13_vgg_resnet", timeout=30_000)
    assert page.locator("#warning-exchange").count() == 0, "the formgrader has no nbgrader exchange"
    names = page.locator("td.name").all_inner_texts()
    assert sorted(name.strip() for name in names) == ["day13_vgg", "day13_vgg_resnet", ASSIGNMENT], names
    screenshot(page, "instructor-formgrader")
