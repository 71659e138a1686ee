"""Runs forked from a warm zygote (autograder/zygote.py) are what new processes would be.

A zygote imports PyTorch once; each run is forked from it instead of started as a new Python.
Here, for the checks' process: a forked run computes what a new process computes, holds the same
limits, dies with its run; a zygote is replaced when its code changes on disk and does not
outlive the grader that started it. The sandbox's isolation tests (tests/test_sandbox.py) run
both ways too.
"""

import base64
import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

import hostile_submissions as hostile
from autograder.checks.session07_residual_cnn import lesson
from autograder.sandbox import CHECK_WORKER, RUNTIME, WARM_VARIABLE, Limits, run_limited

sys.path.insert(0, str(RUNTIME))
from exporting import build as build_model, export_model  # noqa: E402  (what the sandbox runs, here on trusted code)


def exported(answers: dict[str, str], keys) -> dict:
    """The check worker's "models" for `answers`: the builds in `keys` exported, the others missing."""
    namespace = {"__name__": "__main__"}
    exec(lesson.preamble, namespace)
    for grade_id in lesson.answer_cells:
        exec(answers.get(grade_id, ""), namespace)
    models = {}
    for spec in (build.spec() for build in lesson.builds()):
        if spec["key"] in keys:
            model, example = build_model(namespace, spec)
            models[spec["key"]] = {"model": base64.b64encode(export_model(model, example)).decode()}
        else:
            models[spec["key"]] = {"error": "it was not exported"}
    return models



def header(models, cache=None) -> bytes:
    return json.dumps({"assignment": lesson.name, "seed": 7, "models": models, "timeout_scale": 1.0,
                       "cache": cache, "threads": 1}).encode() + b"\n"


def verdicts(result) -> list[dict]:
    records = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    return [{k: v for k, v in record.items() if k != "seconds"} for record in records]


BLOCKS = {"ResidualBlock(8)", "ResidualBlock(32)", "ResidualBlock(1)", "ResidualBlock(3)", "ResidualBlock(4)"}


def test_a_warm_run_gives_exactly_the_verdicts_of_a_new_process(monkeypatch):
    stdin = header(exported(hostile.BASE, BLOCKS))
    warm = run_limited(CHECK_WORKER, stdin=stdin)
    monkeypatch.setenv(WARM_VARIABLE, "0")
    cold = run_limited(CHECK_WORKER, stdin=stdin)
    assert "+warm" in warm.isolation and "+warm" not in cold.isolation
    assert warm.returncode == cold.returncode == 0, (warm.stderr[-500:], cold.stderr[-500:])
    assert verdicts(warm) == verdicts(cold)
    passed = {v["check"] for v in verdicts(warm) if v.get("passed")}
    assert passed and not passed & {"block_skip_connection", "cnn_learns_mnist"}   # BASE has no skip


def test_a_warm_run_holds_its_cpu_limit_and_is_killed_at_its_wall_time():
    """BASE's CNN trains for seconds: one CPU second ends it by SIGXCPU (an rlimit set after the
    fork); a one-second wall limit kills its process group."""
    stdin = header(exported(hostile.BASE, {"ResidualCNN()"}))
    by_cpu = run_limited(CHECK_WORKER, stdin=stdin, limits=Limits(cpu_seconds=1, wall_seconds=120))
    assert "+warm" in by_cpu.isolation
    # The rlimit's SIGKILL or SIGXCPU, or the grader's kill when its cgroup poll sees it first.
    assert by_cpu.returncode in (-signal.SIGKILL, -signal.SIGXCPU), by_cpu
    assert by_cpu.killed in (None, "CPU time over 1 s") and b'"done"' not in by_cpu.stdout
    started = time.monotonic()
    by_wall = run_limited(CHECK_WORKER, stdin=stdin, limits=Limits(wall_seconds=1))
    assert by_wall.killed == "wall time over 1 s" and by_wall.returncode == -9
    assert time.monotonic() - started < 30


def test_a_malformed_request_fails_as_a_new_process_would():
    result = run_limited(CHECK_WORKER, stdin=b"not json\n")
    assert "+warm" in result.isolation
    assert result.returncode == 1 and b"JSONDecodeError" in result.stderr
    assert result.problem.startswith("the process exited with status 1")


def test_the_zygote_ends_with_the_grader_that_started_it():
    script = ("import json, sys\n"
              "from autograder.sandbox import CHECK_WORKER, _zygotes, run_limited\n"
              "run_limited(CHECK_WORKER, stdin=b'not json\\n')\n"
              "print(_zygotes['checks']['process'].pid)\n")
    grader = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                            cwd=str(RUNTIME.parent.parent))
    assert grader.returncode == 0, grader.stderr[-2000:]
    zygote = int(grader.stdout.split()[-1])
    for _ in range(100):
        try:
            os.kill(zygote, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    pytest.fail(f"the check zygote {zygote} outlived its grader")


def test_a_zygote_whose_code_changed_on_disk_is_replaced_and_its_runs_in_flight_finish():
    """A class being graded while someone edits the grader: runs already forked from the old
    zygote end normally (no grade lost); new runs come from a zygote with the new code."""
    import threading

    from autograder import sandbox

    training = header(exported(hostile.BASE, {"ResidualCNN()"}))    # seconds of the grader's training
    run_limited(CHECK_WORKER, stdin=b"not json\n")
    before = sandbox._zygotes["checks"]["process"]
    in_flight = {}
    thread = threading.Thread(target=lambda: in_flight.update(result=run_limited(CHECK_WORKER, stdin=training)))
    thread.start()
    time.sleep(0.5)
    code = sandbox.HERE / "zygote.py"
    stat = code.stat()
    os.utime(code, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    try:
        result = run_limited(CHECK_WORKER, stdin=b"not json\n")
    finally:
        os.utime(code, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    thread.join()
    assert "+warm" in result.isolation and sandbox._zygotes["checks"]["process"] is not before
    finished = in_flight["result"]
    assert finished.returncode == 0 and b'"done": true' in finished.stdout, finished
