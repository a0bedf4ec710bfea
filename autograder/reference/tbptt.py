"""Truncated backpropagation through time: stateful batching and a truncated backward."""
from __future__ import annotations

import numpy as np

from . import _validate as v
from .rnn import _rnn_backward


def tbptt_batches(series, batch_size, seq_len):
    """Cut one long series into parallel streams and consecutive chunks for stateful training.

    The series is split into ``batch_size`` contiguous streams; chunk k+1 of stream b starts
    where chunk k of stream b ended, so the hidden state left by chunk k is the right initial
    state for chunk k+1. Targets are the next value of the series. With L - 1 input/target
    pairs, K = (L - 1) // (batch_size * seq_len) chunks are made and the tail is dropped.

    Inputs:
    - series: (L,) or (L, D) float64, or integer (token ids, as a language model reads them)
    - batch_size: number of parallel streams B
    - seq_len: chunk length S
    Returns (xs, ys), both (K, B, S, D) of the series' dtype (D = 1 for a 1-D series), with
    ys[k, b, s] the value after xs[k, b, s].
    """
    if not isinstance(series, np.ndarray) or series.ndim not in (1, 2):
        shape = getattr(series, "shape", None)
        raise ValueError(f"series: expected a float64 array of shape (L,) or (L, D), got {v.describe(series)}"
                         if shape is None else f"series: expected shape (L,) or (L, D), got {shape}")
    v.array("series", series, ("L",) if series.ndim == 1 else ("L", "D"), {},
            "int" if np.issubdtype(series.dtype, np.integer) else np.float64)
    B = v.positive_int("batch_size", batch_size)
    S = v.positive_int("seq_len", seq_len)
    data = v.chunkable("series", series, B, S).reshape(len(series), -1)
    K = (len(data) - 1) // (B * S)
    n = K * B * S

    def chunk(a):  # (n, D) -> (B, K*S, D) streams -> (B, K, S, D) -> (K, B, S, D)
        return a.reshape(B, K, S, -1).transpose(1, 0, 2, 3).copy()

    return chunk(data[:n]), chunk(data[1 : n + 1])


def truncated_rnn_backward(dh, cache, k):
    """rnn_backward with the recurrent gradient cut every ``k`` steps.

    The gradient from h_t back to h_{t-1} is dropped whenever t is a positive multiple of k,
    which is what detaching the hidden state between chunks of length k does. Gradients still
    flow within each chunk, and dh0 receives the gradient of the first chunk. With k >= T this
    equals rnn_backward.

    Inputs:
    - dh: (N, T, H) upstream gradient of every hidden state
    - cache: from rnn_forward
    - k: truncation length, a positive int
    Returns (dx (N, T, D), dh0 (N, H), dWx (D, H), dWh (H, H), db (H,)).
    """
    k = v.positive_int("k", k)
    return _rnn_backward(dh, cache, cut_every=k)
