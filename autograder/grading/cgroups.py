"""A cgroup per kernel: limits on memory and processes that count everything the kernel
started, however it detached itself, and a kill that leaves nothing behind.

Linux's cgroup v1 (the memory and pids controllers, each a hierarchy of its own) or v2 (one
hierarchy). The kernels' groups are made under ``autograder`` in the grader's own group
(v1), or under ``$AUTOGRADER_CGROUP`` (a v2 folder delegated to the grader, with the memory
and pids controllers enabled for its children), or ``/sys/fs/cgroup/autograder`` when the
grader is root (v2). Where none is writable, ``create`` returns None and the grader says that
the wall is missing (``support``).
"""
from __future__ import annotations

import os
import secrets
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

CONTROLLERS = ("memory", "pids")
PREFIX = "ag-"  # the kernels' groups: ag-<token>


def _mounts():
    """[(mount point, fs type, super options)] of the cgroup file systems."""
    out = []
    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return out
    for line in lines:
        left, _, right = line.partition(" - ")
        fields, rest = left.split(), right.split()
        if len(fields) >= 5 and len(rest) >= 3 and rest[0] in ("cgroup", "cgroup2"):
            out.append((fields[4].replace("\\040", " "), rest[0], set(rest[2].split(","))))
    return out


def _own_paths():
    """{controller or '' (v2): this process's cgroup path} from /proc/self/cgroup."""
    out = {}
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return out
    for line in lines:
        _, ctrls, path = line.split(":", 2)
        for c in ctrls.split(",") if ctrls else [""]:
            out[c] = path
    return out


def _writable_dir(path):
    try:
        path.mkdir(exist_ok=True)
    except OSError:
        return False
    return os.access(path, os.W_OK)


def bases():
    """(version, {controller: folder under which the kernels' groups are made}), or
    (0, reason) when this machine gives the grader no usable cgroup."""
    mounts, own = _mounts(), _own_paths()
    v1 = {c: m for m, t, opts in mounts if t == "cgroup" for c in CONTROLLERS if c in opts}
    if all(c in v1 for c in CONTROLLERS):
        out = {c: Path(v1[c] + own.get(c, "/")) / "autograder" for c in CONTROLLERS}
        if all(_writable_dir(p) for p in out.values()):
            return 1, out
    v2 = next((m for m, t, _ in mounts if t == "cgroup2"), None)
    if v2 is not None:
        base = Path(os.environ["AUTOGRADER_CGROUP"]) if os.environ.get("AUTOGRADER_CGROUP") \
            else (Path(v2) / "autograder" if os.geteuid() == 0 else None)
        if base is not None and _v2_ready(Path(v2), base):
            return 2, {"": base}
    if not mounts:
        return 0, "no cgroup file system is mounted"
    return 0, ("no writable cgroup with the memory and pids controllers (cgroup v1 needs "
               "root; for v2 set AUTOGRADER_CGROUP to a delegated folder)")


def _v2_ready(mount, base):
    """Whether ``base`` exists (or can be made) with memory and pids for its children."""
    try:
        if not base.exists():
            parent = (mount / base.relative_to(mount)).parent
            _enable(parent)
            base.mkdir()
        _enable(base)
        return set(CONTROLLERS) <= set((base / "cgroup.subtree_control").read_text().split())
    except (OSError, ValueError):
        return False


def _enable(folder):
    have = set((folder / "cgroup.subtree_control").read_text().split())
    missing = [c for c in CONTROLLERS if c not in have]
    if missing:
        (folder / "cgroup.subtree_control").write_text(" ".join(f"+{c}" for c in missing))


_BASES = None


def _cached_bases():
    global _BASES
    if _BASES is None:
        _BASES = bases()
    return _BASES


def support():
    """(whether kernels get cgroups here, why not: words for the instructor, '' when they do),
    probed once per process."""
    version, info = _cached_bases()
    return bool(version), "" if version else info


