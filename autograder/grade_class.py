"""Grade a whole class in one command: LMS zip or folder -> gradebook, feedback, CSVs, summary.

    python -m autograder.grade_class ASSIGNMENT [--zip DOWNLOAD.zip | --folder DIR]
        [--workers N] [--dask [SCHEDULER_ADDRESS]] [--db-url URL] [--course DIR]

1. Intake (autograder/intake.py): the zip is unpacked with bounds (size, file count, depth,
   compression ratio), or the folder read (`DIR/<student>.ipynb` or `DIR/<student>/...`), into
   submitted/<id>/, students keyed by the LMS's participant id where the file name has one.
   Each submission is checked without running it and rebuilt on the release notebook; whatever
   is off (an odd, duplicated, corrupt or bomb-like upload included) is a reason for review.
2. Work: each submission runs in a sandbox (notebook outputs) and through the trusted checks,
   in parallel: worker processes on this machine (all cores by default) or a Dask cluster.
3. One writer: as each submission's work finishes, this process alone runs nbgrader's
   autograde for it (which reuses the sandboxed results), so the gradebook (SQLite, or
   PostgreSQL through --db-url) has a single writer.
4. Outputs in grading/<assignment>/: feedback/<student>.html, grades.csv (per student and
   part), grades_by_check.csv, summary.md/json and score_distribution.png.

A submission is done once its record (grading/<assignment>/records/<student>.json) is written,
after its grades are in the gradebook. A rerun skips done submissions whose notebook and
grader are unchanged, so an interrupted run resumes, and a repeated run changes nothing.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import hashlib
import json
import multiprocessing
import os
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import nbformat

from autograder.secret import SECRET_VARIABLE, grader_secret, use_course_secret

REPO = Path(__file__).resolve().parent.parent
AUTOGRADER = Path(__file__).resolve().parent


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def load_config(course: Path, db_url: str | None):
    from traitlets.config.loader import PyFileConfigLoader

    config = PyFileConfigLoader("nbgrader_config.py", path=str(course)).load_config()
    config.CourseDirectory.root = str(course)
    if db_url:
        config.CourseDirectory.db_url = db_url
    return config


def grader_environment(course: Path, output: Path) -> dict[str, str]:
    """What every process of the run (workers included, on other machines too) needs: the course,
    the cache and the course's grading secret (autograder/secret.py)."""
    return {"GRADER_COURSE_ROOT": str(course), "GRADER_CACHE_DIR": str(output / ".cache"),
            SECRET_VARIABLE: use_course_secret(course)}


def nbgrader(course: Path, db_url: str | None, *arguments: str) -> subprocess.CompletedProcess:
    extra = [f"--CourseDirectory.db_url={db_url}"] if db_url else []
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    return subprocess.run([sys.executable, "-m", "nbgrader", *arguments, *extra, "--log-level=WARN"],
                          cwd=course, env=env, capture_output=True, text=True)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def grader_fingerprint(course: Path, assignment: str) -> str:
    """The grader's code and configuration: a change regrades everyone."""
    parts = [course / "nbgrader_config.py", *sorted(AUTOGRADER.glob("*.py")),
             *sorted((AUTOGRADER / "sandbox_runtime").glob("*.py")),
             *sorted((course / "source" / assignment).glob("*.py"))]
    checks = AUTOGRADER / "checks" / f"{assignment}.py"
    if checks.exists():
        parts.append(checks)
    return sha256(b"".join(p.read_bytes() for p in parts if p.exists())
                  + grader_secret().encode())


# ------------------------------------------------------------------------------ intake

def collect_zip(course: Path, assignment: str, archive: Path, output: Path, notebook: str) -> None:
    """An LMS download, unpacked with the intake's bounds into submitted/ (see autograder/intake.py
    for why this is not `nbgrader zip_collect`). Only an unreadable download stops the run: what
    is wrong with one student's upload becomes that student's reason for review."""
    from autograder import intake

    if not zipfile.is_zipfile(archive):
        sys.exit(f"{archive} is not a zip file")
    kept = course / "downloaded" / assignment / "archive"   # every upload as it came, for review
    kept.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(archive, kept / archive.name)
    staging = course / "downloaded" / assignment / "extracted"
    try:
        students = intake.collect_zip(archive, staging, notebook)
    except (zipfile.BadZipFile, OSError, ValueError) as error:  # ValueError: undecodable names
        sys.exit(f"{archive} cannot be read as a zip ({type(error).__name__}: {error})")
    if not students:
        sys.exit(f"{archive} is an empty zip: no submissions to grade")
    store_collected(course, assignment, output, students)
    shutil.rmtree(staging, ignore_errors=True)


