"""Warm starts for the grader's per-submission processes: PyTorch imported once, each run forked.

Each submission gets two processes of its own (autograder/trusted.py): the sandbox that runs its
answer cells and exports its models, and the checks' process. Started as new Pythons, each spent
about 1.5 s of CPU importing PyTorch before doing anything, on every submission. A zygote imports
it once and forks every run from itself. What a run then is, and how it starts:

* `checks` (started as `python -m autograder.zygote checks FD` with the grader's environment):
  a run is what `python -m autograder.check_worker` would be: its own session, the run's
  environment (GRADER_SECRET included) and working folder, its cgroup and rlimits. It imports
  the course's own modules after the fork, as they are on disk then. No student code runs
  here: it reads the student's exported models as data (autograder/graphs.py).
* `sandbox` (started as `python -I zygote.py sandbox FD` with the sandbox's clean environment):
  a run is what `unshare --mount --net --pid --fork ... sandbox_enter.py` followed by
  `python -I sandbox_runtime/exporting.py` would be: new mount, network and PID namespaces, the
  same private root, rlimits and unprivileged user (sandbox_enter.enter), every other file
  descriptor closed, then exporting.main(). This zygote never holds anything of the grader's:
  its environment is the sandbox's, and it has imported only PyTorch, numpy and exporting.py,
  and exported one small model of its own (warm_up).

Both are single-threaded, so forking them is safe. A run's CPU time, rlimits and itimers start
from zero at its fork, as a new process's do.

Protocol, on the SOCK_SEQPACKET socket whose fd is the last argument: each message is one JSON
request with four file descriptors: the run's stdin, stdout, stderr and a status pipe. A
supervisor forked for the request starts the run, writes its pid (as the grader sees it) on the
status pipe, waits for it, and writes its exit code as subprocess reports it (negative: a
signal), one line each. A zygote exits when the grader's end of the socket closes.
"""

import ctypes
import json
import os
import resource
import signal
import socket
import sys
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
RUNTIME = os.path.join(HERE, "sandbox_runtime")
if __package__:     # python -m autograder.zygote: the checks' zygote
    from autograder.sandbox_enter import apply_rlimits, die_with_parent, libc
else:               # python -I zygote.py: the sandbox's, whose -I leaves this folder off sys.path
    sys.path[:0] = [RUNTIME, HERE]
    from sandbox_enter import apply_rlimits, die_with_parent, libc
PR_SET_DUMPABLE = 4
CLONE_NEWNS, CLONE_NEWPID, CLONE_NEWNET = 0x00020000, 0x20000000, 0x40000000


def join_cgroup(request: dict) -> None:
    for procs in request.get("cgroup", []):
        with open(procs, "w") as file:
            file.write("0")          # "the writing process", in any PID namespace


def take_fds(stdin: int, stdout: int, stderr: int) -> None:
    for fd, target in ((stdin, 0), (stdout, 1), (stderr, 2)):
        os.dup2(fd, target)
    os.closerange(3, resource.getrlimit(resource.RLIMIT_NOFILE)[0])


def finish(body) -> None:
    """Run `body` as a process's whole life: exit with its status, as `python` would."""
    code = 0
    try:
        body()
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else 1
    except BaseException:             # noqa: B036  (reported as a new process would)
        traceback.print_exc()
        code = 1
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


def run_checks(request: dict, fds) -> None:
    os.setsid()                       # its own process group: the grader kills the group at the end
    die_with_parent()
    join_cgroup(request)
    take_fds(*fds)
    os.environ.clear()
    os.environ.update(request["env"])
    os.chdir(request["cwd"])
    sys.path[0] = request["cwd"]      # as `python -m` started there has it
    apply_rlimits(request["rlimits"])

    def body():
        from autograder import check_worker

        check_worker.main()
    finish(body)


def run_sandboxed(request: dict, fds) -> None:
    import sandbox_enter

    os.setsid()
    die_with_parent()
    join_cgroup(request)
    take_fds(*fds)
    config = request["config"]
    sandbox_enter.enter(config)       # private root, rlimits, unprivileged user
    libc.prctl(PR_SET_DUMPABLE, 1)    # as after an exec: its own /proc entries are its own
    os.environ.clear()
    os.environ.update(config["env"])
    sys.argv = [os.path.join(RUNTIME, "exporting.py")]
    sys.path[:] = [RUNTIME] + [path for path in sys.path if path not in (HERE, RUNTIME)]
    sys.path_importer_cache.clear()
    finish(sys.modules["exporting"].main)


def supervise(kind: str, request: dict, fds: list[int]) -> None:
    """In the fork that owns one run: start it, say its pid, wait for it, say how it ended."""
    stdin, stdout, stderr, status = fds
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    die_with_parent()
    if kind == "sandbox" and libc.unshare(CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWPID) != 0:
        error = ctypes.get_errno()
        os.write(stderr, f"unshare: {os.strerror(error)}\n".encode())
        os._exit(1)
    pid = os.fork()
    if pid == 0:                      # in the sandbox's new PID namespace, its process 1
        os.close(status)
        (run_sandboxed if kind == "sandbox" else run_checks)(request, (stdin, stdout, stderr))
    for fd in (stdin, stdout, stderr):
        os.close(fd)
    os.write(status, f"{pid}\n".encode())
    _, wait_status = os.waitpid(pid, 0)
    os.write(status, f"{os.waitstatus_to_exitcode(wait_status)}\n".encode())
    os._exit(0)


def warm_up(exporting) -> None:
    """Export a small model of our own once: torch.export's first use in a process loads and
    initialises about 2 s of machinery, which every forked run then finds ready. Single-threaded,
    like everything before a fork here."""
    from torch import nn

    torch = sys.modules["torch"]
    torch.set_num_threads(1)
    model = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.BatchNorm2d(2), nn.ReLU(),
                          nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2, 2))
    exporting.export_model(model, torch.randn(2, 1, 8, 8))


def main():
    kind, channel = sys.argv[1], socket.socket(fileno=int(sys.argv[2]))
    import numpy  # noqa: F401  (once, for every run)
    import torch  # noqa: F401

    if kind == "sandbox":
        import exporting
        import sandbox_enter  # noqa: F401

        warm_up(exporting)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)    # supervisors are reaped by the kernel
    while True:
        try:
            message, fds, _, _ = socket.recv_fds(channel, 1 << 20, 4)
        except (OSError, ValueError):
            break
        if not message:
            break                                       # the grader closed its end
        try:
            request = json.loads(message)
            if len(fds) != 4:
                raise ValueError(f"expected 4 file descriptors, got {len(fds)}")
        except ValueError as error:
            print(f"zygote: bad request: {error}", file=sys.stderr)
            for fd in fds:
                os.close(fd)
            continue
        if os.fork() == 0:
            channel.close()
            supervise(kind, request, fds)
        for fd in fds:
            os.close(fd)


if __name__ == "__main__":
    main()
