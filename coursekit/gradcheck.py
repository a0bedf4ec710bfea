"""Numerical gradients and relative error, for the visible tests of the notebooks, the hidden
checks, the book and the test suite."""
from __future__ import annotations

import numpy as np


def rel_error(a, b):
    """Largest element-wise relative error max |a - b| / max(1e-8, |a| + |b|) (a float).

    The 1e-8 floor keeps entries that are both ~0 from dominating; below 1e-7 is a match for
    float64 gradients, around 1e-2 or above means a bug.
    """
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"b: expected shape {a.shape} like a, got {b.shape}")
    if a.size == 0:
        return 0.0
    return float(np.max(np.abs(a - b) / np.maximum(1e-8, np.abs(a) + np.abs(b))))


def numerical_gradient(f, x, df, h=1e-5):
    """Central-difference gradient of sum(f(x) * df) with respect to the array x.

    Inputs:
    - f: function of no arguments returning an array (it reads x, which is perturbed in place
      and restored after each evaluation)
    - x: float64 array, the input to differentiate with respect to
    - df: upstream gradient, same shape as f()'s output
    - h: step size
    Returns an array shaped like x.
    """
    grad = np.zeros_like(x)
    it = np.nditer(x, flags=["multi_index"], op_flags=[["readwrite"]])
    while not it.finished:
        i = it.multi_index
        old = x[i]
        x[i] = old + h
        pos = np.array(f(), dtype=np.float64, copy=True)
        x[i] = old - h
        neg = np.array(f(), dtype=np.float64, copy=True)
        x[i] = old
        grad[i] = np.sum((pos - neg) * df) / (2 * h)
        it.iternext()
    return grad
