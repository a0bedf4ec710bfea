"""The boundary between the grader and a student's kernel, piece by piece.

- coursekit.wire carries plain data only: exact types, numeric dtypes, no pickle; anything
  else arrives as an Unsupported named after it, and malformed bytes are an error;
- coursekit.serve reports crashes (even SystemExit), in-place writes and aliasing as data;
- the sandbox keeps the kernel from reading hidden paths, writing outside its folder,
  opening TCP connections and signalling other processes.
"""
import io
import json
import struct
import subprocess
import sys

import numpy as np
import pytest
import torch

from autograder.grading.sandbox import landlock_abi
from coursekit import wire
from coursekit.serve import Executor


def test_plain_data_round_trips_with_exact_types():
    gen = np.random.default_rng(3)
    gen.random()
    value = {"a": np.arange(6.0).reshape(2, 3)[:, ::2], "n": 7, "big": 2**80, "x": 0.1,
             "nan": float("nan"), "s": "é", "t": (1, [None, True]), "i64": np.int64(5),
             "f32": np.float32(1.5), "zero_d": np.array(2.0), "rng": gen,
             "tensor": torch.arange(3.0, dtype=torch.float64).requires_grad_()}
    got = wire.roundtrip(value)
    assert got.keys() == value.keys()
    assert type(got["a"]) is np.ndarray and np.array_equal(got["a"], value["a"])
    assert got["zero_d"].shape == () and type(got["i64"]) is np.int64 and type(got["f32"]) is np.float32
    assert got["big"] == 2**80 and np.isnan(got["nan"]) and got["t"] == (1, [None, True])
    assert got["rng"].random() == gen.random()  # the same state, so the same next draw
    assert type(got["tensor"]) is torch.Tensor and got["tensor"].dtype == torch.float64
    assert got["tensor"].requires_grad


@pytest.mark.parametrize("value, name", [
    (np.zeros(3).view(type("Evil", (np.ndarray,), {})), "Evil"),
    (type("F", (float,), {})(1.0), "F"),
    (type("Liar", (), {"__eq__": lambda s, o: True})(), "Liar"),
    (np.array([object()], dtype=object), "ndarray"),
    ({1: 2}, "dict"),
    (torch.zeros(2).as_subclass(type("T", (torch.Tensor,), {})), "T"),
])
def test_anything_else_arrives_as_its_type_name_only(value, name):
    got = wire.roundtrip(value)
    assert isinstance(got, wire.Unsupported) and type(got).__name__.startswith(name)
    assert got != 0 and not isinstance(got, (np.ndarray, float))


def test_malformed_messages_are_refused_without_running_anything(tmp_path):
    good = wire.encode({"a": np.ones(2)})
    for bad in (b"", b"x" * 7, good[:20], struct.pack("<Q", 10**12) + b"{}", b"\0" * 8 + b"junk"):
        with pytest.raises(wire.WireError):
            wire.decode(bad)
    # an object array (which np.load could only read by unpickling) is refused
    marker = tmp_path / "ran"
    buf = io.BytesIO()
    np.save(buf, np.array([print], dtype=object), allow_pickle=True)
    z = io.BytesIO()
    import zipfile
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("arr_0.npy", buf.getvalue())
    tree = json.dumps({"t": "array", "i": 0}).encode()
    with pytest.raises(wire.WireError):
        wire.decode(struct.pack("<Q", len(tree)) + tree + z.getvalue())
    assert not marker.exists()


def test_the_executor_reports_crashes_writes_and_aliases_as_data():
    ns = {}
    exec("import sys\n"
         "def quits(x):\n    sys.exit(3)\n"
         "def scales(x):\n    x *= 2\n    return x\n"
         "def same(d):\n    return {'k': d['k']}\n", ns)
    ex = Executor(ns, reference=None)

    def call(name, *args, **kw):
        return wire.roundtrip(ex.handle(wire.roundtrip({"op": "call", "name": name,
                                                        "args": list(args), **kw})))

    assert call("quits", 1)["error"]["type"] == "SystemExit"
    assert call("scales", np.ones(2))["modified"] == ["x"]
    assert call("same", {"k": np.ones(2)}, aliases=True)["aliases"] == [["['k']", "d['k']"]]
    assert wire.roundtrip(ex.handle({"op": "describe", "name": "nope"})) == {"kind": "missing"}


SANDBOXED = r'''
import json, os, socket, sys
out = {}
try:
    open(sys.argv[1]).read(); out["read_hidden"] = True
except OSError:
    out["read_hidden"] = False
try:
    open("/tmp/outside-" + str(os.getpid()), "w").write("x"); out["write_outside"] = True
except OSError:
    out["write_outside"] = False
try:
    socket.create_connection(("127.0.0.1", 9), timeout=2); out["tcp"] = True
except OSError as e:
    out["tcp"] = e.errno not in (1, 13, 101, 111) and str(e)
try:
    os.kill(os.getppid(), 0); out["signal"] = True
except OSError:
    out["signal"] = False
import numpy
out["numpy"] = True
print(json.dumps(out))
'''


@pytest.mark.skipif(landlock_abi() < 6, reason="this kernel has no Landlock (ABI 6: signals "
                                               "and sockets scoped); the walls cannot be tested")
