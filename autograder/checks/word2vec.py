"""Hidden checks of the assignment word2vec (training pairs, the skip-gram losses (softmax,
negative sampling, NCE) and CBOW's, with their gradients, the noise distribution, and
embedding queries; NumPy).

Conventions are the reference's (autograder.reference.word2vec): center_vec is v_c (D,),
outside_vectors is U (V, D); pairs and windows are int64 in corpus order; a negative index
drawn several times counts every time; most_similar breaks ties by the lower index.
"""
from __future__ import annotations

import numpy as np

from autograder import reference as ref
from coursekit.expect import Failure, expect_close, expect_equal, expect_float, fail

from .core import case_label, check, once, per_row, rng_for, sizes

A = "word2vec"
NO_SCIPY = ("scipy/spatial/distance.py", "sklearn/metrics/pairwise.py")


# ----------------------------------------------------------------------------- helpers
def expect_int64(name, got, want, hint=None):
    """An int64 array equal to ``want`` entry by entry (shape, integer dtype, values, int64)."""
    if isinstance(got, np.ndarray) and got.shape != want.shape:
        fail(Failure.SHAPE, f"{name}: expected shape {want.shape}, got {got.shape}", hint=hint)
    expect_equal(name, got, want, hint=hint, show=False)
    if got.dtype != np.int64:
        fail(Failure.DTYPE, f"{name}: expected dtype int64, got {got.dtype.name}",
             hint="the result keeps the dtype of token_ids (here not int64) unless you convert "
                  "it: .astype(np.int64)")


def token_ids(rng, L, V, dtype=np.int64):
    """A corpus of L ids from a small vocabulary (so ids repeat, as words do)."""
    return rng.integers(0, V, size=L).astype(dtype)


def pair_cases(rng):
    """(L, window, dtype) cases: all ones, L = 1, window = 1, window beyond the corpus,
    an int32 corpus, and random ones."""
    out = [(d["L"], d["W"], np.int64) for d in sizes(rng, "LW", high=7)]
    out += [(3, 5, np.int64), (7, 3, np.int64), (6, 3, np.int64), (5, 2, np.int32),
            (int(rng.integers(20, 40)), int(rng.integers(1, 5)), np.int64),
            (int(rng.integers(20, 40)), int(rng.integers(1, 5)), np.int32)]
    return out


def rows_with_scores(rng, D, scores):
    """U (len(scores), D) and v_c (D,) with U @ v_c == scores (up to rounding)."""
    v = rng.standard_normal(D)
    U = rng.standard_normal((len(scores), D))
    U -= np.outer(U @ v, v) / (v @ v)  # the part orthogonal to v_c: free
    U += np.outer(scores, v) / (v @ v)
    return U, v


