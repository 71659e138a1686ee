"""Execute notebooks headless and save the executed copies and their figures.

    python tools/run_notebooks.py --output output notebooks/*.ipynb

The budget is the notebooks' own default (demo on a CPU, full with CUDA) unless
DEEPNETS_BUDGET says otherwise. Figures are written as output/<notebook>/figure-<n>.png.
"""

from __future__ import annotations

import argparse
import base64
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError


def save_figures(notebook: nbformat.NotebookNode, folder: Path) -> list[Path]:
    """Every PNG the notebook displayed, in order."""
    figures = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            png = output.get("data", {}).get("image/png")
            if png:
                path = folder / f"figure-{len(figures) + 1}.png"
                path.write_bytes(base64.b64decode(png))
                figures.append(path)
    return figures


def run(notebook_path: Path, output: Path) -> bool:
    notebook = nbformat.read(notebook_path, as_version=4)
    folder = output / notebook_path.stem
    folder.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    print(f"Running {notebook_path} ...", flush=True)
    succeeded = True
    try:
        NotebookClient(notebook, timeout=3600, kernel_name="python3",
                       resources={"metadata": {"path": str(notebook_path.parent)}}).execute()
    except CellExecutionError as error:
        succeeded = False
        print(f"  a cell failed:\n{str(error)[-2000:]}", file=sys.stderr)
    executed = folder / notebook_path.name
    nbformat.write(notebook, executed)
    figures = save_figures(notebook, folder)
    print(f"  {'done' if succeeded else 'FAILED'} in {time.perf_counter() - start:.0f} s")
    print(f"  executed notebook: {executed}")
    for figure in figures:
        print(f"  figure: {figure}")
    return succeeded


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("notebooks", nargs="+", type=Path)
    parser.add_argument("--output", type=Path, default=Path("output"))
    arguments = parser.parse_args()
    results = [run(path, arguments.output) for path in arguments.notebooks]
    sys.exit(0 if all(results) else 1)


if __name__ == "__main__":
    main()
