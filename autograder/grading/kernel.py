"""A student's kernel, started inside the sandbox and driven from the grader's side.

``Kernel`` starts it (forked warm from a ``Zygote``, or cold) behind the walls of
``sandbox.enter``, in a cgroup of its own (``cgroups``) where the machine has one; talks to
it over Jupyter's protocol on Unix sockets in its own folder (the kernel has no network),
reading its outputs with a budget (a flood of output is cut, never held in memory); reaches
its test server through a socket pair only the two of them hold; watches its processes and
memory; and kills it whole. What a kernel may read is decided by ``readable``, and what the
machine allows by ``machine_walls``. Nothing the kernel sends is executed or unpickled here.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from .outcomes import CellStatus, Defused, UsageError

OUTPUT_DRAIN = 30.0  # seconds the outputs may keep arriving after a cell's reply
OUTPUT_BUDGET = 1 << 20  # bytes of output kept per cell; the rest is dropped with a note
# matplotlib's backend in a kernel: IPython's inline backend, so that a figure a cell draws
# is a PNG output of the executed notebook (the formgrader shows it), within OUTPUT_BUDGET
INLINE_BACKEND = "module://matplotlib_inline.backend_inline"
MESSAGE_LIMIT = 16 << 20  # a larger single message from the kernel is refused by zmq


@dataclass
class Sandbox:
    """What a kernel may use: memory (bytes), processes and threads, file size and disk
    (bytes: its working folder and /tmp together), /dev/shm (bytes), seconds to start;
    ``threads``: the threads its numeric libraries start (``thread_env``)."""
    memory: int = 6 << 30
    processes: int = 512
    file_size: int = 1 << 30
    disk: int = 1 << 30
    shm: int = 256 << 20
    startup: float = 60.0
    max_children: int = 32  # more child processes than this is a fork bomb: they are killed
    threads: int | None = None


@dataclass
class Run:
    """What one cell did (``status``) and its (capped) outputs."""
    status: CellStatus
    ename: str = ""
    evalue: str = ""
    outputs: list = field(default_factory=list)


THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def thread_env(threads):
    """The environment that makes OpenMP, OpenBLAS, MKL (and torch, through OpenMP) start
    ``threads`` threads; None passes on what this process's environment says. Kernels graded
    side by side must not start a thread per core each: on an oversubscribed machine their
    BLAS threads spin waiting for each other (``benchmarks/oversubscription.py``)."""
    if threads is None:
        return {k: os.environ[k] for k in THREAD_VARIABLES if os.environ.get(k)}
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ValueError(f"threads: expected a positive int or None, got {threads!r}")
    return dict.fromkeys(THREAD_VARIABLES, str(threads))


def threads_per_job(jobs):
    """Threads for each of ``jobs`` processes run side by side: the cores shared out, at
    least one each."""
    return max(1, (os.cpu_count() or 1) // jobs)


# what the kernel's root holds of the system (the links among them are recreated as links)
SYSTEM = ("/usr", "/etc", "/sys", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32",
          "/run/nvidia-persistenced")
DEVICES = ("/dev/null", "/dev/zero", "/dev/random", "/dev/urandom")


def _inside(path, folder):
    return path != folder and path.startswith(folder.rstrip("/") + "/")


def readable(hidden):
    """What a student's kernel may read, the one place that decides it for every route
    (warm, cold, on a cluster worker): (roots, links, masks).

    ``roots``: the system, Python, its packages and coursekit (resolved, none inside
    another); ``links``: {path: target} of the system's symlinks among them (/lib64 ->
    usr/lib64); ``masks``: the paths of ``hidden`` that lie inside a root, covered in the
    kernel's root by an empty folder (or left out of Landlock's rules). A root inside a
    hidden folder stays readable: the virtualenv the grader runs on may live in the course.
    """
    import coursekit

    links, candidates = {}, []
    for p in SYSTEM:
        if os.path.islink(p):
            links[p] = os.readlink(p)
            candidates.append(os.path.realpath(p))
        elif os.path.exists(p):
            candidates.append(p)
    candidates += [sys.prefix, sys.base_prefix, sys.exec_prefix,
                   str(Path(coursekit.__file__).resolve().parent)]
    candidates += [p for p in sys.path if p.endswith("-packages")]
    hidden = sorted({os.path.realpath(h) for h in hidden})
    resolved = sorted({os.path.realpath(c) for c in candidates if os.path.exists(c)})
    roots = [r for r in resolved if r not in hidden
             and not any(_inside(r, other) for other in resolved)]
    masks = [h for h in hidden if any(_inside(h, r) for r in roots)]
    return roots, links, masks


def devices():
    """The device files a kernel may use: null, zero, random, urandom, and the GPU's."""
    out = list(DEVICES)
    if cuda_present():
        import glob

        out += sorted(glob.glob("/dev/nvidia*")) + sorted(glob.glob("/dev/dri/*"))
    return [d for d in out if os.path.exists(d)]


