"""Tests of the vanilla RNN reference (autograder.reference.rnn) and its torch counterparts.

Every backward is checked twice: against central differences and against torch.autograd run
on the same computation in float64. Forward passes are checked against nn.RNN on every device
in conftest.DEVICES.
"""
from functools import partial

import numpy as np
import pytest
import torch

from autograder.reference import (bptt_grad_norms, orthogonal, rnn_backward, rnn_forward,
                                  rnn_step_backward, rnn_step_forward)
from conftest import DEVICES
from coursekit.gradcheck import rel_error
from helpers import (BAD_LABELS, assert_backward_matches_autograd, assert_backward_numerical,
                     assert_no_side_effects, assert_rejects, bad_cases, recurrent_blame, rnn_params,
                     to_np)

SHAPES = [(1, 1, 1, 1), (2, 3, 4, 5), (3, 7, 2, 1), (1, 5, 3, 6)]  # (N, T, D, H)
SMALL = N0, T0, D0, H0 = 2, 3, 3, 4  # the argument-checking tests
TOL = 1e-6
PARAM_NAMES = ("x", "h0", "Wx", "Wh", "b")
KINDS = ["step", "seq"]
FORWARD = {"step": rnn_step_forward, "seq": rnn_forward}
BACKWARD = {"step": rnn_step_backward, "seq": rnn_backward}


def make_args(rng, kind, N, T, D, H, scale=0.5):
    """Keyword arguments of rnn_step_forward (kind "step": x is one time step) or rnn_forward."""
    x, h0, Wx, Wh, b = rnn_params(rng, N, T, D, H, scale)
    if kind == "step":
        return dict(x=x[:, 0].copy(), h_prev=h0, Wx=Wx, Wh=Wh, b=b)
    return dict(x=x, h0=h0, Wx=Wx, Wh=Wh, b=b)


def torch_leaves(*arrays, device="cpu"):
    return [torch.tensor(a, dtype=torch.float64, device=device, requires_grad=True) for a in arrays]


def torch_rnn_step(x, h_prev, Wx, Wh, b):
    """h_next = tanh(x Wx + h_prev Wh + b), written with plain torch ops (the autograd oracle)."""
    return torch.tanh(x @ Wx + h_prev @ Wh + b)


def torch_rnn(x, h0, Wx, Wh, b):
    """The list of every h_t, stepping torch_rnn_step over the sequence."""
    hs, h = [], h0
    for t in range(x.shape[1]):
        h = torch_rnn_step(x[:, t], h, Wx, Wh, b)
        hs.append(h)
    return hs


TORCH = {"step": torch_rnn_step, "seq": lambda **p: torch.stack(torch_rnn(**p), dim=1)}


# ----------------------------------------------------------------------------- step and sequence

@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("N,T,D,H", SHAPES)
def test_backward_numerical(rng, kind, N, T, D, H):
    p = make_args(rng, kind, N, T, D, H)
    assert FORWARD[kind](**p)[0].shape == p["x"].shape[:-1] + (H,)
    assert_backward_numerical(FORWARD[kind], BACKWARD[kind], p, rng, tol=TOL)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("N,T,D,H", SHAPES)
def test_backward_matches_torch(rng, kind, N, T, D, H):
    p = make_args(rng, kind, N, T, D, H)
    assert_backward_matches_autograd(FORWARD[kind], BACKWARD[kind], TORCH[kind], p, rng, tol=TOL)


