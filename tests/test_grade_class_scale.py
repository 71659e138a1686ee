"""The class pipeline interrupted and resumed, and on Dask with a PostgreSQL gradebook: same grades."""

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat
import pytest

import hostile_submissions as hostile
from nbgrader_harness import REPO, fill_answers, make_course, released
from test_grade_class import ASSIGNMENT, NOTEBOOK, TEST_LIMITS, records

PG_BIN = sorted(Path("/usr/lib/postgresql").glob("*/bin"))
CLASS = {  # cheap submissions: the honest BASE and two small variations of it
    "ana": hostile.BASE,
    "ben": hostile.with_tamper(cnn_extra="torch.allclose = lambda *a, **k: True"),
    "cho": {"residual_block": hostile.NO_SKIP_BLOCK.replace("padding=1, bias=False)\n        self.bn2",
                                                            "padding=0, bias=False)\n        self.bn2"),
            "residual_cnn": hostile.LINEAR_CNN},
    "dee": {},
}


def small_class(root: Path) -> tuple[Path, Path]:
    course = make_course(root, ASSIGNMENT)
    with open(course / "nbgrader_config.py", "a") as config:
        config.write(TEST_LIMITS)
    release = released(course, ASSIGNMENT, NOTEBOOK)
    folder = root / "class"
    folder.mkdir()
    for student, answers in CLASS.items():
        nbformat.write(fill_answers(release, answers), folder / f"{student}.ipynb")
    return course, folder


def command(*arguments) -> list[str]:
    return [sys.executable, "-m", "autograder.grade_class", ASSIGNMENT, "--no-progress", *arguments]


def environment() -> dict:
    env = {**os.environ, "PATH": f"{REPO / '.venv' / 'bin'}{os.pathsep}{os.environ['PATH']}"}
    env.pop("DEEPNETS_BUDGET", None)
    return env


def scores(course: Path) -> dict[str, dict[str, float]]:
    return {student: {g["grade_id"]: g["score"] for g in record["grades"] if g["kind"] == "autograded"}
            for student, record in records(course).items()}


@pytest.fixture(scope="module")
def resumed(tmp_path_factory):
    """Graded with one worker, killed after the first submission is done, then run again."""
    course, folder = small_class(tmp_path_factory.mktemp("resume"))
    process = subprocess.Popen(command("--folder", str(folder), "--workers", "1"), cwd=course,
                               env=environment(), start_new_session=True,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    done = course / "grading" / ASSIGNMENT / "records"
    deadline = time.monotonic() + 900
    while time.monotonic() < deadline and len(list(done.glob("*.json"))) < 1 and process.poll() is None:
        time.sleep(0.5)
    os.killpg(process.pid, signal.SIGKILL)  # a crash, halfway: no chance to clean up
    process.wait()
    first = {p.name: p.stat().st_mtime_ns for p in done.glob("*.json")}
    assert 1 <= len(first) < len(CLASS), "the run was not interrupted halfway"
    result = subprocess.run(command("--workers", "1"), cwd=course, env=environment(),
                            capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    return course, first, result.stderr


def test_an_interrupted_run_resumes_without_regrading_what_is_done(resumed):
    course, first, log = resumed
    assert f"{len(first)} already graded" in log
    after = {p.name: p.stat().st_mtime_ns for p in (course / "grading" / ASSIGNMENT / "records").glob("*.json")}
    assert set(after) == {f"{s}.json" for s in CLASS}
    assert all(after[name] == mtime for name, mtime in first.items())


def test_resumed_gradebook_has_each_grade_once(resumed):
    from nbgrader.api import Gradebook

    course, first, log = resumed
    graded = scores(course)
    assert sum(graded["ana"].values()) == hostile.BASE_SCORE
    assert sum(graded["ben"].values()) == hostile.BASE_SCORE
    assert sum(graded["dee"].values()) == 0
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
        submissions = gradebook.find_assignment(ASSIGNMENT).submissions
        assert sorted(s.student.id for s in submissions) == sorted(CLASS)
        for submission in submissions:
            assert sum(n.code_score for n in submission.notebooks) == sum(graded[submission.student.id].values())


@pytest.fixture
def postgresql():
    """A PostgreSQL server of Debian's `postgresql` package, started for this test only."""
    if not PG_BIN or os.geteuid() != 0 or not shutil.which("runuser"):
        pytest.skip("needs Debian's postgresql package and root (to run the server as postgres)")
    base = Path(tempfile.mkdtemp(prefix="grader-pg-"))  # the postgres user must reach it
    base.chmod(0o755)
    data, sockets = base / "pgdata", base / "pgsock"
    for folder in (data, sockets):
        folder.mkdir()
        shutil.chown(folder, "postgres", "postgres")
    run = lambda *args: subprocess.run(["runuser", "-u", "postgres", "--", *args],  # noqa: E731
                                       check=True, capture_output=True, text=True)
    run(str(PG_BIN[-1] / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres")
    run(str(PG_BIN[-1] / "pg_ctl"), "-D", str(data), "-w", "-l", str(sockets / "server.log"), "-o",
        f"-k {sockets} -c listen_addresses='' -p 54329", "start")
    try:
        run(str(PG_BIN[-1] / "createdb"), "-h", str(sockets), "-p", "54329", "-U", "postgres", "grades")
        yield f"postgresql+psycopg://postgres@/grades?host={sockets}&port=54329"
    finally:
        run(str(PG_BIN[-1] / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop")
        shutil.rmtree(base, ignore_errors=True)


def test_dask_and_postgresql_give_the_same_grades(resumed, postgresql, tmp_path):
    from nbgrader.api import Gradebook

    course, folder = small_class(tmp_path / "dask")
    result = subprocess.run(command("--folder", str(folder), "--dask", "--workers", "2",
                                    "--db-url", postgresql), cwd=course, env=environment(),
                            capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    assert scores(course) == scores(resumed[0])
    summary = json.loads((course / "grading" / ASSIGNMENT / "summary.json").read_text())
    assert summary["backend"] == "dask" and summary["database"] == "postgresql"
    with Gradebook(postgresql) as gradebook:
        submissions = gradebook.find_assignment(ASSIGNMENT).submissions
        assert sorted(s.student.id for s in submissions) == sorted(CLASS)
