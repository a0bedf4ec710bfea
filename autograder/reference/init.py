"""Weight initialization: orthogonal matrices (NumPy)."""
from __future__ import annotations


import numpy as np

from . import _validate as v


def orthogonal(shape, gain=1.0, rng=None):
    """A (semi-)orthogonal matrix, as torch.nn.init.orthogonal_ makes it.

    The tensor is viewed as rows = shape[0] by cols = prod(shape[1:]). A Gaussian matrix of
    that size (transposed when rows < cols) is QR-factorized; Q's columns are multiplied by the
    signs of R's diagonal so that the result is uniformly distributed (Haar), not biased by
    the QR routine's sign convention.

    Inputs:
    - shape: tuple of at least 2 positive ints, e.g. (H, H)
    - gain: scale factor applied to the result
    - rng: None, an int seed or a numpy Generator
    Returns a float64 array of ``shape``; when rows <= cols its rows are orthonormal
    (W W^T = gain^2 I), otherwise its columns are (W^T W = gain^2 I).
    """
    if not isinstance(shape, (tuple, list)) or len(shape) < 2:
        raise ValueError(f"shape: expected a tuple of at least 2 ints, got {shape!r}")
    shape = tuple(v.positive_int(f"shape[{i}]", s) for i, s in enumerate(shape))
    gain = v.real("gain", gain)
    rng = v.generator("rng", rng, allow_none=True)
    rows = shape[0]
    cols = int(np.prod(shape[1:]))
    a = rng.standard_normal((rows, cols))
    if rows < cols:
        a = a.T
    q, r = np.linalg.qr(a)
    q *= np.sign(np.diag(r))
    if rows < cols:
        q = q.T
    return gain * q.reshape(shape)
