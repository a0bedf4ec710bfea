"""A character-level language model in PyTorch: vocabulary, stateful training, evaluation, sampling.

Chapter 10 of the book and the ungraded part of the ``char_rnn`` exercise use these pieces
around ``autograder.lab.models.SequenceModel`` (an embedding, a recurrent layer and a linear
read-out). The NumPy references do the parts where NumPy is the right tool: the text is cut
into streams and chunks by ``reference.tbptt_batches``, held-out text is scored by
``reference.temporal_softmax_loss`` and ``reference.perplexity``, and every sampled character
is drawn by ``reference.sample_next``. Training itself uses ``F.cross_entropy`` on the model's
device, so the same code runs on a CPU or a GPU.
"""
from __future__ import annotations

import collections
import math
import numbers

import numpy as np
import torch
import torch.nn.functional as F

from ..reference import _validate as v
from ..reference.charlm import perplexity, temporal_softmax_loss
from ..reference.tbptt import tbptt_batches
from .models import CarriedState, carried_state_scores, draw_continuation, fit

__all__ = ["CharVocab", "train", "evaluate", "unigram_bpc", "surprisal", "sample",
           "hidden_trace"]

LN2 = math.log(2.0)


# ----------------------------------------------------------------------------- vocabulary
class CharVocab:
    """A bijection between characters and the integers 0 .. V-1.

    ``chars`` are the known characters in id order. With ``unknown`` (a single character
    that is not among ``chars``) the vocabulary gets one more id, 0, and ``encode`` maps
    every character it does not know to that id; without it, ``encode`` refuses unknown
    characters with a ValueError.
    """

    def __init__(self, chars, unknown=None):
        chars = list(chars)
        for c in chars:
            if not isinstance(c, str) or len(c) != 1:
                raise ValueError(f"chars: expected single characters, got {c!r}")
        if len(set(chars)) != len(chars):
            dup = [c for c, k in collections.Counter(chars).items() if k > 1]
            raise ValueError(f"chars: duplicated character(s) {dup!r}")
        if unknown is not None:
            if not isinstance(unknown, str) or len(unknown) != 1:
                raise ValueError(f"unknown: expected a single character or None, got {unknown!r}")
            if unknown in chars:
                raise ValueError(f"unknown: {unknown!r} is also one of the known characters")
            chars = [unknown] + chars
        if not chars:
            raise ValueError("chars: the vocabulary is empty")
        self.unknown = unknown
        self.chars = chars
        self.index = {c: i for i, c in enumerate(chars)}

    @classmethod
    def from_text(cls, text, min_count=1, unknown=None):
        """The characters of ``text`` that occur at least ``min_count`` times, sorted by code point.

        Characters rarer than ``min_count`` are left out; give ``unknown`` to map them (and any
        character of a later text that ``text`` lacks) to one shared id.
        """
        if not isinstance(text, str) or not text:
            raise ValueError(f"text: expected a non-empty str, got {_describe_text(text)}")
        min_count = v.positive_int("min_count", min_count)
        counts = collections.Counter(text)
        kept = sorted(c for c, k in counts.items() if k >= min_count)
        if min_count > 1 and unknown is None and len(kept) < len(counts):
            raise ValueError(
                f"unknown: min_count={min_count} leaves out {len(counts) - len(kept)} character(s) "
                "of the text, so an unknown character is needed (e.g. unknown='\\ufffd')")
        return cls(kept, unknown=unknown)

    def __len__(self):
        return len(self.chars)

    def __contains__(self, char):
        return char in self.index

    def __repr__(self):
        unk = "" if self.unknown is None else f", unknown={self.unknown!r}"
        return f"CharVocab(V={len(self)}{unk})"

    @property
    def unknown_id(self):
        """The id unknown characters map to (0), or None when the vocabulary has no unknown."""
        return None if self.unknown is None else 0

    def encode(self, text):
        """str -> int64 array of ids, one per character."""
        if not isinstance(text, str):
            raise ValueError(f"text: expected a str, got {_describe_text(text)}")
        index, unk = self.index, self.unknown_id
        if unk is None:
            for pos, c in enumerate(text):
                if c not in index:
                    raise ValueError(
                        f"text: character {c!r} (U+{ord(c):04X}) at position {pos} is not in the "
                        "vocabulary; build it with unknown=... to map unseen characters to one id")
        return np.fromiter((index.get(c, unk) for c in text), dtype=np.int64, count=len(text))

    def decode(self, ids):
        """A sequence of ids (ints or a 1-D integer array) -> str."""
        arr = np.asarray(ids)
        if arr.size == 0:
            return ""  # an empty list becomes a float array, which the id check would refuse
        return "".join(self.chars[i] for i in v.token_ids("ids", arr, len(self)).tolist())


