"""Experiments of chapter 11 (regularizing recurrent networks): dropout on the carried state,
what a linear read-out can recover, and layer normalization's effect on pre-activations.

A GRU cell is run step by step so that a dropout mask can be put on the state it carries
(``gru_states_with_state_dropout``, ``StateDropoutGRU``); ``linear_recoverability`` measures
how much of the first input a linear read-out can still recover from each state; and
``rnn_preactivation_stats`` compares the statistics of a vanilla RNN's pre-activations with
and without layer normalization.

Everything is seeded and batch first; tensors are float32 on the device the caller chooses.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..reference import _validate as v


def gru_cell_from_layer(layer):
    """An nn.GRUCell holding the weights of a one-layer nn.GRU (same r, z, n layout)."""
    cell = nn.GRUCell(layer.input_size, layer.hidden_size).to(layer.weight_hh_l0.device)
    with torch.no_grad():
        cell.weight_ih.copy_(layer.weight_ih_l0)
        cell.weight_hh.copy_(layer.weight_hh_l0)
        cell.bias_ih.copy_(layer.bias_ih_l0)
        cell.bias_hh.copy_(layer.bias_hh_l0)
    return cell


MASK_MODES = ("none", "per_step", "fixed", "variational")


def gru_states_with_state_dropout(cell, x, p, mode, seed=0):
    """Run a GRUCell over x with dropout on the hidden state it carries from step to step.

    - cell: nn.GRUCell with hidden size H
    - x: (N, T, D) tensor
    - p: drop probability; kept units are scaled by 1 / (1 - p) (inverted dropout)
    - mode: where the mask goes and how often it is drawn (MASK_MODES):
      "none" (no mask); "per_step" (a fresh mask m_t on the carried state at every step, the
      naive way); "fixed" (one mask m per sequence on the carried state); "variational" (one
      mask m per sequence on h_{t-1} where it enters the recurrent weights, Gal and
      Ghahramani's placement: the gates and the candidate read m * h_{t-1} / (1 - p), the
      interpolation z * h_{t-1} keeps h_{t-1} itself, so the state is never rescaled)
    - seed: an int, or a torch.Generator (on the CPU) that draws the masks
    With "per_step" and "fixed" the state passed to step t + 1 is m_t * h_t / (1 - p), where
    h_t = cell(x_t, previous state); with "none" and "variational" it is h_t.
    Returns h (N, T, H): the states the next step and a read-out see.
    Differentiable with respect to the cell's parameters and x.
    """
    v.one_of("mode", mode, MASK_MODES)
    v.probability("p", p)
    gen = v.torch_generator("seed", seed)
    N, T, _ = x.shape
    H = cell.hidden_size

    def draw():
        m = (torch.rand(N, H, generator=gen) >= p).to(x.dtype) / (1.0 - p)
        return m.to(x.device)

    fixed = draw() if mode in ("fixed", "variational") else None
    h = torch.zeros(N, H, dtype=x.dtype, device=x.device)
    out = []
    for t in range(T):
        if mode == "variational":
            h = gru_step_reading(cell, x[:, t], h, h * fixed)
        else:
            h = cell(x[:, t], h)
        if mode == "per_step":
            h = h * draw()
        elif mode == "fixed":
            h = h * fixed
        out.append(h)
    return torch.stack(out, dim=1)


def gru_step_reading(cell, x_t, h, h_read):
    """One step of a GRUCell whose gates and candidate read ``h_read`` instead of ``h``.

    - cell: nn.GRUCell (PyTorch's r, z, n layout and convention h' = (1 - z) n + z h)
    - x_t: (N, D); h: (N, H), the carried state; h_read: (N, H), what the recurrent weights see
    Returns h' (N, H) = (1 - z) * n + z * h with r, z, n computed from x_t and h_read. With
    h_read = h this is cell(x_t, h); a dropout mask on h_read is Gal and Ghahramani's placement.
    """
    r_i, z_i, n_i = nn.functional.linear(x_t, cell.weight_ih, cell.bias_ih).chunk(3, dim=1)
    r_h, z_h, n_h = nn.functional.linear(h_read, cell.weight_hh, cell.bias_hh).chunk(3, dim=1)
    r = torch.sigmoid(r_i + r_h)
    z = torch.sigmoid(z_i + z_h)
    n = torch.tanh(n_i + r * n_h)
    return (1 - z) * n + z * h


class StateDropoutGRU(nn.Module):
    """A GRU with dropout on its carried state in training mode, and a linear read-out.

    GRUCell(input_size, hidden_size) run by ``gru_states_with_state_dropout`` with
    (p, mode), mode one of MASK_MODES, while ``self.training``, and without any mask in eval mode.
    ``update_bias`` (float or None) sets the z-gate part of both biases so that their sum
    equals it: a positive value makes the fresh cell keep its state (PyTorch's z is the kept
    fraction). The masks come from a torch.Generator seeded with ``seed``.
    forward(x (N, T, D)) -> (y (N, T, O), h_T (N, H)), like SequenceModel.
    """

    def __init__(self, input_size, hidden_size, output_size, p=0.0, mode="none",
                 update_bias=None, seed=0):
        super().__init__()
        v.probability("p", p)
        v.one_of("mode", mode, MASK_MODES)
        torch.manual_seed(v.integer("seed", seed))  # the initialization; the masks get their own stream
        self.cell = nn.GRUCell(input_size, hidden_size)
        self.head = nn.Linear(hidden_size, output_size)
        self.p, self.mode = p, mode
        self.gen = v.torch_generator("seed", seed)
        if update_bias is not None:
            H = hidden_size
            with torch.no_grad():  # gate order r, z, n
                self.cell.bias_ih[H:2 * H].fill_(update_bias / 2)
                self.cell.bias_hh[H:2 * H].fill_(update_bias / 2)

    def forward(self, x, state=None):
        mode = self.mode if self.training else "none"
        h = gru_states_with_state_dropout(self.cell, x, self.p, mode, seed=self.gen)
        return self.head(h), h[:, -1]


def linear_recoverability(h, target, n_fit, ridge=1e-3):
    """How much of ``target`` a linear read-out of ``h`` recovers: held-out R^2 per step.

    - h: (N, T, H) array or tensor of states; target: (N,) values
    - n_fit: the first n_fit sequences fit a ridge regression (with intercept) from h_t to the
      target, separately for every t; the other N - n_fit sequences score it
    Returns an array (T,) of R^2 = 1 - MSE / Var(target) on the held-out sequences (1: the
    target is fully recoverable, 0: no better than predicting its mean; can be slightly < 0).
    """
    h = h.detach().cpu().numpy() if isinstance(h, torch.Tensor) else np.asarray(h)
    y = np.asarray(target, dtype=float).reshape(-1)
    N, T, H = h.shape
    if not 0 < n_fit < N:
        raise ValueError(f"n_fit: expected 0 < n_fit < N = {N}, got {n_fit!r}")
    y_fit, y_test = y[:n_fit], y[n_fit:]
    r2 = np.empty(T)
    for t in range(T):
        A = np.concatenate([h[:, t].astype(float), np.ones((N, 1))], axis=1)
        A_fit = A[:n_fit]
        w = np.linalg.solve(A_fit.T @ A_fit + ridge * np.eye(H + 1), A_fit.T @ y_fit)
        r2[t] = 1.0 - np.mean((A[n_fit:] @ w - y_test) ** 2) / np.var(y_test)
    return r2


def rnn_preactivation_stats(T, hidden_size, gain, layer_norm, activation="tanh", batch_size=256,
                            seed=0):
    """Statistics of an untrained RNN's pre-activations over time, with or without layer norm.

    h_t = phi(a_t) with a_t = W_hh h_{t-1} + W_xh x_t, or, with layer_norm, h_t = phi(LN(a_t))
    where LN subtracts each example's mean over the H units and divides by their standard
    deviation (gain 1, bias 0, as LayerNorm is initialized). phi is tanh or ReLU;
    W_hh ~ N(0, gain^2 / H), W_xh ~ N(0, 1), x_t ~ N(0, 1) scalar, h_0 = 0.
    Returns a dict of arrays (T,): "std" (the standard deviation over the H units of what
    enters phi, averaged over the batch) and "saturated" (the fraction of units with
    |h_t| > 0.99: tanh's flat region; for ReLU the fraction of units above 0.99).
    ``seed`` (an int or a CPU torch.Generator) draws W_hh, W_xh and x.
    """
    v.one_of("activation", activation, ("tanh", "relu"))
    phi = torch.tanh if activation == "tanh" else torch.relu
    g = v.torch_generator("seed", seed)
    H = hidden_size
    W_hh = torch.randn(H, H, generator=g, dtype=torch.float64) * gain / np.sqrt(H)
    W_xh = torch.randn(1, H, generator=g, dtype=torch.float64)
    x = torch.randn(batch_size, T, 1, generator=g, dtype=torch.float64)
    h = torch.zeros(batch_size, H, dtype=torch.float64)
    std, sat = np.empty(T), np.empty(T)
    for t in range(T):
        a = h @ W_hh.T + x[:, t] @ W_xh
        if layer_norm:
            a = nn.functional.layer_norm(a, (H,))
        h = phi(a)
        std[t] = float(a.std(dim=1).mean())
        sat[t] = float((h.abs() > 0.99).double().mean())
    return {"std": std, "saturated": sat}
