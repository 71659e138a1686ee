"""The checks' process: runs an assignment's checks on exported models; no student code runs here.

Reads one JSON line, {"assignment": name, "seed": n, "timeout_scale": s, "threads": n,
"cache": folder or null, "models": {key: {"model": base64 bytes} | {"error": why}}}, and writes one JSON line per
check, {"check": grade_id, "passed": bool, "message": str, "seconds": wall}, then {"done": true}. Started by
autograder/trusted.py under time and memory limits (sandbox.run_limited).
"""

import base64
import importlib
import json
import signal
import sys
import time

import torch


class CheckTimeout(BaseException):
    pass


def on_alarm(signum, frame):
    raise CheckTimeout


def main():
    header = json.loads(sys.stdin.buffer.readline())
    torch.set_num_threads(int(header.get("threads", 1)))
    lesson = importlib.import_module(f"autograder.checks.{header['assignment']}").lesson
    blobs = {}
    for key, value in header["models"].items():
        if isinstance(value, dict) and isinstance(value.get("model"), str):
            blobs[key] = base64.b64decode(value["model"], validate=True)
        elif isinstance(value, dict) and isinstance(value.get("error"), str):
            blobs[key] = value["error"]
    signal.signal(signal.SIGPROF, on_alarm)
    for grade_id, check in lesson.checks.items():
        seconds = max(1, int(check.timeout * header.get("timeout_scale", 1.0)))
        started = time.monotonic()
        try:
            signal.setitimer(signal.ITIMER_PROF, seconds)  # CPU seconds, not wall time next to a neighbour
            passed, message = lesson.run(grade_id, blobs, header["seed"], cache=header.get("cache"))
            signal.setitimer(signal.ITIMER_PROF, 0)
        except CheckTimeout:
            passed, message = False, f"took longer than {seconds} s"
        print(json.dumps({"check": grade_id, "passed": passed, "message": message,
                          "seconds": round(time.monotonic() - started, 3)}), flush=True)
    print(json.dumps({"done": True}), flush=True)


if __name__ == "__main__":
    main()
