"""Hidden checks of the assignment tbptt (stateful batches, truncated RNN backward).

truncated_rnn_backward receives the cache of the reference rnn_forward, whose layout the
notebook prescribes: (x, h0, Wx, Wh, h).
"""
from __future__ import annotations

import numpy as np

from autograder import reference as ref
from coursekit.expect import CheckFailed, Failure, expect_array, expect_close, fail

from .core import case_label, check, expect_grads, rng_for, sizes
from .rnn_bptt import seq_inputs

A = "tbptt"
GRADS = ("dx", "dh0", "dWx", "dWh", "db")


# ----------------------------------------------------------------------------- tbptt_batches
def series_cases(rng):
    """(series, B, S, label) cases: 1-D and 2-D series, one B or S alone at 1, lengths that
    fit the chunks exactly (L = K B S + 1), leave the longest tail that makes no extra chunk
    (L = (K + 1) B S, where (L - 1) // (B S) and L // (B S) differ) and random tails."""
    cases = []
    for i, d in enumerate(sizes(rng, "BSKD", high=5)):
        B, S, K, D = d["B"], d["S"], d["K"], d["D"]
        tail = (0, B * S - 1, int(rng.integers(0, B * S)))[i % 3]
        L = K * B * S + 1 + tail
        if i % 2 == 0:  # every other case a 1-D series of shape (L,)
            series, shape = rng.standard_normal(L), f"({L},)"
        else:
            series, shape = rng.standard_normal((L, D)), f"({L}, {D})"
        cases.append((series, B, S, f"series of shape {shape}, batch_size={B}, seq_len={S}"))
    return cases


def layout_hint(got, data, shift, B, S, K):
    """A hint naming the common wrong layout that produced ``got``, if it is one.

    ``shift`` is 0 for xs and 1 for ys (the part of the series they are cut from)."""
    part = data[shift:K * B * S + shift]
    if np.array_equal(got, part.reshape(K, B, S, -1)):
        return ("each batch holds B consecutive pieces of the series, so row b of xs[k+1] does "
                "not continue row b of xs[k]: split the series into B contiguous streams first, "
                "shape (B, K, S, D), then put the chunk axis first")
    return None


@check(A, "tbptt_batches", points=2)
def _(student):
    rng = rng_for("test_tbptt_batches")
    for series, B, S, label in series_cases(rng):
        want_x, want_y = ref.tbptt_batches(series, B, S)
        K = want_x.shape[0]
        xs, ys = student.call("tbptt_batches", series, B, S, returns=("xs", "ys"))
        data = series.reshape(len(series), -1)
        for name, shift, got, want in (("xs", 0, xs, want_x), ("ys", 1, ys, want_y)):
            if isinstance(got, np.ndarray) and got.shape == (B, K, S, data.shape[1]) != want.shape:
                fail(Failure.SHAPE, f"tbptt_batches: {name} ({label}): expected shape (K, B, S, D) "
                     f"= {want.shape}, got (B, K, S, D) = {got.shape}",
                     hint="move the chunk axis to the front (transpose(1, 0, 2, 3)), so that "
                          "xs[k] is one batch of B chunks")
            expect_array(f"tbptt_batches: {name} ({label})", got, want.shape)
            if name == "ys" and np.array_equal(got, want_x):
                fail(Failure.VALUES, f"tbptt_batches: ys equals xs ({label})",
                     hint="the target of a step is the next value of the series: ys[k, b, s] "
                          "is the value that follows xs[k, b, s]")
            try:
                expect_close(f"tbptt_batches: {name} ({label})", got, want, tol=1e-12, show=False,
                             hint="stream b is the b-th contiguous block of K*S input steps; "
                                  "xs[k, b] is its k-th chunk; ys is xs shifted by one step of "
                                  "the series")
            except CheckFailed as e:
                hint = layout_hint(got, data, shift, B, S, K)
                if hint is None:
                    raise
                fail(e.kind, e.what, hint=hint, details=e.details)


# ----------------------------------------------------------------------------- truncated backward
def truncations(rng, T):
    """k = 1, a proper divisor of T, a non-divisor below T, T itself and one above T."""
    ks = [1]
    divisors = [k for k in range(2, T) if T % k == 0]
    if divisors:
        ks.append(int(rng.choice(divisors)))
    others = [k for k in range(2, T) if T % k]
    if others:
        ks.append(int(rng.choice(others)))
    ks += [T, T + int(rng.integers(1, 4))]
    return sorted(set(ks))


@check(A, "truncated_rnn_backward", points=3)
def _(student):
    rng = rng_for("test_truncated_rnn_backward")
    cases = sizes(rng, "NTDH")
    for d in cases[3:]:  # the random cases get sequences long enough for several chunks
        d["T"] = int(rng.integers(6, 13))
    for d in cases:
        _, cache = ref.rnn_forward(*seq_inputs(rng, d["N"], d["T"], d["D"], d["H"]))
        dh = rng.standard_normal((d["N"], d["T"], d["H"]))
        for k in truncations(rng, d["T"]):
            want = ref.truncated_rnn_backward(dh, cache, k)
            got = student.call("truncated_rnn_backward", dh, cache, k, returns=GRADS)
            label = case_label(**d, k=k) + (" (k >= T: full BPTT)" if k >= d["T"] else "")
            expect_grads("truncated_rnn_backward", got, want, GRADS, label, hints={
                "dx": "within a chunk the gradient flows back as in rnn_backward; it is cut only "
                      "between step t-1 and step t when t is a positive multiple of k",
                "dh0": "h0 is the initial state of the first chunk, so dh0 is the gradient of "
                       "the first chunk reaching it (not zero; with k >= T, that of rnn_backward)",
                "dWx": "dWx sums the contribution of every step, in every chunk",
                "dWh": "every step contributes h_prev.T @ da to dWh, also the first step of a "
                       "chunk (its h_prev is detached, not zero)",
                "db": "db sums da over the batch and over every step",
            })
