"""Assertions that tell a student what was expected, what came back, and what to look at.

Every helper raises ``CheckFailed`` (an AssertionError) with a message in three parts: what
was wrong, the numbers (values only when the case is visible), and a hint. The visible tests
in the notebooks and the hidden checks of the grader use the same helpers, so a student
reads the same kind of message in both.
"""
from __future__ import annotations

from enum import StrEnum

import numpy as np

from .gradcheck import rel_error


class Failure(StrEnum):
    """The kind of mistake a failed test found. The instructor's report counts the failures of
    a function by kind and hint, so the same mistake on different cases counts once."""
    NOTHING = "returned nothing"
    TYPE = "wrong type"
    ARITY = "wrong number of outputs"
    DTYPE = "wrong dtype"
    SHAPE = "wrong shape"
    VALUES = "wrong values"
    GRADIENT = "wrong gradient"
    IN_PLACE = "modified an input"
    CALLS = "called what it may not"
    NOT_IMPLEMENTED = "not implemented"
    RAISED = "raised an exception"
    TIMEOUT = "ran past the time limit"
    KERNEL = "the kernel stopped"
    NOT_RUN = "not run"
    OTHER = "other"


class CheckFailed(AssertionError):
    """A test failed; the message is written for the student.

    ``kind`` (a Failure) and ``hint`` (the advice, also in the message) say what the mistake
    was as values, for whoever counts mistakes; nothing reads them back from the message.
    """
    kind = Failure.OTHER

    def __init__(self, message="", kind=None, hint=None):
        super().__init__(message)
        if kind is not None:
            self.kind = Failure(kind)
        self.hint = hint
        self.what, self.details = message, ()

    @classmethod
    def of(cls, kind, what, hint=None, details=()):
        """The failure ``what`` (one line), with detail lines and a hint under it."""
        lines = [what, *("  " + d for d in details)]
        if hint:
            lines.append(f"  hint: {hint}")
        e = cls("\n".join(lines), kind, hint or None)
        e.what, e.details = what, tuple(details)
        return e


def fail(kind, what, *, hint=None, details=()):
    """Raise ``CheckFailed.of(kind, what, hint, details)``: the one way a check says why it failed."""
    raise CheckFailed.of(kind, what, hint, details)


def _short(a, limit=6):
    """A one-line view of an array: its first entries, enough to recognize it."""
    flat = np.asarray(a).ravel()
    body = np.array2string(flat[:limit], precision=5, separator=", ", suppress_small=False)
    return body[:-1] + (", ...]" if flat.size > limit else "]")


def expect_tuple(name, got, names):
    """``got`` must be a tuple (or list) with one entry per name in ``names``; returns it."""
    if not isinstance(got, (tuple, list)):
        fail(Failure.TYPE, f"{name}: expected a tuple of {len(names)} ({', '.join(names)}), "
              f"got {type(got).__name__}",
              hint="return all the outputs, e.g. `return " + ", ".join(names) + "`")
    if len(got) != len(names):
        fail(Failure.ARITY, f"{name}: expected a tuple of {len(names)} ({', '.join(names)}), "
              f"got a tuple of {len(got)}",
              hint="check the order and number of returned values against the docstring")
    return tuple(got)


