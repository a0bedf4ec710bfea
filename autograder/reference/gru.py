"""GRU, forward and backward (NumPy, float64, batch first), in PyTorch nn.GRU's convention.

Gates are fused along one 3H axis in the order r, z, n, with separate input and hidden biases:
    ax = x Wx + bx,  ah = h_prev Wh + bh                          (N, 3H) each
    r = sigmoid(ax_r + ah_r);  z = sigmoid(ax_z + ah_z)
    n = tanh(ax_n + r * ah_n)            (the reset gate acts after the matmul)
    h_next = (1 - z) * n + z * h_prev    (z weights the old state, not the candidate)
"""
from __future__ import annotations

import numpy as np

from . import _validate as v
from .lstm import sigmoid


def _gates(ax, ah, H):
    """(N, 3H) input and hidden pre-activations -> r, z, n, each (N, H)."""
    rz = sigmoid(ax[:, : 2 * H] + ah[:, : 2 * H])
    r, z = rz[:, :H], rz[:, H:]
    n = np.tanh(ax[:, 2 * H :] + r * ah[:, 2 * H :])
    return r, z, n


def _pre_grads(dh, h_prev, r, z, n, ah_n, H):
    """Gradients of ax and ah (N, 3H each) of one step from dh_next; also dh_prev's direct term."""
    dan = dh * (1.0 - z) * (1.0 - n**2)
    daz = dh * (h_prev - n) * z * (1.0 - z)
    dar = dan * ah_n * r * (1.0 - r)
    dax = np.concatenate([dar, daz, dan], axis=1)
    dah = np.concatenate([dar, daz, dan * r], axis=1)
    return dax, dah, dh * z


def _check_params(dims, Wx, Wh, bx, bh):
    v.array("Wx", Wx, ("D", "3H"), dims)
    v.array("Wh", Wh, ("H", "3H"), dims)
    v.array("bx", bx, ("3H",), dims)
    v.array("bh", bh, ("3H",), dims)


def gru_step_forward(x, h_prev, Wx, Wh, bx, bh):
    """One GRU step in PyTorch's convention (gate order r, z, n; h' = (1-z)*n + z*h).

    Inputs:
    - x: (N, D) input at this step
    - h_prev: (N, H) previous hidden state
    - Wx: (D, 3H), Wh: (H, 3H), bx: (3H,), bh: (3H,)
    Returns (h_next, cache), h_next of shape (N, H).
    """
    dims = {}
    v.array("x", x, ("N", "D"), dims)
    v.array("h_prev", h_prev, ("N", "H"), dims)
    _check_params(dims, Wx, Wh, bx, bh)
    H = dims["H"]
    ah = h_prev @ Wh + bh
    r, z, n = _gates(x @ Wx + bx, ah, H)
    h_next = (1.0 - z) * n + z * h_prev
    return h_next, (x, h_prev, Wx, Wh, r, z, n, ah[:, 2 * H :])


def gru_step_backward(dh_next, cache):
    """Backward of gru_step_forward.

    Inputs:
    - dh_next: (N, H) upstream gradient of h_next
    - cache: from gru_step_forward
    Returns (dx (N, D), dh_prev (N, H), dWx (D, 3H), dWh (H, 3H), dbx (3H,), dbh (3H,)).
    """
    x, h_prev, Wx, Wh, r, z, n, ah_n = cache
    v.array("dh_next", dh_next, h_prev.shape, {})
    dax, dah, dh_direct = _pre_grads(dh_next, h_prev, r, z, n, ah_n, h_prev.shape[1])
    return (dax @ Wx.T, dh_direct + dah @ Wh.T, x.T @ dax, h_prev.T @ dah,
            dax.sum(axis=0), dah.sum(axis=0))


def gru_forward(x, h0, Wx, Wh, bx, bh):
    """Run a GRU over a whole sequence.

    Inputs:
    - x: (N, T, D) input sequence
    - h0: (N, H) initial hidden state
    - Wx: (D, 3H), Wh: (H, 3H), bx: (3H,), bh: (3H,), gate order r, z, n
    Returns (h, cache), h of shape (N, T, H) holding every hidden state h_1..h_T.
    """
    dims = {}
    v.array("x", x, ("N", "T", "D"), dims)
    v.array("h0", h0, ("N", "H"), dims)
    _check_params(dims, Wx, Wh, bx, bh)
    N, T, _ = x.shape
    H = dims["H"]
    ax = x @ Wx + bx  # the input part of every step in one GEMM, (N, T, 3H)
    h = np.empty((N, T, H))
    r, z, n, ah_n = (np.empty((N, T, H)) for _ in range(4))
    h_prev = h0
    for t in range(T):
        ah = h_prev @ Wh + bh
        r[:, t], z[:, t], n[:, t] = _gates(ax[:, t], ah, H)
        ah_n[:, t] = ah[:, 2 * H :]
        h_prev = h[:, t] = (1.0 - z[:, t]) * n[:, t] + z[:, t] * h_prev
    return h, (x, h0, Wx, Wh, r, z, n, ah_n, h)


