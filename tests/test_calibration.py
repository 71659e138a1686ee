"""The accuracy threshold on record passes the solution on 20 seeds; a broken model fails it live, as recorded."""

import json
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "autograder"))
import calibrate  # noqa: E402

RESULTS = json.loads(calibrate.RESULTS.with_suffix(".json").read_text())


def test_course_solution_passed_on_20_seeds_out_of_20():
    accuracies = RESULTS["runs"]["course solution"]["accuracies"]
    assert len(accuracies) >= 20
    assert min(accuracies) >= RESULTS["threshold"]


def test_a_broken_model_fails_today_as_recorded():
    """Seed 0 of the broken model, trained the way grading trains: below the threshold, and the
    accuracy on record (so the recipe the threshold was calibrated on has not drifted). That
    correct models clear it today is each notebook's hidden test of cnn_learns_mnist (the course
    solution, under nbval) and test_hostile_session07_direct.py (the lesson plan's answer)."""
    name = "ignores bottom half of input"
    should_pass, _ = calibrate.model_factories()[name]
    assert not should_pass
    accuracy = calibrate.accuracy_as_graded(name, seed=0)
    assert accuracy < RESULTS["threshold"], f"{name}: {accuracy:.1f}%"
    assert accuracy == pytest.approx(RESULTS["runs"][name]["accuracies"][0], abs=0.5), "seed 0 no longer reproduces"