def test_the_sandbox_walls(tmp_path):
    from autograder.grading.kernel import _read_paths

    secret = tmp_path / "course" / "gradebook.db"
    secret.parent.mkdir()
    secret.write_text("grades")
    work = tmp_path / "work"
    work.mkdir()
    spec = {"network": False, "memory": 4 << 30, "processes": 256,
            "read": _read_paths([str(tmp_path)]), "write": [str(work)]}
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    proc = subprocess.run([sys.executable, "-m", "autograder.grading.sandbox",
                           str(tmp_path / "spec.json"), "--", sys.executable, "-c", SANDBOXED,
                           str(secret)], capture_output=True, text=True, cwd=work, timeout=60)
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert got == {"read_hidden": False, "write_outside": False, "tcp": False, "signal": False,
                   "numpy": True}


def _session_leader(tmp_path, code):
    """A Python process leading its own session, running ``code`` (like a kernel)."""
    return subprocess.Popen([sys.executable, "-c", code], start_new_session=True, cwd=tmp_path)


def test_the_memory_watch_kills_a_session_over_its_resident_memory(tmp_path):
    """With CUDA the address space is not capped; the watch over resident memory (the
    kernel and every process it started) is what stops a memory hog there."""
    import threading

    from autograder.grading.kernel import Kernel, Sandbox, _session

    # the hog's child holds the memory: the session's sum counts, not the leader's own
    hog = _session_leader(tmp_path, "import os, time\nif os.fork() == 0:\n"
                          "    b = bytearray(400 << 20)\n    b[::4096] = b'x' * len(b[::4096])\n"
                          "time.sleep(120)\n")
    k = Kernel(tmp_path / "w", tmp_path / "c", sandbox=Sandbox(memory=200 << 20))
    k.proc = hog
    watch = threading.Thread(target=k._watch_memory, daemon=True)
    watch.start()
    watch.join(timeout=30)
    assert not watch.is_alive() and k.memory_exceeded
    hog.wait(timeout=10)  # killed (and reaped by the watch), with the rest of its session
    assert not _session(hog.pid)


def test_a_fork_bomb_is_defused_and_the_kernel_goes_on(tmp_path):
    import threading
    import time

    import psutil

    from autograder.grading.kernel import Kernel, Sandbox, _session

    bomb = _session_leader(tmp_path, "import os, time\nfor _ in range(40):\n"
                           "    if os.fork() == 0:\n        time.sleep(120)\n        os._exit(0)\n"
                           "time.sleep(120)\n")
    k = Kernel(tmp_path / "w", tmp_path / "c", sandbox=Sandbox(max_children=8))
    k.proc = bomb
    threading.Thread(target=k._watch_memory, daemon=True).start()
    deadline = time.monotonic() + 30
    while not k.defused and time.monotonic() < deadline:
        time.sleep(0.1)
    try:
        assert k.defused >= 1 and bomb.poll() is None  # the children went, the kernel stays
        time.sleep(0.5)
        assert [p.pid for p in _session(bomb.pid)] == [bomb.pid]
        assert not k.memory_exceeded
    finally:
        psutil.Process(bomb.pid).kill()
        bomb.wait()


def test_forked_copies_are_not_counted_as_memory_they_share(tmp_path):
    """Twenty forks of a 150 MiB process hold 20 x 150 MiB of resident pages, but share
    them: under a 1 GiB limit the watch leaves them alone."""
    import threading
    import time

    import psutil

    from autograder.grading.kernel import Kernel, Sandbox

    sharer = _session_leader(tmp_path, "import os, time\nb = bytearray(150 << 20)\n"
                             "b[::4096] = b'x' * len(b[::4096])\nfor _ in range(20):\n"
                             "    if os.fork() == 0:\n        time.sleep(120)\n        os._exit(0)\n"
                             "time.sleep(120)\n")
    k = Kernel(tmp_path / "w", tmp_path / "c", sandbox=Sandbox(memory=1 << 30, max_children=32))
    k.proc = sharer
    threading.Thread(target=k._watch_memory, daemon=True).start()
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


def test_a_kernel_starts_cold_when_its_zygote_is_gone(tmp_path):
    """No warm parent at the address (it died, or never started): the kernel is a fresh
    Python in the same sandbox, and runs the cells all the same."""
    from autograder.grading.kernel import Kernel

    (tmp_path / "w").mkdir()
    k = Kernel(tmp_path / "w", tmp_path / "c", zygote={"socket": "autograder-zygote-gone",
                                                      "token": "0" * 32})
    try:
        k.start()
        assert not k.walls.get("warm start") and k.walls.get("network namespace")
        run = k.execute("print(6 * 7)", 30)
        assert run.status == "ok" and run.outputs[0]["text"] == "42\n"
    finally:
        k.kill()


def test_a_warm_kernel_starts_without_what_slowed_it(tmp_path):
    """What makes a forked kernel start in a tenth of a second: the zygote's objects frozen
    out of the garbage collector, no debugpy, the history in memory."""
    from autograder.grading.kernel import Kernel, Zygote

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


def test_importing_the_grader_keeps_the_slow_schema_module_out():
    code = ("import autograder, nbformat, sys\n"
            "nbformat.validate(nbformat.v4.new_notebook())\n"
            "print(sys.modules.get('rfc3987_syntax', 'absent'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "None"
