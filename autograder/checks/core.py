"""The machinery of the hidden checks: a registry, the student's side of a call, and guards.

A check is a function ``run(student)`` registered for one grade_id (``test_<function>``).
It builds fresh inputs, calls the student's function through ``Student.call`` and compares
the result with ``autograder.reference`` using the ``coursekit.expect`` helpers; any
``CheckFailed`` is the verdict "0 points", with its message as the feedback.

``Student.call`` is the only way a check reaches student code, and it reaches it through a
link: ``SocketLink`` to a student's kernel in another process (grading), or ``LocalLink``
in this one (a solution notebook running its own hidden tests, the test suite). Either way
the arguments and the results cross as ``coursekit.wire`` messages, plain data only, and the
comparison happens here. The policy:
- every argument arrives as a fresh copy, so an in-place write cannot corrupt the next
  case, and the student's side reports any argument written into;
- the graded functions before this one in the notebook (its building blocks) are answered
  by the reference for the duration of the call (isolation): a mistake in
  ``rnn_step_forward`` costs its own points and not those of the ``rnn_forward`` that calls
  it;
- a profiler watches the call, and calling the reference, ``torch.nn.RNN/LSTM/GRU``, torch's
  autograd or another forbidden library routine fails the check (delegation).
Backward checks feed the student's backward the reference forward's cache, whose layout the
notebooks prescribe, so a backward is graded on its own too.
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from coursekit import serve, wire
from coursekit.expect import CheckFailed, expect_close, expect_tuple
from coursekit.serve import Executor

REFERENCE_DIR = str(Path(__file__).resolve().parent.parent / "reference") + os.sep


@dataclass
class Check:
    """One autograded test cell: grade_id ``test_<function>`` worth ``points``."""
    assignment: str
    function: str
    points: int
    run: Callable
    forbid: tuple = ()

    @property
    def grade_id(self):
        return f"test_{self.function}"


@dataclass
class Assignment:
    """The registered checks of one assignment, in the order of its graded functions."""
    name: str
    functions: list = field(default_factory=list)  # graded names, in notebook order
    checks: dict = field(default_factory=dict)  # grade_id -> Check


ASSIGNMENTS: dict[str, Assignment] = {}


def check(assignment, function, points=1, forbid=()):
    """Decorator: register ``run(student)`` as the hidden check of ``function``.

    ``forbid`` adds library routines the function must not call: path fragments of Python
    files (e.g. "torch/nn/init.py") or names of torch's C functions (e.g. "lstm_cell").
    """
    def register(run):
        a = ASSIGNMENTS.setdefault(assignment, Assignment(assignment))
        c = Check(assignment, function, points, run, tuple(forbid))
        a.functions.append(function)
        a.checks[c.grade_id] = c
        return run
    return register


def seed_for(grade_id):
    """A fixed seed per check (so a re-grade gives the same grade), changeable per course
    with AUTOGRADER_SEED, and never the seed of a visible test."""
    salt = os.environ.get("AUTOGRADER_SEED", "hidden")
    return int.from_bytes(hashlib.sha256(f"{salt}:{grade_id}".encode()).digest()[:8], "little")


def rng_for(grade_id):
    """A numpy Generator seeded with ``seed_for(grade_id)``."""
    return np.random.default_rng(seed_for(grade_id))


# ----------------------------------------------------------------------------- delegation guard
# Always forbidden inside a graded function: the reference itself, PyTorch's recurrent layers
# and kernels, and autograd (every exercise asks for a hand-written computation). The guard
# itself (coursekit.serve.Guard) runs beside the student's code; what it reports can only
# lower a grade.
_ALWAYS_FILES = (REFERENCE_DIR, "torch/nn/modules/rnn.py", "torch/autograd/functional.py",
                 # torch.func's transforms (not all of _functorch: Function.apply uses its utils)
                 "torch/_functorch/eager_transforms.py", "torch/_functorch/apis.py",
                 "torch/_functorch/vmap.py", "torch/_functorch/functional_call.py", "torch/func/")
_ALWAYS_C = ("lstm", "lstm_cell", "gru", "gru_cell", "rnn_tanh", "rnn_tanh_cell", "rnn_relu",
             "rnn_relu_cell", "_cudnn_rnn", "run_backward", "_run_backward")


def guard_config(forbid=()):
    """What the guard beside a call watches for: path fragments, torch C names, and where
    the reference lives (to name it in a message)."""
    files = _ALWAYS_FILES + tuple(f for f in forbid if "/" in f or f.endswith(".py"))
    c_names = sorted(set(_ALWAYS_C) | {f for f in forbid if "/" not in f and not f.endswith(".py")})
    return {"files": list(files), "c_names": c_names, "reference_dir": REFERENCE_DIR,
            "reference_name": "autograder.reference"}


# ----------------------------------------------------------------------------- links
def _reference_call(name, args, kwargs):
    """The reference's answer for a stand-in: plain data in, plain data out."""
    from autograder import reference as ref

    return getattr(ref, name)(*args, **kwargs)


