"""Plain data across a process boundary: what the grader and a student's kernel exchange.

A message is a JSON tree plus the arrays it names, packed as one ``.npz`` and read back with
``allow_pickle=False``, so decoding never runs code. Decoding is bounded (``Limits``): the
message, its tree and its arrays once read each have a size limit, checked before anything
is read; only arrays stored uncompressed are read, and only those the tree refers to, each
after its header (shape and dtype) says it fits. The tree may hold None, bools, ints,
floats, strings, lists, tuples, dicts with string keys, numpy arrays and scalars of a
numeric or bool dtype, torch tensors (their values, dtype, device and whether they carry a
``grad_fn``), numpy Generators (their bit generator's state) and handles to objects kept on
the other side (``Handle``). Anything else is sent as its type name only and arrives as an
``Unsupported`` instance, which no check accepts: a hostile ``__eq__`` or ``__array_ufunc__``
never leaves the process that defined it.
"""
from __future__ import annotations

import io
import json
import re
import struct
import zipfile
from dataclasses import dataclass

import numpy as np

MAX_BYTES = 1 << 30  # one message; a larger one is refused, not read
MAX_DEPTH = 32
_KINDS = "biufc"  # bool, int, uint, float, complex: the dtypes that hold plain numbers


@dataclass(frozen=True)
class Limits:
    """The most one message may hold, in bytes: in all (``message``), in its JSON tree
    (``tree``), and in its arrays once read, each reference counted (``arrays``)."""
    message: int = MAX_BYTES
    tree: int = 64 << 20
    arrays: int = 2 << 30


# what the grader accepts from a student's kernel: far more than any check's answer, far
# less than what would strain the grading process
GRADER_LIMITS = Limits(message=64 << 20, tree=8 << 20, arrays=256 << 20)


class WireError(ValueError):
    """A message that is not plain data of the kinds above."""


class Unsupported:
    """Stands for a value that could not be sent; ``type_name`` is what it was."""
    type_name = "object"

    def __repr__(self):
        return f"<{self.type_name} (not plain data)>"


_UNSUPPORTED = {}


_KNOWN_TYPES = {"object", "set", "frozenset", "bytes", "bytearray", "complex", "range", "slice",
                "function", "builtin_function_or_method", "method", "module", "type",
                "generator", "map", "filter", "zip", "matrix", "MaskedArray", "DataFrame",
                "Series", "memoryview", "ellipsis", "NotImplementedType", "nesting too deep",
                "dict with non-string keys", "Parameter", "Tensor", "ndarray"}
_KNOWN_FORMS = re.compile(r"(?:ndarray|[a-z]+\d*_?) of dtype [A-Za-z0-9<>|=]{1,12}"
                          r"|Tensor \(torch\.\w{1,20}, torch\.\w{1,20}\)|Generator\(\w{1,20}\)")


def _known(type_name):
    """``type_name`` if it is a type name of Python, NumPy or PyTorch (or a form such as
    'ndarray of dtype object'); 'object' for a name made up in the notebook, which may
    carry anything."""
    name = str(type_name)
    return name if name in _KNOWN_TYPES or _KNOWN_FORMS.fullmatch(name) else "object"


def unsupported(type_name):
    """An Unsupported instance whose class is named after the value it replaces, so a
    message such as 'expected ndarray, got matrix' names what the student returned (a
    type defined in the notebook is named 'object')."""
    name = re.sub(r"\W", "_", _known(type_name))[:60] or "object"
    if name[0].isdigit():
        name = "_" + name
    cls = _UNSUPPORTED.get(name)
    if cls is None:
        cls = _UNSUPPORTED[name] = type(name, (Unsupported,), {"type_name": name})
    return cls()


class Handle:
    """A reference to an object kept by the other side (see ``coursekit.serve``)."""
    __slots__ = ("id",)

    def __init__(self, id):
        self.id = int(id)

    def __repr__(self):
        return f"Handle({self.id})"

    def __eq__(self, other):
        return isinstance(other, Handle) and other.id == self.id

    def __hash__(self):
        return hash(("handle", self.id))


