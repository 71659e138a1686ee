"""Before grading: unpack the LMS download, find each student's notebook, check it, rebuild it.

Nothing here runs student code. `collect` turns an LMS download (a zip, or a folder) into one
folder per student, keyed by the LMS's participant id where the file name carries one, with
every oddity recorded as a reason for review instead of stopping the class. A submission then
comes out of `check_submission` as the release notebook with the student's answer (and
editable) cells put back in by grade_id, plus a list of reasons a person should look at it
(`needs review`). Deleted, duplicated or retyped cells, another kernel or nbformat version,
extra files, a wrong file name, a zip instead of a notebook, a corrupt or bomb-like archive,
an unsafe or odd path are all survivable: the student is graded on what can be recovered and
flagged, and the files stay as they were uploaded.

Why grade_class unpacks downloads itself instead of calling `nbgrader zip_collect`: its
ExtractorPlugin (nbgrader.utils.unzip) extracts nested zips without any bound on size, count,
depth or ratio (a 17.8 KB nested bomb became 1 GiB on disk and in memory); its collector
stops the whole run (`self.fail`) on two files with the same name for one student, a corrupt
zip or an unparseable timestamp; it has no way to flag one student for review; and it copies
an uploaded `timestamp.txt` as the submission time. `CourseExtractor` and
`CourseFileNameCollector` below make a hand-run `nbgrader zip_collect` use the same bounded
unpacking and the same student ids, so both paths agree.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import re
import shutil
import unicodedata
import zipfile
import zlib
from pathlib import Path

import nbformat

from nbgrader.plugins.zipcollect import ExtractorPlugin, FileNameCollectorPlugin

MAX_NOTEBOOK_BYTES = 20 * 2**20
UPLOADED_TIMESTAMP = "timestamp.txt"   # nbgrader reads it as the submission time: never the student's
IGNORED_MEMBERS = ("__MACOSX/", ".DS_Store", "Thumbs.db")


@dataclasses.dataclass(frozen=True)
class ExtractLimits:
    """Bounds on unpacking uploads; past one, the student is flagged and the rest left packed."""

    total_bytes: int = 8 * 2**30        # everything unpacked from one download
    student_bytes: int = 200 * 2**20     # one student's files
    files: int = 50_000                  # members of one download
    student_files: int = 500             # one student's files
    depth: int = 2                       # the download, and one zip a student uploaded inside it
    ratio: int = 100                     # uncompressed/compressed size of a member (over 1 MiB)


LIMITS = ExtractLimits()
RATIO_FLOOR = 2**20                      # small members may compress well: only bigger ones are judged


class UnsafeMember(Exception):
    """A zip member that is not unpacked: corrupt, encrypted, or expanding past a limit."""


def read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int, into=None) -> bytes | None:
    """A member's bytes (or streamed `into` a file), stopping at `limit` bytes or a bomb's ratio.

    The declared sizes are not trusted: the stream is counted as it is inflated, so a member
    that lies about its size is stopped after at most one chunk past the bound.
    """
    if info.flag_bits & 0x1:
        raise UnsafeMember("it is encrypted")
    if info.file_size > limit:
        raise UnsafeMember(f"it unpacks to {info.file_size // 2**20} MiB, over the {limit // 2**20} MiB limit")
    chunks, total = [], 0
    try:
        with archive.open(info) as stream:
            while True:
                chunk = stream.read(2**20)
                if not chunk:
                    break
                total += len(chunk)
                if total > limit:
                    raise UnsafeMember(f"it unpacks to more than {limit // 2**20} MiB")
                if total > RATIO_FLOOR and total > LIMITS.ratio * max(info.compress_size, 1):
                    raise UnsafeMember(f"it expands more than {LIMITS.ratio} times (a zip bomb?)")
                if into is not None:
                    into.write(chunk)
                else:
                    chunks.append(chunk)
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError, RuntimeError,
            ValueError) as error:
        raise UnsafeMember(f"it cannot be read ({type(error).__name__}: corrupt or unsupported)") from None
    return None if into is not None else b"".join(chunks)


def member_parts(name: str) -> tuple[list[str], bool]:
    """A zip member's path as safe components, and whether it had to be changed.

    A backslash is a folder separator (zips made on Windows); `..`, `.`, a leading `/` or a
    drive letter are dropped, so nothing can be written outside the student's folder.
    """
    raw = name.replace("\\", "/").split("/")
    parts = [p for p in raw if p not in ("", ".", "..")]
    if parts and re.fullmatch(r"[A-Za-z]:", parts[0]):
        parts = parts[1:]
    parts = [p.replace("\0", "").encode()[:200].decode("utf-8", "ignore") for p in parts]  # 255-byte names
    unsafe = any(p == ".." for p in raw) or name.startswith(("/", "\\")) or bool(re.match(r"^[A-Za-z]:", name))
    return [p for p in parts if p], unsafe


def student_key(name: str) -> str:
    """A name as a safe nbgrader student id: letters of any script, digits, '.', '-', '_'."""
    text = unicodedata.normalize("NFC", name)
    key = re.sub(r"[^\w.-]+", "-", text).strip("-._")
    key = key.encode()[:120].decode("utf-8", "ignore").strip("-._")  # fits a 255-byte file name
    return key or "unnamed-" + hashlib.sha256(name.encode()).hexdigest()[:8]


LMS_FOLDER = re.compile(r"^(?P<name>.+?)(?:_(?P<id>\d+))?_(?:assignsubmission|onlinetext)\w*$")
CANVAS_FILE = re.compile(r"^(?P<name>[^_]+)_(?:LATE_)?(?P<id>\d+)_\d+_(?:LATE_)?(?P<file>.+)$")
FLAT_FILE = re.compile(r"^(?P<name>[^_\-]+)[_\-](?P<file>.+\.\w+)$")


@dataclasses.dataclass(frozen=True)
class Owner:
    """Whose a file is: the id it is keyed by, the name the LMS gave, and its path in their folder."""

    key: str
    name: str
    path: tuple[str, ...]
    lms_id: bool                   # the key is the LMS's participant id, not a name
    whole: bool = False            # the file is the whole submission (`<name>.ipynb`)

    def file_path(self, notebook: str | None) -> tuple[str, ...]:
        """Where the file goes in the student's folder: `<name>.ipynb` is the notebook, renamed."""
        if self.whole and notebook and self.path[-1].lower().endswith(".ipynb"):
            return (notebook,)
        return self.path