class LocalLink:
    """Requests answered in this process, with the data path of the real boundary: every
    request and answer is encoded and decoded as it would be between two processes.

    Used when a solution notebook runs its own hidden tests, and by the test suite.
    """

    def __init__(self, namespace):
        self.executor = Executor(namespace, self._reference)

    @staticmethod
    def _reference(name, args, kwargs):
        args, kwargs = wire.roundtrip([list(args), kwargs])
        return wire.roundtrip(_reference_call(name, args, kwargs))

    def request(self, req):
        req = wire.decode(wire.encode(req), handles=self.executor.resolve)
        return wire.decode(wire.encode(self.executor.handle(req)))


class SocketLink:
    """Requests answered by ``coursekit.serve.serve`` in another process, over a connected
    Unix socket; stand-in calls that arrive meanwhile are answered with the reference.

    ``deadline`` (time.monotonic()) bounds the whole conversation.
    """

    def __init__(self, sock, deadline):
        self.sock, self.deadline = sock, deadline

    def _recv(self):
        import socket
        import time

        left = self.deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError
        self.sock.settimeout(left)
        try:
            return wire.decode(serve.recv(self.sock))
        except socket.timeout:
            raise TimeoutError from None

    def request(self, req):
        serve.send(self.sock, wire.encode(req))
        # only the stand-ins of this call may ask for the reference: the function under test
        # and those after it in the notebook are never answered
        allowed = set(req.get("isolate", ()))
        while True:
            msg = self._recv()
            if isinstance(msg, dict) and msg.get("op") == "reference":
                try:
                    if msg.get("name") not in allowed:
                        raise PermissionError(f"{msg.get('name')!r} has no stand-in in this test")
                    value = {"value": _reference_call(msg["name"], list(msg.get("args", [])),
                                                      dict(msg.get("kwargs", {})))}
                except Exception as e:  # wrong arguments from the student's code
                    value = {"error": f"{type(e).__name__}: {_clip(str(e), 200)}"}
                serve.send(self.sock, wire.encode(value))
                continue
            return msg

    def close(self):
        try:
            serve.send(self.sock, wire.encode({"op": "bye"}))
        except OSError:
            pass


# ----------------------------------------------------------------------------- the student side
_INPLACE_HINT = "work on a copy (a += b writes into a; use a = a + b)"


class Student:
    """What a check sees of a student's notebook: the answers to the calls it makes.

    ``link`` carries requests to where the student's code runs (``LocalLink`` or
    ``SocketLink``); every value that comes back is plain data, and every decision about it
    is made here.
    """

    def __init__(self, link, assignment, forbid=()):
        if isinstance(link, dict):  # a namespace: run the student's code in this process
            link = LocalLink(link)
        self.link = link
        self.assignment = ASSIGNMENTS[assignment]
        self.forbid = tuple(forbid)
        self.guard = guard_config(forbid)
        self._described = {}

    def _request(self, req):
        try:
            resp = self.link.request(req)
        except TimeoutError:
            raise CheckFailed("the test ran past its time limit (is there an endless loop?)") from None
        except (OSError, wire.WireError, EOFError) as e:
            raise CheckFailed(f"the notebook's kernel stopped answering the test ({type(e).__name__}"
                              f": {_clip(str(e), 120)})") from None
        if not isinstance(resp, dict):
            raise CheckFailed("the notebook's kernel answered the test with something that is "
                              "not an answer")
        return resp

    def get(self, name):
        """What the student defined under ``name``: {'kind', 'type', ...}; CheckFailed when it
        is missing or not callable."""
        if name not in self._described:
            self._described[name] = self._request({"op": "describe", "name": name})
        info = self._described[name]
        if info.get("kind") == "missing":
            raise CheckFailed(f"{name} is not defined: run the cell that defines it "
                              "(and keep its name and signature as given)")
        if info.get("kind") not in ("function", "class"):
            raise CheckFailed(f"{name} should be a function, got {info.get('type', 'something else')}")
        return info

    def put(self, value):
        """Keep ``value`` (a Generator, an array) on the student's side; returns its Handle,
        which calls may pass as an argument (the same object each time, not a copy)."""
        handle = self._request({"op": "put", "value": value}).get("handle")
        if not isinstance(handle, wire.Handle):
            raise CheckFailed("the notebook's kernel did not keep a value the test gave it")
        return handle

    def fetch(self, handle):
        """The current value of a kept object, as plain data."""
        return self._request({"op": "fetch", "handle": handle}).get("value")

    def call(self, name, *args, returns=None, where="", hint=None, attr=None, on=None,
             repeat=None, keep=False, details=False, names=None, **kwargs):
        """Call the student's ``name`` (or the attribute ``attr`` of it, or of the kept
        object ``on``) on the arguments; CheckFailed on a crash, a forbidden routine, or an
        argument written into.

        ``returns``: the names of the outputs when the function returns a tuple; the tuple
        is then checked for length. ``repeat``: call that many times with the very same
        arguments and return the list of results. ``keep``: keep the result on the
        student's side too. ``details``: return (value, answer), the answer holding
        'handle' and 'aliases' (outputs that are, or view, an input).
        ``where`` (the case, e.g. ' (N=1)') and ``hint`` go into a crash's message;
        ``names`` names the arguments in messages (default: the function's parameters).
        """
        if on is None:
            self.get(name)
        # the graded functions before this one (its building blocks) are answered by the
        # reference while it runs
        order = self.assignment.functions
        earlier = order[:order.index(name)] if name in order else order
        isolate = [f for f in earlier if _has_reference(f)]
        resp = self._request({"op": "call", "name": name, "attr": attr, "on": on,
                              "args": list(args), "kwargs": kwargs, "repeat": repeat,
                              "keep": keep, "aliases": details, "isolate": isolate,
                              "names": list(names or ()), **self.guard})
        error = resp.get("error")
        if error is not None:
            if not isinstance(error, dict):
                error = {}
            if error.get("not_implemented") and not str(error.get("message", "")).strip():
                raise CheckFailed(f"{name} raised NotImplementedError: replace the "
                                  "`raise NotImplementedError()` with your code")
            raise CheckFailed(f"{name} raised {str(error.get('type', 'an error'))[:80]}{where}: "
                              f"{_clip(str(error.get('message', '')))}"
                              + (f"\n  hint: {hint}" if hint else ""))
        hits = resp.get("hits") or []
        if hits:
            raise CheckFailed(f"{name} calls {_clip(str(hits[0]), 120)}: this exercise asks for "
                              "your own implementation, so the test scores 0")
        modified = resp.get("modified")
        if not isinstance(modified, list):
            raise CheckFailed(f"{name}: the notebook's kernel did not say whether the inputs "
                              "were left unchanged")
        if modified:
            raise CheckFailed(f"{name} modified its argument {_clip(str(modified[0]), 120)} in "
                              f"place{where}\n  hint: {_INPLACE_HINT}")
        if "value" not in resp:
            raise CheckFailed(f"{name}: the notebook's kernel sent back no result")
        out = resp["value"]
        if repeat and not (isinstance(out, list) and len(out) == repeat):
            raise CheckFailed(f"{name}: the notebook's kernel sent back the wrong number of results")
        if returns is not None:
            out = expect_tuple(name, out, returns)
        return (out, resp) if details else out