def gru_backward(dh, cache):
    """Backpropagation through time for gru_forward.

    Inputs:
    - dh: (N, T, H) upstream gradient of every hidden state
    - cache: from gru_forward
    Returns (dx (N, T, D), dh0 (N, H), dWx (D, 3H), dWh (H, 3H), dbx (3H,), dbh (3H,)).
    """
    x, h0, Wx, Wh, r, z, n, ah_n, h = cache
    v.array("dh", dh, h.shape, {})
    N, T, H = h.shape
    dax = np.empty((N, T, 3 * H))
    dah = np.empty((N, T, 3 * H))
    h_prev = np.concatenate([h0[:, None], h[:, :-1]], axis=1)
    dh_carry = np.zeros_like(h0)
    for t in range(T - 1, -1, -1):
        dax[:, t], dah[:, t], dh_direct = _pre_grads(
            dh[:, t] + dh_carry, h_prev[:, t], r[:, t], z[:, t], n[:, t], ah_n[:, t], H)
        dh_carry = dh_direct + dah[:, t] @ Wh.T
    dax2, dah2 = dax.reshape(N * T, 3 * H), dah.reshape(N * T, 3 * H)
    dWx = x.reshape(N * T, -1).T @ dax2
    dWh = h_prev.reshape(N * T, H).T @ dah2
    return dax @ Wx.T, dh_carry, dWx, dWh, dax2.sum(axis=0), dah2.sum(axis=0)


def gru_reset_before_step_forward(x, h_prev, Wx, Wh, bx, bh):
    """One step of Cho et al.'s GRU, the reset gate applied to h_prev before the product.

    Gate order r, z, n and parameters as gru_step_forward; only the candidate differs:
    n = tanh(x Wx_n + bx_n + (r * h_prev) Wh_n + bh_n), h_next = (1 - z) * n + z * h_prev.

    Inputs:
    - x: (N, D) input at this step
    - h_prev: (N, H) previous hidden state
    - Wx: (D, 3H), Wh: (H, 3H), bx: (3H,), bh: (3H,)
    Returns (h_next, cache), h_next of shape (N, H); the cache is
    (x, h_prev, Wx, Wh, r, z, n, rh) with rh = r * h_prev (N, H).
    """
    dims = {}
    v.array("x", x, ("N", "D"), dims)
    v.array("h_prev", h_prev, ("N", "H"), dims)
    _check_params(dims, Wx, Wh, bx, bh)
    H = dims["H"]
    ax = x @ Wx + bx
    # the n block of h_prev Wh cannot be computed before r is known: two products, not one
    rz = sigmoid(ax[:, : 2 * H] + h_prev @ Wh[:, : 2 * H] + bh[: 2 * H])
    r, z = rz[:, :H], rz[:, H:]
    rh = r * h_prev
    n = np.tanh(ax[:, 2 * H :] + rh @ Wh[:, 2 * H :] + bh[2 * H :])
    h_next = (1.0 - z) * n + z * h_prev
    return h_next, (x, h_prev, Wx, Wh, r, z, n, rh)


def gru_reset_before_step_backward(dh_next, cache):
    """Backward of gru_reset_before_step_forward.

    Inputs:
    - dh_next: (N, H) upstream gradient of h_next
    - cache: from gru_reset_before_step_forward
    Returns (dx (N, D), dh_prev (N, H), dWx (D, 3H), dWh (H, 3H), dbx (3H,), dbh (3H,)).
    """
    x, h_prev, Wx, Wh, r, z, n, rh = cache
    v.array("dh_next", dh_next, h_prev.shape, {})
    H = h_prev.shape[1]
    du = dh_next * (1.0 - z) * (1.0 - n**2)
    drh = du @ Wh[:, 2 * H :].T  # r * h_prev went through a matrix: its gradient mixes units
    dar = drh * h_prev * r * (1.0 - r)
    daz = dh_next * (h_prev - n) * z * (1.0 - z)
    dax = np.concatenate([dar, daz, du], axis=1)
    dh_prev = dh_next * z + drh * r + dax[:, : 2 * H] @ Wh[:, : 2 * H].T
    dWh = np.concatenate([h_prev.T @ dax[:, : 2 * H], rh.T @ du], axis=1)
    db = dax.sum(axis=0)  # bh_n sits outside the gate: dbh = dbx
    return dax @ Wx.T, dh_prev, x.T @ dax, dWh, db, db.copy()
