"""A hostile class against the walls between processes (the lstm assignment): every
submission attacks one wall (README, Security model, threat table), several ways per wall.

A submission's attack cell reports what it reached on a line ``PROBE {json}``; the test
reads it from the executed notebook and checks that it reached nothing, besides the pinned
verdict (``FULL``; ``TARGET_ZERO``, the target lstm_step_forward made wrong; "zero of F", only F's
test at 0; "only F", only F's test scored; ``ALL_ZERO``, every test at 0).

Students whose names start with ``aa_`` and ``ab_`` are graded first and side by side
(``--jobs 2``): the victim holds a secret and prints it for twenty seconds while the class-1
attackers look for a way into its kernel. ``zz_victim_after`` is graded last, after every
process that tried to outlive its own submission.
"""
from __future__ import annotations

import json

import nbformat

from .cheats import TARGET, _cell, solved, with_cell, write, wrong

A = "lstm"
FULL, TARGET_ZERO, ALL_ZERO = "full", "target zero", "all zero"
VICTIM_SECRET = "victim-" + "secret-7f3a"  # printed by the victim, never by an attacker
LEAK = "LEAK" + "MARK"  # what class 11 puts around what it tries to smuggle out

PRELUDE = r'''
import glob as _glob, json as _json, os as _os, socket as _socket, stat as _stat, sys as _sys
import time as _time

def PROBE(**found):
    print("PROBE " + _json.dumps(found, default=str), flush=True)

def _own_chan():
    from ipykernel.kernelapp import IPKernelApp
    return _os.path.dirname(_os.path.abspath(IPKernelApp.instance().connection_file))

def _unix_names():
    """Every Unix socket listed in every /proc/*/net/unix this kernel can read."""
    names = set()
    for f in _glob.glob("/proc/*/net/unix") + ["/proc/net/unix"]:
        try:
            lines = open(f).read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            parts = line.split()
            if len(parts) >= 8:
                names.add(parts[7])
    return sorted(names)

def _socket_files(roots=("/",), skip=("/proc", "/sys")):
    found = []
    for root in roots:
        for dirpath, dirnames, filenames in _os.walk(root, onerror=lambda e: None):
            dirnames[:] = [d for d in dirnames if _os.path.join(dirpath, d) not in skip]
            for f in filenames:
                p = _os.path.join(dirpath, f)
                try:
                    if _stat.S_ISSOCK(_os.lstat(p).st_mode):
                        found.append(p)
                except OSError:
                    pass
    return found

def _connects(name):
    address = "\0" + name[1:] if name.startswith("@") else name
    for kind in (_socket.SOCK_STREAM, _socket.SOCK_SEQPACKET, _socket.SOCK_DGRAM):
        s = _socket.socket(_socket.AF_UNIX, kind)
        s.settimeout(1)
        try:
            s.connect(address)
            return True
        except OSError:
            pass
        finally:
            s.close()
    return False

def _foreign(names):
    own = _own_chan()
    return [n for n in names if not n.startswith(own)]

def _fill(path, mib):
    """Write up to ``mib`` MiB into ``path``; how many were written before a refusal."""
    written = 0
    try:
        with open(path, "wb") as f:
            for _ in range(mib):
                f.write(b"\0" * (1 << 20))
                written += 1
    except OSError:
        pass
    return written

def _try_all(discover, seconds=4, pause=0.5):
    """For ``seconds``: every foreign socket ``discover()`` lists, and the ones it reached."""
    found, connected = set(), set()
    deadline = _time.time() + seconds
    while _time.time() < deadline:
        for name in _foreign(discover()):
            found.add(name)
            if _connects(name):
                connected.add(name)
        _time.sleep(pause)
    return sorted(found), sorted(connected)
'''


def _with(code, after="setup", wrong_target=True):
    """A submission: the solved notebook (the target made wrong unless told otherwise) with
    the prelude and ``code`` in a new cell after the cell ``after``."""
    def build(folder, a=A):
        nb = solved(a)
        if wrong_target:
            wrong(nb, a)
        write(folder, with_cell(nb, PRELUDE + code, after), assignment=a)
    return build


def _replaced(function, code):
    """The answer cell of ``function`` replaced by ``code`` (the prelude before it)."""
    def build(folder, a=A):
        nb = solved(a)
        _cell(nb, function).source = PRELUDE + code
        write(folder, nb, assignment=a)
    return build


def _raw(change):
    """The solved notebook, then ``change(nb_dict)`` on its JSON, written with every
    non-ASCII character escaped (so that lone surrogates reach the file)."""
    def build(folder, a=A):
        nb = json.loads(nbformat.writes(solved(a)))
        change(nb)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{a}.ipynb").write_text(json.dumps(nb, ensure_ascii=True))
    return build


