"""autograder.lab.word2vec: the PyTorch skip-gram trainer and the evaluation helpers."""
import re

import numpy as np
import pytest
import torch

from autograder.lab.word2vec import (SkipGramConfig, SkipGramLoss, _sgns_step, epoch_pairs,
                                     evaluate_analogies, evaluate_word_similarity, log_normalizers,
                                     subsample_keep_prob, train_skipgram)
from autograder.reference import (analogy, nce_loss_and_gradient, neg_sampling_loss_and_gradient,
                                  skipgram_pairs)
from conftest import DEVICES


def names(arg):
    """pytest.raises match: the message starts with the argument's name as a whole word."""
    return r"^" + re.escape(arg) + r"(?!\w)"


def two_topic_corpus(n_segments=300, seg_len=12, seed=0):
    """Words 0-4 only co-occur with each other, words 5-9 likewise (segments alternate)."""
    rng = np.random.default_rng(seed)
    segs = [rng.integers(0, 5, seg_len) + 5 * (i % 2) for i in range(n_segments)]
    ids = np.concatenate(segs).astype(np.int64)
    return ids, np.bincount(ids, minlength=10)


def unit(E):
    return E / np.linalg.norm(E, axis=1, keepdims=True)


# ----------------------------------------------------------------------------- subsampling
def test_keep_prob_formulas():
    counts = np.array([1000, 100, 10, 1])
    f = counts / counts.sum()
    t = 1e-2
    paper = subsample_keep_prob(counts, t, formula="paper")
    code = subsample_keep_prob(counts, t, formula="code")
    np.testing.assert_allclose(paper, np.minimum(1.0, np.sqrt(t / f)))
    np.testing.assert_allclose(code, np.minimum(1.0, np.sqrt(t / f) + t / f))
    assert np.all(code >= paper) and paper[0] < 1 and code[-1] == 1.0
    assert np.all(np.diff(code) >= 0)  # rarer words are kept more often
    np.testing.assert_array_equal(subsample_keep_prob(counts, 0.0), np.ones(4))


def test_keep_prob_unseen_word_is_kept():
    p = subsample_keep_prob(np.array([10, 0, 5]), 1e-3)
    assert p.dtype == np.float64 and np.all(np.isfinite(p)) and p[1] == 1.0


# ----------------------------------------------------------------------------- pairs
def test_epoch_pairs_without_subsampling_are_skipgram_pairs():
    ids = np.random.default_rng(1).integers(0, 7, 50)
    cen, ctx = epoch_pairs(ids, 3, keep_prob=None, shrink_window=False)
    mine = sorted(zip(cen.tolist(), ctx.tolist()))
    ref = sorted(map(tuple, skipgram_pairs(ids, 3).tolist()))
    assert mine == ref
    assert cen.dtype == np.int64 and ctx.dtype == np.int64


def test_epoch_pairs_shrunk_window():
    ids = np.arange(2000) % 1000  # position i holds word i mod 1000, so distances are readable
    cen, ctx = epoch_pairs(ids, 4, rng=np.random.default_rng(0))
    dist = np.abs(((ctx - cen + 500) % 1000) - 500)
    assert dist.min() >= 1 and dist.max() <= 4
    # each center draws b in 1..4 and pairs on both sides: about 2 * 2.5 = 5 pairs per token
    assert 4.7 < len(cen) / len(ids) < 5.2
    # nearer neighbours are used more often: P(d <= b) = (5 - d) / 4
    share = np.bincount(dist, minlength=5)[1:] / len(dist)
    np.testing.assert_allclose(share, np.array([4, 3, 2, 1]) / 10, atol=0.02)


def test_epoch_pairs_subsampling_drops_frequent_words():
    ids = np.array([0, 1] * 500 + [2] * 10)
    keep = np.array([0.0, 1.0, 1.0])  # word 0 never kept
    cen, ctx = epoch_pairs(ids, 2, keep_prob=keep, shrink_window=False)
    assert 0 not in cen and 0 not in ctx
    assert {1, 2} <= set(cen.tolist())


# ----------------------------------------------------------------------------- training
def run(ids, counts, device="cpu", callback=None, num_threads=None, **hp):
    return train_skipgram(ids, 10, counts, SkipGramConfig(**hp), device=device, callback=callback,
                          num_threads=num_threads)


