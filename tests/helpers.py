"""Helpers shared by several test files: ``from helpers import ...``.

tests/ has no __init__.py, so pytest (rootdir-based "prepend" import mode) puts tests/ itself on
sys.path and this module imports by its bare name, like conftest.
"""
import copy
import re

import numpy as np
import pytest
import torch

from coursekit.gradcheck import numerical_gradient, rel_error


# ----------------------------------------------------------------------------- small conversions
def to_np(t):
    """A torch tensor (any device, grad or not) as a NumPy array."""
    return t.detach().cpu().numpy()


def sigmoid(a):
    return 1.0 / (1.0 + np.exp(-a))


def readonly(*arrays):
    """Make the arrays read-only, so that any in-place write raises; returns them."""
    for a in arrays:
        a.flags.writeable = False
    return arrays


# ----------------------------------------------------------------------------- error messages
def names_arg(*names):
    """pytest.raises match: the message starts with one of ``names`` as a whole word.

    Every ValueError of the reference starts with the argument's name ("Wx: expected ..."),
    so 'x' does not match a message about 'Wx', nor one that merely mentions x further on.
    """
    return r"^(?:" + "|".join(re.escape(n) for n in names) + r")(?!\w)"


# ----------------------------------------------------------------------------- bad array arguments
# Every label of bad_values, as for a non-square argument of rank >= 2 (an upstream gradient).
BAD_LABELS = ("rank+1", "rank-1", "float32", "int64", "list", "empty", "shape", "shape-last",
              "transposed")


def bad_values(value):
    """label -> a wrong version of the float64 array argument ``value`` (at least 1-D).

    Wrong rank both ways, wrong dtype (float32, int64), a list instead of an array, an empty
    first axis, one element too many along the first axis ("shape") and the last axis
    ("shape-last", rank >= 2 only), and the axes reversed ("transposed", where that changes
    the shape).
    """
    bad = {
        "rank+1": value[None],
        "rank-1": value[0, ...],  # a 0-d array for a 1-D value
        "float32": value.astype(np.float32),
        "int64": value.astype(np.int64),
        "list": value.tolist(),
        "empty": value[:0],
        "shape": np.concatenate([value, value[:1]], axis=0),
    }
    if value.ndim > 1:
        bad["shape-last"] = np.concatenate([value, value[..., :1]], axis=-1)
    if value.shape != value.shape[::-1]:
        bad["transposed"] = value.T.copy()
    return bad


def bad_cases(args, blame=None, kind=None):
    """pytest.param([kind,] name, label, pattern) for every bad_values entry of every argument.

    ``args`` is a dict of good arguments, in the function's order. ``pattern`` (for
    pytest.raises) names the argument itself, except for a shape error that ``blame`` lists:
    blame[name][label] holds the other names the message may start with instead. (A longer
    axis can be reported by a later argument when it is where this one binds a dimension
    first, see autograder.reference._validate; any other error is the argument's own.) ``kind``, if
    given, is put in front of each case (and of its id), to run several functions in one test.
    """
    blame = blame or {}
    head = () if kind is None else (kind,)
    return [pytest.param(*head, name, label, names_arg(name, *blame.get(name, {}).get(label, ())),
                         id="-".join(map(str, (*head, name, label))))
            for name in args for label in bad_values(args[name])]


def assert_rejects(fn, args, name, label, pattern=None):
    """fn(**args), with args[name] replaced by bad_values(args[name])[label], raises a ValueError
    whose message matches ``pattern`` (default: it starts with ``name``)."""
    args = {**args, name: bad_values(args[name])[label]}
    with pytest.raises(ValueError, match=pattern or names_arg(name)):
        fn(**args)


def recurrent_blame(state, next_with_H="Wx"):
    """bad_cases' blame for f(x, state, ..., Wx, ...), where x binds N and D and the state binds
    H: a longer (or transposed) axis 0 of x is reported by the state (N), a longer last axis of
    x by Wx (D), and a longer last axis of the state by the next argument with an H axis. Either
    name is accepted: the test does not insist on which of the two disagreeing arguments is
    blamed.
    """
    return {"x": {"shape": (state,), "transposed": (state,), "shape-last": ("Wx",)},
            state: {"shape-last": (next_with_H,)}}


# ----------------------------------------------------------------------------- model inputs
def rnn_params(rng, N, T, D, H, scale=0.5):
    """(x (N, T, D), h0 (N, H), Wx (D, H), Wh (H, H), b (H,)): random inputs of rnn_forward."""
    return (rng.standard_normal((N, T, D)), rng.standard_normal((N, H)) * scale,
            rng.standard_normal((D, H)) * scale, rng.standard_normal((H, H)) * scale,
            rng.standard_normal(H) * scale)


def lstm_step_args(rng, N, D, H, scale=0.5):
    """Random keyword arguments of lstm_step_forward; weights scaled so no gate saturates."""
    return dict(
        x=rng.standard_normal((N, D)),
        h_prev=rng.standard_normal((N, H)),
        c_prev=rng.standard_normal((N, H)),
        Wx=scale * rng.standard_normal((D, 4 * H)),
        Wh=scale * rng.standard_normal((H, 4 * H)),
        b=scale * rng.standard_normal(4 * H),
    )


