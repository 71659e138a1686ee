"""Benchmark: plain serial `nbgrader autograde` against autograder/grade_class.py on one class.

    python benchmarks/grading_benchmark.py [--assignment session07_residual_cnn] [--students 50]
        [--workers 1 2] [--no-plain] [--outputs as-submitted rerun]
        [--output benchmarks/results/grading_<assignment>.md]

Builds a class of completed submissions (the course's solution, the lesson plan's answer and
two honest variants, each notebook made unique), then on this machine, in this run:
1. a course with nbgrader's default autograde (the kernel decides, no sandbox) grades it
   serially with `nbgrader autograde` (skipped with --no-plain);
2. for each way of showing outputs (--outputs, default: as-submitted) and each worker count, a
   fresh course grades it with the pipeline (sandboxes, trusted checks, no cache from an earlier run).
For `as-submitted` (the pipeline's default, `c.SandboxedExecute.rerun = False`), each distinct
submission is first run once as its student would (untimed, the quick budget) so that every
notebook carries outputs, which the pipeline shows instead of re-running the notebooks. For
`rerun` (`c.SandboxedExecute.rerun = True`) the notebooks carry none and every one is re-run.
Writes the times, submissions per minute, the ratio to plain nbgrader, whether the two gave the
same autograded scores, and where a submission's seconds went (grade_class's timings.json:
the notebook's sandboxed run, the export sandbox, the checks' process and each check, the
gradebook writer).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import nbformat

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "autograder" / "calibration"))
from nbgrader_harness import fill_answers, make_course, released, solution_answers  # noqa: E402
import lesson_plan_session07  # noqa: E402

import day13_mutants  # noqa: E402
import lesson_plan_day13  # noqa: E402
import lesson_plan_session07  # noqa: E402

NOTEBOOKS = {"session07_residual_cnn": "residual_cnn", "day13_vgg_resnet": "resnet"}
TRUSTED_SECTION = re.compile(r"\n# Trusted grading.*?(?=\n# zip_collect)", re.DOTALL)


# --every-network-differs (Session 7): each student's ResidualCNN also drops out its input at a
# rate of its own, a ten-thousandth per student, too little to change what it learns. No two
# exported graphs are then the same, so the accuracy check, which trains identical networks once
# for the class, trains once per student: the cost of a class whose networks all differ.
OWN_DROPOUT = """

class ResidualCNN(ResidualCNN):
    \"\"\"The same network, with dropout of this student's own rate on its input.\"\"\"

    def forward(self, x):
        return super().forward(F.dropout(x, p={rate}, training=self.training))