# ----------------------------------------------------------------------------- the victims
VICTIM = (f'VICTIM_SECRET = "victim-" + "secret-7f3a"\n'
          "import time\n"
          "for _ in range(40):\n"
          "    print(VICTIM_SECRET, flush=True)\n"
          "    time.sleep(0.5)\n")

# ----------------------------------------------------------------------------- 1. other kernels
REACH = {
    "proc_net_unix": r'''
found, connected = _try_all(_unix_names)
PROBE(found=found, connected=connected)
''',
    "socket_files": r'''
found, connected = _try_all(_socket_files, pause=1)
PROBE(found=found, connected=connected)
''',
    "abstract_zygote": r'''
names = [n for n in _unix_names() if n.startswith("@")]
guesses = ["@autograder-zygote-" + "%016x" % i for i in range(200)]
connected = [n for n in names + guesses if _connects(n)]
PROBE(found=[n for n in names if "autograder" in n], connected=connected)
''',
    "sniff_iopub": r'''
import zmq
ctx = zmq.Context.instance()
heard, tried = [], []
deadline = _time.time() + 4
while _time.time() < deadline:
    for name in _foreign(_unix_names() + _socket_files(("/tmp", "/run", "/var")))[:50]:
        tried.append(name)
        sub = ctx.socket(zmq.SUB)
        sub.setsockopt(zmq.SUBSCRIBE, b"")
        sub.setsockopt(zmq.LINGER, 0)
        sub.connect("ipc://" + name)
        if sub.poll(300):
            heard.append(repr(sub.recv_multipart()))
        sub.close()
    _time.sleep(0.5)
PROBE(found=sorted(set(tried)), connected=[h for h in heard if "victim-" in h])
''',
    "ptrace_and_proc": r'''
import ctypes, signal
pids = [int(p) for p in _os.listdir("/proc") if p.isdigit()]
others = [p for p in pids if p not in (_os.getpid(),)]
readable = []
for p in others:
    for what in ("environ", "cmdline", "mem"):
        try:
            with open(f"/proc/{p}/{what}", "rb") as f:
                data = f.read(4096)
            if any(w in data for w in (b"victim-", b"--db", b"postgresql", b"gradebook",
                                       b"solutions", b"AUTOGRADER_SEED")):
                readable.append(f"{p}/{what}")
        except OSError:
            pass
libc = ctypes.CDLL(None, use_errno=True)
traced = [p for p in others if libc.ptrace(16, p, 0, 0) == 0]  # PTRACE_ATTACH
signalled = []
for p in others:
    try:
        _os.kill(p, 0)
        signalled.append(p)
    except OSError:
        pass
PROBE(found=readable, connected=traced, signalled=signalled, pids=sorted(pids))
''',
}

# ----------------------------------------------------------------------------- 2. its own grader
REDIRECT = {
    "replace_zmq_sockets": r'''
chan, replaced = _own_chan(), []
for p in _glob.glob(chan + "/*"):
    if _stat.S_ISSOCK(_os.lstat(p).st_mode):
        try:
            _os.rename(p, p + ".old")
            _os.symlink("/tmp", p)
            replaced.append(p)
        except OSError:
            pass
PROBE(found=[], connected=replaced)
''',
    "plant_serve_sock": r'''
made = []
for d in (_own_chan(), _os.environ.get("JUPYTER_RUNTIME_DIR", "/tmp"), _os.getcwd(), "/tmp"):
    try:
        _os.makedirs(d, exist_ok=True)
        s = _socket.socket(_socket.AF_UNIX)
        s.bind(_os.path.join(d, "serve.sock"))
        s.listen(1)
        made.append(d)
    except OSError:
        pass
PROBE(found=[], connected=[], made=made)  # made in its chan or not, the grader never looks
''',
    "rewrite_connection_file": r'''
from ipykernel.kernelapp import IPKernelApp
path, wrote = IPKernelApp.instance().connection_file, []
try:
    info = _json.load(open(path))
    info["key"] = "forged"
    open(path, "w").write(_json.dumps(info))
    wrote.append(path)
except OSError:
    pass
try:
    open(_own_chan() + "/walls.json", "w").write('{"landlock": 99}')
    wrote.append("walls.json")
except OSError:
    pass
PROBE(found=[], connected=wrote)
''',
    "signal_everyone": r'''
import signal
hit = []
for sig in (signal.SIGTERM, signal.SIGSTOP, signal.SIGKILL):
    for target in (_os.getppid(), 1, -1):
        if target == -1 and sig != signal.SIGTERM:
            continue
        try:
            _os.kill(target, sig)
            hit.append([target, int(sig)])
        except OSError:
            pass
PROBE(found=[], connected=[h for h in hit if h[0] not in (-1,)])
''',
}
CUT_OWN_LINE = r'''
# the test server's control socket is a SOCK_SEQPACKET descriptor of this process: point it
# at a pair of our own (only this notebook's own tests can suffer)
mine = []
for fd in range(3, 256):
    try:
        s = _socket.socket(fileno=_os.dup(fd))
    except OSError:
        continue
    if s.family == _socket.AF_UNIX and s.type == _socket.SOCK_SEQPACKET:
        a, b = _socket.socketpair(_socket.AF_UNIX, _socket.SOCK_SEQPACKET)
        _os.dup2(a.fileno(), fd)
        mine.append(fd)
    s.close()
PROBE(found=[], connected=[])
'''

