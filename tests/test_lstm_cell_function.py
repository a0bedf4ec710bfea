"""Tests of LSTMCellFunction: an LSTM step as a torch.autograd.Function with a hand-written backward.

Covers: torch.autograd.gradcheck (float64, CPU and CUDA), equality with the NumPy reference and
nn.LSTMCell, float32 against float64, gradients when only one of the two outputs is used
(None upstream gradient), that the backward uses no autograd, and argument validation.
"""
import inspect

import numpy as np
import pytest
import torch

from autograder.reference import LSTMCellFunction, lstm_step_backward, lstm_step_forward
from conftest import DEVICES
from coursekit.gradcheck import rel_error
from helpers import lstm_step_args, names_arg, to_np

# (N, D, H)
SHAPES = [(1, 1, 1), (2, 3, 4), (3, 2, 1), (1, 4, 5), (4, 1, 3)]
SHAPE_IDS = ["x".join(map(str, s)) for s in SHAPES]
NAMES = ["x", "h", "c", "Wx", "Wh", "b"]
TOL = 1e-6


def make_arrays(rng, N, D, H, scale=0.5):
    """lstm_step_forward's random arguments, under LSTMCellFunction's names (h, c)."""
    return dict(zip(NAMES, lstm_step_args(rng, N, D, H, scale).values()))


def as_tensors(arrays, device="cpu", dtype=torch.float64, requires_grad=True):
    return [torch.tensor(arrays[k], device=device, dtype=dtype, requires_grad=requires_grad)
            for k in NAMES]


def numpy_step(arrays, dh, dc):
    """Forward and backward of the NumPy reference (arrays in the order of NAMES)."""
    h, c, cache = lstm_step_forward(*(arrays[k] for k in NAMES))
    return h, c, lstm_step_backward(dh, dc, cache)


class FakeCtx:
    """Enough of a FunctionCtx to call forward and backward directly."""

    def __init__(self, needs_input_grad=(True,) * 6):
        self.needs_input_grad = needs_input_grad

    def save_for_backward(self, *tensors):
        self.saved_tensors = tensors


# ----------------------------------------------------------------------------- gradcheck
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("N,D,H", SHAPES, ids=SHAPE_IDS)
def test_gradcheck_float64(rng, device, N, D, H):
    inputs = as_tensors(make_arrays(rng, N, D, H), device=device)
    assert torch.autograd.gradcheck(LSTMCellFunction.apply, inputs, eps=1e-6, atol=1e-8, rtol=1e-6)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("mask", [(True, False, False, False, False, False),
                                  (False, False, True, True, False, False),
                                  (False, True, False, False, True, True)],
                         ids=["x", "c+Wx", "h+Wh+b"])
def test_gradcheck_subset_of_inputs(rng, device, mask):
    """Only some inputs require grad (exercises needs_input_grad)."""
    inputs = as_tensors(make_arrays(rng, 2, 3, 4), device=device)
    for t, m in zip(inputs, mask):
        t.requires_grad_(m)
    assert torch.autograd.gradcheck(LSTMCellFunction.apply, inputs, eps=1e-6, atol=1e-8, rtol=1e-6)


# ----------------------------------------------------------------------------- against references
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("N,D,H", SHAPES, ids=SHAPE_IDS)
def test_matches_numpy_reference(rng, device, N, D, H):
    arrays = make_arrays(rng, N, D, H)
    dh, dc = rng.standard_normal((N, H)), rng.standard_normal((N, H))
    inputs = as_tensors(arrays, device=device)
    h_next, c_next = LSTMCellFunction.apply(*inputs)
    assert h_next.shape == (N, H) and c_next.shape == (N, H)
    assert h_next.device.type == device and h_next.dtype == torch.float64
    ref_h, ref_c, ref_grads = numpy_step(arrays, dh, dc)
    assert rel_error(to_np(h_next), ref_h) < TOL
    assert rel_error(to_np(c_next), ref_c) < TOL
    grads = torch.autograd.grad((h_next, c_next), inputs,
                                grad_outputs=(torch.tensor(dh, device=device),
                                              torch.tensor(dc, device=device)))
    for name, g, r in zip(NAMES, grads, ref_grads):
        assert g.shape == inputs[NAMES.index(name)].shape, name
        assert rel_error(to_np(g), r) < TOL, name