"""

OWN_DROPOUT_START = OWN_DROPOUT[:OWN_DROPOUT.index(":")]


def class_answers(assignment: str, count: int, every_network_differs: bool = False) -> dict[str, dict[str, str]]:
    """`count` students cycling through four honest submissions, each notebook made unique (and
    with `every_network_differs`, each network: OWN_DROPOUT)."""
    if every_network_differs and assignment != "session07_residual_cnn":
        raise SystemExit("--every-network-differs is written for session07_residual_cnn only")
    solution = solution_answers(assignment, NOTEBOOKS[assignment])
    if assignment == "session07_residual_cnn":
        variants = [
            solution,
            lesson_plan_session07.ANSWERS,
            dict(solution, residual_block=solution["residual_block"].replace(
                "return F.relu(out + x)", "return F.relu(out)")),                  # forgot the skip
            dict(lesson_plan_session07.ANSWERS, residual_cnn=lesson_plan_session07.RESIDUAL_CNN.replace(
                "nn.MaxPool2d(2, 2)", "nn.AvgPool2d(2, 2)")),                         # average pooling
        ]
    else:
        variants = [solution, lesson_plan_day13.ANSWERS, day13_mutants.mutate(solution, "no_skip"),
                    day13_mutants.mutate(solution, "stride_on_conv2")]
    students = {f"student{i:02d}": {cell: f"# {i:02d}\n{code}" for cell, code in variants[i % len(variants)].items()}
                for i in range(count)}
    if every_network_differs:
        for i, cells in enumerate(students.values()):
            cells["residual_cnn"] += OWN_DROPOUT.format(rate=(i + 1) / 10_000)
    return students


def environment() -> dict:
    env = {**os.environ, "PATH": f"{REPO / '.venv' / 'bin'}{os.pathsep}{os.environ['PATH']}"}
    env.pop("DEEPNETS_BUDGET", None)
    return env


def autograded_scores_gradebook(course: Path, assignment: str) -> dict[str, float]:
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
        return {s.student.id: sum(n.code_score for n in s.notebooks)
                for s in gradebook.find_assignment(assignment).submissions}


def plain_nbgrader(root: Path, assignment: str, answers: dict) -> tuple[float, dict]:
    course = make_course(root / "plain", assignment)
    config = course / "nbgrader_config.py"
    config.write_text(TRUSTED_SECTION.sub("", config.read_text()))  # nbgrader's own autograde
    notebook = NOTEBOOKS[assignment]
    release = released(course, assignment, notebook)
    for student, cells in answers.items():
        folder = course / "submitted" / student / assignment
        folder.mkdir(parents=True)
        nbformat.write(fill_answers(release, cells), folder / f"{notebook}.ipynb")
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "nbgrader", "autograde", assignment, "--force",
                    "--log-level=WARN"], cwd=course, env=environment(), check=True)
    return time.perf_counter() - start, autograded_scores_gradebook(course, assignment)


def run_as_a_student(notebook: nbformat.NotebookNode, course: Path) -> nbformat.NotebookNode:
    """`notebook`, run here in the quick budget, so that it carries the outputs its student would submit."""
    from nbclient import NotebookClient

    saved = dict(os.environ)
    os.environ.update({"DEEPNETS_BUDGET": "quick", "DEEPNETS_OFFLINE": "1"})
    try:
        NotebookClient(notebook, timeout=600, kernel_name="python3", allow_errors=True,
                       resources={"metadata": {"path": str(course)}}).execute()
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return notebook


OUTPUT_MODES = ("as-submitted", "rerun")


def pipeline(root: Path, assignment: str, answers: dict, workers: int,
             outputs_as_submitted: bool = False) -> tuple[float, dict, dict]:
    """Seconds, autograded scores, and grade_class's own per-submission timings."""
    name = f"{workers}{'-as-submitted' if outputs_as_submitted else ''}"
    course = make_course(root / f"pipeline{name}", assignment)
    release = released(course, assignment, NOTEBOOKS[assignment])
    folder = root / f"class{name}"
    folder.mkdir()
    executed = {}   # one run per distinct submission (the students differ by a comment only)
    with open(course / "nbgrader_config.py", "a") as config:   # said here, whatever the default
        config.write(f"\nc.SandboxedExecute.rerun = {not outputs_as_submitted}\n")
    for student, cells in answers.items():
        notebook = fill_answers(release, cells)
        if outputs_as_submitted:
            # One run per variant, without OWN_DROPOUT (whose rate changes no output a grader reads).
            base = {cell: code.split("\n", 1)[1].split(OWN_DROPOUT_START)[0] for cell, code in cells.items()}
            variant = json.dumps(base, sort_keys=True)
            if variant not in executed:
                executed[variant] = run_as_a_student(fill_answers(release, base), course)
            ran = {c.metadata.nbgrader["grade_id"]: c for c in executed[variant].cells if c.cell_type == "code"}
            for cell in notebook.cells:
                if cell.cell_type == "code":
                    cell.outputs = ran[cell.metadata.nbgrader["grade_id"]].outputs
        nbformat.write(notebook, folder / f"{student}.ipynb")
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "autograder.grade_class", assignment, "--folder", str(folder),
                    "--workers", str(workers), "--no-progress"], cwd=course, env=environment(), check=True)
    seconds = time.perf_counter() - start
    timings = json.loads((course / "grading" / assignment / "timings.json").read_text())
    return seconds, autograded_scores_gradebook(course, assignment), timings


