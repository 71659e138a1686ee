"""Benchmark: plain serial `nbgrader autograde` against autograder/grade_class.py on one class.

    python benchmarks/grading_benchmark.py [--students 50] [--workers 1 2] [--output benchmarks/grading_RESULTS.md]

Builds a class of completed Session 7 submissions (the course's solution, the lesson plan's
answer and two honest variants, each notebook made unique), then on this machine, in this run:
1. a course with nbgrader's default autograde (the kernel decides, no sandbox) grades it
   serially with `nbgrader autograde`;
2. for each worker count, a fresh course grades it with the pipeline (sandboxes, trusted checks,
   no cache from an earlier run).
Writes the times, submissions per minute, the ratio to plain nbgrader, and whether the two
gave the same autograded scores.
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

ASSIGNMENT, NOTEBOOK = "session07_residual_cnn", "residual_cnn"
TRUSTED_SECTION = re.compile(r"\n# Trusted grading.*?(?=\n# zip_collect)", re.DOTALL)


def class_answers(count: int) -> dict[str, dict[str, str]]:
    solution = solution_answers(ASSIGNMENT, NOTEBOOK)
    variants = [
        solution,
        lesson_plan_session07.ANSWERS,
        dict(solution, residual_block=solution["residual_block"].replace(
            "return F.relu(out + x)", "return F.relu(out)")),                  # forgot the skip
        dict(lesson_plan_session07.ANSWERS, residual_cnn=lesson_plan_session07.RESIDUAL_CNN.replace(
            "nn.MaxPool2d(2, 2)", "nn.AvgPool2d(2, 2)")),                         # average pooling
    ]
    return {f"student{i:02d}": {cell: f"# {i:02d}\n{code}" for cell, code in variants[i % len(variants)].items()}
            for i in range(count)}


def environment() -> dict:
    env = {**os.environ, "PATH": f"{REPO / '.venv' / 'bin'}{os.pathsep}{os.environ['PATH']}"}
    env.pop("DEEPNETS_BUDGET", None)
    return env


def autograded_scores_gradebook(course: Path) -> dict[str, float]:
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
        return {s.student.id: sum(n.code_score for n in s.notebooks)
                for s in gradebook.find_assignment(ASSIGNMENT).submissions}


def plain_nbgrader(root: Path, answers: dict) -> tuple[float, dict]:
    course = make_course(root / "plain", ASSIGNMENT)
    config = course / "nbgrader_config.py"
    config.write_text(TRUSTED_SECTION.sub("", config.read_text()))  # nbgrader's own autograde
    release = released(course, ASSIGNMENT, NOTEBOOK)
    for student, cells in answers.items():
        folder = course / "submitted" / student / ASSIGNMENT
        folder.mkdir(parents=True)
        nbformat.write(fill_answers(release, cells), folder / f"{NOTEBOOK}.ipynb")
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "nbgrader", "autograde", ASSIGNMENT, "--force",
                    "--log-level=WARN"], cwd=course, env=environment(), check=True)
    return time.perf_counter() - start, autograded_scores_gradebook(course)


def pipeline(root: Path, answers: dict, workers: int) -> tuple[float, dict]:
    course = make_course(root / f"pipeline{workers}", ASSIGNMENT)
    release = released(course, ASSIGNMENT, NOTEBOOK)
    folder = root / f"class{workers}"
    folder.mkdir()
    for student, cells in answers.items():
        nbformat.write(fill_answers(release, cells), folder / f"{student}.ipynb")
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "autograder.grade_class", ASSIGNMENT, "--folder", str(folder),
                    "--workers", str(workers), "--no-progress"], cwd=course, env=environment(), check=True)
    return time.perf_counter() - start, autograded_scores_gradebook(course)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--students", type=int, default=50)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, os.cpu_count() or 1])
    parser.add_argument("--output", type=Path, default=REPO / "benchmarks" / "grading_RESULTS.md")
    args = parser.parse_args()
    answers = class_answers(args.students)
    root = Path(tempfile.mkdtemp(prefix="grading-benchmark-"))
    results = {}
    seconds, plain_scores = plain_nbgrader(root, answers)
    results["plain nbgrader autograde (serial)"] = {"seconds": seconds, "workers": 1, "agree": True}
    print(f"plain: {seconds:.0f} s", flush=True)
    for workers in args.workers:
        seconds, scores = pipeline(root, answers, workers)
        disagree = {s: (plain_scores.get(s), scores.get(s)) for s in answers if plain_scores.get(s) != scores.get(s)}
        results[f"grade_class, {workers} worker(s)"] = {"seconds": seconds, "workers": workers,
                                                        "agree": not disagree, "disagree": disagree}
        print(f"pipeline {workers}: {seconds:.0f} s, disagreements {disagree}", flush=True)
    plain = results["plain nbgrader autograde (serial)"]["seconds"]
    lines = [f"# Grading benchmark ({date.today()})", "",
             f"{args.students} completed Session 7 submissions, graded on one machine in one run "
             f"(`python benchmarks/grading_benchmark.py --students {args.students} --workers "
             f"{' '.join(map(str, args.workers))}`): {platform.platform()}, {os.cpu_count()} CPU cores "
             f"(shared with other work while this ran, so times are noisy).", "",
             "| run | seconds | submissions / minute | time / plain nbgrader | same autograded scores as plain |",
             "| --- | ---: | ---: | ---: | --- |"]
    for name, result in results.items():
        lines.append(f"| {name} | {result['seconds']:.0f} | {60 * args.students / result['seconds']:.2f} | "
                     f"{result['seconds'] / plain:.2f} | {'yes' if result['agree'] else result['disagree']} |")
    lines += ["", "The pipeline does more work per submission than plain nbgrader: it runs the notebook "
              "(without hidden tests) in one sandbox and the trusted checks, including the grader's "
              "training of the student's model, in another, each limited to one thread so that "
              "grades do not depend on the number of workers.", "",
              "```json", json.dumps(results, indent=1), "```", ""]
    args.output.write_text("\n".join(lines))
    print(args.output.read_text())


if __name__ == "__main__":
    main()