def _describe_text(text):
    return "an empty str" if text == "" else v.describe(text)


def _check_model(model):
    if not isinstance(model, torch.nn.Module) or getattr(model, "embed", None) is None:
        raise ValueError("model: expected a SequenceModel built with vocab_size=V (token inputs), "
                         f"got {type(model).__name__}")
    return model


def _device(model):
    return next(model.parameters()).device


def _check_vocab_size(model, max_id):
    V = model.embed.num_embeddings
    if max_id >= V:
        raise ValueError(f"ids: id {max_id} is out of range for a model with vocab_size={V}")
    return V


# ----------------------------------------------------------------------------- training
def _next_char_loss(logits, y):
    """Mean cross-entropy of the next character: logits (B, S, V), y (B, S) ids -> scalar."""
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))


def train(model, ids, steps, batch_size=32, seq_len=64, lr=2e-3, clip_norm=1.0, val_ids=None,
          eval_every=None, eval_batch_size=8, eval_seq_len=256, callback=None, callback_at=()):
    """Train a token-input SequenceModel as a character-level language model; returns a ``models.History``.

    Stateful truncated BPTT: ``ids`` is cut by ``reference.tbptt_batches`` into ``batch_size``
    parallel streams and consecutive chunks of ``seq_len`` characters. Step k trains on chunk
    k mod K; the state left by chunk k (detached, so gradients stop at the chunk boundary)
    is the initial state of chunk k+1, and the state restarts at zero when the text is used up
    and the next pass begins (``models.fit`` with a ``models.CarriedState`` loss). Every step
    takes one Adam step after clipping the global gradient norm to ``clip_norm`` (None: no
    clipping); a non-finite loss stops the run before its update.

    - val_ids, eval_every: score val_ids with ``evaluate`` (cut into eval_batch_size streams
      of eval_seq_len chunks) every eval_every steps and at the end; the History's val_step
      and val hold the steps and the bits per character
    - callback(step, model): called after ``step`` updates for every step in callback_at
      (0 means before the first update), e.g. to take samples during training
    History.loss is in nats per character (divide by ln 2 for bits). The model stays on its
    device; batches are moved there.
    """
    model = _check_model(model)
    ids = v.token_ids("ids", ids, min_len=2)
    steps = v.positive_int("steps", steps)
    B = v.positive_int("batch_size", batch_size)
    S = v.positive_int("seq_len", seq_len)
    lr = v.real("lr", lr, low=0.0, strict_low=True)
    if clip_norm is not None:
        clip_norm = v.real("clip_norm", clip_norm, low=0.0, strict_low=True)
    if val_ids is not None:
        eb = v.positive_int("eval_batch_size", eval_batch_size)
        es = v.positive_int("eval_seq_len", eval_seq_len)
        v.chunkable("val_ids", v.token_ids("val_ids", val_ids, min_len=2), eb, es,
                    names=("eval_batch_size", "eval_seq_len"))
    if eval_every is not None:
        eval_every = v.positive_int("eval_every", eval_every)
        if val_ids is None:
            raise ValueError("eval_every: given without val_ids, so there is nothing to evaluate")
    v.function("callback", callback, allow_none=True, signature="(step, model)")
    callback_at = set(callback_at)
    for s in callback_at:
        if isinstance(s, bool) or not isinstance(s, numbers.Integral) or not 0 <= s <= steps:
            raise ValueError(f"callback_at: expected steps in [0, {steps}], got {s!r}")
    v.chunkable("ids", ids, B, S)
    _check_vocab_size(model, int(ids.max()))

    device = _device(model)
    xs, ys = (torch.as_tensor(a[..., 0], dtype=torch.long, device=device) for a in tbptt_batches(ids, B, S))
    K = xs.shape[0]                                               # chunks per pass: (K, B, S) each

    def after_step(step, model, hist):
        if eval_every is not None and (step % eval_every == 0 or step == steps):
            hist.val_step.append(step)
            hist.val.append(evaluate(model, val_ids, eval_batch_size, eval_seq_len)["bpc"])
        if callback is not None and step in callback_at:
            callback(step, model)

    if callback is not None and 0 in callback_at:
        callback(0, model)
    hist = fit(model, lambda step: (xs[step % K], ys[step % K]), CarriedState(_next_char_loss, K),
               steps, lr=lr, clip_norm=clip_norm, after_step=after_step)
    model.eval()
    return hist


