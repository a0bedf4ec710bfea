"""Skip-gram with negative sampling (or NCE) in PyTorch, fast enough to train on all of Shakespeare.

The NumPy functions in ``autograder.reference.word2vec`` handle one (center, context) pair at a
time; they are what the exercise asks for and what the book derives. This module trains the
same model on a real corpus: every epoch it builds the subsampled (center, context) pairs of
the whole corpus with vectorized NumPy, shuffles them, and updates the two embedding tables
with plain SGD on large batches, with the gradients written out by hand (no autograd) and a
learning rate that decays linearly to ``min_lr``, as in the original word2vec.

What follows the released word2vec code (and gensim), so that the two can be compared with the
same hyperparameters:

- subsampling keeps an occurrence of a word of corpus frequency f with probability
  ``min(1, sqrt(t/f) + t/f)`` (the code's formula; the paper writes the discard probability
  ``1 - sqrt(t/f)``; ``subsample_keep_prob`` gives both);
- the window is "shrunk": for every center a size b is drawn uniformly from 1..window, and only
  the context words within b positions are used, which weights near neighbours more;
- negatives are drawn from the unigram distribution to the power 0.75 (through a table, as in
  the C code); a negative that equals the observed context word is ignored;
- the input vectors start uniform in [-0.5/dim, 0.5/dim), the output vectors at zero.

One departure, for speed on a CPU: the shuffled pairs of a batch are cut into groups of
``neg_group`` (16) that share their K negatives, so that a group's negative scores are one small
matrix product. Every pair still meets K negatives from the noise distribution; on Shakespeare
``neg_group=1`` (independent draws, as in word2vec) gives the same scores within seed noise, 2-3
times more slowly.

``SkipGramConfig(loss=SkipGramLoss.NCE)`` trains with noise-contrastive estimation instead
(Gutmann and Hyvarinen 2010; Mnih and Teh 2012): the same K + 1 logistic regressions with every
logit corrected to u_w . v_c - log(K P_n(w)), the objective of
``autograder.reference.nce_loss_and_gradient``, under which exp(u_w . v_c) estimates the
normalized p(w | c). Everything else (sampling, the skipped negatives, the schedule) is shared.

Device-agnostic: ``device=None`` picks CUDA when there is one.
"""
from __future__ import annotations

import enum
import time
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from ..reference._validate import counts as check_counts
from ..reference._validate import function, generator, integer, one_of, positive_int, real
from ..reference._validate import token_ids as check_token_ids  # the name of train_skipgram's argument

__all__ = [
    "subsample_keep_prob", "epoch_pairs", "SkipGramLoss", "SkipGramConfig", "SkipGramStats", "SkipGramRun", "train_skipgram",
    "evaluate_word_similarity", "evaluate_analogies", "log_normalizers",
]


# ----------------------------------------------------------------------------- argument checks
# ----------------------------------------------------------------------------- data
def subsample_keep_prob(counts, sample, formula="code"):
    """Probability of keeping each occurrence of each word when subsampling frequent words.

    With f = count / total the word's corpus frequency and t = ``sample``:
    - formula="paper": keep with probability min(1, sqrt(t / f)) (discard 1 - sqrt(t/f),
      Mikolov et al. 2013b);
    - formula="code": keep with probability min(1, sqrt(t / f) + t / f), the formula of the
      released word2vec code and of gensim.
    ``sample=0`` disables subsampling (every probability is 1).
    Returns a float64 array (V,).
    """
    c = check_counts("counts", counts)
    t = real("sample", sample, 0.0)
    one_of("formula", formula, ("code", "paper"))
    if t == 0:
        return np.ones_like(c)
    f = c / c.sum()
    with np.errstate(divide="ignore"):
        r = np.sqrt(t / f)
        p = r + t / f if formula == "code" else r
    return np.minimum(p, 1.0)


