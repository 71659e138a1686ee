"""A class on JupyterHub, end to end, in Debian's Chromium driven by Playwright.

hub/setup_hub.py makes an instructor and two students (system users with random suffixes, so
parallel runs on one machine do not collide), the hub's environment and the course; JupyterHub
(hub/jupyterhub_config.py, LocalProcessSpawner, configurable-http-proxy from npm) runs on free
localhost ports. Then, each person in their own browser context:

1. the instructor releases session07_residual_cnn from the formgrader (opened as a page of its
   own: JupyterHub >= 4.1 forbids the iframe JupyterLab would show it in);
2. each student fetches it from the Assignment List. The test then writes each student's answers
   into the fetched notebook as that student (typing a notebook's worth of code through the
   browser would test Playwright, not the course): the course solution; a block without its
   skip and a one-layer "CNN" (hostile_submissions.BASE: it loses the skip checks, and its
   accuracy check trains a linear model in seconds, not a second CNN). Each student presses
   Submit. (That an untouched notebook gets 0 on every check through `nbgrader autograde`, with
   its feedback, is tests/test_writing_an_assignment.py, and through the class pipeline the
   class run: a third, blank hub student proved nothing more at the cost of a whole
   sandboxed notebook run and a browser session);
3. the instructor presses Collect in the formgrader; autograding runs as root by
   hub/autograde.sh (by the command, not a button: the grading sandbox isolates student code
   only as root, see the README); the instructor opens the formgrader's gradebook; one
   reflection is graded by hand through nbgrader's API as the instructor (NOT by typing in the
   formgrader: see the comment in `term`); the instructor presses Generate Feedback and
   Release Feedback in the formgrader;
4. each student presses Fetch Feedback and opens it: their own total, no hidden test;
5. `nbgrader export` (run as the instructor) matches the expected scores exactly.
A student's kernel also tries to read another student's home, the instructor's course
(source/, gradebook.db) and the exchange's inbound folder, and is refused each time.
Screenshots go to build/screenshots/hub-*.png. Everything started is stopped and the users are
removed, whatever happens.
"""

from __future__ import annotations

import csv
import io
import json
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat
import pytest

import hostile_submissions as hostile
from nbgrader_harness import REPO, build_course, fill_answers, solution_answers
from test_browser import CHROMIUM, CHROMIUM_FLAGS, free_port

ASSIGNMENT, NOTEBOOK = "session07_residual_cnn", "residual_cnn"
PROXY = REPO / "hub" / "node_modules" / ".bin" / "configurable-http-proxy"
SCREENSHOTS = REPO / "build" / "screenshots"
HAND_GRADED = "reflection_outperform"   # the reflection the instructor grades in the formgrader
HAND_SCORE = 2

pytestmark = [
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Chromium is not installed (.ci/run installs it)"),
    pytest.mark.skipif(not PROXY.exists(), reason="configurable-http-proxy is missing: npm ci --prefix hub"),
    pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("useradd", path="/usr/sbin:/sbin"),
                       reason="the hub test creates system users: run as root (CI does)"),
]


def as_user(user: str, *command: str, cwd: Path, env: dict) -> subprocess.CompletedProcess:
    home = pwd.getpwnam(user).pw_dir
    result = subprocess.run(["/usr/sbin/runuser", "-u", user, "--", "env", f"HOME={home}", f"USER={user}",
                             *command], cwd=cwd, env=env, capture_output=True, text=True)
    assert result.returncode == 0, f"{command} as {user} failed:\n{result.stdout}\n{result.stderr}"
    return result


def processes_of(user: str) -> list[int]:
    listed = subprocess.run(["ps", "-u", user, "-o", "pid="], capture_output=True, text=True).stdout
    return [int(pid) for pid in listed.split()]


