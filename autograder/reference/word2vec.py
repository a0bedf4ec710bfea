"""word2vec: training pairs, the losses and their gradients, and embedding queries (NumPy).

Conventions follow the original word2vec and CS224n: ``center_vec`` is v_c (D,), the row of
the input ("center") embedding; ``outside_vectors`` is U (V, D), one output vector per word.
"""
from __future__ import annotations

import numpy as np

from . import _validate as v


def _token_ids(token_ids):
    v.array("token_ids", token_ids, ("L",), {}, dtype="int")
    if token_ids.size and token_ids.min() < 0:
        raise ValueError(f"token_ids: expected non-negative ids, got minimum {token_ids.min()}")
    return token_ids


def skipgram_pairs(token_ids, window):
    """All (center, context) pairs of skip-gram, in corpus order.

    For each position i (in order) and each position j in [i - window, i + window], j != i,
    inside the corpus (in order of j), the pair (token_ids[i], token_ids[j]).

    Inputs:
    - token_ids: (L,) integer array
    - window: positive int, the number of context words on each side
    Returns an int64 array of shape (P, 2).
    """
    _token_ids(token_ids)
    w = v.positive_int("window", window)
    L = len(token_ids)
    offsets = np.concatenate([np.arange(-w, 0), np.arange(1, w + 1)])  # (2w,)
    pos = np.arange(L)[:, None] + offsets  # (L, 2w) context positions, row-major = corpus order
    ok = (pos >= 0) & (pos < L)
    centers = np.broadcast_to(token_ids[:, None], pos.shape)[ok]
    return np.stack([centers, token_ids[pos[ok]]], axis=1).astype(np.int64)


def cbow_windows(token_ids, window):
    """CBOW training examples: the 2*window context words around each center with a full window.

    Inputs:
    - token_ids: (L,) integer array
    - window: positive int
    Returns (contexts (M, 2*window), centers (M,)), int64, M = L - 2*window (0 when L is
    shorter). Context columns are ordered by position: i-window, ..., i-1, i+1, ..., i+window.
    """
    _token_ids(token_ids)
    w = v.positive_int("window", window)
    L = len(token_ids)
    M = max(L - 2 * w, 0)
    offsets = np.concatenate([np.arange(-w, 0), np.arange(1, w + 1)])
    pos = np.arange(w, w + M)[:, None] + offsets
    return token_ids[pos].astype(np.int64).reshape(M, 2 * w), token_ids[w : w + M].astype(np.int64)


def _check_center_outside(center_vec, outside_idx, outside_vectors, dims=None):
    dims = {} if dims is None else dims
    v.array("center_vec", center_vec, ("D",), dims)
    v.array("outside_vectors", outside_vectors, ("V", "D"), dims)
    return v.index("outside_idx", outside_idx, outside_vectors.shape[0])


def naive_softmax_loss_and_gradient(center_vec, outside_idx, outside_vectors):
    """Full-softmax skip-gram loss for one (center, outside) pair: -log softmax(U v_c)[o].

    Inputs:
    - center_vec: (D,) v_c
    - outside_idx: int o, the index of the observed outside word
    - outside_vectors: (V, D) U
    Returns (loss, grad_center_vec (D,), grad_outside_vectors (V, D)).
    """
    o = _check_center_outside(center_vec, outside_idx, outside_vectors)
    scores = outside_vectors @ center_vec  # (V,)
    scores = scores - scores.max()  # softmax is shift invariant; avoids overflow
    log_z = np.log(np.exp(scores).sum())
    p = np.exp(scores - log_z)
    loss = float(log_z - scores[o])
    delta = p.copy()
    delta[o] -= 1.0  # p - y
    return loss, outside_vectors.T @ delta, np.outer(delta, center_vec)


def _sampled_logistic_loss(center_vec, o, outside_vectors, neg_indices, shift):
    """-log s(x_o) - sum_k log s(-x_k) with logits x_w = u_w . v_c - shift_w, and gradients.

    ``shift`` is (K + 1,), aligned with [o, *neg_indices]: zeros for negative sampling,
    log(K P_n(w)) for NCE. A repeated index gets one term (and one gradient) per occurrence.
    """
    idx = np.concatenate([[o], neg_indices]).astype(np.int64)  # (K+1,)
    sign = np.ones(len(idx))
    sign[1:] = -1.0
    s = (outside_vectors[idx] @ center_vec - shift) * sign  # the argument of each log-sigmoid
    loss = float(np.logaddexp(0.0, -s).sum())  # -log sigmoid(s), stable for any s
    coef = -sign * (0.5 * (1.0 - np.tanh(0.5 * s)))  # d loss / d (u . v_c) = -sign * sigmoid(-s)
    grad_center = coef @ outside_vectors[idx]
    grad_outside = np.zeros_like(outside_vectors)
    np.add.at(grad_outside, idx, coef[:, None] * center_vec)  # add.at accumulates repeats
    return loss, grad_center, grad_outside