def epoch_pairs(token_ids, window, keep_prob=None, shrink_window=True, rng=None):
    """The (center, context) pairs of one epoch, built without a Python loop over positions.

    1. Each token is kept with probability ``keep_prob[token]`` (subsampling); the discarded
       ones are removed from the sequence, so windows reach past them, as in word2vec.
    2. With ``shrink_window``, each kept position draws b uniform in 1..window and pairs with
       the kept tokens at distance <= b; otherwise with all those at distance <= window.
    Pairs come grouped by offset (-window..-1, 1..window), not in corpus order.

    Inputs: token_ids (L,) int array; window: positive int; keep_prob: (V,) or None (keep all);
    rng: numpy Generator or int seed (default: seed 0).
    Returns (centers, contexts), two int64 arrays of equal length.
    """
    window = positive_int("window", window)
    rng = generator("rng", 0 if rng is None else rng)
    size = None if keep_prob is None else len(keep_prob)
    ids = check_token_ids("token_ids", token_ids, size).astype(np.int64, copy=False)
    if keep_prob is not None:
        ids = ids[rng.random(ids.shape[0]) < keep_prob[ids]]
    L = ids.shape[0]
    reach = rng.integers(1, window + 1, size=L) if shrink_window else np.full(L, window)
    centers, contexts = [], []
    for d in range(1, window + 1):  # a loop over the 2*window offsets only
        ok = reach[: L - d] >= d  # position i pairs with i + d
        i = np.flatnonzero(ok)
        centers.append(ids[i])
        contexts.append(ids[i + d])
        ok = reach[d:] >= d  # position i (>= d) pairs with i - d
        i = np.flatnonzero(ok) + d
        centers.append(ids[i])
        contexts.append(ids[i - d])
    return np.concatenate(centers), np.concatenate(contexts)


