"""Argument checks shared by the reference functions.

Shapes are written with symbolic dimensions, e.g. ``("N", "T", "D")`` or ``("D", "4H")``.
The first argument that mentions a dimension binds it; every later mention must agree, so an
error names the argument that disagrees with what came before it.
"""
from __future__ import annotations

import numbers
import re

import numpy as np

from coursekit._args import positive_int, real  # noqa: F401  (shared with coursekit.tasks)

_DIM = re.compile(r"^(\d*)([A-Za-z_]\w*)$")


def _parse(token):
    """'4H' -> (4, 'H'); 'D' -> (1, 'D'); 7 -> (None, 7)."""
    if isinstance(token, int):
        return None, token
    m = _DIM.match(token)
    if not m:
        raise AssertionError(f"bad dimension spec {token!r}")
    return int(m.group(1) or 1), m.group(2)


def _spec_str(spec, dims):
    """('D', '4H') with D=3, H=5 -> '(D, 4H) = (3, 20)'."""
    names = ", ".join(str(t) for t in spec)
    if len(spec) == 1:
        names += ","
    values = []
    for t in spec:
        mult, name = _parse(t)
        if mult is None:
            values.append(str(name))
        elif name in dims:
            values.append(str(mult * dims[name]))
        else:
            values.append("?")
    vals = ", ".join(values) + ("," if len(spec) == 1 else "")
    if names == vals or all(v == "?" for v in values):
        return f"({names})"
    return f"({names}) = ({vals})"


def describe(value):
    """A short description of what was passed, for error messages."""
    if isinstance(value, np.ndarray):
        return f"{value.dtype} array of shape {value.shape}"
    if type(value).__name__ == "Tensor" and hasattr(value, "shape"):  # torch, not imported here
        return f"{value.dtype} tensor of shape {tuple(value.shape)}"
    return f"{type(value).__name__}"


def array(name, value, spec, dims, dtype=np.float64):
    """Check that ``value`` is an ndarray of ``dtype`` whose shape matches ``spec``.

    Inputs:
    - name: the argument's name, used in the error message
    - value: what the caller passed
    - spec: tuple of symbolic dimensions, e.g. ("N", "4H"), or ints for fixed sizes
    - dims: dict of dimensions bound so far; updated in place with new bindings
    - dtype: the exact dtype required, or "int" for any integer dtype
    Returns the array (never a copy, never modified).
    """
    if not isinstance(value, np.ndarray):
        raise ValueError(
            f"{name}: expected a {_dtype_name(dtype)} numpy array of shape "
            f"{_spec_str(spec, dims)}, got {describe(value)}"
        )
    if dtype == "int":
        if not np.issubdtype(value.dtype, np.integer):
            raise ValueError(f"{name}: expected an integer array, got {describe(value)}")
    elif value.dtype != dtype:
        raise ValueError(
            f"{name}: expected dtype {np.dtype(dtype).name}, got {describe(value)} "
            f"(convert with .astype(np.{np.dtype(dtype).name}))"
        )
    _match_shape(name, tuple(value.shape), spec, dims)
    return value


def tensor(name, value, spec, dims, like=None):
    """Check that ``value`` is a floating-point torch.Tensor whose shape matches ``spec``.

    As ``array`` for NumPy (``spec`` and ``dims`` alike), any floating dtype; with ``like``
    (a tensor already checked), also its dtype and device. Returns the tensor, untouched.
    """
    import torch  # here, not at the top: the NumPy references must not need torch

    if not isinstance(value, torch.Tensor):
        raise ValueError(f"{name}: expected a torch.Tensor of shape {_spec_str(spec, dims)}, "
                         f"got {describe(value)}")
    if not value.is_floating_point():
        raise ValueError(f"{name}: expected a floating-point tensor, got {value.dtype}")
    if like is not None and (value.dtype != like.dtype or value.device != like.device):
        raise ValueError(f"{name}: expected {like.dtype} on {like.device} like the first "
                         f"argument, got {value.dtype} on {value.device}")
    _match_shape(name, tuple(value.shape), spec, dims)
    return value


def one_of(name, value, options):
    """Return ``value`` if it is one of ``options`` (compared with ==), else raise ValueError."""
    if not any(value == o and type(value) is type(o) for o in options):
        raise ValueError(f"{name}: expected one of {', '.join(map(repr, options))}, got {value!r}")
    return value


def _match_shape(name, shape, spec, dims):
    """Bind or check each symbolic dimension of ``spec`` against ``shape``; dims is updated."""
    if len(shape) != len(spec):
        raise ValueError(
            f"{name}: expected {len(spec)}-D shape {_spec_str(spec, dims)}, "
            f"got {len(shape)}-D shape {shape}"
        )
    for axis, (token, size) in enumerate(zip(spec, shape)):
        mult, dim = _parse(token)
        if mult is None:
            ok = size == dim
        elif dim in dims:
            ok = size == mult * dims[dim]
        else:
            ok = size % mult == 0 and size > 0
            if ok:
                dims[dim] = size // mult
        if not ok:
            origin = dims.get("_from", {}).get(dim)
            why = f"; {dim} = {dims[dim]} comes from {origin}" if origin else ""
            raise ValueError(
                f"{name}: expected shape {_spec_str(spec, dims)}, got {shape} "
                f"(axis {axis} is {token}{why})"
            )
        if mult is not None and dim not in dims.get("_from", {}):
            dims.setdefault("_from", {})[dim] = name


def _dtype_name(dtype):
    return "integer" if dtype == "int" else np.dtype(dtype).name