@pytest.mark.parametrize("device", DEVICES)
def test_matches_nn_lstm_cell(rng, device):
    arrays = make_arrays(rng, 3, 4, 5, scale=1.0)
    x, h, c, Wx, Wh, b = as_tensors(arrays, device=device, requires_grad=False)
    cell = torch.nn.LSTMCell(4, 5, device=device, dtype=torch.float64)
    with torch.no_grad():
        cell.weight_ih.copy_(Wx.T)
        cell.weight_hh.copy_(Wh.T)
        cell.bias_ih.copy_(b)
        cell.bias_hh.zero_()
        h_ref, c_ref = cell(x, (h, c))
    h_next, c_next = LSTMCellFunction.apply(x, h, c, Wx, Wh, b)
    assert rel_error(to_np(h_next), to_np(h_ref)) < TOL
    assert rel_error(to_np(c_next), to_np(c_ref)) < TOL


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("N,D,H", [(1, 1, 1), (2, 3, 4), (8, 16, 32)], ids=["1x1x1", "2x3x4", "8x16x32"])
def test_float32_agrees_with_float64(rng, device, N, D, H):
    arrays = make_arrays(rng, N, D, H)
    dh, dc = rng.standard_normal((N, H)), rng.standard_normal((N, H))
    out = {}
    for dtype in (torch.float32, torch.float64):
        inputs = as_tensors(arrays, device=device, dtype=dtype)
        h_next, c_next = LSTMCellFunction.apply(*inputs)
        assert h_next.dtype == dtype and c_next.dtype == dtype
        (h_next * torch.tensor(dh, device=device, dtype=dtype)
         + c_next * torch.tensor(dc, device=device, dtype=dtype)).sum().backward()
        for t in inputs:
            assert t.grad.dtype == dtype and t.grad.device.type == device
        out[dtype] = [to_np(h_next), to_np(c_next)] + [to_np(t.grad) for t in inputs]
    for k, (lo, hi) in enumerate(zip(out[torch.float32], out[torch.float64])):
        scale = max(1.0, np.abs(hi).max())
        np.testing.assert_allclose(lo, hi, rtol=1e-4, atol=1e-5 * scale, err_msg=str(k))


# ----------------------------------------------------------------------------- one output used
def assert_grads_of_one_output(arrays, grads, used, up):
    """grads (one per NAMES) are the NumPy reference's when only the output ``used`` gets the
    upstream gradient ``up`` and the other one none (zero)."""
    zero = np.zeros_like(up)
    _, _, ref = numpy_step(arrays, *((up, zero) if used == "h_next" else (zero, up)))
    assert len(grads) == 6
    for name, g, r in zip(NAMES, grads, ref):
        assert rel_error(to_np(g), r) < TOL, name


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("used", ["h_next", "c_next"])
def test_only_one_output_used(rng, device, used):
    arrays = make_arrays(rng, 3, 2, 4)
    up = rng.standard_normal((3, 4))
    inputs = as_tensors(arrays, device=device)
    h_next, c_next = LSTMCellFunction.apply(*inputs)
    out = h_next if used == "h_next" else c_next
    (out * torch.tensor(up, device=device)).sum().backward()
    assert_grads_of_one_output(arrays, [t.grad for t in inputs], used, up)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("missing", ["dh_next", "dc_next"])
def test_backward_accepts_none_upstream(rng, device, missing):
    """Called with None for one upstream gradient, backward treats it as zero."""
    arrays = make_arrays(rng, 2, 3, 4)
    up = rng.standard_normal((2, 4))
    ctx = FakeCtx()
    with torch.no_grad():
        LSTMCellFunction.forward(ctx, *as_tensors(arrays, device=device, requires_grad=False))
        up_t = torch.tensor(up, device=device)
        args = (None, up_t) if missing == "dh_next" else (up_t, None)
        grads = LSTMCellFunction.backward(ctx, *args)
    assert_grads_of_one_output(arrays, grads, "c_next" if missing == "dh_next" else "h_next", up)


def test_backward_skips_unneeded_grads(rng):
    arrays = make_arrays(rng, 2, 3, 4)
    mask = (False, True, False, True, False, True)
    ctx = FakeCtx(needs_input_grad=mask)
    with torch.no_grad():
        LSTMCellFunction.forward(ctx, *as_tensors(arrays, requires_grad=False))
        dh, dc = torch.ones(2, 4, dtype=torch.float64), torch.ones(2, 4, dtype=torch.float64)
        grads = LSTMCellFunction.backward(ctx, dh, dc)
    _, _, ref = numpy_step(arrays, np.ones((2, 4)), np.ones((2, 4)))
    for name, need, g, r in zip(NAMES, mask, grads, ref):
        if need:
            assert rel_error(to_np(g), r) < TOL, name
        else:
            assert g is None, name


# ----------------------------------------------------------------------------- no autograd inside
def test_backward_source_has_no_autograd():
    src = inspect.getsource(LSTMCellFunction.backward)
    assert "def backward" in src
    for forbidden in ("torch.autograd.grad", "autograd.grad(", ".backward(", "torch.func",
                      "enable_grad", "vjp", "jacobian"):
        assert forbidden not in src, forbidden
    # the class really overrides backward (not inherited)
    assert "backward" in vars(LSTMCellFunction)


