"""The walls around a student's kernel, put up by the process that becomes the kernel.

``enter(spec)`` runs in a fresh process: one forked by the warm parent (``kernel_zygote``),
or ``python -m autograder.grading.sandbox SPEC -- COMMAND...`` (a cold start, which then
executes COMMAND). It returns only in the process that becomes the kernel, with every wall
that ``spec`` asks for and the machine allows:

    A  the process the grader started. Joins the kernel's cgroups, takes a user id of its
       own (when the grader is root), unshares the namespaces, relays interrupts to the
       kernel, dies with its parent, and exits when the kernel does.
    B  PID 1 of the kernel's PID namespace. Builds the kernel's root (below) and reaps
       orphans; when B goes, the kernel and everything it started go with it.
    C  the kernel: no capabilities, resource limits, Landlock. ``enter`` returns here.

The kernel's root, in a mount namespace of its own, holds only: the system (``read``: /usr,
/etc, /sys, and the links /bin, /lib... to them), Python, its packages and coursekit, all
read-only; its own /proc; a /dev of null, zero, random and urandom (and the GPU's devices);
a tmpfs of ``disk`` bytes for the working folder and /tmp, and one of ``shm`` bytes for
/dev/shm; and the folder of its own sockets (``chan``). Nothing else is there: no course,
gradebook or submission, no other kernel's socket, no database server's socket. The hidden
paths that lie inside a readable folder (``masks``) are covered by empty ones.

The namespaces (user, PID, mount, IPC, network, UTS) are the kernel's own: it sees its own
processes only, has no network interface but a loopback that is down, and its System V IPC
objects go when it goes. Landlock (Linux 5.13 and later) repeats the file walls (and allows
only sockets in ``chan``), forbids TCP, and scopes signals and abstract sockets.

This module imports nothing of the grader: the warm parent loads it by its file name.
What was put up is written to ``report`` (a JSON object: wall -> bool or number) before the
kernel runs anything of its own, so the grader can say which walls stood.
"""
from __future__ import annotations

import ctypes
import json
import os
import resource
import signal
import sys

# --------------------------------------------------------------------------- libc
_libc_handle = None


def _libc():
    global _libc_handle
    if _libc_handle is None:
        _libc_handle = ctypes.CDLL(None, use_errno=True)
    return _libc_handle


def _ok(ret, what):
    if ret != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _prctl(*args):
    return _libc().prctl(*(ctypes.c_ulong(a) for a in args))


PR_SET_PDEATHSIG, PR_SET_DUMPABLE, PR_CAPBSET_DROP, PR_SET_NO_NEW_PRIVS = 1, 4, 24, 38

# --------------------------------------------------------------------------- Landlock (uapi)
_SYS = {"x86_64": (444, 445, 446), "aarch64": (444, 445, 446)}
_FS_ABI = {1: (1 << 13) - 1, 2: (1 << 14) - 1, 3: (1 << 15) - 1, 4: (1 << 15) - 1,
           5: (1 << 16) - 1}
_READ = (1 << 0) | (1 << 2) | (1 << 3)  # execute, read_file, read_dir
_FILE_ONLY = (1 << 0) | (1 << 1) | (1 << 2) | (1 << 14) | (1 << 15)  # rights a file can have
_DEV = _READ | (1 << 1) | (1 << 14) | (1 << 15)  # devices: read, write, truncate, ioctl
_SOCKETS = (1 << 2) | (1 << 3) | (1 << 9)  # read_file, read_dir, make_sock: nothing else


class _Ruleset(ctypes.Structure):
    _fields_ = [("fs", ctypes.c_uint64), ("net", ctypes.c_uint64), ("scoped", ctypes.c_uint64)]


