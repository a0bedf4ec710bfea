"""The student's side of a hidden test: run the calls the grader asks for, send back data.

The grader never computes a verdict in the process that runs student code. Before the
notebook's first cell, it has the kernel ``listen`` on a socket; for each hidden test it
connects and sends requests (call this function on these arrays, keep this Generator, ...) as
``coursekit.wire`` messages, and gets back plain data: the values returned, which inputs
were written into, which forbidden routines ran (``Guard``), which outputs alias an input.
Everything the grader then decides, it decides in its own process; nothing this module
reports can raise a grade, only lower it.

While a graded function runs, the other graded functions it calls are swapped for
stand-ins whose work the grader does (``isolate``): the reference answers them, so one
mistake costs the points of its own function only.
"""
from __future__ import annotations

import contextlib
import inspect
import io
import os
import socket
import struct
import sys
import warnings

import numpy as np

from . import wire

MESSAGE_LIMIT = 300  # characters of a student's exception text in a message


# ----------------------------------------------------------------------------- the guard
# the autograd entry points the guard knows by their code; a hit names one by its index
FORBIDDEN_CODES = ("torch.autograd.grad", "torch.autograd.backward", "Tensor.backward")


def _forbidden_codes():
    torch = sys.modules.get("torch")
    if torch is None:  # never imported: nothing of autograd can run
        return {}
    return {torch.autograd.grad.__code__: 0, torch.autograd.backward.__code__: 1,
            torch.Tensor.backward.__code__: 2}


def _allowed(fn):
    """A stand-in for another graded function during isolation; calls through it are fine."""
    def allowed(*args, **kwargs):
        return fn(*args, **kwargs)
    allowed.__name__ = allowed.__qualname__ = getattr(fn, "__name__", "allowed")
    allowed.__doc__ = getattr(fn, "__doc__", None)
    return allowed


_ALLOWED_CODE = _allowed(len).__code__
# id(stand-in) -> (the stand-in, what it replaced in the namespace): while one call is
# isolated, another connection (another thread) still reaches the notebook's own functions
_STOOD_FOR = {}


def _own(obj):
    """``obj``, or the notebook's own function an isolated call stood it in for."""
    for _ in range(8):
        entry = _STOOD_FOR.get(id(obj))
        if entry is None or entry[0] is not obj:
            return obj
        obj = entry[1]
    return obj


class Guard:
    """A profiler that records calls to forbidden code made outside isolation stand-ins.

    ``files``: fragments of the paths of forbidden Python files; ``c_names``: names of
    forbidden torch C functions. A hit is reported as [kind, index]: ("file", i) for
    files[i], ("c", i) for c_names[i], ("code", i) for FORBIDDEN_CODES[i], and
    ("unwatched", 0) when the watch itself was removed. Only indices cross to the grader,
    which names what was called from its own lists: a name made up in the notebook never
    reaches a message.
    """

    def __init__(self, files=(), c_names=()):
        self.files = tuple(f.replace(os.sep, "/") for f in files)
        self.c_names = list(c_names)
        self.codes = _forbidden_codes()
        self.hits = []
        self._depth = 0
        self._allowed_frames = set()

    def _hit(self, kind, index):
        if [kind, index] not in self.hits:
            self.hits.append([kind, index])

    def __call__(self, frame, event, arg):
        if event == "call":
            code = frame.f_code
            if code is _ALLOWED_CODE:
                self._depth += 1
                self._allowed_frames.add(id(frame))
            elif self._depth == 0:
                if code in self.codes:
                    self._hit("code", self.codes[code])
                else:
                    fname = code.co_filename.replace(os.sep, "/")
                    for i, f in enumerate(self.files):
                        if f in fname:
                            self._hit("file", i)
                            break
        elif event == "return" and id(frame) in self._allowed_frames:
            self._allowed_frames.discard(id(frame))
            self._depth -= 1
        elif event == "c_call" and self._depth == 0:
            name = getattr(arg, "__name__", "")
            if name in self.c_names and "torch" in repr(getattr(arg, "__module__", None) or arg):
                self._hit("c", self.c_names.index(name))

    @contextlib.contextmanager
    def watching(self):
        previous = sys.getprofile()
        sys.setprofile(self)
        try:
            yield self
        finally:
            if sys.getprofile() is not self:
                self._hit("unwatched", 0)
            sys.setprofile(previous)