def identify(parts: list[str], flat_names: bool = True) -> Owner | None:
    """The student a download's file belongs to, from its path (see the layouts in the README).

    * `<folder>/<anything>`: a folder per student. Moodle's `Full Name_12345_assignsubmission_file_`
      is keyed by its participant id 12345; another folder (Brightspace) by its name.
    * `<name>_<id>_<n>_<file>` (Canvas, `LATE_` allowed): keyed by the Canvas user id.
    * `<name>_<file>`, `<name>-<file>` (only when `flat_names`), `<name>.ipynb`, `<name>.zip`.
    """
    if not parts:
        return None
    first = parts[0]
    if len(parts) > 1:
        lms = LMS_FOLDER.match(first)
        if lms and lms["id"]:
            return Owner(lms["id"], lms["name"], tuple(parts[1:]), True)
        name = lms["name"] if lms else first
        return Owner(student_key(name), name, tuple(parts[1:]), False)
    canvas = CANVAS_FILE.match(first)
    if canvas:
        return Owner(canvas["id"], canvas["name"], (canvas["file"],), True)
    flat = FLAT_FILE.match(first) if flat_names else None
    if flat:
        return Owner(student_key(flat["name"]), flat["name"], (flat["file"],), False)
    stem, dot, extension = first.rpartition(".")
    if dot and stem and extension.lower() in ("ipynb", "zip"):
        return Owner(student_key(stem), stem, (first,), False, whole=True)
    return None


