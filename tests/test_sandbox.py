"""The walls around a student's kernel, one by one (the hostile class of tests/adversarial
attacks them all together, as a class would).

- ``kernel.readable``: what a kernel may read, decided in one place; the virtualenv inside a
  hidden course stays readable, a hidden path inside something readable is covered;
- ``sandbox.enter`` as a cold start runs it: the kernel reads none of the course, writes
  only its working folder (within its quota) and makes only sockets beside its connection
  file, has no TCP, signals nothing outside, sees only its own processes and devices, has
  no capabilities and cannot make a user namespace of its own; with the namespaces turned
  off (AUTOGRADER_DISABLE_WALLS) Landlock alone still hides the course;
- ``cgroups``: a group per kernel, limited, counted, killed whole and removed;
- the watches, with and without a cgroup: a fork bomb is defused, a memory hog killed;
- ``Kernel``: warm and cold starts, the test server reached only through the socket pair,
  nothing left once it is killed or once its warm parent dies.
"""
import dataclasses
import json
import os
import subprocess
import sys
import threading
import time

import psutil
import pytest

from autograder.grading import cgroups, kernel as kernel_mod
from autograder.grading.kernel import Kernel, Sandbox, Zygote, readable

MISSING = dict(kernel_mod.missing_walls())
needs_walls = pytest.mark.skipif(bool(MISSING), reason="walls missing on this machine: "
                                 + "; ".join(f"{w} ({why})" for w, why in MISSING.items()))
needs_cgroup = pytest.mark.skipif(not kernel_mod.machine_walls().cgroup,
                                  reason=f"no cgroup: {kernel_mod.machine_walls().why.get('cgroup')}")


# ----------------------------------------------------------------------------- readable
def test_what_a_kernel_reads_is_decided_in_one_place(tmp_path):
    """A hidden folder holding the grader's own Python (the course with its .venv inside)
    keeps that Python readable; a hidden path inside a readable folder is covered."""
    prefix = os.path.realpath(sys.prefix)
    roots, links, masks = readable([os.path.dirname(prefix)])
    assert prefix in roots or any(prefix.startswith(r + "/") for r in roots)
    assert not any(r == os.path.dirname(prefix) for r in roots)
    inside = os.path.join(prefix, "lib")
    roots, _, masks = readable([inside])
    assert inside in masks
    assert all(not r.startswith(inside) for r in roots)
    for link, target in links.items():
        assert os.path.islink(link) and os.readlink(link) == target


# ----------------------------------------------------------------------------- enter
SANDBOXED = r'''
import ctypes, json, os, socket, sys
secret, chan, extra = sys.argv[1], sys.argv[2], sys.argv[3]
out = {}
def attempt(name, fn):
    try:
        fn(); out[name] = True
    except OSError:
        out[name] = False
attempt("read_hidden", lambda: open(secret).read())
attempt("read_shadow", lambda: open("/etc/shadow").read())
attempt("read_under_tmp", lambda: open(extra).read())
attempt("write_outside", lambda: open("/tmp/outside-%d" % os.getpid(), "w").write("x"))
attempt("write_chan", lambda: open(os.path.join(chan, "planted"), "w").write("x"))
s = socket.socket(socket.AF_UNIX)
attempt("socket_in_chan", lambda: s.bind(os.path.join(chan, "a.sock")))
attempt("write_work", lambda: open("here.txt", "w").write("x"))
def fill():
    with open("fill.bin", "wb") as f:
        for _ in range(64):
            f.write(b"\0" * (1 << 20))
attempt("fill_64_mib", fill)
attempt("tcp", lambda: socket.create_connection(("127.0.0.1", 9), timeout=2))
attempt("signal_parent", lambda: os.kill(os.getppid(), 0))
attempt("dev_null", lambda: open("/dev/null", "w").write("x"))
attempt("dev_pts", lambda: open("/dev/pts/0", "w").write("x"))
out["nested_userns"] = ctypes.CDLL(None).unshare(0x10000000) == 0
out["pids"] = sorted(int(p) for p in os.listdir("/proc") if p.isdigit())
out["caps"] = [l.split()[1] for l in open("/proc/self/status") if l.startswith("CapEff")][0]
import numpy
out["numpy"] = True
print(json.dumps(out))
'''