def cuda_present():
    return any(Path(p).exists() for p in ("/dev/nvidiactl", "/dev/nvidia0"))


_MACHINE = None
WALL_SWITCHES = ("namespaces", "cgroup", "landlock")  # what AUTOGRADER_DISABLE_WALLS may name


def _switched_off():
    """The walls $AUTOGRADER_DISABLE_WALLS turns off (to see, or test, how the grader runs
    on a machine without them); ValueError for a name it does not know."""
    names = {w.strip() for w in os.environ.get("AUTOGRADER_DISABLE_WALLS", "").split(",")
             if w.strip()}
    unknown = names - set(WALL_SWITCHES)
    if unknown:
        raise UsageError(f"AUTOGRADER_DISABLE_WALLS: expected names among "
                         f"{', '.join(WALL_SWITCHES)}, got {', '.join(sorted(unknown))}")
    return names


@dataclass(frozen=True)
class MachineWalls:
    """What this machine lets the grader put up around a kernel (``machine_walls``).

    ``landlock``: its Landlock ABI (0: none); ``namespaces``: whether a kernel gets its own
    namespaces and root (the probe of ``sandbox --probe`` passed); ``cgroup``: whether it
    gets a cgroup of its own; ``own_uid``: whether it runs as a user of its own (the grader
    is root and the namespaces stand); ``why``: {"namespaces" or "cgroup": why that wall is
    missing}, words for the instructor that nothing decides on."""
    landlock: int
    namespaces: bool
    cgroup: bool
    own_uid: bool
    why: dict = field(default_factory=dict)


SWITCHED_OFF = "turned off by AUTOGRADER_DISABLE_WALLS"


def machine_walls():
    """This machine's ``MachineWalls``, probed once per process."""
    global _MACHINE
    if _MACHINE is None:
        from . import cgroups, sandbox

        off = _switched_off()
        uid = _kernel_uid()
        why = {}
        if "namespaces" in off:
            namespaces, why["namespaces"] = False, SWITCHED_OFF
        else:
            try:
                out = subprocess.run([sys.executable, "-m", "autograder.grading.sandbox",
                                      "--probe", str(uid if uid is not None else -1)],
                                     capture_output=True, text=True, timeout=30,
                                     stdin=subprocess.DEVNULL)
                namespaces = out.returncode == 0
                if not namespaces:
                    why["namespaces"] = (out.stdout.strip().splitlines() or
                                         ["the probe failed"])[-1][:200]
            except (OSError, subprocess.TimeoutExpired) as e:
                namespaces, why["namespaces"] = False, f"the probe failed ({type(e).__name__})"
        if "cgroup" in off:
            cgroup, why["cgroup"] = False, SWITCHED_OFF
        else:
            cgroup, info = cgroups.support()
            if not cgroup:
                why["cgroup"] = info
        _MACHINE = MachineWalls(landlock=0 if "landlock" in off else sandbox.landlock_abi(),
                                namespaces=namespaces, cgroup=cgroup,
                                own_uid=uid is not None and namespaces, why=why)
    return _MACHINE


