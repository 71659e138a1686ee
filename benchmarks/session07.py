"""The Session 7 notebook's own code, read from its source: the two models and the training call."""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tools"))
import build_course  # noqa: E402

LESSON = REPO / "source" / "session07_residual_cnn" / "residual_cnn.py"


def cells() -> dict[str, str]:
    """grade_id -> source of every cell of the instructor copy (the solution, markers removed)."""
    notebook = build_course.instructor_notebook(LESSON)
    return {cell.id: cell.source for cell in notebook.cells}


def models() -> dict:
    """The notebook's BaselineCNN and (solution) ResidualCNN classes, by name."""
    source = cells()
    namespace: dict = {}
    exec("import torch\nimport torch.nn.functional as F\nfrom torch import nn", namespace)
    for grade_id in ("baseline", "residual_block", "residual_cnn"):
        exec(source[grade_id], namespace)
    return {name: namespace[name] for name in ("BaselineCNN", "ResidualCNN")}


def training_call() -> str:
    """The notebook's `train_both` cell, as written: both models through `fit`, batch 128, Adam 1e-3."""
    return cells()["train_both"]
