"""Inside fresh mount, network and PID namespaces (as root): build a private root, drop to a plain user, exec.

    unshare --mount --net --pid --fork python -I -S sandbox_enter.py CONFIG.json

Run by autograder/sandbox.py, never by hand. Standard library only (it runs with -I -S).
"""

import ctypes
import fcntl
import json
import os
import resource
import signal
import socket
import struct
import sys

MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 32, 4096, 16384, 1 << 18
DEVICES = ("null", "zero", "full", "random", "urandom")

PR_SET_PDEATHSIG = 1

libc = ctypes.CDLL(None, use_errno=True)
libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]


def die_with_parent() -> None:
    """Linux: this process is killed when the one that started it dies (an interrupted run).
    Also used by autograder/sandbox.py and autograder/zygote.py."""
    if sys.platform == "linux":
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def apply_rlimits(values: dict) -> None:
    """Set each limit (resource.RLIMIT_* name -> value), soft and hard. Also used by
    autograder/sandbox.py (new processes) and autograder/zygote.py (forked checks' runs)."""
    for name, value in values.items():
        resource.setrlimit(getattr(resource, name), (value, value))


def mount(source, target, fstype, flags, data=None):
    encode = lambda s: s.encode() if isinstance(s, str) else s  # noqa: E731
    if libc.mount(encode(source), encode(target), encode(fstype), flags, encode(data)) != 0:
        error = ctypes.get_errno()
        raise OSError(error, f"mount {source} on {target}: {os.strerror(error)}")


def bind(source, target, readonly=True, recursive=True):
    if os.path.isdir(source):
        os.makedirs(target, exist_ok=True)
    else:
        os.makedirs(os.path.dirname(target), exist_ok=True)
        open(target, "a").close()
    flags = MS_BIND | (MS_REC if recursive else 0)
    mount(source, target, None, flags)
    if readonly:
        mount(None, target, None, flags | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV)


def loopback_up():
    """Only the loopback interface exists in the new network namespace; a kernel needs it up."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        request = struct.pack("16sH", b"lo", 0)
        flags = struct.unpack("16sH", fcntl.ioctl(s, 0x8913, request))[1]   # SIOCGIFFLAGS
        fcntl.ioctl(s, 0x8914, struct.pack("16sH", b"lo", flags | 1))       # SIOCSIFFLAGS, IFF_UP


def enter(config: dict) -> None:
    """Build the private root `config` describes, enter it, and become its unprivileged user.

    Also run by autograder/zygote.py's warm sandboxes, in a process forked into new namespaces."""
    root, uid = config["root"], config["uid"]
    mount(None, "/", None, MS_REC | MS_PRIVATE)  # nothing below propagates to the host
    os.makedirs(root, exist_ok=True)
    mount("tmpfs", root, "tmpfs", MS_NOSUID | MS_NODEV, "size=16m,mode=755")
    # The private, writable folders first, so that read-only binds of folders inside them (a
    # course checked out under /tmp, its venv) land on top instead of being hidden by them.
    size = config["disk_bytes"]
    for path, mode in (("/dev/shm", "1777"), ("/tmp", "1777"), ("/home/student", "700")):
        os.makedirs(root + path, exist_ok=True)
        mount("tmpfs", root + path, "tmpfs", MS_NOSUID | MS_NODEV,
              f"size={size},mode={mode},uid={uid},gid={uid}")
    for name in os.listdir(config["home_source"]):
        with open(os.path.join(config["home_source"], name), "rb") as source, \
                open(f"{root}/home/student/{name}", "wb") as target:
            target.write(source.read())
        os.chown(f"{root}/home/student/{name}", uid, uid)
    for path in config["readonly"]:
        if os.path.islink(path) and not os.path.exists(root + path):
            os.makedirs(os.path.dirname(root + path), exist_ok=True)
            os.symlink(os.readlink(path), root + path)       # /bin -> usr/bin on merged systems
        elif os.path.exists(path):
            bind(path, root + path)
    for path in config["hidden"]:
        if os.path.isdir(root + path):
            mount("tmpfs", root + path, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV, "size=4k,mode=555")
    os.makedirs(root + "/dev", exist_ok=True)
    mount("tmpfs", root + "/dev", "tmpfs", MS_NOSUID, "size=64k,mode=755")
    for device in DEVICES:
        bind("/dev/" + device, f"{root}/dev/{device}", readonly=False, recursive=False)
    os.makedirs(root + "/proc", exist_ok=True)
    mount("proc", root + "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    loopback_up()
    mount(None, root, None, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV)
    os.chroot(root)
    os.chdir("/home/student")
    apply_rlimits(config["rlimits"])
    os.setgroups([])
    os.setgid(uid)
    os.setuid(uid)  # from here on: no capabilities, and RLIMIT_NPROC applies


def main():
    config = json.load(open(sys.argv[1]))
    enter(config)
    os.execve(config["argv"][0], config["argv"], config["env"])


if __name__ == "__main__":
    main()