def missing_walls(machine=None):
    """[(wall, why)] of what this machine cannot put up (empty when every wall stands)."""
    m = machine or machine_walls()
    out = []
    if m.landlock < 6:
        out.append(("landlock", "this Linux has no Landlock" if not m.landlock else
                    f"Landlock ABI {m.landlock} (6 scopes signals and abstract sockets)"))
    if not m.namespaces:
        out.append(("namespaces (user, PID, mount, IPC, network) and the kernel's own root",
                    m.why.get("namespaces", "")))
    if not m.cgroup:
        out.append(("cgroup (memory and process limits that count every process)",
                    m.why.get("cgroup", "")))
    return out


def _kernel_uid():
    """A user id of the kernel's own when the grader is root (None otherwise)."""
    if os.geteuid() != 0:
        return None
    import secrets

    return 200000 + secrets.randbelow(100000)


class Kernel:
    """An IPython kernel in a sandbox, working in ``work``, with sockets in ``chan``.

    ``hidden``: every path the kernel must not read, as ``runner.hidden_paths`` made them
    (the course, the gradebook, the submissions, the grader, this job's folder), used as
    given.
    The grader reaches the kernel's test server (``coursekit.serve``) only through a socket
    pair made here and inherited by the kernel: no path, nothing another process can reach.
    """

    def __init__(self, work, chan, hidden=(), sandbox=None, zygote=None):
        # chan holds this kernel's sockets and connection file; a restart uses a new one
        self.work, self.chan = Path(work), Path(chan)
        self.chan.mkdir(parents=True, exist_ok=True)
        self.root = self.chan.with_name(self.chan.name + "-root")  # the kernel's / is built on it
        self.root.mkdir(exist_ok=True)
        self.sandbox = sandbox or Sandbox()
        self.hidden = list(hidden)
        self.zygote = zygote  # {"socket", "token"} of a kernel_zygote, or None: a fresh Python
        self.proc = None
        self.client = None
        self.refusals = None  # a monitor of the outputs' socket: its peer dropped (start)
        self.control = None  # our end of the test server's control socket
        self.cgroup = None
        self.walls = {}
        self.memory_exceeded = False
        self.defused = []  # Defused: what the watch killed of the kernel's processes
        self._ooms = 0  # the cgroup's count of processes killed for memory, last seen
        self._watch = None
        self._own = set()  # pids of the sandbox's own processes: A, B and the kernel

    # ------------------------------------------------------------------ life
    def spec(self, uid, keep_fds):
        """The sandbox's spec (see ``sandbox.enter``) for this kernel."""
        roots, links, masks = readable(self.hidden)
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(self.work),
               "USER": "student", "LOGNAME": "student", "LANG": "C.UTF-8",
               "TMPDIR": str(self.work / "tmp"), "MPLBACKEND": INLINE_BACKEND,
               "IPYTHONDIR": str(self.work / ".ipython"), "MPLCONFIGDIR": str(self.work / ".mpl"),
               "JUPYTER_RUNTIME_DIR": str(self.work / ".runtime"),
               "PYDEVD_DISABLE_FILE_VALIDATION": "1", "PYTHONDONTWRITEBYTECODE": "1",
               **thread_env(self.sandbox.threads)}
        machine = machine_walls()
        return {"read": roots, "links": links, "masks": masks, "devices": devices(),
                "work": str(self.work), "chan": str(self.chan), "root": str(self.root),
                "namespaces": machine.namespaces, "uid": uid,
                "landlock": machine.landlock > 0,
                "disk": self.sandbox.disk, "shm": self.sandbox.shm,
                # CUDA reserves far more address space than it uses: watched, not capped
                "memory": None if cuda_present() else self.sandbox.memory,
                "file_size": self.sandbox.file_size, "processes": self.sandbox.processes,
                "cgroups": self.cgroup.procs_files() if self.cgroup else [],
                "keep_fds": list(keep_fds), "report": str(self.chan / "walls.json"),
                "env": {k: v for k, v in env.items() if v}}

    def start(self):
        """Start the kernel in its sandbox; returns self once it answers. RuntimeError when
        it cannot start (whatever was started is then killed, and its cgroup removed)."""
        try:
            return self._start()
        except BaseException:
            self.kill()
            raise

    def _start(self):
        import socket

        import zmq
        from jupyter_client import BlockingKernelClient
        from jupyter_client.connect import write_connection_file

        from .cgroups import Cgroup

        conn = self.chan / "kernel.json"
        write_connection_file(str(conn), transport="ipc", ip=str(self.chan / "k"),
                              shell_port=1, iopub_port=2, stdin_port=3, control_port=4, hb_port=5)
        (self.work / "tmp").mkdir(parents=True, exist_ok=True)
        machine = machine_walls()
        uid = _kernel_uid() if machine.own_uid else None
        if uid is not None:  # the kernel's own user makes its sockets here, and reads the key
            for p in (self.chan, conn):
                os.chown(p, uid, uid)
        if machine.cgroup:
            self.cgroup = Cgroup.create(None if cuda_present() else self.sandbox.memory,
                                        self.sandbox.processes)
        self.control, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            spec = self.spec(uid, [theirs.fileno()])
            spec_path = self.chan / "sandbox.json"
            spec_path.write_text(json.dumps(spec))
            self.proc = fork(self.zygote, spec=str(spec_path), connection_file=str(conn),
                             fds=[theirs.fileno()]) if self.zygote else None
            if self.proc is None:
                cmd = [sys.executable, "-m", "autograder.grading.sandbox", str(spec_path), "--",
                       sys.executable, "-m", "coursekit.serve", "-f", str(conn),
                       "--serve-fd", str(theirs.fileno())]
                self.proc = subprocess.Popen(cmd, cwd="/", stdin=subprocess.DEVNULL,
                                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                             start_new_session=True, pass_fds=[theirs.fileno()])
        finally:
            theirs.close()
        ctx = zmq.Context()
        ctx.setsockopt(zmq.MAXMSGSIZE, MESSAGE_LIMIT)
        # we connect before the kernel has bound its sockets: retry every 10 ms, not 100
        ctx.setsockopt(zmq.RECONNECT_IVL, 10)
        self.client = BlockingKernelClient(connection_file=str(conn), context=ctx)
        self.client.load_connection_file()
        self.client.start_channels(shell=True, iopub=True, stdin=False, hb=False, control=False)
        # zmq drops a peer whose message is over MAXMSGSIZE, without a word and for good: a
        # monitor watches for the drop, so that the cell says it and wait() connects again
        self.refusals = self.client.iopub_channel.socket.get_monitor_socket(zmq.EVENT_DISCONNECTED)
        deadline = time.monotonic() + self.sandbox.startup
        while True:  # kernel_info until it answers: the kernel is up and listening
            if self.proc.poll() is not None:
                raise RuntimeError("the kernel did not start")
            msg_id = self.client.kernel_info()
            try:
                while True:
                    reply = self.client.get_shell_msg(timeout=1.0)
                    if reply["parent_header"].get("msg_id") == msg_id:
                        break
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise RuntimeError("the kernel did not start in time") from None
        self.walls = _read_walls(self.chan / "walls.json")
        if self.cgroup is not None:
            self.walls["cgroup"] = self.walls.get("cgroup", False)
        self._own = self._sandbox_pids()
        self._watch = threading.Thread(target=self._watch_kernel, daemon=True)
        self._watch.start()
        return self

    def connect(self):
        """A new connection to the kernel's test server (one per hidden test), handed to the
        kernel over the control socket; OSError when the kernel is gone."""
        import socket

        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            socket.send_fds(self.control, [b"c"], [theirs.fileno()])
        except OSError:
            ours.close()
            raise
        finally:
            theirs.close()
        return ours

    def _sandbox_pids(self):
        """A (the process we started), B (PID 1 of the kernel's namespace) and the kernel:
        at its start, before any cell, its cgroup holds these three alone."""
        import psutil

        if self.cgroup is not None:
            return set(self.cgroup.members()) | {self.proc.pid}
        own = {self.proc.pid}
        try:
            kids = psutil.Process(self.proc.pid).children()
            for b in kids:
                own.add(b.pid)
                for c in b.children():
                    if _ns_pid(c.pid) == 2:  # the kernel is B's first child
                        own.add(c.pid)
        except psutil.Error:
            pass
        return own

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def settle(self, seconds=2.0):
        """Give a kernel that is going down (its socket closed) the time to be seen dead."""
        try:
            self.proc.wait(timeout=seconds)
        except subprocess.TimeoutExpired:
            pass

    def interrupt(self):
        if self.alive():  # A relays it to B, B to the kernel
            try:
                os.kill(self.proc.pid, signal.SIGINT)
            except OSError:
                pass

    def members(self):
        """The kernel's processes, the sandbox's own included: its cgroup's; without one, A
        and its descendants (a PID namespace keeps every orphan under B), or A's session."""
        import psutil

        if self.cgroup is not None:
            return self.cgroup.members()
        if self.walls.get("pid namespace"):
            try:
                a = psutil.Process(self.proc.pid)
                return [a.pid] + [p.pid for p in a.children(recursive=True)]
            except psutil.Error:
                return []
        return [p.pid for p in _session(self.proc.pid)]

    def kill(self, wait=True):
        """Kill the kernel and everything it started, and remove its cgroup; with
        ``wait=False``, send the kills and return (whoever removes the cgroup later, as
        ``runner`` does, waits for the processes to be gone)."""
        if self.proc is not None:
            if self.cgroup is not None:
                self.cgroup.kill(wait=5.0 if wait else 0.0)
            if not wait and self.walls.get("pid namespace"):
                try:  # A: its death takes B, and B's the whole namespace
                    os.kill(self.proc.pid, signal.SIGKILL)
                except OSError:
                    pass
            else:
                kill_tree(self.proc.pid)
            if not self.walls.get("pid namespace"):
                kill_session(self.proc.pid)
            if wait:
                try:
                    self.proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    pass
        if self.cgroup is not None and wait:
            self.cgroup.remove()
        if self.client is not None:
            try:
                if self.refusals is not None:
                    self.client.iopub_channel.socket.disable_monitor()
                    self.refusals.close(linger=0)
                self.client.stop_channels()
            except Exception:
                pass
        if self.control is not None:
            self.control.close()

    def _watch_kernel(self):
        """Until the kernel dies: a fork bomb is defused, and so are processes of the kernel
        that ran its cgroup out of memory; memory over the limit without a cgroup, or the
        kernel itself killed for memory, kills the kernel (the main thread then sees it
        dead and restarts it)."""
        import psutil

        while self.alive():
            if self.cgroup is not None and self.cgroup.oom_kills() > self._ooms:
                self._ooms = self.cgroup.oom_kills()
                time.sleep(0.3)  # the kernel's own death (B, then A, exit) takes a moment
                if not self.alive():
                    self.memory_exceeded = True
                    return
                self._kill_others(Defused.MEMORY)
                continue
            try:
                pids = self.members()
                if self._defuse([p for p in pids if p not in self._own]):
                    continue
                rss = 0
                if self.cgroup is None:
                    procs = [psutil.Process(p) for p in pids]
                    procs = [p for p in procs if p.status() != psutil.STATUS_ZOMBIE]
                    rss = sum(p.memory_info().rss for p in procs)
                    if rss > self.sandbox.memory and len(procs) > 1:
                        # forked copies share most pages with the kernel, and each one's RSS
                        # counts them all: their proportional shares (PSS) count them once
                        rss = sum(p.memory_full_info().pss for p in procs)
            except psutil.Error:
                rss = 0
            if rss > self.sandbox.memory:
                self.memory_exceeded = True
                self.kill_members()  # the main thread sees a dead kernel
                return
            time.sleep(0.2)

    def ran_out_of_memory(self):
        """Whether the (dead) kernel was killed for its memory: by the watch, or by its
        cgroup (the watch, which sees that, is given a moment to finish)."""
        if self._watch is not None:
            self._watch.join(timeout=1.0)
        return self.memory_exceeded or (self.cgroup is not None
                                        and self.cgroup.oom_kills() > self._ooms)

    def _kill_others(self, why):
        """Kill the kernel's processes but the sandbox's own (A, B, the kernel)."""
        others = [p for p in self.members() if p not in self._own]
        if others:
            self._kill_pids(others)
        self.defused.append(why)

    def kill_members(self):
        if self.cgroup is not None:
            self.cgroup.kill()
        elif self.walls.get("pid namespace"):
            kill_tree(self.proc.pid)
        else:
            kill_session(self.proc.pid)

    def _defuse(self, children):
        """Kill the kernel's other processes (its children, and their orphans) when there
        are too many of them (a fork bomb); the kernel itself goes on."""
        if len(children) <= self.sandbox.max_children:
            return False
        self._kill_pids(children)
        self.defused.append(Defused.PROCESSES)
        return True

    @staticmethod
    def _kill_pids(pids):
        import psutil

        procs = []
        for pid in pids:
            try:
                procs.append(psutil.Process(pid))
            except psutil.Error:
                continue
        kill_all(procs, wait=2)

    # ------------------------------------------------------------------ cells
    def _drain_iopub(self):
        """Drop what the kernel published so far (wait() ignores others' messages anyway)."""
        while True:
            try:
                self.client.get_iopub_msg(timeout=0)
            except Exception:
                return

    def execute(self, code, timeout, silent=False):
        """Run ``code``; returns a Run once the kernel replied (or the time ran out)."""
        msg_id = self.client.execute(code, silent=silent, store_history=not silent,
                                     allow_stdin=False, stop_on_error=False)
        return self.wait(msg_id, time.monotonic() + timeout)

    def wait(self, msg_id, deadline, interrupted=False):
        """Collect outputs of ``msg_id`` until its reply; interrupt at ``deadline``."""
        import zmq

        run = Run(CellStatus.OK)
        budget = OUTPUT_BUDGET
        reply, idle = None, False
        poller = zmq.Poller()
        poller.register(self.client.shell_channel.socket, zmq.POLLIN)
        poller.register(self.client.iopub_channel.socket, zmq.POLLIN)
        poller.register(self.refusals, zmq.POLLIN)
        quiet_until = drain_end = None  # once replied: reading what is left of its outputs
        refused = False
        while True:
            if not self.alive():
                run.status = CellStatus.DEAD
                return run
            now = time.monotonic()
            if reply is not None:
                # the outputs come before "idle", but a busy grader may still have a backlog
                # of them when the reply comes: read on while they keep arriving
                if idle or now > quiet_until or now > drain_end:
                    break
            elif now > deadline:
                if interrupted:  # the interrupt was ignored: the kernel is still busy
                    run.status = CellStatus.HUNG
                    return run
                self.interrupt()
                interrupted, deadline = True, now + 5.0
                continue
            events = dict(poller.poll(200))
            if self.client.iopub_channel.socket in events:
                msg = self._recv(self.client.iopub_channel)
                if msg and msg["parent_header"].get("msg_id") == msg_id:
                    if reply is not None:
                        quiet_until = time.monotonic() + 1.0
                    kind = msg["msg_type"]
                    if kind == "status" and msg["content"].get("execution_state") == "idle":
                        idle = True
                    elif kind in ("stream", "display_data", "execute_result", "error") and budget > 0:
                        size = len(json.dumps(msg["content"]))
                        if size <= budget:
                            run.outputs.append(_output(kind, msg["content"]))
                            budget -= size
                        else:  # how much text one message holds depends on ipykernel's flushes
                            if kind == "stream":
                                rest = {**msg["content"], "text": ""}  # its JSON around the text
                                head = _head_within(str(msg["content"].get("text", "")),
                                                    budget - len(json.dumps(rest)) + 2)
                                if head:
                                    run.outputs.append(_output(kind, {**msg["content"], "text": head}))
                            run.outputs.append(note("[the grader cut the rest of this cell's output]"))
                            budget = 0
            if self.refusals in events:
                self.refusals.recv_multipart()  # the kernel's end was dropped: dead or refused
                refused = True
                self._reconnect_outputs()
            if self.client.shell_channel.socket in events:
                msg = self._recv(self.client.shell_channel)
                if msg and msg["parent_header"].get("msg_id") == msg_id and \
                        msg["msg_type"] == "execute_reply":
                    reply, now = msg["content"], time.monotonic()
                    quiet_until, drain_end = now + 1.0, now + OUTPUT_DRAIN
        if not idle and time.monotonic() > drain_end:
            run.outputs.append(note(f"[the grader stopped reading this cell's output "
                                    f"{OUTPUT_DRAIN:g} s after the cell ended]"))
        if refused:  # and the kernel lives: a message over the limit was dropped
            run.outputs.append(note(f"[the grader refused an output of this cell over its "
                                    f"size limit ({MESSAGE_LIMIT >> 20} MiB)]"))
        if interrupted:
            run.status = CellStatus.TIMEOUT
        elif reply.get("status") != "ok":
            run.status = CellStatus.ERROR
            from . import clean

            run.ename = clean.text(reply.get("ename", "Error"), 200)
            run.evalue = clean.text(reply.get("evalue", ""), 2000)
        return run

    def _reconnect_outputs(self):
        """Connect the outputs' socket to the kernel again: zmq does not reconnect a peer it
        dropped for a protocol error (a message over MAXMSGSIZE is one), so without this
        every later cell of the notebook would lose its outputs."""
        import zmq

        info = self.client.get_connection_info()
        url = f"{info['transport']}://{info['ip']}-{info['iopub_port']}"  # ipc, as in _start
        sock = self.client.iopub_channel.socket
        try:
            sock.disconnect(url)
        except zmq.ZMQError:  # the dropped endpoint is already gone
            pass
        sock.connect(url)

    @staticmethod
    def _recv(channel):
        try:
            return channel.get_msg(timeout=0)
        except Exception:
            return None