def _check_negatives(neg_indices, V):
    v.array("neg_indices", neg_indices, ("K",), {}, dtype="int")
    return v.indices("neg_indices", neg_indices, V)


def neg_sampling_loss_and_gradient(center_vec, outside_idx, outside_vectors, neg_indices):
    """Negative-sampling loss for one pair: -log s(u_o.v_c) - sum_k log s(-u_k.v_c).

    A negative index that appears several times counts every time it appears (its gradient
    is accumulated), as it would if the K samples were drawn independently.

    Inputs:
    - center_vec: (D,) v_c
    - outside_idx: int o
    - outside_vectors: (V, D) U
    - neg_indices: (K,) integer array of sampled negative word indices
    Returns (loss, grad_center_vec (D,), grad_outside_vectors (V, D)).
    """
    o = _check_center_outside(center_vec, outside_idx, outside_vectors)
    _check_negatives(neg_indices, outside_vectors.shape[0])
    return _sampled_logistic_loss(center_vec, o, outside_vectors, neg_indices,
                                  np.zeros(len(neg_indices) + 1))


def nce_loss_and_gradient(center_vec, outside_idx, outside_vectors, neg_indices, noise_probs):
    """Noise-contrastive estimation loss for one pair (Gutmann and Hyvarinen; Mnih and Teh).

    The logit of word w is x_w = u_w . v_c - log(K P_n(w)), the log-odds that w came from the
    data rather than from the K noise draws when exp(u_w . v_c) is read as p(w | c):
    loss = -log s(x_o) - sum_k log s(-x_{w_k}). Dropping log(K P_n(w)) gives negative
    sampling. A repeated negative counts every time it appears.

    Inputs:
    - center_vec: (D,) v_c
    - outside_idx: int o
    - outside_vectors: (V, D) U
    - neg_indices: (K,) integer array of negatives drawn from noise_probs (K >= 1)
    - noise_probs: (V,) P_n, non-negative, summing to 1, positive at o and every negative
    Returns (loss, grad_center_vec (D,), grad_outside_vectors (V, D)).
    """
    dims = {}
    o = _check_center_outside(center_vec, outside_idx, outside_vectors, dims)
    V = outside_vectors.shape[0]
    _check_negatives(neg_indices, V)
    K = len(neg_indices)
    if K == 0:
        raise ValueError("neg_indices: expected at least one negative (K >= 1): NCE's "
                         "correction log(K P_n(w)) is undefined for K = 0")
    v.array("noise_probs", noise_probs, ("V",), dims)
    if not np.all(np.isfinite(noise_probs)) or noise_probs.min() < 0:
        raise ValueError("noise_probs: expected finite non-negative probabilities")
    if abs(noise_probs.sum() - 1.0) > 1e-6:
        raise ValueError(f"noise_probs: expected probabilities summing to 1, got sum {noise_probs.sum():.6g}")
    idx = np.concatenate([[o], neg_indices]).astype(np.int64)
    if noise_probs[idx].min() <= 0:
        raise ValueError("noise_probs: expected P_n(w) > 0 for outside_idx and every negative "
                         "(log P_n(w) is used), got 0")
    return _sampled_logistic_loss(center_vec, o, outside_vectors, neg_indices,
                                  np.log(K * noise_probs[idx]))