def collect_folder(course: Path, assignment: str, folder: Path, output: Path, notebook: str) -> None:
    """`folder/<student>.ipynb` (or .zip), or `folder/<student>/<files>`, into submitted/."""
    from autograder import intake

    store_collected(course, assignment, output, intake.collect_folder(folder, notebook))


def store_collected(course: Path, assignment: str, output: Path, students: dict) -> None:
    """Each student's files into submitted/<id>/<assignment>/; their LMS names and reasons kept."""
    from autograder.intake import write_collected

    path = output / "collected.json"
    known = json.loads(path.read_text()) if path.exists() else {}
    for student in students.values():
        write_collected(student, course / "submitted" / student.key / assignment)
        known[student.key] = {"name": student.name, "reasons": student.reasons}
    path.write_text(json.dumps(known, indent=1, ensure_ascii=False))


def intake(course: Path, output: Path, assignment: str, release: Path) -> dict[str, dict]:
    """Check and rebuild every submission; the originals are kept in grading/.../originals/."""
    from autograder.intake import Intake, check_submission, notebook_bytes

    records = {}
    collected_path = output / "collected.json"
    collected = json.loads(collected_path.read_text()) if collected_path.exists() else {}
    submitted = course / "submitted"
    students = sorted(p.name for p in submitted.iterdir() if (p / assignment).is_dir()) \
        if submitted.is_dir() else []
    for student in students:
        folder = submitted / student / assignment
        state_path = output / "intake" / f"{student}.json"
        state = json.loads(state_path.read_text()) if state_path.exists() else None
        current = folder / release.name
        upload = collected.get(student, {"name": student, "reasons": []})
        if state and current.is_file() and sha256(current.read_bytes()) == state["sha"] \
                and state.get("upload") == upload:
            records[student] = state  # already rebuilt by an earlier run, and unchanged since
            continue
        original = output / "originals" / student
        if original.exists():
            shutil.rmtree(original)
        shutil.copytree(folder, original, symlinks=True)
        try:
            result = check_submission(original, student, release)
        except Exception as error:  # one odd upload never stops the class: it waits for a person
            result = Intake(student, False, [f"the submission could not be checked ({type(error).__name__})"],
                            nbformat.read(release, as_version=4))
        for path in folder.iterdir():  # only the rebuilt notebook (and nbgrader's timestamp) stay
            if path.name != "timestamp.txt":
                shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink()
        data = notebook_bytes(result.notebook)
        (folder / release.name).write_bytes(data)
        state = {"student": student, "name": upload["name"], "upload": upload, "sha": sha256(data),
                 "gradable": result.gradable, "reasons": upload["reasons"] + result.reasons}
        state_path.parent.mkdir(parents=True, exist_ok=True)
        state_path.write_text(json.dumps(state, indent=1))
        records[student] = state
    return records


# ------------------------------------------------------------------------------ work (parallel)

def _worker_setup() -> None:
    from autograder.sandbox import die_with_parent

    die_with_parent()  # an interrupted run takes its workers (and their sandboxes) with it


from autograder.nbgrader_plugin import hand_over  # noqa: E402


