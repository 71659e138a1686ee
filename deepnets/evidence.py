"""What a run's numbers support: paired model comparisons, and recorded full-budget reference runs.

    comparison = compare_on_same_images({"PlainNet": plain, "ResNet18": resnet}, data)
    print(comparison.verdict())

    reference = remember("resnet.plain_vs_resnet", budget, models={...}, histories={...})
    # recording (DEEPNETS_RECORD=1, full budget): writes deepnets/records/<key>.json
    # otherwise: returns the recorded full-budget run (or None), checked against the live models

Records are small JSON files shipped with the library, so a class on a laptop can draw the
converged picture next to its own short run. `tools/record_reference.py` makes them.
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import json
import math
import os
import platform
import subprocess
from pathlib import Path

import torch
from torch import nn

# correct_answers is training's (the one way a model is scored), imported here for the notebooks.
from deepnets.training import History, correct_answers, count_parameters

RECORD_VARIABLE = "DEEPNETS_RECORD"
RECORDS = Path(__file__).resolve().parent / "records"
# Below this two-sided p-value the notebooks call a difference more than test-set noise.
SIGNIFICANCE = 0.05
# A model at or below this test accuracy (%) has not learned the task (chance is 10% for ten
# digits): the notebooks call a run that stays there a failure, and a verdict between two such
# models says so, since which of two failures guesses a little better says nothing about training.
LEARNED_ABOVE = 50.0


# ----------------------------------------------------------------------------- paired comparison

@dataclasses.dataclass(frozen=True)
class PairedComparison:
    """Two models scored on the same test images, image by image."""

    names: tuple[str, str]
    correct: tuple[int, int]        # images each got right
    only_first: int                 # images the first got right and the second wrong
    only_second: int
    images: int
    p_value: float                  # exact McNemar test: are the disagreements lopsided?

    @property
    def accuracies(self) -> tuple[float, float]:
        return tuple(100.0 * c / self.images for c in self.correct)

    @property
    def difference(self) -> float:
        """Second minus first, in accuracy points."""
        return 100.0 * (self.only_second - self.only_first) / self.images

    @property
    def interval(self) -> tuple[float, float]:
        """95% confidence interval of `difference` for paired proportions (Wald)."""
        n, discordant = self.images, self.only_first + self.only_second
        mean = (self.only_second - self.only_first) / n
        spread = math.sqrt(max(discordant / n - mean ** 2, 0.0) / n)
        return 100.0 * (mean - 1.96 * spread), 100.0 * (mean + 1.96 * spread)

    @property
    def significant(self) -> bool:
        return self.p_value < SIGNIFICANCE

    def verdict(self) -> str:
        """One sentence, from the numbers, that says what the comparison does and does not show."""
        first, second = self.names
        low, high = self.interval
        lines = [f"{second} - {first}: {self.difference:+.2f} points on the same {self.images:,} test "
                 f"images (95% interval {low:+.2f} to {high:+.2f}).",
                 f"They disagree on {self.only_first + self.only_second:,} images: {second} alone is "
                 f"right on {self.only_second:,}, {first} alone on {self.only_first:,} "
                 f"(exact McNemar test, p {f'= {self.p_value:.3g}' if self.p_value else '< 1e-300'})."]
        if self.significant:
            better = second if self.difference > 0 else first
            lines.append(f"p < {SIGNIFICANCE}: {better} is more accurate on this test set than the luck of "
                         f"which images were drawn explains. It is one training run (one seed) each.")
        else:
            lines.append(f"p >= {SIGNIFICANCE}: at this budget the two cannot be told apart from the test "
                         f"set's own noise; this run does not show either model to be better.")
        if max(self.accuracies) <= LEARNED_ABOVE:
            lines.append(f"Both are at or below {LEARNED_ABOVE:.0f}% (chance is 10%): neither learned here, so "
                         f"this difference says nothing about which one trains better.")
        return "\n".join(lines)


def paired_comparison(first_correct: torch.Tensor, second_correct: torch.Tensor,
                      names: tuple[str, str] = ("first", "second")) -> PairedComparison:
    """Compare two per-image correctness vectors measured on the same test images."""
    first_correct, second_correct = first_correct.bool().cpu(), second_correct.bool().cpu()
    if first_correct.shape != second_correct.shape or first_correct.ndim != 1:
        raise ValueError("both models must be scored on the same test images (two equal-length vectors)")
    only_first = int((first_correct & ~second_correct).sum())
    only_second = int((second_correct & ~first_correct).sum())
    return PairedComparison(tuple(names), (int(first_correct.sum()), int(second_correct.sum())),
                            only_first, only_second, len(first_correct),
                            mcnemar_p_value(only_first, only_second))


def mcnemar_p_value(only_first: int, only_second: int) -> float:
    """Two-sided exact McNemar p-value: a binomial test of the discordant pairs against 1/2."""
    discordant = only_first + only_second
    if discordant == 0:
        return 1.0
    smaller = min(only_first, only_second)
    # Integer division of exact integers: 2.0 ** n overflows a float past n = 1023 discordant
    # images, which a full-MNIST comparison of a broken model with a working one reaches.
    tail = sum(math.comb(discordant, k) for k in range(smaller + 1)) / 2 ** discordant
    return min(1.0, 2.0 * tail)


def compare_on_same_images(models: dict[str, nn.Module], images: torch.Tensor,
                           labels: torch.Tensor, *, train_mode: bool = False) -> PairedComparison:
    """Score two models on the same images and compare them pairwise (first name, second name)."""
    if len(models) != 2:
        raise ValueError("compare exactly two models")
    names = tuple(models)
    first, second = (correct_answers(m, images, labels, train_mode=train_mode) for m in models.values())
    return paired_comparison(first, second, names)


# ----------------------------------------------------------------------------- recorded runs

def architecture(model: nn.Module) -> dict:
    """What a record must match: class, trainable parameter count and the parameters' shapes.

    The shapes are hashed as a sorted list, without names or order, so a student's correct model
    whose layers are named or declared differently from the solution still matches the record.
    """
    shapes = sorted(str(tuple(p.shape)) for p in model.parameters() if p.requires_grad)
    return {"class": type(model).__name__, "parameters": count_parameters(model),
            "layout": hashlib.sha256(" ".join(shapes).encode()).hexdigest()[:16]}


def history_to_dict(history: History) -> dict:
    return dataclasses.asdict(history)


def history_from_dict(values: dict) -> History:
    fields = {f.name for f in dataclasses.fields(History)}
    return History(**{key: value for key, value in values.items() if key in fields})


@dataclasses.dataclass
class Record:
    """A recorded run: its histories, any other results, the models it trained, and provenance."""

    key: str
    histories: dict[str, History]
    results: dict
    models: dict[str, dict]
    provenance: dict

    def describe(self) -> str:
        p = self.provenance
        return (f"recorded run '{self.key}': {p.get('budget')} budget, {p.get('data')}, on "
                f"{p.get('device')}, {p.get('date')}, commit {str(p.get('commit'))[:10]}")


class RecordMismatch(RuntimeError):
    """A recorded run was made with other models than the notebook's: record it again."""