def _torch():
    import sys

    return sys.modules.get("torch")


def _tree(x, arrays, depth):
    if depth > MAX_DEPTH:
        return {"t": "x", "type": "nesting too deep"}
    t = type(x)  # exact types only: a subclass may behave in any way
    if x is None:
        return {"t": "none"}
    if t is bool:
        return {"t": "bool", "v": x}
    if t is int:
        return {"t": "int", "v": str(x)}
    if t is float:
        return {"t": "float", "v": repr(x)}
    if t is str:
        return {"t": "str", "v": x}
    if t in (list, tuple):
        return {"t": t.__name__, "v": [_tree(v, arrays, depth + 1) for v in x]}
    if t is dict:
        if not all(type(k) is str for k in x):
            return {"t": "x", "type": "dict with non-string keys"}
        return {"t": "dict", "k": list(x), "v": [_tree(v, arrays, depth + 1) for v in x.values()]}
    if t is np.ndarray or (isinstance(x, np.generic) and t.__module__ == "numpy"):
        a = np.asarray(x)
        if a.dtype.kind not in _KINDS or a.dtype.byteorder == ">":
            return {"t": "x", "type": f"{t.__name__} of dtype {a.dtype}"}
        arrays.append(a)  # np.save keeps any layout (and a 0-d array 0-d)
        return {"t": "array" if t is np.ndarray else "scalar", "i": len(arrays) - 1}
    if t is np.random.Generator:
        bg = x.bit_generator
        if type(bg) is not np.random.PCG64:
            return {"t": "x", "type": f"Generator({type(bg).__name__})"}
        return {"t": "rng", "state": json.dumps(bg.state)}
    if t is Handle:
        return {"t": "handle", "v": x.id}
    torch = _torch()
    if torch is not None and t in (torch.Tensor, torch.nn.Parameter):
        d = x.detach()
        if d.is_complex() or d.layout != torch.strided:
            return {"t": "x", "type": f"Tensor ({d.dtype}, {d.layout})"}
        arrays.append(d.to("cpu").numpy() if d.dtype != torch.bfloat16 else d.float().cpu().numpy())
        return {"t": "tensor", "i": len(arrays) - 1, "dtype": str(d.dtype).removeprefix("torch."),
                "device": str(d.device), "requires_grad": bool(x.requires_grad),
                "grad_fn": x.grad_fn is not None}
    return {"t": "x", "type": t.__name__}


def encode(obj):
    """The bytes of ``obj`` as a message (values that are not plain data become their
    type name)."""
    arrays = []
    tree = json.dumps(_tree(obj, arrays, 0)).encode()
    buf = io.BytesIO()
    np.savez(buf, *arrays)
    data = buf.getvalue()
    return struct.pack("<Q", len(tree)) + tree + data


def _device(name):
    torch = _torch()
    if name.startswith("cuda") and not torch.cuda.is_available():
        return "cpu"
    return name