def prepare(course: str, assignment: str, student: str, notebook: str, env: dict,
            db_url: str | None) -> dict:
    """The expensive part of grading one submission (sandboxed run and trusted checks), cached.

    Runs on a worker (a local process or a Dask worker that sees the course folder). It builds
    the notebook nbgrader will grade (locked cells from the source, as OverwriteCells does) and
    runs the course's two preprocessors on it, which store their results in the cache; the
    writer's `nbgrader autograde` then finds them there.
    """
    os.environ.update(env)
    from autograder.nbgrader_plugin import SandboxedExecute, TrustedChecks

    start = time.monotonic()
    course_path = Path(course)
    config = load_config(course_path, db_url)
    folder = course_path / "submitted" / student / assignment
    nb = nbformat.read(folder / f"{notebook}.ipynb", as_version=4)
    source = nbformat.read(course_path / "source" / assignment / f"{notebook}.ipynb", as_version=4)
    originals = {c.metadata["nbgrader"]["grade_id"]: c for c in source.cells if "nbgrader" in c.metadata}
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if (meta.get("locked") or meta.get("grade")) and not meta.get("solution") \
                and meta.get("grade_id") in originals:
            cell.source = originals[meta["grade_id"]].source
            cell.cell_type = originals[meta["grade_id"]].cell_type
    resources = {"nbgrader": {"assignment": assignment, "student": student, "notebook": notebook},
                 "metadata": {"path": str(folder)}, "unique_key": notebook}
    from autograder.nbgrader_plugin import HANDOVER

    HANDOVER.clear()
    nb, resources = SandboxedExecute(config=config).preprocess(nb, resources)
    TrustedChecks(config=config).preprocess(nb, resources)
    made, computed = HANDOVER.get("made", {}), HANDOVER.get("computed", set())
    seconds = {"worker": round(time.monotonic() - start, 2)}   # parts taken from the cache: not timed
    if "execute" in computed:
        seconds["notebook run (sandbox)"] = made["execute"][1].get("seconds")
        seconds.update(made["execute"][1].get("parts") or {})
    if "checks" in computed:
        seconds.update(made["checks"][1].get("timings") or {})
    return {"student": student, "seconds": seconds, "results": made}


class LocalPool:
    """Worker processes on this machine."""

    def __init__(self, workers: int):
        context = multiprocessing.get_context("spawn")
        self.pool = concurrent.futures.ProcessPoolExecutor(workers, mp_context=context,
                                                           initializer=_worker_setup)

    def submit(self, *args):
        return self.pool.submit(prepare, *args)

    def as_completed(self, futures):
        return concurrent.futures.as_completed(futures)

    def close(self):
        self.pool.shutdown(wait=False, cancel_futures=True)


class DaskPool:
    """A Dask cluster: a scheduler's address (Slurm, Kubernetes...), or a local cluster."""

    def __init__(self, address: str | None, workers: int):
        from distributed import Client, LocalCluster

        self.cluster = None
        if address:
            self.client = Client(address)
        else:
            self.cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                        dashboard_address=None)
            self.client = Client(self.cluster)

    def submit(self, *args):
        return self.client.submit(prepare, *args, pure=False)

    def as_completed(self, futures):
        from distributed import as_completed

        return as_completed(futures)

    def close(self):
        self.client.close()
        if self.cluster is not None:
            self.cluster.close()


# ------------------------------------------------------------------------------ the one writer

class Writer:
    """Runs nbgrader's autograde for one submission at a time: the gradebook's only writer."""

    def __init__(self, course: Path, db_url: str | None):
        import warnings

        warnings.filterwarnings("ignore", module="nbgrader.api")  # SQLAlchemy's autoflush notes
        from nbgrader.apps import NbGraderAPI
        from nbgrader.coursedir import CourseDirectory

        self.config = load_config(course, db_url)
        self.coursedir = CourseDirectory(config=self.config)
        self.api = NbGraderAPI(coursedir=self.coursedir, config=self.config)
        self.db_url = self.coursedir.db_url

    def autograde(self, assignment: str, student: str) -> tuple[bool, str]:
        result = self.api.autograde(assignment, student, force=True, create=True)
        return bool(result.get("success")), (result.get("error") or result.get("log") or "")[-800:]

    def grades(self, assignment: str, student: str, notebook: str) -> list[dict]:
        from nbgrader.api import Gradebook

        with Gradebook(self.db_url) as gradebook:
            submitted = gradebook.find_submission_notebook(notebook, assignment, student)
            return [{"grade_id": g.name, "score": g.score, "max_score": g.max_score,
                     "needs_manual_grade": g.needs_manual_grade, "cell_type": g.cell.cell_type}
                    for g in submitted.grades]