def recording() -> bool:
    return os.environ.get(RECORD_VARIABLE, "") not in ("", "0")


def record_path(key: str) -> Path:
    if not key.replace(".", "").replace("_", "").replace("-", "").isalnum():
        raise ValueError(f"record keys are letters, digits, '.', '_' and '-': {key!r}")
    return RECORDS / f"{key}.json"


def _commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                              cwd=Path(__file__).parent, timeout=10).stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def _device_name() -> str:
    if torch.cuda.is_available():
        return torch.cuda.get_device_name()
    return f"CPU ({platform.processor() or platform.machine()}, {os.cpu_count()} cores)"


def save_record(key: str, budget, *, models: dict[str, nn.Module], histories: dict[str, History],
                results: dict | None = None, data_source: str = "") -> Path:
    """Write the run as deepnets/records/<key>.json, with where, when and how it was made."""
    path = record_path(key)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "key": key,
        "provenance": {"budget": budget.name, "settings": {k: v for k, v in vars(budget).items() if k != "name"},
                       "data": data_source, "device": _device_name(), "torch": torch.__version__,
                       "date": datetime.date.today().isoformat(), "commit": _commit()},
        "models": {name: architecture(model) for name, model in models.items()},
        "histories": {name: history_to_dict(h) for name, h in histories.items()},
        "results": results or {},
    }
    path.write_text(json.dumps(payload, indent=1, default=float) + "\n")
    return path


def load_record(key: str, models: dict[str, nn.Module] | None = None) -> Record | None:
    """The recorded run `key`, or None; RecordMismatch when `models` differ from the recorded ones.

    A smaller budget may train fewer or other models than the full one (a shallower depth, say):
    every model both name is compared, and at least one must be in both.
    """
    path = record_path(key)
    if not path.exists():
        return None
    payload = json.loads(path.read_text())
    record = Record(key, {name: history_from_dict(h) for name, h in payload["histories"].items()},
                    payload.get("results", {}), payload["models"], payload["provenance"])
    if models and not set(models) & set(record.models):
        raise RecordMismatch(f"{record.describe()} holds {sorted(record.models)}, none of the notebook's "
                             f"{sorted(models)}: record it again (tools/record_reference.py).")
    for name, model in (models or {}).items():
        live, recorded = architecture(model), record.models.get(name)
        if recorded is not None and recorded != live:
            raise RecordMismatch(f"{record.describe()} holds {name} as {recorded}, but the notebook's "
                                 f"{name} is {live}: record it again (tools/record_reference.py).")
    return record


def remember(key: str, budget, *, models: dict[str, nn.Module], histories: dict[str, History],
             results: dict | None = None, data_source: str = "", verbose: bool = True) -> Record | None:
    """Record this run when recording a full-budget run; otherwise return the recorded one, if any.

    The notebook calls this once after training, so the run it records is exactly its own.
    """
    if recording():
        if budget.name != "full":
            raise RuntimeError(f"{RECORD_VARIABLE} is set, but only full-budget runs are recorded "
                               f"(this is the {budget.name} budget)")
        path = save_record(key, budget, models=models, histories=histories, results=results,
                           data_source=data_source)
        if verbose:
            print(f"Recorded this run as {path.name}.")
        return None
    record = load_record(key, models)
    if verbose:
        if record is None:
            print(f"No full-budget run of '{key}' has been recorded yet "
                  f"(tools/record_reference.py makes one; some need a GPU).")
        elif budget.name != "full":
            print(f"Also shown: the {record.describe()}.")
    return record
