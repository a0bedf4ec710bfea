"""Character-level language model: the per-step softmax loss, perplexity and sampling (NumPy)."""
from __future__ import annotations

import math

import numpy as np

from . import _validate as v


def temporal_softmax_loss(logits, targets, mask=None):
    """Mean cross-entropy over all unmasked time steps of a batch of sequences.

    Inputs:
    - logits: (N, T, V) unnormalized scores for each step
    - targets: (N, T) integer targets in [0, V)
    - mask: (N, T) bool, True where a step counts; None counts every step
    Returns (loss, dlogits): the mean negative log-likelihood over the counted steps (a float)
    and its gradient with respect to logits, (N, T, V); masked steps get zero gradient.
    """
    dims = {}
    v.array("logits", logits, ("N", "T", "V"), dims)
    v.array("targets", targets, ("N", "T"), dims, dtype="int")
    v.indices("targets", targets, dims["V"])
    if mask is None:
        mask = np.ones(targets.shape, dtype=bool)
    v.array("mask", mask, ("N", "T"), dims, dtype=np.bool_)
    count = int(mask.sum())
    if count == 0:
        raise ValueError("mask: no step is unmasked, so the mean loss is undefined")
    shifted = logits - logits.max(axis=2, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=2, keepdims=True))
    nll = -np.take_along_axis(log_p, targets[..., None], axis=2)[..., 0]  # (N, T)
    loss = float(nll[mask].sum() / count)
    dlogits = np.exp(log_p)
    np.put_along_axis(dlogits, targets[..., None],
                      np.take_along_axis(dlogits, targets[..., None], axis=2) - 1.0, axis=2)
    dlogits *= mask[..., None] / count
    return loss, dlogits


def perplexity(mean_nll):
    """exp(mean negative log-likelihood in nats): the effective number of equally likely choices.

    Bits per character is mean_nll / log(2).
    """
    mean_nll = v.real("mean_nll", mean_nll)
    try:
        return math.exp(mean_nll)
    except OverflowError:  # mean_nll > ~709.78 (a diverged model): the float answer is inf
        return math.inf


def sample_next(logits, temperature, rng):
    """Draw the next token id from softmax(logits / temperature).

    Inputs:
    - logits: (V,) unnormalized scores
    - temperature: >= 0; 0 means greedy (argmax), < 1 sharpens, > 1 flattens
    - rng: numpy Generator (or an int seed)
    Returns an int in [0, V).
    """
    v.array("logits", logits, ("V",), {})
    temperature = v.real("temperature", temperature, low=0.0)
    rng = v.generator("rng", rng)
    if temperature == 0.0:
        return int(np.argmax(logits))
    z = logits / temperature
    p = np.exp(z - z.max())
    return int(rng.choice(len(logits), p=p / p.sum()))