# ----------------------------------------------------------------------------- training pairs
@check(A, "skipgram_pairs", points=1)
def _(student):
    rng = rng_for("test_skipgram_pairs")
    for L, w, dtype in pair_cases(rng):
        ids = token_ids(rng, L, max(2, L // 2), dtype)
        want = ref.skipgram_pairs(ids, w)
        got = student.call("skipgram_pairs", ids, w)
        label = case_label(L=L, window=w) + ("" if dtype is np.int64 else ", token_ids int32")
        if isinstance(got, np.ndarray) and got.shape == (want.shape[0], 2) and want.shape[0]:
            if not np.array_equal(got, want) and np.array_equal(got, want[:, ::-1]):
                fail(Failure.VALUES, f"skipgram_pairs ({label}): the two columns are swapped",
                     hint="each row is (center, context): pairs[:, 0] is token_ids[i], "
                          "pairs[:, 1] is token_ids[j]")
            if not np.array_equal(got, want) and (
                    sorted(map(tuple, got.tolist())) == sorted(map(tuple, want.tolist()))):
                fail(Failure.VALUES, f"skipgram_pairs ({label}): the right pairs in the wrong order",
                     hint="loop over the positions i first, then over j = i - window, ..., "
                          "i + window in increasing order")
        expect_int64(f"skipgram_pairs ({label})", got, want,
                     hint=f"expected {want.shape[0]} pairs (each position pairs with every "
                          "j != i at distance <= window that lies inside the corpus; no "
                          "wrap-around at the ends, and (0, 2) when there is no pair)")


@check(A, "cbow_windows", points=1)
def _(student):
    rng = rng_for("test_cbow_windows")
    cases = pair_cases(rng) + [(4, 2, np.int64), (5, 3, np.int64), (2, 1, np.int64)]
    for L, w, dtype in cases:
        ids = token_ids(rng, L, max(2, L // 2), dtype)
        want_ctx, want_c = ref.cbow_windows(ids, w)
        contexts, centers = student.call("cbow_windows", ids, w, returns=("contexts", "centers"))
        label = case_label(L=L, window=w, M=len(want_c)) + (
            "" if dtype is np.int64 else ", token_ids int32")
        expect_int64(f"cbow_windows: centers ({label})", centers, want_c,
                     hint="one center per position with a full window: i = window, ..., "
                          "L - window - 1 (shape (0,) when L < 2 * window + 1)")
        expect_int64(f"cbow_windows: contexts ({label})", contexts, want_ctx,
                     hint="row m holds token_ids[i - window : i] then token_ids[i + 1 : i + "
                          "window + 1] for i = m + window (shape (0, 2 * window) when M = 0)")


# ----------------------------------------------------------------------------- losses
def loss_cases(rng):
    """(V, D) cases including V = 1 and D = 1."""
    return [(d["V"], d["D"]) for d in sizes(rng, "VD", high=7)] + [(12, 5), (30, 3)]


LOSS_HINTS = {
    "naive": {
        "loss": "loss = log(sum_w exp(s_w)) - s_o with s = U @ v_c; compute the log-sum-exp "
                "after subtracting max(s)",
        "grad_center_vec": "dJ/dv_c = U^T (softmax(s) - e_o)",
        "grad_outside_vectors": "dJ/dU = outer(softmax(s) - e_o, v_c): every row moves",
    },
    "neg": {
        "loss": "loss = -log sigmoid(s_o) - sum_k log sigmoid(-s_k), a sum over all K "
                "negatives (not a mean); write -log sigmoid(x) as np.logaddexp(0, -x)",
        "grad_center_vec": "dJ/dv_c = (sigmoid(s_o) - 1) u_o + sum_k sigmoid(s_k) u_k",
        "grad_outside_vectors": "row o gets (sigmoid(s_o) - 1) v_c and row w_k gets "
                                "sigmoid(s_k) v_c, added once per occurrence of w_k in "
                                "neg_indices (np.add.at; grad[idx] += ... drops repeats) and "
                                "added to row o when o is also drawn as a negative",
    },
    "nce": {
        "loss": "loss = -log sigmoid(x_o) - sum_k log sigmoid(-x_k) with the logits x_w = "
                "u_w . v_c - log(K * P_n(w)) (minus the correction, K the number of "
                "negatives), a sum over all K negatives; -log sigmoid(x) is np.logaddexp(0, -x)",
        "grad_center_vec": "dJ/dv_c = (sigmoid(x_o) - 1) u_o + sum_k sigmoid(x_k) u_k, the "
                           "sigmoids of the corrected logits",
        "grad_outside_vectors": "row o gets (sigmoid(x_o) - 1) v_c and row w_k gets "
                                "sigmoid(x_k) v_c, added once per occurrence of w_k "
                                "(np.add.at) and added to row o when o is also a negative",
    },
    "cbow": {
        "loss": "h = the mean of input_vectors[context_idx] (a mean over the 2m rows, repeats "
                "counted each time), then loss = log(sum_w exp(s_w)) - s_c with s = U @ h, "
                "after subtracting max(s)",
        "grad_input_vectors": "the gradient of h is U^T (softmax(s) - e_c); every context "
                              "position gets 1/(2m) of it, added once per occurrence "
                              "(np.add.at), and no other row (the center word's own input "
                              "row included, unless it is in the context) moves",
        "grad_outside_vectors": "dJ/dU = outer(softmax(s) - e_c, h): every row moves",
    },
}


def compare_loss(fn, got, want, label, hints, big=False,
                 names=("loss", "grad_center_vec", "grad_outside_vectors")):
    extra = (" (large scores: a naive exp or log of a probability overflows or underflows "
             "here; use the stable forms from the notebook)") if big else ""
    expect_float(f"{fn}: loss ({label})", got[0], want[0], tol=1e-6, show=False,
                 hint=hints["loss"] + extra)
    for name, g, w in zip(names[1:], got[1:], want[1:]):
        expect_close(f"{fn}: {name} ({label})", g, w, tol=1e-6, show=False,
                     hint=hints[name] + extra)


@check(A, "naive_softmax_loss_and_gradient", points=2)
def _(student):
    fn = "naive_softmax_loss_and_gradient"
    rng = rng_for("test_" + fn)
    names = ("loss", "grad_center_vec", "grad_outside_vectors")
    cases = []
    for V, D in loss_cases(rng):
        U = rng.standard_normal((V, D))
        v = rng.standard_normal(D)
        cases.append((v, int(rng.integers(V)), U, case_label(V=V, D=D), False))
    # large scores (|u.v| up to 800): the observed word far below the best one
    for V, D in [(6, 3), (2, 1), (9, 4)]:
        s = rng.uniform(-800, 800, size=V)
        s[0], s[-1] = 800.0, -800.0
        U, v = rows_with_scores(rng, D, s)
        cases.append((v, V - 1, U, case_label(V=V, D=D) + ", scores up to |800|", True))
        cases.append((v, 0, U, case_label(V=V, D=D) + ", scores up to |800|, o the best", True))
    for v, o, U, label, big in cases:
        want = ref.naive_softmax_loss_and_gradient(v, o, U)
        got = student.call(fn, v, o, U, returns=names)
        compare_loss(fn, got, want, label, LOSS_HINTS["naive"], big)


@check(A, "neg_sampling_loss_and_gradient", points=3)
def _(student):
    fn = "neg_sampling_loss_and_gradient"
    rng = rng_for("test_" + fn)
    names = ("loss", "grad_center_vec", "grad_outside_vectors")
    cases = []
    for V, D in loss_cases(rng):
        K = int(rng.integers(1, 8))
        U = rng.standard_normal((V, D))
        v = rng.standard_normal(D)
        o = int(rng.integers(V))
        neg = rng.integers(0, V, size=K)
        cases.append((v, o, U, neg, case_label(V=V, D=D, K=K), False))
    # repeated negatives, and the observed word drawn as a negative too
    for V, D, neg, o in [(5, 3, [2, 2, 2], 0), (6, 4, [1, 3, 1, 5, 3, 1], 3),
                         (4, 2, [0, 1, 0], 0), (1, 2, [0, 0], 0), (8, 1, [7, 7], 2)]:
        U = rng.standard_normal((V, D))
        v = rng.standard_normal(D)
        cases.append((v, o, U, np.array(neg), case_label(V=V, D=D, K=len(neg)) +
                      ", repeated negatives", False))
    # int32 negatives
    U, v = rng.standard_normal((7, 3)), rng.standard_normal(3)
    cases.append((v, 4, U, np.array([6, 0, 6, 2], dtype=np.int32),
                  case_label(V=7, D=3, K=4) + ", neg_indices int32", False))
    # large scores: a badly fit pair (s_o = -800, s_k = +800) and a well fit one
    for V, D in [(6, 3), (3, 1)]:
        s = np.concatenate([[-800.0], np.full(V - 1, 800.0)])
        U, v = rows_with_scores(rng, D, s)
        neg = np.array([1, V - 1, 1])
        label = case_label(V=V, D=D, K=3) + ", scores of size 800"
        cases.append((v, 0, U, neg, label + ", a badly fit pair", True))
        U2, v2 = rows_with_scores(rng, D, -s)
        cases.append((v2, 0, U2, neg, label + ", a well fit pair", True))
    for v, o, U, neg, label, big in cases:
        want = ref.neg_sampling_loss_and_gradient(v, o, U, neg)
        got = student.call(fn, v, o, U, neg, returns=names)
        compare_loss(fn, got, want, label, LOSS_HINTS["neg"], big)


def random_noise(rng, V, zero=()):
    """A noise distribution (V,) with every entry positive except those in ``zero``, spread
    over two orders of magnitude (so that the correction log(K P_n) differs between words)."""
    p = np.exp(rng.uniform(-2.5, 2.5, size=V))
    p[list(zero)] = 0.0
    return p / p.sum()


@check(A, "nce_loss_and_gradient", points=2)
def _(student):
    fn = "nce_loss_and_gradient"
    rng = rng_for("test_" + fn)
    names = ("loss", "grad_center_vec", "grad_outside_vectors")
    cases = []
    for n, (V, D) in enumerate(loss_cases(rng)):
        K = 1 if n % 3 == 0 else int(rng.integers(2, 8))
        U, v = rng.standard_normal((V, D)), rng.standard_normal(D)
        cases.append((v, int(rng.integers(V)), U, rng.integers(0, V, size=K), random_noise(rng, V),
                      case_label(V=V, D=D, K=K)))
    # repeated negatives, o drawn as a negative, V = 1 and 2, words the noise never draws
    for V, D, neg, o, zero in [(5, 3, [2, 2, 2], 0, ()), (6, 4, [1, 3, 1, 5, 3, 1], 3, (0, 2)),
                               (4, 2, [0, 1, 0], 0, ()), (1, 2, [0, 0], 0, ()), (1, 3, [0], 0, ()),
                               (2, 3, [1], 0, ()), (2, 1, [0, 1, 1], 1, ()), (8, 1, [7, 7], 2, (4,))]:
        U, v = rng.standard_normal((V, D)), rng.standard_normal(D)
        cases.append((v, o, U, np.array(neg), random_noise(rng, V, zero),
                      case_label(V=V, D=D, K=len(neg)) + ", repeated negatives"))
    U, v = rng.standard_normal((7, 3)), rng.standard_normal(3)
    cases.append((v, 4, U, np.array([6, 0, 6, 2], dtype=np.int32), random_noise(rng, 7),
                  case_label(V=7, D=3, K=4) + ", neg_indices int32"))
    # a uniform noise (the correction is the same constant log(K / V) for every word)
    U, v = rng.standard_normal((10, 4)), rng.standard_normal(4)
    cases.append((v, 1, U, rng.integers(0, 10, size=5), np.full(10, 0.1),
                  case_label(V=10, D=4, K=5) + ", uniform noise"))
    big = len(cases)
    # large scores: a badly fit pair (s_o = -800, s_k = +800) and a well fit one
    for V, D in [(6, 3), (3, 1)]:
        s = np.concatenate([[-800.0], np.full(V - 1, 800.0)])
        neg = np.array([1, V - 1, 1])
        label = case_label(V=V, D=D, K=3) + ", scores of size 800"
        U, v = rows_with_scores(rng, D, s)
        cases.append((v, 0, U, neg, random_noise(rng, V), label + ", a badly fit pair"))
        U2, v2 = rows_with_scores(rng, D, -s)
        cases.append((v2, 0, U2, neg, random_noise(rng, V), label + ", a well fit pair"))
    for n, (v, o, U, neg, P, label) in enumerate(cases):
        want = ref.nce_loss_and_gradient(v, o, U, neg, P)
        got = student.call(fn, v, o, U, neg, P, returns=names)
        compare_loss(fn, got, want, label, LOSS_HINTS["nce"], n >= big)


@check(A, "cbow_loss_and_gradient", points=3,
       calls={"naive_softmax_loss_and_gradient": once})
def _(student):
    fn = "cbow_loss_and_gradient"
    rng = rng_for("test_" + fn)
    names = ("loss", "grad_input_vectors", "grad_outside_vectors")
    cases = []
    for n, (V, D) in enumerate(loss_cases(rng)):
        C = 2 * int(rng.integers(1, 4))
        ctx = rng.integers(0, V, size=C)
        cases.append((ctx, int(rng.integers(V)), rng.standard_normal((V, D)),
                      rng.standard_normal((V, D)), case_label(V=V, D=D, window=C // 2)))
    # repeated context ids, the center among its context, V = 1 and 2, a window of 1
    for V, D, ctx, c in [(5, 3, [2, 2, 2, 2], 0), (6, 4, [1, 3, 1, 5, 3, 1], 3),
                         (4, 2, [0, 1, 0, 3], 0), (1, 2, [0, 0], 0), (2, 3, [1, 0], 1),
                         (2, 1, [0, 0, 0, 1], 0), (9, 3, [4, 7], 2)]:
        cases.append((np.array(ctx), c, rng.standard_normal((V, D)), rng.standard_normal((V, D)),
                      case_label(V=V, D=D, window=len(ctx) // 2) + ", repeated context ids"
                      if len(set(ctx)) < len(ctx) else case_label(V=V, D=D, window=len(ctx) // 2)))
    cases.append((np.array([6, 0, 6, 2], dtype=np.int32), 4, rng.standard_normal((7, 3)),
                  rng.standard_normal((7, 3)), case_label(V=7, D=3, window=2) + ", context_idx int32"))
    big = len(cases)
    # large scores (|u . h| up to 800): distinct context rows whose mean is h
    for V, D, c in [(6, 3, 5), (6, 3, 0), (9, 4, 8)]:
        s = rng.uniform(-800, 800, size=V)
        s[0], s[-1] = 800.0, -800.0
        U, h = rows_with_scores(rng, D, s)
        ctx = rng.choice(V, size=4, replace=False)
        E = rng.standard_normal((V, D))
        E[ctx] += h - E[ctx].mean(axis=0)
        cases.append((ctx, c, E, U, case_label(V=V, D=D, window=2) + ", scores up to |800|"))
    for n, (ctx, c, E, U, label) in enumerate(cases):
        want = ref.cbow_loss_and_gradient(ctx, c, E, U)
        got = student.call(fn, ctx, c, E, U, returns=names)
        compare_loss(fn, got, want, label, LOSS_HINTS["cbow"], n >= big, names=names)


# ----------------------------------------------------------------------------- noise
@check(A, "noise_distribution", points=1)
def _(student):
    rng = rng_for("test_noise_distribution")
    cases = []
    for V in [1, 2, 7, 30]:
        counts = rng.integers(1, 200, size=V)
        cases.append((counts, None, f"V={V}, default power"))
        cases.append((counts, float(rng.uniform(0.2, 1.5)), f"V={V}, another power"))
    zeros = rng.integers(0, 50, size=12)
    zeros[[1, 4, 7]] = 0
    cases += [(zeros, None, "V=12, some zero counts"), (zeros, 0.0, "V=12, zero counts, power 0"),
              (zeros, 1.0, "V=12, zero counts, power 1"),
              (rng.uniform(0.5, 40.0, size=9), 0.5, "V=9, float counts, power 0.5"),
              (rng.integers(1, 10**6, size=50), None, "V=50, large counts")]
    for counts, power, label in cases:
        want = ref.noise_distribution(counts) if power is None else ref.noise_distribution(counts, power)
        if power is None:
            got = student.call("noise_distribution", counts)
        else:
            got = student.call("noise_distribution", counts, power=power)
        expect_close(f"noise_distribution ({label})", got, want, tol=1e-6, show=False,
                     hint="probs = counts ** power / sum(counts ** power), float64, power 0.75 "
                          "by default, and a word with count 0 keeps probability 0 (even "
                          "with power 0, where 0 ** 0 = 1)")


# ----------------------------------------------------------------------------- queries
@check(A, "cosine_similarity", points=1, forbid=NO_SCIPY)
def _(student):
    rng = rng_for("test_cosine_similarity")
    cases = []
    for D in [1, 1, 2, 5, 9]:
        cases.append((rng.standard_normal(D), rng.standard_normal(D), f"D={D}"))
    a = rng.standard_normal(4)
    cases += [(a, 3.0 * a, "D=4, parallel"), (a, -0.5 * a, "D=4, opposite"),
              (np.array([1.0, 0.0, 0.0]), np.array([0.0, 2.0, 0.0]), "D=3, orthogonal"),
              (1e-3 * rng.standard_normal(6), 50.0 * rng.standard_normal(6), "D=6, very different norms")]
    for a, b, label in cases:
        want = ref.cosine_similarity(a, b)
        got = student.call("cosine_similarity", a, b)
        expect_float(f"cosine_similarity ({label})", got, want, tol=1e-6, show=False,
                     hint="cos = a . b / (||a|| ||b||), with the Euclidean norms (np.linalg.norm)")


def embeddings_with_ties(rng, V, D):
    """Rows of varied norms (cosine differs from the dot product), with duplicated directions
    (ties) and one zero row when V allows."""
    E = rng.standard_normal((V, D)) * np.exp(rng.uniform(-1.5, 1.5, size=(V, 1)))
    if V >= 4:
        i, j = rng.choice(V, size=2, replace=False)
        E[max(i, j)] = E[min(i, j)]  # the same direction twice: a tie
        E[rng.integers(V)] *= 0.0 if V >= 6 else 1.0
    return E


@check(A, "most_similar", points=1, forbid=NO_SCIPY,
       calls={"cosine_similarity": per_row(1)})
def _(student):
    fn = "most_similar"
    rng = rng_for("test_" + fn)
    cases = []
    kinds = ("default", "list", "tuple", "array")
    for n, (V, D) in enumerate([(1, 1), (5, 1), (4, 2), (8, 3), (12, 5), (20, 4), (7, 2), (15, 6)]):
        kind = kinds[n % 4] if V > 1 else "default"
        E = embeddings_with_ties(rng, V, D)
        n_ex = 0 if kind == "default" else int(rng.integers(1, min(3, V - 1) + 1))
        exclude = [int(e) for e in rng.choice(V, size=n_ex, replace=False)]
        k = int(rng.integers(1, V - n_ex + 1))
        # the query is often a row of the table itself (and then excluded), as for a word
        use_row = exclude and n % 3 and np.any(E[exclude[0]])  # never a zero query
        q = E[exclude[0]].copy() if use_row else rng.standard_normal(D)
        ex = {"default": None, "list": exclude, "tuple": tuple(exclude),
              "array": np.array(exclude, dtype=np.int64)}[kind]
        cases.append((q, E, k, ex, case_label(V=V, D=D, k=k) + f", {n_ex} excluded ({kind})"))
    # every row not excluded is returned; a tie at the top
    E = embeddings_with_ties(rng, 9, 3)
    E[5] = 2.0 * E[2]
    cases.append((E[2] + 0.0, E, 8, [0], case_label(V=9, D=3, k=8) + ", all rows not excluded"))
    cases.append((E[2] + 0.0, E, 3, (), case_label(V=9, D=3, k=3) + ", a tie at the top"))
    for q, E, k, ex, label in cases:
        args = (q, E, k) if ex is None else (q, E, k, ex)
        want = ref.most_similar(*args)
        got = student.call(fn, *args)
        expect_int64(f"{fn} ({label})", got, want,
                     hint="rank rows by cosine (normalize every row and the query; a zero row "
                          "has similarity 0), never return an excluded row, most similar "
                          "first, ties broken by the lower index (a stable sort of -sims)")


@check(A, "analogy", points=1, forbid=NO_SCIPY,
       calls={"most_similar": once, "cosine_similarity": per_row(3)})
def _(student):
    fn = "analogy"
    rng = rng_for("test_" + fn)
    cases = []
    for V, D in [(4, 1), (4, 2), (5, 3), (8, 2), (12, 3), (25, 4), (40, 6), (60, 5)]:
        for _ in range(3):
            E = rng.standard_normal((V, D)) * np.exp(rng.uniform(-2.0, 2.0, size=(V, 1)))
            a, b, c = (int(i) for i in rng.choice(V, size=3, replace=False))
            cases.append((a, b, c, E, case_label(V=V, D=D)))
    E = rng.standard_normal((10, 3)) * np.exp(rng.uniform(-2.0, 2.0, size=(10, 1)))
    cases.append((3, 7, 3, E, case_label(V=10, D=3) + ", a == c"))
    for a, b, c, E, label in cases:
        want = ref.analogy(a, b, c, E)
        got = student.call(fn, a, b, c, E)
        expect_equal(f"{fn} ({label})", got, want, show=False,
                     hint="normalize the rows first, then return the row closest in cosine to "
                          "unit[b] - unit[a] + unit[c], excluding a, b and c; return an int")