# ----------------------------------------------------------------------------- 3. the gradebook
GRADEBOOK = {
    "read_cmdlines": r'''
found = []
for p in _glob.glob("/proc/[0-9]*"):
    for what in ("cmdline", "environ"):
        try:
            data = open(p + "/" + what, "rb").read().replace(b"\0", b" ")
        except OSError:
            continue
        if b"--db" in data or b"postgresql" in data or b"gradebook" in data:
            found.append(p + "/" + what + ": " + data.decode(errors="replace")[:200])
PROBE(found=found, connected=[])
''',
    "postgres_sockets": r'''
names = [n for n in _unix_names() if "PGSQL" in n]
names += _glob.glob("/var/run/postgresql/.s.PGSQL.*") + _glob.glob("/run/postgresql/.s.PGSQL.*")
names += _glob.glob("/tmp/.s.PGSQL.*") + ["/var/run/postgresql/.s.PGSQL.5432"]
connected = [n for n in names if _connects(n)]
PROBE(found=sorted(set(n for n in names if _os.path.exists(n))), connected=connected)
''',
    "postgres_tcp": r'''
connected = []
for host in ("127.0.0.1", "::1", "localhost", "10.0.2.2", "172.17.0.1"):
    try:
        _socket.create_connection((host, 5432), timeout=1).close()
        connected.append(host)
    except OSError:
        pass
PROBE(found=[], connected=connected)
''',
    "psql_peer": r'''
import subprocess, shutil
done = []
psql = shutil.which("psql") or "/usr/bin/psql"
for args in (["-h", "/var/run/postgresql"], ["-h", "/tmp"], ["-h", "127.0.0.1"], []):
    for db in ("postgres", "template1"):
        try:
            r = subprocess.run([psql, *args, "-d", db, "-c",
                                "update grade set auto_score = max_score"],
                               capture_output=True, timeout=5)
            if r.returncode == 0:
                done.append(" ".join(args + [db]))
        except (OSError, subprocess.TimeoutExpired):
            pass
try:
    import psycopg
    for dsn in ("host=/var/run/postgresql dbname=postgres", "host=127.0.0.1 dbname=postgres"):
        try:
            psycopg.connect(dsn, connect_timeout=2).close()
            done.append(dsn)
        except Exception:
            pass
except ImportError:
    pass
PROBE(found=[], connected=done)
''',
    "sqlite_gradebooks": r'''
import sqlite3
found, wrote = [], []
for root in ("/", "/tmp", "/work", "/root", "/home", "..", "../.."):
    for p in _glob.glob(root + "/**/*.db", recursive=True)[:100]:
        found.append(p)
        try:
            con = sqlite3.connect(p)
            con.execute("update grade set auto_score = 100")
            con.commit()
            wrote.append(p)
        except Exception:
            pass
PROBE(found=[p for p in found if "gradebook" in p], connected=wrote)
''',
}