class _PathBeneath(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


def landlock_abi():
    """The Landlock ABI version of the running kernel (0 when there is none)."""
    nums = _SYS.get(os.uname().machine)
    if nums is None:
        return 0
    r = _libc().syscall(nums[0], None, ctypes.c_size_t(0), ctypes.c_uint32(1))
    return max(int(r), 0)


def landlock(read, write, devices=(), sockets=()):
    """Restrict this process (and all it starts) to reading ``read``, writing ``write``,
    using the device files ``devices`` and making sockets (only) in ``sockets``; no TCP, no
    signals out and no abstract sockets out. Returns the ABI used, or 0 when there is no
    Landlock; OSError when there is one and it could not be applied."""
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
        raise OSError(ctypes.get_errno(), "landlock_create_ruleset")
    try:
        rules = [(p, _READ) for p in read] + [(p, fs) for p in write] + \
                [(p, _DEV) for p in devices] + [(p, _SOCKETS) for p in sockets]
        for path, rights in rules:
            try:
                pfd = os.open(path, os.O_PATH | os.O_CLOEXEC)
            except OSError:
                continue  # a path this system lacks
            try:
                if not os.path.isdir(path):
                    rights &= _FILE_ONLY
                rule = _PathBeneath(rights & fs, pfd)
                _ok(libc.syscall(add_rule, fd, 1, ctypes.byref(rule), 0), f"landlock rule {path}")
            finally:
                os.close(pfd)
        _ok(_prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs")
        _ok(libc.syscall(restrict, fd, 0), "landlock_restrict_self")
    finally:
        os.close(fd)
    return abi


def split_around(roots, hidden):
    """The folders and files to allow so that everything under ``roots`` is readable except
    ``hidden`` (Landlock allows whole trees: a root holding a hidden path is replaced by its
    entries, recursively, down to the hidden path)."""
    hidden = [os.path.realpath(h) for h in hidden]

    def holds(path):
        return any(h != path and h.startswith(path.rstrip("/") + "/") for h in hidden)

    out = []
    for root in roots:
        if root in hidden:
            continue
        if not holds(root):
            out.append(root)
            continue
        try:
            entries = sorted(os.scandir(root), key=lambda e: e.name)
        except OSError:
            continue
        out += split_around([e.path for e in entries if not e.is_symlink()], hidden)
    return out


# --------------------------------------------------------------------------- namespaces
CLONE_NEWNS, CLONE_NEWUTS, CLONE_NEWIPC = 0x00020000, 0x04000000, 0x08000000
CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET = 0x10000000, 0x20000000, 0x40000000
NAMESPACES = CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWNET | CLONE_NEWUTS

MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REMOUNT = 1, 2, 4, 8, 32
MS_NOATIME, MS_NODIRATIME, MS_BIND, MS_REC, MS_PRIVATE, MS_RELATIME = \
    1024, 2048, 4096, 16384, 1 << 18, 1 << 21
MNT_DETACH = 2
# statvfs f_flag bits -> mount flags: a bind's flags that a user namespace may not drop
_LOCKED = ((os.ST_RDONLY, MS_RDONLY), (os.ST_NOSUID, MS_NOSUID), (os.ST_NODEV, MS_NODEV),
           (os.ST_NOEXEC, MS_NOEXEC), (os.ST_NOATIME, MS_NOATIME),
           (os.ST_NODIRATIME, MS_NODIRATIME), (os.ST_RELATIME, MS_RELATIME))


def _mount(source, target, fstype, flags, data=None):
    enc = (lambda s: s.encode() if s is not None else None)
    _ok(_libc().mount(enc(source), enc(target), enc(fstype), ctypes.c_ulong(flags), enc(data)),
        f"mount {target}")


def join_cgroups(procs_files):
    """Move this process into the cgroups whose ``cgroup.procs`` files are given; True when
    there were some and it joined them all."""
    for path in procs_files:
        with open(path, "w") as f:
            f.write(str(os.getpid()))
    return bool(procs_files)


def take_uid(uid):
    """Become user and group ``uid`` (the grader is root: the kernel is a user of its own,
    with no capability and none of root's files)."""
    os.setgroups([])
    os.setresgid(uid, uid, uid)
    os.setresuid(uid, uid, uid)
    # a change of user makes the process undumpable, and its /proc/self files root's:
    # the user namespace's maps could not be written
    _prctl(PR_SET_DUMPABLE, 1, 0, 0, 0)


def unshare_all():
    """New user, PID, mount, IPC, network and UTS namespaces, this process root in the user
    namespace (mapped to its own uid outside). The PID namespace is its next child's."""
    uid, gid = os.geteuid(), os.getegid()
    _ok(_libc().unshare(NAMESPACES), "unshare")
    with open("/proc/self/setgroups", "w") as f:
        f.write("deny")
    with open("/proc/self/uid_map", "w") as f:
        f.write(f"0 {uid} 1")
    with open("/proc/self/gid_map", "w") as f:
        f.write(f"0 {gid} 1")


def _bind(source, target, readonly):
    """Bind ``source`` at ``target`` (non-recursively), read-only if asked, keeping the
    flags its mount has (a user namespace may not drop them)."""
    _mount(source, target, None, MS_BIND)
    if readonly:
        st = os.statvfs(source)
        flags = MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV
        flags |= sum(ms for st_bit, ms in _LOCKED if st.f_flag & st_bit)
        _mount(None, target, None, flags)


def _place(root, path, is_dir):
    """An empty folder or file at ``path`` inside ``root`` to mount on."""
    target = root + path
    if is_dir:
        os.makedirs(target, exist_ok=True)
    else:
        os.makedirs(os.path.dirname(target), exist_ok=True)
        if not os.path.lexists(target):
            open(target, "w").close()
    return target


def stage(spec, owner):
    """Build the kernel's root (see the module's docstring) on the empty folder
    ``spec["root"]``, in this process's private mount namespace. ``owner``: the user id,
    as this namespace sees it, that owns the working folder."""
    root = spec["root"]
    _mount(None, "/", None, MS_REC | MS_PRIVATE)  # nothing done here reaches the host
    _mount("tmpfs", root, "tmpfs", MS_NOSUID | MS_NODEV, "size=4m,mode=755")
    # first, one tmpfs of ``disk`` bytes for /tmp and the working folder (inside it, or
    # bound): what is bound under /tmp later (a virtualenv there) lies on top of it
    _mount("tmpfs", _place(root, "/tmp", True), "tmpfs", MS_NOSUID | MS_NODEV,
           f"size={int(spec.get('disk', 1 << 30))},mode=1777")
    for path in spec.get("read", []):
        if os.path.exists(path):
            _bind(path, _place(root, path, os.path.isdir(path)), readonly=True)
    for link, target in spec.get("links", {}).items():
        _place(root, os.path.dirname(link), True)
        os.symlink(target, root + link)
    for path in spec.get("masks", []):  # hidden paths inside what the kernel may read
        if os.path.isdir(root + path):
            _mount("tmpfs", root + path, "tmpfs", MS_NOSUID | MS_NODEV | MS_RDONLY, "size=4k")
        elif os.path.lexists(root + path):
            _bind("/dev/null", root + path, readonly=True)
    _place(root, "/proc", True)
    _mount("tmpfs", _place(root, "/dev", True), "tmpfs", MS_NOSUID | MS_NOEXEC,
           "size=64k,mode=755")
    for dev in spec.get("devices", []):
        if os.path.exists(dev):
            _bind(dev, _place(root, dev, os.path.isdir(dev)), readonly=False)
    for name, target in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"),
                         ("stdout", "/proc/self/fd/1"), ("stderr", "/proc/self/fd/2")):
        os.symlink(target, f"{root}/dev/{name}")
    _mount("tmpfs", _place(root, "/dev/shm", True), "tmpfs", MS_NOSUID | MS_NODEV,
           f"size={int(spec.get('shm', 64 << 20))},mode=1777")
    work = spec["work"]
    inside = work.startswith("/tmp/")
    where = root + (work if inside else "/tmp/.work")
    os.makedirs(where + "/tmp", exist_ok=True)
    for p in (where, where + "/tmp"):
        os.chown(p, owner, owner)
        os.chmod(p, 0o700)
    if not inside:
        _mount(where, _place(root, work, True), None, MS_BIND)
    if spec.get("chan") and os.path.isdir(spec["chan"]):
        _bind(spec["chan"], _place(root, spec["chan"], True), readonly=False)
    _place(root, "/.host", True)
    _mount(None, root, None, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV)


def pivot(root):
    """``root`` (staged) becomes /, with a /proc of this process's PID namespace, and the
    host's root is gone from this mount namespace."""
    _mount("proc", root + "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    _ok(_libc().syscall(155 if os.uname().machine == "x86_64" else 41,
                        root.encode(), (root + "/.host").encode()), "pivot_root")
    os.chdir("/")
    _ok(_libc().umount2(b"/.host", MNT_DETACH), "umount the host's root")