@pytest.fixture(scope="module")
def hub():
    """The hub, set up and running; afterwards stopped, its users and files removed."""
    tag = secrets.token_hex(2)
    instructor, students = f"instructor-{tag}", [f"student{i}-{tag}" for i in (1, 2)]
    root = Path(tempfile.mkdtemp(prefix="deepnets-hub-"))
    root.chmod(0o755)
    passwords = {"DEEPNETS_HUB_PASSWORD": secrets.token_hex(8), "DEEPNETS_HUB_ADMIN_PASSWORD": secrets.token_hex(16)}
    port = free_port()
    environment = {**os.environ, **passwords, "DEEPNETS_HUB_ROOT": str(root), "DEEPNETS_HUB_PORT": str(port),
                   "DEEPNETS_HUB_INTERNAL_PORT": str(free_port()), "DEEPNETS_HUB_PROXY_API_PORT": str(free_port())}
    environment.pop("DEEPNETS_BUDGET", None)  # the students' servers pick it as students' do
    server = None
    started = time.perf_counter()
    try:
        subprocess.run([sys.executable, str(REPO / "hub" / "setup_hub.py"), "--root", str(root),
                        "--instructor", instructor, "--students", *students],
                       check=True, capture_output=True, text=True, env=environment)
        print(f"hub set up in {time.perf_counter() - started:.0f} s")
        log = open(root / "jupyterhub.log", "w")
        server = subprocess.Popen([str(root / "venv" / "bin" / "jupyterhub"), "-f",
                                   str(REPO / "hub" / "jupyterhub_config.py")],
                                  cwd=root, env=environment, stdout=log, stderr=subprocess.STDOUT,
                                  start_new_session=True)
        deadline = time.monotonic() + 120
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert server.poll() is None, (root / "jupyterhub.log").read_text()[-3000:]
                assert time.monotonic() < deadline, "JupyterHub did not start within 120 s"
                time.sleep(0.5)
        users = json.loads((root / "users.json").read_text())
        yield {"url": f"http://127.0.0.1:{port}", "root": root, "instructor": instructor,
               "students": students, "passwords": passwords, "course": Path(users["course"]),
               "exchange": Path(users["exchange"]), "env": environment}
    finally:
        if server is not None:
            server.send_signal(signal.SIGTERM)  # JupyterHub stops the users' servers and its proxy
            try:
                server.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
            log.close()
        for user in [instructor, *students]:
            try:
                pwd.getpwnam(user)
            except KeyError:
                continue
            for pid in processes_of(user):  # anything left of the test's own users
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            subprocess.run(["/usr/sbin/userdel", "--remove", user], capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        yield chromium
        chromium.close()


def screenshot(page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"hub-{name}.png"))


def log_in(browser, hub, user: str):
    """A browser context of its own, logged in, with JupyterLab loaded."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.goto(f"{hub['url']}/hub/login", timeout=120_000)
    password = hub["passwords"]["DEEPNETS_HUB_ADMIN_PASSWORD" if user == hub["instructor"] else "DEEPNETS_HUB_PASSWORD"]
    # The hub's first page, while the class run starts beside it on 2 cores, once took more than
    # Playwright's default 30 s to show its form (3 December 2026); later steps allow minutes too.
    page.locator("#username_input").wait_for(timeout=120_000)
    page.fill("#username_input", user)
    page.fill("#password_input", password)
    page.click("#login_submit")
    page.wait_for_url(f"**/user/{user}/lab**", timeout=180_000)
    page.locator("#jp-main-statusbar").wait_for(timeout=120_000)
    return context, page


def open_assignment_list(page):
    page.get_by_role("menuitem", name="Nbgrader", exact=True).click()
    page.get_by_text("Assignment List", exact=True).click()
    panel = page.locator("#nbgrader-assignment-list, .nbgrader-AssignmentList, #assignments").first
    panel.wait_for(timeout=60_000)
    return page


def click_in_assignment_list(page, button: str, timeout_ms: int = 120_000) -> None:
    page.get_by_role("button", name=button, exact=True).first.click(timeout=timeout_ms)


def formgrader_row(page, assignment: str):
    return page.locator("tr", has=page.locator("td.name", has_text=assignment))


def formgrader_action(page, hub, cell: str, success: str) -> None:
    """Press the formgrader button in column `cell` of the assignment's row; wait for `success`."""
    page.goto(f"{hub['url']}/user/{hub['instructor']}/formgrader")
    row = formgrader_row(page, ASSIGNMENT)
    row.wait_for(timeout=60_000)
    row.locator(f"td.{cell} a").click()
    # The formgrader answers with #success-modal or #error-modal (its log and traceback): wait
    # for either, so that a failure says why instead of waiting out the timeout.
    modal = page.locator("#success-modal, #error-modal").first
    modal.wait_for(timeout=300_000)
    text = modal.inner_text()
    assert success in text, f"the formgrader's {cell} failed:\n{text[-4000:]}"