# ----------------------------------------------------------------------------- evaluation
@torch.no_grad()
def evaluate(model, ids, batch_size=8, seq_len=256):
    """Score held-out text: mean negative log-likelihood per character, bits per character, perplexity.

    The text is cut into ``batch_size`` streams by ``reference.tbptt_batches`` and read chunk
    after chunk with the state carried over, as in training; each chunk's logits are scored
    by ``reference.temporal_softmax_loss`` in float64. The (L-1) mod (batch_size*seq_len)
    last characters are not scored.
    Returns a dict: nll (nats per character), bpc, perplexity, chars (how many were scored).
    """
    model = _check_model(model)
    _check_vocab_size(model, int(v.token_ids("ids", ids, min_len=2).max()))
    losses, chars = carried_state_scores(
        model, ids, batch_size, seq_len,
        lambda logits, y: temporal_softmax_loss(logits.double().cpu().numpy(), y.cpu().numpy())[0])
    nll = sum(losses) / len(losses)  # every chunk has B*S steps: the mean of means is the mean
    return {"nll": nll, "bpc": nll / LN2, "perplexity": perplexity(nll), "chars": chars}


def unigram_bpc(train_ids, eval_ids, vocab_size, alpha=1.0):
    """Bits per character of the unigram baseline: every character predicted with its frequency
    in ``train_ids`` (add-``alpha`` smoothing, so that no character of ``eval_ids`` gets
    probability zero), ignoring all context. Compare with the uniform baseline log2(vocab_size).
    """
    V = v.positive_int("vocab_size", vocab_size)
    train_ids = v.token_ids("train_ids", train_ids, V)
    eval_ids = v.token_ids("eval_ids", eval_ids, V)
    alpha = v.real("alpha", alpha, low=0.0, strict_low=True)
    counts = np.bincount(train_ids, minlength=V) + alpha
    log2p = np.log2(counts / counts.sum())
    return float(-log2p[eval_ids].mean())


@torch.no_grad()
def surprisal(model, ids):
    """Bits the model spends on each character of ``ids[1:]`` given every character before it.

    ``ids`` is read as one stream from zero state. Returns a float64 array of shape (T-1,);
    its mean is the bits per character of this passage.
    """
    model = _check_model(model)
    ids = v.token_ids("ids", ids, min_len=2)
    _check_vocab_size(model, int(ids.max()))
    was_training = model.training
    model.eval()
    x = torch.as_tensor(ids, device=_device(model))
    logits, _ = model(x[None, :-1])
    nll = F.cross_entropy(logits[0].double(), x[1:], reduction="none")
    model.train(was_training)
    return nll.cpu().numpy() / LN2


# ----------------------------------------------------------------------------- sampling and states
@torch.no_grad()
def sample(model, vocab, prime, n, temperature=1.0, rng=0):
    """Generate ``n`` characters after reading ``prime``; returns the generated str (without prime).

    The model reads the prime to build its state; then, n times, the logits of the last step
    go through ``reference.sample_next`` (softmax of logits / temperature; temperature 0 is
    argmax) and the drawn character is fed back in. rng: a numpy Generator or an int seed,
    so that a seed gives the same text on every run.
    """
    model = _check_model(model)
    if not isinstance(vocab, CharVocab):
        raise ValueError(f"vocab: expected a CharVocab, got {v.describe(vocab)}")
    if len(vocab) != model.embed.num_embeddings:
        raise ValueError(f"vocab: has {len(vocab)} characters but the model was built with "
                         f"vocab_size={model.embed.num_embeddings}")
    if not isinstance(prime, str) or not prime:
        raise ValueError(f"prime: expected a non-empty str to start from, got {_describe_text(prime)}")
    x = torch.as_tensor(vocab.encode(prime), device=_device(model))[None]
    return vocab.decode(draw_continuation(model, x, n, temperature, rng))


@torch.no_grad()
def hidden_trace(model, ids):
    """The top layer's state after every character of ``ids``, read as one stream from zero state.

    Returns (h, c): float64 arrays of shape (T, H); c is the LSTM cell state (None for an RNN or
    GRU, which have no cell). Used to look for units that track something in the text.
    """
    model = _check_model(model)
    ids = v.token_ids("ids", ids)
    _check_vocab_size(model, int(ids.max()))
    was_training = model.training
    model.eval()
    x = model.embed(torch.as_tensor(ids, device=_device(model))[None])
    state, hs, cs = None, [], []
    for t in range(x.shape[1]):
        _, state = model.rnn(x[:, t : t + 1], state)
        if isinstance(state, tuple):
            hs.append(state[0][-1, 0])
            cs.append(state[1][-1, 0])
        else:
            hs.append(state[-1, 0])
    model.train(was_training)
    h = torch.stack(hs).double().cpu().numpy()
    return h, (torch.stack(cs).double().cpu().numpy() if cs else None)