def expect_array(name, got, shape, dtype=np.float64, hint=None):
    """``got`` must be a plain numpy array of exactly ``dtype`` and ``shape``; returns it.

    ``hint`` is shown when no more specific diagnosis of the failure is available.
    """
    hint_default = hint
    hint = None
    if got is None:
        fail(Failure.NOTHING, f"{name}: got None", hint="the function returns nothing yet: is it implemented?")
    if type(got) is not np.ndarray:  # subclasses can redefine arithmetic and comparisons
        fail(Failure.TYPE, f"{name}: expected a numpy array of shape {tuple(shape)}, got {type(got).__name__}",
              hint="build the result with numpy operations (np.asarray converts a list)")
    if got.dtype != np.dtype(dtype):
        wanted = np.dtype(dtype)
        fail(Failure.DTYPE, f"{name}: expected dtype {wanted.name}, got {got.dtype.name}",
              hint=f"convert with .astype(np.{wanted.name})" if wanted.kind in "iu" else
              "keep float64 throughout; an integer or float32 array loses precision")
    if got.shape != tuple(shape):
        hint = None
        if got.shape == tuple(shape)[::-1]:
            hint = "the axes look reversed: a missing or extra transpose?"
        elif got.size == int(np.prod(shape)):
            hint = "the right number of entries in the wrong shape: check the axis order"
        elif len(got.shape) != len(shape):
            hint = "a wrong number of axes: a sum over the wrong axis, or a missing keepdims?"
        fail(Failure.SHAPE, f"{name}: expected shape {tuple(shape)}, got {got.shape}", hint=hint or hint_default)
    return got


def diagnose(got, want):
    """A guess at a common mistake that turns ``want`` into ``got``, or None."""
    got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    if not np.all(np.isfinite(got)):
        return "the result holds nan or inf: an overflow, a division by zero, or uninitialized memory (np.empty)?"
    if not np.any(got) and np.any(want):
        return "the result is all zeros: not implemented yet, or a gradient never accumulated?"
    if want.ndim == 2 and want.shape[0] == want.shape[1] and rel_error(got, want.T) < 1e-6:
        return "the result equals the expected one transposed"
    if rel_error(got, -want) < 1e-6:
        return "the sign is flipped"
    denom = float(np.vdot(want, want))
    if denom > 0:
        k = float(np.vdot(got, want)) / denom
        if abs(k - 1) > 1e-3 and rel_error(got, k * want) < 1e-6:
            return (f"the result is the expected one times {k:.4g}: an average instead of a sum "
                    "(or the reverse), or a missing factor?")
    return None


def expect_close(name, got, want, tol=1e-7, hint=None, show=True):
    """``got`` must equal ``want`` to relative error ``tol`` (see rel_error).

    ``show=False`` keeps the values out of the message (for hidden cases).
    """
    want = np.asarray(want)
    expect_array(name, got, want.shape, want.dtype if want.dtype.kind == "f" else got.dtype, hint=hint)
    err = rel_error(got, want)
    if err <= tol:
        return err
    details = [f"max relative error {err:.3g} (tolerance {tol:g})"]
    if show:
        details += [f"expected: {_short(want)}", f"got:      {_short(got)}"]
    fail(Failure.VALUES, f"{name} has the right shape {want.shape} but the wrong values",
          hint=hint or diagnose(got, want), details=details)


def expect_equal(name, got, want, hint=None, show=True):
    """``got`` must equal ``want`` exactly (integers, indices, counts)."""
    want_arr = np.asarray(want)
    if want_arr.ndim == 0:
        if isinstance(got, (bool, np.bool_)) or not isinstance(got, (int, np.integer)):
            fail(Failure.TYPE, f"{name}: expected an int, got {type(got).__name__}", hint=hint)
        if int(got) != int(want_arr):
            fail(Failure.VALUES, f"{name}: expected {int(want_arr)}" if show else f"{name}: wrong value",
                  details=[f"got {int(got)}"] if show else (), hint=hint)
        return
    expect_array(name, got, want_arr.shape, got.dtype if isinstance(got, np.ndarray) else np.int64,
                 hint=hint)
    if got.dtype.kind not in "iu":
        fail(Failure.DTYPE, f"{name}: expected an integer array, got dtype {got.dtype.name}", hint=hint)
    if not np.array_equal(got, want_arr):
        bad = int(np.sum(got != want_arr))
        details = [f"{bad} of {want_arr.size} entries differ"]
        if show:
            details += [f"expected: {_short(want_arr, 10)}", f"got:      {_short(got, 10)}"]
        fail(Failure.VALUES, f"{name} has the right shape {want_arr.shape} but the wrong values",
              hint=hint, details=details)


