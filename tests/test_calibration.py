"""The accuracy threshold on record passes the solution on 20 seeds; broken models fail it live."""

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


@pytest.mark.parametrize("name, should_pass", [
    ("course solution", True),
    ("ignores bottom half of input", False),
])  # the lesson plan's answer passes the same check in test_hostile_session07_direct.py
def test_grader_training_separates_correct_from_broken_models_today(name, should_pass):
    """Rerun seed 0 of each model the way grading does: correct ones clear the threshold, broken ones do not."""
    expected_pass, factory = calibrate.model_factories()[name]
    assert expected_pass == should_pass
    accuracy = calibrate.accuracy_as_graded(factory, seed=0)
    assert (accuracy >= RESULTS["threshold"]) == should_pass, f"{name}: {accuracy:.1f}%"
    recorded = RESULTS["runs"].get(name, {}).get("accuracies")
    if recorded:
        assert accuracy == pytest.approx(recorded[0], abs=0.5), "seed 0 no longer reproduces"
