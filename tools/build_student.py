"""Build what students get: notebooks, the `deepnets` wheel and pinned requirements, nothing secret.

    python tools/build_student.py [--out build/student]

Writes OUT/ (a folder) and OUT.zip (the same files) holding:
- <assignment>/<notebook>.ipynb: the release notebooks (release/), no solutions or hidden tests;
- demos/<notebook>.ipynb: the instructor demos that have nothing to hide (STUDENT_DEMOS);
- deepnets-<version>-py3-none-any.whl: the course library alone (the repository's own
  pyproject also packages the grader, which students must not get);
- requirements.txt and environment.yml: the course's pins, less the instructors' tools;
- README.md: how to install and work.
Never source/, the instructor copies of graded lessons (notebooks/), or autograder/.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import tomllib
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# Instructor demos (notebooks/) that are safe to share. None today: the VGG experiment became the
# read-and-run part of the graded day13_vgg assignment (its release notebook ships above), and its
# instructor copy holds the VGG-16 solution. The other demos are the instructor's lesson pages.
STUDENT_DEMOS: list[str] = []
# Pins students do not need: grading a class (Dask, PostgreSQL), the test suite, and authoring.
INSTRUCTOR_ONLY = {"dask", "distributed", "psycopg", "psycopg-binary", "pytest", "nbval",
                   "playwright", "jupytext", "jupyterhub"}
LIBRARY = "deepnets"


def student_pins() -> list[str]:
    """`name==version` lines of requirements.txt that students need, in its order."""
    pins = []
    for line in (REPO / "requirements.txt").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and line.split("==")[0] not in INSTRUCTOR_ONLY:
            pins.append(line)
    return pins


def library_pyproject() -> str:
    """The repository's pyproject.toml with the course library as its only package."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    lines = ["[build-system]", 'requires = ["setuptools>=64"]',
             'build-backend = "setuptools.build_meta"', "", "[project]"]
    lines += [f"{key} = {json.dumps(value)}" for key, value in project.items()]
    lines += ["", "[tool.setuptools]", f"packages = {json.dumps([LIBRARY])}"]
    return "\n".join(lines) + "\n"


def build_wheel(out: Path) -> Path:
    """The `deepnets` wheel, built from a copy holding only the library (no autograder/)."""
    with tempfile.TemporaryDirectory() as scratch:
        project = Path(scratch)
        shutil.copytree(REPO / LIBRARY, project / LIBRARY,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        (project / "pyproject.toml").write_text(library_pyproject())
        subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
                        "--no-build-isolation", "--wheel-dir", str(out), str(project)], check=True)
    wheels = sorted(out.glob(f"{LIBRARY}-*.whl"))
    assert len(wheels) == 1, wheels
    with zipfile.ZipFile(wheels[0]) as wheel:
        packages = {name.split("/")[0] for name in wheel.namelist() if not name.split("/")[0].endswith(".dist-info")}
    assert packages == {LIBRARY}, f"the student wheel holds more than {LIBRARY}: {packages}"
    return wheels[0]


def environment_yml(pins: list[str]) -> str:
    """The conda environment: environment.yml's Python, the student pins."""
    version = next(line.split("=")[1].strip() for line in (REPO / "environment.yml").read_text().splitlines()
                   if line.strip().startswith("- python="))
    lines = ["# conda env create -f environment.yml && conda activate deepnets",
             "# then: pip install --no-deps deepnets-*.whl",
             "name: deepnets", "channels:", "  - conda-forge", "dependencies:",
             f"  - python={version}", "  - pip", "  - pip:"]
    return "\n".join(lines + [f"      - {pin}" for pin in pins]) + "\n"


README = """\
# Deep networks: the student files

What is here:

| file | what it is |
| --- | --- |
{notebooks}
| `{wheel}` | the course's helper library, `deepnets` (data, training loop, plots, checks) |
| `requirements.txt`, `environment.yml` | the pinned packages the notebooks were tested with |

## Install (once)

With Python {python} (3.10 to 3.13 work), in this folder:

```bash
python -m venv .venv && source .venv/bin/activate      # Windows: .venv\\Scripts\\activate
pip install -r requirements.txt                        # PyTorch included: a few GB the first time
pip install --no-deps {wheel}
jupyter lab
```

Conda: `conda env create -f environment.yml && conda activate deepnets`, then
`pip install --no-deps {wheel}` and `jupyter lab`.

On a course JupyterHub all of this is installed: take the assignment from the **Assignments**
tab (Nbgrader > Assignment List) and submit it there.

## Work on an assignment

1. Fill in the cells marked `# YOUR CODE HERE` and `YOUR ANSWER HERE`. Keep the class names and
   signatures. Do not add or delete cells: grading matches them by id.
2. Run the test cells after each part. Hidden tests run when your notebook is graded, so
   passing the visible ones is necessary, not sufficient.
3. Before submitting, press **Validate** in the notebook's toolbar (or run
   `nbgrader validate <notebook>.ipynb`): it runs everything in a short training budget and
   names the first test that fails.
"""


def build(out: Path) -> Path:
    """Build the student folder `out` and `out`.zip; returns the zip."""
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    notebooks = []
    for notebook in sorted((REPO / "release").glob("*/*.ipynb")):
        target = out / notebook.parent.name / notebook.name
        target.parent.mkdir(exist_ok=True)
        shutil.copy(notebook, target)
        notebooks.append((target, "an assignment (Validate and submit it)"))
    for demo in STUDENT_DEMOS:
        target = out / "demos" / f"{demo}.ipynb"
        target.parent.mkdir(exist_ok=True)
        shutil.copy(REPO / "notebooks" / f"{demo}.ipynb", target)
        notebooks.append((target, "a lesson demo to read and run"))
    wheel = build_wheel(out)
    pins = student_pins()
    (out / "requirements.txt").write_text(
        "# The course's pinned packages; then: pip install --no-deps " + wheel.name + "\n" + "\n".join(pins) + "\n")
    (out / "environment.yml").write_text(environment_yml(pins))
    python = next(line for line in environment_yml(pins).splitlines() if "python=" in line).split("=")[1]
    table = "\n".join(f"| `{path.relative_to(out)}` | {what} |" for path, what in notebooks)
    (out / "README.md").write_text(README.format(notebooks=table, wheel=wheel.name, python=python))
    archive = out.with_suffix(".zip")
    archive.unlink(missing_ok=True)
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as bundle:
        for path in sorted(out.rglob("*")):
            if path.is_file():
                bundle.write(path, Path(out.name) / path.relative_to(out))
    return archive


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=REPO / "build" / "student")
    archive = build(parser.parse_args().out.resolve())
    print(f"student files: {archive.with_suffix('')}/ and {archive}")


if __name__ == "__main__":
    main()