def test_backward_runs_without_autograd(rng, monkeypatch):
    """Backward works on tensors that do not require grad while every autograd entry raises."""
    arrays = make_arrays(rng, 3, 2, 4)
    ctx = FakeCtx()
    LSTMCellFunction.forward(ctx, *as_tensors(arrays, requires_grad=False))
    for t in ctx.saved_tensors:
        assert not t.requires_grad

    def boom(*args, **kwargs):
        raise AssertionError("autograd used inside LSTMCellFunction.backward")

    monkeypatch.setattr(torch.autograd, "grad", boom)
    monkeypatch.setattr(torch.autograd, "backward", boom)
    monkeypatch.setattr(torch.Tensor, "backward", boom)
    dh, dc = torch.tensor(rng.standard_normal((3, 4))), torch.tensor(rng.standard_normal((3, 4)))
    grads = LSTMCellFunction.backward(ctx, dh, dc)
    monkeypatch.undo()
    _, _, ref = numpy_step(arrays, dh.numpy(), dc.numpy())
    for name, g, r in zip(NAMES, grads, ref):
        assert rel_error(to_np(g), r) < TOL, name


class _GraphBuildingCell(LSTMCellFunction):
    """The reference's arithmetic, but recorded by autograd: what the test must catch."""

    @staticmethod
    def backward(ctx, dh_next, dc_next):
        return LSTMCellFunction.backward.__wrapped__(ctx, dh_next, dc_next)


def _graph_of_backward(function, inputs):
    """{name: grad_fn type} of the gradients of ``function``, taken with create_graph=True:
    whatever autograd recorded while the backward ran (a hand-written backward: nothing)."""
    h_next, c_next = function.apply(*inputs)
    assert h_next.grad_fn is not None and h_next.grad_fn is c_next.grad_fn  # one node
    grads = torch.autograd.grad(h_next.sum() + c_next.sum(), inputs, create_graph=True)
    return {name: type(g.grad_fn).__name__ for name, g in zip(NAMES, grads)
            if g.grad_fn is not None or g.requires_grad}


@pytest.mark.parametrize("device", DEVICES)
def test_backward_builds_no_graph(rng, device):
    inputs = as_tensors(make_arrays(rng, 2, 3, 4), device=device)
    h_next, _ = LSTMCellFunction.apply(*inputs)
    assert type(h_next.grad_fn).__name__ == "LSTMCellFunctionBackward"
    # even asked to (create_graph=True), the hand-written backward records nothing ...
    assert _graph_of_backward(LSTMCellFunction, inputs) == {}
    # ... where the same arithmetic left to autograd records a graph for five gradients
    leaky = _graph_of_backward(_GraphBuildingCell, inputs)
    assert set(leaky) == {"x", "h", "Wx", "Wh", "b"}, leaky


# ----------------------------------------------------------------------------- validation
def _good(rng, dtype=torch.float64):
    return dict(zip(NAMES, as_tensors(make_arrays(rng, 2, 3, 4), dtype=dtype, requires_grad=False)))


BAD = [
    ("h", lambda a: torch.zeros(3, 4, dtype=torch.float64)),          # N disagrees with x
    ("c", lambda a: torch.zeros(2, 5, dtype=torch.float64)),          # H disagrees with h
    ("c", lambda a: torch.zeros(2, dtype=torch.float64)),             # wrong rank
    ("Wx", lambda a: torch.zeros(4, 16, dtype=torch.float64)),        # D disagrees with x
    ("Wx", lambda a: torch.zeros(3, 12, dtype=torch.float64)),        # 3H columns
    ("Wh", lambda a: torch.zeros(4, 4, 16, dtype=torch.float64)),     # wrong rank
    ("Wh", lambda a: torch.zeros(16, 4, dtype=torch.float64)),        # transposed
    ("b", lambda a: torch.zeros(17, dtype=torch.float64)),
    ("b", lambda a: torch.zeros(1, 16, dtype=torch.float64)),
    ("x", lambda a: torch.zeros(2, 3, 1, dtype=torch.float64)),       # wrong rank
    ("x", lambda a: a["x"].numpy()),                                  # not a tensor
    ("h", lambda a: a["h"].tolist()),
    ("x", lambda a: torch.zeros(2, 3, dtype=torch.int64)),            # integer
    ("Wh", lambda a: a["Wh"].float()),                                # dtype unlike x
    ("b", lambda a: a["b"].float()),
]


@pytest.mark.parametrize("name,make_bad", BAD, ids=[f"{n}-{k}" for k, (n, _) in enumerate(BAD)])
def test_rejects_bad_input(rng, name, make_bad):
    args = _good(rng)
    args[name] = make_bad(args)
    with pytest.raises(ValueError, match=names_arg(name)):
        LSTMCellFunction.apply(*(args[k] for k in NAMES))


@pytest.mark.skipif(not torch.cuda.is_available(),
                    reason="no CUDA device on this machine (CI has none); CPU path tested")
def test_rejects_mixed_devices(rng):
    args = _good(rng)
    args["Wx"] = args["Wx"].cuda()
    with pytest.raises(ValueError, match=names_arg("Wx")):
        LSTMCellFunction.apply(*(args[k] for k in NAMES))
