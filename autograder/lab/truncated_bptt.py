"""Experiments of chapter 5 (truncated BPTT): a stateful chunked trainer and its evaluation.

The chapter trains on the delayed-recall task (``data.delayed_recall``), which asks for the
input seen ``lag`` steps ago, so its only dependency has a known, fixed length. Training it with
truncated BPTT over chunks of length k shows what the truncation window can and cannot learn:
with k <= lag no chunk ever contains both an input and the output that depends on it, so no
gradient connects them.

Shapes are batch first: (B, T, D) for inputs, (B, T, O) for targets, (B, T) for masks.
"""
from __future__ import annotations

import torch

from ..reference import _validate as v
from .models import CarriedState, fit


def masked_mse(out, y, mask):
    """Mean squared error over the positions where ``mask`` is True.

    out, y: (B, T, O) tensors; mask: (B, T) bool tensor. Returns a scalar tensor; a chunk with
    no valid position gives 0 (and a zero gradient), not nan.
    """
    m = mask.unsqueeze(-1).to(out.dtype)
    n = m.sum() * out.shape[-1]
    return ((out - y) ** 2 * m).sum() / n.clamp(min=1.0)


def train_stateful(model, x, y, k, mask=None, lr=1e-3, optimizer="adam", clip_norm=None,
                   loss_fn=masked_mse, epochs=1):
    """Truncated BPTT over long streams: one update per chunk of ``k`` steps, state carried over.

    The streams are cut into consecutive chunks along the time axis. The hidden state left by
    chunk j is the initial state of chunk j + 1 (stateful training), detached so that the
    backward pass of chunk j + 1 stops at its first step: ``models.fit`` with a
    ``models.CarriedState`` loss. Each epoch starts again from a zero state at the beginning
    of the streams.

    Inputs:
    - model: a ``models.SequenceModel`` (or any module with forward(x, state) -> (out, state))
    - x: (B, T, D) tensor, y: (B, T, O) tensor, on the model's device and dtype
    - k: chunk (truncation) length; a last chunk shorter than k is used as it is
    - mask: (B, T) bool tensor of the positions that count in the loss (all when None)
    - lr, optimizer ("adam" or "sgd"), clip_norm: as in ``models.fit``
    - loss_fn: callable (out, y, mask) -> scalar tensor
    - epochs: passes over the streams
    Returns a ``models.History`` with one loss and one (pre-clipping) gradient norm per chunk;
    it stops early, as ``fit`` does, at a non-finite loss.
    """
    k = v.positive_int("k", k)
    epochs = v.positive_int("epochs", epochs)
    if x.dim() != 3 or y.dim() != 3 or x.shape[:2] != y.shape[:2]:
        raise ValueError(f"x, y: expected (B, T, D) and (B, T, O) tensors, got {tuple(x.shape)} "
                         f"and {tuple(y.shape)}")
    if mask is None:
        mask = torch.ones(x.shape[:2], dtype=torch.bool, device=x.device)
    starts = range(0, x.shape[1], k)

    def chunk(step):
        t = starts[step % len(starts)]
        return x[:, t:t + k], y[:, t:t + k], mask[:, t:t + k]

    return fit(model, chunk, CarriedState(loss_fn, len(starts)), epochs * len(starts), lr=lr,
               clip_norm=clip_norm, optimizer=optimizer)


@torch.no_grad()
def evaluate_stateful(model, x, y, mask=None, loss_fn=masked_mse):
    """Loss of ``model`` run over whole streams from a zero state (no truncation needed forward).

    Running the streams in one call gives the same outputs as running them chunk by chunk with
    the state carried over, so this is the stateful model's test loss.
    Inputs: x (B, T, D), y (B, T, O), mask (B, T) bool or None. Returns a float.
    """
    model.eval()
    if mask is None:
        mask = torch.ones(x.shape[:2], dtype=torch.bool, device=x.device)
    out, _ = model(x)
    return float(loss_fn(out, y, mask))