def _sgns_step(w_in, w_out, ci, oi, table, K, G, step, gen, log_kp=None):
    """One SGD step on a batch of pairs; returns the summed loss (a 0-d tensor).

    The b pairs are cut into groups of G consecutive (already shuffled) pairs; the pairs of a
    group share their K negatives, so that the negative scores of a group are one small
    matrix product and each negative's gradient is one row. G=1 is word2vec's sampling.
    ``log_kp`` (V,), log(K P_n(w)), turns negative sampling into NCE: it is subtracted from
    every score before the sigmoid (None: negative sampling).
    """
    b, D = ci.shape[0], w_in.shape[1]
    n_g = -(-b // G)
    neg = table[torch.randint(0, table.shape[0], (n_g, K), generator=gen, device=table.device)]
    v = w_in.index_select(0, ci)  # (b, D) center vectors
    u_o = w_out.index_select(0, oi)  # (b, D) context (output) vectors
    u_n = w_out.index_select(0, neg.reshape(-1)).view(n_g, K, D)  # (n_g, K, D) negatives
    pad = n_g * G - b
    if pad:  # zero rows give zero gradient to the negatives and are dropped afterwards
        v_g = torch.cat([v, v.new_zeros(pad, D)])
        o_g = torch.cat([oi, oi.new_full((pad,), -1)])
    else:
        v_g, o_g = v, oi
    v_g = v_g.view(n_g, G, D)
    s_o = (u_o * v).sum(1)  # (b,)
    s_n = torch.bmm(v_g, u_n.transpose(1, 2))  # (n_g, G, K)
    if log_kp is not None:  # NCE's logits; the correction has no gradient
        s_o = s_o - log_kp[oi]
        s_n = s_n - log_kp[neg][:, None, :]
    skip = neg[:, None, :] == o_g.view(n_g, G, 1)  # a negative equal to the context is ignored
    if pad:
        skip[-1, G - pad :, :] = True
    # loss = -log sigma(s_o) - sum_k log sigma(-s_k) (s the corrected logits under NCE)
    loss = -(F.logsigmoid(s_o).sum() + F.logsigmoid(-s_n).masked_fill(skip, 0.0).sum())
    # d loss / d s_o = sigma(s_o) - 1,  d loss / d s_k = sigma(s_k); times -step for the update
    g_o = torch.sigmoid(s_o).sub_(1.0).mul_(-step)  # (b,)
    g_n = torch.sigmoid(s_n).masked_fill_(skip, 0.0).mul_(-step)  # (n_g, G, K)
    d_v = g_o[:, None] * u_o + torch.bmm(g_n, u_n).view(n_g * G, D)[:b]
    d_un = torch.bmm(g_n.transpose(1, 2), v_g)  # (n_g, K, D)
    w_out.index_add_(0, oi, g_o[:, None] * v)
    w_out.index_add_(0, neg.reshape(-1), d_un.reshape(-1, D))
    w_in.index_add_(0, ci, d_v)
    return loss


# ----------------------------------------------------------------------------- training
class SkipGramLoss(enum.Enum):
    """The training objective: word2vec's negative sampling, or noise-contrastive estimation
    (whose logits subtract log(K P_n(w)), so that exp(u_w . v_c) estimates p(w | c))."""
    NEGATIVE_SAMPLING = "negative_sampling"
    NCE = "nce"


@dataclass(frozen=True)
class SkipGramConfig:
    """The hyperparameters of ``train_skipgram`` (gensim's names in brackets).

    - dim [vector_size], window, negatives [negative], sample, epochs: as gensim's
    - lr, min_lr [alpha, min_alpha]: the SGD step decays linearly from lr to min_lr over all
      the pairs
    - batch_size: pairs per update (the gradients of a batch are summed, as if each pair took
      its own SGD step from the same parameters)
    - neg_group: the (shuffled) pairs of a batch are cut into groups of this many, and the
      pairs of a group share their ``negatives`` noise words: each pair still meets K
      negatives drawn from the noise distribution, but a group's negative scores become one
      small matrix product and each negative gets one summed update. neg_group=1 draws
      independent negatives for every pair, as word2vec does (slower on a CPU, with the same
      quality on Shakespeare: benchmarks/word2vec_vs_gensim.py)
    - shrink_window: draw each center's window size from 1..window, as word2vec does
    - table_size: length of the table negatives are drawn from (word2vec's unigram table)
    - seed: seeds subsampling, windows, shuffling, negatives and initialization
    - loss: a ``SkipGramLoss`` (or its value, "negative_sampling" or "nce", converted to it)
    A bad value is refused when the config is made, with the field's name.
    """
    dim: int = 100
    window: int = 5
    negatives: int = 5
    sample: float = 1e-3
    epochs: int = 5
    lr: float = 0.025
    min_lr: float = 1e-4
    batch_size: int = 4096
    neg_group: int = 16
    shrink_window: bool = True
    table_size: int = 10_000_000
    seed: int = 0
    loss: SkipGramLoss = SkipGramLoss.NEGATIVE_SAMPLING

    def __post_init__(self):
        for name in ("dim", "window", "negatives", "epochs", "batch_size", "neg_group", "table_size"):
            positive_int(name, getattr(self, name))
        real("sample", self.sample, 0.0)
        lr = real("lr", self.lr, 0.0, strict_low=True)
        if real("min_lr", self.min_lr, 0.0) > lr:
            raise ValueError(f"min_lr: expected at most lr={lr}, got {self.min_lr}")
        if not isinstance(self.shrink_window, (bool, np.bool_)):
            raise ValueError(f"shrink_window: expected True or False, got {self.shrink_window!r}")
        integer("seed", self.seed, low=0)  # numpy's generators take no negative seed
        try:
            object.__setattr__(self, "loss", SkipGramLoss(self.loss))  # frozen: set once, here
        except ValueError:
            raise ValueError(f"loss: expected one of {[m.value for m in SkipGramLoss]}, "
                             f"got {self.loss!r}") from None


@dataclass
class SkipGramStats:
    """What a ``train_skipgram`` run measured (passed to its callback after every epoch).

    - seconds: training wall time, pair building included, callbacks not
    - words_per_second: epochs * L / seconds (corpus positions, before subsampling)
    - pairs_per_second: pairs trained / seconds
    - pairs: the number of (center, context) pairs of each epoch
    - loss, loss_pairs: the mean loss per pair over about every 100,000 pairs, and the number
      of pairs trained when each was taken
    - epoch_loss: the mean loss per pair of each epoch
    - device: where it trained ("cpu", "cuda:0", ...)
    """
    device: str
    seconds: float = 0.0
    words_per_second: float = 0.0
    pairs_per_second: float = 0.0
    pairs: list = field(default_factory=list)
    loss: list = field(default_factory=list)
    loss_pairs: list = field(default_factory=list)
    epoch_loss: list = field(default_factory=list)


@dataclass
class SkipGramRun:
    """The result of ``train_skipgram``: the input vectors W (the embeddings), the output
    ("context") vectors U, both float64 (V, dim), and the run's ``SkipGramStats``."""
    embeddings: np.ndarray
    output_vectors: np.ndarray
    stats: SkipGramStats


def train_skipgram(token_ids, vocab_size, counts, config=SkipGramConfig(), *, device=None,
                   num_threads=None, callback=None):
    """Train skip-gram with negative sampling (SGNS), or NCE (``config.loss``), on one long
    token sequence.

    Inputs:
    - token_ids: (L,) integer numpy array, ids in [0, vocab_size)
    - vocab_size: V
    - counts: (V,) corpus counts of the words (for subsampling and the noise distribution)
    - config: a ``SkipGramConfig`` (the hyperparameters and the seed)
    - device: "cpu", "cuda", ... or None for CUDA when available
    - num_threads: torch CPU threads during training (restored afterwards); None keeps
      torch's setting. On a busy machine one thread is often faster than several.
    - callback: called as callback(epoch, embeddings, stats) after every epoch (epoch from 1,
      embeddings a float64 (V, dim) copy of the input vectors, stats the SkipGramStats so far)
    Returns a ``SkipGramRun`` (embeddings, output_vectors, stats).
    """
    V = positive_int("vocab_size", vocab_size)
    ids = check_token_ids("token_ids", token_ids, V, min_len=2).astype(np.int64, copy=False)
    c = check_counts("counts", counts, V)
    if not isinstance(config, SkipGramConfig):
        raise ValueError(f"config: expected a SkipGramConfig, got {config!r:.80}")
    function("callback", callback, allow_none=True, signature="(epoch, embeddings, stats)")
    if num_threads is not None:
        num_threads = positive_int("num_threads", num_threads)
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(f"device: expected a torch device such as 'cpu' or 'cuda', got {device!r}") from None

    threads = torch.get_num_threads()
    if num_threads is not None:
        torch.set_num_threads(num_threads)
    try:
        return _train(ids, c, config, device, callback)
    finally:
        torch.set_num_threads(threads)


def _train(ids, c, cfg, device, callback):
    V, dim, window, K, B = c.shape[0], cfg.dim, cfg.window, cfg.negatives, cfg.batch_size
    rng = np.random.default_rng(cfg.seed)
    gen = torch.Generator(device=device)
    gen.manual_seed(cfg.seed)
    keep = subsample_keep_prob(c, cfg.sample)
    noise = c ** 0.75
    noise /= noise.sum()
    # word2vec's unigram table: word w fills about noise[w] * table_size slots
    bounds = np.round(np.cumsum(noise) * cfg.table_size).astype(np.int64)
    table = torch.as_tensor(np.repeat(np.arange(V), np.diff(np.concatenate([[0], bounds]))), device=device)
    log_kp = None
    if cfg.loss is SkipGramLoss.NCE:
        with np.errstate(divide="ignore"):  # a word of count 0 is never drawn: its -inf is unused
            log_kp = torch.as_tensor(np.log(K * noise), dtype=torch.float32, device=device)

    w_in = torch.as_tensor((rng.random((V, dim)) - 0.5) / dim, dtype=torch.float32, device=device)
    w_out = torch.zeros((V, dim), dtype=torch.float32, device=device)

    # The total number of pairs sets the linear learning-rate schedule; estimate it from the
    # expected number of kept tokens (the real count varies a little from epoch to epoch).
    kept = float((keep[ids]).sum())
    mean_pairs_per_token = (window + 1) if cfg.shrink_window else 2 * window
    total_est = max(1.0, cfg.epochs * kept * mean_pairs_per_token)
    lr, min_lr = cfg.lr, cfg.min_lr

    stats = SkipGramStats(device=str(device))
    log_every = max(1, 100_000 // B)
    done = 0
    start = time.perf_counter()
    for epoch in range(1, cfg.epochs + 1):
        cen, ctx = epoch_pairs(ids, window, keep, cfg.shrink_window, rng)
        perm = rng.permutation(cen.shape[0])
        cen = torch.as_tensor(cen[perm], device=device)
        ctx = torch.as_tensor(ctx[perm], device=device)
        P = cen.shape[0]
        stats.pairs.append(int(P))
        epoch_sum, run_sum, run_n, n_batch = 0.0, 0.0, 0, 0
        for s in range(0, P, B):
            step = max(min_lr, lr - (lr - min_lr) * done / total_est)
            ci, oi = cen[s : s + B], ctx[s : s + B]
            loss = _sgns_step(w_in, w_out, ci, oi, table, K, cfg.neg_group, step, gen, log_kp)
            run_sum += loss
            run_n += ci.shape[0]
            done += ci.shape[0]
            n_batch += 1
            if n_batch % log_every == 0 or s + B >= P:
                stats.loss.append(float(run_sum) / run_n)
                stats.loss_pairs.append(done)
                epoch_sum += float(run_sum)
                run_sum, run_n = 0.0, 0
        stats.epoch_loss.append(epoch_sum / P if P else float("nan"))
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        elapsed = time.perf_counter() - start
        stats.seconds = elapsed
        stats.words_per_second = epoch * ids.shape[0] / elapsed
        stats.pairs_per_second = done / elapsed
        if callback is not None:
            pause = time.perf_counter()
            callback(epoch, w_in.double().cpu().numpy(), stats)
            start += time.perf_counter() - pause  # the callback's time is not training time
    return SkipGramRun(w_in.double().cpu().numpy(), w_out.double().cpu().numpy(), stats)


# ----------------------------------------------------------------------------- evaluation
def _unit(embeddings):
    if not isinstance(embeddings, np.ndarray) or embeddings.ndim != 2 or not np.issubdtype(
        embeddings.dtype, np.floating
    ):
        raise ValueError(f"embeddings: expected a 2-D float numpy array (V, D), got {embeddings!r:.80}")
    n = np.linalg.norm(embeddings, axis=1, keepdims=True)
    return embeddings / np.where(n == 0, 1.0, n)


def _word_to_id(word_to_id, V):
    if not isinstance(word_to_id, dict):
        raise ValueError(f"word_to_id: expected a dict word -> row index, got {type(word_to_id).__name__}")
    if word_to_id and max(word_to_id.values()) >= V:
        raise ValueError(f"word_to_id: has an index >= {V}, the number of embedding rows")
    return word_to_id


def log_normalizers(embeddings, output_vectors, centers):
    """log sum_w exp(u_w . v_c) over the whole vocabulary, for each center c: 0 where the scores
    are a normalized model, exp(u_w . v_c) = p(w | c).

    Inputs: embeddings (V, D) the input vectors v; output_vectors (V, D) the vectors u;
    centers: (M,) integer array of rows of embeddings.
    Returns a float64 array (M,).
    """
    if not isinstance(embeddings, np.ndarray) or embeddings.ndim != 2:
        raise ValueError(f"embeddings: expected a 2-D numpy array (V, D), got {embeddings!r:.80}")
    if not isinstance(output_vectors, np.ndarray) or output_vectors.shape != embeddings.shape:
        raise ValueError(f"output_vectors: expected a numpy array of shape {embeddings.shape} "
                         f"(as embeddings), got {output_vectors!r:.80}")
    check_token_ids("centers", centers, embeddings.shape[0], min_len=0)
    S = embeddings[centers].astype(np.float64) @ output_vectors.T.astype(np.float64)  # (M, V)
    m = S.max(axis=1, keepdims=True)  # log-sum-exp, shifted: scores can be large
    return m[:, 0] + np.log(np.exp(S - m).sum(axis=1))


def evaluate_word_similarity(embeddings, word_to_id, pairs):
    """Spearman correlation between cosine similarities and human scores.

    Inputs: embeddings (V, D); word_to_id: dict word -> row; pairs: list of (word1, word2,
    score), e.g. ``corpora.wordsim353()``. Pairs with a word outside the vocabulary are left
    out. Returns (spearman, coverage, n_used): coverage is the fraction of pairs used;
    spearman is nan when fewer than 2 pairs are in the vocabulary.
    """
    from scipy.stats import spearmanr

    unit = _unit(embeddings)
    w2i = _word_to_id(word_to_id, unit.shape[0])
    if not isinstance(pairs, (list, tuple)) or not pairs:
        raise ValueError("pairs: expected a non-empty list of (word1, word2, score)")
    used = [(w2i[a], w2i[b], float(s)) for a, b, s in pairs if a in w2i and b in w2i]
    if len(used) < 2:
        return float("nan"), len(used) / len(pairs), len(used)
    i, j, human = (np.array(x) for x in zip(*used))
    cos = np.einsum("nd,nd->n", unit[i], unit[j])
    return float(spearmanr(human, cos).statistic), len(used) / len(pairs), len(used)


def evaluate_analogies(embeddings, word_to_id, questions, batch_size=512):
    """Accuracy of 3CosAdd on analogy questions a : b :: c : d whose four words are known.

    The answer is the row most cosine-similar to unit(b) - unit(a) + unit(c), excluding a, b
    and c: the semantics of ``autograder.reference.analogy`` (and gensim's most_similar),
    computed for a batch of questions with one matrix product.
    Inputs: embeddings (V, D); word_to_id; questions: list of (a, b, c, d) words, or a dict
    section -> such a list (e.g. ``corpora.analogy_questions()``).
    Returns (accuracy, coverage, n_used); accuracy is nan when no question is covered.
    """
    unit = _unit(embeddings)
    w2i = _word_to_id(word_to_id, unit.shape[0])
    if isinstance(questions, dict):
        questions = [q for section in questions.values() for q in section]
    if not isinstance(questions, (list, tuple)) or not questions:
        raise ValueError("questions: expected a non-empty list of (a, b, c, d) or a dict of such lists")
    batch_size = positive_int("batch_size", batch_size)
    used = np.array([[w2i[w] for w in q] for q in questions if all(w in w2i for w in q)], dtype=np.int64)
    if used.size == 0:
        return float("nan"), 0.0, 0
    correct = 0
    for s in range(0, used.shape[0], batch_size):
        q = used[s : s + batch_size]
        target = unit[q[:, 1]] - unit[q[:, 0]] + unit[q[:, 2]]
        target /= np.maximum(np.linalg.norm(target, axis=1, keepdims=True), 1e-12)
        sims = target @ unit.T
        rows = np.arange(q.shape[0])[:, None]
        sims[rows, q[:, :3]] = -np.inf
        correct += int((np.argmax(sims, axis=1) == q[:, 3]).sum())  # argmax: ties -> lower index
    return correct / used.shape[0], used.shape[0] / len(questions), used.shape[0]
