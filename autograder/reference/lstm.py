"""LSTM, forward and backward (NumPy, float64, batch first).

Gates are fused along one 4H axis in PyTorch's order i, f, g, o:
    a = x Wx + h_prev Wh + b                      (N, 4H)
    i, f, o = sigmoid(a_i), sigmoid(a_f), sigmoid(a_o);  g = tanh(a_g)
    c_next = f * c_prev + i * g;  h_next = o * tanh(c_next)
"""
from __future__ import annotations

import numpy as np

from . import _validate as v
from .rnn import sequence_param_grads


def sigmoid(x):
    """Logistic function, computed as 0.5 (1 + tanh(x / 2)): no overflow for any x."""
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def _activate(a, H):
    """Apply sigmoid to the i, f, o blocks and tanh to the g block of a (..., 4H), in place."""
    a[..., : 2 * H] = sigmoid(a[..., : 2 * H])
    a[..., 2 * H : 3 * H] = np.tanh(a[..., 2 * H : 3 * H])
    a[..., 3 * H :] = sigmoid(a[..., 3 * H :])
    return a


def _gate_grads(dh, dc, gates, c_prev, tanh_c, H, out):
    """Gradient of the pre-activations (N, 4H) of one step, written into ``out``.

    dh, dc: upstream gradients of h_next and c_next; returns dc_prev.
    """
    i, f, g, o = (gates[:, k * H : (k + 1) * H] for k in range(4))
    dc = dc + dh * o * (1.0 - tanh_c**2)  # c_next reaches the loss directly and through h_next
    out[:, :H] = dc * g * i * (1.0 - i)
    out[:, H : 2 * H] = dc * c_prev * f * (1.0 - f)
    out[:, 2 * H : 3 * H] = dc * i * (1.0 - g**2)
    out[:, 3 * H :] = dh * tanh_c * o * (1.0 - o)
    return dc * f  # the additive path: c_prev only meets a gate, no squashing nonlinearity


def _step_dims(x, h_prev, c_prev, Wx, Wh, b):
    """Check one step's arguments (shapes below); returns the dims {N, D, H} they agree on."""
    dims = {}
    v.array("x", x, ("N", "D"), dims)
    v.array("h_prev", h_prev, ("N", "H"), dims)
    v.array("c_prev", c_prev, ("N", "H"), dims)
    v.array("Wx", Wx, ("D", "4H"), dims)
    v.array("Wh", Wh, ("H", "4H"), dims)
    v.array("b", b, ("4H",), dims)
    return dims


def lstm_step_forward(x, h_prev, c_prev, Wx, Wh, b):
    """One LSTM step: c' = f*c + i*g, h' = o*tanh(c'), gates fused in the order i, f, g, o.

    Inputs:
    - x: (N, D) input at this step
    - h_prev, c_prev: (N, H) previous hidden and cell state
    - Wx: (D, 4H), Wh: (H, 4H), b: (4H,)
    Returns (h_next, c_next, cache), h_next and c_next of shape (N, H).
    """
    dims = _step_dims(x, h_prev, c_prev, Wx, Wh, b)
    H = dims["H"]
    gates = _activate(x @ Wx + h_prev @ Wh + b, H)
    c_next = gates[:, H : 2 * H] * c_prev + gates[:, :H] * gates[:, 2 * H : 3 * H]
    tanh_c = np.tanh(c_next)
    h_next = gates[:, 3 * H :] * tanh_c
    return h_next, c_next, (x, h_prev, c_prev, Wx, Wh, gates, tanh_c)


