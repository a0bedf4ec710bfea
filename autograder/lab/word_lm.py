"""A word-level language model: Shakespeare as a word stream, a Kneser-Ney n-gram baseline and
a two-layer LSTM with tied embeddings and dropout (chapter 12).

The corpus follows Penn Treebank's preparation as Mikolov's language-modelling setup made it
standard: lower case, no punctuation, an ``<eos>`` token at every line end, the 10,000 most
frequent training words kept and every other word replaced by ``<unk>``; whole plays are held
out for validation and test. The LSTM is trained and scored by the same stateful truncated
BPTT code as the character model (``char_lm.train`` / ``char_lm.evaluate``: they work on any
token-input model), so a word's perplexity is 2 ** (bits per token) of those functions.
"""
from __future__ import annotations

import collections
import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from coursekit.corpora import build_vocab, shakespeare_plays, shakespeare_text, tokenize_words

from ..reference import _validate as v
from .models import SequenceModel, carried_state_scores, draw_continuation

__all__ = ["EOS", "UNK", "WordCorpus", "word_tokens", "shakespeare_words", "KneserNey", "WordLM",
           "parameter_count", "evaluate", "sample", "save", "load"]

EOS, UNK = "<eos>", "<unk>"


def word_tokens(text):
    """The word stream of ``text``: each non-empty line's words (``tokenize_words``), then ``<eos>``."""
    out = []
    for line in text.splitlines():
        words = tokenize_words(line)
        if words:
            out += words
            out.append(EOS)
    return out


@dataclass
class WordCorpus:
    """A vocabulary and three id streams (int64 arrays) made from it.

    - words: the vocabulary in id order, most frequent training word first; ``<unk>`` is one
      of them (every training word outside the vocabulary, and every unseen word, maps to it)
    - train, valid, test: the streams, with ``<eos>`` ending every line
    - oov: the fraction of each stream's tokens that became ``<unk>``
    """
    words: list
    train: np.ndarray
    valid: np.ndarray
    test: np.ndarray
    oov: dict

    @property
    def index(self):
        """dict word -> id."""
        return {w: i for i, w in enumerate(self.words)}

    def decode(self, ids):
        """A sequence of ids -> the words joined by spaces, with a line break for each ``<eos>``."""
        return " ".join(self.words[i] for i in np.asarray(ids).tolist()).replace(f" {EOS} ", "\n") \
            .replace(EOS, "\n")


def shakespeare_words(valid_plays, test_plays, vocab_size=10000, train_plays=None):
    """Shakespeare's plays at word level, split by play (Penn-Treebank style; see the module).

    - valid_plays, test_plays: play names (``coursekit.corpora.shakespeare_plays()``) held out
    - train_plays: the training plays; None: every other play
    - vocab_size: words kept, ``<unk>`` included (the most frequent training words; ties
      alphabetical, as ``build_vocab`` orders them)
    Returns a ``WordCorpus``.
    """
    known = set(shakespeare_plays())
    vocab_size = v.positive_int("vocab_size", vocab_size)
    if vocab_size < 2:
        raise ValueError(f"vocab_size: expected at least 2 (a word and <unk>), got {vocab_size}")
    split = {}
    for name, plays in (("valid_plays", valid_plays), ("test_plays", test_plays),
                        ("train_plays", train_plays)):
        if plays is None:
            continue
        plays = [plays] if isinstance(plays, str) else list(plays)
        bad = [p for p in plays if p not in known]
        if not plays or bad:
            raise ValueError(f"{name}: expected a non-empty list of play names from "
                             f"shakespeare_plays(), got unknown {bad!r}" if bad else
                             f"{name}: expected a non-empty list of play names, got none")
        split[name] = plays
    held = set(split["valid_plays"]) | set(split["test_plays"])
    if len(held) < len(split["valid_plays"]) + len(split["test_plays"]):
        raise ValueError("test_plays: a play is also among valid_plays; hold each play out once")
    train = split.get("train_plays") or sorted(known - held)
    if held & set(train):
        raise ValueError(f"train_plays: {sorted(held & set(train))} also held out")
    streams = {k: word_tokens(shakespeare_text(p)) for k, p in
               (("train", train), ("valid", split["valid_plays"]), ("test", split["test_plays"]))}
    words, _, _ = build_vocab([w for w in streams["train"] if w != UNK], max_size=vocab_size - 1)
    words = words + [UNK]
    index = {w: i for i, w in enumerate(words)}
    unk = index[UNK]
    ids = {k: np.fromiter((index.get(w, unk) for w in s), dtype=np.int64, count=len(s))
           for k, s in streams.items()}
    oov = {k: float(np.mean(a == unk)) for k, a in ids.items()}
    return WordCorpus(words, ids["train"], ids["valid"], ids["test"], oov)


