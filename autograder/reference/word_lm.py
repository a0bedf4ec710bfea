"""Word-level language model: the embedding, the per-step affine read-out, and the gradient of
a tied embedding (NumPy, float64, batch first).

With weight tying the read-out's weight is the embedding matrix transposed: the model reads
word ids through ``W[x]`` and scores the next word with ``h @ W.T + b``, so W gets a gradient
from both uses.
"""
from __future__ import annotations

import numpy as np

from . import _validate as v


def embedding_forward(x, W):
    """Look up the vector of every word id: out[n, t] = W[x[n, t]].

    Inputs:
    - x: (N, T) integer word ids in [0, V)
    - W: (V, D) embedding matrix, one row per word
    Returns (out, cache): out (N, T, D); cache (x, W).
    """
    dims = {}
    v.array("W", W, ("V", "D"), dims)
    v.array("x", x, ("N", "T"), dims, dtype="int")
    v.indices("x", x, dims["V"])
    return W[x], (x, W)


def embedding_backward(dout, cache):
    """Backward pass of embedding_forward: row v of dW sums dout over every position holding v.

    Inputs:
    - dout: (N, T, D) upstream gradient of out
    - cache: (x, W) from embedding_forward
    Returns dW (V, D); rows of words absent from x are zero.
    """
    x, W = cache
    v.array("dout", dout, (*x.shape, W.shape[1]), {})
    dW = np.zeros_like(W)
    np.add.at(dW, x, dout)  # unbuffered: a word seen twice adds both gradients
    return dW


def temporal_affine_forward(x, w, b):
    """The same affine map at every time step: out[n, t] = x[n, t] @ w + b.

    Inputs:
    - x: (N, T, D) inputs of every step
    - w: (D, M) weight, b: (M,) bias
    Returns (out, cache): out (N, T, M); cache (x, w) (the backward does not need b).
    """
    dims = {}
    v.array("x", x, ("N", "T", "D"), dims)
    v.array("w", w, ("D", "M"), dims)
    v.array("b", b, ("M",), dims)
    return x @ w + b, (x, w)


def temporal_affine_backward(dout, cache):
    """Backward pass of temporal_affine_forward; the weight and bias are shared by every step.

    Inputs:
    - dout: (N, T, M) upstream gradient of out
    - cache: (x, w) from temporal_affine_forward
    Returns (dx, dw, db): dx (N, T, D), dw (D, M), db (M,).
    """
    x, w = cache
    N, T, D = x.shape
    M = w.shape[1]
    v.array("dout", dout, (N, T, M), {})
    dx = dout @ w.T
    dw = x.reshape(N * T, D).T @ dout.reshape(N * T, M)
    return dx, dw, dout.sum(axis=(0, 1))


def tied_embedding_backward(dembed, dscores, x, h, W):
    """Gradient of a tied embedding: W is read as the embedding (embed = W[x]) and, transposed,
    as the read-out's weight (scores = h @ W.T + b).

    Inputs:
    - dembed: (N, T, D) upstream gradient of embed = W[x]
    - dscores: (N, T, V) upstream gradient of scores = h @ W.T + b
    - x: (N, T) integer word ids in [0, V)
    - h: (N, T, D) the states the read-out scored
    - W: (V, D) the shared matrix
    Returns dW (V, D), the sum of the two uses' gradients.
    """
    dims = {}
    v.array("W", W, ("V", "D"), dims)
    v.array("dembed", dembed, ("N", "T", "D"), dims)
    v.array("dscores", dscores, ("N", "T", "V"), dims)
    v.array("x", x, ("N", "T"), dims, dtype="int")
    v.indices("x", x, dims["V"])
    v.array("h", h, ("N", "T", "D"), dims)
    N, T, D, V = dims["N"], dims["T"], dims["D"], dims["V"]
    dW = dscores.reshape(N * T, V).T @ h.reshape(N * T, D)  # the read-out's dw (D, V), transposed
    np.add.at(dW, x, dembed)
    return dW