@dataclasses.dataclass
class Collected:
    """One student's files as unpacked, and what a person should know about them."""

    key: str
    name: str
    files: dict[tuple[str, ...], Path] = dataclasses.field(default_factory=dict)
    reasons: list[str] = dataclasses.field(default_factory=list)
    uploads: set[str] = dataclasses.field(default_factory=set)  # top-level entries of the download
    bytes: int = 0

    def add(self, path: tuple[str, ...], data: Path, size: int, limits: ExtractLimits) -> None:
        """Keep a file at `path`; a second file with the same path is kept under a new name."""
        if len(self.files) >= limits.student_files:
            self.note(f"more than {limits.student_files} files: the rest were not unpacked")
            return
        if self.bytes + size > limits.student_bytes:
            self.note(f"more than {limits.student_bytes // 2**20} MiB of files: the rest were not unpacked")
            return
        if path == (UPLOADED_TIMESTAMP,):
            path = (UPLOADED_TIMESTAMP + ".uploaded",)
            self.note("an uploaded timestamp.txt was ignored: the submission time comes only from the LMS")
        if path in self.files:
            stem, dot, extension = path[-1].rpartition(".")
            count = 2
            while (renamed := path[:-1] + (f"{stem or extension} ({count}){dot if stem else ''}"
                                           f"{extension if stem else ''}",)) in self.files:
                count += 1
            self.note(f"two files named {'/'.join(path)}: the first is graded, the other kept as {renamed[-1]}")
            path = renamed
        self.files[path] = data
        self.bytes += size

    def note(self, reason: str) -> None:
        if reason not in self.reasons:
            self.reasons.append(reason)


def _collected(students: dict[str, Collected], owner: Owner, upload: str) -> Collected:
    student = students.setdefault(owner.key, Collected(owner.key, owner.name))
    student.uploads.add(upload)
    return student


def _unidentified(students: dict[str, Collected], parts: list[str]) -> Collected:
    """A file whose owner cannot be told from its name is a submission of its own, flagged."""
    owner = Owner("unidentified-" + student_key(parts[0] if parts else "file"), parts[0] if parts else "", tuple(parts[-1:]) or ("file",), False)
    student = _collected(students, owner, parts[0] if parts else "")
    student.note(f"the student could not be told from the file name {'/'.join(parts)!r}")
    return student


def _same_name_check(students: dict[str, Collected]) -> None:
    """Without an LMS id only the name keys a student: two notebooks under one name get a person's look."""
    for student in students.values():
        notebooks = [p for p in student.files if p[-1].lower().endswith((".ipynb", ".zip"))]
        if len(student.uploads) > 1 and len(notebooks) > 1:
            student.note(f"{len(student.uploads)} uploads carry the name {student.name!r} and no LMS id: "
                         "check that they are one student")


def collect_zip(archive_path: Path, staging: Path, notebook: str | None = None,
                limits: ExtractLimits = LIMITS) -> dict[str, Collected]:
    """An LMS download (zip) as files per student, unpacked into `staging` (emptied first) one
    bounded stream at a time, never held in memory. Raises zipfile.BadZipFile only when the
    download itself is no zip. Archives inside it (a student's zip) stay packed: `find_notebook`
    opens them later, one level deep, with the same bounds.
    """
    students: dict[str, Collected] = {}
    total = 0
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    with zipfile.ZipFile(archive_path) as archive:
        members = [m for m in archive.infolist() if not m.is_dir()
                   and not any(ignored in m.filename for ignored in IGNORED_MEMBERS)]
        for number, info in enumerate(members):
            parts, unsafe = member_parts(info.filename)
            owner = identify(parts)
            student = _collected(students, owner, parts[0]) if owner else _unidentified(students, parts)
            path = owner.file_path(notebook) if owner else tuple(parts[-1:]) or ("file",)
            if unsafe:
                student.note(f"the path {info.filename[:120]!r} in the download was unsafe; read as "
                             f"{'/'.join(path)!r}")
            if number >= limits.files:
                student.note(f"the download holds more than {limits.files} files: {'/'.join(path)} was not unpacked")
                continue
            if total >= limits.total_bytes:
                student.note(f"the download unpacks to more than {limits.total_bytes // 2**30} GiB: "
                             f"{'/'.join(path)} was not unpacked")
                continue
            room = min(limits.student_bytes - student.bytes, limits.total_bytes - total)
            unpacked = staging / str(number)
            try:
                with open(unpacked, "wb") as stream:
                    read_member(archive, info, max(room, 1), into=stream)
            except UnsafeMember as why:
                unpacked.unlink()
                student.note(f"{'/'.join(path)} was not unpacked: {why}")
                continue
            size = unpacked.stat().st_size
            total += size
            student.add(path, unpacked, size, limits)
    _same_name_check(students)
    return students


