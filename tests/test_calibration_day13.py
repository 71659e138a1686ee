"""Day 13's learning-check calibration on record matches the lesson, separates, and reproduces."""

import json
import sys

import pytest

from nbgrader_harness import REPO

sys.path.insert(0, str(REPO / "autograder"))
import calibrate_day13  # noqa: E402

from deepnets.checks import overfit_loss  # noqa: E402

RECORD = calibrate_day13.RESULTS.with_suffix(".json")


@pytest.fixture(scope="module")
def record():
    assert RECORD.exists(), "no calibration on record: run python autograder/calibrate_day13.py"
    return json.loads(RECORD.read_text())


def test_record_uses_the_lessons_settings_and_thresholds(record):
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


def test_the_graders_seed_reproduces(record):
    solution = calibrate_day13.define(calibrate_day13.build_course.solution_cells(calibrate_day13.LESSON))
    recorded = next(run["losses"][0] for run in record["runs"]
                    if run["network"] == "ResNet18" and run["variant"] == "course solution")
    check = record["checks"]["ResNet18"]
    loss = overfit_loss(solution["ResNet18"], seed=0, steps=check["steps"], batch_size=check["batch_size"],
                        image_size=check["image_size"])
    assert loss == pytest.approx(recorded, abs=0.01)


def test_trusted_learning_checks_use_the_calibrated_settings(record):
    """autograder/checks/day13_vgg_resnet.py trains with what was calibrated: seed 0, the same
    steps, batch, image size and threshold (all read from the lesson), and overfit_loss's lr."""
    from autograder.checks import day13_vgg_resnet

    trusted = day13_vgg_resnet.lesson_learning_tests()
    assert {network: {key: value for key, value in test.items() if key not in ("seed", "lr")}
            for network, test in trusted.items()} == record["checks"]
    assert {test["seed"] for test in trusted.values()} == {0}
    assert {test["lr"] for test in trusted.values()} == {1e-3}