def _enter(tmp_path, **switch):
    """Run SANDBOXED in the sandbox of a kernel whose course is ``tmp_path/course``;
    (what it found, what the sandbox reported)."""
    course = tmp_path / "course"
    (course / "solutions").mkdir(parents=True)
    secret = course / "gradebook.db"
    secret.write_text("grades")
    work, chan = tmp_path / "grade" / "work", tmp_path / "grade" / "chan" / "k1"
    work.mkdir(parents=True)
    k = Kernel(work, chan, hidden=[str(course)], sandbox=Sandbox(disk=32 << 20))
    machine = dataclasses.replace(kernel_mod.machine_walls(), **switch)
    spec = k.spec(kernel_mod._kernel_uid() if machine.own_uid else None, [])
    spec["namespaces"] = machine.namespaces
    spec["cgroups"] = []
    # a readable folder under /tmp, as a virtualenv there (the kernel's /tmp is a tmpfs)
    extra = tmp_path / "packages" / "module.py"
    extra.parent.mkdir()
    extra.write_text("x = 1")
    spec["read"].append(str(extra.parent))
    if spec["uid"] is not None:
        os.chown(chan, spec["uid"], spec["uid"])
    (chan.parent / "spec.json").write_text(json.dumps(spec))
    proc = subprocess.run([sys.executable, "-m", "autograder.grading.sandbox",
                           str(chan.parent / "spec.json"), "--", sys.executable, "-c", SANDBOXED,
                           str(secret), str(chan), str(extra)], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1]), json.loads((chan / "walls.json").read_text())


@needs_walls
def test_the_kernels_walls(tmp_path):
    got, walls = _enter(tmp_path)
    assert got == {"read_hidden": False, "read_shadow": False, "read_under_tmp": True,
                   "write_outside": False,
                   "write_chan": False, "socket_in_chan": True, "write_work": True,
                   "fill_64_mib": False, "tcp": False, "signal_parent": False, "dev_null": True,
                   "dev_pts": False, "nested_userns": False, "pids": [1, 2],
                   "caps": "0000000000000000", "numpy": True}
    assert all(walls[w] for w in ("user namespace", "pid namespace", "mount namespace",
                                  "ipc namespace", "network namespace", "disk quota",
                                  "no capabilities", "no nested namespaces"))
    assert walls["landlock"] >= 6


@pytest.mark.skipif(kernel_mod.machine_walls().landlock < 6,
                    reason="this Linux has no Landlock with scoped signals (ABI 6)")
def test_without_namespaces_landlock_still_hides_the_course(tmp_path):
    got, walls = _enter(tmp_path, namespaces=False, own_uid=False)
    assert got["read_hidden"] is False and got["write_outside"] is False
    assert got["read_under_tmp"] is True and got["tcp"] is False and got["signal_parent"] is False and got["numpy"] is True
    assert got["write_chan"] is False and got["socket_in_chan"] is True
    assert len(got["pids"]) > 2  # no PID namespace: the host's processes are listed
    assert not walls.get("pid namespace") and walls["landlock"] >= 6


def test_walls_can_be_switched_off_by_name_only(monkeypatch):
    monkeypatch.setenv("AUTOGRADER_DISABLE_WALLS", "namespaces, cgroup")
    assert kernel_mod._switched_off() == {"namespaces", "cgroup"}
    monkeypatch.setenv("AUTOGRADER_DISABLE_WALLS", "namespaces,firewall")
    with pytest.raises(ValueError, match="AUTOGRADER_DISABLE_WALLS: expected names among"):
        kernel_mod._switched_off()


# ----------------------------------------------------------------------------- cgroups
@needs_cgroup
def test_a_kernels_cgroup_counts_kills_and_goes():
    group = cgroups.Cgroup.create(256 << 20, 64)
    try:
        child = subprocess.Popen([sys.executable, "-c", "import os, time\n"
                                  "os.setsid()\nif os.fork() == 0:\n    os.setsid()\n"
                                  "time.sleep(60)"],
                                 preexec_fn=lambda: [open(f, "w").write(str(os.getpid()))
                                                     for f in group.procs_files()])
        deadline = time.monotonic() + 10
        while len(group.members()) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(group.members()) == 2  # the orphan in a session of its own is counted
        assert group.kill() and group.members() == []
        child.wait(timeout=10)
    finally:
        group.remove()
    assert not any(os.path.exists(f) for f in group.folders.values())
    # a status file naming anything but a kernel group under this machine's bases is refused
    assert cgroups.Cgroup.from_json({"version": group.version,
                                     "folders": {c: "/sys/fs/cgroup" for c in group.folders}}) is None
    assert cgroups.Cgroup.from_json(group.to_json()) is not None