def test_cooccurring_words_end_up_closer():
    ids, counts = two_topic_corpus()
    r = run(ids, counts, dim=16, window=2, negatives=3, sample=0, epochs=5, lr=0.05,
            batch_size=256, table_size=10_000, seed=0)
    S = unit(r.embeddings) @ unit(r.embeddings).T
    same = np.zeros((10, 10), bool)
    same[:5, :5] = same[5:, 5:] = True
    off_diag = ~np.eye(10, dtype=bool)
    within, across = S[same & off_diag].mean(), S[~same].mean()
    assert within > across + 0.3, (within, across)
    assert r.stats.epoch_loss[-1] < r.stats.epoch_loss[0]


@pytest.mark.parametrize("device", DEVICES)
def test_shapes_dtypes_stats_and_callback(device):
    ids, counts = two_topic_corpus(50)
    seen = []
    r = run(ids, counts, device, dim=8, epochs=3, batch_size=64, table_size=1000,
            callback=lambda e, emb, st: seen.append((e, emb.shape, emb.dtype, len(st.epoch_loss))))
    E, U, stats = r.embeddings, r.output_vectors, r.stats
    assert isinstance(E, np.ndarray) and E.shape == (10, 8) and E.dtype == np.float64
    assert U.shape == (10, 8) and U.dtype == np.float64 and np.any(U != 0)  # U starts at zero
    assert seen == [(e, (10, 8), np.float64, e) for e in (1, 2, 3)]
    assert len(stats.pairs) == 3 and len(stats.epoch_loss) == 3
    assert len(stats.loss) == len(stats.loss_pairs) >= 3
    assert stats.loss_pairs[-1] == sum(stats.pairs)
    assert np.all(np.isfinite(stats.loss)) and stats.words_per_second > 0
    assert stats.device.startswith(device)


def test_deterministic_with_seed():
    ids, counts = two_topic_corpus(80)
    kw = dict(dim=8, epochs=2, batch_size=100, neg_group=4, table_size=1000)
    a, b, c = run(ids, counts, seed=3, **kw), run(ids, counts, seed=3, **kw), run(ids, counts, seed=4, **kw)
    np.testing.assert_array_equal(a.embeddings, b.embeddings)
    np.testing.assert_array_equal(a.output_vectors, b.output_vectors)
    assert a.stats.loss == b.stats.loss
    assert not np.array_equal(a.embeddings, c.embeddings)


@pytest.mark.parametrize("neg_group", [1, 7])
def test_batch_not_a_multiple_of_the_group(neg_group):
    ids, counts = two_topic_corpus(40)
    r = run(ids, counts, dim=4, epochs=1, batch_size=50, neg_group=neg_group, table_size=500)
    assert np.all(np.isfinite(r.embeddings)) and np.all(np.isfinite(r.stats.loss))


def test_num_threads_is_restored():
    ids, counts = two_topic_corpus(20)
    before = torch.get_num_threads()
    run(ids, counts, dim=4, epochs=1, table_size=500, num_threads=1)
    assert torch.get_num_threads() == before


@pytest.mark.parametrize("kwargs, arg", [
    (dict(token_ids=[0, 1, 2]), "token_ids"),
    (dict(token_ids=np.array([0.0, 1.0])), "token_ids"),
    (dict(token_ids=np.array([0, 10])), "token_ids"),
    (dict(token_ids=np.array([0])), "token_ids"),
    (dict(vocab_size=0), "vocab_size"),
    (dict(counts=np.ones(9)), "counts"),
    (dict(counts=-np.ones(10)), "counts"),
    (dict(config={"dim": 8}), "config"),
    (dict(device="gpu-of-dreams"), "device"),
    (dict(num_threads=0), "num_threads"),
    (dict(callback=3), "callback"),
])
def test_bad_arguments(kwargs, arg):
    ids, counts = two_topic_corpus(10)
    args = dict(token_ids=ids, vocab_size=10, counts=counts, config=SkipGramConfig(epochs=1))
    args.update(kwargs)
    with pytest.raises(ValueError, match=names(arg)):
        train_skipgram(**args)


@pytest.mark.parametrize("kwargs, arg", [
    (dict(dim=0), "dim"),
    (dict(window=1.5), "window"),
    (dict(negatives=0), "negatives"),
    (dict(sample=-1e-3), "sample"),
    (dict(epochs=0), "epochs"),
    (dict(lr=0.0), "lr"),
    (dict(min_lr=1.0), "min_lr"),
    (dict(batch_size=0), "batch_size"),
    (dict(neg_group=True), "neg_group"),
    (dict(table_size=-5), "table_size"),
    (dict(shrink_window="no"), "shrink_window"),
    (dict(seed="0"), "seed"),
    (dict(seed=True), "seed"),
    (dict(loss="softmax"), "loss"),
    (dict(loss=None), "loss"),
])
def test_bad_config(kwargs, arg):
    with pytest.raises(ValueError, match=names(arg)):
        SkipGramConfig(**kwargs)


