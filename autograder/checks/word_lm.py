"""Hidden checks of the assignment word_lm (the embedding, the per-step affine read-out and the
gradient of a tied embedding of a word-level language model).

Cases come from ``sizes`` over N, T, V, D (all ones, so V = 1; N = 1; T = 1; random), plus
cases where every id is the same word, where V = 1 with several positions (every id repeats)
and where the ids are int32. A forward is graded on its outputs, its cache left unread; a
backward takes the cache of the student's own forward when that forward is right on the case,
else the reference's (``core.with_cache``), whose layout the notebook suggests: (x, W) for the
embedding, (x, w) for the affine map (its backward needs no b).

embedding_backward must accumulate the gradients of a word that occurs more than once
(``np.add.at``): ``dW[x] += dout`` keeps one of them, and the message names that mistake.
tied_embedding_backward may call embedding_backward and temporal_affine_backward once each
(answered by the reference); a result that holds only one of the two uses is named as such.
"""
from __future__ import annotations

import numpy as np

from autograder import reference as ref
from coursekit.expect import expect_close
from coursekit.gradcheck import rel_error

from .core import Forward, case_label, check, once, rng_for, sizes, with_cache

A = "word_lm"
EMBED_CACHE = ("x", "W")
AFFINE_CACHE = ("x", "w")
AFFINE_GRADS = ("dx", "dw", "db")
BUFFERED = ("repeated ids must add up: with `dW[x] += dout` (or `=`) a word that occurs "
            "twice keeps the gradient of only one occurrence; np.add.at(dW, x, dout) adds them all")


# ----------------------------------------------------------------------------- inputs
def cases(rng):
    """(dims, ids) for every case: sizes over N, T, V, D with random ids, then the cases
    where ids repeat most: every id the same word, V = 1 with several positions, int32 ids."""
    out = [(d, rng.integers(0, d["V"], (d["N"], d["T"]))) for d in sizes(rng, "NTVD")]
    d = {"N": 3, "T": 4, "V": 6, "D": 5}
    out.append((d, np.full((3, 4), int(rng.integers(0, 6)), dtype=np.int64)))
    d = {"N": 2, "T": 5, "V": 1, "D": 3}
    out.append((d, np.zeros((2, 5), dtype=np.int64)))
    d = {"N": 4, "T": 3, "V": 7, "D": 2}
    out.append((d, rng.integers(0, 7, (4, 3)).astype(np.int32)))
    return out


def label(d, x):
    extra = ""
    if x.size > 1 and np.all(x == x.flat[0]):
        extra = ", every id the same word"
    if x.dtype != np.int64:
        extra += f", {x.dtype.name} ids"
    return case_label(**d) + extra


def _same(got, alt):
    """``got`` is a float64 array equal to ``alt`` (a candidate mistake's output)."""
    return (type(got) is np.ndarray and got.dtype == np.float64 and got.shape == np.shape(alt)
            and rel_error(got, alt) <= 1e-6)


def _named(got, want, mistakes, default):
    """The hint of the first mistake whose output ``got`` equals (when ``want`` differs)."""
    if _same(got, want):
        return default
    for alt, hint in mistakes:
        if not _same(want, alt) and _same(got, alt):
            return hint
    return default


# ----------------------------------------------------------------------------- embedding
def _embed_outputs(outputs, args, lab):
    (out,) = outputs
    x, W = args
    N, T = x.shape
    mistakes = [
        (W[x.T.reshape(-1)].reshape(N, T, -1), "the ids were read time-major: out[n, t] is "
                                                "W[x[n, t]], with x of shape (N, T)"),
        (W[(x - 1) % W.shape[0]], "ids start at 0: out[n, t] is row x[n, t] of W, not row "
                                  "x[n, t] - 1"),
    ]
    expect_close(f"embedding_forward: out ({lab})", out, ref.embedding_forward(x, W)[0],
                 tol=1e-6, show=False,
                 hint=_named(out, ref.embedding_forward(x, W)[0], mistakes,
                             "out[n, t] = W[x[n, t]]: index W with the whole id array, W[x]"))


def _embed_cache_hint(cache, want, args):
    """Forward.diagnose of embedding_forward: which entry is not (x, W)."""
    x, W = args
    got_x, got_W = cache[0], cache[1]
    if not (type(got_x) is np.ndarray and got_x.shape == x.shape and np.array_equal(got_x, x)):
        return "its entry 0 is not x, the (N, T) ids, which the suggested layout has there"
    if not _same(got_W, W):
        return ("its entry 1 is not W, the (V, D) embedding matrix, which the suggested layout "
                "has there (dW has W's shape)")
    return "its entries are x and W, but not as the tuple (x, W) the backward reads"


EMBED = Forward("embedding_forward", ("out", "cache"), EMBED_CACHE, _embed_outputs,
                _embed_cache_hint)


@check(A, "embedding_forward", points=1)
def _(student):
    rng = rng_for("test_embedding_forward")
    for d, x in cases(rng):
        W = rng.standard_normal((d["V"], d["D"]))
        EMBED.judge(student, (x, W), label(d, x))


def _buffered(x, dout, V):
    """What dW[x] += dout computes: for a repeated id, one occurrence's gradient."""
    dW = np.zeros((V, dout.shape[-1]))
    dW[x] += dout
    return dW