# ----------------------------------------------------------------------------- the watches
def _session_leader(tmp_path, code):
    """A Python process leading its own session, running ``code`` (like a kernel)."""
    return subprocess.Popen([sys.executable, "-c", code], start_new_session=True, cwd=tmp_path)


def _watched(tmp_path, proc, sandbox):
    """A Kernel watching ``proc`` as its kernel, without cgroup or namespaces (the
    fallback on a machine that has neither)."""
    k = Kernel(tmp_path / "w", tmp_path / "c", sandbox=sandbox)
    k.proc, k._own = proc, {proc.pid}
    k._watch = threading.Thread(target=k._watch_kernel, daemon=True)
    k._watch.start()
    return k


def test_without_a_cgroup_the_watch_kills_a_session_over_its_memory(tmp_path):
    """The hog's child holds the memory: the session's sum counts, not the leader's own."""
    hog = _session_leader(tmp_path, "import os, time\nif os.fork() == 0:\n"
                          "    b = bytearray(400 << 20)\n    b[::4096] = b'x' * len(b[::4096])\n"
                          "time.sleep(120)\n")
    k = _watched(tmp_path, hog, Sandbox(memory=200 << 20))
    k._watch.join(timeout=30)
    assert not k._watch.is_alive() and k.memory_exceeded
    hog.wait(timeout=10)
    assert not kernel_mod._session(hog.pid)


def test_without_a_cgroup_a_fork_bomb_is_defused_and_the_kernel_goes_on(tmp_path):
    bomb = _session_leader(tmp_path, "import os, time\nfor _ in range(40):\n"
                           "    if os.fork() == 0:\n        time.sleep(120)\n        os._exit(0)\n"
                           "time.sleep(120)\n")
    k = _watched(tmp_path, bomb, Sandbox(max_children=8))
    deadline = time.monotonic() + 30
    while not k.defused and time.monotonic() < deadline:
        time.sleep(0.1)
    try:
        assert kernel_mod.Defused.PROCESSES in k.defused and bomb.poll() is None
        time.sleep(0.5)
        assert [p.pid for p in kernel_mod._session(bomb.pid)] == [bomb.pid]
        assert not k.memory_exceeded
    finally:
        psutil.Process(bomb.pid).kill()
        bomb.wait()


def test_forked_copies_are_not_counted_as_memory_they_share(tmp_path):
    """Twenty forks of a 150 MiB process share its pages: under a 1 GiB limit the watch
    leaves them alone."""
    sharer = _session_leader(tmp_path, "import os, time\nb = bytearray(150 << 20)\n"
                             "b[::4096] = b'x' * len(b[::4096])\nfor _ in range(20):\n"
                             "    if os.fork() == 0:\n        time.sleep(120)\n        os._exit(0)\n"
                             "time.sleep(120)\n")
    k = _watched(tmp_path, sharer, Sandbox(memory=1 << 30, max_children=32))
    try:
        deadline = time.monotonic() + 20
        while len(psutil.Process(sharer.pid).children()) < 20 and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(1.0)  # five rounds of the watch
        assert not k.memory_exceeded and sharer.poll() is None
    finally:
        for p in psutil.Process(sharer.pid).children() + [psutil.Process(sharer.pid)]:
            p.kill()
        sharer.wait()


@needs_walls
def test_with_a_cgroup_processes_out_of_memory_are_killed_and_the_kernel_goes_on(tmp_path):
    """Two 1.2 GiB processes in sessions of their own, in a 2 GiB cgroup: the kernel's
    out-of-memory killer takes one, the watch the other; the kernel goes on."""
    (tmp_path / "w").mkdir()
    hog = "b = bytearray(1200 << 20)\\nb[::4096] = b'x' * len(b[::4096])\\nimport time\\ntime.sleep(60)"
    with Zygote("kernel") as address:
        k = Kernel(tmp_path / "w", tmp_path / "c" / "k1", sandbox=Sandbox(memory=2 << 30),
                   zygote=address)
        try:
            k.start()
            run = k.execute("import subprocess, sys, time\n"
                            f"ps = [subprocess.Popen([sys.executable, '-c', \"{hog}\"], "
                            "start_new_session=True) for _ in range(2)]\n"
                            "end = time.time() + 30\n"
                            "while time.time() < end and all(p.poll() is None for p in ps):\n"
                            "    time.sleep(0.2)\n"
                            "time.sleep(2)\nprint(sum(p.poll() is None for p in ps))", 60)
            assert run.status == "ok" and k.alive()
            deadline = time.monotonic() + 5  # the watch looks a few times a second
            while kernel_mod.Defused.MEMORY not in k.defused and time.monotonic() < deadline:
                time.sleep(0.1)
            assert kernel_mod.Defused.MEMORY in k.defused
            assert int(run.outputs[-1]["text"]) < 2
            assert k.execute("print(6 * 7)", 30).outputs[0]["text"] == "42\n"
        finally:
            k.kill()


