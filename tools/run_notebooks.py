"""Execute notebooks headless and save the executed copies and their figures.

    python tools/run_notebooks.py --output output notebooks/*.ipynb

The budget is the notebooks' own default (demo on a CPU, full with CUDA) unless
DEEPNETS_BUDGET says otherwise. Figures are written as output/<notebook>/figure-<n>.png, and the
seconds each part of the notebook took (its cells under each `## ` heading, by the kernel's own
clock) as output/<notebook>/timings.json; --record gathers them into one file, which the
overviews print.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import sys
import time
from datetime import datetime
from pathlib import Path

import nbformat
import torch
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, DeadKernelError

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
from bench import machine  # noqa: E402  (CPU model, cores, torch: said once, in the benchmark)


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


def seconds_by_part(notebook: nbformat.NotebookNode) -> dict[str, float]:
    """Seconds of the code cells under each `## ` heading (the title's part before the first)."""
    parts, heading = {}, "(before the first part)"
    for cell in notebook.cells:
        if cell.cell_type == "markdown":
            found = [line[3:].strip() for line in cell.source.splitlines() if line.startswith("## ")]
            heading = found[0] if found else heading
            continue
        timing = cell.metadata.get("execution", {})
        started, ended = timing.get("iopub.execute_input"), timing.get("shell.execute_reply")
        if cell.cell_type == "code" and started and ended:
            seconds = (datetime.fromisoformat(ended.replace("Z", "+00:00"))
                       - datetime.fromisoformat(started.replace("Z", "+00:00"))).total_seconds()
            parts[heading] = round(parts.get(heading, 0.0) + seconds, 1)
    return parts


def data_source() -> str:
    """Which MNIST the notebooks load: the source that deepnets.load_mnist itself reports."""
    from deepnets import load_mnist

    return load_mnist().source


def run(notebook_path: Path, output: Path, stop_after: float | None = None, keep_going: bool = False) -> dict:
    """Execute one notebook cell by cell; a failed cell (unless `keep_going`), a dead kernel or
    `stop_after` seconds end it, and what ran so far is still saved and timed."""
    notebook = nbformat.read(notebook_path, as_version=4)
    folder = output / notebook_path.stem
    folder.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    print(f"Running {notebook_path} ...", flush=True)
    succeeded, stopped, failed_cells = True, None, []
    client = NotebookClient(notebook, timeout=3600, kernel_name="python3", record_timing=True,
                            resources={"metadata": {"path": str(notebook_path.parent)}})
    try:
        with client.setup_kernel():
            for index, cell in enumerate(notebook.cells):
                if stop_after is not None and time.perf_counter() - start > stop_after:
                    succeeded, stopped = False, f"stopped after {stop_after:.0f} s, before cell {index}"
                    break
                try:
                    client.execute_cell(cell, index, execution_count=client.code_cells_executed + 1)
                except CellExecutionError as error:
                    if not keep_going:
                        raise
                    succeeded = False
                    failed_cells.append(index)
                    print(f"  cell {index} failed (going on):\n{str(error)[-800:]}", file=sys.stderr)
    except CellExecutionError as error:
        succeeded = False
        print(f"  a cell failed:\n{str(error)[-2000:]}", file=sys.stderr)
    except DeadKernelError as error:
        succeeded, stopped = False, f"the kernel died: {error}"
    if stopped:
        print(f"  {stopped}", file=sys.stderr)
    seconds = time.perf_counter() - start
    executed = folder / notebook_path.name
    nbformat.write(notebook, executed)
    timings = {"notebook": notebook_path.name, "seconds": round(seconds, 1), "succeeded": succeeded,
               "seconds_by_part": seconds_by_part(notebook)}
    if stopped:
        timings["stopped"] = stopped
    if failed_cells:
        timings["failed_cells"] = failed_cells
    (folder / "timings.json").write_text(json.dumps(timings, indent=1) + "\n")
    figures = save_figures(notebook, folder)
    print(f"  {'done' if succeeded else 'FAILED'} in {seconds:.0f} s")
    print(f"  executed notebook: {executed}")
    for figure in figures:
        print(f"  figure: {figure}")
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("notebooks", nargs="+", type=Path)
    parser.add_argument("--output", type=Path, default=Path("output"))
    parser.add_argument("--record", type=Path, help="also add the timings to this JSON file, under "
                        "the data source and budget (benchmarks/results/demo_timings.json)")
    parser.add_argument("--stop-after", type=float, help="seconds after which a notebook stops at its next "
                        "cell, recorded as not finished with the parts it ran (for a machine lent briefly)")
    parser.add_argument("--keep-going", action="store_true", help="run the cells after a failed one "
                        "too (the notebook is still recorded as failed, with the failed cells' numbers)")
    arguments = parser.parse_args()
    start = time.perf_counter()
    results = [run(path, arguments.output, arguments.stop_after, arguments.keep_going)
               for path in arguments.notebooks]
    total = time.perf_counter() - start
    print(f"{len(results)} notebooks in {total:.0f} s ({total / 60:.1f} min)")
    if arguments.record:
        record = json.loads(arguments.record.read_text()) if arguments.record.exists() else {}
        budget = os.environ.get("DEEPNETS_BUDGET") or "default (demo on a CPU, full with CUDA)"
        record[f"{data_source()}, budget {budget}"] = {
            "machine": machine("cuda" if torch.cuda.is_available() else "cpu"), "seconds": round(total, 1),
            "notebooks": results}
        arguments.record.write_text(json.dumps(record, indent=1) + "\n")
    sys.exit(0 if all(r["succeeded"] for r in results) else 1)


if __name__ == "__main__":
    main()