@check(A, "embedding_backward", points=2)
def _(student):
    rng = rng_for("test_embedding_backward")
    for d, x in cases(rng):
        W = rng.standard_normal((d["V"], d["D"]))
        dout = rng.standard_normal((d["N"], d["T"], d["D"]))
        want = ref.embedding_backward(dout, ref.embedding_forward(x, W)[1])
        lab = label(d, x)
        mistakes = [(_buffered(x, dout, d["V"]), BUFFERED),
                    (want + W, "dW starts from zeros (np.zeros_like(W)), not from W")]

        def test(call, cache):
            got = call("embedding_backward", dout, cache)
            expect_close(f"embedding_backward: dW ({lab})", got, want, tol=1e-6, show=False,
                         hint=_named(got, want, mistakes,
                                     "row v of dW is the sum of dout[n, t] over every position "
                                     "(n, t) with x[n, t] == v; the other rows are zero"))
        with_cache(student, EMBED, (x, W), lab, test)


# ----------------------------------------------------------------------------- temporal affine
def affine_inputs(rng, N, T, D, M):
    """x (N, T, D), w (D, M), b (M,)."""
    return (rng.standard_normal((N, T, D)), rng.standard_normal((D, M)),
            rng.standard_normal(M))


def affine_cases(rng):
    """(dims, args): sizes over N, T, D, M, and a case with N = T (where an axis mix-up keeps
    the shape)."""
    out = [(d, affine_inputs(rng, d["N"], d["T"], d["D"], d["M"])) for d in sizes(rng, "NTDM")]
    d = {"N": 3, "T": 3, "D": 4, "M": 2}
    return out + [(d, affine_inputs(rng, 3, 3, 4, 2))]


def _affine_outputs(outputs, args, lab):
    (out,) = outputs
    x, w, b = args
    N, T, D = x.shape
    want = ref.temporal_affine_forward(x, w, b)[0]
    mistakes = [
        (x @ w, "add the bias b to every step: out = x @ w + b"),
        ((x.reshape(N * T, D) @ w).reshape(T, N, -1).swapaxes(0, 1) + b,
         "the rows of x.reshape(N * T, D) are in the order (n, t): reshape the product back "
         "to (N, T, M), not (T, N, M)"),
    ]
    expect_close(f"temporal_affine_forward: out ({lab})", out, want, tol=1e-6, show=False,
                 hint=_named(out, want, mistakes, "out[n, t] = x[n, t] @ w + b at every step"))


AFFINE = Forward("temporal_affine_forward", ("out", "cache"), AFFINE_CACHE, _affine_outputs)


@check(A, "temporal_affine_forward", points=1)
def _(student):
    rng = rng_for("test_temporal_affine_forward")
    for d, args in affine_cases(rng):
        AFFINE.judge(student, args, case_label(**d))


@check(A, "temporal_affine_backward", points=2)
def _(student):
    rng = rng_for("test_temporal_affine_backward")
    for d, args in affine_cases(rng):
        x, w, _ = args
        N, T, D = x.shape
        dout = rng.standard_normal((N, T, d["M"]))
        want = ref.temporal_affine_backward(dout, ref.temporal_affine_forward(*args)[1])
        lab = case_label(**d)
        hints = {"dx": "dx = dout @ w.T at every step, (N, T, D)",
                 "dw": "dw sums x[n, t]^T dout[n, t] over the batch and every step: "
                       "x.reshape(N * T, D).T @ dout.reshape(N * T, M)",
                 "db": "db sums dout over the batch and every step: dout.sum(axis=(0, 1)), "
                       "shape (M,)"}
        wrong_dw = x.reshape(N * T, D).T @ dout.swapaxes(0, 1).reshape(N * T, -1)
        named = {"dw": [(wrong_dw, "x.reshape(N * T, D) and dout.reshape(N * T, M) must list "
                                   "the steps in the same order: reshape both batch first")],
                 "db": [(dout.mean(axis=(0, 1)), "db is a sum over the batch and the steps, "
                                                 "not a mean")]}

        def test(call, cache):
            got = call("temporal_affine_backward", dout, cache, returns=AFFINE_GRADS)
            for name, g, w_ in zip(AFFINE_GRADS, got, want):
                expect_close(f"temporal_affine_backward: {name} ({lab})", g, w_, tol=1e-6,
                             show=False, hint=_named(g, w_, named.get(name, ()), hints[name]))
        with_cache(student, AFFINE, args, lab, test)


# ----------------------------------------------------------------------------- tied embedding
@check(A, "tied_embedding_backward", points=2,
       calls={"embedding_backward": once, "temporal_affine_backward": once})
def _(student):
    rng = rng_for("test_tied_embedding_backward")
    for d, x in cases(rng):
        N, T, V, D = d["N"], d["T"], d["V"], d["D"]
        W, h = rng.standard_normal((V, D)), rng.standard_normal((N, T, D))
        dembed, dscores = rng.standard_normal((N, T, D)), rng.standard_normal((N, T, V))
        want = ref.tied_embedding_backward(dembed, dscores, x, h, W)
        readout = dscores.reshape(N * T, V).T @ h.reshape(N * T, D)
        embed = ref.embedding_backward(dembed, (x, W))
        mistakes = [
            (readout, "W is also the embedding: add the gradient of its use as the input, "
                      "the rows of dembed summed at the ids x"),
            (embed, "W is also the read-out's weight (transposed): add the gradient of "
                    "scores = h @ W.T + b with respect to W, summed over every step"),
            (readout + _buffered(x, dembed, V), BUFFERED),
            (embed - readout, "both uses add to dW: the read-out's part has a plus sign"),
        ]
        got = student.call("tied_embedding_backward", dembed, dscores, x, h, W,
                           where=f" ({label(d, x)})")
        expect_close(f"tied_embedding_backward: dW ({label(d, x)})", got, want, tol=1e-6,
                     show=False,
                     hint=_named(got, want, mistakes,
                                 "dW is the sum of two gradients, one per use of W: as the "
                                 "embedding (at the ids x) and as the read-out's weight "
                                 "transposed (against h)"))
