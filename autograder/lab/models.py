"""Small PyTorch sequence models and a training loop for the book's experiments.

Device-agnostic: pass ``device="cuda"`` where there is one. The recurrent layers are
PyTorch's own (nn.RNN / nn.LSTM / nn.GRU); the references in ``autograder.reference`` are
proved equal to them in tests/, so experiments run at PyTorch's speed.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from ..reference import _validate as v
from ..reference.init import orthogonal

CELLS = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}
GATES = {"rnn": 1, "lstm": 4, "gru": 3}
SCHEMES = ("default", "normal", "orthogonal", "identity")
OPTIMIZERS = {"adam": torch.optim.Adam, "sgd": torch.optim.SGD}


def init_recurrent_(layer, scheme, std=1.0, gain=1.0, seed=0):
    """Re-initialize the recurrent matrices W_hh of a torch RNN/LSTM/GRU layer in place.

    scheme:
    - "default": leave PyTorch's U(-1/sqrt(H), 1/sqrt(H))
    - "normal": N(0, std^2) entries (std=1 reproduces the exploding setting of chapter 4)
    - "orthogonal": one orthogonal (H, H) block per gate, times gain (autograder.reference.orthogonal)
    - "identity": identity per gate times gain, with zero biases (IRNN, Le et al. 2015)
    """
    v.one_of("scheme", scheme, SCHEMES)
    cell = type(layer).__name__.lower()
    G = GATES[cell]
    rng = v.generator("seed", seed)
    with torch.no_grad():
        for name, p in layer.named_parameters():
            if not name.startswith("weight_hh"):
                if scheme == "identity" and name.startswith("bias"):
                    p.zero_()
                continue
            H = p.shape[1]
            if scheme == "default":
                continue
            if scheme == "normal":
                w = rng.normal(0.0, std, size=(G * H, H))
            elif scheme == "orthogonal":
                w = np.concatenate([orthogonal((H, H), gain=gain, rng=rng) for _ in range(G)])
            else:  # identity
                w = np.concatenate([gain * np.eye(H)] * G)
            p.copy_(torch.as_tensor(w, dtype=p.dtype))
    return layer


class SequenceModel(nn.Module):
    """A recurrent layer (rnn / lstm / gru) followed by a linear read-out at every step.

    Inputs to forward: x (N, T, D) float, or (N, T) int64 token ids when ``vocab_size`` is set
    (an embedding is applied first); state is None or the layer's state.
    Returns (y (N, T, O), state); use y[:, -1] for many-to-one tasks.
    """

    def __init__(self, cell, input_size, hidden_size, output_size, vocab_size=None, num_layers=1,
                 dropout=0.0):
        super().__init__()
        v.one_of("cell", cell, sorted(CELLS))
        self.cell = cell
        self.embed = nn.Embedding(vocab_size, input_size) if vocab_size else None
        self.rnn = CELLS[cell](input_size, hidden_size, num_layers=num_layers, batch_first=True,
                               dropout=dropout if num_layers > 1 else 0.0)
        self.head = nn.Linear(hidden_size, output_size)

    def forward(self, x, state=None):
        if self.embed is not None:
            x = self.embed(x)
        h, state = self.rnn(x, state)
        return self.head(h), state


def detach_state(state):
    """Cut the graph at a chunk boundary (truncated BPTT): same values, no history."""
    if state is None:
        return None
    if isinstance(state, tuple):
        return tuple(s.detach() for s in state)
    return state.detach()


def global_grad_norm(parameters):
    """L2 norm of all gradients together (the quantity that clip_grad_norm_ compares)."""
    norms = [p.grad.detach().norm() for p in parameters if p.grad is not None]
    return float(torch.linalg.vector_norm(torch.stack(norms))) if norms else 0.0


@dataclass
class History:
    """What a training run recorded at every step."""
    loss: list = field(default_factory=list)
    grad_norm: list = field(default_factory=list)  # before clipping

    def diverged(self):
        """True when a loss or a gradient norm became inf or nan."""
        return any(not math.isfinite(v) for v in self.loss + self.grad_norm)


def fit(model, batches, loss_fn, steps, lr=1e-3, clip_norm=None, clip_value=None,
        optimizer="adam", stop_on_nan=True):
    """Train ``model`` for ``steps`` steps and return a History.

    - batches: callable step -> (x, y) tensors on the model's device
    - loss_fn: callable (model, x, y) -> scalar loss tensor
    - clip_norm / clip_value: torch.nn.utils.clip_grad_norm_ / clip_grad_value_ when given
    - optimizer: "adam" or "sgd"
    - stop_on_nan: stop at the first non-finite loss (the rest of the run would be nan too)
    """
    v.one_of("optimizer", optimizer, OPTIMIZERS)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = OPTIMIZERS[optimizer](params, lr=lr)
    hist = History()
    model.train()
    for step in range(steps):
        x, y = batches(step)
        loss = loss_fn(model, x, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        hist.loss.append(float(loss.detach()))
        hist.grad_norm.append(global_grad_norm(params))
        if stop_on_nan and hist.diverged():
            break
        if clip_norm is not None:
            torch.nn.utils.clip_grad_norm_(params, clip_norm)
        if clip_value is not None:
            torch.nn.utils.clip_grad_value_(params, clip_value)
        opt.step()
    return hist


def last_step_mse(model, x, y):
    """Mean squared error of the read-out at the last step: model(x)[0][:, -1] (B, 1) vs y (B, 1)."""
    return nn.functional.mse_loss(model(x)[0][:, -1], y)
