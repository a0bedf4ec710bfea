"""Tests of autograder.reference.word2vec: training pairs, both losses, noise distribution,
and the embedding queries (cosine, nearest neighbours, analogies).

Gradients are checked twice: against float64 central differences and against torch.autograd
on the same computation (F.cross_entropy / F.logsigmoid).
"""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from autograder.reference import (analogy, cbow_loss_and_gradient, cbow_windows,
                                  cosine_similarity, most_similar,
                                  naive_softmax_loss_and_gradient, nce_loss_and_gradient,
                                  neg_sampling_loss_and_gradient, noise_distribution,
                                  skipgram_pairs)
from coursekit.gradcheck import rel_error
from helpers import (assert_numeric_match, assert_unchanged, names_arg, readonly, scalar_num_grad,
                     sigmoid)

GRAD_TOL = 1e-6  # numerical vs analytic (float64 central differences)
TORCH_TOL = 1e-9  # analytic vs torch.autograd: the same formula up to rounding


# --------------------------------------------------------------------------- torch references

def torch_naive(center_vec, o, outside_vectors):
    v = torch.tensor(center_vec, requires_grad=True)
    U = torch.tensor(outside_vectors, requires_grad=True)
    loss = F.cross_entropy((U @ v)[None], torch.tensor([o]))
    loss.backward()
    return loss.item(), v.grad.numpy(), U.grad.numpy()


def torch_neg(center_vec, o, outside_vectors, neg):
    v = torch.tensor(center_vec, requires_grad=True)
    U = torch.tensor(outside_vectors, requires_grad=True)
    loss = -F.logsigmoid(U[o] @ v) - F.logsigmoid(-(U[torch.as_tensor(neg)] @ v)).sum()
    loss.backward()
    return loss.item(), v.grad.numpy(), U.grad.numpy()


def loop_neg(center_vec, o, U, neg):
    """Negative sampling written as a plain loop over the K occurrences."""
    gv, gU = np.zeros_like(center_vec), np.zeros_like(U)
    s = U[o] @ center_vec
    loss = -np.log(sigmoid(s))
    gv += -(1 - sigmoid(s)) * U[o]
    gU[o] += -(1 - sigmoid(s)) * center_vec
    for k in neg:
        s = U[k] @ center_vec
        loss += -np.log(sigmoid(-s))
        gv += sigmoid(s) * U[k]
        gU[k] += sigmoid(s) * center_vec
    return loss, gv, gU


# --------------------------------------------------------------------------- naive softmax

NAIVE_SHAPES = [(1, 3), (4, 1), (2, 2), (7, 4), (20, 10)]


@pytest.mark.parametrize("V,D", NAIVE_SHAPES)
def test_naive_softmax_gradients_numerical_and_torch(V, D, rng):
    for trial in range(3):
        v = rng.normal(0, 0.7, D)
        U = rng.normal(0, 0.7, (V, D))
        o = int(rng.integers(V))
        loss, gv, gU = naive_softmax_loss_and_gradient(v, o, U)
        assert isinstance(loss, float)
        assert gv.shape == (D,) and gU.shape == (V, D)
        assert gv.dtype == np.float64 and gU.dtype == np.float64

        f = lambda: naive_softmax_loss_and_gradient(v, o, U)[0]  # noqa: E731
        assert_numeric_match(gv, scalar_num_grad(f, v), GRAD_TOL)
        assert_numeric_match(gU, scalar_num_grad(f, U), GRAD_TOL)

        t_loss, t_gv, t_gU = torch_naive(v, o, U)
        assert loss == pytest.approx(t_loss, rel=1e-12, abs=1e-12)
        assert rel_error(gv, t_gv) < TORCH_TOL
        assert rel_error(gU, t_gU) < TORCH_TOL


def test_naive_softmax_loss_is_cross_entropy_of_scores(rng):
    V, D = 9, 5
    v, U = rng.normal(size=D), rng.normal(size=(V, D))
    scores = torch.tensor(U @ v)
    for o in range(V):
        expected = F.cross_entropy(scores[None], torch.tensor([o])).item()
        loss = naive_softmax_loss_and_gradient(v, o, U)[0]
        assert loss == pytest.approx(expected, rel=1e-12)
        # and by hand: -log softmax(Uv)[o]
        s = U @ v
        assert loss == pytest.approx(np.log(np.exp(s).sum()) - s[o], rel=1e-12)


def test_naive_softmax_single_word_vocabulary_is_certain():
    v, U = np.array([0.3, -2.0]), np.array([[5.0, 1.0]])
    loss, gv, gU = naive_softmax_loss_and_gradient(v, 0, U)
    assert loss == pytest.approx(0.0, abs=1e-15)
    assert np.all(gv == 0) and np.all(gU == 0)


def test_naive_softmax_known_values():
    # Two words, D=1, v=1, U=[[0],[0]]: uniform, loss log 2; p - y = [-1/2, 1/2]
    v, U = np.array([1.0]), np.array([[0.0], [0.0]])
    loss, gv, gU = naive_softmax_loss_and_gradient(v, 0, U)
    assert loss == pytest.approx(np.log(2), rel=1e-15)
    np.testing.assert_allclose(gv, [0.0], atol=1e-15)
    np.testing.assert_allclose(gU, [[-0.5], [0.5]], rtol=1e-15)


