"""A warm parent for students' kernels: python kernel_zygote.py (run as a script).

It imports what every course notebook imports (numpy, matplotlib, torch, IPython's
kernel) once, runs nothing with them, and then forks a fresh process per kernel. The child
puts up the sandbox (``sandbox.enter``: cgroup, namespaces, a root of its own, Landlock)
before anything else and becomes the IPython kernel, so each submission still gets a
process of its own, starting with those imports done (``benchmarks/grading.py`` measures
what that saves).

It is started without the ``autograder`` package on its path and never imports it: what a
forked kernel holds in memory is numpy, torch, IPython and ``coursekit``, never a hidden
check or the reference. Requests arrive on an abstract Unix socket (unreachable from a
kernel, which lives in its own network namespace and is scoped by Landlock) and carry a
token that the grader's process read from this process's first line of output.

Protocol: one JSON line {"token", "fds", ...} per connection, sent with ``fds`` descriptors
(SCM_RIGHTS: for a kernel, its end of the test server's control socket); the answer is one
JSON line {"pid"} (or {"error"}). A kernel's request names its sandbox ``spec`` and
``connection_file``.
"""
import gc
import json
import os
import secrets
import signal
import socket
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def _load_sandbox():
    import importlib.util

    spec = importlib.util.spec_from_file_location("_autograder_sandbox",
                                                  os.path.join(HERE, "sandbox.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def warm_up():
    """Import what the kernels will need; start no thread and run no torch op.

    debugpy is made unimportable first: a grading kernel is never debugged, and importing
    it (which ipykernel does for every kernel it starts) was most of a kernel's start.
    """
    sys.modules["debugpy"] = None  # ipykernel.debugger then sets _is_debugpy_available = False
    # pyplot with the inline backend named (MPLBACKEND) but not loaded: it loads, and hooks
    # into the kernel's shell to show each cell's figures, at the kernel's first plot
    import matplotlib.pyplot  # noqa: F401
    import numpy  # noqa: F401
    try:
        import torch  # noqa: F401
    except ImportError:
        pass
    import ipykernel.kernelapp  # noqa: F401
    # what IPKernelApp.initialize would import after the fork (the shell, its history)
    import ipykernel.debugger  # noqa: F401
    import ipykernel.ipkernel  # noqa: F401
    import ipykernel.zmqshell  # noqa: F401
    import IPython.core.debugger  # noqa: F401  (IPKernelApp.init_pdb)
    import IPython.core.history  # noqa: F401
    import pdb  # noqa: F401
    import sqlite3  # noqa: F401
    import coursekit.serve  # noqa: F401


def become_kernel(sandbox, req):
    """In the forked child: walls first (``sandbox.enter``), then IPython's kernel on the
    connection file, with the test server on the descriptor the grader handed over."""
    try:
        with open(req["spec"]) as f:
            spec = json.load(f)
        serve_fd = req["fds"][0]
        spec["keep_fds"] = [serve_fd]  # its number here, not in the grading process
        spec["warm"] = True
        sandbox.enter(spec)
        os.environ.clear()
        os.environ.update(spec.get("env") or {})
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        os.close(null)
        sys.modules.pop("_autograder_sandbox", None)
        sys.path.insert(0, "")  # as `python -m ipykernel_launcher` has it: the notebook's folder
        from coursekit.serve import run_kernel

        run_kernel(req["connection_file"], serve_fd)
    finally:
        os._exit(0)


def fork_server(run_child, prctl):
    """Fork ``run_child(request)`` per request; never returns. Prints its address first.

    ``prctl`` is libc's prctl (to die with the parent: PR_SET_PDEATHSIG). The server stays
    single-threaded, so that a fork copies no lock held by another thread.
    """
    token = secrets.token_hex(16)
    name = f"\0autograder-zygote-{secrets.token_hex(8)}"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(name)
    server.listen(64)
    server.settimeout(1.0)
    prctl(1, signal.SIGKILL, 0, 0, 0)

    def reap(*_):  # at once: whoever waits for a child of ours to be gone waits for this
        try:
            while os.waitpid(-1, os.WNOHANG)[0] > 0:
                pass
        except ChildProcessError:
            pass

    signal.signal(signal.SIGCHLD, reap)
    # what is in memory now is shared with every child: kept out of their garbage
    # collections, which would otherwise touch (and copy) it page by page
    gc.freeze()
    print(json.dumps({"socket": name[1:], "token": token}), flush=True)
    while True:
        reap()
        try:
            conn, _ = server.accept()
        except socket.timeout:
            continue
        with conn:
            fds = []
            try:
                conn.settimeout(10.0)
                data, fds, _, _ = socket.recv_fds(conn, 1 << 16, 4)
                while not data.endswith(b"\n"):
                    more = conn.recv(1 << 16)
                    if not more:
                        raise ValueError("truncated request")
                    data += more
                req = json.loads(data)
                if not secrets.compare_digest(str(req.get("token")), token):
                    raise PermissionError("bad token")
                if len(fds) != req.get("fds", 0):
                    raise ValueError("descriptors missing")
                req["fds"] = fds
            except Exception as e:
                for fd in fds:
                    os.close(fd)
                conn.sendall((json.dumps({"error": type(e).__name__}) + "\n").encode())
                continue
            pid = os.fork()
            if pid == 0:
                signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                server.close()
                conn.close()
                try:
                    run_child(req)
                finally:
                    os._exit(0)
            for fd in fds:  # the child has them now
                os.close(fd)
            conn.sendall((json.dumps({"pid": pid}) + "\n").encode())


def main():
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != HERE]
    sandbox = _load_sandbox()
    warm_up()
    fork_server(lambda req: become_kernel(sandbox, req), sandbox._libc().prctl)


if __name__ == "__main__":
    main()
