"""The machinery of the hidden checks: a registry, the student's side of a call, and guards.

A check is a function ``run(student)`` registered for one grade_id (``test_<function>``).
It builds fresh inputs, calls the student's function through ``Student.call`` and compares
the result with ``autograder.reference`` using the ``coursekit.expect`` helpers; any
``CheckFailed`` is the verdict "0 points", with its message as the feedback.

``Student.call`` is the only way a check reaches student code, so the policy lives here:
- every argument is a fresh copy, so an in-place write cannot corrupt the next case;
- the other graded functions of the assignment are replaced, for the duration of the call,
  by the reference (isolation): a mistake in ``rnn_step_forward`` costs its own points and
  not those of the ``rnn_forward`` that calls it;
- a profiler watches the call, and calling the reference, ``torch.nn.RNN/LSTM/GRU``, torch's
  autograd or another forbidden library routine fails the check (delegation).
Backward checks feed the student's backward the reference forward's cache, whose layout the
notebooks prescribe, so a backward is graded on its own too.
"""
from __future__ import annotations

import contextlib
import copy
import hashlib
import io
import os
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from coursekit.expect import CheckFailed, expect_close, expect_tuple

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
# and kernels, and autograd (every exercise asks for a hand-written computation).
_ALWAYS_FILES = (REFERENCE_DIR, "torch/nn/modules/rnn.py", "torch/autograd/functional.py",
                 # torch.func's transforms (not all of _functorch: Function.apply uses its utils)
                 "torch/_functorch/eager_transforms.py", "torch/_functorch/apis.py",
                 "torch/_functorch/vmap.py", "torch/_functorch/functional_call.py", "torch/func/")
_ALWAYS_C = ("lstm", "lstm_cell", "gru", "gru_cell", "rnn_tanh", "rnn_tanh_cell", "rnn_relu",
             "rnn_relu_cell", "_cudnn_rnn", "run_backward", "_run_backward")


def _forbidden_codes():
    codes = {}
    try:
        import torch
    except ImportError:  # a NumPy-only environment has no autograd to call
        return codes
    codes[torch.autograd.grad.__code__] = "torch.autograd.grad"
    codes[torch.autograd.backward.__code__] = "torch.autograd.backward"
    codes[torch.Tensor.backward.__code__] = "Tensor.backward"
    return codes


def _allowed(fn):
    """A stand-in for another graded function during isolation; calls through it are fine."""
    def allowed(*args, **kwargs):
        return fn(*args, **kwargs)
    allowed.__name__ = allowed.__qualname__ = getattr(fn, "__name__", "allowed")
    allowed.__doc__ = fn.__doc__
    return allowed


_ALLOWED_CODE = _allowed(len).__code__


class Guard:
    """A profiler that records calls to forbidden code made outside isolation stand-ins."""

    def __init__(self, forbid=()):
        self.files = _ALWAYS_FILES + tuple(f for f in forbid if "/" in f or f.endswith(".py"))
        self.c_names = set(_ALWAYS_C) | {f for f in forbid if "/" not in f and not f.endswith(".py")}
        self.codes = _forbidden_codes()
        self.hits = []
        self._depth = 0
        self._allowed_frames = set()

    def _hit(self, what):
        if what not in self.hits:
            self.hits.append(what)

    def __call__(self, frame, event, arg):
        if event == "call":
            code = frame.f_code
            if code is _ALLOWED_CODE:
                self._depth += 1
                self._allowed_frames.add(id(frame))
            elif self._depth == 0:
                if code in self.codes:
                    self._hit(self.codes[code])
                else:
                    fname = code.co_filename.replace(os.sep, "/")
                    for f in self.files:
                        if f.replace(os.sep, "/") in fname:
                            self._hit(_describe_code(code))
                            break
        elif event == "return" and id(frame) in self._allowed_frames:
            self._allowed_frames.discard(id(frame))
            self._depth -= 1
        elif event == "c_call" and self._depth == 0:
            name = getattr(arg, "__name__", "")
            if name in self.c_names and "torch" in repr(getattr(arg, "__module__", None) or arg):
                self._hit(f"torch.{name}")

    @contextlib.contextmanager
    def watching(self):
        previous = sys.getprofile()
        sys.setprofile(self)
        try:
            yield self
        finally:
            sys.setprofile(previous)


def _describe_code(code):
    path = code.co_filename.replace(os.sep, "/")
    if REFERENCE_DIR.replace(os.sep, "/") in path:
        return f"autograder.reference ({code.co_name})"
    if "torch/nn/modules/rnn.py" in path:
        return "torch.nn.RNN/LSTM/GRU"
    module = path.split("site-packages/")[-1].removesuffix(".py").replace("/", ".")
    # a private helper (a decorator's wrapper, say) says less than the module it lives in
    return module if code.co_name.startswith(("_", "<")) else f"{module}.{code.co_name}"