def _has_reference(name):
    from autograder import reference as ref

    return hasattr(ref, name)


def _clip(text, limit=300):
    return text if len(text) <= limit else text[:limit] + " ..."


# ----------------------------------------------------------------------------- inputs
def case_label(**dims):
    """'N=1, T=3, D=2, H=4' for messages: shapes, never values."""
    return ", ".join(f"{k}={v}" for k, v in dims.items())


def sizes(rng, names, n_random=3, ones=True, low=1, high=6):
    """Shape cases for a check: all ones, each dimension alone at 1, and random ones.

    Returns a list of dicts name -> int, e.g. [{'N': 1, 'D': 1, 'H': 1}, ...].
    """
    out = []
    if ones:
        out.append({k: 1 for k in names})
    for k in names[:2]:  # the batch (and time) axis alone at 1: the cases code gets wrong
        case = {m: int(rng.integers(2, high + 1)) for m in names}
        case[k] = 1
        out.append(case)
    for _ in range(n_random):
        out.append({m: int(rng.integers(max(low, 2), high + 1)) for m in names})
    return out


# ----------------------------------------------------------------------------- comparisons
def expect_cache(fn, got, want, names, label):
    """The cache a forward returns must hold exactly the prescribed arrays, in order."""
    if not isinstance(got, tuple) or len(got) != len(want):
        raise CheckFailed(
            f"{fn}: the cache should be the tuple ({', '.join(names)}) "
            f"(prescribed in the notebook, because the grader tests your backward with it), "
            f"got {type(got).__name__}" + (f" of length {len(got)}" if isinstance(got, tuple) else ""))
    layout = f"the cache is ({', '.join(names)}), in this order"
    for i, (name, g, w) in enumerate(zip(names, got, want)):
        if type(g) is not np.ndarray or g.shape != w.shape:
            what = f"an array of shape {g.shape}" if isinstance(g, np.ndarray) else type(g).__name__
            raise CheckFailed(f"{fn}: cache entry {i} should be {name} of shape {w.shape}, got "
                              f"{what} ({label})\n  hint: {layout}")
        expect_close(f"{fn}: cache entry {name} ({label})", g, w, tol=1e-6, show=False,
                     hint=f"{layout}; {name} is in the wrong place or holds something else")


def expect_grads(fn, got, want, names, label, hints=None):
    """Compare a tuple of gradients entry by entry; the first wrong one fails."""
    hints = hints or {}
    for name, g, w in zip(names, got, want):
        expect_close(f"{fn}: {name} ({label})", g, w, tol=1e-6, show=False, hint=hints.get(name))


def devices():
    """The torch devices a PyTorch check runs on: the CPU, and CUDA when there is one."""
    import torch

    return ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
