"""Before grading: find each student's notebook, check it, and rebuild it on the release notebook.

Nothing here runs student code. A submission comes out of `check_submission` as the release
notebook with the student's answer (and editable) cells put back in by grade_id, plus a list
of reasons a person should look at it (`needs review`). Deleted, duplicated or retyped cells,
another kernel or nbformat version, extra files, a wrong file name or a zip instead of a
notebook are all survivable: the student is graded on what can be recovered and flagged.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import re
import zipfile
from pathlib import Path

import nbformat

from nbgrader.plugins.zipcollect import FileNameCollectorPlugin

MAX_NOTEBOOK_BYTES = 20 * 2**20
MAX_ZIP_MEMBER_BYTES = 50 * 2**20


class CourseFileNameCollector(FileNameCollectorPlugin):
    """zip_collect's file-name parser for the layouts LMSs produce, tried in order.

    Paths are read relative to the download (the zip's own top folder removed):
    * `<student>/<anything>/<notebook>.ipynb` (a folder per student; Moodle, Brightspace);
    * `<student>_<digits>_<digits>_<notebook>.ipynb` (Canvas);
    * `<student>_<notebook>.ipynb` or `<student>-<notebook>.ipynb` (flat; ids without _ or -);
    * `<student>.zip` or `<student>.ipynb` (one file per student).
    Set FileNameCollector.named_regexp to use one pattern of your own instead.
    """

    ID = r"[A-Za-z0-9][^/_]*"          # starts with a letter or digit: never "." or ".."
    PATTERNS = [
        rf"^(?P<student_id>{ID})(?:_[^/]*)?/(?:[^/]+/)*(?P<file_id>[^/]+)$",
        rf"^(?P<student_id>{ID})_\d+_\d+_(?:LATE_)?(?P<file_id>[^/]+)$",
        r"^(?P<student_id>[A-Za-z0-9][^/_\-]*)[_\-](?P<file_id>[^/]+)$",
        r"^(?P<file_id>(?P<student_id>[A-Za-z0-9][^/_\-]*)\.(?:zip|ipynb))$",
    ]

    def collect(self, submitted_file):
        """Every file counts, whatever its extension: the intake says what is wrong with it."""
        return self._match(submitted_file) or None

    def _match(self, filename):
        if self.named_regexp:
            return super()._match(filename)
        path = Path(filename)
        parts = path.parts[path.parts.index("extracted") + 1:] if "extracted" in path.parts else path.parts
        archives = path.parents[len(parts) - 1] / ".." / "archive" if len(parts) > 1 else None
        if archives is not None and len(parts) > 1 and any(
                a.stem == parts[0] for a in archives.glob("*") if a.suffix.lower() == ".zip"):
            parts = parts[1:]  # nbgrader extracts each download into a folder of its name
        relative = "/".join(parts)
        for pattern in self.PATTERNS:
            match = re.match(pattern, relative)
            if match:
                return match.groupdict()
        self.log.warning("No student id in the file name: %s", filename)
        return None


@dataclasses.dataclass
class Intake:
    """What the intake found for one student."""

    student: str
    gradable: bool                       # False: graded as an empty (release) notebook
    reasons: list[str]                   # why a person should look at it; empty if fine
    notebook: nbformat.NotebookNode | None = None


def _nbgrader_id(cell) -> str | None:
    return cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")


def _editable(cell) -> bool:
    meta = cell.get("metadata", {}).get("nbgrader", {})
    return bool(meta.get("solution")) or not meta.get("locked", False) and not meta.get("grade", False)


def read_notebook_bytes(data: bytes) -> tuple[nbformat.NotebookNode | None, list[str]]:
    """Parse a submitted file as a notebook of any nbformat version; reasons when it is not one."""
    if len(data) > MAX_NOTEBOOK_BYTES:
        return None, [f"the notebook is {len(data) // 2**20} MiB, over the {MAX_NOTEBOOK_BYTES // 2**20} MiB limit"]
    if not data.strip():
        return None, ["the notebook file is empty"]
    try:
        raw = json.loads(data.decode("utf-8-sig"))
    except UnicodeDecodeError:
        return None, ["the file is not text (not a notebook)"]
    except ValueError as error:
        return None, [f"the file is not valid JSON ({str(error)[:80]}): not a notebook, or damaged"]
    if not isinstance(raw, dict) or "nbformat" not in raw:
        return None, ["the file is JSON but not a notebook (no nbformat field)"]
    reasons = []
    version = raw.get("nbformat")
    try:
        notebook = nbformat.reads(json.dumps(raw), as_version=4)
    except Exception as error:  # nbformat raises several kinds for damaged notebooks
        return None, [f"nbformat cannot read it ({type(error).__name__}: {str(error)[:80]})"]
    if version != 4:
        reasons.append(f"the notebook was nbformat {version}; converted to nbformat 4")
    return notebook, reasons


def rebuild(release: nbformat.NotebookNode, submitted: nbformat.NotebookNode) -> tuple[nbformat.NotebookNode, list[str]]:
    """The release notebook with the student's editable cells put back by grade_id, and what was off."""
    reasons = []
    by_id: dict[str, list] = {}
    for cell in submitted.cells:
        grade_id = _nbgrader_id(cell)
        if grade_id:
            by_id.setdefault(grade_id, []).append(cell)
    known = {_nbgrader_id(cell) for cell in release.cells}
    rebuilt = copy.deepcopy(release)
    for cell in rebuilt.cells:
        grade_id = _nbgrader_id(cell)
        found = by_id.get(grade_id, [])
        if not found:
            if grade_id:
                reasons.append(f"cell {grade_id} was deleted (restored from the release)")
            continue
        if len(found) > 1:
            reasons.append(f"cell {grade_id} appears {len(found)} times (the first one is graded)")
        student_cell = found[0]
        if student_cell.get("cell_type") != cell.cell_type:
            reasons.append(f"cell {grade_id} was changed from {cell.cell_type} to "
                           f"{student_cell.get('cell_type')} (its text is graded as {cell.cell_type})")
        if _editable(cell):
            source = student_cell.get("source", "")
            cell.source = "".join(source) if isinstance(source, list) else str(source)
    extra_code = [c for c in submitted.cells if not _nbgrader_id(c) or _nbgrader_id(c) not in known]
    extra_code = [c for c in extra_code if c.get("cell_type") == "code" and str(c.get("source", "")).strip()]
    if extra_code:
        reasons.append(f"{len(extra_code)} code cell(s) the student added are not graded")
    kernel = submitted.metadata.get("kernelspec", {}).get("name")
    if kernel and kernel != release.metadata.get("kernelspec", {}).get("name"):
        reasons.append(f"the notebook asked for kernel {kernel!r}; graded with the course's kernel")
    return rebuilt, reasons


def _notebook_in_zip(path: Path, expected: str) -> tuple[bytes | None, list[str]]:
    try:
        with zipfile.ZipFile(path) as archive:
            members = [m for m in archive.infolist() if not m.is_dir()
                       and not m.filename.startswith("__MACOSX")]
            notebooks = [m for m in members if m.filename.endswith(".ipynb")]
            if not members:
                return None, [f"{path.name} is an empty zip"]
            if not notebooks:
                return None, [f"{path.name} holds no notebook"]
            chosen = next((m for m in notebooks if Path(m.filename).name == expected), notebooks[0])
            if chosen.file_size > MAX_ZIP_MEMBER_BYTES:
                return None, [f"{chosen.filename} in {path.name} is too large"]
            reasons = [f"the notebook came inside {path.name}"]
            if Path(chosen.filename).name != expected:
                reasons.append(f"the notebook was named {Path(chosen.filename).name!r}, not {expected!r}")
            return archive.read(chosen), reasons
    except (zipfile.BadZipFile, OSError) as error:
        return None, [f"{path.name} is not a readable zip ({error})"]


def find_notebook(folder: Path, expected: str) -> tuple[bytes | None, list[str]]:
    """The bytes of the student's notebook `expected` in `folder`, tolerating a wrong name or a zip."""
    files = [p for p in sorted(folder.rglob("*")) if p.is_file() and not p.is_symlink()
             and not p.name.startswith(".") and p.name != "timestamp.txt"]
    exact = folder / expected
    if exact.is_file() and not exact.is_symlink():
        reasons = []
        others = [p.name for p in files if p != exact]
        if others:
            reasons.append(f"extra files ignored: {', '.join(others[:5])}")
        return exact.read_bytes(), reasons
    notebooks = [p for p in files if p.suffix == ".ipynb"]
    if len(notebooks) == 1:
        return notebooks[0].read_bytes(), [f"the notebook was named {notebooks[0].name!r}, not {expected!r}"]
    if len(notebooks) > 1:
        return None, [f"no {expected}, and several other notebooks: {', '.join(p.name for p in notebooks[:5])}"]
    zips = [p for p in files if p.suffix.lower() == ".zip"]
    if zips:
        return _notebook_in_zip(zips[0], expected)
    if files:
        return None, [f"no notebook submitted (found: {', '.join(p.name for p in files[:5])})"]
    return None, ["nothing was submitted"]


def check_submission(folder: Path, student: str, release_notebook: Path) -> Intake:
    """Check one student's submission folder against the release notebook."""
    release = nbformat.read(release_notebook, as_version=4)
    data, reasons = find_notebook(folder, release_notebook.name)
    if data is None:
        return Intake(student, False, reasons, release)
    notebook, more = read_notebook_bytes(data)
    reasons += more
    if notebook is None:
        return Intake(student, False, reasons, release)
    rebuilt, more = rebuild(release, notebook)
    reasons += more
    if not any(_nbgrader_id(c) for c in notebook.cells):
        reasons.append("the notebook has none of the assignment's cells (another notebook?)")
        return Intake(student, False, reasons, release)
    return Intake(student, True, reasons, rebuilt)


def notebook_bytes(notebook: nbformat.NotebookNode) -> bytes:
    return nbformat.writes(notebook).encode()

