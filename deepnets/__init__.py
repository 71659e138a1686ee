"""Plumbing shared by the course notebooks, tests and autograder: data, training, plots, checks."""

import os

# Idle OpenMP threads sleep rather than spin. On a busy or shared CPU (CI, a JupyterHub, a
# laptop running other things) spinning threads made the small convolutions of the demo about
# ten times slower with 2 threads; it takes effect only if torch is not imported yet.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from deepnets.budget import Budget, pick_budget
from deepnets.data import DataRootError, MNIST, load_mnist
from deepnets.training import (
    History,
    Speed,
    count_parameters,
    evaluate,
    fit,
    pick_device,
    set_seed,
)

__all__ = [
    "Budget",
    "DataRootError",
    "History",
    "MNIST",
    "Speed",
    "count_parameters",
    "evaluate",
    "fit",
    "load_mnist",
    "pick_budget",
    "pick_device",
    "set_seed",
]
