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
  case, and the student's side reports any argument written into (a handle stands for an
  object kept on the student's side, a forward's cache, say: that object itself);
- every other graded function of the notebook is swapped for a stand-in for the duration of
  the call (isolation). The building blocks a check declares (``calls``: ``rnn_forward``
  may call ``rnn_step_forward`` once per time step) are answered by the reference, within
  that budget and on inputs no larger than the call's own, so a mistake in
  ``rnn_step_forward`` costs its own points and not those of the ``rnn_forward`` that calls
  it; a call the check does not declare (a backward calling a forward, to take finite
  differences of it) fails the check;
- a profiler watches the call, and calling the reference, ``torch.nn.RNN/LSTM/GRU``, torch's
  autograd or another forbidden library routine fails the check (delegation).
Messages are made of the grader's own words: what the student's side sends back is data
(values, positions, indices into the grader's lists), never text that reaches feedback; a
student's exception text goes to ``detail``, which only the instructor sees.
A forward is graded on its outputs; the cache it returns stays on the student's side, opaque
to its check. A backward is tested with the cache of the student's own forward when that
forward's outputs are right on the case, else with the reference's cache (the layout the
notebooks suggest): ``with_cache`` is that rule, ``Forward`` describes a forward whose cache a
backward takes.
"""
from __future__ import annotations

import contextlib
import hashlib
import inspect
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from coursekit import serve, wire
from coursekit.expect import CheckFailed, Failure, expect_close, expect_tuple, fail
from coursekit.gradcheck import rel_error
from coursekit.serve import Executor

REFERENCE_DIR = str(Path(__file__).resolve().parent.parent / "reference") + os.sep


@dataclass
class Check:
    """One autograded test cell: grade_id ``test_<function>`` worth ``points``.

    ``calls``: {earlier graded function: budget(args, kwargs) -> int}, the calls one call of
    ``function`` may make to it (answered by the reference); any other graded function it
    calls fails the check."""
    assignment: str
    function: str
    points: int
    run: Callable
    forbid: tuple = ()
    calls: dict = field(default_factory=dict)

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


def check(assignment, function, points=1, forbid=(), calls=None):
    """Decorator: register ``run(student)`` as the hidden check of ``function``.

    ``forbid`` adds library routines the function must not call: path fragments of Python
    files (e.g. "torch/nn/init.py") or names of torch's C functions (e.g. "lstm_cell").
    ``calls`` declares the earlier graded functions it may call, each with a budget: a
    function of the call's (args, kwargs) giving how many calls an honest solution needs
    at most (``per_step``, ``once``).
    """
    def register(run):
        a = ASSIGNMENTS.setdefault(assignment, Assignment(assignment))
        for other in calls or {}:
            if other not in a.functions:
                raise ValueError(f"calls: {function} may call only graded functions before "
                                 f"it, got {other!r}")
        c = Check(assignment, function, points, run, tuple(forbid), dict(calls or {}))
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


def once(args, kwargs):
    """A budget: one call."""
    return 1


def per_step(args, kwargs):
    """A budget: one call per time step of the first argument, batch first (N, T, ...)."""
    return int(np.shape(args[0])[1]) if args and np.ndim(args[0]) >= 2 else 1


def per_row(position):
    """A budget: one call per row of the argument at ``position`` (and one more)."""
    def budget(args, kwargs):
        return int(np.shape(args[position])[0]) + 1 if len(args) > position and \
            np.ndim(args[position]) >= 1 else 1
    return budget


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
    """What the guard beside a call watches for: path fragments and torch C names."""
    files = _ALWAYS_FILES + tuple(f for f in forbid if "/" in f or f.endswith(".py"))
    c_names = sorted(set(_ALWAYS_C) | {f for f in forbid if "/" not in f and not f.endswith(".py")})
    return {"files": list(files), "c_names": c_names}


def describe_hit(hit, guard):
    """The name, in the grader's own words, of what a guard's hit [kind, index] points at
    in ``guard`` (guard_config); None for a hit that points at nothing."""
    if not (isinstance(hit, list) and len(hit) == 2 and isinstance(hit[1], int)):
        return None
    kind, i = hit
    if kind == "unwatched":
        return "sys.setprofile (the grader's watch over the call was removed)"
    names = {"file": guard["files"], "c": guard["c_names"], "code": serve.FORBIDDEN_CODES}.get(kind)
    if names is None or not 0 <= i < len(names):
        return None
    if kind == "c":
        return f"torch.{names[i]}"
    if kind == "code":
        return names[i]
    path = names[i].replace(os.sep, "/")
    if path == REFERENCE_DIR.replace(os.sep, "/"):
        return "autograder.reference"
    if path == "torch/nn/modules/rnn.py":
        return "torch.nn.RNN/LSTM/GRU"
    return path.rstrip("/").removesuffix(".py").replace("/", ".")


# the exception classes a message may name: Python's and the libraries' (any other name was
# made up in the notebook, and may carry anything)
def _known_exceptions():
    import builtins

    names = {n for n, v in vars(builtins).items() if isinstance(v, type) and issubclass(v, BaseException)}
    return names | {"LinAlgError", "AxisError", "OutOfMemoryError", "CheckFailed"}


KNOWN_EXCEPTIONS = frozenset(_known_exceptions())


def exception_name(name):
    """``name`` if it is a known exception class, else words that say what it was."""
    return name if isinstance(name, str) and name in KNOWN_EXCEPTIONS else \
        "an exception of a class defined in the notebook"


# ----------------------------------------------------------------------------- links
def _reference_call(name, args, kwargs):
    """The reference's answer for a stand-in: plain data in, plain data out."""
    from autograder import reference as ref

    return getattr(ref, name)(*args, **kwargs)


def _elements(x, depth=0):
    """How many numbers ``x`` holds (arrays, tensors, and the numbers in lists)."""
    if depth > wire.MAX_DEPTH:
        return 0
    if isinstance(x, np.ndarray):
        return int(x.size)
    size = getattr(x, "numel", None)
    if callable(size) and not isinstance(x, type):
        try:
            return int(size())
        except Exception:
            return 1
    if isinstance(x, (list, tuple)):
        return sum(_elements(v, depth + 1) for v in x)
    if isinstance(x, dict):
        return sum(_elements(v, depth + 1) for v in x.values())
    return 1


class StandIns:
    """What the stand-ins of one call may do, and what they did.

    ``allowed``: {graded function: calls allowed}; ``elements``: the most numbers one
    stand-in call may take (no more than the call under test was given). Any other call,
    one past the budget or one on larger inputs is refused and recorded in ``refused``: the
    check fails whatever the student's code then did with the refusal.
    """

    def __init__(self, allowed, elements):
        self.allowed, self.elements = dict(allowed), int(elements)
        self.used = {}
        self.refused = None  # (name, why) of the first refused call

    def answer(self, name, args, kwargs):
        """The reference's result for a stand-in call, or raise PermissionError."""
        why = None
        if name not in self.allowed:
            why = "which this test does not allow"
        elif self.used.get(name, 0) >= self.allowed[name]:
            why = f"more than the {self.allowed[name]} time(s) this test allows"
        elif _elements([args, kwargs]) > self.elements:
            why = "on inputs larger than those of the call under test"
        if why is not None:
            self.refused = self.refused or (name, why)
            raise PermissionError(f"{name} is not available here ({why})")
        self.used[name] = self.used.get(name, 0) + 1
        return _reference_call(name, list(args), dict(kwargs))


class LocalLink:
    """Requests answered in this process, with the data path of the real boundary: every
    request and answer is encoded and decoded as it would be between two processes.

    Used when a solution notebook runs its own hidden tests, and by the test suite.
    """

    def __init__(self, namespace):
        self.executor = Executor(namespace, self._reference)
        self.stand_ins = StandIns({}, 0)

    def _reference(self, name, args, kwargs):
        args, kwargs = wire.roundtrip([list(args), kwargs])
        return wire.roundtrip(self.stand_ins.answer(name, args, kwargs))

    def request(self, req, stand_ins=None):
        self.stand_ins = stand_ins or StandIns({}, 0)
        req = wire.decode(wire.encode(req), handles=self.executor.resolve)
        return wire.decode(wire.encode(self.executor.handle(req)), limits=wire.GRADER_LIMITS)

    def side(self):
        """The link a call that might hang runs on: here, this one (nothing here is timed)."""
        return self

    def bounded(self, share):
        return contextlib.nullcontext()


class SocketLink:
    """Requests answered by ``coursekit.serve`` in another process, over a connected Unix
    socket; stand-in calls that arrive meanwhile are answered by ``StandIns``.

    ``deadline`` (time.monotonic()) bounds the whole conversation. What arrives is decoded
    with the limits of ``wire.GRADER_LIMITS``: a message from the notebook's kernel cannot
    make this process hold more than that. ``connect`` (``kernel.Kernel.connect``), when
    given, opens more connections to the same test server (``side``).
    """

    def __init__(self, sock, deadline, connect=None):
        self.sock, self.deadline, self.connect = sock, deadline, connect
        self.sides = []

    def side(self):
        """A link on a new connection to the same kernel, with the same deadline: a call
        that hangs there leaves this one free (the server gives each connection a thread of
        its own). This link itself when no other connection can be made; None when the
        kernel no longer takes one."""
        if self.connect is None:
            return self
        try:
            sock = self.connect()
        except OSError:
            return None
        link = SocketLink(sock, self.deadline)
        self.sides.append(link)
        return link

    @contextlib.contextmanager
    def bounded(self, share):
        """While in this block, the requests have ``share`` of the time left to this link."""
        saved, now = self.deadline, time.monotonic()
        self.deadline = min(saved, now + share * max(0.0, saved - now))
        try:
            yield
        finally:
            self.deadline = saved

    def _recv(self):
        import socket

        left = self.deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError
        self.sock.settimeout(left)
        try:
            return wire.decode(serve.recv(self.sock, wire.GRADER_LIMITS.message),
                               limits=wire.GRADER_LIMITS)
        except socket.timeout:
            raise TimeoutError from None

    def request(self, req, stand_ins=None):
        stand_ins = stand_ins or StandIns({}, 0)
        serve.send(self.sock, wire.encode(req))
        while True:
            msg = self._recv()
            if isinstance(msg, dict) and msg.get("op") == "reference":
                try:
                    args, kwargs = msg.get("args", []), msg.get("kwargs", {})
                    if not isinstance(args, list) or not isinstance(kwargs, dict):
                        raise ValueError("malformed stand-in call")
                    value = {"value": stand_ins.answer(str(msg.get("name")), args, kwargs)}
                except Exception as e:  # refused, or wrong arguments from the student's code
                    value = {"error": f"{type(e).__name__}: {_clip(str(e), 200)}"}
                serve.send(self.sock, wire.encode(value))
                continue
            return msg

    def close(self):
        """Say goodbye to the server (the socket itself is its opener's to close); the
        side links' sockets are closed here."""
        for link in self.sides:
            link.close()
            link.sock.close()
        self.sides = []
        try:
            serve.send(self.sock, wire.encode({"op": "bye"}))
        except OSError:
            pass


# ----------------------------------------------------------------------------- the student side
_INPLACE_HINT = "work on a copy (a += b writes into a; use a = a + b)"


class KernelGone(CheckFailed):
    """The notebook's kernel stopped answering during the test (it died, or closed the
    connection): the grader then waits to see it dead before the next cell."""
    kind = Failure.KERNEL


class TimeLimit(CheckFailed):
    """The test ran past its time limit."""
    kind = Failure.TIMEOUT


class StudentRaised(CheckFailed):
    """The student's function raised. ``exception``: its class's name when it is a known
    exception (``KNOWN_EXCEPTIONS``), else None; ``detail``: the student's own text, for the
    instructor only (it may hold anything the kernel saw, hidden inputs included)."""
    kind = Failure.RAISED
    exception = None
    detail = ""


# the types a message may name when a student's value is not what a check expects
_KNOWN_TYPES = frozenset({"int", "float", "complex", "bool", "str", "bytes", "list", "tuple",
                          "dict", "set", "NoneType", "ndarray", "Tensor", "Parameter",
                          "Generator", "function", "builtin_function_or_method", "type",
                          "module", "method", "float64", "float32", "int64", "int32", "bool_"})


def type_name(name):
    """``name`` if it is the name of a common type, else words that say what it was."""
    return name if isinstance(name, str) and name in _KNOWN_TYPES else \
        "an object of a class defined in the notebook"


def _path_text(path, keys):
    """'[0][\'W\']' for a path of indices and keys; None when a key is not one of
    ``keys`` (the grader's own): a made-up key never reaches a message."""
    out = ""
    for k in path if isinstance(path, list) else [None]:
        if isinstance(k, int) and not isinstance(k, bool):
            out += f"[{k}]"
        elif isinstance(k, str) and k in keys:
            out += f"[{k!r}]"
        else:
            return None
    return out


def _dict_keys(x, depth=0):
    """Every string key of every dict inside ``x`` (the grader's own inputs)."""
    keys = set()
    if depth > wire.MAX_DEPTH:
        return keys
    if isinstance(x, dict):
        keys |= {k for k in x if isinstance(k, str)}
        x = list(x.values())
    if isinstance(x, (list, tuple)):
        for v in x:
            keys |= _dict_keys(v, depth + 1)
    return keys


class Student:
    """What a check sees of a student's notebook: the answers to the calls it makes.

    ``link`` carries requests to where the student's code runs (``LocalLink`` or
    ``SocketLink``, or a namespace: a LocalLink on it); ``check`` is the Check being run.
    Every value that comes back is plain data, and every decision about it is made here.
    ``earlier``: {grade_id: passed} of the tests already run on this notebook, when known
    (a backward's test does not run again a forward that failed its own: ``cache_for``).
    """

    def __init__(self, link, check, earlier=None):
        if isinstance(link, dict):  # a namespace: run the student's code in this process
            link = LocalLink(link)
        self.link = link
        self.check = check
        self.assignment = ASSIGNMENTS[check.assignment]
        self.guard = guard_config(check.forbid)
        self.earlier = {g: p for g, p in (earlier or {}).items() if isinstance(p, bool)}
        self._described = {}
        self._probes = None  # (link, Student) the student's forwards run on for a backward
        self._probes_lost = None  # a Failure, once that link hung or lost the kernel

    def _request(self, req, stand_ins=None):
        try:
            resp = self.link.request(req, stand_ins)
        except TimeoutError:
            raise TimeLimit("the test ran past its time limit (is there an endless loop?)") from None
        except wire.WireError:
            raise CheckFailed("the notebook's kernel answered the test with something that is "
                              "not plain data of a size the grader reads", Failure.TYPE) from None
        except (OSError, EOFError) as e:
            raise KernelGone(f"the notebook's kernel stopped answering the test "
                             f"({type(e).__name__})") from None
        if not isinstance(resp, dict):
            raise CheckFailed("the notebook's kernel answered the test with something that is "
                              "not an answer", Failure.TYPE)
        return resp

    def get(self, name):
        """What the student defined under ``name``: {'kind', 'type', ...}; CheckFailed when it
        is missing or not callable."""
        if name not in self._described:
            self._described[name] = self._request({"op": "describe", "name": name})
        info = self._described[name]
        if info.get("kind") == "missing":
            raise CheckFailed(f"{name} is not defined: run the cell that defines it "
                              "(and keep its name and signature as given)", Failure.NOT_IMPLEMENTED)
        if info.get("kind") not in ("function", "class"):
            raise CheckFailed(f"{name} should be a function, got {type_name(info.get('type'))}", Failure.TYPE)
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

    def _names(self, name, n, names):
        """Names for the first ``n`` arguments of ``name``: ``names``, else the reference's
        parameters, else 'argument i' (never the notebook's own parameter names)."""
        given = list(names or ())
        if len(given) < n:
            try:
                from autograder import reference as ref

                given += list(inspect.signature(getattr(ref, name)).parameters)[len(given):]
            except (AttributeError, TypeError, ValueError):
                pass
        return [given[i] if i < len(given) else f"argument {i + 1}" for i in range(n)]

    def call(self, name, *args, **kwargs):
        """Call the student's ``name`` (or the attribute ``attr`` of it, or of the kept
        object ``on``) on the arguments; returns the value. CheckFailed on a crash, a
        forbidden routine, a call the check does not allow, or an argument written into.

        ``returns``: the names of the outputs when the function returns a tuple; the tuple
        is then checked for length. ``repeat``: call that many times with the very same
        arguments and return the list of results. ``keep``: keep the result on the
        student's side too. ``where`` (the case, e.g. ' (N=1)') and ``hint`` go into a
        crash's message; ``names`` names the arguments in messages (default: the
        reference's). ``hold``: the index of an entry of the returned tuple that stays on
        the student's side, kept (its handle comes back in its place). ``sized``: the
        (args, kwargs) the stand-ins' budget and size limit are computed on, when the
        call's own hold a handle. Any other keyword goes to the student's function.
        """
        return self._call(False, name, *args, **kwargs)[0]

    def call_answer(self, name, *args, **kwargs):
        """``call``, returning (value, answer): the answer holds 'handle' (of a kept
        result) and 'aliases' ([(output path, input path)] of outputs that are, or view, an
        input)."""
        return self._call(True, name, *args, **kwargs)

    def _call(self, _with_aliases, name, *args, returns=None, where="", hint=None, attr=None,
              on=None, repeat=None, keep=False, names=None, hold=None, sized=None, **kwargs):
        """(value, answer) of a call, as ``call`` describes it; the answer's 'aliases' are
        asked for and read when ``_with_aliases``."""
        if on is None:
            self.get(name)
        # every other graded function of the notebook is a stand-in while this one runs:
        # those the check declares answer (the reference, within budget), the rest refuse
        isolate = [f for f in self.assignment.functions if f != name]
        budget = self.check.calls if name == self.check.function else {}
        s_args, s_kwargs = sized if sized is not None else (args, kwargs)
        allowed = {f: rule(s_args, s_kwargs) * int(repeat or 1) for f, rule in budget.items()}
        stand_ins = StandIns(allowed, _elements([list(s_args), s_kwargs]) + 16)
        resp = self._request({"op": "call", "name": name, "attr": attr, "on": on,
                              "args": list(args), "kwargs": kwargs, "repeat": repeat,
                              "keep": keep, "hold": hold, "aliases": _with_aliases,
                              "isolate": isolate, **self.guard}, stand_ins)
        if stand_ins.refused is not None:
            other, why = stand_ins.refused
            fail(Failure.CALLS, f"{name} calls {other}{where}, {why}, so the test scores 0",
                 hint=_refusal_hint(name, other, budget))
        error = resp.get("error")
        if error is not None:
            if not isinstance(error, dict):
                error = {}
            if error.get("not_implemented") is True:
                raise CheckFailed(f"{name} raised NotImplementedError: replace the "
                                  "`raise NotImplementedError()` with your code", Failure.NOT_IMPLEMENTED)
            etype = exception_name(error.get("type"))
            raised = StudentRaised.of(Failure.RAISED, f"{name} raised {etype}{where}",
                                      hint or "call it on inputs of these shapes to see the message")
            raised.exception = etype if etype in KNOWN_EXCEPTIONS else None
            raised.detail = f"{etype}: {_clip(str(error.get('message', '')))}"
            raise raised
        hits = resp.get("hits") or []
        if hits:
            what = describe_hit(hits[0], self.guard) or "a routine this exercise forbids"
            fail(Failure.CALLS, f"{name} calls {what}: this exercise asks for your own "
                 "implementation, so the test scores 0",
                 hint=f"compute it with your own operations instead of {what}")
        modified = resp.get("modified")
        if not isinstance(modified, list):
            raise CheckFailed(f"{name}: the notebook's kernel did not say whether the inputs "
                              "were left unchanged")
        if modified:
            fail(Failure.IN_PLACE, f"{name} modified its argument "
                 f"{self._modified_name(name, modified[0], args, kwargs, names)} in place{where}",
                 hint=_INPLACE_HINT)
        if "value" not in resp:
            raise CheckFailed(f"{name}: the notebook's kernel sent back no result")
        out = resp["value"]
        if repeat and not (isinstance(out, list) and len(out) == repeat):
            raise CheckFailed(f"{name}: the notebook's kernel sent back the wrong number of results",
                              Failure.ARITY)
        if returns is not None:
            out = expect_tuple(name, out, returns)
        if _with_aliases:
            resp["aliases"] = self._aliases(name, resp.get("aliases"), args, kwargs, names)
        return out, resp

    def cache_for(self, forward, args, label):
        """The cache this backward's test passes on the case ``args`` of ``forward`` (a
        Forward), as a CacheChoice.

        The student's forward runs first, called and judged exactly as its own check does
        it (its stand-ins and their budget, its guard, its tolerance); when its outputs are
        right, its cache, kept on the student's side, is the one. Otherwise the reference's
        cache is: when the forward is wrong on the case, raised, hung, returned what cannot
        be judged, or failed its own test earlier in this run (it is then not run again).
        The forward runs on a connection of its own (``SocketLink.side``) with a share of
        the time left (``PROBE_SHARE``), so that a hang costs the backward nothing; after a
        hang, or a kernel gone, the rest of the test uses the reference's cache.
        """
        reference = forward.reference(args)[-1]
        fcheck = self.assignment.checks[f"test_{forward.name}"]

        def the_reference(why=None, failed_test=False):
            return CacheChoice(self, reference, reference, forward, own=False, why=why,
                               failed_test=failed_test)

        if self.earlier.get(fcheck.grade_id) is False:
            return the_reference(failed_test=True)
        if self._probes_lost is not None:
            return the_reference(self._probes_lost)
        if self._probes is None:
            link = self.link.side()
            if link is None:  # the kernel takes no new connection
                self._probes_lost = Failure.KERNEL
                return the_reference(Failure.KERNEL)
            self._probes = (link, self if link is self.link else Student(link, self.check))
        link, caller = self._probes
        own_link = link is not self.link
        try:
            with link.bounded(PROBE_SHARE) if own_link else contextlib.nullcontext():
                handle = forward.judge(Student(link, fcheck), args, label)
        except (TimeLimit, KernelGone) as e:
            if own_link:  # that connection is lost to this test
                self._probes_lost = e.kind
            return the_reference(e.kind)
        except CheckFailed as e:
            return the_reference(e.kind)
        except Exception:  # what the comparisons could not use: not right
            return the_reference(Failure.TYPE)
        if not isinstance(handle, wire.Handle):
            return the_reference(Failure.TYPE)
        return CacheChoice(caller, handle, reference, forward, own=True)

    def _modified_name(self, name, entry, args, kwargs, names):
        """'h_prev' or "grads (entry 'W')": the argument a report [position, entry] names,
        in the grader's words."""
        if not (isinstance(entry, list) and len(entry) == 2):
            return "(one of them)"
        where, inner = entry
        if isinstance(where, int) and not isinstance(where, bool) and 0 <= where < len(args):
            label = self._names(name, len(args), names)[where]
        elif isinstance(where, str) and where in kwargs:
            label = where
        else:
            return "(one of them)"
        keys = _dict_keys([list(args), kwargs])
        if isinstance(inner, int) and not isinstance(inner, bool):
            return f"{label} (entry {inner})"
        if isinstance(inner, str) and inner in keys:
            return f"{label} (entry {inner!r})"
        return label

    def _aliases(self, name, found, args, kwargs, names):
        """[(output path, input path)] as text ('[0]', "grads['W']"), from the reports
        [output path, argument, input path]; entries that name anything the grader did not
        send are dropped."""
        keys = _dict_keys([list(args), kwargs])
        labels = self._names(name, len(args), names)
        out = []
        for entry in found if isinstance(found, list) else []:
            if not (isinstance(entry, list) and len(entry) == 3):
                continue
            opath, arg, ipath = entry
            if isinstance(arg, int) and not isinstance(arg, bool) and 0 <= arg < len(args):
                label = labels[arg]
            elif isinstance(arg, str) and arg in kwargs:
                label = arg
            else:
                continue
            o, i = _path_text(opath, keys), _path_text(ipath, keys)
            if o is not None and i is not None:
                out.append((o, label + i))
        return out


def _refusal_hint(name, other, budget):
    if other.endswith("forward") and "backward" in name:
        return ("a backward needs no forward call: the cache holds everything it needs "
                "(the backward formulas are in the notebook)")
    if name[:1].isupper():
        return f"{name} computes with torch operations of its own, on the device of its inputs"
    if budget:
        return (f"{name} may call {', '.join(budget)} (the reference answers those calls, "
                "within what an honest solution needs); compute the rest yourself")
    return f"{name} computes its result itself, with NumPy operations"


def _clip(text, limit=300):
    return text if len(text) <= limit else text[:limit] + " ..."


# ----------------------------------------------------------------------------- caches
PROBE_SHARE = 0.25  # of the time left to a backward's test: what the student's forward may take


@dataclass(frozen=True)
class Forward:
    """A graded forward whose cache a graded backward takes.

    ``returns``: the names of its outputs, the cache last. ``layout``: the names of the
    entries of the reference's cache, the layout the notebook suggests. ``expect(outputs,
    args, label)``: its check's judgement of its outputs (the cache left out), raising
    CheckFailed: the forward's check and a backward's test judge it with the same code.
    ``diagnose(cache, reference_cache, args)``, optional: for a cache in the suggested
    layout, a hint naming what one of its entries holds instead (or None).
    """
    name: str
    returns: tuple
    layout: tuple
    expect: Callable
    diagnose: Callable | None = None

    def reference(self, args):
        """The reference forward's outputs and cache on ``args``."""
        from autograder import reference as ref

        return getattr(ref, self.name)(*args)

    def judge(self, student, args, label):
        """Call the student's forward on ``args`` and judge its outputs; returns the handle
        of its cache, which stays on the student's side, unread (CheckFailed when wrong)."""
        out = student.call(self.name, *args, returns=self.returns, hold=len(self.returns) - 1)
        self.expect(out[:-1], args, label)
        return out[-1]


@dataclass
class CacheChoice:
    """The cache a backward's test passes on one case (``Student.cache_for``).

    ``student``: who calls the backward (on the connection that keeps the student's cache);
    ``cache``: the handle of the student's own cache (``own``), or the reference's cache;
    ``reference``: the reference's cache; ``why``: how the student's forward failed on the
    case (a Failure); ``failed_test``: it failed its own test earlier in this run;
    ``backward``: the name of the function called with it.
    """
    student: "Student"
    cache: object
    reference: tuple
    forward: Forward
    own: bool
    why: Failure | None = None
    failed_test: bool = False
    backward: str = "backward"

    def call(self, name, *args, **kwargs):
        """``Student.call`` of the backward, whose stand-ins' budget is computed on the
        reference's cache in place of the student's (both record the same forward pass)."""
        self.backward = name
        sized = [self.reference if a is self.cache else a for a in args]
        return self.student.call(name, *args, sized=(sized, kwargs), **kwargs)

    def note(self):
        """Which cache the test used, in the grader's words, for a failed test's message."""
        f, b = self.forward, self.backward
        layout = f"the tuple ({', '.join(f.layout)}), the layout the notebook suggests"
        if self.own:
            return (f"your {b} was tested with the cache your own {f.name} returned (its "
                    "outputs are right on this case)")
        if self.failed_test:
            return (f"your {f.name} failed its own hidden test, so your {b} was tested with "
                    f"the reference's cache, {layout}")
        return (f"your {f.name} is not right on this case ({self.why or Failure.OTHER}), so "
                f"your {b} was tested with the reference's cache, {layout}")


def with_cache(student, forward, args, label, test):
    """Test a backward on one case with the cache the rule gives it (``Student.cache_for``).

    ``test(call, cache)`` calls the backward through ``call`` (``Student.call``'s arguments,
    ``cache`` among them) and compares what it returns, raising CheckFailed when wrong. A
    failure says which cache was used; when the student's own cache was, and the backward
    is right on the reference's, its hint says so: the cache is not what the backward reads.
    """
    choice = student.cache_for(forward, args, label)
    try:
        test(choice.call, choice.cache)
    except CheckFailed as e:
        hint = None
        if choice.own and not isinstance(e, (TimeLimit, KernelGone)):
            hint = _cache_hint(student, choice, args, test)
        _amend(e, choice.note(), hint)
        raise


def _cache_hint(student, choice, args, test):
    """When the backward passes on the reference's cache: a hint saying that the student's
    cache is not what the backward reads (naming the entry when it can); else None."""
    f = choice.forward
    reference = CacheChoice(student, choice.reference, choice.reference, f, own=False)
    try:
        with student.link.bounded(PROBE_SHARE):  # the test has failed: this only explains it
            test(reference.call, reference.cache)
    except Exception:  # wrong on the reference's cache too: a mistake of the backward's own
        return None
    try:
        got = choice.student.fetch(choice.cache)
    except Exception:
        got = None
    what = _entry_hint(got, choice.reference, f.layout)
    if what is not None and f.diagnose is not None:
        what = f.diagnose(got, choice.reference, args) or what
    b = choice.backward
    return (f"your {b} is right on the reference's cache ({', '.join(f.layout)}): the cache "
            f"your {f.name} returns does not hold what your {b} reads"
            + (f"; {what}" if what else ""))


def _entry_hint(got, want, layout):
    """For a cache of the suggested length: which entry is not the suggested one, or None."""
    if type(got) not in (tuple, list) or len(got) != len(want):
        return None
    for i, (name, g, w) in enumerate(zip(layout, got, want)):
        if not (type(g) is np.ndarray and g.dtype == np.float64 and g.shape == np.shape(w)
                and rel_error(g, w) <= 1e-6):
            return f"its entry {i} is not {name}, which the suggested layout has there"
    return None


def _amend(e, line, hint=None):
    """Add ``line`` to the details of the failure ``e`` (and make ``hint`` its hint), in its
    message too; ``e`` keeps its class and fields."""
    if hint:
        e.hint = hint
    e.details = (*e.details, line)
    lines = [e.what, *("  " + d for d in e.details)]
    if e.hint:
        lines.append(f"  hint: {e.hint}")
    e.args = ("\n".join(lines),)


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
def expect_grads(fn, got, want, names, label, hints=None):
    """Compare a tuple of gradients entry by entry; the first wrong one fails."""
    hints = hints or {}
    for name, g, w in zip(names, got, want):
        expect_close(f"{fn}: {name} ({label})", g, w, tol=1e-6, show=False, hint=hints.get(name))


def devices():
    """The torch devices a PyTorch check runs on: the CPU, and CUDA when there is one."""
    import torch

    return ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