def generator(name, value, allow_none=False):
    """Return a numpy Generator from ``value``: an int seed, a Generator (returned as is), or,
    with ``allow_none``, None for a fresh unseeded one; raise ValueError otherwise."""
    if value is None and allow_none:
        return np.random.default_rng()
    if isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_)):
        return np.random.default_rng(int(value))
    if isinstance(value, np.random.Generator):
        return value
    expected = "None, an int seed or a numpy Generator" if allow_none else "an int seed or a numpy Generator"
    raise ValueError(f"{name}: expected {expected}, got {describe(value)}")


def torch_generator(name, value):
    """Return a CPU torch.Generator from ``value``: an int seed (a new generator seeded with it)
    or a CPU torch.Generator (returned as is); raise ValueError otherwise."""
    import torch  # here, not at the top: the NumPy references must not need torch

    if isinstance(value, torch.Generator):
        if value.device.type != "cpu":
            raise ValueError(f"{name}: expected a torch.Generator on the CPU, got one on {value.device}")
        return value
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name}: expected an int seed or a CPU torch.Generator, got {describe(value)}")
    return torch.Generator().manual_seed(int(value))


def integer(name, value, low=None):
    """Return ``value`` as an int, or raise ValueError unless it is an integer (bool refused)
    that is at least ``low`` (when given)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name}: expected an integer, got {value!r}")
    if low is not None and value < low:
        raise ValueError(f"{name}: expected an integer >= {low}, got {value!r}")
    return int(value)


def probability(name, value):
    """Return ``value`` as a float, or raise ValueError unless it is a real number in [0, 1)
    (a drop probability: 1 would drop everything)."""
    p = real(name, value)
    if not 0.0 <= p < 1.0:
        raise ValueError(f"{name}: expected a probability in [0, 1), got {value!r}")
    return p


def function(name, value, allow_none=False, signature=""):
    """Return ``value`` if it is callable (or, with ``allow_none``, None), else raise ValueError.

    ``signature`` (e.g. "(step, model)") describes the expected call in the message.
    """
    if callable(value) or (value is None and allow_none):
        return value
    expected = "a callable" + (f" {signature}" if signature else "") + (" or None" if allow_none else "")
    raise ValueError(f"{name}: expected {expected}, got {describe(value)}")


def token_ids(name, value, size=None, min_len=1):
    """Check a 1-D integer numpy array of token ids (L,) with L >= min_len and every id in
    [0, size) (in [0, inf) when ``size`` is None). Returns the array (never a copy)."""
    if not isinstance(value, np.ndarray) or value.ndim != 1 or not np.issubdtype(value.dtype, np.integer):
        raise ValueError(f"{name}: expected a 1-D integer numpy array of token ids, got {describe(value)}")
    if len(value) < min_len:
        raise ValueError(f"{name}: expected at least {min_len} ids, got {len(value)}")
    if size is not None:
        return indices(name, value, size)
    if len(value) and value.min() < 0:
        raise ValueError(f"{name}: expected ids >= 0, got values in [{value.min()}, {value.max()}]")
    return value


def counts(name, value, size=None):
    """Check word counts: a 1-D numeric numpy array (V,), V >= 1 (V == size when given),
    finite, non-negative, with a positive sum. Returns them as float64 (V,)."""
    if not isinstance(value, np.ndarray) or not (
        np.issubdtype(value.dtype, np.integer) or np.issubdtype(value.dtype, np.floating)
    ):
        raise ValueError(f"{name}: expected a numeric numpy array of shape (V,), got {describe(value)}")
    if value.ndim != 1 or value.size == 0:
        raise ValueError(f"{name}: expected shape (V,) with V >= 1, got {value.shape}")
    if size is not None and value.shape[0] != size:
        raise ValueError(f"{name}: expected shape ({size},) (the vocabulary size), got {value.shape}")
    if not np.all(np.isfinite(value)) or value.min() < 0 or value.sum() <= 0:
        raise ValueError(f"{name}: expected finite non-negative counts with a positive sum")
    return value.astype(np.float64)


def chunkable(name, value, batch_size, seq_len, names=("batch_size", "seq_len")):
    """Check that the series ``value`` (L, ...) fills at least one chunk of ``batch_size``
    streams of ``seq_len`` steps with their next-step targets, as stateful truncated BPTT cuts
    it (L >= batch_size * seq_len + 1). ``names``: the arguments batch_size and seq_len came
    from, for the message. Returns ``value``."""
    need = batch_size * seq_len + 1
    if len(value) < need:
        b, s = names
        raise ValueError(f"{name}: {len(value)} values are too few for {b}={batch_size} and "
                         f"{s}={seq_len} (needs at least {need}); pass a smaller {b} or {s}")
    return value


def index(name, value, size):
    """Return ``value`` as an int in [0, size), or raise ValueError."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name}: expected an integer index, got {value!r}")
    if not 0 <= value < size:
        raise ValueError(f"{name}: expected an index in [0, {size}), got {value}")
    return int(value)


def indices(name, value, size):
    """Check an integer array whose entries all lie in [0, size)."""
    if value.size and (value.min() < 0 or value.max() >= size):
        raise ValueError(
            f"{name}: expected indices in [0, {size}), got values in "
            f"[{value.min()}, {value.max()}]"
        )
    return value


def grads_dict(name, grads):
    """Check a dict name -> float64 array (the argument of the clipping functions)."""
    if not isinstance(grads, dict):
        raise ValueError(f"{name}: expected a dict mapping names to float64 arrays, got {describe(grads)}")
    for key, g in grads.items():
        if not isinstance(g, np.ndarray) or g.dtype != np.float64:
            raise ValueError(f"{name}[{key!r}]: expected a float64 numpy array, got {describe(g)}")
    return grads