# ----------------------------------------------------------------------------- comparisons
# Before and after a call, the arguments are compared as data, by exact type: the containers
# and arrays the grader sends, walked without running any code of the notebook (an argument
# may be an object of the student's own, kept here by a handle: a forward's cache).
def _tensor_types():
    torch = sys.modules.get("torch")
    return () if torch is None else (torch.Tensor, torch.nn.Parameter)


def _snapshot(x, depth=0):
    """A copy of what ``_same`` compares in ``x``: arrays, tensors and the plain lists,
    tuples and dicts (string keys) around them; anything else is kept as it is (never
    compared, never copied: copying an object of the notebook would run its code)."""
    t = type(x)
    if depth > wire.MAX_DEPTH:
        return x
    if t is np.ndarray:
        return x.copy()
    if t in (list, tuple):
        return t(_snapshot(v, depth + 1) for v in x)
    if t is dict and all(type(k) is str for k in x):
        return {k: _snapshot(v, depth + 1) for k, v in x.items()}
    if t in _tensor_types():
        return x.detach().clone()
    return x


def _same(a, b):
    """Whether ``b`` (an argument after the call) still holds what ``a`` (its snapshot) does."""
    t = type(a)
    if t is np.ndarray:
        return type(b) is np.ndarray and a.shape == b.shape and a.dtype == b.dtype \
            and np.array_equal(a, b, equal_nan=True)
    if t in _tensor_types():
        torch = sys.modules["torch"]
        return type(b) in _tensor_types() and a.shape == b.shape and \
            torch.equal(torch.nan_to_num(a.detach()), torch.nan_to_num(b.detach()))
    if t in (tuple, list):
        return type(b) is t and len(a) == len(b) and all(map(_same, a, b))
    if t is dict:
        return type(b) is dict and a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return True  # numbers, generators, objects of the notebook: not compared


def _first_difference(a, b):
    """The index or key of the first entry where containers ``a`` and ``b`` differ."""
    if type(a) in (tuple, list) and type(b) is type(a) and len(a) == len(b):
        return next((k for k, (x, y) in enumerate(zip(a, b)) if not _same(x, y)), None)
    if type(a) is dict and type(b) is dict and a.keys() == b.keys():
        return next((k for k in a if not _same(a[k], b[k])), None)
    return None


def _nodes(x, path=()):
    """(path, node) for x and every array, list, tuple and dict inside it; a path is a
    list of indices and keys."""
    if isinstance(x, (np.ndarray, list, tuple, dict)):
        yield list(path), x
    if isinstance(x, (tuple, list)):
        for i, v in enumerate(x):
            yield from _nodes(v, (*path, i))
    elif isinstance(x, dict):
        for k, v in x.items():
            yield from _nodes(v, (*path, k))


def _aliases(out, inputs):
    """[output path, argument (index or keyword), input path] where a part of the output
    is a part of an input (the same list or dict, or an array sharing its memory)."""
    found = []
    for opath, o in _nodes(out):
        for arg, value in inputs:
            for ipath, a in _nodes(value):
                if o is a or (isinstance(o, np.ndarray) and isinstance(a, np.ndarray)
                              and np.shares_memory(o, a)):
                    found.append([opath, arg, ipath])
    return found


def _clip(text):
    try:
        text = str(text)
    except Exception:  # an exception whose __str__ fails says nothing
        text = "(a message that could not be printed)"
    return text if len(text) <= MESSAGE_LIMIT else text[:MESSAGE_LIMIT] + " ..."