# ----------------------------------------------------------------------------- NCE
def test_loss_field_takes_the_enum_or_its_value():
    assert SkipGramConfig().loss is SkipGramLoss.NEGATIVE_SAMPLING
    assert SkipGramConfig(loss="nce").loss is SkipGramLoss.NCE
    assert SkipGramConfig(loss=SkipGramLoss.NCE) == SkipGramConfig(loss="nce")


@pytest.mark.parametrize("loss", list(SkipGramLoss))
def test_one_step_is_one_reference_sgd_step(loss):
    """One pair, G = 1, a table that always draws word 3: the step equals an SGD step on the
    NumPy reference's gradients, for both objectives (NCE: log(K P_n) subtracted)."""
    rng = np.random.default_rng(0)
    V, D, K, lr = 6, 4, 3, 0.1
    E, U = rng.standard_normal((V, D)), rng.standard_normal((V, D))
    P = rng.uniform(0.5, 2.0, V)
    P /= P.sum()
    c, o, neg = 2, 5, np.array([3, 3, 3])
    if loss is SkipGramLoss.NCE:
        want = nce_loss_and_gradient(E[c], o, U, neg, P)
        log_kp = torch.as_tensor(np.log(K * P))
    else:
        want = neg_sampling_loss_and_gradient(E[c], o, U, neg)
        log_kp = None
    w_in, w_out = torch.as_tensor(E.copy()), torch.as_tensor(U.copy())
    got = _sgns_step(w_in, w_out, torch.tensor([c]), torch.tensor([o]), torch.tensor([3]), K, 1,
                     lr, torch.Generator().manual_seed(0), log_kp)
    assert abs(float(got) - want[0]) < 1e-12
    np.testing.assert_allclose(w_in.numpy()[c], E[c] - lr * want[1], atol=1e-12)
    np.testing.assert_allclose(w_out.numpy(), U - lr * want[2], atol=1e-12)


def test_log_normalizers():
    rng = np.random.default_rng(0)
    E, U = rng.standard_normal((7, 3)), 300.0 * rng.standard_normal((7, 3))
    c = np.array([0, 6, 6])
    want = [np.log(np.sum(np.exp(np.longdouble(U @ E[i])))) for i in c]
    np.testing.assert_allclose(log_normalizers(E, U, c), np.array(want, dtype=np.float64), rtol=1e-12)
    np.testing.assert_allclose(log_normalizers(E, np.zeros((7, 3)), c), np.log(7.0))
    for kwargs, arg in [(dict(centers=np.array([7])), "centers"), (dict(centers=[0]), "centers"),
                        (dict(output_vectors=U[:6]), "output_vectors"),
                        (dict(embeddings=E[0]), "embeddings")]:
        with pytest.raises(ValueError, match=names(arg)):
            log_normalizers(**{**dict(embeddings=E, output_vectors=U, centers=c), **kwargs})


def test_nce_scores_are_self_normalized_and_negative_sampling_scores_are_not():
    ids, counts = two_topic_corpus()
    hp = dict(dim=16, window=2, negatives=5, sample=0, epochs=5, lr=0.02, batch_size=64,
              table_size=10_000, seed=0)
    nce, ns = run(ids, counts, loss="nce", **hp), run(ids, counts, **hp)
    z_nce, z_ns = (log_normalizers(r.embeddings, r.output_vectors, ids[:500]) for r in (nce, ns))
    # at the start (U = 0) both are log V = 2.3
    assert np.all(np.isfinite(z_nce)) and abs(np.median(z_nce)) < 0.3, np.median(z_nce)
    assert np.median(z_ns) > np.median(z_nce) + 0.5, (np.median(z_ns), np.median(z_nce))
    for r in (nce, ns):  # both learn the two topics
        S = unit(r.embeddings) @ unit(r.embeddings).T
        assert S[:5, :5].mean() > S[:5, 5:].mean() + 0.3


def test_bad_arguments_of_the_helpers():
    with pytest.raises(ValueError, match=names("sample")):
        subsample_keep_prob(np.array([1, 2]), -1.0)
    with pytest.raises(ValueError, match=names("formula")):
        subsample_keep_prob(np.array([1, 2]), 1e-3, formula="book")
    with pytest.raises(ValueError, match=names("counts")):
        subsample_keep_prob(np.array([0, 0]), 1e-3)
    with pytest.raises(ValueError, match=names("window")):
        epoch_pairs(np.arange(5), 0)
    for bad in (np.arange(5.0), [0, 1, 2], np.array([0, -1, 2]), np.arange(6).reshape(2, 3)):
        with pytest.raises(ValueError, match=names("token_ids")):
            epoch_pairs(bad, 2)
    with pytest.raises(ValueError, match=names("token_ids")):  # an id past keep_prob's words
        epoch_pairs(np.array([0, 1, 5]), 2, keep_prob=np.ones(3))


