"""GRU conventions for the experiments of chapter 7 (PyTorch, batch first, differentiable).

The GRU has two conventions that differ between papers and libraries:

- where the reset gate acts, ``reset``:
  - ``"after"``: n = tanh(x Wx_n + bx_n + r * (h Wh_n + bh_n)), r applied after the matrix
    product (PyTorch ``nn.GRU``, cuDNN, Keras with ``reset_after=True``);
  - ``"before"``: n = tanh(x Wx_n + bx_n + (r * h) Wh_n + bh_n), r applied to h before the
    product (Cho et al. 2014, Keras with ``reset_after=False``);
- which state the update gate weights, ``update``:
  - ``"old"``: h' = (1 - z) * n + z * h, z keeps the old state (Cho et al. 2014, PyTorch, Keras);
  - ``"new"``: h' = (1 - z) * h + z * n, z admits the candidate (Chung et al. 2014, Olah's blog).

Everything else follows ``autograder.reference.gru``: fused weights Wx (D, 3H), Wh (H, 3H) and
biases bx, bh (3H,) with the blocks in the order r, z, n. With ``reset="after", update="old"``
the functions here compute exactly ``gru_forward``. They exist to compare conventions; the
graded exercise is the reference convention.
"""
from __future__ import annotations

import math

import torch
from torch import nn

RESETS = ("after", "before")
UPDATES = ("old", "new")


def _check_conventions(reset, update):
    if reset not in RESETS:
        raise ValueError(f"reset: expected one of {RESETS}, got {reset!r}")
    if update not in UPDATES:
        raise ValueError(f"update: expected one of {UPDATES}, got {update!r}")


def _check_shapes(x, h0, Wx, Wh, bx, bh):
    if x.dim() != 3:
        raise ValueError(f"x: expected a 3-D (N, T, D) tensor, got shape {tuple(x.shape)}")
    N, _, D = x.shape
    if h0.dim() != 2 or h0.shape[0] != N:
        raise ValueError(f"h0: expected shape (N, H) with N = {N}, got {tuple(h0.shape)}")
    H = h0.shape[1]
    expected = {"Wx": (D, 3 * H), "Wh": (H, 3 * H), "bx": (3 * H,), "bh": (3 * H,)}
    for name, t in (("Wx", Wx), ("Wh", Wh), ("bx", bx), ("bh", bh)):
        if tuple(t.shape) != expected[name]:
            raise ValueError(f"{name}: expected shape {expected[name]}, got {tuple(t.shape)}")
    return H


def gru_variant_forward(x, h0, Wx, Wh, bx, bh, reset="after", update="old"):
    """Run a GRU in one of the four conventions over a whole sequence.

    Inputs (torch tensors, or arrays that torch.as_tensor accepts; differentiable when tensors
    with requires_grad are given):
    - x: (N, T, D) input sequence
    - h0: (N, H) initial hidden state
    - Wx: (D, 3H), Wh: (H, 3H), bx: (3H,), bh: (3H,), gate blocks in the order r, z, n
    - reset: "after" (PyTorch, cuDNN) or "before" (Cho et al. 2014)
    - update: "old" (h' = (1 - z) n + z h, PyTorch) or "new" (h' = (1 - z) h + z n, Chung et al.)
    Returns h of shape (N, T, H), every hidden state h_1..h_T.
    """
    _check_conventions(reset, update)
    x, h0, Wx, Wh, bx, bh = (torch.as_tensor(a) for a in (x, h0, Wx, Wh, bx, bh))
    H = _check_shapes(x, h0, Wx, Wh, bx, bh)
    ax = x @ Wx + bx  # (N, T, 3H): the input part of every step at once
    Wh_rz, Wh_n = Wh[:, : 2 * H], Wh[:, 2 * H :]
    bh_rz, bh_n = bh[: 2 * H], bh[2 * H :]
    h, hs = h0, []
    for t in range(x.shape[1]):
        rz = torch.sigmoid(ax[:, t, : 2 * H] + h @ Wh_rz + bh_rz)
        r, z = rz[:, :H], rz[:, H:]
        if reset == "after":
            n = torch.tanh(ax[:, t, 2 * H :] + r * (h @ Wh_n + bh_n))
        else:
            n = torch.tanh(ax[:, t, 2 * H :] + (r * h) @ Wh_n + bh_n)
        h = (1 - z) * n + z * h if update == "old" else (1 - z) * h + z * n
        hs.append(h)
    return torch.stack(hs, dim=1)


class GRUVariant(nn.Module):
    """A trainable GRU layer in any of the four conventions (batch first, h0 = 0).

    Parameters Wx (D, 3H), Wh (H, 3H), bx, bh (3H,), blocks r, z, n, initialized like
    nn.GRU: uniform in (-1/sqrt(H), 1/sqrt(H)), from torch's global generator.
    forward(x (N, T, D)) -> h (N, T, H).
    """

    def __init__(self, input_size, hidden_size, reset="after", update="old", dtype=None, device=None):
        super().__init__()
        _check_conventions(reset, update)
        if input_size < 1 or hidden_size < 1:
            raise ValueError(f"input_size, hidden_size: expected positive, got {input_size}, {hidden_size}")
        self.reset, self.update = reset, update
        D, H = input_size, hidden_size
        s = 1.0 / math.sqrt(H)
        kw = dict(dtype=dtype, device=device)
        self.Wx = nn.Parameter(torch.empty(D, 3 * H, **kw).uniform_(-s, s))
        self.Wh = nn.Parameter(torch.empty(H, 3 * H, **kw).uniform_(-s, s))
        self.bx = nn.Parameter(torch.empty(3 * H, **kw).uniform_(-s, s))
        self.bh = nn.Parameter(torch.empty(3 * H, **kw).uniform_(-s, s))

    def forward(self, x):
        h0 = x.new_zeros(x.shape[0], self.Wh.shape[0])
        return gru_variant_forward(x, h0, self.Wx, self.Wh, self.bx, self.bh, self.reset, self.update)
