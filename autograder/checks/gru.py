"""Hidden checks of the assignment gru (GRU forward and backward, PyTorch's convention).

Gate order r, z, n along the fused 3H axis; n = tanh(ax_n + r * (h Wh_n + bh_n));
h' = (1 - z) * n + z * h. A forward is graded on its outputs, its cache left unread; a
backward takes the cache of the student's own forward when that forward is right on the case,
else the reference's (``core.with_cache``), whose layout the notebook suggests:
step (x, h_prev, Wx, Wh, r, z, n, ah_n) with ah_n = h_prev Wh_n + bh_n (N, H);
sequence (x, h0, Wx, Wh, r, z, n, ah_n, h), each of r, z, n, ah_n, h being (N, T, H).

The reset-before step (Cho et al.: n = tanh(ax_n + (r * h_prev) Wh_n + bh_n)) is the
derivation exercise: its backward is in neither the book nor the notebook; its suggested cache
is (x, h_prev, Wx, Wh, r, z, n, rh) with rh = r * h_prev (N, H).

A wrong forward is compared with the usual convention mistakes (reset before the product,
z weighting the candidate, r and z swapped, b_h^n outside the reset product) so that the
message names the one the student made.
"""
from __future__ import annotations

import numpy as np

from autograder import reference as ref
from coursekit.expect import expect_close
from coursekit.gradcheck import rel_error

from .core import (Forward, case_label, check, expect_grads, per_step, rng_for, sizes,
                   with_cache)

A = "gru"
STEP_CACHE = ("x", "h_prev", "Wx", "Wh", "r", "z", "n", "ah_n")
SEQ_CACHE = ("x", "h0", "Wx", "Wh", "r", "z", "n", "ah_n", "h")
STEP_GRADS = ("dx", "dh_prev", "dWx", "dWh", "dbx", "dbh")
SEQ_GRADS = ("dx", "dh0", "dWx", "dWh", "dbx", "dbh")


# ----------------------------------------------------------------------------- inputs
def params(rng, D, H):
    """Wx (D, 3H), Wh (H, 3H), bx (3H,), bh (3H,), scaled so that the gates stay off 0 and 1."""
    return (0.5 * rng.standard_normal((D, 3 * H)), 0.5 * rng.standard_normal((H, 3 * H)),
            0.5 * rng.standard_normal(3 * H), 0.5 * rng.standard_normal(3 * H))


def step_inputs(rng, N, D, H):
    """x (N, D), h_prev (N, H), then the parameters."""
    return (rng.standard_normal((N, D)), rng.standard_normal((N, H)), *params(rng, D, H))


def seq_inputs(rng, N, T, D, H):
    """x (N, T, D), h0 (N, H), then the parameters."""
    return (rng.standard_normal((N, T, D)), rng.standard_normal((N, H)), *params(rng, D, H))


# ----------------------------------------------------------------------------- known mistakes
def _sigmoid(a):
    return 1.0 / (1.0 + np.exp(-a))


def _variant_step(x, h, Wx, Wh, bx, bh, variant):
    """One GRU step with one convention mistake (for naming the mistake in a message)."""
    H = h.shape[1]
    ax, ah = x @ Wx + bx, h @ Wh + bh
    r, z = _sigmoid(ax[:, :H] + ah[:, :H]), _sigmoid(ax[:, H:2 * H] + ah[:, H:2 * H])
    if variant == "rz swapped":
        r, z = z, r
    hn = h @ Wh[:, 2 * H:]
    if variant == "reset before":
        u = ax[:, 2 * H:] + (r * h) @ Wh[:, 2 * H:] + bh[2 * H:]
    elif variant == "bias outside":
        u = ax[:, 2 * H:] + r * hn + bh[2 * H:]
    else:
        u = ax[:, 2 * H:] + r * (hn + bh[2 * H:])
    n = np.tanh(u)
    if variant == "z weights n":
        return z * n + (1.0 - z) * h
    return (1.0 - z) * n + z * h


def _variant_seq(x, h0, Wx, Wh, bx, bh, variant):
    h, out = h0, []
    for t in range(x.shape[1]):
        h = _variant_step(x[:, t], h, Wx, Wh, bx, bh, variant)
        out.append(h)
    return np.stack(out, axis=1)