# ----------------------------------------------------------------------------- Kernel
def test_a_kernel_starts_cold_when_its_zygote_is_gone(tmp_path):
    """No warm parent at the address (it died, or never started): the kernel is a fresh
    Python in the same sandbox, and runs the cells all the same."""
    (tmp_path / "w").mkdir()
    k = Kernel(tmp_path / "w", tmp_path / "c", zygote={"socket": "autograder-zygote-gone",
                                                      "token": "0" * 32})
    try:
        k.start()
        assert not k.walls.get("warm start")
        run = k.execute("print(6 * 7)", 30)
        assert run.status == "ok" and run.outputs[0]["text"] == "42\n"
    finally:
        k.kill()


def test_a_warm_kernel_starts_without_what_slowed_it(tmp_path):
    """What makes a forked kernel start in a tenth of a second: the zygote's objects frozen
    out of the garbage collector, no debugpy, the history in memory."""
    (tmp_path / "w").mkdir()
    with Zygote("kernel") as address:
        k = Kernel(tmp_path / "w", tmp_path / "c", zygote=address)
        try:
            k.start()
            assert k.walls.get("warm start")
            run = k.execute("import gc, sys\nprint(gc.get_freeze_count() > 0, "
                            "sys.modules.get('debugpy'), "
                            "get_ipython().history_manager.hist_file)", 30)
            assert run.status == "ok" and run.outputs[0]["text"] == "True None :memory:\n"
        finally:
            k.kill()


def test_a_message_over_the_limit_is_said_and_the_later_cells_keep_their_outputs(tmp_path):
    """zmq drops the kernel's end of the outputs' socket for a message over its size limit
    and does not reconnect it: the cell says what was refused, the grader connects again."""
    (tmp_path / "w").mkdir()
    k = Kernel(tmp_path / "w", tmp_path / "c")
    try:
        k.start()
        run = k.execute(f"print('x' * {kernel_mod.MESSAGE_LIMIT + (1 << 20)})", 60)
        assert run.status == "ok"
        assert [o["text"] for o in run.outputs] == [
            "[the grader refused an output of this cell over its size limit (16 MiB)]\n"]
        for _ in range(3):
            assert k.execute("print(6 * 7)", 30).outputs == [
                {"output_type": "stream", "name": "stdout", "text": "42\n"}]
    finally:
        k.kill()


def test_output_over_the_budget_keeps_what_fits_whatever_the_flushes(tmp_path):
    """A cell's output is kept up to the budget (1 MiB, counted as the messages' JSON) in
    whole lines, then a note, whether the kernel sends its text as one message larger than
    the budget or as many (500: Jupyter's outputs channel may drop messages past about a
    thousand queued, so more would test the protocol, not the grader)."""
    import json

    (tmp_path / "w").mkdir()
    k = Kernel(tmp_path / "w", tmp_path / "c")
    budget = kernel_mod.OUTPUT_BUDGET
    cases = {20: "print('\\n'.join(f'{i:>20}' for i in range(200_000)))",  # 4 MB, one message
             7999: "import sys\nfor i in range(500):\n    print(f'{i:>7999}'); sys.stdout.flush()"}
    try:
        k.start()
        for width, code in cases.items():
            run = k.execute(code, 60)
            assert run.status == "ok"
            *kept, last = run.outputs
            assert last["text"] == "[the grader cut the rest of this cell's output]\n"
            size = sum(len(json.dumps({"name": o["name"], "text": o["text"]})) for o in kept)
            assert budget - 2 * (width + 64) < size <= budget, (width, size)
            lines = "".join(o["text"] for o in kept).split("\n")
            assert lines[-1] == "" and lines[:-1] == [f"{i:>{width}}" for i in range(len(lines) - 1)]
    finally:
        k.kill()


def _alive(pids, wait=5.0):
    """Those of ``pids`` still running (not zombies) after up to ``wait`` s."""
    deadline = time.monotonic() + wait
    while True:
        alive = []
        for p in pids:
            try:
                if psutil.Process(p).status() != psutil.STATUS_ZOMBIE:
                    alive.append(p)
            except psutil.NoSuchProcess:
                pass
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.05)


