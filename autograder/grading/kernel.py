"""A student's kernel, started inside the sandbox and driven from the grader's side.

The grader talks to it over Jupyter's protocol on Unix sockets (the kernel has no network),
reads the outputs it publishes with a budget (a flood of output is cut, never held in
memory), and watches its memory. Nothing the kernel sends is executed or unpickled here.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

OUTPUT_BUDGET = 1 << 20  # bytes of output kept per cell; the rest is dropped with a note
MESSAGE_LIMIT = 16 << 20  # a larger single message from the kernel is refused by zmq


@dataclass
class Sandbox:
    """What a kernel may use: memory (bytes), processes and threads, file size, seconds to start."""
    memory: int = 6 << 30
    processes: int = 512
    file_size: int = 1 << 30
    startup: float = 60.0
    max_children: int = 32  # more child processes than this is a fork bomb: they are killed


@dataclass
class Run:
    """What one cell did: status ok | error | timeout (interrupted) | hung (the interrupt was
    ignored) | dead, and its (capped) outputs."""
    status: str
    ename: str = ""
    evalue: str = ""
    outputs: list = field(default_factory=list)


def _read_paths(hidden):
    """Directories the kernel may read: the system, Python, the installed packages, and the
    student-side package; never a path in ``hidden`` or above one of them."""
    import coursekit

    candidates = ["/usr", "/lib", "/lib32", "/lib64", "/bin", "/sbin", "/etc", "/opt", "/proc",
                  "/sys", "/run/nvidia-persistenced", sys.prefix, sys.base_prefix, sys.exec_prefix,
                  str(Path(coursekit.__file__).resolve().parent)]
    candidates += [p for p in sys.path if p.endswith("-packages")]
    hidden = [Path(h).resolve() for h in hidden]
    out = []
    for c in candidates:
        p = Path(c).resolve()
        if not p.exists():
            continue
        if any(p == h or h.is_relative_to(p) or p.is_relative_to(h) for h in hidden) \
                and p != Path(coursekit.__file__).resolve().parent:
            continue  # a secret lies inside: that root stays closed
        out.append(str(p))
    return sorted(set(out))


class Kernel:
    """An IPython kernel in a sandbox, working in ``work``, with sockets in ``chan``.

    ``hidden``: paths the kernel must not read (the course, the gradebook, the submissions).
    """

    def __init__(self, work, chan, hidden=(), sandbox=None, zygote=None):
        # chan holds this kernel's sockets and connection file; a restart uses a new one
        self.work, self.chan = Path(work), Path(chan)
        self.chan.mkdir(parents=True, exist_ok=True)
        self.serve_path = str(self.chan / "serve.sock")
        self.sandbox = sandbox or Sandbox()
        self.hidden = list(hidden)
        self.zygote = zygote  # {"socket", "token"} of a kernel_zygote, or None: a fresh Python
        self.proc = None
        self.client = None
        self.walls = {}
        self.memory_exceeded = False
        self.defused = 0  # times a fork bomb was defused
        self._watch = None

    # ------------------------------------------------------------------ life
    def start(self):
        import zmq
        from jupyter_client import BlockingKernelClient
        from jupyter_client.connect import write_connection_file

        conn = self.chan / "kernel.json"
        write_connection_file(str(conn), transport="ipc", ip=str(self.chan / "k"),
                              shell_port=1, iopub_port=2, stdin_port=3, control_port=4, hb_port=5)
        (self.work / "tmp").mkdir(exist_ok=True)
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(self.work),
               "LANG": "C.UTF-8", "TMPDIR": str(self.work / "tmp"), "MPLBACKEND": "agg",
               "IPYTHONDIR": str(self.work / ".ipython"), "MPLCONFIGDIR": str(self.work / ".mpl"),
               "JUPYTER_RUNTIME_DIR": str(self.chan), "PYDEVD_DISABLE_FILE_VALIDATION": "1",
               "PYTHONDONTWRITEBYTECODE": "1", "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "")}
        env = {k: v for k, v in env.items() if v}
        cuda = any(Path(p).exists() for p in ("/dev/nvidiactl", "/dev/nvidia0"))
        spec = {"network": False, "file_size": self.sandbox.file_size,
                "processes": self.sandbox.processes,
                # CUDA reserves far more address space than it uses: watched, not capped
                "memory": None if cuda else self.sandbox.memory,
                "read": _read_paths(self.hidden + [str(self.chan.parent.parent)]),
                "write": [str(self.work), str(self.chan)], "report": str(self.chan / "walls.json"),
                "env": env}
        spec_path = self.chan / "sandbox.json"
        spec_path.write_text(json.dumps(spec))
        self.proc = self._fork(spec_path, conn) if self.zygote else None
        if self.proc is None:
            cmd = [sys.executable, "-m", "autograder.grading.sandbox", str(spec_path), "--",
                   sys.executable, "-m", "ipykernel_launcher", "-f", str(conn),
                   "--HistoryManager.hist_file=:memory:"]
            self.proc = subprocess.Popen(cmd, cwd=self.work, stdin=subprocess.DEVNULL,
                                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                         start_new_session=True)
        ctx = zmq.Context()
        ctx.setsockopt(zmq.MAXMSGSIZE, MESSAGE_LIMIT)
        # we connect before the kernel has bound its sockets: retry every 10 ms, not 100
        ctx.setsockopt(zmq.RECONNECT_IVL, 10)
        self.client = BlockingKernelClient(connection_file=str(conn), context=ctx)
        self.client.load_connection_file()
        self.client.start_channels(shell=True, iopub=True, stdin=False, hb=False, control=False)
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
        try:
            self.walls = json.loads((self.chan / "walls.json").read_text())
        except (OSError, ValueError):
            self.walls = {}
        # the hidden tests' server, up before any student code runs (coursekit.serve.listen)
        run = self.execute(f"__import__('coursekit.serve', fromlist=['listen'])"
                           f".listen({self.serve_path!r})", 30.0, silent=True)
        if run.status != "ok":
            raise RuntimeError(f"the kernel could not start the test server ({run.ename})")
        self._drain_iopub()
        self._watch = threading.Thread(target=self._watch_memory, daemon=True)
        self._watch.start()
        return self

    def _fork(self, spec_path, conn):
        """A kernel forked by the warm zygote; None when it cannot (then a fresh Python)."""
        return fork(self.zygote, spec=str(spec_path), connection_file=str(conn),
                    cwd=str(self.work))

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def settle(self, seconds=2.0):
        """Give a kernel that is going down (its socket closed) the time to be seen dead."""
        try:
            self.proc.wait(timeout=seconds)
        except subprocess.TimeoutExpired:
            pass

    def interrupt(self):
        if self.alive():
            try:
                os.kill(self.proc.pid, signal.SIGINT)
            except OSError:
                pass

    def kill(self):
        """Kill the kernel and everything it started."""
        if self.proc is None:
            return
        kill_tree(self.proc.pid)
        kill_session(self.proc.pid)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        if self.client is not None:
            try:
                self.client.stop_channels()
            except Exception:
                pass

    def _watch_memory(self):
        import psutil

        while self.alive():
            try:
                procs = _session(self.proc.pid)
                if self._defuse([p for p in procs if p.pid != self.proc.pid]):
                    continue
                rss = sum(p.memory_info().rss for p in procs)
                if rss > self.sandbox.memory and len(procs) > 1:
                    # forked copies share most pages with the kernel, and each one's RSS
                    # counts them all: their proportional shares (PSS) count them once
                    rss = sum(p.memory_full_info().pss for p in procs)
            except psutil.Error:
                rss = 0
            if rss > self.sandbox.memory:
                self.memory_exceeded = True
                kill_session(self.proc.pid)  # the main thread sees a dead kernel
                return
            time.sleep(0.2)

    def _defuse(self, children):
        """Kill the kernel's other processes (its children, and their orphans) when there
        are too many of them (a fork bomb); the kernel itself goes on."""
        import psutil

        if len(children) <= self.sandbox.max_children:
            return False
        self.defused += 1
        kill_all(children, wait=2)
        return True

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

        run = Run("ok")
        budget = OUTPUT_BUDGET
        reply, idle = None, False
        poller = zmq.Poller()
        poller.register(self.client.shell_channel.socket, zmq.POLLIN)
        poller.register(self.client.iopub_channel.socket, zmq.POLLIN)
        after_reply = None
        while True:
            if not self.alive():
                run.status = "dead"
                return run
            now = time.monotonic()
            if reply is not None and (idle or now > after_reply):
                break
            if now > deadline:
                if interrupted:  # the interrupt was ignored: the kernel is still busy
                    run.status = "hung"
                    return run
                self.interrupt()
                interrupted, deadline = True, now + 5.0
                continue
            events = dict(poller.poll(200))
            if self.client.iopub_channel.socket in events:
                msg = self._recv(self.client.iopub_channel)
                if msg and msg["parent_header"].get("msg_id") == msg_id:
                    kind = msg["msg_type"]
                    if kind == "status" and msg["content"].get("execution_state") == "idle":
                        idle = True
                    elif kind in ("stream", "display_data", "execute_result", "error"):
                        size = len(json.dumps(msg["content"]))
                        if budget > 0:
                            budget -= size
                            run.outputs.append(_output(kind, msg["content"]) if budget >= 0
                                               else note("[the grader cut the rest of this cell's output]"))
            if self.client.shell_channel.socket in events:
                msg = self._recv(self.client.shell_channel)
                if msg and msg["parent_header"].get("msg_id") == msg_id and \
                        msg["msg_type"] == "execute_reply":
                    reply, after_reply = msg["content"], time.monotonic() + 1.0
        if interrupted:
            run.status = "timeout"
        elif reply.get("status") != "ok":
            run.status = "error"
            run.ename = str(reply.get("ename", "Error"))[:200]
            run.evalue = str(reply.get("evalue", ""))[:2000]
        return run

    @staticmethod
    def _recv(channel):
        try:
            return channel.get_msg(timeout=0)
        except Exception:
            return None

    def new_socket_path(self):
        return str(self.chan / f"rpc-{uuid.uuid4().hex[:8]}.sock")


class Zygote:
    """A warm parent process for a grading run, as a context: yields its address
    ({"socket", "token"}) for ``fork(...)``, or None when it cannot start.

    ``kind``: "kernel" (``kernel_zygote.py``: students' kernels, no grader code in memory)
    or "grader" (``child.py --zygote``: the grading processes, checks and torch imported).
    """

    def __init__(self, kind="kernel"):
        self.kind = kind
        self.proc, self.address, self.tmp = None, None, None

    def __enter__(self):
        self.start()
        return self.wait()

    def start(self):
        """Start the process; it is ready once ``wait`` returns."""
        import tempfile

        self.tmp = tempfile.TemporaryDirectory(prefix="zygote-")
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": self.tmp.name,
               "MPLCONFIGDIR": self.tmp.name, "MPLBACKEND": "agg", "LANG": "C.UTF-8",
               "PYTHONDONTWRITEBYTECODE": "1"}
        if os.environ.get("OMP_NUM_THREADS"):
            env["OMP_NUM_THREADS"] = os.environ["OMP_NUM_THREADS"]
        if self.kind == "kernel":
            cmd = [sys.executable, str(Path(__file__).with_name("kernel_zygote.py"))]
        else:  # the grading processes keep the grader's environment (AUTOGRADER_SEED, ...)
            cmd, env = [sys.executable, "-m", "autograder.grading.child", "--zygote"], None
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


def start_zygotes(stack):
    """A kernel and a grader Zygote, started at once, and stopped when ``stack`` (an
    ExitStack) closes; ``z.wait()`` gives each one's address. Their imports, a few seconds
    each, overlap each other and whatever the caller does before it waits."""
    pair = (Zygote("kernel"), Zygote("grader"))
    for z in pair:
        stack.push(z)
        z.start()
    return pair


def fork(address, **request):
    """Ask the Zygote at ``address`` for a process; its Forked, or None when it cannot."""
    import socket

    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(30.0)
            s.connect("\0" + address["socket"])
            s.sendall((json.dumps({"token": address["token"], **request}) + "\n").encode())
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
    """A notebook output (nbformat v4, as a plain dict) from a message's content."""
    if kind == "stream":
        return {"output_type": "stream", "name": str(content.get("name", "stdout")),
                "text": str(content.get("text", ""))}
    if kind == "error":
        return {"output_type": "error", "ename": str(content.get("ename", "")),
                "evalue": str(content.get("evalue", "")),
                "traceback": [str(t) for t in content.get("traceback", [])][:50]}
    data = content.get("data", {})
    data = {k: v for k, v in data.items() if isinstance(k, str) and isinstance(v, (str, dict, list))} \
        if isinstance(data, dict) else {}
    if kind == "execute_result":
        return {"output_type": "execute_result", "data": data, "metadata": {},
                "execution_count": None}
    return {"output_type": "display_data", "data": data, "metadata": {}}


def note(text):
    """A stderr output saying what the grader did to a cell."""
    return {"output_type": "stream", "name": "stderr", "text": text + "\n"}