VARIANT_HINTS = {
    "reset before": "your output matches a GRU with the reset gate applied to h_prev before "
                    "the matrix product (Cho et al.'s convention); PyTorch's multiplies "
                    "r * (h_prev @ Wh_n + bh_n), after the product",
    "bias outside": "your output matches a GRU with bh_n outside the reset product; in "
                    "PyTorch's convention r multiplies (h_prev @ Wh_n + bh_n), bias included",
    "z weights n": "your output matches h' = z * n + (1 - z) * h_prev (the Chung/Olah "
                   "convention); here z weights the old state: h' = (1 - z) * n + z * h_prev",
    "rz swapped": "your output matches a GRU with r and z swapped; the fused 3H axis holds "
                  "the blocks in the order r, z, n",
}


def variant_hint(got, args, run, default, extra=()):
    """The hints naming the mistakes whose output ``got`` matches, else ``default``.

    ``extra``: more (hint, array) pairs to compare with. Several mistakes can give the same
    output in a small case (for H = 1, the reset before the product and bh_n outside it).
    """
    try:
        got = np.asarray(got, dtype=np.float64)
    except (TypeError, ValueError):
        return default
    candidates = [(hint, run(*args, variant)) for variant, hint in VARIANT_HINTS.items()]
    found = [hint for hint, want in (*candidates, *extra)
             if got.shape == want.shape and rel_error(got, want) < 1e-6]
    return "; or ".join(found) if found else default


# ----------------------------------------------------------------------------- checks
def _step_outputs(outputs, args, label):
    (h_next,) = outputs
    hint = variant_hint(h_next, args, _variant_step,
                        "h_next = (1 - z) * n + z * h_prev, with r, z, n in that order "
                        "along the 3H axis and n = tanh(ax_n + r * ah_n)")
    expect_close(f"gru_step_forward: h_next ({label})", h_next, ref.gru_step_forward(*args)[0],
                 tol=1e-6, show=False, hint=hint)


def _seq_outputs(outputs, args, label):
    (h,) = outputs
    zero_h0 = ref.gru_forward(args[0], np.zeros_like(args[1]), *args[2:])[0]
    hint = variant_hint(h, args, _variant_seq,
                        "h[:, t] is the state after step t; step 0 starts from h0 and "
                        "each step from the state the previous one returned",
                        extra=[("h0 is ignored: step 0 must start from h0, not from "
                                "zeros", zero_h0)])
    expect_close(f"gru_forward: h ({label})", h, ref.gru_forward(*args)[0], tol=1e-6,
                 show=False, hint=hint)


STEP = Forward("gru_step_forward", ("h_next", "cache"), STEP_CACHE, _step_outputs)
SEQ = Forward("gru_forward", ("h", "cache"), SEQ_CACHE, _seq_outputs)


@check(A, "gru_step_forward", points=2)
def _(student):
    rng = rng_for("test_gru_step_forward")
    cases = [(d, step_inputs(rng, d["N"], d["D"], d["H"])) for d in sizes(rng, "NDH")]
    for d, args in cases:
        STEP.judge(student, args, case_label(**d))


@check(A, "gru_step_backward", points=3)
def _(student):
    rng = rng_for("test_gru_step_backward")
    cases = [(d, step_inputs(rng, d["N"], d["D"], d["H"]), rng.standard_normal((d["N"], d["H"])))
             for d in sizes(rng, "NDH")]
    for d, args, dh_next in cases:
        want = ref.gru_step_backward(dh_next, ref.gru_step_forward(*args)[1])
        label = case_label(**d)

        def test(call, cache):
            got = call("gru_step_backward", dh_next, cache, returns=STEP_GRADS)
            expect_grads("gru_step_backward", got, want, STEP_GRADS, label, hints={
                "dx": "dx = dax @ Wx.T, dax holding the r, z, n blocks [dar | daz | du] with "
                      "du = dn * (1 - n**2)",
                "dh_prev": "dh_prev has two parts: the direct path dh_next * z and dah @ Wh.T, "
                           "where the n block of dah is du * r",
                "dWx": "dWx = x.T @ dax",
                "dWh": "dWh = h_prev.T @ dah, whose n block is du * r (the reset gate multiplied "
                       "h_prev @ Wh_n + bh_n)",
                "dbx": "dbx sums dax over the batch axis (axis 0)",
                "dbh": "dbh sums dah over the batch; its n block is du * r, not du: bh_n sits "
                       "inside the reset product",
            })
        with_cache(student, STEP, args, label, test)


@check(A, "gru_forward", points=2, calls={"gru_step_forward": per_step})
def _(student):
    rng = rng_for("test_gru_forward")
    cases = [(d, seq_inputs(rng, d["N"], d["T"], d["D"], d["H"])) for d in sizes(rng, "NTDH")]
    for d, args in cases:
        SEQ.judge(student, args, case_label(**d))


