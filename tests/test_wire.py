"""The data path between the grader and a student's kernel, piece by piece.

- coursekit.wire carries plain data only: exact types, numeric dtypes, no pickle; anything
  else arrives as an Unsupported named after a known type (or 'object'), malformed bytes
  are an error, and decoding is bounded (Limits): stored members only, each checked by its
  header before it is read, only those the tree refers to, every reference counted;
- coursekit.serve reports crashes (even SystemExit), in-place writes and aliasing as data,
  as positions and indices, and calls only public names the grader asks for.
"""
import io
import json
import struct

import numpy as np
import pytest
import torch

from coursekit import wire
from coursekit.serve import Executor


def test_plain_data_round_trips_with_exact_types():
    gen = np.random.default_rng(3)
    gen.random()
    value = {"a": np.arange(6.0).reshape(2, 3)[:, ::2], "n": 7, "big": 2**80, "x": 0.1,
             "nan": float("nan"), "s": "é", "t": (1, [None, True]), "i64": np.int64(5),
             "f32": np.float32(1.5), "zero_d": np.array(2.0), "rng": gen,
             "tensor": torch.arange(3.0, dtype=torch.float64).requires_grad_()}
    got = wire.roundtrip(value)
    assert got.keys() == value.keys()
    assert type(got["a"]) is np.ndarray and np.array_equal(got["a"], value["a"])
    assert got["zero_d"].shape == () and type(got["i64"]) is np.int64 and type(got["f32"]) is np.float32
    assert got["big"] == 2**80 and np.isnan(got["nan"]) and got["t"] == (1, [None, True])
    assert got["rng"].random() == gen.random()  # the same state, so the same next draw
    assert type(got["tensor"]) is torch.Tensor and got["tensor"].dtype == torch.float64
    assert got["tensor"].requires_grad


@pytest.mark.parametrize("value, name", [
    (np.zeros(3).view(type("Evil", (np.ndarray,), {})), "object"),
    (type("F", (float,), {})(1.0), "object"),
    (type("Liar", (), {"__eq__": lambda s, o: True})(), "object"),
    (type("LEAK_0_123456", (), {})(), "object"),
    (np.array([object()], dtype=object), "ndarray_of_dtype_object"),
    (np.array([(1.0,)], dtype=[("secret_field", "f8")]), "object"),
    ({1: 2}, "dict_with_non_string_keys"),
    (torch.zeros(2).as_subclass(type("T", (torch.Tensor,), {})), "object"),
    (np.asmatrix(np.eye(2)), "matrix"),
    ({1, 2}, "set"),
])
def test_anything_else_arrives_as_its_type_name_only(value, name):
    """Only the name of a type of Python, NumPy or PyTorch crosses: a class defined in the
    notebook (whose name could carry anything) arrives as 'object'."""
    got = wire.roundtrip(value)
    assert isinstance(got, wire.Unsupported) and type(got).__name__ == name
    assert got != 0 and not isinstance(got, (np.ndarray, float))


def test_malformed_messages_are_refused_without_running_anything(tmp_path):
    good = wire.encode({"a": np.ones(2)})
    for bad in (b"", b"x" * 7, good[:20], struct.pack("<Q", 10**12) + b"{}", b"\0" * 8 + b"junk"):
        with pytest.raises(wire.WireError):
            wire.decode(bad)
    # an object array (which np.load could only read by unpickling) is refused
    marker = tmp_path / "ran"
    buf = io.BytesIO()
    np.save(buf, np.array([print], dtype=object), allow_pickle=True)
    z = io.BytesIO()
    import zipfile
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("arr_0.npy", buf.getvalue())
    tree = json.dumps({"t": "array", "i": 0}).encode()
    with pytest.raises(wire.WireError):
        wire.decode(struct.pack("<Q", len(tree)) + tree + z.getvalue())
    assert not marker.exists()