def lstm_step_backward(dh_next, dc_next, cache):
    """Backward of lstm_step_forward.

    Inputs:
    - dh_next, dc_next: (N, H) upstream gradients of h_next and c_next
    - cache: from lstm_step_forward
    Returns (dx (N, D), dh_prev (N, H), dc_prev (N, H), dWx (D, 4H), dWh (H, 4H), db (4H,)).
    """
    x, h_prev, c_prev, Wx, Wh, gates, tanh_c = cache
    v.array("dh_next", dh_next, h_prev.shape, {})
    v.array("dc_next", dc_next, h_prev.shape, {})
    H = h_prev.shape[1]
    da = np.empty_like(gates)
    dc_prev = _gate_grads(dh_next, dc_next, gates, c_prev, tanh_c, H, da)
    return da @ Wx.T, da @ Wh.T, dc_prev, x.T @ da, h_prev.T @ da, da.sum(axis=0)


def lstm_forward(x, h0, Wx, Wh, b, c0=None):
    """Run an LSTM over a whole sequence.

    Inputs:
    - x: (N, T, D) input sequence
    - h0: (N, H) initial hidden state
    - Wx: (D, 4H), Wh: (H, 4H), b: (4H,), gate order i, f, g, o
    - c0: (N, H) initial cell state, zeros when None
    Returns (h, cache), h of shape (N, T, H) holding every hidden state h_1..h_T.
    """
    dims = {}
    v.array("x", x, ("N", "T", "D"), dims)
    v.array("h0", h0, ("N", "H"), dims)
    v.array("Wx", Wx, ("D", "4H"), dims)
    v.array("Wh", Wh, ("H", "4H"), dims)
    v.array("b", b, ("4H",), dims)
    if c0 is None:
        c0 = np.zeros_like(h0)
    v.array("c0", c0, ("N", "H"), dims)
    N, T, _ = x.shape
    H = dims["H"]
    gates = x @ Wx + b  # the input part of every step in one GEMM, (N, T, 4H)
    c = np.empty((N, T, H))
    tanh_c = np.empty((N, T, H))
    h = np.empty((N, T, H))
    h_prev, c_prev = h0, c0
    for t in range(T):
        g_t = gates[:, t]
        g_t += h_prev @ Wh
        _activate(g_t, H)
        c_t = c[:, t]
        np.multiply(g_t[:, H : 2 * H], c_prev, out=c_t)
        c_t += g_t[:, :H] * g_t[:, 2 * H : 3 * H]
        np.tanh(c_t, out=tanh_c[:, t])
        np.multiply(g_t[:, 3 * H :], tanh_c[:, t], out=h[:, t])
        h_prev, c_prev = h[:, t], c_t
    return h, (x, h0, c0, Wx, Wh, gates, c, tanh_c, h)


def lstm_backward(dh, cache):
    """Backpropagation through time for lstm_forward.

    Inputs:
    - dh: (N, T, H) upstream gradient of every hidden state
    - cache: from lstm_forward
    Returns (dx (N, T, D), dh0 (N, H), dWx (D, 4H), dWh (H, 4H), db (4H,)).
    """
    x, h0, c0, Wx, Wh, gates, c, tanh_c, h = cache
    v.array("dh", dh, h.shape, {})
    T, H = h.shape[1:]
    da = np.empty_like(gates)
    dh_carry = np.zeros_like(h0)
    dc_carry = np.zeros_like(h0)
    for t in range(T - 1, -1, -1):
        c_prev = c[:, t - 1] if t > 0 else c0
        dc_carry = _gate_grads(dh[:, t] + dh_carry, dc_carry, gates[:, t], c_prev, tanh_c[:, t], H, da[:, t])
        dh_carry = da[:, t] @ Wh.T
    dx, dWx, dWh, db = sequence_param_grads(x, h0, h, da, Wx)
    return dx, dh_carry, dWx, dWh, db


def lstm_param_count(input_size, hidden_size):
    """Number of trainable parameters of one LSTM layer with a single bias vector.

    4 gates, each with an (D, H) input matrix, an (H, H) recurrent matrix and an (H,) bias:
    4 (D H + H^2 + H). (PyTorch's nn.LSTM keeps two bias vectors and so has 4H more.)
    """
    D = v.positive_int("input_size", input_size)
    H = v.positive_int("hidden_size", hidden_size)
    return 4 * (D * H + H * H + H)


