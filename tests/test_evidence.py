"""Paired comparisons and recorded reference runs (deepnets/evidence.py)."""

import json
import math
import re
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from scipy.stats import binomtest
from torch import nn

from deepnets import evidence
from deepnets.evidence import (RecordMismatch, correct_answers, load_record, mcnemar_p_value, paired_comparison,
                               remember)
from deepnets.training import History

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("only_first, only_second", [(0, 0), (3, 9), (40, 41), (0, 12), (25, 5),
                                                       # past 1,023 discordant images (full MNIST, a model at chance)
                                                       (1200, 900), (80, 7900)])
def test_mcnemar_p_value_is_the_exact_binomial_test(only_first, only_second):
    expected = 1.0 if only_first + only_second == 0 else \
        binomtest(only_first, only_first + only_second, 0.5).pvalue
    assert math.isclose(mcnemar_p_value(only_first, only_second), expected, rel_tol=1e-9)


def test_paired_comparison_counts_disagreements_not_accuracies():
    # Same accuracy (50%) but disagreeing everywhere: no evidence either way.
    first = torch.tensor([True, False] * 50)
    second = ~first
    comparison = paired_comparison(first, second, ("a", "b"))
    assert comparison.accuracies == (50.0, 50.0)
    assert (comparison.only_first, comparison.only_second) == (50, 50)
    assert comparison.difference == 0 and not comparison.significant
    assert "cannot be told apart" in comparison.verdict()


def test_paired_comparison_finds_a_consistent_small_gain():
    # b is right wherever a is, and on 20 of 1000 more images: 2 points, and clearly real.
    first = torch.zeros(1000, dtype=torch.bool)
    first[:900] = True
    second = first.clone()
    second[900:920] = True
    comparison = paired_comparison(first, second, ("a", "b"))
    assert comparison.difference == pytest.approx(2.0)
    low, high = comparison.interval
    assert 0 < low < 2.0 < high
    assert comparison.significant and "b is more accurate" in comparison.verdict()


@pytest.mark.parametrize("better_correct, says_neither_learned", [(130, True), (500, True), (501, False)])
def test_a_verdict_between_two_models_that_did_not_learn_says_so(better_correct, says_neither_learned):
    # As the BatchNorm experiment at learning rate 0.1 printed: 10.25% against 13.15%, "significant".
    first = torch.zeros(1000, dtype=torch.bool)
    first[:100] = True
    second = torch.zeros(1000, dtype=torch.bool)
    second[:better_correct] = True
    comparison = paired_comparison(first, second, ("a", "b"))
    assert comparison.significant and "b is more accurate" in comparison.verdict()
    assert ("neither learned" in comparison.verdict()) == says_neither_learned


def test_paired_comparison_needs_the_same_images():
    with pytest.raises(ValueError, match="same test images"):
        paired_comparison(torch.ones(5, dtype=torch.bool), torch.ones(6, dtype=torch.bool))


def full_budget():
    return SimpleNamespace(name="full", epochs=5)


def test_a_record_round_trips_and_refuses_other_models(tmp_path, monkeypatch):
    monkeypatch.setattr(evidence, "RECORDS", tmp_path)
    monkeypatch.setenv(evidence.RECORD_VARIABLE, "1")
    model = nn.Linear(4, 2)
    history = History(step_loss=[2.3, 1.0], eval_steps=[2], eval_accuracy=[80.0], test_accuracy=[80.0])
    assert remember("unit.test", full_budget(), models={"net": model}, histories={"net": history},
                    results={"gap": 1.5}, data_source="MNIST") is None
    saved = json.loads((tmp_path / "unit.test.json").read_text())
    assert {"device", "date", "budget", "data", "commit"} <= set(saved["provenance"])

    monkeypatch.delenv(evidence.RECORD_VARIABLE)
    record = remember("unit.test", SimpleNamespace(name="demo"), models={"net": nn.Linear(4, 2)},
                      histories={})
    assert record.histories["net"] == history and record.results == {"gap": 1.5}
    with pytest.raises(RecordMismatch, match="record it again"):
        load_record("unit.test", {"net": nn.Linear(4, 3)})
    # The same layers named differently: a student's correct model still matches the record.
    renamed = nn.Module()
    renamed.classifier = nn.Linear(4, 2)
    renamed.__class__ = type("Linear", (nn.Module,), {})
    assert load_record("unit.test", {"net": renamed}).results == {"gap": 1.5}
    assert load_record("unit.absent") is None
    # A smaller budget that trains one more model: the models both have are compared...
    assert load_record("unit.test", {"net": nn.Linear(4, 2), "shallower": nn.Linear(2, 2)}) is not None
    with pytest.raises(RecordMismatch):
        load_record("unit.test", {"net": nn.Linear(4, 3), "shallower": nn.Linear(2, 2)})
    # ... and a record that shares none of the run's models is refused.
    with pytest.raises(RecordMismatch, match="none of the notebook's"):
        load_record("unit.test", {"other": nn.Linear(4, 2)})


def test_only_full_budget_runs_are_recorded(tmp_path, monkeypatch):
    monkeypatch.setattr(evidence, "RECORDS", tmp_path)
    monkeypatch.setenv(evidence.RECORD_VARIABLE, "1")
    with pytest.raises(RuntimeError, match="only full-budget runs"):
        remember("unit.demo", SimpleNamespace(name="demo"), models={}, histories={})
    assert not list(tmp_path.iterdir())


def test_every_shipped_record_is_used_by_a_notebook_and_well_formed():
    """A record no notebook loads is dead weight; one without provenance cannot be trusted."""
    sources = "\n".join(p.read_text() for p in [*REPO.glob("source/*/*.py"), *REPO.glob("demos/*.py")])
    used = set(re.findall(r"""remember\(\s*["']([\w.\-]+)["']""", sources))
    for path in sorted(evidence.RECORDS.glob("*.json")):
        payload = json.loads(path.read_text())
        assert path.stem in used, f"{path.name} is not remembered by any notebook"
        assert payload["provenance"]["budget"] == "full"
        assert payload["models"], f"{path.name} names no models, so nothing can check it is current"
        assert all(h["step_loss"] for h in payload["histories"].values()), f"{path.name} has an empty history"