# ----------------------------------------------------------------------------- 4. the grader's work
_FD_STEP_BACKWARD = r'''
def lstm_step_backward(dh_next, dc_next, cache):
    """Central finite differences of the (stand-in) forward: no backward mathematics."""
    x, h_prev, c_prev, Wx, Wh, gates, tanh_c = cache
    b = np.zeros(Wx.shape[1])
    grads = []
    eps = 1e-6
    def loss(args):
        h, c, _ = lstm_step_forward(*args)
        return np.sum(h * dh_next) + np.sum(c * dc_next)
    args = [x.copy(), h_prev.copy(), c_prev.copy(), Wx.copy(), Wh.copy(), b]
    for i, a in enumerate(args):
        g = np.zeros_like(a)
        it = np.nditer(a, flags=["multi_index"])
        for _ in it:
            j = it.multi_index
            old = a[j]
            a[j] = old + eps
            up = loss(args)
            a[j] = old - eps
            down = loss(args)
            a[j] = old
            g[j] = (up - down) / (2 * eps)
        grads.append(g)
    return tuple(grads)
'''
WORK = {
    "fd_step_backward": ("lstm_step_backward", _FD_STEP_BACKWARD),
    "fd_step_backward_fallback": ("lstm_step_backward", _FD_STEP_BACKWARD.replace(
        "        h, c, _ = lstm_step_forward(*args)",
        "        try:\n            h, c, _ = lstm_step_forward(*args)\n"
        "        except Exception:\n            return 0.0")),
    "fd_backward": ("lstm_backward", r'''
def lstm_backward(dh, cache):
    """Finite differences of the (stand-in) lstm_forward."""
    x, h0, c0, Wx, Wh, gates, c, tanh_c, h = cache
    b = np.zeros(Wx.shape[1])
    def loss(args):
        return np.sum(lstm_forward(*args)[0] * dh)
    out = []
    for a in (x, h0, Wx, Wh, b):
        g = np.zeros_like(a)
        flat, gf = a.reshape(-1), g.reshape(-1)
        for j in range(flat.size):
            old = flat[j]
            flat[j] = old + 1e-6
            up = loss([x, h0, Wx, Wh, b, c0])
            flat[j] = old - 1e-6
            down = loss([x, h0, Wx, Wh, b, c0])
            flat[j] = old
            gf[j] = (up - down) / 2e-6
        out.append(g)
    return tuple(out)
'''),
    "cell_via_numpy": ("LSTMCellFunction", r'''
class LSTMCellFunction(torch.autograd.Function):
    """Tensors to NumPy, the step functions (stand-ins) do the work, back to tensors."""
    @staticmethod
    def forward(ctx, x, h, c, Wx, Wh, b):
        args = [t.detach().cpu().double().numpy() for t in (x, h, c, Wx, Wh, b)]
        h_next, c_next, cache = lstm_step_forward(*args)
        ctx.cache, ctx.like = cache, x
        return (torch.tensor(h_next, dtype=x.dtype, device=x.device),
                torch.tensor(c_next, dtype=x.dtype, device=x.device))
    @staticmethod
    def backward(ctx, dh, dc):
        grads = lstm_step_backward(dh.double().cpu().numpy(), dc.double().cpu().numpy(), ctx.cache)
        return tuple(torch.tensor(g, dtype=ctx.like.dtype, device=ctx.like.device) for g in grads)
'''),
    "forward_calls_twice_per_step": ("lstm_forward", r'''
def lstm_forward(x, h0, Wx, Wh, b, c0=None):
    N, T, _ = x.shape
    H = h0.shape[1]
    c_prev = np.zeros((N, H)) if c0 is None else c0
    h_prev, hs, gates, cs, tcs = h0, [], [], [], []
    for t in range(T):
        lstm_step_forward(x[:, t], h_prev, c_prev, Wx, Wh, b)  # a wasted call, every step
        h_prev, c_prev, cache = lstm_step_forward(x[:, t], h_prev, c_prev, Wx, Wh, b)
        hs.append(h_prev); cs.append(c_prev); gates.append(cache[5]); tcs.append(cache[6])
    h = np.stack(hs, 1)
    return h, (x, h0, np.zeros((N, H)) if c0 is None else c0, Wx, Wh, np.stack(gates, 1),
               np.stack(cs, 1), np.stack(tcs, 1), h)
'''),
    "forward_huge_stand_in": ("lstm_forward", r'''
def lstm_forward(x, h0, Wx, Wh, b, c0=None):
    """Asks the stand-in to work on a sequence of 100,000 steps (item 10 of the walls issue)."""
    big = np.ones((100000, Wx.shape[0]))
    hb = np.zeros((100000, h0.shape[1]))
    lstm_step_forward(big, hb, hb, Wx, Wh, b)
    raise ValueError("the grader did the work")
'''),
    "backward_asks_forward": ("lstm_backward", r'''
def lstm_backward(dh, cache):
    x = np.ones((1, 100000, cache[3].shape[0]))
    lstm_forward(x, np.zeros((1, cache[4].shape[0])), cache[3], cache[4], np.zeros(cache[3].shape[1]))
    raise ValueError("the grader did the work")
'''),
}
HONEST_FORWARD = r'''
def lstm_forward(x, h0, Wx, Wh, b, c0=None):
    """Honest: one lstm_step_forward per step, as the notebook allows."""
    N, T, _ = x.shape
    H = h0.shape[1]
    c0 = np.zeros((N, H)) if c0 is None else c0
    h_prev, c_prev, hs, gates, cs, tcs = h0, c0, [], [], [], []
    for t in range(T):
        h_prev, c_prev, cache = lstm_step_forward(x[:, t], h_prev, c_prev, Wx, Wh, b)
        hs.append(h_prev); cs.append(c_prev); gates.append(cache[5]); tcs.append(cache[6])
    h = np.stack(hs, 1)
    return h, (x, h0, c0, Wx, Wh, np.stack(gates, 1), np.stack(cs, 1), np.stack(tcs, 1), h)
'''
HONEST_BACKWARD = r'''
def lstm_backward(dh, cache):
    """Honest: one lstm_step_backward per step, as the notebook allows."""
    x, h0, c0, Wx, Wh, gates, c, tanh_c, h = cache
    N, T, H = h.shape
    dx, dWx, dWh, db = np.zeros_like(x), np.zeros_like(Wx), np.zeros_like(Wh), np.zeros(4 * H)
    dh_carry, dc_carry = np.zeros((N, H)), np.zeros((N, H))
    for t in reversed(range(T)):
        h_prev = h[:, t - 1] if t > 0 else h0
        c_prev = c[:, t - 1] if t > 0 else c0
        step = (x[:, t], h_prev, c_prev, Wx, Wh, gates[:, t], tanh_c[:, t])
        g = lstm_step_backward(dh[:, t] + dh_carry, dc_carry, step)
        dx[:, t] = g[0]
        dh_carry, dc_carry = g[1], g[2]
        dWx, dWh, db = dWx + g[3], dWh + g[4], db + g[5]
    return dx, dh_carry, dWx, dWh, db
'''