def expect_float(name, got, want, tol=1e-7, hint=None, show=True):
    """``got`` must be a Python or numpy float equal to ``want`` to relative error ``tol``.

    (A 0-d array is accepted as a number; a bool or a container is not.)
    """
    if isinstance(got, np.ndarray) and got.ndim == 0 and type(got) is np.ndarray:
        got = got[()]
    if isinstance(got, (bool, np.bool_)) or not isinstance(got, (float, int, np.floating, np.integer)):
        fail(Failure.TYPE, f"{name}: expected a float, got {type(got).__name__}",
              hint=f"return a number, e.g. float({name.split(':')[-1].strip().split()[0]})")
    got = float(got)
    if got == want:  # also two equal infinities, whose difference is nan
        return
    err = abs(got - want) / max(1e-8, abs(got) + abs(want))
    if not err <= tol:  # also catches nan
        details = [f"expected {want:.10g}, got {got:.10g}"] if show else [f"relative error {err:.3g}"]
        fail(Failure.VALUES, f"{name} is wrong", hint=hint, details=details)


def expect_grad(name, analytic, numeric, tol=1e-6, hint=None):
    """An analytic gradient must match its numerical estimate (central differences)."""
    numeric = np.asarray(numeric, dtype=np.float64)
    expect_array(name, analytic, numeric.shape)
    err = rel_error(analytic, numeric)
    if err > tol:
        fail(Failure.GRADIENT, f"{name} does not match the numerical gradient",
              hint=hint or diagnose(analytic, numeric),
              details=[f"max relative error {err:.3g} (tolerance {tol:g}; a correct "
                       "backward gives about 1e-9)",
                       f"numerical: {_short(numeric)}", f"yours:     {_short(analytic)}",
                       "(the numerical gradient differentiates your forward function: "
                       "if its test fails, fix it first)"])
    return err


def expect_unchanged(name, before, after):
    """An input array must not have been modified in place."""
    if not np.array_equal(before, after):
        fail(Failure.IN_PLACE, f"{name} was modified in place",
              hint="work on a copy (a += b writes into a; use a = a + b)")


def suggest_layout(name, cache, names, checks=None) -> bool:
    """Whether a forward's ``cache`` follows the suggested layout; never raises.

    Inputs:
    - name: the forward, as the note names it (e.g. "lstm_step_forward")
    - cache: the cache that forward returned (any object)
    - names: the entries of the suggested layout, in order (e.g. ("x", "h_prev", "Wx"))
    - checks: {entry name: expected} for the entries to look at: an array (its shape and
      values, to relative error 1e-7) or a tuple of ints (the shape only, e.g. (N, T, H))
    Returns True when ``cache`` is a tuple (or list) of len(names) entries that pass
    ``checks``; otherwise prints a note saying what differs and returns False. A cache of
    your own layout is allowed (grading passes your backward your own forward's cache when
    that forward's outputs are right), so this is advice, not a test.
    """
    checks = dict(checks or {})
    try:
        entries = expect_tuple(f"{name}: cache", cache, names)
        for k, entry in enumerate(names):
            if entry not in checks:
                continue
            want = checks[entry]
            label = f"{name}: cache entry {k} ({entry})"
            if isinstance(want, tuple):
                expect_array(label, entries[k], want)
            else:
                expect_close(label, entries[k], want, show=False)
    except CheckFailed as e:
        print(f"note: {name} returns a cache in a layout of your own, not the suggested "
              f"({', '.join(names)}): {e.what}\n"
              "  This is fine: when your forward's outputs are right, grading passes your "
              "backward the cache your own forward returned, in your layout.\n"
              "  The visible tests of the backward that hand it caches written in the "
              "suggested layout are skipped for you; a numerical gradient check through your "
              "own forward and backward runs instead.")
        return False
    return True