@pytest.mark.parametrize("N,T,D,H", SHAPES)
def test_rnn_step_forward_equals_rnn_forward_steps(rng, N, T, D, H):
    x, h0, Wx, Wh, b = rnn_params(rng, N, T, D, H)
    h, _ = rnn_forward(x, h0, Wx, Wh, b)
    h_prev = h0
    for t in range(T):
        h_prev, _ = rnn_step_forward(x[:, t].copy(), h_prev, Wx, Wh, b)
        assert h_prev.shape == (N, H)
        np.testing.assert_allclose(h_prev, h[:, t], rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("N,T,D,H", SHAPES)
def test_rnn_backward_equals_chain_of_step_backwards(rng, N, T, D, H):
    x, h0, Wx, Wh, b = rnn_params(rng, N, T, D, H)
    dh = rng.standard_normal((N, T, H))
    _, cache = rnn_forward(x, h0, Wx, Wh, b)
    dx, dh0, dWx, dWh, db = rnn_backward(dh, cache)

    caches, h_prev = [], h0
    for t in range(T):
        h_prev, c = rnn_step_forward(x[:, t].copy(), h_prev, Wx, Wh, b)
        caches.append(c)
    dx_ref = np.zeros_like(x)
    dWx_ref, dWh_ref, db_ref = np.zeros_like(Wx), np.zeros_like(Wh), np.zeros_like(b)
    carry = np.zeros_like(h0)
    for t in range(T - 1, -1, -1):
        dx_t, carry, dWx_t, dWh_t, db_t = rnn_step_backward(dh[:, t] + carry, caches[t])
        dx_ref[:, t] = dx_t
        dWx_ref += dWx_t
        dWh_ref += dWh_t
        db_ref += db_t
    for name, got, want in zip(PARAM_NAMES, (dx, dh0, dWx, dWh, db),
                               (dx_ref, carry, dWx_ref, dWh_ref, db_ref)):
        assert got.shape == want.shape, name
        assert rel_error(got, want) < 1e-10, name


def test_rnn_backward_only_last_step_gradient(rng):
    """A gradient on the last state only must still reach x_0 and h0 (the recurrence is used)."""
    N, T, D, H = 2, 6, 3, 4
    x, h0, Wx, Wh, b = rnn_params(rng, N, T, D, H)
    dh = np.zeros((N, T, H))
    dh[:, -1] = rng.standard_normal((N, H))
    _, cache = rnn_forward(x, h0, Wx, Wh, b)
    dx, dh0, *_ = rnn_backward(dh, cache)
    assert np.abs(dx[:, 0]).max() > 1e-6 and np.abs(dh0).max() > 1e-6
    leaves = torch_leaves(x, h0, Wx, Wh, b)
    hs = torch_rnn(*leaves)
    (hs[-1] * torch.tensor(dh[:, -1])).sum().backward()
    assert rel_error(leaves[0].grad.numpy(), dx) < TOL
    assert rel_error(leaves[1].grad.numpy(), dh0) < TOL


# ----------------------------------------------------------------------------- nn.RNN

@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("N,T,D,H", SHAPES)
def test_rnn_forward_matches_nn_rnn(rng, device, N, T, D, H):
    from autograder.reference import rnn_module_from_weights

    x, h0, Wx, Wh, b = rnn_params(rng, N, T, D, H)
    h, _ = rnn_forward(x, h0, Wx, Wh, b)
    m = rnn_module_from_weights(Wx, Wh, b, device=device)
    assert isinstance(m, torch.nn.RNN)
    assert m.batch_first and m.nonlinearity == "tanh" and m.num_layers == 1
    assert m.input_size == D and m.hidden_size == H
    # The weight mapping itself: torch stores (H, D) = Wx^T, (H, H) = Wh^T and two biases.
    assert m.weight_ih_l0.dtype == torch.float64 and m.weight_ih_l0.device.type == device
    np.testing.assert_array_equal(to_np(m.weight_ih_l0), Wx.T)
    np.testing.assert_array_equal(to_np(m.weight_hh_l0), Wh.T)
    np.testing.assert_array_equal(to_np(m.bias_ih_l0 + m.bias_hh_l0), b)
    with torch.no_grad():
        out, hn = m(torch.tensor(x, device=device), torch.tensor(h0, device=device)[None])
    assert out.shape == (N, T, H) and hn.shape == (1, N, H)
    assert rel_error(to_np(out), h) < 1e-10
    assert rel_error(to_np(hn[0]), h[:, -1]) < 1e-10


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("N,T,D,H", SHAPES)
def test_rnn_forward_torch_matches_rnn_forward(rng, device, N, T, D, H):
    from autograder.reference import rnn_forward_torch

    x, h0, Wx, Wh, b = rnn_params(rng, N, T, D, H)
    dh = rng.standard_normal((N, T, H))
    h, cache = rnn_forward(x, h0, Wx, Wh, b)
    grads = rnn_backward(dh, cache)
    leaves = torch_leaves(x, h0, Wx, Wh, b, device=device)
    th = rnn_forward_torch(*leaves)
    assert isinstance(th, torch.Tensor) and th.shape == (N, T, H)
    assert th.device.type == device and th.dtype == torch.float64
    assert rel_error(to_np(th), h) < 1e-10
    th.backward(torch.tensor(dh, device=device))  # differentiable, same gradients
    for name, leaf, g in zip(PARAM_NAMES, leaves, grads):
        assert rel_error(to_np(leaf.grad), g) < TOL, name


# ----------------------------------------------------------------------------- bptt_grad_norms

@pytest.mark.parametrize("N,T,D,H", SHAPES)
def test_bptt_grad_norms_match_torch(rng, N, T, D, H):
    x, h0, Wx, Wh, b = rnn_params(rng, N, T, D, H)
    dh_T = rng.standard_normal((N, H))
    _, cache = rnn_forward(x, h0, Wx, Wh, b)
    norms = bptt_grad_norms(dh_T, cache)
    assert norms.shape == (T,) and norms.dtype == np.float64
    assert norms[-1] == pytest.approx(np.linalg.norm(dh_T), rel=1e-14)

    hs = torch_rnn(*torch_leaves(x, h0, Wx, Wh, b))
    for h in hs:
        h.retain_grad()
    (hs[-1] * torch.tensor(dh_T)).sum().backward()
    want = np.array([torch.linalg.norm(h.grad).item() for h in hs])
    assert rel_error(norms, want) < 1e-10


def test_bptt_grad_norms_explode_with_large_spectral_radius(rng):
    N, T, D, H = 2, 10, 3, 8
    Wh = orthogonal((H, H), gain=3.0, rng=1)  # every singular value is 3
    Wx = rng.standard_normal((D, H)) * 0.5
    x = rng.standard_normal((N, T, D)) * 1e-8  # tiny inputs: h_t stays << 1, tanh' ~ 1
    h, cache = rnn_forward(x, np.zeros((N, H)), Wx, Wh, np.zeros(H))
    assert np.abs(h).max() < 1e-2
    dh_T = rng.standard_normal((N, H))
    norms = bptt_grad_norms(dh_T, cache)
    assert np.all(np.diff(norms) < 0), "norms must grow going backward in time"
    ratios = norms[:-1] / norms[1:]
    np.testing.assert_allclose(ratios, 3.0, rtol=1e-3)  # one factor of ~3 per step
    assert norms[0] / norms[-1] == pytest.approx(3.0 ** (T - 1), rel=1e-2)


def test_bptt_grad_norms_vanish_with_small_weights(rng):
    N, T, D, H = 3, 30, 4, 6
    x, h0, Wx, _, b = rnn_params(rng, N, T, D, H)
    Wh = orthogonal((H, H), rng=2) * 0.1
    _, cache = rnn_forward(x, h0, Wx, Wh, b)
    norms = bptt_grad_norms(rng.standard_normal((N, H)), cache)
    assert np.all(np.diff(norms) > 0), "norms must shrink going backward in time"
    assert norms[0] < 1e-6 * norms[-1]


# ----------------------------------------------------------------------------- bad input

BAD_FORWARD = [case for kind, state in (("step", "h_prev"), ("seq", "h0"))
               for case in bad_cases(make_args(np.random.default_rng(0), kind, *SMALL),
                                     recurrent_blame(state), kind)]
# (kind of forward, backward, its upstream-gradient argument, that argument's shape)
BACKWARDS = [("step", rnn_step_backward, "dh_next", (N0, H0)),
             ("seq", rnn_backward, "dh", (N0, T0, H0)),
             ("seq", bptt_grad_norms, "dh_T", (N0, H0))]
BACKWARD_IDS = ["rnn_step_backward", "rnn_backward", "bptt_grad_norms"]


@pytest.mark.parametrize("kind,name,label,pattern", BAD_FORWARD)
def test_forward_functions_bad_input(rng, kind, name, label, pattern):
    assert_rejects(FORWARD[kind], make_args(rng, kind, *SMALL), name, label, pattern)


@pytest.mark.parametrize("label", BAD_LABELS)
@pytest.mark.parametrize("kind,backward,name,shape", BACKWARDS, ids=BACKWARD_IDS)
def test_backward_functions_bad_upstream_gradient(rng, kind, backward, name, shape, label):
    _, cache = FORWARD[kind](**make_args(rng, kind, *SMALL))
    assert_rejects(partial(backward, cache=cache), {name: rng.standard_normal(shape)}, name, label)


# ----------------------------------------------------------------------------- no in-place

@pytest.mark.parametrize("kind,backward,name,shape", BACKWARDS, ids=BACKWARD_IDS)
def test_no_input_modified_in_place(rng, kind, backward, name, shape):
    """Nothing passed in is modified (the cache neither: a second backward gives the same)."""
    assert_no_side_effects(FORWARD[kind], backward, make_args(rng, kind, *SMALL), rng,
                           upstream=(rng.standard_normal(shape),))