# ----------------------------------------------------------------------------- the student side
class Student:
    """What a check sees of a student's notebook: the namespace its cells defined."""

    def __init__(self, namespace, assignment, forbid=()):
        self.namespace = namespace
        self.assignment = ASSIGNMENTS[assignment]
        self.forbid = tuple(forbid)

    def get(self, name):
        """The object the student defined under ``name`` (CheckFailed if there is none)."""
        if name not in self.namespace:
            raise CheckFailed(f"{name} is not defined: run the cell that defines it "
                              "(and keep its name and signature as given)")
        obj = self.namespace[name]
        if not callable(obj):
            raise CheckFailed(f"{name} should be a function, got {type(obj).__name__}")
        return obj

    @contextlib.contextmanager
    def guarded(self, name):
        """Run student code for ``name`` under isolation and the delegation guard."""
        from autograder import reference as ref

        fn = self.namespace.get(name)
        scope = getattr(fn, "__globals__", self.namespace)
        swapped = {}
        for other in self.assignment.functions:
            if other != name and other in scope and hasattr(ref, other):
                swapped[other] = scope[other]
                scope[other] = _allowed(getattr(ref, other))
        guard = Guard(self.forbid)
        try:
            with warnings.catch_warnings(), contextlib.redirect_stderr(io.StringIO()):
                warnings.simplefilter("ignore")  # a warning from correct code costs nothing
                with guard.watching():
                    yield guard
        finally:
            scope.update(swapped)
        if guard.hits:
            raise CheckFailed(
                f"{name} calls {guard.hits[0]}: this exercise asks for your own "
                "implementation, so the test scores 0",
                )

    @contextlib.contextmanager
    def running(self, name, where="", hint=None):
        """Run student code for ``name`` (guarded, as ``guarded``) and turn any exception it
        raises into a CheckFailed for the student; ``where`` says which case, e.g. ' (N=1)'.

        For checks that must call the student's code themselves (a shared Generator, a
        torch.autograd.Function); ``call`` is the usual way.
        """
        try:
            with self.guarded(name):
                yield
        except CheckFailed:
            raise
        except NotImplementedError:
            raise CheckFailed(f"{name} raised NotImplementedError: replace the "
                              "`raise NotImplementedError()` with your code") from None
        except Exception as e:  # any crash in student code is a failed test, not a crash of ours
            raise CheckFailed(f"{name} raised {type(e).__name__}{where}: {_clip(str(e))}"
                              + (f"\n  hint: {hint}" if hint else "")) from None

    def call(self, name, *args, returns=None, **kwargs):
        """Call the student's ``name`` on copies of the arguments; CheckFailed on any error.

        ``returns``: the names of the outputs when the function returns a tuple; the tuple is
        then checked for length and returned as a tuple.
        """
        fn = self.get(name)
        given, given_kw = copy.deepcopy(args), copy.deepcopy(kwargs)
        with self.running(name):
            out = fn(*given, **given_kw)
        _expect_untouched(name, fn, args, kwargs, given, given_kw)
        if returns is not None:
            out = expect_tuple(name, out, returns)
        return out


def _same(a, b):
    if isinstance(a, np.ndarray):
        return isinstance(b, np.ndarray) and a.shape == b.shape and np.array_equal(a, b, equal_nan=True)
    if isinstance(a, (tuple, list)):
        return isinstance(b, (tuple, list)) and len(a) == len(b) and all(map(_same, a, b))
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return True  # numbers, generators, ...: not compared


def _expect_untouched(name, fn, args, kwargs, given, given_kw):
    """No argument may be modified in place (the contract of every graded function)."""
    import inspect

    try:
        params = list(inspect.signature(fn).parameters)
    except (TypeError, ValueError):
        params = []
    for i, (before, after) in enumerate(zip(args, given)):
        if not _same(before, after):
            arg = params[i] if i < len(params) else f"argument {i + 1}"
            if isinstance(before, tuple):
                arg += f" (entry {next(k for k, (b, a) in enumerate(zip(before, after)) if not _same(b, a))})"
            raise CheckFailed(f"{name} modified its argument {arg} in place\n"
                              "  hint: work on a copy (a += b writes into a; use a = a + b)")
    for k in kwargs:
        if not _same(kwargs[k], given_kw[k]):
            raise CheckFailed(f"{name} modified its argument {k} in place\n"
                              "  hint: work on a copy (a += b writes into a; use a = a + b)")


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