@check(A, "gru_backward", points=3, calls={"gru_step_backward": per_step})
def _(student):
    rng = rng_for("test_gru_backward")
    cases = [(d, seq_inputs(rng, d["N"], d["T"], d["D"], d["H"]),
              rng.standard_normal((d["N"], d["T"], d["H"]))) for d in sizes(rng, "NTDH")]
    for d, args, dh in cases:
        want = ref.gru_backward(dh, ref.gru_forward(*args)[1])
        label = case_label(**d)

        def test(call, cache):
            got = call("gru_backward", dh, cache, returns=SEQ_GRADS)
            expect_grads("gru_backward", got, want, SEQ_GRADS, label, hints={
                "dx": "step t receives dh[:, t] plus the gradient carried back from step t+1 "
                      "(walk the steps from T-1 down to 0), and its cache holds h_prev = "
                      "h[:, t-1] (h0 for t = 0)",
                "dh0": "dh0 is the gradient carried back past step 0 (not zero)",
                "dWx": "dWx sums the contribution of every time step",
                "dWh": "dWh sums the contribution of every time step; step t's h_prev is "
                       "h[:, t-1] (h0 for t = 0)",
                "dbx": "dbx sums the contribution of every time step",
                "dbh": "dbh sums the contribution of every time step",
            })
        with_cache(student, SEQ, args, label, test)


# ----------------------------------------------------------------------------- reset before
# Cho et al.'s candidate, n = tanh(ax_n + (r * h_prev) Wh_n + bh_n); the rest as above.
RB_CACHE = ("x", "h_prev", "Wx", "Wh", "r", "z", "n", "rh")
RB_HINTS = {
    "dbh": "dbh = dbx here: bh_n is added after the product, outside the reset gate",
    "dbx": "dbx sums [dar | daz | du] over the batch, du the gradient of n's pre-activation",
    "dWh": "the n block of dWh is (r * h_prev).T @ du: the product read r * h_prev",
    "dWx": "dWx = x.T @ [dar | daz | du]",
    "dh_prev": "h_prev is used four times: in r and z, in r * h_prev, and directly in h_next",
    "dx": "dx = [dar | daz | du] @ Wx.T",
}


def _rb_variant(x, h, Wx, Wh, bx, bh, reset="before", z_weights="h", swap=False, bias=True):
    """gru_reset_before_step_forward as a common mistake computes it: h_next."""
    H = h.shape[1]
    ax, ah = x @ Wx + bx, h @ Wh + bh
    r, z = _sigmoid(ax[:, :H] + ah[:, :H]), _sigmoid(ax[:, H:2 * H] + ah[:, H:2 * H])
    if swap:
        r, z = z, r
    bn = bh[2 * H:] if bias else 0.0
    if reset == "before":
        n = np.tanh(ax[:, 2 * H:] + (r * h) @ Wh[:, 2 * H:] + bn)
    else:
        n = np.tanh(ax[:, 2 * H:] + r * (h @ Wh[:, 2 * H:] + bn))
    return z * n + (1 - z) * h if z_weights == "n" else (1 - z) * n + z * h


RB_FORWARD_MISTAKES = [
    ({"reset": "after"}, "your output matches the reset gate applied after the product "
                         "(PyTorch's convention); here r multiplies h_prev first: "
                         "n = tanh(ax_n + (r * h_prev) @ Wh_n + bh_n)"),
    ({"z_weights": "n"}, "z weights the old state: h_next = (1 - z) * n + z * h_prev"),
    ({"swap": True}, "the blocks of the 3H axis are r (0:H), z (H:2H), n (2H:3H)"),
    ({"bias": False}, "the candidate has the hidden bias bh_n too, added after the product"),
]


def _rb_backward_variant(dh, cache, after=False, dr=True, through_rh=True, dr_matrix=True,
                         gated_bias=False):
    """gru_reset_before_step_backward as a common mistake computes it."""
    x, h_prev, Wx, Wh, r, z, n, rh = cache
    H = h_prev.shape[1]
    du = dh * (1 - z) * (1 - n**2)
    drh = du @ Wh[:, 2 * H:].T if dr_matrix else du
    dar = drh * h_prev * r * (1 - r) if dr else np.zeros_like(r)
    dax = np.concatenate([dar, dh * (h_prev - n) * z * (1 - z), du], axis=1)
    dh_prev = dh * z + (drh * r if through_rh else 0.0) + dax[:, :2 * H] @ Wh[:, :2 * H].T
    dWh_n = h_prev.T @ (du * r) if after else rh.T @ du
    dWh = np.concatenate([h_prev.T @ dax[:, :2 * H], dWh_n], axis=1)
    dbh = np.concatenate([dax[:, :2 * H], du * r], axis=1).sum(axis=0) if gated_bias \
        else dax.sum(axis=0)
    return dax @ Wx.T, dh_prev, x.T @ dax, dWh, dax.sum(axis=0), dbh