def lstm_peephole_step_forward(x, h_prev, c_prev, Wx, Wh, b, p):
    """One step of the peephole LSTM (Graves's form): i and f read c_prev, o reads c_next.

    a = x Wx + h_prev Wh + b (N, 4H), blocks i, f, g, o, then
    i = sigmoid(a_i + c_prev * p_i), f = sigmoid(a_f + c_prev * p_f), g = tanh(a_g),
    c_next = f * c_prev + i * g, o = sigmoid(a_o + c_next * p_o), h_next = o * tanh(c_next).

    Inputs:
    - x: (N, D) input at this step
    - h_prev, c_prev: (N, H) previous hidden and cell state
    - Wx: (D, 4H), Wh: (H, 4H), b: (4H,)
    - p: (3, H) the peephole weight vectors, rows p_i, p_f, p_o
    Returns (h_next, c_next, cache), h_next and c_next of shape (N, H); the cache is
    (x, h_prev, c_prev, Wx, Wh, p, gates, c_next, tanh_c), gates (N, 4H) activated.
    """
    dims = _step_dims(x, h_prev, c_prev, Wx, Wh, b)
    v.array("p", p, (3, "H"), dims)
    H = dims["H"]
    gates = x @ Wx + h_prev @ Wh + b
    gates[:, : 2 * H] += np.concatenate([c_prev * p[0], c_prev * p[1]], axis=1)
    gates[:, : 2 * H] = sigmoid(gates[:, : 2 * H])
    gates[:, 2 * H : 3 * H] = np.tanh(gates[:, 2 * H : 3 * H])
    c_next = gates[:, H : 2 * H] * c_prev + gates[:, :H] * gates[:, 2 * H : 3 * H]
    # o waits for the new cell: it cannot be activated with the other three
    gates[:, 3 * H :] = sigmoid(gates[:, 3 * H :] + c_next * p[2])
    tanh_c = np.tanh(c_next)
    h_next = gates[:, 3 * H :] * tanh_c
    return h_next, c_next, (x, h_prev, c_prev, Wx, Wh, p, gates, c_next, tanh_c)


def lstm_peephole_step_backward(dh_next, dc_next, cache):
    """Backward of lstm_peephole_step_forward.

    Inputs:
    - dh_next, dc_next: (N, H) upstream gradients of h_next and c_next
    - cache: from lstm_peephole_step_forward
    Returns (dx (N, D), dh_prev (N, H), dc_prev (N, H), dWx (D, 4H), dWh (H, 4H), db (4H,),
    dp (3, H)).
    """
    x, h_prev, c_prev, Wx, Wh, p, gates, c_next, tanh_c = cache
    v.array("dh_next", dh_next, h_prev.shape, {})
    v.array("dc_next", dc_next, h_prev.shape, {})
    H = h_prev.shape[1]
    i, f, g, o = (gates[:, k * H : (k + 1) * H] for k in range(4))
    da_o = dh_next * tanh_c * o * (1.0 - o)
    # c_next reaches the loss three ways: directly, through tanh in h_next, and through o
    dc = dc_next + dh_next * o * (1.0 - tanh_c**2) + da_o * p[2]
    da_i = dc * g * i * (1.0 - i)
    da_f = dc * c_prev * f * (1.0 - f)
    da = np.concatenate([da_i, da_f, dc * i * (1.0 - g**2), da_o], axis=1)
    dc_prev = dc * f + da_i * p[0] + da_f * p[1]
    dp = np.stack([(da_i * c_prev).sum(axis=0), (da_f * c_prev).sum(axis=0),
                   (da_o * c_next).sum(axis=0)])
    return da @ Wx.T, da @ Wh.T, dc_prev, x.T @ da, h_prev.T @ da, da.sum(axis=0), dp
