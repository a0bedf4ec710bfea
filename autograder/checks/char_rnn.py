"""Hidden checks of the assignment char_rnn (the loss, perplexity and sampling of a
character-level language model).

temporal_softmax_loss is compared with the reference on random shapes (all ones, N = 1,
T = 1, V = 1), with no mask, a random mask and a mask with a single counted step, and with
logits around +-1000 (where exp without the max shift overflows). perplexity is compared on
ordinary values and must give inf, not an OverflowError, for a diverged model. sample_next is
random, so its check looks at what any correct sampler must do whatever way it uses the
generator: argmax (first index on ties) at temperature 0, an int in range, an int seed that
acts as np.random.default_rng(seed), and the frequencies of many draws, compared with
softmax(logits / temperature) by a chi-square statistic.
"""
from __future__ import annotations

import math
import numbers

import numpy as np

from autograder import reference as ref
from coursekit.expect import (Failure, diagnose, expect_close, expect_equal, expect_float,
                              expect_unchanged, fail)

from .core import StudentRaised, case_label, check, rng_for, sizes

A = "char_rnn"

# the chi-square test of sample_next: V = 5 (4 degrees of freedom), N_DRAWS draws per case.
# P(chi2_4 > 40) = exp(-20) * 21 = 4e-8, so a correct sampler fails a case about once in
# 25 million seeds; every wrong temperature below gives a statistic in the hundreds or more.
N_DRAWS = 8_000
CHI2_LIMIT = 40.0


# ----------------------------------------------------------------------------- helpers
def call_unchanged(student, name, args, arg_names, label, returns=None, hint=None):
    """Call ``name`` on ``args`` (fresh copies on the student's side); fail if it wrote into
    any of them. ``label`` (the case) and ``hint`` go into the message of a crash."""
    return student.call(name, *args, returns=returns, where=f" ({label})", hint=hint)


def softmax(z):
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


# ----------------------------------------------------------------------------- temporal_softmax_loss
def loss_inputs(rng, N, T, V, offset=0.0):
    """logits (N, T, V) with spread ~2 around ``offset``, targets (N, T) in [0, V)."""
    return offset + 2.0 * rng.standard_normal((N, T, V)), rng.integers(0, V, (N, T))


def masks(rng, N, T):
    """(description, mask): None (every step counts), a random mask, a single counted step."""
    random = rng.random((N, T)) < 0.6
    random.flat[rng.integers(N * T)] = True
    single = np.zeros((N, T), dtype=bool)
    single.flat[rng.integers(N * T)] = True
    return [("no mask", None), ("random mask", random), ("one unmasked step", single)]


def loss_hint(got, want, logits, targets, mask, count):
    """A guess at the mistake behind a wrong loss, from the usual wrong normalizations."""
    try:
        g = float(got)
    except (TypeError, ValueError):
        return None
    if not math.isfinite(g):
        return ("the loss is inf or nan: subtract the largest logit of each step before np.exp "
                "(log-softmax = z - max - log(sum(exp(z - max)))), so that exp cannot overflow")
    N, T, _ = logits.shape
    unmasked = ref.temporal_softmax_loss(logits, targets)[0]  # every step counted
    candidates = [
        (want * count / (N * T), "the mean runs over the unmasked steps only: divide by "
                                 "mask.sum(), not by N*T"),
        (want * count / N, "divide the sum by the number of unmasked steps mask.sum(), not by N"),
        (want * count, "the loss is a mean: divide the sum over the unmasked steps by mask.sum()"),
        (-want, "the sign is flipped: the loss is minus the mean log-probability of the targets"),
        (unmasked, "the mask is ignored: only the steps where mask is True count"),
        (unmasked * N * T / count, "masked steps are in the sum: add up the unmasked steps only"),
    ]
    for value, text in candidates:
        distinct = abs(value - want) > 1e-9 * max(1.0, abs(want))
        if distinct and abs(g - value) <= 1e-7 * max(1.0, abs(value)):
            return text
    return ("loss = -(1 / mask.sum()) * the sum over the unmasked (n, t) of "
            "log softmax(logits[n, t])[targets[n, t]]")