# --------------------------------------------------------------------------- processes
def _die_with_parent(parent):
    """Be killed when the parent goes; ``parent`` is its pid as this process sees it (0 for
    a parent outside this process's PID namespace)."""
    _prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:  # it went before we asked
        os._exit(1)


def _new_session():
    try:
        os.setsid()
    except OSError:  # started as a session leader already
        pass


def _no_nested_namespaces():
    """In B: no user namespace may be made inside this one (a nested one would give the
    kernel capabilities again, over nothing Landlock lets it reach, but still)."""
    try:
        with open("/proc/sys/user/max_user_namespaces", "w") as f:
            f.write("0")
        return True
    except OSError:
        return False


def supervise(child, relay=(signal.SIGINT,)):
    """Wait for ``child`` (reaping every other child meanwhile), relaying ``relay`` signals
    to it; exit with its status. Never returns."""
    for sig in relay:
        signal.signal(sig, lambda s, _f: os.kill(child, s))
    for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2):
        signal.signal(sig, signal.SIG_IGN)  # the kernel's own processes cannot stop B
    while True:
        try:
            pid, status = os.waitpid(-1, 0)
        except ChildProcessError:
            os._exit(1)
        if pid == child:
            code = os.waitstatus_to_exitcode(status)
            os._exit(code if code >= 0 else 128 - code)


