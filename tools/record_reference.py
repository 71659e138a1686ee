"""Record the full-budget reference runs that the notebooks draw next to a short live run.

    python tools/record_reference.py notebooks/session07_vanishing_gradients.ipynb [...]

Runs each notebook in the full budget with DEEPNETS_RECORD=1: every `deepnets.evidence.remember`
call in it writes deepnets/records/<key>.json (histories, results, the models' architecture,
and provenance: device, date, budget, data, commit). Commit those files. Some runs need a GPU.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run_notebooks import run  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("notebooks", nargs="+", type=Path)
    parser.add_argument("--output", type=Path, default=Path("output/records"))
    arguments = parser.parse_args()
    os.environ["DEEPNETS_BUDGET"] = "full"
    os.environ["DEEPNETS_RECORD"] = "1"
    results = [run(path, arguments.output) for path in arguments.notebooks]
    sys.exit(0 if all(result["succeeded"] for result in results) else 1)


if __name__ == "__main__":
    main()