def grad_hint(got, want, mask, count):
    """A guess at the mistake behind a wrong dlogits."""
    if not isinstance(got, np.ndarray) or got.shape != want.shape:
        return None  # expect_close reports the type or shape
    if not np.all(np.isfinite(got)):
        return ("dlogits holds inf or nan: compute the softmax from logits minus their max over V, "
                "so that exp cannot overflow")
    if np.any(got[~mask] != 0):
        return "dlogits must be exactly zero at masked steps: multiply by mask[:, :, None]"
    for factor, text in ((count, "dlogits is not divided by the number of counted steps "
                                 "(the loss is a mean, so its gradient is too)"),
                         (count / mask.size, "divide dlogits by mask.sum(), not by N*T")):
        if factor != 1 and np.allclose(got, want * factor, rtol=1e-7, atol=1e-12):
            return text
    return diagnose(got, want) or ("at an unmasked step dlogits[n, t] = (softmax(logits[n, t]) - "
                                   "onehot(targets[n, t])) / mask.sum()")


def compare_loss(student, logits, targets, mask, label, pass_mask=True):
    """One case of temporal_softmax_loss, against the reference."""
    want, want_d = ref.temporal_softmax_loss(logits, targets, mask)
    full = np.ones(targets.shape, dtype=bool) if mask is None else mask
    count = int(full.sum())
    args = (logits, targets, mask) if pass_mask else (logits, targets)
    names = ("logits", "targets", "mask")[:len(args)]
    loss, dlogits = call_unchanged(student, "temporal_softmax_loss", args, names, label,
                                   returns=("loss", "dlogits"))
    expect_float(f"temporal_softmax_loss: loss ({label})", loss, want, tol=1e-6, show=False,
                 hint=loss_hint(loss, want, logits, targets, full, count))
    expect_close(f"temporal_softmax_loss: dlogits ({label})", dlogits, want_d, tol=1e-6,
                 show=False, hint=grad_hint(dlogits, want_d, full, count))


@check(A, "temporal_softmax_loss", points=3, forbid=("torch/nn/functional.py",))
def _(student):
    rng = rng_for("test_temporal_softmax_loss")
    for d in sizes(rng, "NTV"):
        logits, targets = loss_inputs(rng, d["N"], d["T"], d["V"])
        for what, mask in masks(rng, d["N"], d["T"]):
            # "no mask" is a call with two arguments: mask=None is the default
            compare_loss(student, logits, targets, mask, f"{case_label(**d)}, {what}",
                         pass_mask=mask is not None)
    # a larger vocabulary, and logits around +-1000: exp(1000) overflows, exp(-1000) is 0
    for d, offset in (({"N": 3, "T": 4, "V": 30}, 0.0), ({"N": 2, "T": 3, "V": 5}, 1000.0),
                      ({"N": 3, "T": 2, "V": 4}, -1000.0), ({"N": 1, "T": 1, "V": 3}, 1000.0)):
        logits, targets = loss_inputs(rng, d["N"], d["T"], d["V"], offset)
        for what, mask in masks(rng, d["N"], d["T"])[1:]:
            label = case_label(**d) + (f", logits around {offset:+g}" if offset else "") + f", {what}"
            compare_loss(student, logits, targets, mask, label)
        label = case_label(**d) + (f", logits around {offset:+g}" if offset else "") + ", mask=None"
        compare_loss(student, logits, targets, None, label)


# ----------------------------------------------------------------------------- perplexity
def perplexity_hint(got, x):
    """A guess at the mistake behind a wrong perplexity of mean_nll = x."""
    general = "perplexity = exp(mean_nll), with mean_nll in nats (natural log)"
    try:
        g = float(got)
    except (TypeError, ValueError):
        return general
    for value, text in ((x / math.log(2.0), "mean_nll / log(2) is bits per character, not perplexity"),
                        (2.0 ** x, "2**mean_nll treats the loss as bits, but it is in nats: "
                                   "perplexity = exp(mean_nll)"),
                        (math.exp(-x), "the sign: perplexity = exp(+mean_nll), which is at least 1")):
        if x > 0 and abs(g - value) <= 1e-9 * abs(value):
            return text
    return general