# ----------------------------------------------------------------------------- evaluation
def test_word_similarity_on_hand_made_embeddings():
    angles = np.array([0.0, 0.2, 0.5, 1.0, 1.5])  # word i at this angle: cos(w0, wi) falls with i
    E = np.stack([np.cos(angles), np.sin(angles)], axis=1)
    w2i = {w: i for i, w in enumerate("abcde")}
    pairs = [("a", "b", 9.0), ("a", "c", 7.0), ("a", "d", 4.0), ("a", "e", 1.0), ("a", "zebra", 5.0)]
    rho, coverage, n = evaluate_word_similarity(E, w2i, pairs)
    assert rho == pytest.approx(1.0) and coverage == pytest.approx(0.8) and n == 4
    reversed_scores = [(a, b, -s) for a, b, s in pairs]
    assert evaluate_word_similarity(E, w2i, reversed_scores)[0] == pytest.approx(-1.0)
    rho, coverage, n = evaluate_word_similarity(E, w2i, [("a", "b", 1.0), ("x", "y", 2.0)])
    assert np.isnan(rho) and coverage == 0.5 and n == 1


def test_word_similarity_is_scale_invariant():
    rng = np.random.default_rng(0)
    E = rng.normal(size=(6, 3))
    w2i = {str(i): i for i in range(6)}
    pairs = [(str(i), str(j), float(rng.random())) for i in range(6) for j in range(i + 1, 6)]
    scaled = E * rng.uniform(0.1, 10, size=(6, 1))
    assert evaluate_word_similarity(E, w2i, pairs)[0] == pytest.approx(
        evaluate_word_similarity(scaled, w2i, pairs)[0])


def test_analogies_agree_with_the_reference():
    rng = np.random.default_rng(0)
    E = rng.normal(size=(30, 5))
    words = [f"w{i}" for i in range(30)]
    w2i = {w: i for i, w in enumerate(words)}
    qs = [tuple(words[i] for i in rng.choice(30, 4, replace=False)) for _ in range(200)]
    # make half of the questions answerable by the reference's own answer
    for n in range(0, 200, 2):
        a, b, c, _ = (w2i[w] for w in qs[n])
        qs[n] = (words[a], words[b], words[c], words[analogy(a, b, c, E)])
    expected = np.mean([analogy(*(w2i[w] for w in q[:3]), E) == w2i[q[3]] for q in qs])
    acc, coverage, n = evaluate_analogies(E, w2i, qs, batch_size=37)
    assert acc == pytest.approx(expected) and coverage == 1.0 and n == 200
    assert acc >= 0.5
    acc2, coverage2, n2 = evaluate_analogies(E, w2i, {"x": qs[:100], "y": qs[100:] + [("a", "b", "c", "d")]})
    assert n2 == 200 and coverage2 == pytest.approx(200 / 201) and acc2 == pytest.approx(acc)


def test_analogy_on_a_planted_structure():
    # king - man + woman = queen in a 3-D toy space
    w2i = {"man": 0, "woman": 1, "king": 2, "queen": 3, "apple": 4}
    E = np.array([[1, 0, 0], [1, 1, 0], [1, 0, 1], [1, 1, 1], [0, -1, 0.3]], dtype=float)
    assert evaluate_analogies(E, w2i, [("man", "woman", "king", "queen")])[0] == 1.0
    assert np.isnan(evaluate_analogies(E, w2i, [("man", "woman", "king", "prince")])[0])


def test_evaluation_bad_arguments():
    E = np.eye(4)
    w2i = {"a": 0, "b": 1}
    with pytest.raises(ValueError, match=names("embeddings")):
        evaluate_word_similarity(E.tolist(), w2i, [("a", "b", 1.0)])
    with pytest.raises(ValueError, match=names("word_to_id")):
        evaluate_word_similarity(E, {"a": 9}, [("a", "b", 1.0)])
    with pytest.raises(ValueError, match=names("pairs")):
        evaluate_word_similarity(E, w2i, [])
    with pytest.raises(ValueError, match=names("questions")):
        evaluate_analogies(E, w2i, "a b c d")
    with pytest.raises(ValueError, match=names("batch_size")):
        evaluate_analogies(E, w2i, [("a", "b", "a", "b")], batch_size=0)