def drop_capabilities():
    """No capability left, and none to be had again (the bounding set is emptied)."""
    for cap in range(64):
        _prctl(PR_CAPBSET_DROP, cap, 0, 0, 0)  # EINVAL past the last one: fine

    class Header(ctypes.Structure):
        _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

    class Data(ctypes.Structure):
        _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                    ("inheritable", ctypes.c_uint32)]

    data = (Data * 2)()
    _ok(_libc().capset(ctypes.byref(Header(0x20080522, 0)), data), "capset")


def limit(name, value):
    """Lower the soft and hard limit ``name`` (resource.RLIMIT_*) to ``value``; True if set."""
    try:
        resource.setrlimit(name, (value, value))
        return True
    except (ValueError, OSError):
        return False


def _close(fds):
    for fd in fds:
        try:
            os.close(fd)
        except OSError:
            pass


def _close_fds(keep):
    top = os.sysconf("SC_OPEN_MAX") if hasattr(os, "sysconf") else 1024
    last = 2
    for fd in sorted(keep) + [top]:
        if fd > last + 1:
            os.closerange(last + 1, fd)
        last = max(last, fd)


def enter(spec):
    """Put up the walls ``spec`` asks for; returns, in the kernel's process, what stood.

    ``spec`` keys: read (folders and files to read), links ({path: target} of symlinks to
    recreate), masks (hidden paths inside them), devices, work, chan, root (an empty folder
    to build the kernel's root on), disk and shm (bytes), memory, file_size, processes,
    cgroups (cgroup.procs files to join), uid (the kernel's user id when the grader is
    root, else None), namespaces (bool: the run's probe found they work), keep_fds
    (descriptors the kernel keeps), report (a file for what stood).
    """
    done = {"warm start": True} if spec.get("warm") else {}
    _die_with_parent(os.getppid())
    os.umask(0o022)
    try:
        done["cgroup"] = join_cgroups(spec.get("cgroups") or [])
    except OSError:
        done["cgroup"] = False
    report = os.open(spec["report"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC,
                     0o600) if spec.get("report") else None
    if spec.get("namespaces"):
        uid = spec.get("uid")
        if uid is not None:  # root: the root is built with root's reach, then root is gone
            _ok(_libc().unshare(CLONE_NEWNS), "unshare the mount namespace")
            stage(spec, owner=int(uid))
            pivot(spec["root"])  # its /proc is the host's until B mounts its own over it
            parent = os.getppid()
            take_uid(int(uid))
            _die_with_parent(parent)  # a change of user clears the parent-death signal
            done["own user id"] = True
        unshare_all()  # the run's probe said this works: a failure stops the kernel
        for wall in ("user namespace", "pid namespace", "ipc namespace", "network namespace"):
            done[wall] = True
        b = os.fork()
        if b:
            _new_session()
            _close(spec.get("keep_fds", []))  # the kernel's alone: it goes when the kernel goes
            supervise(b)
        # B: PID 1 of the kernel's namespace (its parent, outside, has no pid in here)
        _die_with_parent(0)
        if uid is None:
            stage(spec, owner=0)
            pivot(spec["root"])
        else:
            _mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
        done["mount namespace"] = done["own /proc"] = done["disk quota"] = True
        done["no nested namespaces"] = _no_nested_namespaces()
        c = os.fork()
        if c:
            _close(spec.get("keep_fds", []))
            _prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)  # the kernel cannot ptrace or read B
            drop_capabilities()
            supervise(c)
        _die_with_parent(1)
    else:
        _new_session()
    # C: the kernel
    os.chdir(spec["work"])
    for key, rlimit in (("memory", resource.RLIMIT_AS), ("file_size", resource.RLIMIT_FSIZE)):
        if spec.get(key):
            done[key] = limit(rlimit, int(spec[key]))
    if spec.get("processes") and not done["cgroup"]:  # else the cgroup's pids.max counts
        done["processes"] = limit(resource.RLIMIT_NPROC, int(spec["processes"]))
    limit(resource.RLIMIT_CORE, 0)
    _close_fds(set(spec.get("keep_fds", [])) | ({report} if report is not None else set()))
    if spec.get("namespaces"):
        drop_capabilities()
        done["no capabilities"] = True
    # not /tmp: the folder of the kernel's sockets may lie under it, and Landlock's rights
    # add up along a path (TMPDIR is the working folder's tmp/)
    writable = [spec["work"]] + (["/dev/shm"] if spec.get("namespaces") else [])
    read = spec.get("read", []) + ["/proc"]  # its own, in a PID namespace; else the host's
    if not spec.get("namespaces"):  # no root of its own: Landlock alone hides the course
        read = split_around(read, spec.get("masks", []))
    done["landlock"] = landlock(read, writable, spec.get("devices", []),
                                [spec["chan"]] if spec.get("chan") else []) \
        if spec.get("landlock", True) else 0
    if report is not None:
        os.write(report, json.dumps(done).encode())
        os.close(report)
    return done