@pytest.mark.parametrize("o", [0, 1, 2])
def test_naive_softmax_stable_for_huge_scores(o):
    v = np.array([1.0, 0.0])
    U = np.array([[1e3, 0.0], [-1e3, 0.0], [0.0, 0.0]])  # scores 1e3, -1e3, 0
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        loss, gv, gU = naive_softmax_loss_and_gradient(v, o, U)
    assert np.isfinite(loss) and np.all(np.isfinite(gv)) and np.all(np.isfinite(gU))
    assert loss == pytest.approx([0.0, 2e3, 1e3][o], abs=1e-9)
    t_loss, t_gv, t_gU = torch_naive(v, o, U)
    assert loss == pytest.approx(t_loss, rel=1e-12, abs=1e-12)
    np.testing.assert_allclose(gv, t_gv, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(gU, t_gU, rtol=1e-12, atol=1e-12)
    # all scores equal and huge: uniform, loss log V
    U2 = np.full((4, 2), 1e3)
    loss2, gv2, gU2 = naive_softmax_loss_and_gradient(np.array([1.0, 1.0]), 2, U2)
    assert loss2 == pytest.approx(np.log(4), rel=1e-12)
    assert np.all(np.isfinite(gv2)) and np.all(np.isfinite(gU2))


# --------------------------------------------------------------------------- negative sampling

NEG_SHAPES = [(1, 3, 2), (5, 1, 3), (2, 2, 1), (7, 4, 5), (20, 10, 10), (3, 2, 8)]


@pytest.mark.parametrize("V,D,K", NEG_SHAPES)
def test_neg_sampling_gradients_numerical_and_torch(V, D, K, rng):
    for trial in range(3):
        v = rng.normal(0, 0.7, D)
        U = rng.normal(0, 0.7, (V, D))
        o = int(rng.integers(V))
        neg = rng.integers(0, V, size=K)
        loss, gv, gU = neg_sampling_loss_and_gradient(v, o, U, neg)
        assert isinstance(loss, float)
        assert gv.shape == (D,) and gU.shape == (V, D)

        f = lambda: neg_sampling_loss_and_gradient(v, o, U, neg)[0]  # noqa: E731
        assert_numeric_match(gv, scalar_num_grad(f, v), GRAD_TOL)
        assert_numeric_match(gU, scalar_num_grad(f, U), GRAD_TOL)

        t_loss, t_gv, t_gU = torch_neg(v, o, U, neg)
        assert loss == pytest.approx(t_loss, rel=1e-12)
        assert rel_error(gv, t_gv) < TORCH_TOL
        assert rel_error(gU, t_gU) < TORCH_TOL

        l_loss, l_gv, l_gU = loop_neg(v, o, U, neg)
        assert loss == pytest.approx(l_loss, rel=1e-12)
        assert rel_error(gv, l_gv) < TORCH_TOL
        assert rel_error(gU, l_gU) < TORCH_TOL


@pytest.mark.parametrize("neg", [[2, 2], [2, 2, 2, 4], [4, 2, 4, 2, 2], [0, 0, 3], [1, 1, 1]])
def test_neg_sampling_repeated_negatives_accumulate(neg, rng):
    """A negative drawn r times contributes r times to the loss and to its gradient row."""
    V, D, o = 6, 4, 1  # the last cases repeat o itself among the negatives
    v, U = rng.normal(size=D), rng.normal(size=(V, D))
    neg = np.array(neg)
    loss, gv, gU = neg_sampling_loss_and_gradient(v, o, U, neg)

    l_loss, l_gv, l_gU = loop_neg(v, o, U, neg)
    t_loss, t_gv, t_gU = torch_neg(v, o, U, neg)
    for ref_loss, ref_gv, ref_gU in ((l_loss, l_gv, l_gU), (t_loss, t_gv, t_gU)):
        assert loss == pytest.approx(ref_loss, rel=1e-12)
        assert rel_error(gv, ref_gv) < TORCH_TOL
        assert rel_error(gU, ref_gU) < TORCH_TOL

    # the same with distinct negatives, each weighted by its multiplicity
    uniq, mult = np.unique(neg, return_counts=True)
    exp_gU = np.zeros_like(U)
    exp_gU[o] -= (1 - sigmoid(U[o] @ v)) * v
    for k, r in zip(uniq, mult):
        exp_gU[k] += r * sigmoid(U[k] @ v) * v
    assert rel_error(gU, exp_gU) < TORCH_TOL
    # rows never sampled get exactly zero gradient
    untouched = np.setdiff1d(np.arange(V), np.append(neg, o))
    assert np.all(gU[untouched] == 0)


def test_neg_sampling_repeat_differs_from_single():
    v = np.array([0.5, -0.25])
    U = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    once = neg_sampling_loss_and_gradient(v, 0, U, np.array([2]))
    twice = neg_sampling_loss_and_gradient(v, 0, U, np.array([2, 2]))
    o_only_loss = -np.log(1 / (1 + np.exp(-(U[0] @ v))))
    assert twice[0] - o_only_loss == pytest.approx(2 * (once[0] - o_only_loss), rel=1e-12)
    np.testing.assert_allclose(twice[2][2], 2 * once[2][2], rtol=1e-12)


def test_neg_sampling_known_values():
    # u_o.v = 0 and u_k.v = 0: loss = 2 log 2, gradient coefficients -1/2 and +1/2
    v = np.array([1.0, 0.0])
    U = np.array([[0.0, 3.0], [0.0, -1.0]])
    loss, gv, gU = neg_sampling_loss_and_gradient(v, 0, U, np.array([1]))
    assert loss == pytest.approx(2 * np.log(2), rel=1e-15)
    np.testing.assert_allclose(gv, -0.5 * U[0] + 0.5 * U[1], rtol=1e-15)
    np.testing.assert_allclose(gU, [[-0.5, 0.0], [0.5, 0.0]], rtol=1e-15)


@pytest.mark.parametrize("sign_o,sign_k", [(1, 1), (1, -1), (-1, 1), (-1, -1)])
def test_neg_sampling_stable_for_huge_scores(sign_o, sign_k):
    v = np.array([1.0, 0.0])
    U = np.array([[sign_o * 1e3, 0.0], [sign_k * 1e3, 1.0], [0.0, 0.0]])
    neg = np.array([1, 1, 2])
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        loss, gv, gU = neg_sampling_loss_and_gradient(v, 0, U, neg)
    assert np.isfinite(loss) and np.all(np.isfinite(gv)) and np.all(np.isfinite(gU))
    expected = (1e3 if sign_o < 0 else 0.0) + 2 * (1e3 if sign_k > 0 else 0.0) + np.log(2)
    assert loss == pytest.approx(expected, rel=1e-12)
    t_loss, t_gv, t_gU = torch_neg(v, 0, U, neg)
    assert loss == pytest.approx(t_loss, rel=1e-12)
    np.testing.assert_allclose(gv, t_gv, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(gU, t_gU, rtol=1e-12, atol=1e-12)


# --------------------------------------------------------------------------- skip-gram / CBOW

def brute_skipgram(ids, w):
    out = []
    for i in range(len(ids)):
        for j in range(i - w, i + w + 1):
            if j != i and 0 <= j < len(ids):
                out.append((ids[i], ids[j]))
    return np.array(out, dtype=np.int64).reshape(-1, 2)


def test_skipgram_hand_example_window_1():
    ids = np.array([5, 3, 9, 3])
    expected = np.array([[5, 3],
                         [3, 5], [3, 9],
                         [9, 3], [9, 3],
                         [3, 9]])
    out = skipgram_pairs(ids, 1)
    assert out.dtype == np.int64
    np.testing.assert_array_equal(out, expected)


def test_skipgram_hand_example_window_2():
    ids = np.array([10, 11, 12, 13, 14], dtype=np.int32)
    expected = np.array([[10, 11], [10, 12],
                         [11, 10], [11, 12], [11, 13],
                         [12, 10], [12, 11], [12, 13], [12, 14],
                         [13, 11], [13, 12], [13, 14],
                         [14, 12], [14, 13]])
    out = skipgram_pairs(ids, 2)
    assert out.dtype == np.int64
    np.testing.assert_array_equal(out, expected)


@pytest.mark.parametrize("L,w", [(1, 1), (2, 1), (3, 1), (10, 1), (10, 3), (11, 5), (50, 4), (7, np.int64(2))])
def test_skipgram_matches_brute_force_and_count_formula(L, w, rng):
    ids = rng.integers(0, 6, size=L)
    out = skipgram_pairs(ids, w)
    np.testing.assert_array_equal(out, brute_skipgram(ids, int(w)))
    if L >= w:
        assert len(out) == 2 * w * L - w * (w + 1)
    # per position (unique ids so a pair identifies its positions): interior 2w, edges fewer
    uid = np.arange(L)
    pairs = skipgram_pairs(uid, w)
    per_center = np.bincount(pairs[:, 0], minlength=L)
    expected = [min(i, w) + min(L - 1 - i, w) for i in range(L)]
    np.testing.assert_array_equal(per_center, expected)
    assert np.all(np.abs(pairs[:, 0] - pairs[:, 1]) <= w)
    assert np.all(pairs[:, 0] != pairs[:, 1])
    # corpus order: centers non-decreasing, and contexts increasing within a center
    assert np.all(np.diff(pairs[:, 0]) >= 0)
    same = np.diff(pairs[:, 0]) == 0
    assert np.all(np.diff(pairs[:, 1])[same] > 0)


@pytest.mark.parametrize("L,w", [(1, 3), (4, 4), (4, 10), (6, 100)])
def test_skipgram_window_larger_than_corpus(L, w):
    ids = np.arange(L) * 7
    out = skipgram_pairs(ids, w)
    assert out.shape == (L * (L - 1), 2)
    expected = [(ids[i], ids[j]) for i in range(L) for j in range(L) if j != i]
    np.testing.assert_array_equal(out, np.array(expected, dtype=np.int64).reshape(-1, 2))


def test_cbow_hand_examples():
    ids = np.array([5, 3, 9, 3, 7])
    ctx, cen = cbow_windows(ids, 1)
    np.testing.assert_array_equal(ctx, [[5, 9], [3, 3], [9, 7]])
    np.testing.assert_array_equal(cen, [3, 9, 3])
    assert ctx.dtype == np.int64 and cen.dtype == np.int64
    ctx, cen = cbow_windows(ids, 2)
    np.testing.assert_array_equal(ctx, [[5, 3, 3, 7]])
    np.testing.assert_array_equal(cen, [9])
    ctx, cen = cbow_windows(np.arange(10, 17, dtype=np.int32), 2)
    np.testing.assert_array_equal(ctx, [[10, 11, 13, 14], [11, 12, 14, 15], [12, 13, 15, 16]])
    np.testing.assert_array_equal(cen, [12, 13, 14])
    assert ctx.dtype == np.int64 and cen.dtype == np.int64


@pytest.mark.parametrize("L,w", [(3, 1), (5, 2), (12, 1), (12, 3), (40, 5)])
def test_cbow_shape_and_brute_force(L, w, rng):
    ids = rng.integers(0, 9, size=L)
    ctx, cen = cbow_windows(ids, w)
    M = L - 2 * w
    assert ctx.shape == (M, 2 * w) and cen.shape == (M,)
    for m in range(M):
        i = m + w
        assert cen[m] == ids[i]
        np.testing.assert_array_equal(ctx[m], np.concatenate([ids[i - w:i], ids[i + 1:i + w + 1]]))


@pytest.mark.parametrize("L,w", [(1, 1), (2, 1), (4, 2), (3, 5), (8, 4)])
def test_cbow_empty_when_too_short(L, w):
    ctx, cen = cbow_windows(np.arange(L), w)
    assert ctx.shape == (0, 2 * w) and cen.shape == (0,)
    assert ctx.dtype == np.int64 and cen.dtype == np.int64


@pytest.mark.parametrize("L,w", [(5, 1), (9, 2), (30, 3), (7, 3)])
def test_cbow_consistent_with_skipgram(L, w, rng):
    # with unique ids a (center, context) pair identifies positions exactly
    uid = np.arange(L)
    ctx, cen = cbow_windows(uid, w)
    pairs = skipgram_pairs(uid, w)
    cbow_rel = {(int(c), int(x)) for c, row in zip(cen, ctx) for x in row}
    full = (pairs[:, 0] >= w) & (pairs[:, 0] < L - w)
    sg_rel = {(int(c), int(x)) for c, x in pairs[full]}
    assert cbow_rel == sg_rel
    assert len(cbow_rel) == ctx.size  # no duplicates within a window
    # and with repeated ids every cbow relation is still among the skip-gram pairs
    ids = rng.integers(0, 3, size=L)
    ctx, cen = cbow_windows(ids, w)
    sg = {tuple(p) for p in skipgram_pairs(ids, w).tolist()}
    for c, row in zip(cen.tolist(), ctx.tolist()):
        for x in row:
            assert (c, x) in sg


# --------------------------------------------------------------------------- noise distribution

@pytest.mark.parametrize("counts", [np.array([10, 0, 3, 1, 100]), np.array([2.5, 0.0, 7.0]),
                                    np.array([1]), np.array([0, 0, 4], dtype=np.int32)])
def test_noise_distribution_proportional(counts):
    before = counts.copy()
    p = noise_distribution(counts)
    np.testing.assert_array_equal(counts, before)
    assert p.dtype == np.float64 and p.shape == counts.shape
    assert p.sum() == pytest.approx(1.0, abs=1e-15)
    seen = counts > 0
    assert np.all(p[~seen] == 0)
    np.testing.assert_allclose(p[seen], counts[seen] ** 0.75 / np.sum(counts[seen] ** 0.75), rtol=1e-14)
    # flatter than the unigram distribution: the rarest seen word gains mass
    uni = counts / counts.sum()
    rarest = np.argmin(np.where(seen, counts, np.inf))
    assert p[rarest] >= uni[rarest] - 1e-15


def test_noise_distribution_powers():
    counts = np.array([4, 0, 1, 11, 0, 2])
    np.testing.assert_allclose(noise_distribution(counts, power=1.0), counts / counts.sum(), rtol=1e-15)
    np.testing.assert_allclose(noise_distribution(counts, power=0.0), [0.25, 0, 0.25, 0.25, 0, 0.25], rtol=1e-15)
    np.testing.assert_allclose(noise_distribution(counts, power=0.5),
                               np.sqrt(counts) / np.sqrt(counts).sum(), rtol=1e-14)
    np.testing.assert_allclose(noise_distribution(counts), noise_distribution(counts, 0.75), rtol=0)


@pytest.mark.parametrize("bad", [np.array([1, -1, 3]), np.array([0, 0, 0]), np.array([[1, 2], [3, 4]]),
                                 [1, 2, 3], np.array([]), np.array([1.0, np.nan]), np.array([1.0, np.inf]),
                                 np.array([True, False]), np.array(["a", "b"]), np.array(5)])
def test_noise_distribution_bad_counts(bad):
    with pytest.raises(ValueError, match=names_arg("counts")):
        noise_distribution(bad)


@pytest.mark.parametrize("power", [-0.5, float("nan"), "0.75", None])
def test_noise_distribution_bad_power(power):
    with pytest.raises(ValueError, match=names_arg("power")):
        noise_distribution(np.array([1, 2]), power=power)


# --------------------------------------------------------------------------- cosine / neighbours / analogy

@pytest.mark.parametrize("D", [1, 2, 5, 50])
def test_cosine_similarity_matches_torch(D, rng):
    for _ in range(5):
        a, b = rng.normal(size=D), rng.normal(size=D)
        c = cosine_similarity(a, b)
        assert isinstance(c, float)
        expected = F.cosine_similarity(torch.tensor(a), torch.tensor(b), dim=0).item()
        assert c == pytest.approx(expected, rel=1e-12, abs=1e-14)
        assert -1 - 1e-12 <= c <= 1 + 1e-12
        assert c == pytest.approx(cosine_similarity(b, a), rel=1e-14)  # symmetric
        # scale invariant (positive scales), sign flips under negation
        assert cosine_similarity(3.5 * a, 1e-3 * b) == pytest.approx(c, rel=1e-12, abs=1e-14)
        assert cosine_similarity(-a, b) == pytest.approx(-c, rel=1e-12, abs=1e-14)
        assert cosine_similarity(a, 7 * a) == pytest.approx(1.0, rel=1e-14)


def test_cosine_similarity_known_values():
    assert cosine_similarity(np.array([1.0, 0.0]), np.array([0.0, 2.0])) == pytest.approx(0.0, abs=1e-16)
    assert cosine_similarity(np.array([1.0, 1.0]), np.array([1.0, 0.0])) == pytest.approx(np.sqrt(0.5), rel=1e-15)
    assert cosine_similarity(np.array([2.0]), np.array([-3.0])) == pytest.approx(-1.0, rel=1e-15)
    assert cosine_similarity(np.array([1e-100, 0.0]), np.array([1e-100, 1e-100])) == pytest.approx(np.sqrt(0.5), rel=1e-14)


@pytest.mark.parametrize("which", ["a", "b"])
def test_cosine_similarity_zero_vector(which):
    z, x = np.zeros(3), np.array([1.0, 2.0, 3.0])
    args = (z, x) if which == "a" else (x, z)
    with pytest.raises(ValueError, match=names_arg(which)):
        cosine_similarity(*args)


def brute_most_similar(q, E, k, exclude=()):
    sims = [(-(E[i] @ q) / (np.linalg.norm(E[i]) * np.linalg.norm(q)), i)
            for i in range(len(E)) if i not in set(exclude)]
    return [i for _, i in sorted(sims)[:k]]


@pytest.mark.parametrize("V,D", [(1, 3), (5, 1), (12, 4), (40, 16)])
def test_most_similar_matches_brute_force(V, D, rng):
    E = rng.normal(size=(V, D)) * rng.uniform(0.1, 10, size=(V, 1))  # varied norms: cosine, not dot
    q = rng.normal(size=D)
    for k in range(1, V + 1):
        out = most_similar(q, E, k)
        assert out.dtype == np.int64 and out.shape == (k,)
        np.testing.assert_array_equal(out, brute_most_similar(q, E, k))
    if V >= 3:
        exclude = [int(brute_most_similar(q, E, 1)[0]), V - 1]
        for k in range(1, V - len(set(exclude)) + 1):
            out = most_similar(q, E, k, exclude=exclude)
            np.testing.assert_array_equal(out, brute_most_similar(q, E, k, exclude))
            assert not set(out.tolist()) & set(exclude)


def test_most_similar_cosine_not_dot_product():
    E = np.array([[100.0, 100.0], [1.0, 0.0], [0.0, 1.0]])
    q = np.array([1.0, 0.01])
    np.testing.assert_array_equal(most_similar(q, E, 3), [1, 0, 2])


def test_most_similar_excludes_and_ties():
    E = np.array([[1.0, 0.0], [0.0, 1.0], [2.0, 0.0], [1.0, 0.0], [-1.0, 0.0]])
    q = np.array([3.0, 0.0])
    np.testing.assert_array_equal(most_similar(q, E, 3), [0, 2, 3])  # ties: lower index first
    np.testing.assert_array_equal(most_similar(q, E, 3, exclude=(0,)), [2, 3, 1])
    np.testing.assert_array_equal(most_similar(q, E, 2, exclude=np.array([2, 0])), [3, 1])
    np.testing.assert_array_equal(most_similar(q, E, 2, exclude={3, 2, 0}), [1, 4])
    np.testing.assert_array_equal(most_similar(q, E, 1, exclude=[0, 0, 2, 3, 1]), [4])
    # k bounds: all rows, all non-excluded rows (duplicates in exclude count once)
    assert len(most_similar(q, E, 5)) == 5
    assert len(most_similar(q, E, 3, exclude=[1, 1, 4])) == 3
    with pytest.raises(ValueError, match=names_arg("k")):
        most_similar(q, E, 6)
    with pytest.raises(ValueError, match=names_arg("k")):
        most_similar(q, E, 4, exclude=[1, 1, 4])
    with pytest.raises(ValueError, match=names_arg("k")):
        most_similar(q, E, 0)


def brute_analogy(a, b, c, E):
    U = E / np.linalg.norm(E, axis=1, keepdims=True)
    t = U[b] - U[a] + U[c]
    best, best_i = -np.inf, None
    for i in range(len(E)):
        if i in (a, b, c):
            continue
        s = U[i] @ t / np.linalg.norm(t)
        if s > best:
            best, best_i = s, i
    return best_i


def test_analogy_designed_embedding():
    # orthonormal axes: male, female, person, royal, plus two noise directions
    male, female, person, royal, n1, n2 = np.eye(6)
    words = {
        "man": male + person, "woman": female + person,
        "king": male + royal, "queen": female + royal,
        "duke": 10 * (male + royal + 0.3 * n1),  # the answer when a, b, c are not normalized (below)
        "cat": n1 + 0.2 * n2, "dog": n2 + 0.1 * person,
    }
    vocab = list(words)
    E = np.array([words[w] for w in vocab])
    ix = {w: i for i, w in enumerate(vocab)}
    assert analogy(ix["man"], ix["woman"], ix["king"], E) == ix["queen"]
    assert analogy(ix["woman"], ix["man"], ix["queen"], E) == ix["king"]
    assert analogy(ix["king"], ix["queen"], ix["man"], E) == ix["woman"]
    assert analogy(ix["queen"], ix["king"], ix["woman"], E) == ix["man"]
    assert isinstance(analogy(ix["man"], ix["woman"], ix["king"], E), int)
    # row scale does not matter (cosine on normalized rows)
    scaled = E * np.array([3.0, 0.5, 7.0, 0.01, 1.0, 2.0, 1.0])[:, None]
    assert analogy(ix["man"], ix["woman"], ix["king"], scaled) == ix["queen"]


def test_analogy_excludes_a_b_c_even_when_nearest():
    # b and c nearly coincide, so the 3CosAdd target b - a + c is closest to c (then b)
    E = np.array([
        [0.0, 0.0, 1.0, 0.0],    # a
        [1.0, 0.0, 0.0, 0.0],    # b
        [1.0, 0.05, 0.0, 0.0],   # c
        [0.0, 1.0, 0.0, 0.0],    # far
        [1.0, 0.0, -0.2, 0.6],   # d: the best row outside a, b, c
        [0.2, 0.0, 0.0, 1.0],    # far
    ])
    a, b, c = 0, 1, 2
    U = E / np.linalg.norm(E, axis=1, keepdims=True)
    t = U[b] - U[a] + U[c]
    nearest_overall = int(np.argmax(U @ t))
    assert nearest_overall in (b, c)  # precondition of the test
    assert analogy(a, b, c, E) == 4 == brute_analogy(a, b, c, E)
    # a itself nearest: when a is almost b and c, b - a + c ~ a
    E2 = np.array([[1.0, 0.0, 0.0], [1.0, 0.01, 0.0], [1.0, 0.0, 0.01], [0.5, 0.5, 0.5], [0.0, 0.0, 1.0]])
    U2 = E2 / np.linalg.norm(E2, axis=1, keepdims=True)
    t2 = U2[1] - U2[0] + U2[2]
    assert int(np.argmax(U2 @ t2)) in (0, 1, 2)
    assert analogy(0, 1, 2, E2) == brute_analogy(0, 1, 2, E2) == 3


def test_analogy_random_matches_brute_force(rng):
    E = rng.normal(size=(30, 8)) * rng.uniform(0.1, 10, size=(30, 1))
    for _ in range(20):
        a, b, c = (int(i) for i in rng.integers(0, 30, size=3))
        assert analogy(a, b, c, E) == brute_analogy(a, b, c, E)


# --------------------------------------------------------------------------- bad input, inputs untouched

def _naive_args():
    return dict(center_vec=np.ones(3), outside_idx=1, outside_vectors=np.ones((4, 3)))


def _neg_args():
    return dict(center_vec=np.ones(3), outside_idx=1, outside_vectors=np.ones((4, 3)),
                neg_indices=np.array([0, 2]))


def _replace(base, **kw):
    d = base()
    d.update(kw)
    return d


BAD_W2V = [
    # (function, kwargs, argument the message must name)
    (naive_softmax_loss_and_gradient, _replace(_naive_args, center_vec=[1.0, 1.0, 1.0]), "center_vec"),
    (naive_softmax_loss_and_gradient, _replace(_naive_args, center_vec=np.ones(3, np.float32)), "center_vec"),
    (naive_softmax_loss_and_gradient, _replace(_naive_args, center_vec=np.ones((1, 3))), "center_vec"),
    (naive_softmax_loss_and_gradient, _replace(_naive_args, center_vec=np.ones(3, int)), "center_vec"),
    (naive_softmax_loss_and_gradient, _replace(_naive_args, outside_vectors=np.ones((4, 2))), "outside_vectors"),
    (naive_softmax_loss_and_gradient, _replace(_naive_args, outside_vectors=np.ones(3)), "outside_vectors"),
    (naive_softmax_loss_and_gradient, _replace(_naive_args, outside_vectors=np.ones((4, 3), np.float32)), "outside_vectors"),
    (naive_softmax_loss_and_gradient, _replace(_naive_args, outside_vectors=[[1.0] * 3] * 4), "outside_vectors"),
    (naive_softmax_loss_and_gradient, _replace(_naive_args, outside_idx=4), "outside_idx"),
    (naive_softmax_loss_and_gradient, _replace(_naive_args, outside_idx=-1), "outside_idx"),
    (naive_softmax_loss_and_gradient, _replace(_naive_args, outside_idx=1.0), "outside_idx"),
    (naive_softmax_loss_and_gradient, _replace(_naive_args, outside_idx=True), "outside_idx"),
    (naive_softmax_loss_and_gradient, _replace(_naive_args, outside_idx=np.array([1])), "outside_idx"),
    (neg_sampling_loss_and_gradient, _replace(_neg_args, center_vec=(1.0, 1.0, 1.0)), "center_vec"),
    (neg_sampling_loss_and_gradient, _replace(_neg_args, center_vec=np.ones(3, np.float32)), "center_vec"),
    (neg_sampling_loss_and_gradient, _replace(_neg_args, outside_vectors=np.ones((4, 5))), "outside_vectors"),
    (neg_sampling_loss_and_gradient, _replace(_neg_args, outside_vectors=np.ones((2, 4, 3))), "outside_vectors"),
    (neg_sampling_loss_and_gradient, _replace(_neg_args, outside_idx=9), "outside_idx"),
    (neg_sampling_loss_and_gradient, _replace(_neg_args, neg_indices=[0, 2]), "neg_indices"),
    (neg_sampling_loss_and_gradient, _replace(_neg_args, neg_indices=np.array([0.0, 2.0])), "neg_indices"),
    (neg_sampling_loss_and_gradient, _replace(_neg_args, neg_indices=np.array([[0, 2]])), "neg_indices"),
    (neg_sampling_loss_and_gradient, _replace(_neg_args, neg_indices=np.array([0, 4])), "neg_indices"),
    (neg_sampling_loss_and_gradient, _replace(_neg_args, neg_indices=np.array([-1, 2])), "neg_indices"),
    (neg_sampling_loss_and_gradient, _replace(_neg_args, neg_indices=np.array(2)), "neg_indices"),
    (skipgram_pairs, dict(token_ids=[1, 2, 3], window=1), "token_ids"),
    (skipgram_pairs, dict(token_ids=np.array([1.0, 2.0]), window=1), "token_ids"),
    (skipgram_pairs, dict(token_ids=np.array([[1, 2]]), window=1), "token_ids"),
    (skipgram_pairs, dict(token_ids=np.array([1, -2, 3]), window=1), "token_ids"),
    (skipgram_pairs, dict(token_ids=np.array([1, 2, 3]), window=0), "window"),
    (skipgram_pairs, dict(token_ids=np.array([1, 2, 3]), window=-1), "window"),
    (skipgram_pairs, dict(token_ids=np.array([1, 2, 3]), window=1.5), "window"),
    (skipgram_pairs, dict(token_ids=np.array([1, 2, 3]), window=True), "window"),
    (skipgram_pairs, dict(token_ids=np.array([1, 2, 3]), window="2"), "window"),
    (cbow_windows, dict(token_ids=(1, 2, 3), window=1), "token_ids"),
    (cbow_windows, dict(token_ids=np.array([1.0, 2.0, 3.0]), window=1), "token_ids"),
    (cbow_windows, dict(token_ids=np.ones((3, 3), int), window=1), "token_ids"),
    (cbow_windows, dict(token_ids=np.array([0, 1, -5]), window=1), "token_ids"),
    (cbow_windows, dict(token_ids=np.array([1, 2, 3]), window=0), "window"),
    (cbow_windows, dict(token_ids=np.array([1, 2, 3]), window=2.0), "window"),
    (cosine_similarity, dict(a=[1.0, 2.0], b=np.ones(2)), "a"),
    (cosine_similarity, dict(a=np.ones(2), b=[1.0, 2.0]), "b"),
    (cosine_similarity, dict(a=np.ones(2), b=np.ones(3)), "b"),
    (cosine_similarity, dict(a=np.ones(2, np.float32), b=np.ones(2)), "a"),
    (cosine_similarity, dict(a=np.ones((1, 2)), b=np.ones(2)), "a"),
    (cosine_similarity, dict(a=np.ones(2), b=np.ones((2, 1))), "b"),
    (most_similar, dict(query_vec=[1.0, 0.0], embeddings=np.ones((3, 2)), k=1), "query_vec"),
    (most_similar, dict(query_vec=np.ones(2, np.float32), embeddings=np.ones((3, 2)), k=1), "query_vec"),
    (most_similar, dict(query_vec=np.ones(2), embeddings=np.ones((3, 4)), k=1), "embeddings"),
    (most_similar, dict(query_vec=np.ones(2), embeddings=np.ones(2), k=1), "embeddings"),
    (most_similar, dict(query_vec=np.ones(2), embeddings=np.ones((3, 2)), k=1.0), "k"),
    (most_similar, dict(query_vec=np.ones(2), embeddings=np.ones((3, 2)), k=-1), "k"),
    (most_similar, dict(query_vec=np.ones(2), embeddings=np.ones((3, 2)), k=1, exclude=[3]), "exclude"),
    (most_similar, dict(query_vec=np.ones(2), embeddings=np.ones((3, 2)), k=1, exclude=[-1]), "exclude"),
    (most_similar, dict(query_vec=np.ones(2), embeddings=np.ones((3, 2)), k=1, exclude=[0.0]), "exclude"),
    (most_similar, dict(query_vec=np.ones(2), embeddings=np.ones((3, 2)), k=1, exclude=2), "exclude"),
    (analogy, dict(a=5, b=1, c=2, embeddings=np.eye(5)), "a"),
    (analogy, dict(a=0, b=-1, c=2, embeddings=np.eye(5)), "b"),
    (analogy, dict(a=0, b=1, c=2.0, embeddings=np.eye(5)), "c"),
    (analogy, dict(a=0, b=1, c=2, embeddings=np.ones(5)), "embeddings"),
    (analogy, dict(a=0, b=1, c=2, embeddings=np.eye(5).tolist()), "embeddings"),
    (analogy, dict(a=0, b=1, c=2, embeddings=np.eye(5, dtype=np.float32)), "embeddings"),
    (analogy, dict(a=0, b=1, c=2, embeddings=np.eye(3)), "embeddings"),  # nothing left to answer
]


@pytest.mark.parametrize("fn,kwargs,name", BAD_W2V,
                         ids=[f"{f.__name__}-{n}-{i}" for i, (f, _, n) in enumerate(BAD_W2V)])
def test_word2vec_bad_input_names_argument(fn, kwargs, name):
    with pytest.raises(ValueError, match=names_arg(name)):
        fn(**kwargs)


def test_word2vec_inputs_not_modified(rng):
    """Read-only inputs (any in-place write raises) that also compare equal afterwards."""
    v, U = rng.normal(size=4), rng.normal(size=(6, 4))
    neg = np.array([1, 1, 3])
    ids = rng.integers(0, 6, size=20)
    counts = np.array([3.0, 0.0, 5.0, 1.0])
    E, q = rng.normal(size=(8, 4)), rng.normal(size=4)
    originals = [x.copy() for x in (v, U, neg, ids, counts, E, q)]
    readonly(v, U, neg, ids, counts, E, q)

    naive_softmax_loss_and_gradient(v, 2, U)
    neg_sampling_loss_and_gradient(v, 2, U, neg)
    skipgram_pairs(ids, 2)
    cbow_windows(ids, 2)
    noise_distribution(counts)
    noise_distribution(counts, power=0.0)
    cosine_similarity(q, E[0])
    most_similar(q, E, 3, exclude=(1,))
    analogy(0, 1, 2, E)
    assert_unchanged(originals, (v, U, neg, ids, counts, E, q))

    # returned gradients are fresh arrays, not views of the inputs
    _, gv, gU = naive_softmax_loss_and_gradient(v, 2, U)
    assert not np.shares_memory(gv, v) and not np.shares_memory(gU, U)
    _, gv, gU = neg_sampling_loss_and_gradient(v, 2, U, neg)
    assert not np.shares_memory(gv, v) and not np.shares_memory(gU, U)


# --------------------------------------------------------------------------- NCE and CBOW
def torch_nce(v, o, U, neg, P):
    """NCE by autograd: logits u.v - log(K P_n), the logistic loss of data against noise."""
    vt = torch.tensor(v, requires_grad=True)
    Ut = torch.tensor(U, requires_grad=True)
    idx = torch.tensor(np.concatenate([[o], neg]))
    x = Ut[idx] @ vt - torch.log(len(neg) * torch.tensor(P)[idx])
    loss = -F.logsigmoid(x[0]) - F.logsigmoid(-x[1:]).sum()
    loss.backward()
    return loss.item(), vt.grad.numpy(), Ut.grad.numpy()


def random_probs(rng, V):
    p = rng.uniform(0.1, 3.0, V)
    return p / p.sum()


@pytest.mark.parametrize("V,D,K", NEG_SHAPES)
def test_nce_gradients_numerical_and_torch(V, D, K, rng):
    for trial in range(3):
        v, U = rng.normal(0, 0.7, D), rng.normal(0, 0.7, (V, D))
        o, neg, P = int(rng.integers(V)), rng.integers(0, V, size=K), random_probs(rng, V)
        loss, gv, gU = nce_loss_and_gradient(v, o, U, neg, P)
        assert isinstance(loss, float) and gv.shape == (D,) and gU.shape == (V, D)
        f = lambda: nce_loss_and_gradient(v, o, U, neg, P)[0]  # noqa: E731
        assert_numeric_match(gv, scalar_num_grad(f, v), GRAD_TOL)
        assert_numeric_match(gU, scalar_num_grad(f, U), GRAD_TOL)
        t_loss, t_gv, t_gU = torch_nce(v, o, U, neg, P)
        assert loss == pytest.approx(t_loss, rel=1e-12)
        assert rel_error(gv, t_gv) < TORCH_TOL and rel_error(gU, t_gU) < TORCH_TOL


def test_nce_is_negative_sampling_when_k_times_the_noise_is_one(rng):
    """log(K P_n(w)) = 0 for every w when P_n is uniform over V = K words."""
    V = K = 4
    v, U = rng.normal(size=3), rng.normal(size=(V, 3))
    neg = rng.integers(0, V, size=K)
    for a, b in zip(nce_loss_and_gradient(v, 2, U, neg, np.full(V, 1 / V)),
                    neg_sampling_loss_and_gradient(v, 2, U, neg)):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15)


def test_nce_correction_shifts_the_logits():
    """One negative, D = 1, u.v = 0: loss = softplus(log(K P(o))) + softplus(-log(K P(w)))."""
    P = np.array([0.2, 0.8])
    loss, _, _ = nce_loss_and_gradient(np.array([1.0]), 0, np.zeros((2, 1)), np.array([1]), P)
    assert loss == pytest.approx(np.logaddexp(0, np.log(0.2)) + np.logaddexp(0, -np.log(0.8)))


def test_nce_stable_for_huge_scores():
    U = np.array([[-800.0, 0.0], [800.0, 0.0]])
    loss, gv, gU = nce_loss_and_gradient(np.array([1.0, 0.0]), 0, U, np.array([1, 1]),
                                         np.array([0.5, 0.5]))
    assert loss == pytest.approx(2400.0) and np.all(np.isfinite(gv)) and np.all(np.isfinite(gU))


def test_nce_unused_words_may_have_zero_noise_probability(rng):
    v, U = rng.normal(size=3), rng.normal(size=(5, 3))
    P = np.array([0.0, 0.5, 0.0, 0.5, 0.0])
    loss, gv, gU = nce_loss_and_gradient(v, 1, U, np.array([3, 3]), P)
    assert np.isfinite(loss) and not np.any(gU[[0, 2, 4]])


def torch_cbow(ctx, c, E, U):
    Et = torch.tensor(E, requires_grad=True)
    Ut = torch.tensor(U, requires_grad=True)
    loss = -torch.log_softmax(Ut @ Et[torch.tensor(ctx)].mean(0), 0)[c]
    loss.backward()
    return loss.item(), Et.grad.numpy(), Ut.grad.numpy()


@pytest.mark.parametrize("V,D,C", [(1, 2, 2), (2, 1, 4), (5, 3, 2), (7, 4, 6), (20, 6, 10)])
def test_cbow_gradients_numerical_and_torch(V, D, C, rng):
    for trial in range(3):
        E, U = rng.normal(0, 0.7, (V, D)), rng.normal(0, 0.7, (V, D))
        ctx, c = rng.integers(0, V, size=C), int(rng.integers(V))
        loss, gE, gU = cbow_loss_and_gradient(ctx, c, E, U)
        assert isinstance(loss, float) and gE.shape == gU.shape == (V, D)
        f = lambda: cbow_loss_and_gradient(ctx, c, E, U)[0]  # noqa: E731
        assert_numeric_match(gE, scalar_num_grad(f, E), GRAD_TOL)
        assert_numeric_match(gU, scalar_num_grad(f, U), GRAD_TOL)
        t_loss, t_gE, t_gU = torch_cbow(ctx, c, E, U)
        assert loss == pytest.approx(t_loss, rel=1e-12)
        assert rel_error(gE, t_gE) < TORCH_TOL and rel_error(gU, t_gU) < TORCH_TOL


def test_cbow_is_skipgram_softmax_on_the_mean(rng):
    """CBOW's loss and dJ/dU are the full softmax's with h in place of v_c; a context id seen
    n times gets n/2m of dJ/dh; the center's own input row gets nothing."""
    E, U = rng.normal(size=(6, 3)), rng.normal(size=(6, 3))
    ctx = np.array([4, 1, 4, 4])
    loss, gE, gU = cbow_loss_and_gradient(ctx, 2, E, U)
    n_loss, n_gh, n_gU = naive_softmax_loss_and_gradient(E[ctx].mean(0), 2, U)
    assert loss == pytest.approx(n_loss, rel=1e-12)
    np.testing.assert_allclose(gU, n_gU, rtol=1e-12)
    np.testing.assert_allclose(gE[4], 0.75 * n_gh, rtol=1e-12)
    np.testing.assert_allclose(gE[1], 0.25 * n_gh, rtol=1e-12)
    assert not np.any(gE[[0, 2, 3, 5]])


def test_cbow_stable_for_huge_scores():
    E = np.array([[1.5, 0.0], [0.5, 0.0], [0.0, 0.0]])  # h = (1, 0)
    loss, gE, gU = cbow_loss_and_gradient(np.array([0, 1]), 1, E,
                                          np.array([[800.0, 0.0], [-800.0, 0.0], [0.0, 1.0]]))
    assert loss == pytest.approx(1600.0) and np.all(np.isfinite(gE)) and np.all(np.isfinite(gU))


def _nce_args():
    return dict(center_vec=np.ones(3), outside_idx=1, outside_vectors=np.ones((4, 3)),
                neg_indices=np.array([0, 2]), noise_probs=np.full(4, 0.25))


def _cbow_args():
    return dict(context_idx=np.array([0, 2]), center_idx=1, input_vectors=np.ones((4, 3)),
                outside_vectors=np.ones((4, 3)))


BAD_NCE_CBOW = [
    (nce_loss_and_gradient, _replace(_nce_args, center_vec=np.ones(2)), "outside_vectors"),
    (nce_loss_and_gradient, _replace(_nce_args, outside_idx=4), "outside_idx"),
    (nce_loss_and_gradient, _replace(_nce_args, neg_indices=np.array([0, 4])), "neg_indices"),
    (nce_loss_and_gradient, _replace(_nce_args, neg_indices=np.array([], dtype=np.int64)), "neg_indices"),
    (nce_loss_and_gradient, _replace(_nce_args, noise_probs=[0.25] * 4), "noise_probs"),
    (nce_loss_and_gradient, _replace(_nce_args, noise_probs=np.full(3, 1 / 3)), "noise_probs"),
    (nce_loss_and_gradient, _replace(_nce_args, noise_probs=np.full(4, 0.5)), "noise_probs"),
    (nce_loss_and_gradient, _replace(_nce_args, noise_probs=np.array([0.5, 0.5, -0.25, 0.25])), "noise_probs"),
    (nce_loss_and_gradient, _replace(_nce_args, noise_probs=np.array([0.5, 0.0, 0.25, 0.25])), "noise_probs"),
    (nce_loss_and_gradient, _replace(_nce_args, noise_probs=np.full(4, 0.25, np.float32)), "noise_probs"),
    (cbow_loss_and_gradient, _replace(_cbow_args, context_idx=[0, 2]), "context_idx"),
    (cbow_loss_and_gradient, _replace(_cbow_args, context_idx=np.array([0.0, 2.0])), "context_idx"),
    (cbow_loss_and_gradient, _replace(_cbow_args, context_idx=np.array([0, 4])), "context_idx"),
    (cbow_loss_and_gradient, _replace(_cbow_args, context_idx=np.array([], dtype=np.int64)), "context_idx"),
    (cbow_loss_and_gradient, _replace(_cbow_args, center_idx=4), "center_idx"),
    (cbow_loss_and_gradient, _replace(_cbow_args, center_idx=1.0), "center_idx"),
    (cbow_loss_and_gradient, _replace(_cbow_args, input_vectors=np.ones((4, 2))), "outside_vectors"),
    (cbow_loss_and_gradient, _replace(_cbow_args, outside_vectors=np.ones((5, 3))), "outside_vectors"),
    (cbow_loss_and_gradient, _replace(_cbow_args, input_vectors=np.ones((4, 3), np.float32)), "input_vectors"),
]


@pytest.mark.parametrize("fn,kwargs,name", BAD_NCE_CBOW,
                         ids=[f"{f.__name__}-{n}-{i}" for i, (f, _, n) in enumerate(BAD_NCE_CBOW)])
def test_nce_and_cbow_bad_input_names_argument(fn, kwargs, name):
    with pytest.raises(ValueError, match=names_arg(name)):
        fn(**kwargs)


def test_nce_and_cbow_inputs_not_modified(rng):
    v, U, E = rng.normal(size=4), rng.normal(size=(6, 4)), rng.normal(size=(6, 4))
    neg, ctx, P = np.array([1, 1, 3]), np.array([0, 5, 0, 2]), random_probs(rng, 6)
    originals = [x.copy() for x in (v, U, E, neg, ctx, P)]
    readonly(v, U, E, neg, ctx, P)
    _, gv, gU = nce_loss_and_gradient(v, 2, U, neg, P)
    assert not np.shares_memory(gv, v) and not np.shares_memory(gU, U)
    _, gE, gU = cbow_loss_and_gradient(ctx, 3, E, U)
    assert not np.shares_memory(gE, E) and not np.shares_memory(gU, U)
    assert_unchanged(originals, (v, U, E, neg, ctx, P))