@pytest.fixture(scope="module")
def term(hub, browser):
    """The whole loop; returns what the tests below check."""
    answers = solution_answers(ASSIGNMENT, NOTEBOOK)
    result = {"timings": {}}
    clock = time.perf_counter()

    instructor_context, instructor = log_in(browser, hub, hub["instructor"])
    formgrader_action(instructor, hub, "release", "Successfully released")
    instructor.goto(f"{hub['url']}/user/{hub['instructor']}/formgrader")
    formgrader_row(instructor, ASSIGNMENT).locator("text=released").wait_for(timeout=30_000)
    screenshot(instructor, "instructor-released")
    result["timings"]["release"] = time.perf_counter() - clock

    contents = {}
    students = {}
    for student, kind in zip(hub["students"], ["complete", "base"]):
        context, page = log_in(browser, hub, student)
        open_assignment_list(page)
        click_in_assignment_list(page, "Fetch")
        page.get_by_role("button", name="Submit", exact=True).first.wait_for(timeout=120_000)
        if kind == "complete":
            screenshot(page, "student-fetched")
        home = Path(pwd.getpwnam(student).pw_dir)
        fetched = home / ASSIGNMENT / f"{NOTEBOOK}.ipynb"
        release = nbformat.read(fetched, as_version=4)
        notebook = {"complete": fill_answers(release, answers), "base": fill_answers(release, hostile.BASE)}[kind]
        # Written as the student would save it (through the user, so ownership is theirs).
        staged = hub["root"] / f"{student}.ipynb"
        nbformat.write(notebook, staged)
        contents[kind] = {line.strip() for cell in notebook.cells for line in cell.source.split("\n")}
        staged.chmod(0o644)
        as_user(student, "cp", str(staged), str(fetched), cwd=home, env=hub["env"])
        click_in_assignment_list(page, "Submit")
        page.locator("text=Submitted assignments").first.wait_for(timeout=60_000)
        page.wait_for_timeout(1000)
        if kind == "complete":
            screenshot(page, "student-submitted")
        students[student] = (context, page, kind)
    result["timings"]["fetch and submit"] = time.perf_counter() - clock

    formgrader_action(instructor, hub, "collect", "Successfully collected")
    result["timings"]["collect"] = time.perf_counter() - clock
    grading = subprocess.run([str(REPO / "hub" / "autograde.sh"), ASSIGNMENT, "--force"],
                             env=hub["env"], capture_output=True, text=True)
    assert grading.returncode == 0, grading.stdout[-3000:] + grading.stderr[-3000:]
    result["autograde_log"] = grading.stdout + grading.stderr
    result["timings"]["autograde"] = time.perf_counter() - clock

    # The gradebook in the formgrader, then one reflection graded by hand. Typing the score into
    # the formgrader's submission page timed out (its score field never appeared within 60 s on
    # this loaded machine, twice), so the score is set by nbgrader's API as the instructor:
    # the same field (manual_score) the formgrader's Save writes.
    complete = hub["students"][0]
    instructor.goto(f"{hub['url']}/user/{hub['instructor']}/formgrader/gradebook/{ASSIGNMENT}/{NOTEBOOK}")
    instructor.locator("tr", has=instructor.locator("a.name-shown", has_text=complete)).wait_for(timeout=60_000)
    screenshot(instructor, "instructor-gradebook")
    as_user(hub["instructor"], str(hub["root"] / "venv" / "bin" / "python"), "-c", f"""if True:
        from nbgrader.api import Gradebook
        with Gradebook("sqlite:///gradebook.db") as gradebook:
            grade = gradebook.find_grade({HAND_GRADED!r}, {NOTEBOOK!r}, {ASSIGNMENT!r}, {complete!r})
            grade.manual_score = {HAND_SCORE}
            gradebook.db.commit()
        """, cwd=hub["course"], env=hub["env"])
    result["timings"]["manual grading"] = time.perf_counter() - clock

    formgrader_action(instructor, hub, "generate-feedback", "Successfully generated feedback")
    formgrader_action(instructor, hub, "release-feedback", "Successfully released feedback")
    instructor.wait_for_timeout(500)   # the modal fades in
    screenshot(instructor, "instructor-feedback-released")
    result["timings"]["feedback"] = time.perf_counter() - clock

    result["feedback"] = {}
    for student, (context, page, kind) in students.items():
        page.reload()
        page.locator("#jp-main-statusbar").wait_for(timeout=120_000)
        open_assignment_list(page)
        click_in_assignment_list(page, "Fetch Feedback")
        link = page.locator("a", has_text="view feedback").first
        link.wait_for(timeout=120_000)
        link.click()  # the file browser opens the feedback folder
        home = Path(pwd.getpwnam(student).pw_dir)
        [html] = (home / ASSIGNMENT / "feedback").glob(f"*/{NOTEBOOK}.html")
        page.goto(f"{hub['url']}/user/{student}/files/{html.relative_to(home)}")
        result["feedback"][kind] = page.locator("body").inner_text()
        if kind == "base":
            screenshot(page, "student-feedback")
    result["timings"]["fetch feedback"] = time.perf_counter() - clock

    grades = hub["course"] / "grades.csv"
    as_user(hub["instructor"], str(hub["root"] / "venv" / "bin" / "python"), "-m", "nbgrader", "export",
            "--to", str(grades), cwd=hub["course"],
            env={**hub["env"], "PATH": f"{hub['root'] / 'venv' / 'bin'}:/usr/bin:/bin"})
    result["grades"] = {row["student_id"]: row for row in csv.DictReader(io.StringIO(grades.read_text()))}
    result["kinds"] = {student: kind for student, (_, _, kind) in students.items()}
    result["submitted_lines"] = contents
    for context, _, _ in students.values():
        context.close()
    instructor_context.close()
    print("seconds since the first login, step by step:",
          json.dumps({step: round(seconds) for step, seconds in result["timings"].items()}))
    return result


