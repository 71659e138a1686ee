"""Inside the sandbox: execute a student notebook (hidden tests already removed), report outputs.

Reads one JSON header line ({"timeout": seconds a cell, "kernel": name, "output_bytes": n})
then the notebook. Writes JSON lines to the stdout it started with: {"kernel": seconds} when the
kernel is ready, {"index": i, "outputs": [...], "count": n, "seconds": s} for each cell as it
finishes, then {"done": true, "seconds": s} or {"stopped": i, "error": "..."}. Seconds count from
this script's start and are for the grading benchmark's breakdown only. Outputs are only shown to
graders and in feedback; no grade is decided from them.
"""

import time

STARTED = time.monotonic()  # before the imports: they are part of starting the kernel

import json  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402

import nbformat  # noqa: E402
from nbclient import NotebookClient  # noqa: E402

_write, _dumps = os.write, json.dumps


def emit(record):
    data = (_dumps(record) + "\n").encode()
    while data:
        data = data[_write(RESULTS, data):]


class CellTimeoutError(RuntimeError):
    """A cell ran past its time limit: the error its output shows, and what stops a stuck kernel's run."""


# How long an interrupted kernel may take to answer again (a long tensor operation finishes first).
INTERRUPT_GRACE_SECONDS = 5


class OutputLimitError(RuntimeError):
    """The notebook's outputs passed what the grader reads back: the run stops at once."""


class CappedClient(NotebookClient):
    """A NotebookClient that stops the run as soon as the outputs pass `output_left` bytes.

    Output reaches this process as the kernel prints it, but is reported only when a cell ends:
    without a cap, a cell printing gigabytes held its worker (and its memory) until the cell's
    timeout, then the next cell printed again.
    """

    output_left = 0       # bytes
    on_limit = None

    def output(self, outs, msg, display_id, cell_index):
        self.output_left -= len(str(msg.get("content", "")))
        if self.output_left < 0:
            self.on_limit(cell_index)
        return super().output(outs, msg, display_id, cell_index)


def main():
    global RESULTS
    header = json.loads(sys.stdin.buffer.readline())
    notebook = nbformat.reads(sys.stdin.buffer.read().decode(), as_version=4)
    RESULTS = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    current = {"index": -1}

    said = f"the cell ran longer than {header['timeout']} s and was stopped"
    timeout_error = {"ename": CellTimeoutError.__name__, "evalue": said,
                     "traceback": [f"{CellTimeoutError.__name__}: {said}"]}

    def since_start() -> float:
        return round(time.monotonic() - STARTED, 3)

    def on_notebook_start(notebook):
        emit({"kernel": since_start()})

    def on_cell_start(cell, cell_index):
        current["index"], current["started"] = cell_index, time.monotonic()

    async def on_cell_executed(cell, cell_index, execute_reply):
        timed_out = (execute_reply or {}).get("content", {}).get("ename") == CellTimeoutError.__name__
        stopped = [{"output_type": "error", **timeout_error}] if timed_out else []   # said in the cell
        emit({"index": cell_index, "outputs": cell.get("outputs", []) + stopped,
              "count": cell.get("execution_count"), "seconds": round(time.monotonic() - current["started"], 3)})
        # A stopped cell is interrupted and the run goes on, once the kernel answers again. A
        # kernel that ignores the interrupt (a student's signal handler) never does: every later
        # cell would wait out its timeout in turn, so the run stops here.
        if timed_out:
            try:
                await client.kc.kernel_info(reply=True, timeout=INTERRUPT_GRACE_SECONDS)
            except TimeoutError:
                raise CellTimeoutError("the kernel kept running after its cell was interrupted") from None

    def on_output_limit(cell_index):
        limit = header["output_bytes"] // 2**20
        emit({"stopped": cell_index, "error": f"{OutputLimitError.__name__}: more than {limit} MiB of output"})
        os._exit(0)

    client = CappedClient(
        notebook, timeout=header["timeout"], kernel_name=header["kernel"], allow_errors=True,
        interrupt_on_timeout=True, startup_timeout=120, record_timing=False,
        extra_arguments=["--HistoryManager.hist_file=:memory:"],
        error_on_timeout=timeout_error,
        resources={"metadata": {"path": os.getcwd()}},
        on_notebook_start=on_notebook_start, on_cell_start=on_cell_start, on_cell_executed=on_cell_executed)
    # Half the sandbox's cap: what is reported (JSON-escaped) must still fit in it.
    client.output_left, client.on_limit = header["output_bytes"] // 2, on_output_limit
    try:
        client.execute()
        emit({"done": True, "seconds": since_start()})
    except BaseException as error:  # noqa: B036 (a dead kernel, a timeout while starting)
        emit({"stopped": current["index"], "error": f"{type(error).__name__}: {str(error)[:300]}"})
    os._exit(0)


if __name__ == "__main__":
    main()