@dataclass
class Cgroup:
    """The cgroup of one kernel: ``folders`` (controller -> folder; '' for v2)."""
    version: int
    folders: dict = field(default_factory=dict)

    @classmethod
    def create(cls, memory, processes):
        """A new group limited to ``memory`` bytes (None: no limit) and ``processes``
        tasks; None when this machine has no usable cgroup."""
        version, info = _cached_bases()
        if not version:
            return None
        name = PREFIX + secrets.token_hex(6)
        group = cls(version, {c: str(base / name) for c, base in info.items()})
        try:
            for folder in group.folders.values():
                os.mkdir(folder)
            group._limit(memory, processes)
        except OSError:
            group.remove()
            return None
        return group

    def _file(self, controller, name):
        folder = self.folders["" if self.version == 2 else controller]
        return Path(folder) / name

    def _limit(self, memory, processes):
        if self.version == 1:
            if memory:
                self._file("memory", "memory.limit_in_bytes").write_text(str(memory))
                swap = self._file("memory", "memory.memsw.limit_in_bytes")
                if swap.exists():  # no swap beyond the limit either
                    swap.write_text(str(memory))
            self._file("pids", "pids.max").write_text(str(processes))
        else:
            if memory:
                self._file("memory", "memory.max").write_text(str(memory))
                swap = self._file("memory", "memory.swap.max")
                if swap.exists():
                    swap.write_text("0")
            self._file("pids", "pids.max").write_text(str(processes))

    def procs_files(self):
        """The cgroup.procs files a process writes its pid into to join the group."""
        return [str(Path(f) / "cgroup.procs") for f in self.folders.values()]

    def members(self):
        """The pids in the group (as the grader sees them)."""
        pids = set()
        for f in self.folders.values():
            try:
                pids.update(int(p) for p in (Path(f) / "cgroup.procs").read_text().split())
            except (OSError, ValueError):
                continue
        return sorted(pids)

    def oom_kills(self):
        """How many processes of the group the kernel killed for its memory limit."""
        name = "memory.oom_control" if self.version == 1 else "memory.events"
        try:
            for line in self._file("memory", name).read_text().splitlines():
                key, _, value = line.partition(" ")
                if key == "oom_kill":
                    return int(value)
        except (OSError, ValueError):
            pass
        return 0

    def peak(self):
        """The most memory the group used, in bytes (None when the kernel does not say)."""
        name = "memory.max_usage_in_bytes" if self.version == 1 else "memory.peak"
        try:
            return int(self._file("memory", name).read_text())
        except (OSError, ValueError):
            return None

    def kill(self, wait=5.0):
        """SIGKILL every process of the group, until none is left (or ``wait`` s passed:
        with 0, one round of kills)."""
        deadline = time.monotonic() + wait
        kill_file = self._file("pids", "cgroup.kill") if self.version == 2 else None
        while True:
            pids = self.members()
            if not pids:
                return True
            if kill_file is not None and kill_file.exists():
                try:
                    kill_file.write_text("1")
                except OSError:
                    kill_file = None
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)

    def remove(self, wait=2.0):
        """Kill what is left and remove the group's folders."""
        self.kill()
        deadline = time.monotonic() + wait
        for f in self.folders.values():
            while os.path.isdir(f):
                try:
                    os.rmdir(f)
                except OSError:  # its last processes are still exiting
                    if time.monotonic() > deadline:
                        break
                    time.sleep(0.02)

    def to_json(self):
        return {"version": self.version, "folders": self.folders}

    @classmethod
    def from_json(cls, data):
        """The group a status file names, or None when it names something else (only a
        kernel group under this machine's bases is ever touched)."""
        version, info = _cached_bases()
        if not version or not isinstance(data, dict) or data.get("version") != version:
            return None
        folders = data.get("folders")
        if not isinstance(folders, dict) or set(folders) != set(info):
            return None
        for c, f in folders.items():
            p = Path(str(f))
            if p.parent != info[c] or not p.name.startswith(PREFIX):
                return None
        return cls(version, {c: str(f) for c, f in folders.items()})


def sweep(older_than=3600.0):
    """Remove kernels' groups left by a grader that was killed (empty, and old)."""
    version, info = _cached_bases()
    if not version:
        return
    now = time.time()
    for base in info.values():
        try:
            entries = list(base.iterdir())
        except OSError:
            continue
        for p in entries:
            try:
                if p.name.startswith(PREFIX) and now - p.stat().st_mtime > older_than \
                        and not (p / "cgroup.procs").read_text().strip():
                    p.rmdir()
            except OSError:
                continue
