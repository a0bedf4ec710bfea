"""The walls around a student's kernel, put up just before it starts.

``python -m autograder.grading.sandbox SPEC -- COMMAND...`` applies what the JSON file SPEC
asks for, as far as the operating system allows, then executes COMMAND (the kernel):

- resource limits: address space (``memory``), size of any file written (``file_size``),
  number of processes and threads (``processes``), no core dumps;
- a user and network namespace of its own: no network interface but a loopback that is down
  (Linux with unprivileged user namespaces);
- Landlock (Linux 5.13 and later): files can be read only under ``read`` and written only
  under ``write``; no TCP at all; no signals to processes outside the sandbox, and no
  abstract Unix sockets outside it.

What was applied is written to ``report`` (a JSON file) before COMMAND starts, so the
grader can say which walls stood.
"""
from __future__ import annotations

import ctypes
import json
import os
import resource
import sys

# --------------------------------------------------------------------------- Landlock (uapi)
_SYS = {"x86_64": (444, 445, 446), "aarch64": (444, 445, 446)}
_FS_ABI = {1: (1 << 13) - 1, 2: (1 << 14) - 1, 3: (1 << 15) - 1, 4: (1 << 15) - 1,
           5: (1 << 16) - 1}
_READ = (1 << 0) | (1 << 2) | (1 << 3)  # execute, read_file, read_dir
_FILE_ONLY = (1 << 0) | (1 << 1) | (1 << 2) | (1 << 14) | (1 << 15)  # rights a file can have
_DEV = _READ | (1 << 1) | (1 << 14) | (1 << 15)  # devices: read, write, truncate, ioctl


class _Ruleset(ctypes.Structure):
    _fields_ = [("fs", ctypes.c_uint64), ("net", ctypes.c_uint64), ("scoped", ctypes.c_uint64)]


class _PathBeneath(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


def _libc():
    return ctypes.CDLL(None, use_errno=True)


def landlock_abi():
    """The Landlock ABI version of the running kernel (0 when there is none)."""
    nums = _SYS.get(os.uname().machine)
    if nums is None:
        return 0
    r = _libc().syscall(nums[0], None, ctypes.c_size_t(0), ctypes.c_uint32(1))
    return max(int(r), 0)


def landlock(read, write, devices=("/dev",)):
    """Restrict this process (and all it starts) to reading ``read`` and writing ``write``,
    with no TCP, no signals out and no abstract sockets out. Returns the ABI used, or 0."""
    abi = landlock_abi()
    if abi < 1:
        return 0
    create, add_rule, restrict = _SYS[os.uname().machine]
    libc = _libc()
    fs = _FS_ABI[min(abi, 5)]
    attr = _Ruleset(fs, 3 if abi >= 4 else 0, 3 if abi >= 6 else 0)
    size = ctypes.sizeof(_Ruleset) if abi >= 6 else (16 if abi >= 4 else 8)
    fd = libc.syscall(create, ctypes.byref(attr), ctypes.c_size_t(size), ctypes.c_uint32(0))
    if fd < 0:
        return 0
    try:
        rules = [(p, _READ) for p in read] + [(p, fs) for p in write] + \
                [(p, _DEV) for p in devices]
        for path, rights in rules:
            try:
                pfd = os.open(path, os.O_PATH | os.O_CLOEXEC)
            except OSError:
                continue  # a path this system lacks
            try:
                if not os.path.isdir(path):
                    rights &= _FILE_ONLY
                rule = _PathBeneath(rights & fs, pfd)
                libc.syscall(add_rule, fd, 1, ctypes.byref(rule), 0)
            finally:
                os.close(pfd)
        if libc.prctl(38, 1, 0, 0, 0) != 0:  # PR_SET_NO_NEW_PRIVS, required by Landlock
            return 0
        if libc.syscall(restrict, fd, 0) != 0:
            return 0
    finally:
        os.close(fd)
    return abi


# --------------------------------------------------------------------------- namespaces
def private_network():
    """Move into a user namespace and a network namespace of our own; True on success."""
    uid, gid = os.getuid(), os.getgid()
    if _libc().unshare(0x10000000 | 0x40000000) != 0:  # CLONE_NEWUSER | CLONE_NEWNET
        return False
    try:  # keep our own uid and gid inside (files we create stay ours)
        with open("/proc/self/setgroups", "w") as f:
            f.write("deny")
        with open("/proc/self/uid_map", "w") as f:
            f.write(f"{uid} {uid} 1")
        with open("/proc/self/gid_map", "w") as f:
            f.write(f"{gid} {gid} 1")
    except OSError:
        pass
    return True


def limit(name, value):
    """Lower the soft and hard limit ``name`` (resource.RLIMIT_*) to ``value``; True if set."""
    try:
        resource.setrlimit(name, (value, value))
        return True
    except (ValueError, OSError):
        return False


def apply(spec):
    """Put up the walls ``spec`` asks for; returns what was applied."""
    done = {}
    _libc().prctl(1, 9, 0, 0, 0)  # PR_SET_PDEATHSIG: the kernel dies with the grader's process
    if spec.get("network") is False:
        done["network namespace"] = private_network()
    for key, rlimit in (("memory", resource.RLIMIT_AS), ("file_size", resource.RLIMIT_FSIZE),
                        ("processes", resource.RLIMIT_NPROC)):
        if spec.get(key):
            done[key] = limit(rlimit, int(spec[key]))
    limit(resource.RLIMIT_CORE, 0)
    if spec.get("read") is not None:
        done["landlock"] = landlock(spec["read"], spec.get("write", []))
    return done


def main(argv):
    if "--" not in argv or argv.index("--") != 1:
        sys.exit("usage: python -m autograder.grading.sandbox SPEC -- COMMAND...")
    with open(argv[0]) as f:
        spec = json.load(f)
    command = argv[2:]
    done = apply(spec)
    if spec.get("report"):
        try:
            with open(spec["report"], "w") as f:
                json.dump(done, f)
        except OSError:
            pass
    os.execvpe(command[0], command, spec.get("env") or dict(os.environ))


if __name__ == "__main__":
    main(sys.argv[1:])
