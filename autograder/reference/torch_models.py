"""PyTorch counterparts of the reference sequence models (device-agnostic, batch first).

Same weight layout as the NumPy reference (Wx (D, G*H), Wh (H, G*H)), so the same arrays,
turned into tensors on any device, give the same hidden states. ``LSTMCellFunction`` is an
LSTM step with a hand-written backward; the ``*_module_from_weights`` helpers build the
matching torch.nn layer, for comparing against cuDNN or PyTorch's own kernels.
"""
from __future__ import annotations

import torch
from torch import nn

from . import _validate as v


def _check_lstm_step(x, h, c, Wx, Wh, b):
    dims = {}
    v.tensor("x", x, ("N", "D"), dims)
    for name, t, spec in (("h", h, ("N", "H")), ("c", c, ("N", "H")), ("Wx", Wx, ("D", "4H")),
                          ("Wh", Wh, ("H", "4H")), ("b", b, ("4H",))):
        v.tensor(name, t, spec, dims, like=x)


class LSTMCellFunction(torch.autograd.Function):
    """One LSTM step, i, f, g, o gate order, with a hand-written backward (no autograd inside).

    forward(x (N, D), h (N, H), c (N, H), Wx (D, 4H), Wh (H, 4H), b (4H,)) -> (h_next, c_next)
    Works on CPU and CUDA, in float32 and float64. Use as ``LSTMCellFunction.apply(...)``.
    """

    @staticmethod
    def forward(ctx, x, h, c, Wx, Wh, b):
        _check_lstm_step(x, h, c, Wx, Wh, b)
        H = h.shape[1]
        a = torch.addmm(b, x, Wx).addmm_(h, Wh)  # (N, 4H) in two fused GEMMs
        i = torch.sigmoid(a[:, :H])
        f = torch.sigmoid(a[:, H : 2 * H])
        g = torch.tanh(a[:, 2 * H : 3 * H])
        o = torch.sigmoid(a[:, 3 * H :])
        c_next = torch.addcmul(f * c, i, g)
        tanh_c = torch.tanh(c_next)
        h_next = o * tanh_c
        ctx.save_for_backward(x, h, c, Wx, Wh, i, f, g, o, tanh_c)
        return h_next, c_next

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, dh_next, dc_next):
        x, h, c, Wx, Wh, i, f, g, o, tanh_c = ctx.saved_tensors
        if dh_next is None:
            dh_next = torch.zeros_like(h)
        if dc_next is None:
            dc_next = torch.zeros_like(c)
        dc = dc_next + dh_next * o * (1 - tanh_c * tanh_c)
        da = torch.cat([
            dc * g * i * (1 - i),
            dc * c * f * (1 - f),
            dc * i * (1 - g * g),
            dh_next * tanh_c * o * (1 - o),
        ], dim=1)
        need = ctx.needs_input_grad
        dx = da @ Wx.t() if need[0] else None
        dh = da @ Wh.t() if need[1] else None
        dc_prev = dc * f if need[2] else None
        dWx = x.t() @ da if need[3] else None
        dWh = h.t() @ da if need[4] else None
        db = da.sum(0) if need[5] else None
        return dx, dh, dc_prev, dWx, dWh, db


def rnn_forward_torch(x, h0, Wx, Wh, b):
    """Tensor version of rnn_forward: x (N, T, D), h0 (N, H) -> h (N, T, H). Differentiable."""
    v.tensor("x", x, ("N", "T", "D"), {})
    xa = x @ Wx + b  # (N, T, H)
    hs, h = [], h0
    for t in range(x.shape[1]):
        h = torch.tanh(xa[:, t] + h @ Wh)
        hs.append(h)
    return torch.stack(hs, dim=1)


def lstm_forward_torch(x, h0, Wx, Wh, b, c0=None):
    """Tensor version of lstm_forward, one LSTMCellFunction per step.

    x (N, T, D), h0 (N, H), Wx (D, 4H), Wh (H, 4H), b (4H,), c0 (N, H) or None -> h (N, T, H).
    """
    v.tensor("x", x, ("N", "T", "D"), {})
    h, c = h0, torch.zeros_like(h0) if c0 is None else c0
    hs = []
    for t in range(x.shape[1]):
        h, c = LSTMCellFunction.apply(x[:, t], h, c, Wx, Wh, b)
        hs.append(h)
    return torch.stack(hs, dim=1)


def gru_forward_torch(x, h0, Wx, Wh, bx, bh):
    """Tensor version of gru_forward (PyTorch's r, z, n convention). Differentiable.

    x (N, T, D), h0 (N, H), Wx (D, 3H), Wh (H, 3H), bx (3H,), bh (3H,) -> h (N, T, H).
    """
    v.tensor("x", x, ("N", "T", "D"), {})
    H = h0.shape[1]
    xa = x @ Wx + bx  # (N, T, 3H)
    hs, h = [], h0
    for t in range(x.shape[1]):
        ah = h @ Wh + bh
        rz = torch.sigmoid(xa[:, t, : 2 * H] + ah[:, : 2 * H])
        r, z = rz[:, :H], rz[:, H:]
        n = torch.tanh(xa[:, t, 2 * H :] + r * ah[:, 2 * H :])
        h = (1 - z) * n + z * h
        hs.append(h)
    return torch.stack(hs, dim=1)


def _as_param(a, like):
    # contiguous: a transposed view cloned keeps its strides, and cuDNN's flatten_parameters
    # refuses a weight that is not laid out row-major
    return nn.Parameter(torch.as_tensor(a, dtype=like.dtype, device=like.device)
                        .clone(memory_format=torch.contiguous_format))


def _load(module, Wx, Wh, b_ih, b_hh):
    with torch.no_grad():
        module.weight_ih_l0 = _as_param(torch.as_tensor(Wx).T, module.weight_ih_l0)
        module.weight_hh_l0 = _as_param(torch.as_tensor(Wh).T, module.weight_hh_l0)
        module.bias_ih_l0 = _as_param(b_ih, module.bias_ih_l0)
        module.bias_hh_l0 = _as_param(b_hh, module.bias_hh_l0)
    module.flatten_parameters()
    return module


def rnn_module_from_weights(Wx, Wh, b, device=None, dtype=torch.float64):
    """nn.RNN(tanh, batch_first) holding the reference weights Wx (D, H), Wh (H, H), b (H,).

    PyTorch stores weight_ih as (H, D) = Wx^T and has two biases; b goes to bias_ih, zeros
    to bias_hh.
    """
    D, H = Wx.shape
    m = nn.RNN(D, H, batch_first=True, device=device, dtype=dtype)
    return _load(m, Wx, Wh, b, torch.zeros(H))


def lstm_module_from_weights(Wx, Wh, b, device=None, dtype=torch.float64):
    """nn.LSTM(batch_first) holding Wx (D, 4H), Wh (H, 4H), b (4H,); same i, f, g, o order."""
    D, H4 = Wx.shape
    m = nn.LSTM(D, H4 // 4, batch_first=True, device=device, dtype=dtype)
    return _load(m, Wx, Wh, b, torch.zeros(H4))


def gru_module_from_weights(Wx, Wh, bx, bh, device=None, dtype=torch.float64):
    """nn.GRU(batch_first) holding Wx (D, 3H), Wh (H, 3H), bx (3H,), bh (3H,); r, z, n order."""
    D, H3 = Wx.shape
    m = nn.GRU(D, H3 // 3, batch_first=True, device=device, dtype=dtype)
    return _load(m, Wx, Wh, bx, bh)
