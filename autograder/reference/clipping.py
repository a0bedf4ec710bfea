"""Gradient clipping by global norm and by value (NumPy)."""
from __future__ import annotations

import numpy as np

from . import _validate as v


def clip_grad_norm(grads, max_norm):
    """Rescale all gradients together when their global L2 norm exceeds ``max_norm``.

    Same semantics as torch.nn.utils.clip_grad_norm_: the total norm is the L2 norm of all
    gradients concatenated; every gradient is multiplied by min(1, max_norm / (total + 1e-6)),
    so the direction of the update is kept and only its length changes.

    Inputs:
    - grads: dict name -> float64 array of any shape
    - max_norm: positive number
    Returns (clipped, total_norm): a new dict of new arrays, and the norm before clipping.
    """
    v.grads_dict("grads", grads)
    max_norm = v.real("max_norm", max_norm, low=0.0, strict_low=True)
    total_norm = float(np.sqrt(sum(float(np.sum(g * g)) for g in grads.values())))
    # np.minimum propagates nan/inf exactly as torch's clamp does.
    coef = np.minimum(max_norm / (total_norm + 1e-6), 1.0)
    # np.multiply(..., out=new array): a 0-d gradient stays a 0-d array, not a numpy scalar.
    return {k: np.multiply(g, coef, out=np.empty_like(g)) for k, g in grads.items()}, total_norm


def clip_grad_value(grads, clip_value):
    """Clip every gradient element to [-clip_value, clip_value] (torch.nn.utils.clip_grad_value_).

    Inputs:
    - grads: dict name -> float64 array of any shape
    - clip_value: positive number
    Returns a new dict of new arrays; unlike norm clipping this can change the direction.
    """
    v.grads_dict("grads", grads)
    clip_value = v.real("clip_value", clip_value, low=0.0, strict_low=True)
    return {k: np.clip(g, -clip_value, clip_value, out=np.empty_like(g)) for k, g in grads.items()}