@check(A, "perplexity", points=1)
def _(student):
    rng = rng_for("test_perplexity")
    values = [math.log(65.0), math.log(2.0), 0.0, 3, np.float64(2.5),
              *(float(x) for x in rng.uniform(0.0, 8.0, 4)), 700.0, 709.5]
    for x in values:
        got = student.call("perplexity", x)
        kind = {int: ", an int mean_nll", np.float64: ", a numpy float mean_nll"}.get(type(x), "")
        expect_float(f"perplexity (mean_nll between 0 and 709.5{kind})", got, math.exp(float(x)),
                     tol=1e-9, show=False, hint=perplexity_hint(got, float(x)))
    for x in (710.0, 1000.0, 1e5):
        try:
            got = student.call("perplexity", x)
        except StudentRaised as e:
            if e.exception != "OverflowError":
                raise
            fail(Failure.RAISED, e.what, details=e.details,
                 hint="math.exp overflows for mean_nll above about 709.78 (a diverged model); "
                      "return math.inf there (catch OverflowError)")
        if isinstance(got, (bool, np.bool_)) or not isinstance(got, numbers.Real) or got != math.inf:
            fail(Failure.VALUES, f"perplexity of a huge mean_nll (a diverged model) should be inf, got {got!r}",
                 hint="exp of a number above about 709.78 does not fit in a float")


# ----------------------------------------------------------------------------- sample_next
def expect_index(name, got, V):
    """``got`` must be a single int (Python or numpy) in [0, V)."""
    if isinstance(got, (bool, np.bool_)) or not isinstance(got, numbers.Integral):
        fail(Failure.TYPE, f"{name}: expected an int, got {type(got).__name__}"
             + (f" of shape {got.shape}" if isinstance(got, np.ndarray) else ""),
             hint="return one index, e.g. int(rng.choice(V, p=probs)) or int(np.argmax(logits))")
    if not 0 <= int(got) < V:
        fail(Failure.VALUES, f"{name}: expected an index in [0, {V}), got {int(got)}")


def draw_sequence(student, logits, temperature, gen, n, label):
    """n successive draws from the student's sample_next with one Generator, as a list of ints."""
    kept = student.put(gen)  # the same Generator for every draw, as a caller would pass it
    draws = student.call("sample_next", logits, temperature, kept, repeat=n, where=f" ({label})")
    for k in draws:
        expect_index(f"sample_next ({label})", k, len(logits))
    return [int(k) for k in draws]


def draw_many(student, logits, temperature, gen, n, label):
    """n draws from the student's sample_next with one Generator and one logits array (the
    grader's, kept on the student's side); an int array of counts (V,)."""
    V = len(logits)
    hint = ("if the probabilities hold nan, exp overflowed: subtract the max of logits / temperature "
            "before np.exp")
    work, kept = student.put(logits.copy()), student.put(gen)
    draws = student.call("sample_next", work, temperature, kept, repeat=n, where=f" ({label})",
                         hint=hint)
    expect_unchanged(f"sample_next: logits ({label})", logits, student.fetch(work))
    for k in draws[:3]:  # the first draws one by one, for a clear message
        expect_index(f"sample_next ({label})", k, V)
    for k in draws:
        expect_index(f"sample_next ({label})", k, V)
    return np.bincount(np.asarray([int(k) for k in draws]), minlength=V)


def chi2(counts, p):
    expected = counts.sum() * p
    return float(np.sum((counts - expected) ** 2 / expected))


