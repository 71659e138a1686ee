"""Plumbing shared by the course notebooks, tests and autograder: data, training, plots, checks."""

from deepnets.budget import Budget, pick_budget
from deepnets.data import DataRootError, MNIST, load_mnist
from deepnets.training import (
    History,
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
    "count_parameters",
    "evaluate",
    "fit",
    "load_mnist",
    "pick_budget",
    "pick_device",
    "set_seed",
]
