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

from ..reference import _validate as v

RESETS = ("after", "before")
UPDATES = ("old", "new")


def _check_shapes(x, h0, Wx, Wh, bx, bh):
    """Check the tensors against x (N, T, D), h0 (N, H) and the weights; returns H."""
    dims = {}
    v.tensor("x", x, ("N", "T", "D"), dims)
    for name, t, spec in (("h0", h0, ("N", "H")), ("Wx", Wx, ("D", "3H")), ("Wh", Wh, ("H", "3H")),
                          ("bx", bx, ("3H",)), ("bh", bh, ("3H",))):
        v.tensor(name, t, spec, dims, like=x)
    return dims["H"]


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
    v.one_of("reset", reset, RESETS)
    v.one_of("update", update, UPDATES)
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
        v.one_of("reset", reset, RESETS)
        v.one_of("update", update, UPDATES)
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
