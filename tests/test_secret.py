"""Grading never uses a secret anyone can reproduce: GRADER_SECRET, else the course's own."""

import os
import stat

import pytest

from autograder import grade_class
from autograder.secret import SECRET_FILE, SECRET_VARIABLE, grader_secret, use_course_secret


@pytest.fixture
def no_secret_set(monkeypatch):
    monkeypatch.delenv(SECRET_VARIABLE, raising=False)


def test_the_variable_wins_and_nothing_is_written(tmp_path, monkeypatch):
    monkeypatch.setenv(SECRET_VARIABLE, "set by the instructor")
    assert use_course_secret(tmp_path) == "set by the instructor" == grader_secret()
    assert not (tmp_path / SECRET_FILE).exists()


def test_without_it_the_course_draws_its_own_keeps_it_private_and_reuses_it(tmp_path, no_secret_set):
    assert grader_secret() == "", "outside grading (a student's own run) there is no secret"
    first = use_course_secret(tmp_path)
    assert len(first) == 64 and int(first, 16) and os.environ[SECRET_VARIABLE] == first
    path = tmp_path / SECRET_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600, "readable by the course's owner only"
    os.environ.pop(SECRET_VARIABLE)
    assert use_course_secret(tmp_path) == first, "a regrade draws the same inputs"
    os.environ.pop(SECRET_VARIABLE)
    assert use_course_secret(tmp_path / "another course") != first


def test_a_course_that_cannot_be_written_grades_with_a_secret_of_its_own_run(tmp_path, no_secret_set, capsys):
    (tmp_path / "grading").write_text("a file where the folder should be")
    secret = use_course_secret(tmp_path)
    assert len(secret) == 64 and "cannot keep the course's grading secret" in capsys.readouterr().err


def test_the_class_runs_workers_carry_the_course_secret(tmp_path, no_secret_set):
    environment = grade_class.grader_environment(tmp_path, tmp_path / "grading" / "a")
    assert environment[SECRET_VARIABLE] == (tmp_path / SECRET_FILE).read_text().strip()


def test_an_empty_secret_file_is_drawn_again(tmp_path, no_secret_set):
    """A crash between creating the file and writing it leaves it empty: never grade with ''."""
    (tmp_path / SECRET_FILE).parent.mkdir()
    (tmp_path / SECRET_FILE).write_text("")
    assert len(use_course_secret(tmp_path)) == 64 == len((tmp_path / SECRET_FILE).read_text().strip())
