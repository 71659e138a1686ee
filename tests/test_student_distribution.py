"""What students get (`make student`) holds nothing secret, installs, and validates.

The secret text is derived from the sources every time, never listed by hand:
- every line a lesson hides (source/*/*.py: between `### BEGIN SOLUTION`/`### END SOLUTION` and
  `### BEGIN HIDDEN TESTS`/`### END HIDDEN TESTS`, and the model-answer and mark-scheme cells);
- every line of the grader's code, autograder/**/*.py, the calibration answers
  (autograder/calibration/*.py) included.
A line counts as secret unless a file that is meant for students has it too (the lessons'
visible cells, deepnets/*.py, the shared demos): `import torch` is not a secret. Every file of
the distribution is searched, and inside the wheel, the zip and every notebook (parsed, so JSON
escaping hides nothing).

Installing it "in a fresh venv" honestly but cheaply: the test makes a new venv (no
--system-site-packages) from the base interpreter and installs the distribution's wheel into it
with `pip install --no-deps`. Installing the distribution's pinned third-party packages would
download PyTorch (GBs, minutes), so instead a `.pth` file in the new venv points at a folder of
links to the course venv's third-party packages, with the course's own (`deepnets`, its
editable-install hooks, `autograder`) left out. The test checks that every pin of the
distribution's requirements.txt is the version that venv then imports, that `deepnets` comes
from the wheel, and that `autograder` cannot be imported. What this does not test: that pip
resolves requirements.txt from PyPI (the same pins as the course's, which CI installs).
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import nbformat
import pytest

from nbgrader_harness import REPO, build_course, fill_answers, solution_answers

sys.path.insert(0, str(REPO / "tools"))
import build_student  # noqa: E402

ASSIGNMENT, NOTEBOOK = "session07_residual_cnn", "residual_cnn"
MIN_LENGTH = 13  # shorter lines (`return x`, `else:`) are too generic to call secret
MARKERS = ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS",
           "Model answer", "Mark scheme")
LESSONS = [lesson for lesson in build_course.lesson_sources(REPO, [])
           if lesson.parent.name != build_course.DEMOS]


def code_lines(path: Path) -> set[str]:
    return {line.strip() for line in path.read_text().splitlines() if len(line.strip()) >= MIN_LENGTH}


def secret_lines() -> dict[str, set[str]]:
    """Where each secret line comes from -> the lines (see the module's docstring)."""
    public = set()
    for lesson in LESSONS:
        public |= build_course.hidden_and_visible_lines(lesson, MIN_LENGTH)[1]
    for path in [*sorted((REPO / build_student.LIBRARY).glob("*.py")),
                 *(REPO / build_course.DEMOS / f"{demo}.py" for demo in build_student.STUDENT_DEMOS)]:
        public |= code_lines(path)
    secrets = {str(lesson.relative_to(REPO)): build_course.hidden_and_visible_lines(lesson, MIN_LENGTH)[0] - public
               for lesson in LESSONS}
    for path in sorted((REPO / "autograder").rglob("*.py")):
        secrets[str(path.relative_to(REPO))] = code_lines(path) - public
    return secrets


def texts(name: str, data: bytes):
    """(name, text) of a file and of everything inside it: zip and wheel members, tarballs,
    notebooks (every string in the JSON: sources, outputs, metadata)."""
    if name.endswith((".zip", ".whl")):
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            for member in archive.namelist():
                yield from texts(f"{name}!{member}", archive.read(member))
    elif name.endswith((".tar.gz", ".tgz", ".tar")):
        with tarfile.open(fileobj=io.BytesIO(data)) as archive:
            for member in archive.getmembers():
                if member.isfile():
                    yield from texts(f"{name}!{member.name}", archive.extractfile(member).read())
    elif name.endswith(".ipynb"):
        def strings(node):
            if isinstance(node, str):
                yield node
            elif isinstance(node, list):
                for item in node:
                    yield from strings(item)
            elif isinstance(node, dict):
                for key, value in node.items():
                    yield key
                    yield from strings(value)
        yield name, "".join(strings(json.loads(data)))
    else:
        yield name, data.decode("utf-8", "replace")


def leaks(paths: list[Path], root: Path, secrets: dict[str, set[str]]) -> list[str]:
    """Every secret line or nbgrader marker found in the files `paths` (searched inside too)."""
    found = []
    for path in paths:
        for name, text in texts(str(path.relative_to(root)), path.read_bytes()):
            lines = {line.strip() for line in text.splitlines()}
            found += [f"{name}: marker {marker!r}" for marker in MARKERS if marker in text]
            found += [f"{name}: line of {origin}: {line!r}"
                      for origin, hidden in secrets.items() for line in sorted(hidden & lines)]
    return found


@pytest.fixture(scope="module")
def distribution(tmp_path_factory) -> Path:
    """`make student`'s zip, built afresh."""
    return build_student.build(tmp_path_factory.mktemp("dist") / "student")


@pytest.fixture(scope="module")
def secrets() -> dict[str, set[str]]:
    return secret_lines()


def test_secrets_are_found_in_every_source(secrets):
    """The search has something to look for: each lesson and each calibration answer."""
    for origin in [*map(str, (l.relative_to(REPO) for l in LESSONS)),
                   *(str(p.relative_to(REPO)) for p in (REPO / "autograder" / "calibration").glob("*.py"))]:
        assert len(secrets[origin]) >= 10, f"only {len(secrets[origin])} secret lines in {origin}"


def test_the_search_finds_what_it_looks_for(tmp_path, secrets):
    """A bundle holding a lesson source, an instructor copy (model answers) and a calibration
    answer, zipped inside a zip, is caught: each of them."""
    inner = tmp_path / "inner.zip"
    with zipfile.ZipFile(inner, "w") as archive:
        archive.write(REPO / "autograder" / "calibration" / "lesson_plan_session07.py", "plan.py")
        archive.write(REPO / "notebooks" / f"{NOTEBOOK}.ipynb", "copy.ipynb")
    outer = tmp_path / "outer.zip"
    with zipfile.ZipFile(outer, "w") as archive:
        archive.write(inner, "inner.zip")
        archive.write(REPO / "source" / ASSIGNMENT / f"{NOTEBOOK}.py", "lesson.py")
    found = "\n".join(leaks([outer], tmp_path, secrets))
    assert "plan.py: line of autograder/calibration/lesson_plan_session07.py" in found
    assert "copy.ipynb: line of source/session07_residual_cnn/residual_cnn.py" in found
    assert "lesson.py: marker 'BEGIN SOLUTION'" in found


def test_distribution_holds_what_students_need_and_nothing_else(distribution):
    folder = distribution.with_suffix("")
    files = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
    releases = sorted(str(p.relative_to(REPO / "release")) for p in (REPO / "release").glob("*/*.ipynb"))
    demos = [f"demos/{demo}.ipynb" for demo in build_student.STUDENT_DEMOS]
    wheels = [name for name in files if name.endswith(".whl")]
    assert sorted(files) == sorted([*releases, *demos, *wheels, "README.md", "requirements.txt",
                                    "environment.yml"])
    with zipfile.ZipFile(folder / wheels[0]) as wheel:
        tops = {name.split("/")[0] for name in wheel.namelist()}
    assert {top for top in tops if not top.endswith(".dist-info")} == {"deepnets"}
    with zipfile.ZipFile(distribution) as bundle:
        assert sorted(name.split("/", 1)[1] for name in bundle.namelist()) == sorted(files)


def test_distribution_holds_no_solution_hidden_test_or_model_answer(distribution, secrets):
    folder = distribution.with_suffix("")
    paths = [distribution, *(p for p in folder.rglob("*") if p.is_file())]
    found = leaks(paths, distribution.parent, secrets)
    assert not found, "secret text in the student distribution:\n" + "\n".join(found[:20])


def test_student_pins_are_the_course_pins(distribution):
    folder = distribution.with_suffix("")
    course = {line for line in (REPO / "requirements.txt").read_text().splitlines() if "==" in line}
    student = [line for line in (folder / "requirements.txt").read_text().splitlines() if "==" in line]
    assert student and set(student) <= course
    assert {pin.split("==")[0] for pin in student} >= {"torch", "torchvision", "nbgrader", "jupyterlab"}
    conda = [line.strip()[2:] for line in (folder / "environment.yml").read_text().splitlines()
             if "==" in line]
    assert conda == student


def run(command: list[str], **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run(command, capture_output=True, text=True, **kwargs)
    assert result.returncode == 0, f"{command} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


@pytest.fixture(scope="module")
def fresh_venv(distribution, tmp_path_factory):
    """A new venv with the distribution's wheel installed, third-party packages linked (docstring).
    Returns (python, environment, unpacked distribution)."""
    root = tmp_path_factory.mktemp("fresh")
    with zipfile.ZipFile(distribution) as bundle:
        bundle.extractall(root)
    unpacked = root / distribution.stem
    venv = root / "venv"
    run([getattr(sys, "_base_executable", sys.executable), "-m", "venv", str(venv)])
    python = venv / "bin" / "python"
    site = Path(run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).stdout.strip())
    course_site = Path(run([sys.executable, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).stdout.strip())
    linked = root / "third-party"
    linked.mkdir()
    course_own = ("deepnets", "__editable__", "autograder")
    for entry in course_site.iterdir():
        if not entry.name.startswith(course_own) and entry.suffix != ".pth" and entry.name != "__pycache__":
            (linked / entry.name).symlink_to(entry)
    (site / "course-third-party.pth").write_text(f"{linked}\n")
    home = root / "home"
    home.mkdir()
    environment = {
        "HOME": str(home), "PATH": f"{venv / 'bin'}:/usr/bin:/bin", "LANG": "C.UTF-8",
        # the course's data for MNIST, or the offline sample: a student's machine downloads it
        **({"DEEPNETS_DATA_ROOT": os.environ["DEEPNETS_DATA_ROOT"]} if os.environ.get("DEEPNETS_DATA_ROOT")
           else {"DEEPNETS_OFFLINE": "1"}),
    }
    wheel = next(unpacked.glob("deepnets-*.whl"))
    run([str(python), "-m", "pip", "install", "--quiet", "--no-deps", "--no-index", str(wheel)], env=environment)
    return python, environment, unpacked


def test_fresh_venv_imports_deepnets_from_the_wheel_and_has_the_pinned_versions(fresh_venv):
    python, environment, unpacked = fresh_venv
    pins = dict(line.split("==") for line in (unpacked / "requirements.txt").read_text().splitlines() if "==" in line)
    probe = run([str(python), "-c", """if True:
        import importlib.metadata, importlib.util, json, sys
        import deepnets
        from jupyter_client.kernelspec import KernelSpecManager
        print(json.dumps({
            "deepnets": deepnets.__file__, "prefix": sys.prefix,
            "autograder": importlib.util.find_spec("autograder") is not None,
            "kernel": KernelSpecManager().get_kernel_spec("python3").argv[0],
            "versions": {name: importlib.metadata.version(name) for name in %r}}))
        """ % sorted(pins)], env=environment, cwd=unpacked)
    found = json.loads(probe.stdout)
    assert found["deepnets"].startswith(found["prefix"]), found["deepnets"]
    assert not found["autograder"], "the grader is importable in the student's environment"
    # The kernel nbgrader starts: the venv's own Python, or ipykernel's built-in spec, whose
    # "python" jupyter_client replaces by the interpreter it runs in (the fresh venv's).
    assert Path(found["kernel"]).parent == python.parent or found["kernel"] in ("python", "python3"), found["kernel"]
    assert found["versions"] == pins


def validate(fresh_venv, notebook: nbformat.NotebookNode, folder: str) -> str:
    python, environment, unpacked = fresh_venv
    work = unpacked.parent / folder
    work.mkdir()
    nbformat.write(notebook, work / f"{NOTEBOOK}.ipynb")
    result = subprocess.run([str(python), "-m", "nbgrader", "validate", f"{NOTEBOOK}.ipynb"],
                            cwd=work, env=environment, capture_output=True, text=True, timeout=600)
    return result.stdout + result.stderr


def test_completed_notebook_validates_in_the_fresh_venv(fresh_venv):
    release = nbformat.read(fresh_venv[2] / ASSIGNMENT / f"{NOTEBOOK}.ipynb", as_version=4)
    output = validate(fresh_venv, fill_answers(release, solution_answers(ASSIGNMENT, NOTEBOOK)), "complete")
    assert "Success! Your notebook passes all the tests." in output, output[-3000:]


def test_blank_notebook_fails_validation_in_the_fresh_venv(fresh_venv):
    release = nbformat.read(fresh_venv[2] / ASSIGNMENT / f"{NOTEBOOK}.ipynb", as_version=4)
    output = validate(fresh_venv, release, "blank")
    assert "VALIDATION FAILED" in output, output[-3000:]
    assert "NotImplementedError" in output