def _rb_backward_mistakes(dh, cache):
    return [(_rb_backward_variant(dh, cache, after=True),
             "the product read r * h_prev (the reset gate acted before it): the n block of dWh "
             "is (r * h_prev).T @ du, not h_prev.T @ (du * r)"),
            (_rb_backward_variant(dh, cache, dr=False),
             "the reset gate gets a gradient too: through r * h_prev, dr = (du @ Wh_n.T) * h_prev"),
            (_rb_backward_variant(dh, cache, through_rh=False),
             "h_prev also reaches n through r * h_prev: add (du @ Wh_n.T) * r to dh_prev"),
            (_rb_backward_variant(dh, cache, dr_matrix=False),
             "r * h_prev went through the matrix Wh_n: its gradient is du @ Wh_n.T, "
             "not du"),
            (_rb_backward_variant(dh, cache, gated_bias=True),
             "bh_n is added after the product, outside the reset gate: its gradient is du "
             "summed over the batch, not du * r")]


def _rb_outputs(outputs, args, label):
    (h_next,) = outputs
    want = ref.gru_reset_before_step_forward(*args)[0]
    hint = "h_next = (1 - z) * n + z * h_prev with n = tanh(ax_n + (r * h_prev) @ Wh_n + bh_n)"
    got = np.asarray(h_next, dtype=np.float64) if type(h_next) is np.ndarray else None
    if got is not None and got.shape == want.shape and rel_error(got, want) > 1e-6:
        for kw, why in RB_FORWARD_MISTAKES:
            if rel_error(got, _rb_variant(*args, **kw)) < 1e-6:
                hint = why
                break
    expect_close(f"gru_reset_before_step_forward: h_next ({label})", h_next, want, tol=1e-6,
                 show=False, hint=hint)


def _rb_cases(rng):
    """(label, inputs): the shape cases of sizes(), then gates saturated at 0 or 1."""
    out = [(case_label(**d), step_inputs(rng, d["N"], d["D"], d["H"])) for d in sizes(rng, "NDH")]
    d = {k: int(rng.integers(2, 6)) for k in "NDH"}
    x, h, Wx, Wh, bx, bh = step_inputs(rng, d["N"], d["D"], d["H"])
    bx = np.concatenate([12.0 * np.sign(bx[:2 * d["H"]]), bx[2 * d["H"]:]])
    out.append((f"{case_label(**d)}, saturated gates", (x, h, Wx, Wh, bx, bh)))
    return out


RB = Forward("gru_reset_before_step_forward", ("h_next", "cache"), RB_CACHE, _rb_outputs)


@check(A, "gru_reset_before_step_forward", points=1)
def _(student):
    rng = rng_for("test_gru_reset_before_step_forward")
    for label, args in _rb_cases(rng):
        RB.judge(student, args, label)


@check(A, "gru_reset_before_step_backward", points=3)
def _(student):
    rng = rng_for("test_gru_reset_before_step_backward")
    for label, args in _rb_cases(rng):
        dh_next = rng.standard_normal(args[1].shape)
        cache = ref.gru_reset_before_step_forward(*args)[1]
        want = ref.gru_reset_before_step_backward(dh_next, cache)
        mistakes = _rb_backward_mistakes(dh_next, cache)

        def test(call, cache):
            got = call("gru_reset_before_step_backward", dh_next, cache, returns=STEP_GRADS)
            for name in ("dbh", "dbx", "dWh", "dWx", "dh_prev", "dx"):
                k = STEP_GRADS.index(name)
                g, hint = got[k], RB_HINTS[name]
                if type(g) is np.ndarray and g.dtype == np.float64 and g.shape == want[k].shape \
                        and rel_error(g, want[k]) > 1e-6:
                    hint = next((why for alt, why in mistakes
                                 if rel_error(g, alt[k]) <= 1e-6), hint)
                expect_close(f"gru_reset_before_step_backward: {name} ({label})", g, want[k],
                             tol=1e-6, show=False, hint=hint)
        with_cache(student, RB, args, label, test)