def breakdown(timings: dict[str, dict]) -> list[str]:
    """A table: each part's mean and largest seconds per submission (parts nest: see the names)."""
    parts = list(dict.fromkeys(part for student in timings.values() for part in student))
    lines = ["| part (wall seconds; indented parts are inside the one above) | mean per submission | largest |",
             "| --- | ---: | ---: |"]
    for part in parts:
        values = [t[part] for t in timings.values() if isinstance(t.get(part), (int, float))]
        if values:
            nested = part.startswith("check ") or ": " in part
            lines.append(f"| {'&nbsp;&nbsp;&nbsp;&nbsp;' if nested else ''}{part} | "
                         f"{sum(values) / len(values):.1f} | {max(values):.1f} |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--assignment", choices=sorted(NOTEBOOKS), default="session07_residual_cnn")
    parser.add_argument("--students", type=int, default=50)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, os.cpu_count() or 1])
    parser.add_argument("--no-plain", action="store_true", help="skip plain nbgrader (the slowest run)")
    parser.add_argument("--outputs", nargs="+", choices=OUTPUT_MODES, default=["as-submitted"],
                        help="what graders see, one pipeline run per mode and worker count: 'as-submitted' "
                             "(the default, c.SandboxedExecute.rerun = False) or 'rerun' (rerun = True)")
    parser.add_argument("--every-network-differs", action="store_true",
                        help="Session 7: give each student's network a dropout rate of its own, so that no "
                             "accuracy training is shared (OWN_DROPOUT)")
    parser.add_argument("--output", type=Path, help="default: benchmarks/results/grading_<assignment>.md")
    args = parser.parse_args()
    output = args.output or REPO / "benchmarks" / "results" / f"grading_{args.assignment}.md"
    answers = class_answers(args.assignment, args.students, args.every_network_differs)
    root = Path(tempfile.mkdtemp(prefix="grading-benchmark-"))
    results, plain_scores, plain, timings = {}, None, None, {}
    if not args.no_plain:
        plain, plain_scores = plain_nbgrader(root, args.assignment, answers)
        results["plain nbgrader autograde (serial)"] = {"seconds": plain, "workers": 1, "agree": True}
        print(f"plain: {plain:.0f} s", flush=True)
    for mode in args.outputs:
        for workers in args.workers:
            as_submitted = mode == "as-submitted"
            label = f"{workers} worker(s){'' if as_submitted else ', re-running every notebook (rerun = True)'}"
            seconds, scores, timings[label] = pipeline(root, args.assignment, answers, workers, as_submitted)
            disagree = {s: (plain_scores.get(s), scores.get(s)) for s in answers
                        if plain_scores is not None and plain_scores.get(s) != scores.get(s)}
            results[f"grade_class, {label}"] = {"seconds": seconds, "workers": workers, "scores": scores,
                                                "agree": not disagree, "disagree": disagree}
            print(f"pipeline {label}: {seconds:.0f} s, disagreements {disagree}", flush=True)
    command = " ".join(["python benchmarks/grading_benchmark.py", f"--assignment {args.assignment}",
                        f"--students {args.students}", f"--workers {' '.join(map(str, args.workers))}",
                        *(["--no-plain"] if args.no_plain else []),
                        *(["--every-network-differs"] if args.every_network_differs else []),
                        *([f"--outputs {' '.join(args.outputs)}"] if args.outputs != ["as-submitted"] else [])])
    lines = [f"# Grading benchmark: {args.assignment} ({date.today()})", "",
             f"{args.students} completed submissions, graded on one machine in one run (`{command}`): "
             f"{platform.platform()}, {os.cpu_count()} CPU cores.", "",
             "| run | seconds | seconds per submission | submissions / minute | time / plain nbgrader "
             "| same autograded scores as plain |", "| --- | ---: | ---: | ---: | ---: | --- |"]
    for name, result in results.items():
        ratio = f"{result['seconds'] / plain:.2f}" if plain else "not measured"
        agree = "not compared" if plain is None else "yes" if result["agree"] else result["disagree"]
        lines.append(f"| {name} | {result['seconds']:.0f} | {result['seconds'] / args.students:.1f} | "
                     f"{60 * args.students / result['seconds']:.2f} | {ratio} | {agree} |")
    for label, table in timings.items():
        lines += ["", f"Where a submission's seconds went with {label} (grade_class's "
                  "timings.json). The worker runs the notebook's sandbox, then the export sandbox and "
                  "the checks' process; the gradebook writer runs after it, one submission at a time. "
                  "The `export sandbox: ...` parts are what that sandbox reported about itself (each capped "
                  "at the sandbox's measured time).", "", *breakdown(table)]
    lines += ["", "```json", json.dumps(results, indent=1), "```", ""]
    output.write_text("\n".join(lines))
    print(output.read_text())


if __name__ == "__main__":
    main()