def record_for(writer: Writer, course: Path, assignment: str, notebook: str, student: str,
               intake_state: dict, parts: dict[str, str], ok: bool, error: str) -> dict:
    """The student's grades from the gradebook, with the checks' verdicts from the autograded notebook."""
    autograded = course / "autograded" / student / assignment / f"{notebook}.ipynb"
    grading = nbformat.read(autograded, as_version=4).metadata.get("grading", {}) if autograded.exists() else {}
    verdicts = grading.get("checks", {})
    reasons = list(intake_state["reasons"])
    execution = grading.get("execution") or {}
    if execution.get("problem"):   # the sandboxed run stopped, or (rerun = False) the outputs were unreadable
        reasons.append(execution["problem"] if execution.get("outputs") == "as submitted"
                       else f"the notebook's run was stopped: {execution['problem']}")
    if grading.get("checks_problem"):
        reasons.append(grading["checks_problem"])
    if grading.get("recomputed"):
        reasons.append("the worker's results were not used: the writer graded it again "
                       f"({', '.join(grading['recomputed'])})")
    if not ok:
        reasons.append(f"nbgrader autograde failed: {error.strip().splitlines()[-1] if error.strip() else '?'}")
    grades = []
    for g in writer.grades(assignment, student, notebook) if ok else []:
        autograded_cell = g["cell_type"] == "code"
        verdict = verdicts.get(g["grade_id"], {})
        grades.append({"grade_id": g["grade_id"], "part": parts.get(g["grade_id"], "Other"),
                       "kind": "autograded" if autograded_cell else "manual",
                       "score": None if g["needs_manual_grade"] and not autograded_cell else g["score"],
                       "max_score": g["max_score"],
                       "passed": (g["score"] >= g["max_score"]) if autograded_cell else None,
                       "message": verdict.get("message", ""), "hint": verdict.get("hint", "")})
    auto = [g for g in grades if g["kind"] == "autograded"]
    status = "graded" if intake_state["gradable"] else "not graded"
    if reasons:
        status += ", needs review"
    outputs = execution.get("outputs")   # what graders see: "as submitted" or "re-run by the grader"
    if outputs and execution.get("rerun_because"):
        outputs += f" ({execution['rerun_because']})"
    return {"student": student, "name": intake_state.get("name", student), "status": status, "gradable": intake_state["gradable"] and ok,
            "reasons": reasons, "grades": grades, "outputs": outputs,
            "auto_score": sum(g["score"] or 0 for g in auto), "auto_max": sum(g["max_score"] for g in auto),
            "max_score": sum(g["max_score"] for g in grades)}


# ------------------------------------------------------------------------------ the run

def ensure_assignment(course: Path, assignment: str, db_url: str | None) -> None:
    """The gradebook knows the assignment (what `make release` / generate_assignment records)."""
    from nbgrader.api import Gradebook, MissingEntry
    from nbgrader.coursedir import CourseDirectory

    url = CourseDirectory(config=load_config(course, db_url)).db_url
    with Gradebook(url) as gradebook:
        try:
            gradebook.find_assignment(assignment)
            return
        except MissingEntry:
            pass
    result = nbgrader(course, db_url, "generate_assignment", assignment, "--force")
    if result.returncode != 0:
        sys.exit(f"nbgrader generate_assignment failed:\n{result.stdout}\n{result.stderr}")