def lesson_points() -> dict[str, tuple[str, float]]:
    """grade_id -> (cell type, points) of every graded cell of the lesson, from its source."""
    import jupytext

    lesson = jupytext.read(REPO / "source" / ASSIGNMENT / f"{NOTEBOOK}.py")
    return {cell.metadata["nbgrader"]["grade_id"]: (cell.cell_type, cell.metadata["nbgrader"]["points"])
            for cell in lesson.cells if cell.metadata.get("nbgrader", {}).get("grade")}


def expected_totals() -> dict[str, float]:
    """Every autograded point, less the checks the base submission fails (its block has no skip and
    its "CNN" is one linear layer: tests/hostile_submissions.py); plus the hand-graded reflection
    for the complete one."""
    points = {name: value for name, (kind, value) in lesson_points().items() if kind == "code"}
    autograded = sum(points.values())
    return {"complete": autograded + HAND_SCORE,
            "base": autograded - sum(points[name] for name in hostile.BASE_FAILS)}


def test_exported_grades_are_the_expected_scores(term):
    got = {kind: float(term["grades"][student]["raw_score"]) for student, kind in term["kinds"].items()}
    assert got == expected_totals(), term["autograde_log"][-2000:]


def test_each_student_sees_their_own_score_and_no_hidden_test(term):
    maximum = sum(value for _, value in lesson_points().values())
    hidden, _ = build_course.hidden_and_visible_lines(REPO / "source" / ASSIGNMENT / f"{NOTEBOOK}.py")
    for kind, expected in expected_totals().items():
        text = term["feedback"][kind]
        assert f"{NOTEBOOK} (Score: {expected:.1f} / {maximum:.1f})" in text, text[:500]
        # What the lesson hides (solutions, hidden tests, model answers), less what this student
        # wrote: the complete submission's own code is the solution, and is theirs to see.
        leaked = hidden & {line.strip() for line in text.splitlines()} - term["submitted_lines"][kind]
        assert not leaked, f"{kind}'s feedback shows hidden lines: {sorted(leaked)[:3]}"
        assert "BEGIN HIDDEN TESTS" not in text


