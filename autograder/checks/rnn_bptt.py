"""Hidden checks of the assignment rnn_bptt (vanilla RNN forward, backward, BPTT norms).

A forward is graded on its outputs, its cache left unread. rnn_step_backward takes the cache
of the student's own rnn_step_forward, rnn_backward and bptt_grad_norms that of the student's
own rnn_forward, when that forward is right on the case, else the reference's
(``core.with_cache``), whose layout the notebook suggests: step (x, h_prev, Wx, Wh, h_next),
sequence (x, h0, Wx, Wh, h). (``Student.call`` also fails a function that writes into its
inputs.)
"""
from __future__ import annotations

import numpy as np

from autograder import reference as ref
from coursekit.expect import expect_array, expect_close

from .core import (Forward, case_label, check, expect_grads, per_step, rng_for, sizes,
                   with_cache)

A = "rnn_bptt"
STEP_CACHE = ("x", "h_prev", "Wx", "Wh", "h_next")
SEQ_CACHE = ("x", "h0", "Wx", "Wh", "h")
GRADS = ("dx", "dh_prev", "dWx", "dWh", "db")
SEQ_GRADS = ("dx", "dh0", "dWx", "dWh", "db")


def step_inputs(rng, N, D, H):
    """x (N, D), h_prev (N, H), Wx (D, H), Wh (H, H), b (H,), scaled to stay off saturation."""
    return (rng.standard_normal((N, D)), rng.standard_normal((N, H)),
            0.5 * rng.standard_normal((D, H)), 0.5 * rng.standard_normal((H, H)),
            0.5 * rng.standard_normal(H))


def seq_inputs(rng, N, T, D, H):
    """x (N, T, D), h0 (N, H), Wx (D, H), Wh (H, H), b (H,)."""
    x = rng.standard_normal((N, T, D))
    return (x, *step_inputs(rng, N, D, H)[1:])


# ----------------------------------------------------------------------------- forwards
def _step_outputs(outputs, args, label):
    (h_next,) = outputs
    expect_close(f"rnn_step_forward: h_next ({label})", h_next, ref.rnn_step_forward(*args)[0],
                 tol=1e-6, show=False,
                 hint="h_next = tanh(x @ Wx + h_prev @ Wh + b): Wh not transposed, the bias "
                      "inside the tanh")


def _seq_outputs(outputs, args, label):
    (h,) = outputs
    want = ref.rnn_forward(*args)[0]
    expect_array(f"rnn_forward: h ({label})", h, want.shape)
    expect_close(f"rnn_forward: h[:, 0], the first step ({label})", h[:, 0], want[:, 0],
                 tol=1e-6, show=False,
                 hint="step 0 reads x[:, 0] and starts from h0 (not from zeros)")
    expect_close(f"rnn_forward: h ({label})", h, want, tol=1e-6, show=False,
                 hint="h[:, t] is the state after step t, and step t starts from h[:, t-1]")


STEP = Forward("rnn_step_forward", ("h_next", "cache"), STEP_CACHE, _step_outputs)
SEQ = Forward("rnn_forward", ("h", "cache"), SEQ_CACHE, _seq_outputs)


@check(A, "rnn_step_forward", points=2)
def _(student):
    rng = rng_for("test_rnn_step_forward")
    for d in sizes(rng, "NDH"):
        STEP.judge(student, step_inputs(rng, d["N"], d["D"], d["H"]), case_label(**d))


@check(A, "rnn_step_backward", points=2)
def _(student):
    rng = rng_for("test_rnn_step_backward")
    for d in sizes(rng, "NDH"):
        args = step_inputs(rng, d["N"], d["D"], d["H"])
        dh_next = rng.standard_normal((d["N"], d["H"]))
        want = ref.rnn_step_backward(dh_next, ref.rnn_step_forward(*args)[1])
        label = case_label(**d)

        def test(call, cache):
            got = call("rnn_step_backward", dh_next, cache, returns=GRADS)
            expect_grads("rnn_step_backward", got, want, GRADS, label,
                         hints={"dx": "dx = da @ Wx.T with da = dh_next * (1 - h_next**2)",
                                "dh_prev": "dh_prev = da @ Wh.T, with tanh' = 1 - h_next**2 "
                                           "taken from the cache's h_next",
                                "dWx": "dWx = x.T @ da, summed over the batch by the matmul",
                                "dWh": "dWh = h_prev.T @ da, summed over the batch by the matmul",
                                "db": "db sums da over the batch axis (axis 0)"})
        with_cache(student, STEP, args, label, test)


@check(A, "rnn_forward", points=2, calls={"rnn_step_forward": per_step})
def _(student):
    rng = rng_for("test_rnn_forward")
    for d in sizes(rng, "NTDH"):
        SEQ.judge(student, seq_inputs(rng, d["N"], d["T"], d["D"], d["H"]), case_label(**d))


@check(A, "rnn_backward", points=3, calls={"rnn_step_backward": per_step})
def _(student):
    rng = rng_for("test_rnn_backward")
    for d in sizes(rng, "NTDH"):
        args = seq_inputs(rng, d["N"], d["T"], d["D"], d["H"])
        dh = rng.standard_normal((d["N"], d["T"], d["H"]))
        want = ref.rnn_backward(dh, ref.rnn_forward(*args)[1])
        label = case_label(**d)

        def test(call, cache):
            got = call("rnn_backward", dh, cache, returns=SEQ_GRADS)
            expect_grads("rnn_backward", got, want, SEQ_GRADS, label,
                         hints={"dx": "each step gets dh[:, t] plus the gradient carried back "
                                      "from step t+1, looping from t = T-1 down to 0",
                                "dh0": "dh0 is the gradient carried back past step 0",
                                "dWx": "dWx sums the contribution of every time step",
                                "dWh": "dWh sums h_prev.T @ da over every time step, with "
                                       "h_prev = h0 at t = 0",
                                "db": "db sums da over the batch and over every time step"})
        with_cache(student, SEQ, args, label, test)


def _cache_steps(args, kwargs):
    """bptt_grad_norms(dh_T, cache): one rnn_step_backward per time step of the cache's h
    (the reference's cache: ``CacheChoice.call`` computes budgets on it)."""
    cache = args[1] if len(args) > 1 else kwargs.get("cache")
    return int(np.shape(cache[-1])[1]) if isinstance(cache, (tuple, list)) and cache else 1


@check(A, "bptt_grad_norms", points=1, calls={"rnn_step_backward": _cache_steps})
def _(student):
    rng = rng_for("test_bptt_grad_norms")
    for d in sizes(rng, "NTDH"):
        args = seq_inputs(rng, d["N"], d["T"], d["D"], d["H"])
        dh_T = rng.standard_normal((d["N"], d["H"]))
        want = ref.bptt_grad_norms(dh_T, ref.rnn_forward(*args)[1])
        label = case_label(**d)

        def test(call, cache):
            norms = call("bptt_grad_norms", dh_T, cache)
            expect_array(f"bptt_grad_norms ({label})", norms, want.shape)
            expect_close(f"bptt_grad_norms: norms[T-1] ({label})", norms[-1:], want[-1:],
                         tol=1e-6, show=False,
                         hint="norms[T-1] is the Frobenius norm of dh_T itself, one number "
                              "for the whole batch")
            expect_close(f"bptt_grad_norms ({label})", norms, want, tol=1e-6, show=False,
                         hint="record norms[t], then step back: multiply by (1 - h[:, t]**2), "
                              "then by Wh.T")
        with_cache(student, SEQ, args, label, test)