# ----------------------------------------------------------------------------- the n-gram baseline
class KneserNey:
    """Interpolated Kneser-Ney n-gram model (Chen and Goodman 1999, with one discount per order).

    The highest order uses counts c(h, w); every lower order uses continuation counts (the
    number of distinct words seen before (h', w)), which is what makes "Francisco" a rare
    *next* word even if it is frequent after "San". Every order gives back the discount D
    from each seen word and hands that mass to the order below; the unigram level hands it to
    the uniform distribution over the vocabulary, so no word has probability zero.
    D = n1 / (n1 + 2 n2) per order, from the counts of counts (Ney et al. 1994).

    Usage: ``KneserNey(order=3).fit(train_ids, V).perplexity(test_ids)``.
    """

    def __init__(self, order=3):
        self.order = v.positive_int("order", order)

    def fit(self, ids, vocab_size):
        """Count the n-grams of one id stream (1-D int array, ids in [0, vocab_size)); returns self."""
        self.V = v.positive_int("vocab_size", vocab_size)
        ids = v.token_ids("ids", ids, self.V)
        toks = ids.tolist()
        n = self.order
        grams = collections.Counter(tuple(toks[i:i + n]) for i in range(len(toks) - n + 1))
        # level k (1..n) holds counts of k-grams: raw at k = n, continuation counts below
        self.counts = {n: grams}
        for k in range(n - 1, 0, -1):
            self.counts[k] = collections.Counter(g[1:] for g in self.counts[k + 1])
        self.context_total, self.context_types, self.discount = {}, {}, {}
        for k, cnt in self.counts.items():
            total, types = collections.Counter(), collections.Counter()
            for g, c in cnt.items():
                total[g[:-1]] += c
                types[g[:-1]] += 1
            self.context_total[k], self.context_types[k] = total, types
            n1 = sum(1 for c in cnt.values() if c == 1)
            n2 = sum(1 for c in cnt.values() if c == 2)
            self.discount[k] = n1 / (n1 + 2 * n2) if n1 + n2 else 0.5
        return self

    def prob(self, history, word):
        """P(word | the last order-1 ids of history), a float in (0, 1)."""
        p = 1.0 / self.V
        hist = tuple(history)[-(self.order - 1):] if self.order > 1 else ()
        for k in range(1, self.order + 1):
            if k - 1 > len(hist):
                break
            h = hist[len(hist) - (k - 1):] if k > 1 else ()
            total = self.context_total[k].get(h, 0)
            if total == 0:
                continue  # an unseen history: the lower order's estimate stands
            D = self.discount[k]
            c = self.counts[k].get(h + (word,), 0)
            p = max(c - D, 0.0) / total + D * self.context_types[k][h] / total * p
        return p

    def nll(self, ids):
        """Mean negative log-likelihood (nats) of ids[1:], each word given the ids before it."""
        ids = v.token_ids("ids", ids, self.V, min_len=2).tolist()
        n = self.order
        return -sum(math.log(self.prob(ids[max(0, t - n + 1):t], ids[t]))
                    for t in range(1, len(ids))) / (len(ids) - 1)

    def perplexity(self, ids):
        """exp of ``nll(ids)``: the perplexity per word."""
        return math.exp(self.nll(ids))


# ----------------------------------------------------------------------------- the LSTM
class WordLM(SequenceModel):
    """Embedding (V, D) -> dropout -> L-layer LSTM (dropout between layers) -> dropout -> linear (H -> V).

    Dropout acts on the non-recurrent connections only, as Zaremba et al. (2014) apply it: the
    state carried from step to step is never masked. With ``tie=True`` the read-out's weight
    *is* the embedding matrix (Press and Wolf 2017; Inan et al. 2017), so D must equal H. The
    embedding and read-out start uniform in [-0.1, 0.1] with a zero read-out bias (a word's
    initial logits are then small, whether or not they are tied).
    Input: ids (N, T) int64; returns (logits (N, T, V), state).
    """

    def __init__(self, vocab_size, embed_size, hidden_size, num_layers=2, dropout=0.0, tie=False):
        vocab_size = v.positive_int("vocab_size", vocab_size)
        embed_size = v.positive_int("embed_size", embed_size)
        hidden_size = v.positive_int("hidden_size", hidden_size)
        dropout = v.probability("dropout", dropout)
        if tie and embed_size != hidden_size:
            raise ValueError(f"tie: tied weights need embed_size == hidden_size, got "
                             f"{embed_size} and {hidden_size}")
        super().__init__("lstm", embed_size, hidden_size, vocab_size, vocab_size=vocab_size,
                         num_layers=v.positive_int("num_layers", num_layers), dropout=dropout)
        self.drop = nn.Dropout(dropout)
        self.tied = bool(tie)
        with torch.no_grad():
            self.embed.weight.uniform_(-0.1, 0.1)
            self.head.bias.zero_()
            if tie:
                self.head.weight = self.embed.weight
            else:
                self.head.weight.uniform_(-0.1, 0.1)

    def forward(self, x, state=None):
        h, state = self.rnn(self.drop(self.embed(x)), state)
        return self.head(self.drop(h)), state