# ----------------------------------------------------------------------------- the executor
class Executor:
    """Runs the grader's requests against a namespace (a notebook's globals).

    ``reference(name, args, kwargs)`` answers the calls a stand-in receives during isolation.
    """

    def __init__(self, namespace, reference):
        self.namespace = namespace
        self.reference = reference
        self.objects = {}

    def resolve(self, handle_id):
        if handle_id not in self.objects:
            raise wire.WireError(f"no object {handle_id}")
        return self.objects[handle_id]

    def keep(self, obj):
        self.objects[len(self.objects) + 1] = obj
        return wire.Handle(len(self.objects))

    def handle(self, req):
        """One request (a dict) -> one response (a dict of plain data)."""
        op = req.get("op")
        if op == "describe":
            return self.describe(req["name"])
        if op == "put":
            return {"handle": self.keep(req["value"])}
        if op == "fetch":  # the handle was resolved when the request was decoded
            return {"value": req["handle"]}
        if op == "call":
            return self.call(req)
        return {"error": {"type": "ProtocolError", "message": f"unknown op {op!r}"}}

    def describe(self, name):
        if not _is_name(name) or name not in self.namespace:
            return {"kind": "missing"}
        obj = _own(self.namespace[name])
        out = {"kind": "class" if isinstance(obj, type) else
               "function" if callable(obj) else "other", "type": type(obj).__name__}
        torch = sys.modules.get("torch")
        if isinstance(obj, type) and torch is not None:
            out["autograd_function"] = issubclass(obj, torch.autograd.Function)
        return out

    def _target(self, req):
        # only a name the grader asks for, and public attributes of it: never a dunder
        # (``__builtins__``, ``__globals__``), whoever sends the request
        if req.get("on") is not None:
            obj = req["on"]  # a handle, resolved to its object when the request was decoded
        elif _is_name(req.get("name")):
            obj = _own(self.namespace[req["name"]])
        else:
            raise wire.WireError("not a name the grader asks for")
        for attr in filter(None, str(req.get("attr") or "").split(".")):
            if attr.isdigit():
                obj = obj[int(attr)]
            elif _is_name(attr):
                obj = getattr(obj, attr)
            else:
                raise wire.WireError("not an attribute the grader asks for")
        return obj

    @contextlib.contextmanager
    def _isolated(self, fn, names):
        # a class's method (Function.apply, say) runs code of the notebook's globals
        scope = fn.__globals__ if inspect.isfunction(fn) else self.namespace
        swapped, stands = {}, []
        for other in names:
            if other in scope:
                swapped[other] = scope[other]
                stand = scope[other] = _allowed(self._stand_in(other))
                _STOOD_FOR[id(stand)] = (stand, swapped[other])
                stands.append(stand)
        try:
            yield
        finally:
            scope.update(swapped)
            for stand in stands:
                _STOOD_FOR.pop(id(stand), None)

    def _stand_in(self, name):
        def stand_in(*args, **kwargs):
            return self.reference(name, args, kwargs)
        stand_in.__name__ = name
        return stand_in

    def call(self, req):
        """Call a student's function (``name``, or ``attr`` of a kept object ``on``).

        The answer holds plain data only: the value, and where the inputs went wrong as
        positions (``modified``: argument indices and keyword names the grader sent;
        ``aliases``: [output path, argument index, input path] with paths of indices and
        the grader's own keys), ``hits`` of the guard, and an ``error`` (its type and text).
        ``keep`` keeps the value here (its ``handle`` in the answer); ``hold``, the index of
        an entry of a returned tuple or list, keeps that entry here and sends its handle in
        its place (``held`` too): a forward's cache, which the grader never reads.
        """
        try:
            fn = self._target(req)
        except Exception as e:
            return {"error": {"type": type(e).__name__, "message": _clip(e)}}
        args, kwargs = list(req.get("args", [])), dict(req.get("kwargs", {}))
        before = _snapshot((args, kwargs))
        guard = Guard(req.get("files", ()), req.get("c_names", ()))
        outs = []
        error = None
        with self._isolated(fn, req.get("isolate", ())):
            try:
                with warnings.catch_warnings(), contextlib.redirect_stderr(io.StringIO()):
                    warnings.simplefilter("ignore")  # a warning from correct code costs nothing
                    with guard.watching():
                        for _ in range(int(req.get("repeat") or 1)):
                            outs.append(fn(*args, **kwargs))
            except BaseException as e:  # noqa: BLE001 - a crash (even sys.exit) is data
                error = {"type": type(e).__name__, "message": _clip(e),
                         # the template's bare `raise NotImplementedError()`, not a library's
                         "not_implemented": type(e) is NotImplementedError and not e.args}
        resp = {"hits": guard.hits}
        if error:
            resp["error"] = error
            return resp
        modified = []
        for i, (b, a) in enumerate(zip(before[0], args)):
            if not _same(b, a):
                modified.append([i, _first_difference(b, a)])
        modified += [[k, _first_difference(before[1][k], kwargs[k])] for k in kwargs
                     if not _same(before[1][k], kwargs[k])]
        resp["modified"] = modified
        inputs = list(enumerate(args)) + list(kwargs.items())
        resp["aliases"] = _aliases(outs[0], inputs) if req.get("aliases") else []
        value = outs if req.get("repeat") else outs[0]
        if req.get("keep"):
            resp["handle"] = self.keep(value)
        hold = req.get("hold")
        if type(hold) is int and type(value) in (tuple, list) and 0 <= hold < len(value):
            # that entry of the result stays here, kept: what crosses is its handle
            held = resp["held"] = self.keep(value[hold])
            value = type(value)(held if i == hold else v for i, v in enumerate(value))
        resp["value"] = value
        return resp