def grade_class(course: Path, assignment: str, *, zip_path: Path | None = None,
                folder: Path | None = None, workers: int | None = None, dask: bool = False,
                scheduler: str | None = None, db_url: str | None = None,
                progress: bool = True) -> dict:
    from tqdm import tqdm

    from autograder import report
    from autograder.sandbox import isolation_level

    course = course.resolve()
    # nbgrader runs `alembic` (gradebook migrations) and Jupyter finds kernels through PATH.
    os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    output = course / "grading" / assignment
    output.mkdir(parents=True, exist_ok=True)
    env = grader_environment(course, output)
    os.environ.update(env)
    start = time.monotonic()
    if isolation_level() != "namespaces":
        log("WARNING: no namespaces here (not root, or no unshare): student code runs with "
            "resource limits only, and can read files and use the network.")
    if not (course / "source" / assignment).is_dir():
        sys.exit(f"no assignment source/{assignment}/ in {course}")
    ensure_assignment(course, assignment, db_url)
    releases = sorted((course / "release" / assignment).glob("*.ipynb"))
    if len(releases) != 1:
        sys.exit(f"expected one notebook in release/{assignment}/, found {len(releases)}")
    release = releases[0]
    if zip_path:
        collect_zip(course, assignment, zip_path.resolve(), output, release.name)
    if folder:
        collect_folder(course, assignment, folder.resolve(), output, release.name)
    notebook = release.stem
    states = intake(course, output, assignment, release)
    if not states:
        sys.exit(f"no submissions of {assignment} in {course / 'submitted'}")
    parts = report.parts_of(release)
    fingerprint = grader_fingerprint(course, assignment)
    records_dir = output / "records"
    records_dir.mkdir(exist_ok=True)

    def done(student: str) -> dict | None:
        path = records_dir / f"{student}.json"
        if not path.exists():
            return None
        record = json.loads(path.read_text())
        same = record.get("sha") == states[student]["sha"] and record.get("grader") == fingerprint
        return record if same else None

    todo = [s for s in states if done(s) is None]
    log(f"{assignment}: {len(states)} submissions, {len(states) - len(todo)} already graded, "
        f"{len(todo)} to grade")
    writer = Writer(course, db_url)
    workers = workers or os.cpu_count() or 1
    timings = {}
    if todo:
        pool = DaskPool(scheduler, workers) if (dask or scheduler) else LocalPool(workers)
        bar = tqdm(total=len(todo), desc=f"grading {assignment}", unit="submission", disable=not progress,
                   file=sys.stderr)
        try:
            futures = {pool.submit(str(course), assignment, s, notebook, env, db_url): s for s in todo}
            for future in pool.as_completed(list(futures)):
                student = futures[future]
                try:
                    prepared = future.result()
                    timings[student] = prepared["seconds"]
                    hand_over(student, prepared["results"])   # what the writer's autograde uses
                except Exception as error:  # the writer's autograde redoes the work, and says so
                    log(f"{student}: work failed on the worker ({type(error).__name__}: {error})")
                    hand_over(student, {})
                written = time.monotonic()
                try:
                    ok, error = writer.autograde(assignment, student)
                except Exception as failure:  # recorded as "not graded" for review; the class goes on
                    ok, error = False, f"{type(failure).__name__}"
                timings.setdefault(student, {})["gradebook writer"] = round(time.monotonic() - written, 2)
                record = record_for(writer, course, assignment, notebook, student, states[student],
                                    parts, ok, error)
                record.update(sha=states[student]["sha"], grader=fingerprint)
                (output / "feedback").mkdir(exist_ok=True)
                (output / "feedback" / f"{student}.html").write_text(report.feedback_html(record, assignment))
                temporary = records_dir / f".{student}.tmp"
                temporary.write_text(json.dumps(record, indent=1))
                os.replace(temporary, records_dir / f"{student}.json")  # now it counts as done
                bar.update(1)
        finally:
            bar.close()
            pool.close()
    records = [done(s) for s in states]
    report.write_grades(records, output)
    if timings:  # where this run's seconds went, per submission (benchmarks/grading_benchmark.py)
        (output / "timings.json").write_text(json.dumps(timings, indent=1) + "\n")
    seconds = time.monotonic() - start
    summary = report.write_summary(records, output, assignment, {
        "isolation": isolation_level(), "workers": workers,
        "backend": "dask" if (dask or scheduler) else "local processes",
        "graded_this_run": len(todo), "seconds_this_run": round(seconds, 1),
        "database": "postgresql" if writer.db_url.startswith("postgresql") else "sqlite"})
    log(f"{assignment}: {len(todo)} graded in {seconds:.0f} s; {len(summary['needs_review'])} need review. "
        f"Results in {output}")
    return summary


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("assignment")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--zip", type=Path, help="an LMS download (zip of submissions)")
    source.add_argument("--folder", type=Path, help="a folder of notebooks, one per student")
    parser.add_argument("--workers", type=int, help="parallel submissions (default: all cores)")
    parser.add_argument("--dask", nargs="?", const="", default=None, metavar="SCHEDULER",
                        help="grade on Dask: a scheduler address, or a local cluster if none")
    parser.add_argument("--db-url", help="gradebook URL, e.g. postgresql://user@host/db (default: "
                        "the course's SQLite gradebook.db)")
    parser.add_argument("--course", type=Path, default=Path.cwd(), help="course directory (default: .)")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    grade_class(args.course, args.assignment, zip_path=args.zip, folder=args.folder,
                workers=args.workers, dask=args.dask is not None, scheduler=args.dask or None,
                db_url=args.db_url, progress=not args.no_progress)


if __name__ == "__main__":
    main()
