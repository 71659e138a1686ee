"""Inside the sandbox: execute a student notebook (hidden tests already removed), report outputs.

Reads one JSON header line ({"timeout": seconds a cell, "kernel": name}) then the notebook.
Writes JSON lines to the stdout it started with: {"index": i, "outputs": [...], "count": n}
for each cell as it finishes, then {"done": true} or {"stopped": i, "error": "..."}.
Outputs are only shown to graders and in feedback; no grade is decided from them.
"""

import json
import os
import sys

import nbformat
from nbclient import NotebookClient

_write, _dumps = os.write, json.dumps


def emit(record):
    data = (_dumps(record) + "\n").encode()
    while data:
        data = data[_write(RESULTS, data):]


class CellTimeoutError(RuntimeError):
    """A cell ran past its time limit: the error its output shows, and what stops a stuck kernel's run."""


def main():
    global RESULTS
    header = json.loads(sys.stdin.buffer.readline())
    notebook = nbformat.reads(sys.stdin.buffer.read().decode(), as_version=4)
    RESULTS = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    current = {"index": -1, "timeouts_in_a_row": 0}

    def on_cell_start(cell, cell_index):
        current["index"] = cell_index

    def on_cell_executed(cell, cell_index, execute_reply):
        emit({"index": cell_index, "outputs": cell.get("outputs", []),
              "count": cell.get("execution_count")})
        # A stopped cell is interrupted and the run goes on. When the next cell times out too,
        # the kernel ignored the interrupt (a student's signal handler): every later cell would
        # wait out its timeout in turn, so the run stops here.
        timed_out = (execute_reply or {}).get("content", {}).get("ename") == CellTimeoutError.__name__
        current["timeouts_in_a_row"] = current["timeouts_in_a_row"] + 1 if timed_out else 0
        if current["timeouts_in_a_row"] >= 2:
            raise CellTimeoutError("the kernel kept running after its cell was interrupted")

    client = NotebookClient(
        notebook, timeout=header["timeout"], kernel_name=header["kernel"], allow_errors=True,
        interrupt_on_timeout=True, startup_timeout=120, record_timing=False,
        extra_arguments=["--HistoryManager.hist_file=:memory:"],
        error_on_timeout={"ename": CellTimeoutError.__name__, "evalue": "",
                          "traceback": [f"{CellTimeoutError.__name__}: the cell ran longer than "
                                        f"{header['timeout']} s and was stopped"]},
        resources={"metadata": {"path": os.getcwd()}},
        on_cell_start=on_cell_start, on_cell_executed=on_cell_executed)
    try:
        client.execute()
        emit({"done": True})
    except BaseException as error:  # noqa: B036 (a dead kernel, a timeout while starting)
        emit({"stopped": current["index"], "error": f"{type(error).__name__}: {str(error)[:300]}"})
    os._exit(0)


if __name__ == "__main__":
    main()