def _is_name(name):
    return isinstance(name, str) and name.isidentifier() and not name.startswith("_")


# ----------------------------------------------------------------------------- transport
def send(sock, data):
    sock.sendall(struct.pack("<Q", len(data)) + data)


def recv(sock, limit=wire.MAX_BYTES):
    """One message's bytes; WireError (before reading it) when it says it is over ``limit``."""
    head = _exactly(sock, 8)
    (n,) = struct.unpack("<Q", head)
    if n > limit:
        raise wire.WireError("message too large")
    return _exactly(sock, n)


def _exactly(sock, n):
    chunks, got = [], 0
    while got < n:
        chunk = sock.recv(min(n - got, 1 << 20))
        if not chunk:
            raise ConnectionError("the other side closed the connection")
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def _namespace():
    try:  # in a Jupyter kernel, the notebook's namespace is the shell's
        return get_ipython().user_ns  # noqa: F821
    except NameError:
        return sys.modules["__main__"].__dict__


def serve_connection(sock, namespace):
    """Answer the requests of one connected grader until it says goodbye."""

    def reference(name, args, kwargs):
        send(sock, wire.encode({"op": "reference", "name": name, "args": list(args),
                                "kwargs": kwargs}))
        reply = wire.decode(recv(sock))
        if "error" in reply:
            raise ValueError(f"{name} (the reference, standing in for yours during this test) "
                             f"raised: {reply['error']}")
        return reply["value"]

    executor = Executor(namespace, reference)
    try:
        while True:
            req = wire.decode(recv(sock), handles=executor.resolve)
            if req.get("op") == "bye":
                return
            send(sock, wire.encode(executor.handle(req)))
    except (ConnectionError, OSError, wire.WireError):
        return
    finally:
        sock.close()


def listen(control, namespace=None, threads=4):
    """Serve the grader, whose connections arrive over the socket ``control`` (a descriptor
    the kernel inherited: one end of a socket pair the grader made).

    The grader starts this before any cell of the notebook runs, so what the notebook later
    does to the kernel (input transformers, hooks, a swapped ``sys.modules['numpy']``) does
    not stand between a hidden test and the functions it calls. No path and no name lead
    to this server: only the holder of the other end, the grader, can connect. ``threads``
    threads, started now (a fork bomb later may leave no room for a new one), serve the
    connections, so that a function stuck in an endless loop in one test leaves the next
    tests a thread.
    """
    import queue
    import threading

    sock = socket.socket(fileno=control) if isinstance(control, int) else control
    namespace = _namespace() if namespace is None else namespace
    pending = queue.SimpleQueue()

    def receive():
        while True:
            try:
                data, fds, _, _ = socket.recv_fds(sock, 16, 4)
            except OSError:
                return
            if not data and not fds:  # the grader closed its end
                return
            for fd in fds:
                pending.put(socket.socket(fileno=fd))

    def work():
        while True:
            serve_connection(pending.get(), namespace)

    for _ in range(threads):
        threading.Thread(target=work, daemon=True, name="coursekit-serve").start()
    threading.Thread(target=receive, daemon=True, name="coursekit-serve-control").start()
    return sock


def run_kernel(connection_file, serve_fd):
    """Become the grading kernel: IPython's kernel on ``connection_file`` (its history in
    memory), with the test server listening on ``serve_fd`` before any cell runs."""
    from ipykernel.kernelapp import IPKernelApp

    app = IPKernelApp.instance()
    app.initialize(["-f", connection_file, "--HistoryManager.hist_file=:memory:"])
    listen(serve_fd, app.shell.user_ns)
    app.start()


def main(argv=None):
    """``python -m coursekit.serve -f CONNECTION_FILE --serve-fd N``: a kernel started cold."""
    import argparse

    p = argparse.ArgumentParser(prog="python -m coursekit.serve")
    p.add_argument("-f", dest="connection_file", required=True)
    p.add_argument("--serve-fd", type=int, required=True)
    args = p.parse_args(argv)
    sys.path.insert(0, "")  # as `python -m ipykernel_launcher` has it: the notebook's folder
    run_kernel(args.connection_file, args.serve_fd)


if __name__ == "__main__":
    main()