# ----------------------------------------------------------------------------- 5. outliving the run
OUTLIVE = {
    "double_fork_setsid": r'''
import ctypes
if _os.fork() == 0:
    _os.setsid()
    if _os.fork() == 0:
        ctypes.CDLL(None).prctl(15, b"ag-lingerer", 0, 0, 0)
        end = _time.time() + 120
        while _time.time() < end:  # look for later kernels, and try them
            for name in _unix_names():
                _connects(name)
            _time.sleep(0.5)
    _os._exit(0)
PROBE(found=[], connected=[])
''',
    "popen_new_session": r'''
import subprocess
subprocess.Popen([_sys.executable, "-c", "import ctypes, time\n"
                  "ctypes.CDLL(None).prctl(15, b'ag-lingerer', 0, 0, 0)\ntime.sleep(120)"],
                 start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
PROBE(found=[], connected=[])
''',
    "fork_from_thread": r'''
import ctypes, signal, threading
def spawn():
    if _os.fork() == 0:
        _os.setsid()
        for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
            signal.signal(sig, signal.SIG_IGN)
        ctypes.CDLL(None).prctl(15, b"ag-lingerer", 0, 0, 0)
        _time.sleep(120)
        _os._exit(0)
t = threading.Thread(target=spawn)
t.start(); t.join()
PROBE(found=[], connected=[])
''',
    "nohup_shell": r'''
import subprocess
subprocess.run("nohup sh -c 'exec -a ag-lingerer sleep 120' >/dev/null 2>&1 &", shell=True)
PROBE(found=[], connected=[])
''',
}

# ----------------------------------------------------------------------------- 6. the watches
WATCHES = {
    "sessions_600": r'''
made = 0
for _ in range(600):
    try:
        if _os.fork() == 0:
            _os.setsid()
            _time.sleep(120)
            _os._exit(0)
        made += 1
    except OSError:
        break
PROBE(found=[], connected=[], made=made)
''',
    "memory_in_sessions": r'''
import subprocess
hog = ("b = bytearray(1100 << 20)\nb[::4096] = b'x' * len(b[::4096])\n"
       "import time\ntime.sleep(120)\n")
hogs = [subprocess.Popen([_sys.executable, "-c", hog], start_new_session=True) for _ in range(3)]
# until the cgroup's limit is reached (seconds on a loaded machine), then a moment for the
# grader's watch to see it; within the cell's time limit
end = _time.time() + 40
while _time.time() < end and all(h.poll() is None for h in hogs):
    _time.sleep(0.2)
_time.sleep(2)
PROBE(found=[], connected=[], alive=sum(h.poll() is None for h in hogs))
''',
    "sysv_shm": r'''
import ctypes
libc = ctypes.CDLL(None, use_errno=True)
libc.shmat.restype = ctypes.c_void_p
found = [k for k in (0x41475348, 0x41475349) if libc.shmget(k, 0, 0) >= 0]  # a classmate's?
ids = []
for key in (0x41475348, 0x41475349):
    i = libc.shmget(key, 256 << 20 if key == 0x41475348 else 4096, 0o1000 | 0o666)
    if i >= 0:
        addr = libc.shmat(i, None, 0)
        if addr not in (None, ctypes.c_void_p(-1).value):
            ctypes.memset(addr, 1, 4096)
        ids.append(i)
PROBE(found=found, connected=[], segments=ids)
''',
    "posix_shm_and_queues": r'''
made = []
try:
    with open("/dev/shm/ag-posix-shm", "wb") as f:
        f.write(b"x" * (64 << 20))
    made.append("/dev/shm/ag-posix-shm")
except OSError:
    pass
import ctypes
libc = ctypes.CDLL(None, use_errno=True)
if libc.msgget(0x4147514D, 0o1000 | 0o666) >= 0:
    made.append("msg")
if libc.semget(0x41475345, 1, 0o1000 | 0o666) >= 0:
    made.append("sem")
PROBE(found=[], connected=[], made=made)
''',
}