def collect_folder(folder: Path, notebook: str | None = None,
                   limits: ExtractLimits = LIMITS) -> dict[str, Collected]:
    """`folder/<student>.ipynb` (or .zip), or `folder/<student>/<files>`: files per student, bounded."""
    students: dict[str, Collected] = {}
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder).parts
        if any(part.startswith(".") for part in relative) or path.is_symlink() or not path.is_file():
            continue
        owner = identify(list(relative), flat_names=False)
        student = _collected(students, owner, relative[0]) if owner else _unidentified(students, list(relative))
        size = path.stat().st_size
        student.add(owner.file_path(notebook) if owner else relative[-1:], path, size, limits)
    _same_name_check(students)
    return students


def write_collected(student: Collected, target: Path) -> None:
    """Put one student's files into `target` (their submitted/ folder), which is emptied first."""
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    for path, data in student.files.items():
        destination = target.joinpath(*path)
        try:
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(data, destination)
        except OSError as error:  # a file and a folder of one name, say: this file waits for a person
            student.note(f"{'/'.join(path)} could not be stored ({type(error).__name__}); it is in the download")


class CourseExtractor(ExtractorPlugin):
    """zip_collect's extractor with the intake's bounds: each download unpacked into its own folder.

    Archives inside a download are not unpacked here (nbgrader's would, without any limit);
    a member past a limit is skipped with a warning and left in the download.
    """

    def extract(self, archive_path: str, extracted_path: str) -> None:
        for path in sorted(Path(archive_path).rglob("*")):
            if not path.is_file() or path.is_symlink():
                continue
            if path.suffix.lower() != ".zip":
                shutil.copyfile(path, Path(extracted_path) / path.name)
                continue
            try:
                students = collect_zip(path, Path(extracted_path) / ".unpacking" / path.stem)
            except (zipfile.BadZipFile, OSError, ValueError) as error:
                self.log.warning("Not a readable zip, skipped: %s (%s)", path, error)
                continue
            for student in students.values():
                for reason in student.reasons:
                    self.log.warning("%s: %s", student.key, reason)
                # Folders named by key (and LMS id) so that the collector reads them back alike.
                folder = f"{student_key(student.name)}_{student.key}_assignsubmission_file_" \
                    if student.key.isdigit() else student.key
                write_collected(student, Path(extracted_path) / path.stem / folder)
            shutil.rmtree(Path(extracted_path) / ".unpacking", ignore_errors=True)


class CourseFileNameCollector(FileNameCollectorPlugin):
    """zip_collect's file-name parser: the intake's `identify` (see it for the layouts).

    The file id is the file's path inside the student's folder, so two files of one student
    never collide ("Duplicate submission file" stops zip_collect), and an uploaded
    timestamp.txt is never collected as the submission time. Set FileNameCollector.named_regexp
    to use one pattern of your own instead.
    """

    def collect(self, submitted_file):
        """Every file counts, whatever its extension: the intake says what is wrong with it."""
        return self._match(submitted_file) or None

    def _match(self, filename):
        if self.named_regexp:
            return super()._match(filename)
        path = Path(filename)
        parts = list(path.parts[path.parts.index("extracted") + 1:] if "extracted" in path.parts else path.parts)
        archives = path.parents[len(parts) - 1] / ".." / "archive" if len(parts) > 1 else None
        if archives is not None and len(parts) > 1 and any(
                a.stem == parts[0] for a in archives.glob("*") if a.suffix.lower() == ".zip"):
            parts = parts[1:]  # each download is extracted into a folder of its name
        owner = identify(parts)
        if owner is None:
            self.log.warning("No student id in the file name: %s", filename)
            return None
        if owner.path == (UPLOADED_TIMESTAMP,):
            self.log.warning("Ignored an uploaded timestamp.txt: %s", filename)
            return None
        return {"student_id": owner.key, "file_id": "/".join(owner.path)}


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
    """The release notebook with the student's editable cells put back by grade_id (and each code
    cell's outputs, sanitized), and what was off."""
    from autograder.nbgrader_plugin import sanitized_outputs

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
        if cell.cell_type == "code" and student_cell.get("cell_type") == "code":
            # Kept (sanitized) for graders when the notebook is not re-run (SandboxedExecute.rerun);
            # a re-run replaces them all.
            cell.outputs = sanitized_outputs(student_cell.get("outputs"))
    extra_code = [c for c in submitted.cells if not _nbgrader_id(c) or _nbgrader_id(c) not in known]
    extra_code = [c for c in extra_code if c.get("cell_type") == "code" and str(c.get("source", "")).strip()]
    if extra_code:
        reasons.append(f"{len(extra_code)} code cell(s) the student added are not graded")
    kernel = submitted.metadata.get("kernelspec", {}).get("name")
    if kernel and kernel != release.metadata.get("kernelspec", {}).get("name"):
        reasons.append(f"the notebook asked for kernel {kernel!r}; graded with the course's kernel")
    return rebuilt, reasons