def cbow_loss_and_gradient(context_idx, center_idx, input_vectors, outside_vectors):
    """CBOW loss with a full softmax for one window: -log softmax(U h)[c], h the mean of the
    context words' input vectors.

    Inputs:
    - context_idx: (2m,) integer array of the context words (repeats allowed), 2m >= 1
    - center_idx: int c, the center word to predict
    - input_vectors: (V, D) the input ("center") vectors, one row per word
    - outside_vectors: (V, D) U, the output vectors
    Returns (loss, grad_input_vectors (V, D), grad_outside_vectors (V, D)); a context id that
    appears n times gets n shares of the gradient of h.
    """
    dims = {}
    v.array("context_idx", context_idx, ("C",), {}, dtype="int")
    v.array("input_vectors", input_vectors, ("V", "D"), dims)
    v.array("outside_vectors", outside_vectors, ("V", "D"), dims)
    V = input_vectors.shape[0]
    if context_idx.size == 0:
        raise ValueError("context_idx: expected at least one context word, got an empty array")
    v.indices("context_idx", context_idx, V)
    c = v.index("center_idx", center_idx, V)
    h = input_vectors[context_idx].mean(axis=0)  # (D,)
    loss, grad_h, grad_outside = naive_softmax_loss_and_gradient(h, c, outside_vectors)
    grad_input = np.zeros_like(input_vectors)
    np.add.at(grad_input, context_idx, grad_h / len(context_idx))  # repeats accumulate
    return loss, grad_input, grad_outside


def noise_distribution(counts, power=0.75):
    """The negative-sampling noise distribution P(w) proportional to count(w) ** power.

    Inputs:
    - counts: (V,) non-negative word counts (integer or float)
    - power: exponent, 0.75 in word2vec (flattens the unigram distribution)
    Returns probs (V,) float64 summing to 1.
    """
    v.counts("counts", counts)
    power = v.real("power", power, low=0.0)
    w = counts.astype(np.float64) ** power
    w[counts == 0] = 0.0  # 0 ** 0 would give unseen words mass
    return w / w.sum()


def cosine_similarity(a, b):
    """Cosine of the angle between two vectors a (D,) and b (D,); returns a float."""
    dims = {}
    v.array("a", a, ("D",), dims)
    v.array("b", b, ("D",), dims)
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    for name, n in (("a", na), ("b", nb)):
        if n == 0:
            raise ValueError(f"{name}: the zero vector has no direction; cosine is undefined")
    return float(a @ b / (na * nb))


def _unit_rows(embeddings):
    norms = np.linalg.norm(embeddings, axis=1, keepdims=True)
    return embeddings / np.where(norms == 0, 1.0, norms)  # a zero row stays zero (similarity 0)


def most_similar(query_vec, embeddings, k, exclude=()):
    """Indices of the k rows of ``embeddings`` with the highest cosine similarity to query_vec.

    Inputs:
    - query_vec: (D,)
    - embeddings: (V, D)
    - k: positive int, at most V - len(exclude)
    - exclude: iterable of row indices never returned (e.g. the query word itself)
    Returns an int64 array (k,), most similar first (ties broken by the lower index).
    """
    dims = {}
    v.array("query_vec", query_vec, ("D",), dims)
    v.array("embeddings", embeddings, ("V", "D"), dims)
    V = embeddings.shape[0]
    k = v.positive_int("k", k)
    try:
        exclude = {v.index("exclude", int(e) if isinstance(e, np.integer) else e, V) for e in exclude}
    except TypeError:
        raise ValueError(f"exclude: expected an iterable of row indices, got {exclude!r}") from None
    if k > V - len(exclude):
        raise ValueError(f"k: expected at most {V - len(exclude)} (rows not excluded), got {k}")
    qn = np.linalg.norm(query_vec)
    sims = _unit_rows(embeddings) @ (query_vec / (qn if qn > 0 else 1.0))
    sims[list(exclude)] = -np.inf
    return np.argsort(-sims, kind="stable")[:k].astype(np.int64)


def analogy(a, b, c, embeddings):
    """Solve a : b :: c : ? by 3CosAdd on unit-normalized rows (as gensim's most_similar).

    The answer is the row closest in cosine to e_b - e_a + e_c, excluding a, b and c.

    Inputs:
    - a, b, c: row indices into embeddings
    - embeddings: (V, D) with V >= 4
    Returns the index (int) of the answer.
    """
    v.array("embeddings", embeddings, ("V", "D"), {})
    V = embeddings.shape[0]
    a, b, c = (v.index(name, i, V) for name, i in (("a", a), ("b", b), ("c", c)))
    if V <= len({a, b, c}):  # otherwise most_similar would complain about its own k
        raise ValueError(
            f"embeddings: expected at least one row besides a, b and c (V >= 4), got V={V}"
        )
    unit = _unit_rows(embeddings)
    return int(most_similar(unit[b] - unit[a] + unit[c], unit, 1, exclude=(a, b, c))[0])