class Zygote:
    """A warm parent process for a grading run, as a context: yields its address
    ({"socket", "token"}) for ``fork(...)``, or None when it cannot start.

    ``kind``: "kernel" (``kernel_zygote.py``: students' kernels, no grader code in memory)
    or "grader" (``child.py --zygote``: the grading processes, checks and torch imported).
    """

    def __init__(self, kind="kernel", threads=None):
        self.kind, self.threads = kind, threads
        self.proc, self.address, self.tmp = None, None, None

    def __enter__(self):
        self.start()
        return self.wait()

    def start(self):
        """Start the process; it is ready once ``wait`` returns."""
        import tempfile

        self.tmp = tempfile.TemporaryDirectory(prefix="zygote-")
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": self.tmp.name,
               "MPLCONFIGDIR": self.tmp.name, "MPLBACKEND": INLINE_BACKEND, "LANG": "C.UTF-8",
               "PYTHONDONTWRITEBYTECODE": "1", **thread_env(self.threads)}
        if self.kind == "kernel":
            cmd = [sys.executable, str(Path(__file__).with_name("kernel_zygote.py"))]
        else:  # the grading processes keep the grader's environment (AUTOGRADER_SEED, ...)
            cmd = [sys.executable, "-m", "autograder.grading.child", "--zygote"]
            env = {**os.environ, **thread_env(self.threads)}
        try:
            self.proc = subprocess.Popen(
                cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                env=env, cwd=self.tmp.name, start_new_session=True, text=True)
        except OSError:
            self.proc = None

    def wait(self):
        """The address, once the imports are done (the first line it prints); or None."""
        if self.proc is not None and self.address is None and not self.proc.stdout.closed:
            try:
                self.address = json.loads(self.proc.stdout.readline())
            except (OSError, ValueError):
                self.address = None
            self.proc.stdout.close()  # read once: the zygote prints nothing more
        return self.address

    def __exit__(self, *exc):
        if self.proc is not None:
            kill_tree(self.proc.pid)
        if self.tmp is not None:
            self.tmp.cleanup()