def _notebook_in_zip(path: Path, expected: str) -> tuple[bytes | None, list[str]]:
    """The notebook inside a student's zip, read with the intake's bounds; one level deep only."""
    try:
        with zipfile.ZipFile(path) as archive:
            members = [m for m in archive.infolist() if not m.is_dir()
                       and not any(ignored in m.filename for ignored in IGNORED_MEMBERS)]
            notebooks = [m for m in members if m.filename.lower().endswith(".ipynb")]
            if not members:
                return None, [f"{path.name} is an empty zip"]
            if not notebooks:
                nested = [m.filename for m in members if m.filename.lower().endswith(".zip")]
                if nested:
                    return None, [f"{path.name} holds only another zip ({nested[0][:80]}): archives are "
                                  f"opened {LIMITS.depth - 1} level deep, not further"]
                return None, [f"{path.name} holds no notebook"]
            chosen = next((m for m in notebooks if member_parts(m.filename)[0][-1:] == [expected]), notebooks[0])
            name = "/".join(member_parts(chosen.filename)[0])[:120]
            try:
                data = read_member(archive, chosen, MAX_NOTEBOOK_BYTES)
            except UnsafeMember as why:
                return None, [f"{name} in {path.name} was not unpacked: {why}"]
            reasons = [f"the notebook came inside {path.name}"]
            if name.rsplit("/", 1)[-1] != expected:
                reasons.append(f"the notebook was named {name!r}, not {expected!r}")
            return data, reasons
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError, RuntimeError,
            ValueError) as error:
        return None, [f"{path.name} is not a readable zip ({type(error).__name__}: corrupt or unsupported)"]


def find_notebook(folder: Path, expected: str) -> tuple[bytes | None, list[str]]:
    """The bytes of the student's notebook `expected` in `folder`, tolerating a wrong name or a zip."""
    files = [p for p in sorted(folder.rglob("*")) if p.is_file() and not p.is_symlink()
             and not p.name.startswith(".") and p.name != UPLOADED_TIMESTAMP]
    named = lambda p: str(p.relative_to(folder))  # noqa: E731
    exact = folder / expected
    if exact.is_file() and not exact.is_symlink():
        reasons = []
        others = [named(p) for p in files if p != exact]
        if others:
            reasons.append(f"extra files ignored: {', '.join(others[:5])}" + (" ..." if len(others) > 5 else ""))
        if exact.stat().st_size > MAX_NOTEBOOK_BYTES:
            return None, reasons + [f"the notebook is over the {MAX_NOTEBOOK_BYTES // 2**20} MiB limit"]
        return exact.read_bytes(), reasons
    notebooks = [p for p in files if p.suffix.lower() == ".ipynb"]
    if len(notebooks) == 1:
        if notebooks[0].stat().st_size > MAX_NOTEBOOK_BYTES:
            return None, [f"the notebook is over the {MAX_NOTEBOOK_BYTES // 2**20} MiB limit"]
        return notebooks[0].read_bytes(), [f"the notebook was named {named(notebooks[0])!r}, not {expected!r}"]
    if len(notebooks) > 1:
        return None, [f"no {expected}, and several other notebooks: {', '.join(named(p) for p in notebooks[:5])}"]
    zips = [p for p in files if p.suffix.lower() == ".zip"]
    if zips:
        return _notebook_in_zip(zips[0], expected)
    if files:
        return None, [f"no notebook submitted (found: {', '.join(named(p) for p in files[:5])})"]
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