def probe(uid):
    """Exit status 0 when this machine lets ``enter`` make a kernel's namespaces and root
    (as user ``uid``, or as this one when ``uid`` < 0); else a line says why not."""
    pid = os.fork()
    if pid == 0:
        try:
            if uid >= 0:
                take_uid(uid)
            unshare_all()
            b = os.fork()
            if b == 0:
                _mount(None, "/", None, MS_REC | MS_PRIVATE)
                _mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "size=64k")
                os.mkdir("/tmp/proc")
                _mount("proc", "/tmp/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
                os._exit(0)
            os._exit(os.waitstatus_to_exitcode(os.waitpid(b, 0)[1]))
        except OSError as e:
            print(f"{e.strerror or e}", flush=True)
            os._exit(2)
        finally:
            os._exit(3)
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])


def main(argv):
    """``python -m autograder.grading.sandbox SPEC -- COMMAND...``: enter, then exec;
    ``... --probe UID``: whether the namespaces can be made (see ``probe``)."""
    if argv[:1] == ["--probe"] and len(argv) == 2:
        sys.exit(probe(int(argv[1])))
    if "--" not in argv or argv.index("--") != 1:
        sys.exit("usage: python -m autograder.grading.sandbox SPEC -- COMMAND...")
    with open(argv[0]) as f:
        spec = json.load(f)
    command = argv[2:]
    for fd in spec.get("keep_fds", []):
        os.set_inheritable(fd, True)
    enter(spec)
    os.execvpe(command[0], command, spec.get("env") or dict(os.environ))


if __name__ == "__main__":
    main(sys.argv[1:])
