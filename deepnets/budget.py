"""Named compute budgets (quick, demo, full) chosen by one setting, so one notebook serves CI, class and GPU."""

from __future__ import annotations

import os
from types import SimpleNamespace

import torch

BUDGET_VARIABLE = "DEEPNETS_BUDGET"
BUDGET_NAMES = ("quick", "demo", "full")


class Budget(SimpleNamespace):
    """The settings of the chosen budget as attributes (budget.epochs), plus its `name`."""


def chosen_budget_name() -> tuple[str, str]:
    """The budget to use and why: $DEEPNETS_BUDGET, else quick under nbgrader, else by device."""
    requested = os.environ.get(BUDGET_VARIABLE, "").strip().lower()
    if requested:
        if requested not in BUDGET_NAMES:
            raise ValueError(f"{BUDGET_VARIABLE}={requested!r} is not a budget; "
                             f"choose one of {', '.join(BUDGET_NAMES)}.")
        return requested, f"${BUDGET_VARIABLE}"
    if os.environ.get("NBGRADER_EXECUTION"):
        # nbgrader sets this while validating and autograding: grading must stay fast.
        return "quick", "running under nbgrader"
    if torch.cuda.is_available():
        return "full", "a CUDA GPU is available"
    return "demo", "no CUDA GPU: the demo budget fits a laptop CPU"


def pick_budget(verbose: bool = True, **budgets: dict) -> Budget:
    """Pick one of `quick=`, `demo=`, `full=` (dicts of settings) as the run's budget."""
    missing = [name for name in BUDGET_NAMES if name not in budgets]
    if missing or len(budgets) != len(BUDGET_NAMES):
        raise TypeError(f"pick_budget needs exactly {', '.join(BUDGET_NAMES)}; missing {missing}")
    name, reason = chosen_budget_name()
    budget = Budget(name=name, **budgets[name])
    if verbose:
        settings = ", ".join(f"{key}={value}" for key, value in budgets[name].items())
        print(f"Budget '{name}' ({reason}): {settings}")
    return budget


def print_measured_times(path, notebooks: list[str]) -> None:
    """The seconds each part of `notebooks` took when `make demo` last recorded them (`path`,
    written by tools/run_notebooks.py --record), for each data source it was run on."""
    import json
    from pathlib import Path

    path = Path(path)
    if not path.exists():
        print(f"No measured times yet: run  make demo DEMO_ARGS='--record {path.name}'  and see {path}.")
        return
    for source, run in json.loads(path.read_text()).items():
        machine = run["machine"]
        print(f"{source}: {machine['cpu']}, {machine['cores']} cores, {machine['date']}")
        for timing in run["notebooks"]:
            if timing["notebook"] not in notebooks:
                continue
            state = "" if timing["succeeded"] else "  (a cell FAILED: the time is to the failure)"
            print(f"  {timing['notebook']}: {timing['seconds']:.0f} s in all{state}")
            for part, seconds in timing["seconds_by_part"].items():
                if seconds >= 1:
                    print(f"    {seconds:6.0f} s  {part}")
