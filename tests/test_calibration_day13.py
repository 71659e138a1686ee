"""Day 13's learning-check calibration on record matches the checks, separates, and reproduces."""

import json
import sys

import pytest

from nbgrader_harness import REPO

sys.path.insert(0, str(REPO / "autograder"))
import calibrate_day13  # noqa: E402

RECORD = calibrate_day13.RESULTS.with_suffix(".json")


@pytest.fixture(scope="module")
def record():
    assert RECORD.exists(), "no calibration on record: run python autograder/calibrate_day13.py"
    return json.loads(RECORD.read_text())


def test_record_uses_the_checks_recipe_and_thresholds(record):
    assert record["checks"] == calibrate_day13.lesson_checks()


def test_record_separates_correct_from_broken(record):
    thresholds = {network: check["threshold"] for network, check in record["checks"].items()}
    variants = {(run["network"], run["variant"]) for run in record["runs"]}
    for network in ("ResNet18", "DeepResNet"):
        assert {(network, "course solution"), (network, "lesson plan's answer")} <= variants
    for run in record["runs"]:
        checked = run["losses"] if run["every_seed"] else run["losses"][:1]
        if run["every_seed"]:
            assert len(checked) >= 10, f"{run['variant']}: too few seeds"
        passes = [loss < thresholds[run["network"]] for loss in checked]
        assert all(passes) if run["should_pass"] else not any(passes), f"{run['network']} {run['variant']}"


def test_the_first_seed_reproduces(record):
    """The check's procedure (export, rebuild with weights from seed 0, overfit_loss) gives the loss on record."""
    solution = calibrate_day13.define(calibrate_day13.build_course.solution_cells(calibrate_day13.LESSON))
    recorded = next(run["losses"][0] for run in record["runs"]
                    if run["network"] == "ResNet18" and run["variant"] == "course solution")
    loss = calibrate_day13.graded_loss(calibrate_day13.exported(solution, "ResNet18"), seed=0)
    assert loss == pytest.approx(recorded, abs=0.01)


def test_the_learning_checks_use_the_calibrated_settings(record):
    """autograder/checks/day13_vgg_resnet.py trains with what was calibrated: its recipe (seed 0),
    the thresholds on record, and overfit_loss's learning rate."""
    import inspect

    from autograder.checks import day13_vgg_resnet
    from autograder.policy import overfit_loss

    recipe = {key: value for key, value in day13_vgg_resnet.OVERFIT.items() if key != "seed"}
    assert {network: {**recipe, "threshold": day13_vgg_resnet.THRESHOLDS[network]}
            for network in day13_vgg_resnet.NETWORKS} == record["checks"]
    assert day13_vgg_resnet.OVERFIT["seed"] == 0
    assert inspect.signature(overfit_loss).parameters["lr"].default == 1e-3
