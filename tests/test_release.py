"""release/ and notebooks/ are exactly what source/ generates, and release/ gives nothing away."""

import subprocess
import shutil
import sys
from pathlib import Path

import nbformat
import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tools"))
import build_course  # noqa: E402

LESSONS = build_course.lesson_sources(REPO, [])  # source/<assignment>/*.py and demos/*.py
ASSIGNMENT_LESSONS = [lesson for lesson in LESSONS if lesson.parent.name != build_course.DEMOS]


@pytest.fixture(scope="module")
def regenerated(tmp_path_factory) -> Path:
    """A temporary course built from this repository's source/ (without executing anything)."""
    course = tmp_path_factory.mktemp("regenerated")
    shutil.copy(REPO / "nbgrader_config.py", course)
    for folder in ("source", build_course.DEMOS):
        shutil.copytree(REPO / folder, course / folder,
                        ignore=shutil.ignore_patterns("*.ipynb", "__pycache__"))
    build_course.build(course, [], execute=False)
    return course


def cells(path: Path) -> list[tuple]:
    """What a notebook says: each cell's type, source and metadata, ignoring outputs."""
    notebook = nbformat.read(path, as_version=4)
    return [(c.cell_type, c.source, c.metadata) for c in notebook.cells]


def test_there_are_lessons():
    assert ASSIGNMENT_LESSONS, "no source/<assignment>/*.py lessons"
    assert len(LESSONS) > len(ASSIGNMENT_LESSONS), "no demos/*.py instructor demos"


def test_instructor_demos_are_not_nbgrader_assignments():
    """Every folder of source/ is an assignment to nbgrader and its formgrader: demos live outside."""
    assert not (REPO / "source" / build_course.DEMOS).exists()


@pytest.mark.parametrize("lesson", ASSIGNMENT_LESSONS, ids=lambda p: p.parent.name)
def test_release_is_in_sync_with_source(regenerated, lesson):
    relative = Path("release") / lesson.parent.name / f"{lesson.stem}.ipynb"
    assert (REPO / relative).exists(), f"{relative} is missing: run `make release`"
    committed = nbformat.read(REPO / relative, as_version=4)
    fresh = nbformat.read(regenerated / relative, as_version=4)
    assert committed == fresh, f"{relative} is stale or was edited by hand: run `make release`"


@pytest.mark.parametrize("lesson", LESSONS, ids=lambda p: p.stem)
def test_instructor_copy_is_in_sync_with_source(regenerated, lesson):
    relative = Path("notebooks") / f"{lesson.stem}.ipynb"
    assert cells(REPO / relative) == cells(regenerated / relative), \
        f"{relative} is stale or was edited by hand: run `make release`"


@pytest.mark.parametrize("lesson", ASSIGNMENT_LESSONS, ids=lambda p: p.parent.name)
def test_source_notebook_is_in_sync_with_its_percent_file(lesson):
    notebook = lesson.with_suffix(".ipynb")
    assert cells(notebook) == [(c.cell_type, c.source, c.metadata)
                               for c in build_course.source_notebook(lesson).cells]


@pytest.mark.parametrize("lesson", ASSIGNMENT_LESSONS, ids=lambda p: p.parent.name)
def test_release_holds_no_solution_and_no_hidden_test(lesson):
    release = REPO / "release" / lesson.parent.name / f"{lesson.stem}.ipynb"
    text = "\n".join(source for _, source, _ in cells(release))
    for marker in ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "BEGIN MARK SCHEME"):
        assert marker not in text
    # Every line that the source hides (solutions, hidden tests, model answers) must be gone.
    hidden, visible = build_course.hidden_and_visible_lines(lesson)
    assert hidden, "the lesson hides nothing?"
    release_lines = {line.strip() for line in text.split("\n")}
    leaked = sorted((hidden - visible) & release_lines)
    assert not leaked, f"solution or hidden-test lines in the release: {leaked[:5]}"
    assert all(not output for c in nbformat.read(release, 4).cells for output in c.get("outputs", []))


def test_generated_source_notebooks_are_not_committed():
    """source/*/*.ipynb are built from the .py lessons: git neither tracks nor would add them."""
    tracked = subprocess.run(["git", "ls-files", "source"], cwd=REPO, capture_output=True, text=True,
                             check=True).stdout.split()
    assert tracked and not [path for path in tracked if path.endswith(".ipynb")]
    generated = sorted(str(p.relative_to(REPO)) for p in (REPO / "source").glob("*/*.ipynb"))
    if generated:
        ignored = subprocess.run(["git", "check-ignore", *generated], cwd=REPO, capture_output=True, text=True)
        assert ignored.stdout.split() == generated


@pytest.mark.parametrize("lesson", LESSONS, ids=lambda p: p.stem)
def test_each_parts_stated_points_are_the_sum_of_its_cells(lesson):
    """A heading "## Part A: ... (7 points)" says what its graded cells add up to."""
    import re

    heading = re.compile(r"^#+ (Part [A-Z0-9]+)\b.*\((\d+) points?\)", re.M)
    stated, summed, part = {}, {}, None
    for cell in build_course.source_notebook(lesson).cells:
        found = heading.search(cell.source) if cell.cell_type == "markdown" else None
        if found:
            part = found.group(1)
            stated[part] = int(found.group(2))
            summed[part] = 0
        points = cell.metadata.get("nbgrader", {}).get("points")
        if part and points:
            summed[part] += points
    assert stated == summed