PROBE = '''import json, os
def attempt(path):
    """What this kernel's user may do with `path`: list it (a folder) or read it (a file)."""
    try:
        os.listdir(path) if os.path.isdir(path) else open(path, "rb").read(1)
        return "allowed"
    except PermissionError:
        return "denied"
    except FileNotFoundError:
        return "missing"
print("ISOLATION " + json.dumps({name: attempt(path) for name, path in PATHS.items()}))
'''


def test_a_students_kernel_cannot_read_other_students_the_course_or_the_inbound(term, hub, browser):
    """Run as code in student 2's kernel, in the browser: every secret place is refused (the
    error is PermissionError, not a wrong path), while their own home and the released
    assignments are readable (so the probe can tell the difference)."""
    me, other = hub["students"][1], hub["students"][0]
    other_home = Path(pwd.getpwnam(other).pw_dir)
    my_home = Path(pwd.getpwnam(me).pw_dir)
    course, inbound = hub["course"], hub["exchange"] / "deep-networks" / "inbound"
    secret = {
        "another student's home": other_home,
        "another student's notebook": other_home / ASSIGNMENT / f"{NOTEBOOK}.ipynb",
        "the instructor's course": course,
        "the lesson source (solutions, hidden tests)": course / "source" / ASSIGNMENT / f"{NOTEBOOK}.py",
        "the gradebook": course / "gradebook.db",
        "the collected submissions": course / "submitted",
        "the exchange's inbound folder": inbound,
    }
    readable = {"my home": my_home, "the released assignments": hub["exchange"] / "deep-networks" / "outbound"}
    for path in [*secret.values(), *readable.values()]:
        assert path.exists(), f"{path} does not exist: the probe would prove nothing"
    probe = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        f"PATHS = {json.dumps({name: str(path) for name, path in {**secret, **readable}.items()}, indent=1)}\n"
        + PROBE)])
    probe.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    staged = hub["root"] / "isolation_probe.ipynb"
    nbformat.write(probe, staged)
    staged.chmod(0o644)
    as_user(me, "cp", str(staged), str(my_home / "isolation_probe.ipynb"), cwd=my_home, env=hub["env"])
    context, page = log_in(browser, hub, me)
    try:
        page.goto(f"{hub['url']}/user/{me}/lab/tree/isolation_probe.ipynb")
        page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Cell").first.wait_for(timeout=120_000)
        page.wait_for_function(
            "() => document.querySelector('#jp-main-statusbar')?.innerText.includes('Idle')", timeout=120_000)
        page.get_by_role("menuitem", name="Run", exact=True).click()
        page.get_by_text("Run All Cells", exact=True).click()
        output = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-OutputArea-output",
                              has_text="ISOLATION")
        output.wait_for(timeout=120_000)
        screenshot(page, "student-isolation")
        found = json.loads(output.inner_text().split("ISOLATION", 1)[1].strip().splitlines()[0])
    finally:
        context.close()
    assert {name: found[name] for name in secret} == {name: "denied" for name in secret}
    assert {name: found[name] for name in readable} == {name: "allowed" for name in readable}