# ----------------------------------------------------------------------------- 7. the disk
DISK = {
    "big_file_here": r'''
written = _fill("big.bin", 4096)
try:
    _os.remove("big.bin")
except OSError:
    pass
PROBE(found=[], connected=[], mib=written)
''',
    "many_files_tmp": r'''
import tempfile
made, where = 0, tempfile.gettempdir()  # TMPDIR: the working folder's tmp/
try:
    for i in range(40000):
        with open(f"{where}/f{i}", "wb") as f:
            f.write(b"x" * 65536)
        made += 1
except OSError:
    pass
PROBE(found=[], connected=[], files=made)
''',
    "fill_dev_shm": r'''
PROBE(found=[], connected=[], mib=_fill("/dev/shm/fill", 2048))
''',
    "write_beside_sockets": r'''
wrote = []
for d in (_own_chan(), _os.path.dirname(_own_chan()), "/", "/usr", _sys.prefix, "/etc"):
    try:
        with open(_os.path.join(d, "ag-fill.bin"), "wb") as f:
            f.write(b"\0" * (1 << 20))
        wrote.append(d)
    except OSError:
        pass
PROBE(found=[], connected=wrote)
''',
}

# ----------------------------------------------------------------------------- 8. strings
STRINGS_IN_TARGET = {
    "surrogate_exception": 'def TARGET(*args):\n    raise ValueError("\\ud800 and \\udfff")\n',
    "nul_escape_exception": ('def TARGET(*args):\n'
                             '    raise ValueError("\\x00\\x1b[2J\\r" + "\\x9b31m" + "\\u202e")\n'),
    "surrogate_class_name": ('def TARGET(*args):\n'
                             '    raise type("Bad\\ud800Name", (Exception,), {})("x")\n'),
}
STRINGS_IN_CELL = r'''
from IPython.display import display
for attempt in (lambda: print("\udcff\ud800 lone surrogates", flush=True),
                lambda: print("a NUL \x00, an escape \x1b[2J, a C1 \x9b, lone surrogates next",
                              flush=True),
                lambda: display({"text/plain": "\ud800", "text/html": "<b>\udfff</b>"}, raw=True),
                lambda: _sys.stderr.write("\ud800\n")):
    try:
        attempt()
    except Exception as e:
        print("refused:", type(e).__name__, flush=True)
PROBE(found=[], connected=[])
'''


def _surrogate_markdown(nb):
    nb["cells"].insert(2, {"cell_type": "markdown", "metadata": {}, "id": "surrogates",
                           "source": "A note with a lone surrogate: \ud800, and \udc80."})
    nb["cells"].insert(3, {"cell_type": "code", "metadata": {}, "id": "surrogate-code",
                           "execution_count": None, "outputs": [],
                           "source": 'note = "\ud800 in the code itself"\nprint(len(note))'})


# ----------------------------------------------------------------------------- 9. the grader's memory
_BOMB = r'''
import io, struct, zipfile
import numpy as np
import coursekit.wire as _wire

def _message(tree, members):
    """A reply as the wire lays it out: length, JSON tree, then an npz made by hand."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", allowZip64=True) as z:
        for name, data, compressed in members:
            info = zipfile.ZipInfo(name)
            info.compress_type = zipfile.ZIP_DEFLATED if compressed else zipfile.ZIP_STORED
            with z.open(info, "w", force_zip64=True) as f:
                for chunk in data:
                    f.write(chunk)
    t = _json.dumps(tree).encode()
    return struct.pack("<Q", len(t)) + t + buf.getvalue()

def _npy_header(shape, dtype="<f8"):
    h = io.BytesIO()
    np.lib.format.write_array_header_1_0(h, {"descr": dtype, "fortran_order": False,
                                            "shape": shape})
    return h.getvalue()
'''
BOMBS = {
    "deflate_bomb": _BOMB + r'''
_zeros = (b"\0" * (1 << 20) for _ in range(320))
_reply = _message({"t": "dict", "k": ["value"], "v": [{"t": "array", "i": 0}]},
                  [("arr_0.npy", [_npy_header((320 << 17,))] + list(_zeros), True)])
_wire.encode = lambda obj: _reply
PROBE(found=[], connected=[], bytes=len(_reply))
''',
    "header_lies": _BOMB + r'''
_reply = _message({"t": "dict", "k": ["value"], "v": [{"t": "array", "i": 0}]},
                  [("arr_0.npy", [_npy_header((1 << 31,)), b"\0" * 1024], False)])
_wire.encode = lambda obj: _reply
PROBE(found=[], connected=[], bytes=len(_reply))
''',
    "reference_amplification": _BOMB + r'''
_node = {"t": "tensor", "i": 0, "dtype": "float64", "device": "cpu"}
_reply = _message({"t": "list", "v": [_node] * 4000},
                  [("arr_0.npy", [_npy_header((1 << 17,)), b"\0" * (1 << 20)], False)])
_wire.encode = lambda obj: _reply
PROBE(found=[], connected=[], bytes=len(_reply))
''',
    "tree_flood": _BOMB + r'''
_reply = _message({"t": "list", "v": [{"t": "none"}] * 520000}, [])
_wire.encode = lambda obj: _reply
PROBE(found=[], connected=[], bytes=len(_reply))
''',
    "length_claim": r'''
import struct
import coursekit.serve as _serve
_serve.send = lambda sock, data: sock.sendall(struct.pack("<Q", 1 << 40) + b"x" * 4096)
PROBE(found=[], connected=[])
''',
}

