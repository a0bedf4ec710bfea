"""Vanilla RNN, forward and backward through time (NumPy, float64, batch first).

h_t = tanh(x_t Wx + h_{t-1} Wh + b), with Wx (D, H), Wh (H, H), b (H,).
"""
from __future__ import annotations

import numpy as np

from . import _validate as v


def rnn_step_forward(x, h_prev, Wx, Wh, b):
    """One RNN step: h_next = tanh(x Wx + h_prev Wh + b).

    Inputs:
    - x: (N, D) input at this step
    - h_prev: (N, H) previous hidden state
    - Wx: (D, H), Wh: (H, H), b: (H,)
    Returns (h_next, cache), h_next of shape (N, H).
    """
    dims = {}
    v.array("x", x, ("N", "D"), dims)
    v.array("h_prev", h_prev, ("N", "H"), dims)
    v.array("Wx", Wx, ("D", "H"), dims)
    v.array("Wh", Wh, ("H", "H"), dims)
    v.array("b", b, ("H",), dims)
    h_next = np.tanh(x @ Wx + h_prev @ Wh + b)
    return h_next, (x, h_prev, Wx, Wh, h_next)


def rnn_step_backward(dh_next, cache):
    """Backward of rnn_step_forward.

    Inputs:
    - dh_next: (N, H) upstream gradient of h_next
    - cache: from rnn_step_forward
    Returns (dx (N, D), dh_prev (N, H), dWx (D, H), dWh (H, H), db (H,)).
    """
    x, h_prev, Wx, Wh, h_next = cache
    v.array("dh_next", dh_next, h_next.shape, {})
    da = dh_next * (1.0 - h_next**2)  # tanh'(a) = 1 - tanh(a)^2
    return da @ Wx.T, da @ Wh.T, x.T @ da, h_prev.T @ da, da.sum(axis=0)


def rnn_forward(x, h0, Wx, Wh, b):
    """Run an RNN over a whole sequence.

    Inputs:
    - x: (N, T, D) input sequence
    - h0: (N, H) initial hidden state
    - Wx: (D, H), Wh: (H, H), b: (H,)
    Returns (h, cache), h of shape (N, T, H) holding every hidden state h_1..h_T.
    """
    dims = {}
    v.array("x", x, ("N", "T", "D"), dims)
    v.array("h0", h0, ("N", "H"), dims)
    v.array("Wx", Wx, ("D", "H"), dims)
    v.array("Wh", Wh, ("H", "H"), dims)
    v.array("b", b, ("H",), dims)
    a = x @ Wx + b  # the input part of every step in one GEMM, (N, T, H)
    h = np.empty_like(a)
    h_prev = h0
    for t in range(x.shape[1]):
        a_t = a[:, t]
        a_t += h_prev @ Wh
        h_prev = h[:, t] = np.tanh(a_t)
    return h, (x, h0, Wx, Wh, h)


def _rnn_backward(dh, cache, cut_every=None):
    """rnn_backward, optionally cutting the recurrent gradient at t = k, 2k, ... (truncation)."""
    x, h0, Wx, Wh, h = cache
    v.array("dh", dh, h.shape, {})
    T = h.shape[1]
    da = np.empty_like(h)
    dh_carry = np.zeros_like(h0)  # gradient reaching h_t from step t+1
    for t in range(T - 1, -1, -1):
        da_t = da[:, t]
        np.add(dh[:, t], dh_carry, out=da_t)
        da_t *= 1.0 - h[:, t] ** 2
        if cut_every is not None and t > 0 and t % cut_every == 0:
            dh_carry = np.zeros_like(h0)
        else:
            dh_carry = da_t @ Wh.T
    dx, dWx, dWh, db = sequence_param_grads(x, h0, h, da, Wx)
    return dx, dh_carry, dWx, dWh, db


def sequence_param_grads(x, h0, h, da, Wx):
    """The gradients that need no recurrence, computed once after the backward loop.

    Every step's pre-activation is a = x_t Wx + h_{t-1} Wh + b, so once da (N, T, G*H) is
    known for all steps, dx, dWx, dWh and db are each one GEMM (or sum) over all N*T rows.
    Inputs: x (N, T, D), h0 (N, H), h (N, T, H), da (N, T, G*H), Wx (D, G*H).
    Returns (dx (N, T, D), dWx (D, G*H), dWh (H, G*H), db (G*H,)).
    """
    N, T, H = h.shape
    h_prev = np.concatenate([h0[:, None], h[:, :-1]], axis=1)  # (N, T, H): the input of each step
    da2 = da.reshape(N * T, -1)
    return da @ Wx.T, x.reshape(N * T, -1).T @ da2, h_prev.reshape(N * T, H).T @ da2, da2.sum(axis=0)


def rnn_backward(dh, cache):
    """Backpropagation through time for rnn_forward.

    Inputs:
    - dh: (N, T, H) upstream gradient of every hidden state (from the layers above)
    - cache: from rnn_forward
    Returns (dx (N, T, D), dh0 (N, H), dWx (D, H), dWh (H, H), db (H,)).
    """
    return _rnn_backward(dh, cache)


def bptt_grad_norms(dh_T, cache):
    """How the gradient of a loss on the last hidden state decays or grows back in time.

    Inputs:
    - dh_T: (N, H) gradient of the loss with respect to the last hidden state h[:, T-1]
    - cache: from rnn_forward
    Returns norms of shape (T,): norms[t] is the Frobenius norm of dL/dh[:, t]; norms[T-1]
    is the norm of dh_T itself.
    """
    _, _, _, Wh, h = cache
    N, T, H = h.shape
    v.array("dh_T", dh_T, (N, H), {})
    norms = np.empty(T)
    g = dh_T
    for t in range(T - 1, -1, -1):
        norms[t] = np.linalg.norm(g)
        g = (g * (1.0 - h[:, t] ** 2)) @ Wh.T  # one factor diag(tanh') Wh^T per step
    return norms