# ----------------------------------------------------------------------------- gradients
def autograd_grads(fn, arrays, upstream):
    """Gradients of sum_k <fn(**arrays)[k], upstream[k]> w.r.t. every array, via torch.autograd.

    ``fn`` returns one tensor (then ``upstream`` is one array) or a tuple of tensors (then a
    sequence of as many arrays). Returns a dict name -> float64 NumPy gradient.
    """
    ts = {k: torch.tensor(v, dtype=torch.float64, requires_grad=True) for k, v in arrays.items()}
    outs = fn(**ts)
    if isinstance(outs, torch.Tensor):
        outs, upstream = (outs,), (upstream,)
    loss = sum((o * torch.as_tensor(u)).sum() for o, u in zip(outs, upstream, strict=True))
    grads = torch.autograd.grad(loss, list(ts.values()))
    return {k: g.numpy() for k, g in zip(ts, grads)}


def assert_backward_numerical(forward, backward, args, rng, grad_names=None, tol=1e-6):
    """backward agrees with central differences of forward, on every output at once.

    forward(**args) returns (*outputs, cache) and backward(*upstream, cache) one gradient per
    name of ``grad_names`` (default: every argument, in order). The upstream gradients are
    random, one per output, so a wrong gradient of any output (e.g. an LSTM's c_next) shows.
    """
    grad_names = list(args) if grad_names is None else grad_names
    *outs, cache = forward(**args)
    for out in outs:
        assert out.dtype == np.float64
    upstream = [rng.standard_normal(o.shape) for o in outs]
    grads = backward(*upstream, cache)
    assert len(grads) == len(grad_names)

    def f():
        return np.concatenate([o.ravel() for o in forward(**args)[:-1]])

    df = np.concatenate([u.ravel() for u in upstream])
    for name, g in zip(grad_names, grads):
        assert g.shape == args[name].shape and g.dtype == np.float64, name
        assert rel_error(g, numerical_gradient(f, args[name], df)) < tol, name


def assert_backward_matches_autograd(forward, backward, torch_fn, args, rng, grad_names=None,
                                     tol=1e-6, forward_tol=1e-12):
    """forward equals torch_fn (the same computation in plain torch ops, float64) and backward
    equals torch.autograd through it. Arguments as for assert_backward_numerical; torch_fn takes
    the same keyword arguments as tensors and returns one tensor per output of forward.
    """
    grad_names = list(args) if grad_names is None else grad_names
    *outs, cache = forward(**args)
    t_outs = torch_fn(**{k: torch.tensor(v) for k, v in args.items()})
    t_outs = (t_outs,) if isinstance(t_outs, torch.Tensor) else t_outs
    for out, t_out in zip(outs, t_outs, strict=True):
        assert rel_error(out, t_out.numpy()) < forward_tol
    upstream = [rng.standard_normal(o.shape) for o in outs]
    ref = autograd_grads(torch_fn, args, upstream if len(outs) > 1 else upstream[0])
    grads = backward(*upstream, cache)
    assert len(grads) == len(grad_names)
    for name, g in zip(grad_names, grads):
        assert rel_error(g, ref[name]) < tol, name


def scalar_num_grad(fun, x):
    """Central-difference gradient of the scalar fun() with respect to x (perturbed in place)."""
    return numerical_gradient(lambda: np.array(fun()), x, np.array(1.0))


def assert_numeric_match(analytic, numeric, tol=1e-6):
    """rel_error < tol on every entry with |analytic| + |numeric| > 1e-4, and an absolute
    bound of 1e-10 on the smaller ones.

    Central differences (h = 1e-5) of a loss of size ~1 carry a few 1e-11 of rounding error;
    rel_error's 1e-8 floor would turn that into ~1e-3 for a gradient entry of ~1e-8, so small
    entries are held to an absolute bound instead (a real bug is off by far more).
    """
    assert analytic.shape == numeric.shape
    big = np.abs(analytic) + np.abs(numeric) > 1e-4
    assert rel_error(analytic[big], numeric[big]) < tol
    assert np.max(np.abs(analytic - numeric)[~big], initial=0.0) < 1e-10


# ----------------------------------------------------------------------------- side effects
def assert_unchanged(before, after):
    """Equal arrays, key by key (dicts) or position by position (sequences of the same length)."""
    if isinstance(before, dict):
        assert before.keys() == after.keys()
        for k in before:
            np.testing.assert_array_equal(after[k], before[k], err_msg=k)
    else:
        assert len(before) == len(after)
        for i, (b, a) in enumerate(zip(before, after)):
            np.testing.assert_array_equal(a, b, err_msg=str(i))


def assert_no_side_effects(forward, backward, args, rng, upstream=None):
    """forward(**args) returns (*outputs, cache); backward(*upstream, cache) the gradients (a
    tuple of arrays, or one array). ``upstream`` defaults to random arrays shaped like the
    outputs.

    Neither may modify what it is given (args, upstream, the cache, forward's outputs); the
    outputs and gradients must be fresh arrays (no memory shared with args or upstream); and a
    second call of either gives the same result.
    """
    saved = copy.deepcopy(args)
    *outs, cache = forward(**args)
    assert_unchanged(saved, args)
    for out in outs:
        assert not any(np.shares_memory(out, a) for a in args.values())
    if upstream is None:
        upstream = [rng.standard_normal(o.shape) for o in outs]
    outs_saved, ups_saved, cache_saved = (copy.deepcopy(o) for o in (outs, upstream, cache))
    g1 = backward(*upstream, cache)
    if isinstance(g1, np.ndarray):
        g1 = (g1,)
    assert_unchanged(saved, args)
    assert_unchanged(ups_saved, upstream)
    assert_unchanged(cache_saved, cache)
    assert_unchanged(outs_saved, outs)
    g2 = backward(*upstream, cache)
    assert_unchanged(g1, (g2,) if isinstance(g2, np.ndarray) else g2)
    for g in g1:
        assert not any(np.shares_memory(g, a) for a in [*args.values(), *upstream])
    assert_unchanged(outs, forward(**args)[:-1])