def _kernel_processes(k):
    return [p for p in psutil.pids() if p in k._own or
            (k.cgroup is not None and p in k.cgroup.members())]


def test_the_test_server_is_reached_only_through_the_socket_pair(tmp_path):
    """No socket of the kernel's but Jupyter's own beside the connection file; a connection
    over the pair reaches the notebook's namespace; once the kernel is killed, nothing of it
    is left and the pair is closed."""
    from coursekit import serve, wire

    (tmp_path / "w").mkdir()
    with Zygote("kernel") as address:
        k = Kernel(tmp_path / "w", tmp_path / "c" / "k1", zygote=address)
        k.start()
        try:
            assert k.execute("answer = 42", 30).status == "ok"
            conn = k.connect()
            serve.send(conn, wire.encode({"op": "describe", "name": "answer"}))
            assert wire.decode(serve.recv(conn))["type"] == "int"
            conn.close()
            sockets = sorted(p.name for p in k.chan.iterdir() if p.is_socket())
            assert sockets == [f"k-{i}" for i in range(1, 6)]  # Jupyter's five channels
            pids = _kernel_processes(k)
            assert len(pids) >= 2
        finally:
            k.kill()
        assert not _alive(pids)
        with pytest.raises(OSError):
            k.connect()
        if k.cgroup is not None:
            assert not any(os.path.exists(f) for f in k.cgroup.folders.values())


def test_a_kernel_goes_with_its_warm_parent(tmp_path):
    """The user id change clears the parent-death signal: it is set again, so that a warm
    parent killed with the grader takes its kernels down with it."""
    (tmp_path / "w").mkdir()
    z = Zygote("kernel")
    z.start()
    address = z.wait()
    k = Kernel(tmp_path / "w", tmp_path / "c" / "k1", zygote=address)
    k.start()
    pids = list(k._own)
    try:
        os.kill(z.proc.pid, 9)  # the warm parent alone: its kernels must follow
        assert not _alive(pids, wait=10)
    finally:
        k.kill()
        z.__exit__(None, None, None)


def test_importing_the_grader_keeps_the_slow_schema_module_out():
    code = ("import autograder, nbformat, sys\n"
            "nbformat.validate(nbformat.v4.new_notebook())\n"
            "print(sys.modules.get('rfc3987_syntax', 'absent'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "None"


# ----------------------------------------------------------------------------- missing walls
def test_a_run_without_some_walls_says_so_and_records_what_stood(tmp_path):
    """On a machine without namespaces or cgroups (here: turned off), the run says at its
    start which walls are missing, each student's ``walls`` says what stood, and grading
    is the same; a wall name the grader does not know is refused."""
    from test_grading_durability import make_class, make_course

    course = make_course(tmp_path / "course")
    folder = make_class(course, tmp_path / "class")
    out = tmp_path / "off.json"
    env = {**os.environ, "AUTOGRADER_DISABLE_WALLS": "namespaces,cgroup"}
    run = subprocess.run([sys.executable, "-m", "autograder.cli", "grade", "toy", str(folder),
                          "--course", str(course), "--json", str(out), "--quiet"],
                         env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "walls missing on this machine" in run.stderr
    assert "namespaces (user, PID, mount, IPC, network)" in run.stderr and "cgroup" in run.stderr
    results = json.loads(out.read_text())
    for r in results.values():
        assert not r["walls"].get("pid namespace") and not r["walls"].get("cgroup")
        assert r["walls"].get("processes")  # RLIMIT_NPROC instead of pids.max
    on = tmp_path / "on.json"
    assert subprocess.run([sys.executable, "-m", "autograder.cli", "grade", "toy", str(folder),
                           "--course", str(course), "--json", str(on), "--quiet"],
                          capture_output=True, timeout=600).returncode == 0
    strip = lambda r: {s: (v["score"], v["status"]) for s, v in r.items()}  # noqa: E731
    assert strip(results) == strip(json.loads(on.read_text()))
    bad = subprocess.run([sys.executable, "-m", "autograder.cli", "grade", "toy", str(folder),
                          "--course", str(course)], capture_output=True, text=True,
                         env={**os.environ, "AUTOGRADER_DISABLE_WALLS": "firewall"}, timeout=120)
    assert bad.returncode == 2
    assert "AUTOGRADER_DISABLE_WALLS: expected names among namespaces, cgroup, landlock" in bad.stderr