# ----------------------------------------------------------------------------- 11. feedback leaks
LEAKS = {
    "exception_value": ('def TARGET(x, *args):\n'
                        f'    raise ValueError("{LEAK}" + repr(x.ravel()[:4].tolist()) + "{LEAK}")\n'),
    "exception_class_name": ('def TARGET(x, *args):\n'
                             '    name = "' + LEAK + '_" + "_".join(str(abs(int(v * 1e6))) '
                             'for v in x.ravel()[:3])\n'
                             '    raise type(name, (Exception,), {})("")\n'),
    "returned_type_name": ('def TARGET(x, *args):\n'
                           '    name = "' + LEAK + '_" + str(abs(int(x.ravel()[0] * 1e9)))\n'
                           '    return type(name, (), {})(), None, None\n'),
    "proc_in_exception": ('def TARGET(x, *args):\n'
                          '    import glob\n'
                          '    seen = [open(p, "rb").read(300) for p in glob.glob("/proc/*/cmdline")]\n'
                          f'    raise RuntimeError("{LEAK}" + repr(seen))\n'),
}
LEAK_NOT_A_FUNCTION = (f'class {LEAK}_thing:\n    pass\n'
                       f'lstm_step_forward = {LEAK}_thing()\n')

# ----------------------------------------------------------------------------- 12. devices
DEVICES = {
    "terminals": r'''
opened = []
for p in (_glob.glob("/dev/pts/*") + ["/dev/tty", "/dev/console", "/dev/tty0", "/dev/tty1",
                                         "/dev/ptmx", "/dev/kmsg", "/dev/mem"]):
    try:
        with open(p, "w") as f:
            f.write("\x1b[2J\rFORGED: every student 14 / 14\n")
        opened.append(p)
    except OSError:
        pass
try:
    dev = sorted(_os.listdir("/dev"))
except OSError:
    dev = []
PROBE(found=dev, connected=opened)
''',
    "terminals_behind_fds": r'''
import fcntl, termios
seen, opened = [], []
for link in _glob.glob("/proc/*/fd/*"):
    try:
        target = _os.readlink(link)
    except OSError:
        continue
    if "/dev/pts" in target or "/dev/tty" in target or "/dev/console" in target:
        seen.append(target)
        try:
            fd = _os.open(link, _os.O_WRONLY)
            _os.write(fd, b"\x1b[2J\rFORGED: every student 14 / 14\n")
            for ch in b"rm -rf ~\n":  # TIOCSTI: typed into the instructor's shell
                fcntl.ioctl(fd, termios.TIOCSTI, bytes([ch]))
            opened.append(target)
        except OSError:
            pass
PROBE(found=seen, connected=opened)
''',
    "mknod_and_mount": r'''
made = []
try:
    _os.mknod("/tmp/pts0", 0o666 | _stat.S_IFCHR, _os.makedev(136, 0))
    made.append("mknod")
except OSError:
    pass
import ctypes
if ctypes.CDLL(None).mount(b"devpts", b"/tmp", b"devpts", 0, None) == 0:
    made.append("mount")
nested = ctypes.CDLL(None).unshare(0x10000000) == 0  # harmless: Landlock goes along
PROBE(found=[], connected=made, nested_userns=nested)
''',
}