class _Arrays:
    """The arrays of a message's npz, read lazily, each at most once, within ``budget``."""

    def __init__(self, payload, budget):
        self.payload, self.budget, self.read = payload, budget, {}
        try:
            self.zip = zipfile.ZipFile(io.BytesIO(payload))
        except (zipfile.BadZipFile, ValueError, OSError):
            self.zip = None

    def get(self, i):
        """Array ``i``; its bytes are counted against the budget at every reference."""
        if i not in self.read:
            self.read[i] = self._load(i)
        a = self.read[i]
        self.budget -= a.nbytes
        if self.budget < 0:
            raise WireError("the message's arrays are larger than this side accepts")
        return a

    def _load(self, i):
        if self.zip is None:
            raise WireError("no arrays in the message")
        try:
            info = self.zip.getinfo(f"arr_{i}.npy")
        except KeyError:
            raise WireError("a missing array") from None
        if info.compress_type != zipfile.ZIP_STORED or info.compress_size != info.file_size:
            raise WireError("a compressed array (only stored arrays are read)")
        with self.zip.open(info) as f:
            version = np.lib.format.read_magic(f)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
            elif version == (2, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
            else:
                raise WireError("an array in an unknown format")
            if dtype.hasobject or dtype.kind not in _KINDS or dtype.fields is not None:
                raise WireError("an array of a dtype that is not numeric")
            count = 1
            for n in shape:
                if not isinstance(n, int) or n < 0:
                    raise WireError("an array of a malformed shape")
                count *= n
            nbytes = count * dtype.itemsize
            if nbytes > self.budget or nbytes > info.file_size:
                raise WireError("an array larger than the message holds or this side accepts")
            f.seek(0)
            return np.lib.format.read_array(f, allow_pickle=False)


def _build(node, arrays, depth, handles):
    if depth > MAX_DEPTH or not isinstance(node, dict):
        raise WireError("malformed message")
    t = node.get("t")
    if t == "none":
        return None
    if t == "bool":
        return bool(node["v"])
    if t == "int":
        v = node["v"]
        if not isinstance(v, str) or len(v) > 400 or not re.fullmatch(r"-?\d+", v):
            raise WireError("malformed int")
        return int(v)
    if t == "float":
        return float(node["v"])
    if t == "str":
        if not isinstance(node["v"], str):
            raise WireError("malformed str")
        return node["v"]
    if t in ("list", "tuple"):
        items = [_build(v, arrays, depth + 1, handles) for v in node["v"]]
        return items if t == "list" else tuple(items)
    if t == "dict":
        keys, values = node["k"], node["v"]
        if len(keys) != len(values) or not all(isinstance(k, str) for k in keys):
            raise WireError("malformed dict")
        return {k: _build(v, arrays, depth + 1, handles) for k, v in zip(keys, values)}
    if t in ("array", "scalar", "tensor"):
        a = arrays.get(int(node["i"]))
        if t == "array":
            return a
        if t == "scalar":
            if a.ndim != 0:
                raise WireError("a scalar that is not 0-d")
            return a[()]
        torch = _torch()
        if torch is None:
            import torch
        dtype = getattr(torch, str(node["dtype"]), None)
        if not isinstance(dtype, torch.dtype):
            raise WireError("a tensor of an unknown dtype")
        out = torch.from_numpy(np.array(a)).to(dtype=dtype, device=_device(str(node["device"])))
        if (node.get("requires_grad") or node.get("grad_fn")) and out.is_floating_point():
            out.requires_grad_(True)
            if node.get("grad_fn"):  # it came out of a computation: so does its copy here
                out = out.clone()
        return out
    if t == "rng":
        state = json.loads(node["state"])
        bg = np.random.PCG64()
        bg.state = state
        return np.random.Generator(bg)
    if t == "handle":
        return handles(int(node["v"])) if handles else Handle(node["v"])
    if t == "x":
        return unsupported(node.get("type", "object"))
    raise WireError(f"unknown kind {t!r}")


def decode(data, handles=None, limits=Limits()):
    """The object a message holds; WireError when it is not a well-formed message, or is
    larger than ``limits`` allows.

    ``handles(id)``, when given, resolves handles to the objects they stand for.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)) or len(data) < 8:
        raise WireError("not a message")
    if len(data) > limits.message:
        raise WireError("message too large")
    (n,) = struct.unpack("<Q", bytes(data[:8]))
    if n > len(data) - 8:
        raise WireError("truncated message")
    if n > limits.tree:
        raise WireError("message too large")
    try:
        tree = json.loads(bytes(data[8:8 + n]))
        return _build(tree, _Arrays(bytes(data[8 + n:]), limits.arrays), 0, handles)
    except WireError:
        raise
    except Exception as e:  # any malformed part is a malformed message
        raise WireError(f"malformed message ({type(e).__name__})") from None


def roundtrip(obj):
    """``decode(encode(obj))``: what the other side of the boundary would receive."""
    return decode(encode(obj))