def start_zygotes(stack, threads=None):
    """A kernel and a grader Zygote, started at once, and stopped when ``stack`` (an
    ExitStack) closes; ``z.wait()`` gives each one's address. Their imports, a few seconds
    each, overlap each other and whatever the caller does before it waits. ``threads``:
    what their children's numeric libraries start (``thread_env``; numpy and torch are
    imported before the fork, so it is fixed here)."""
    pair = (Zygote("kernel", threads), Zygote("grader", threads))
    for z in pair:
        stack.push(z)
        z.start()
    return pair


def fork(address, fds=(), **request):
    """Ask the Zygote at ``address`` for a process, handing it the descriptors ``fds``
    (SCM_RIGHTS); its Forked, or None when it cannot."""
    import socket

    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(30.0)
            s.connect("\0" + address["socket"])
            line = (json.dumps({"token": address["token"], "fds": len(fds), **request})
                    + "\n").encode()
            socket.send_fds(s, [line], list(fds))
            answer = json.loads(s.makefile().readline())
        return Forked(int(answer["pid"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


class Forked:
    """A process that is not our child (the zygote's), with the part of Popen we use."""

    def __init__(self, pid):
        self.pid = pid

    def poll(self):
        import psutil

        try:
            return None if psutil.Process(self.pid).status() != psutil.STATUS_ZOMBIE else 0
        except psutil.NoSuchProcess:
            return 0

    def wait(self, timeout=None):
        deadline = time.monotonic() + (timeout if timeout is not None else 1e9)
        while self.poll() is None:
            if time.monotonic() > deadline:
                raise subprocess.TimeoutExpired("kernel", timeout)
            time.sleep(0.02)
        return 0


def _ns_pid(pid):
    """The pid of process ``pid`` inside its own PID namespace (None when unknown)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("NSpid:"):
                    return int(line.split()[-1])
    except (OSError, ValueError):
        pass
    return None


def _read_walls(path):
    """What the sandbox reported it put up: {wall: bool or int}, anything else dropped."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {str(k)[:60]: v for k, v in data.items()
            if isinstance(v, (bool, int)) and not isinstance(v, float)}


def _session(pid):
    """The live processes of the session led by ``pid``: a kernel and all it started
    (orphans included, unless they left the session). Zombies are left out: they hold no
    memory, cannot be killed again, and a kernel that never reaps its killed children
    would otherwise look like a fork bomb forever."""
    import psutil

    members = []
    for p in psutil.pids():
        try:
            if os.getsid(p) == pid:
                proc = psutil.Process(p)
                if proc.status() != psutil.STATUS_ZOMBIE:
                    members.append(proc)
        except (OSError, psutil.Error):
            continue
    return members


def kill_all(procs, wait=5):
    """SIGKILL every psutil.Process of ``procs``; wait up to ``wait`` s for them to go."""
    import psutil

    for p in procs:
        try:
            p.kill()
        except psutil.Error:
            pass
    psutil.wait_procs(procs, timeout=wait)


def kill_session(pid):
    """Kill the session led by ``pid``."""
    kill_all(_session(pid))


def kill_tree(pid):
    """Kill process ``pid`` and all its descendants."""
    import psutil

    try:
        parent = psutil.Process(pid)
        procs = parent.children(recursive=True) + [parent]
    except psutil.Error:  # gone already, perhaps while we looked
        return
    kill_all(procs, wait=10)


def _output(kind, content):
    """A notebook output (nbformat v4, as a plain dict) from a message's content, every
    string in it made safe to write (``clean.outputs``)."""
    from . import clean

    if kind == "stream":
        out = {"output_type": "stream", "name": "stderr" if content.get("name") == "stderr"
               else "stdout", "text": str(content.get("text", ""))}
    elif kind == "error":
        out = {"output_type": "error", "ename": str(content.get("ename", ""))[:200],
               "evalue": str(content.get("evalue", ""))[:20000],
               "traceback": [str(t) for t in content.get("traceback", [])][:50]}
    else:
        data = content.get("data", {})
        data = {k: v for k, v in data.items() if isinstance(k, str) and isinstance(v, (str, dict, list))} \
            if isinstance(data, dict) else {}
        out = {"output_type": "execute_result", "data": data, "metadata": {},
               "execution_count": None} if kind == "execute_result" else \
            {"output_type": "display_data", "data": data, "metadata": {}}
    return clean.outputs([out])[0]


def _head_within(text, budget):
    """The longest run of whole lines at the start of ``text`` whose JSON form takes at most
    ``budget`` bytes ('' when not even its first line fits)."""
    lo, hi = 0, min(len(text), budget)  # text[:lo] fits; a character takes 1 to 12 bytes
    while lo < hi:
        mid = (lo + hi + 1) // 2
        lo, hi = (mid, hi) if len(json.dumps(text[:mid])) <= budget else (lo, mid - 1)
    head = text[:lo]
    return head[: head.rfind("\n") + 1]


def note(text):
    """A stderr output saying what the grader did to a cell."""
    return {"output_type": "stream", "name": "stderr", "text": text + "\n"}