@check(A, "sample_next", points=2)
def _(student):
    rng = rng_for("test_sample_next")

    def seed():
        return int(rng.integers(2**31))

    # (a) temperature 0 is argmax; the first index wins a tie
    cases = [(V, False) for V in (1, 2, 5, 9, 40)]
    cases += [(int(rng.integers(2, 11)), True) for _ in range(12)]
    for V, tie in cases:
        logits = 3.0 * rng.standard_normal(V)
        if tie:
            i, j = sorted(rng.choice(V, 2, replace=False))
            logits[i] = logits[j] = logits.max() + 1.0
        want = int(np.argmax(logits))
        for t0 in (0.0, 0):
            label = f"V={V}, temperature {t0!r}" + (", a tie for the largest logit" if tie else "")
            got = call_unchanged(student, "sample_next", (logits, t0, np.random.default_rng(seed())),
                                 ("logits", "temperature", "rng"), label,
                                 hint="at temperature 0 return int(np.argmax(logits)) before "
                                      "anything divides by the temperature")
            expect_index(f"sample_next ({label})", got, V)
            expect_equal(f"sample_next ({label})", got, want, show=False,
                         hint="temperature 0 means greedy: return int(np.argmax(logits)) "
                              "(np.argmax returns the first index of a tie); do not divide by 0")

    # (b) an int in range, for a few vocabulary sizes and temperatures (V = 1 always gives 0)
    for V in (1, 3, 7):
        for tau in (0.3, 1.0, 3.0):
            logits = 2.0 * rng.standard_normal(V)
            label = f"V={V}, temperature {tau}"
            got = call_unchanged(student, "sample_next", (logits, tau, np.random.default_rng(seed())),
                                 ("logits", "temperature", "rng"), label,
                                 hint="probs = softmax(logits / temperature), computed with the max "
                                      "subtracted, then one draw such as rng.choice(V, p=probs)")
            expect_index(f"sample_next ({label})", got, V)

    # (c) the rng decides the draws: the same seed gives the same draws, and an int seed acts
    # as np.random.default_rng(seed)
    logits = np.array([0.3, -0.2, 0.1, 0.6, -0.5, 0.0])
    for _ in range(6):
        s = seed()
        label = "V=6, temperature 1.0"
        first = draw_sequence(student, logits, 1.0, np.random.default_rng(s), 10, label)
        second = draw_sequence(student, logits, 1.0, np.random.default_rng(s), 10, label)
        if first != second:
            fail(Failure.VALUES,
                 "sample_next: 10 draws with rng = np.random.default_rng(s) and 10 more with a new "
                 "np.random.default_rng(s), the same seed s, were not the same draws",
                 hint="draw from the rng argument (rng.choice, rng.random, ...), not from "
                      "np.random's global state or a generator of your own")
        by_int = student.call("sample_next", logits, 1.0, s)
        expect_index("sample_next (an int seed as rng)", by_int, len(logits))
        if int(by_int) != first[0]:
            fail(Failure.VALUES,
                 "sample_next: rng=s (an int seed) and rng=np.random.default_rng(s) gave different draws",
                 hint="an int rng is a seed: start with rng = np.random.default_rng(rng)")

    # (d) the distribution: N_DRAWS draws with one Generator against softmax(logits / tau).
    # Spread logits, so that every p_k is at least ~2%; the last case sits around 1000, where
    # exp(logits / tau) without the max shift overflows.
    spread = np.array([0.0, 0.4, 0.8, 1.2, 1.6])
    for tau, offset in ((0.5, 0.0), (2.0, 0.0), (0.8, 1000.0)):
        logits = offset + rng.permutation(spread) + 0.05 * rng.standard_normal(5)
        label = f"V=5, temperature {tau}" + (f", logits around {offset:g}" if offset else "")
        counts = draw_many(student, logits, tau, np.random.default_rng(seed()), N_DRAWS, label)
        stat = chi2(counts, softmax(logits / tau))
        if stat <= CHI2_LIMIT:
            continue
        hint = "draw index k with probability softmax(logits / temperature)[k]"
        for p, text in ((softmax(logits * tau), "the logits are multiplied by the temperature: "
                                                "divide them, softmax(logits / temperature)"),
                        (softmax(logits), "the temperature has no effect: divide the logits by it "
                                          "before the softmax (dividing the probabilities after "
                                          "the softmax and renormalizing changes nothing)"),
                        (np.full(5, 0.2), "the draws look uniform: pass the probabilities to the "
                                          "sampler, e.g. rng.choice(V, p=probs)")):
            if chi2(counts, p) <= CHI2_LIMIT:
                hint = text
                break
        fail(Failure.VALUES, f"sample_next: the frequencies of {N_DRAWS} draws ({label}) do not "
             "follow softmax(logits / temperature)", hint=hint,
             details=[f"chi-square statistic {stat:.4g} (a correct sampler stays below "
                      f"{CHI2_LIMIT:g} in all but about 1 in 10^7 cases)"])