def test_the_executor_reports_crashes_writes_and_aliases_as_data():
    ns = {}
    exec("import sys\n"
         "def quits(x):\n    sys.exit(3)\n"
         "def scales(x):\n    x *= 2\n    return x\n"
         "def same(d):\n    return {'k': d['k']}\n", ns)
    ex = Executor(ns, reference=None)

    def call(name, *args, **kw):
        return wire.roundtrip(ex.handle(wire.roundtrip({"op": "call", "name": name,
                                                        "args": list(args), **kw})))

    assert call("quits", 1)["error"]["type"] == "SystemExit"
    assert call("scales", np.ones(2))["modified"] == [[0, None]]  # positions, never names
    assert call("same", {"k": np.ones(2)}, aliases=True)["aliases"] == [[["k"], 0, ["k"]]]
    assert wire.roundtrip(ex.handle({"op": "describe", "name": "nope"})) == {"kind": "missing"}
    # only names the grader asks for, and their public attributes: never a dunder
    for bad in ({"name": "__builtins__", "attr": "exec"}, {"name": "quits", "attr": "__globals__"},
                {"name": "quits", "attr": "__code__.co_consts"}, {"name": "not a name"}):
        answer = ex.handle({"op": "call", "args": [], **bad})
        assert answer["error"]["type"] == "WireError" and "value" not in answer, bad



def _message(tree, members):
    """A message laid out by hand: length, JSON tree, npz of (name, bytes, compressed)."""
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, data, compressed in members:
            z.writestr(name, data, zipfile.ZIP_DEFLATED if compressed else zipfile.ZIP_STORED)
    t = json.dumps(tree).encode()
    return struct.pack("<Q", len(t)) + t + buf.getvalue()


def _npy(shape, data=None):
    h = io.BytesIO()
    np.lib.format.write_array_header_1_0(h, {"descr": "<f8", "fortran_order": False,
                                            "shape": shape})
    return h.getvalue() + (data if data is not None else bytes(8 * int(np.prod(shape))))


ARRAY = {"t": "array", "i": 0}


def test_decoding_is_bounded_before_anything_is_read():
    small = wire.Limits(message=1 << 20, tree=1 << 12, arrays=1 << 16)
    ok = _message(ARRAY, [("arr_0.npy", _npy((4,)), False)])
    assert np.array_equal(wire.decode(ok, limits=small), np.zeros(4))
    refused = {
        "a compressed member": _message(ARRAY, [("arr_0.npy", _npy((4,)), True)]),
        "a header larger than its data": _message(ARRAY, [("arr_0.npy", _npy((1 << 31,), b"\0" * 64),
                                                           False)]),
        "arrays over the budget": _message(ARRAY, [("arr_0.npy", _npy((1 << 14,)), False)]),
        "a reference counted each time": _message({"t": "list", "v": [ARRAY] * 40},
                                                  [("arr_0.npy", _npy((256,)), False)]),
        "a tree over its limit": _message({"t": "list", "v": [{"t": "none"}] * 400}, []),
        "a message over its limit": struct.pack("<Q", 2) + b"{}" + b"\0" * (1 << 20),
        "a missing member": _message(ARRAY, []),
    }
    for why, data in refused.items():
        with pytest.raises(wire.WireError):
            wire.decode(data, limits=small)
            pytest.fail(why)
    # a member the tree does not refer to is never read, compressed or not
    extra = _message({"t": "int", "v": "7"}, [("arr_0.npy", _npy((1 << 20,)), True)])
    assert wire.decode(extra, limits=small) == 7


def test_the_graders_limits_let_every_real_answer_through():
    """The largest answers of the course's checks fit GRADER_LIMITS many times over."""
    value = {"dx": np.zeros((64, 50, 128)), "h": [np.zeros((64, 128))] * 9,
             "words": [("word", 0.5)] * 10000}
    assert wire.decode(wire.encode(value), limits=wire.GRADER_LIMITS)["dx"].shape == (64, 50, 128)