def parameter_count(model):
    """Trainable parameters, a tied matrix counted once."""
    return sum(p.numel() for p in model.parameters())


@torch.no_grad()
def evaluate(model, ids, batch_size=16, seq_len=128):
    """Perplexity per word of a held-out stream, read as ``char_lm.evaluate`` reads text.

    The stream is cut into ``batch_size`` streams by ``reference.tbptt_batches`` and read chunk
    after chunk with the state carried over; each chunk is scored on the model's device in its
    own precision (a 10,000-way softmax per word is too large to copy to NumPy, or to widen to
    float64, chunk by chunk; the chunk sums are added in float64). The (L-1) mod
    (batch_size*seq_len) last words are not scored.
    Returns a dict: nll (nats per word), perplexity, words (how many were scored).
    """
    if not isinstance(model, WordLM):
        raise ValueError(f"model: expected a WordLM, got {v.describe(model)}")
    v.token_ids("ids", ids, model.embed.num_embeddings, min_len=2)
    sums, words = carried_state_scores(
        model, ids, batch_size, seq_len,
        lambda logits, y: float(F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1),
                                                reduction="sum")))
    nll = sum(sums) / words
    return {"nll": nll, "perplexity": math.exp(nll), "words": words}


@torch.no_grad()
def sample(model, corpus, prime, n, temperature=1.0, rng=0):
    """``n`` words drawn after reading the words of ``prime``; returns them as text (``decode``).

    Each word is drawn by ``reference.sample_next`` (softmax of logits / temperature) and fed
    back in. ``<unk>`` is drawn like any word, as the model learned it. rng: a numpy
    Generator or an int seed.
    """
    if not isinstance(model, WordLM):
        raise ValueError(f"model: expected a WordLM, got {v.describe(model)}")
    if not isinstance(corpus, WordCorpus) or len(corpus.words) != model.embed.num_embeddings:
        raise ValueError("corpus: expected the WordCorpus the model was trained on "
                         f"({model.embed.num_embeddings} words), got {v.describe(corpus)}")
    index = corpus.index
    words = word_tokens(prime) if isinstance(prime, str) else None
    if not words:
        raise ValueError(f"prime: expected a str with at least one word, got {prime!r}")
    device = next(model.parameters()).device
    x = torch.tensor([[index.get(w, index[UNK]) for w in words[:-1]]], device=device)  # no final <eos>
    return corpus.decode(draw_continuation(model, x, n, temperature, rng))


def save(model, path):
    """Write a WordLM's configuration and weights (float16: half the bytes; the rounding moves
    a perplexity by far less than its last printed digit) to ``path`` (torch.save)."""
    if not isinstance(model, WordLM):
        raise ValueError(f"model: expected a WordLM, got {v.describe(model)}")
    config = dict(vocab_size=model.embed.num_embeddings, embed_size=model.embed.embedding_dim,
                  hidden_size=model.rnn.hidden_size, num_layers=model.rnn.num_layers,
                  dropout=model.drop.p, tie=model.tied)
    weights = {k: t.detach().to("cpu", torch.float16) for k, t in model.state_dict().items()}
    if model.tied:
        del weights["head.weight"]  # the same matrix as embed.weight
    torch.save({"config": config, "weights": weights}, path)


def load(path, device="cpu"):
    """The WordLM that ``save`` wrote, in float32 on ``device``, in eval mode."""
    blob = torch.load(path, map_location="cpu", weights_only=True)
    model = WordLM(**blob["config"])
    weights = {k: t.float() for k, t in blob["weights"].items()}
    if model.tied:
        weights["head.weight"] = weights["embed.weight"]
    model.load_state_dict(weights)
    return model.to(device).eval()