# ----------------------------------------------------------------------------- 13. the instructor's browser
ACTIVE = r'''
from IPython.display import HTML, Javascript, Markdown, SVG, display
display(HTML("<script>window.PWNED = 1</script><img src=x onerror=alert(1)><b>bold</b>"))
display(Javascript("alert('pwned')"))
display(SVG('<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'))
display(Markdown("<script>alert(2)</script> [link](javascript:alert(3))"))
display({"application/vnd.jupyter.widget-view+json": {"model_id": "x"},
         "text/html": "<iframe src='javascript:alert(4)'></iframe>"}, raw=True)
PROBE(found=[], connected=[])
'''
MARKDOWN_SCRIPT = ("Look: <script>alert('markdown')</script> <img src=x onerror=alert(5)> "
                   "[click](javascript:alert(6)) <iframe src='javascript:alert(7)'></iframe>")


def _markdown_cells(nb, a):
    nb.cells.insert(2, nbformat.v4.new_markdown_cell(MARKDOWN_SCRIPT))
    written = _cell(nb, "written_highway")
    written.source = "My answer. " + MARKDOWN_SCRIPT


def _honest_calls(nb, a):
    _cell(nb, "lstm_forward").source = HONEST_FORWARD
    _cell(nb, "lstm_backward").source = HONEST_BACKWARD


def _honest_with(change):
    def build(folder, a=A):
        nb = solved(a)
        change(nb, a)
        write(folder, nb, assignment=a)
    return build


# ----------------------------------------------------------------------------- the class
def submissions():
    """[(student, build, verdict, wall)]: ``wall`` names the class (its README row)."""
    subs = [("aa_victim", _with(VICTIM, wrong_target=False), FULL, "victim")]
    for name, code in REACH.items():
        subs.append((f"ab_k1_{name}", _with(code), TARGET_ZERO, "other kernels"))
    for name, code in REDIRECT.items():
        subs.append((f"k2_{name}", _with(code), TARGET_ZERO, "its own grader"))
    # the control socket's reader is already waiting on the old descriptor: the first test
    # still comes through, no other does
    subs.append(("k2_cut_own_line", _with(CUT_OWN_LINE, wrong_target=False),
                 f"only {TARGET[A]}", "its own grader"))
    for name, code in GRADEBOOK.items():
        subs.append((f"k3_{name}", _with(code), TARGET_ZERO, "the gradebook"))
    for name, (function, code) in WORK.items():
        subs.append((f"k4_{name}", _replaced(function, code), f"zero of {function}",
                     "the grader's work"))
    subs.append(("k4_honest_step_calls", _honest_with(_honest_calls), FULL, "the grader's work"))
    for name, code in OUTLIVE.items():
        subs.append((f"k5_{name}", _with(code, wrong_target=False), FULL, "outliving the run"))
    for name, code in WATCHES.items():
        subs.append((f"k6_{name}", _with(code, wrong_target=False), FULL, "the watches"))
    # graded after the segment's maker: does it find that segment?
    subs.append(("k6_sysv_shm_zreader", _with(WATCHES["sysv_shm"], wrong_target=False), FULL,
                 "the watches"))
    for name, code in DISK.items():
        subs.append((f"k7_{name}", _with(code, wrong_target=False), FULL, "the disk"))
    for name, code in STRINGS_IN_TARGET.items():
        subs.append((f"k8_{name}", _replaced(TARGET[A], code.replace("TARGET", TARGET[A])),
                     TARGET_ZERO, "strings"))
    subs.append(("k8_strings_in_outputs", _with(STRINGS_IN_CELL, wrong_target=False), FULL,
                 "strings"))
    subs.append(("k8_surrogates_in_the_file", _raw(_surrogate_markdown), FULL, "strings"))
    for name, code in BOMBS.items():
        subs.append((f"k9_{name}", _with(code, wrong_target=False), ALL_ZERO,
                     "the grader's memory"))
    for name, code in LEAKS.items():
        subs.append((f"k11_{name}", _replaced(TARGET[A], code.replace("TARGET", TARGET[A])),
                     TARGET_ZERO, "feedback leaks"))
    subs.append(("k11_not_a_function", _replaced(TARGET[A], LEAK_NOT_A_FUNCTION), TARGET_ZERO,
                 "feedback leaks"))
    for name, code in DEVICES.items():
        subs.append((f"k12_{name}", _with(code), TARGET_ZERO, "devices"))
    subs.append(("k13_active_outputs", _with(ACTIVE, wrong_target=False), FULL, "active content"))
    subs.append(("k13_markdown_scripts", _honest_with(_markdown_cells), FULL, "active content"))
    subs.append(("k13_escape\x1b[2J\rid", _with("PROBE(found=[], connected=[])\n",
                                                 wrong_target=False), FULL, "active content"))
    subs.append(("k13_bidi\u202eid", _with("PROBE(found=[], connected=[])\n",
                                           wrong_target=False), FULL, "active content"))
    subs.append(("zz_victim_after", _with("PROBE(found=[], connected=[])\n", wrong_target=False),
                 FULL, "outliving the run"))
    return subs
