"""Tests of the vanilla RNN reference (autograder.reference.rnn) and its torch counterparts.

Every backward is checked twice: against central differences and against torch.autograd run
on the same computation in float64. Forward passes are checked against nn.RNN on every device
in conftest.DEVICES.
"""
import re

import numpy as np
import pytest
import torch

from autograder.gradcheck import numerical_gradient, rel_error
from autograder.reference import (bptt_grad_norms, orthogonal, rnn_backward, rnn_forward,
                                  rnn_step_backward, rnn_step_forward)
from conftest import DEVICES

SHAPES = [(1, 1, 1, 1), (2, 3, 4, 5), (3, 7, 2, 1), (1, 5, 3, 6)]  # (N, T, D, H)
TOL = 1e-6
PARAM_NAMES = ("x", "h0", "Wx", "Wh", "b")


def names(arg):
    """Regex matching the argument name as a whole word (so 'x' does not match 'Wx')."""
    return rf"(?<![\w]){re.escape(arg)}(?![\w])"


def make_params(rng, N, T, D, H, scale=0.5):
    x = rng.standard_normal((N, T, D))
    h0 = rng.standard_normal((N, H)) * scale
    Wx = rng.standard_normal((D, H)) * scale
    Wh = rng.standard_normal((H, H)) * scale
    b = rng.standard_normal(H) * scale
    return x, h0, Wx, Wh, b


def torch_leaves(*arrays, device="cpu"):
    return [torch.tensor(a, dtype=torch.float64, device=device, requires_grad=True) for a in arrays]


def torch_rnn(x, h0, Wx, Wh, b):
    """h_t = tanh(x_t Wx + h_{t-1} Wh + b), written with plain torch ops (the autograd oracle)."""
    hs, h = [], h0
    for t in range(x.shape[1]):
        h = torch.tanh(x[:, t] @ Wx + h @ Wh + b)
        hs.append(h)
    return hs


# ----------------------------------------------------------------------------- step

@pytest.mark.parametrize("N,T,D,H", SHAPES)
def test_rnn_step_backward_numerical(rng, N, T, D, H):
    x3, h_prev, Wx, Wh, b = make_params(rng, N, T, D, H)
    x = x3[:, 0].copy()
    dnext = rng.standard_normal((N, H))
    _, cache = rnn_step_forward(x, h_prev, Wx, Wh, b)
    grads = rnn_step_backward(dnext, cache)
    f = lambda: rnn_step_forward(x, h_prev, Wx, Wh, b)[0]
    for name, param, g in zip(("x", "h_prev", "Wx", "Wh", "b"), (x, h_prev, Wx, Wh, b), grads):
        assert g.shape == param.shape, name
        num = numerical_gradient(f, param, dnext)
        assert rel_error(num, g) < TOL, name


@pytest.mark.parametrize("N,T,D,H", SHAPES)
def test_rnn_step_backward_matches_torch(rng, N, T, D, H):
    x3, h_prev, Wx, Wh, b = make_params(rng, N, T, D, H)
    x = x3[:, 0].copy()
    dnext = rng.standard_normal((N, H))
    h_next, cache = rnn_step_forward(x, h_prev, Wx, Wh, b)
    grads = rnn_step_backward(dnext, cache)

    tx, th, tWx, tWh, tb = torch_leaves(x, h_prev, Wx, Wh, b)
    out = torch.tanh(tx @ tWx + th @ tWh + tb)
    out.backward(torch.tensor(dnext))
    assert rel_error(out.detach().numpy(), h_next) < 1e-12
    for name, leaf, g in zip(("x", "h_prev", "Wx", "Wh", "b"), (tx, th, tWx, tWh, tb), grads):
        assert rel_error(leaf.grad.numpy(), g) < TOL, name


@pytest.mark.parametrize("N,T,D,H", SHAPES)
def test_rnn_step_forward_equals_rnn_forward_steps(rng, N, T, D, H):
    x, h0, Wx, Wh, b = make_params(rng, N, T, D, H)
    h, _ = rnn_forward(x, h0, Wx, Wh, b)
    h_prev = h0
    for t in range(T):
        h_prev, _ = rnn_step_forward(x[:, t].copy(), h_prev, Wx, Wh, b)
        assert h_prev.shape == (N, H)
        np.testing.assert_allclose(h_prev, h[:, t], rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("N,T,D,H", SHAPES)
def test_rnn_backward_equals_chain_of_step_backwards(rng, N, T, D, H):
    x, h0, Wx, Wh, b = make_params(rng, N, T, D, H)
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


# ----------------------------------------------------------------------------- sequence

@pytest.mark.parametrize("N,T,D,H", SHAPES)
def test_rnn_backward_numerical(rng, N, T, D, H):
    x, h0, Wx, Wh, b = make_params(rng, N, T, D, H)
    dh = rng.standard_normal((N, T, H))
    h, cache = rnn_forward(x, h0, Wx, Wh, b)
    assert h.shape == (N, T, H) and h.dtype == np.float64
    grads = rnn_backward(dh, cache)
    f = lambda: rnn_forward(x, h0, Wx, Wh, b)[0]
    for name, param, g in zip(PARAM_NAMES, (x, h0, Wx, Wh, b), grads):
        assert g.shape == param.shape and g.dtype == np.float64, name
        num = numerical_gradient(f, param, dh)
        assert rel_error(num, g) < TOL, name


@pytest.mark.parametrize("N,T,D,H", SHAPES)
def test_rnn_backward_matches_torch(rng, N, T, D, H):
    x, h0, Wx, Wh, b = make_params(rng, N, T, D, H)
    dh = rng.standard_normal((N, T, H))
    h, cache = rnn_forward(x, h0, Wx, Wh, b)
    grads = rnn_backward(dh, cache)

    leaves = torch_leaves(x, h0, Wx, Wh, b)
    th = torch.stack(torch_rnn(*leaves), dim=1)
    assert rel_error(th.detach().numpy(), h) < 1e-12
    th.backward(torch.tensor(dh))
    for name, leaf, g in zip(PARAM_NAMES, leaves, grads):
        assert rel_error(leaf.grad.numpy(), g) < TOL, name


def test_rnn_backward_only_last_step_gradient(rng):
    """A gradient on the last state only must still reach x_0 and h0 (the recurrence is used)."""
    N, T, D, H = 2, 6, 3, 4
    x, h0, Wx, Wh, b = make_params(rng, N, T, D, H)
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

    x, h0, Wx, Wh, b = make_params(rng, N, T, D, H)
    h, _ = rnn_forward(x, h0, Wx, Wh, b)
    m = rnn_module_from_weights(Wx, Wh, b, device=device)
    assert isinstance(m, torch.nn.RNN)
    assert m.batch_first and m.nonlinearity == "tanh" and m.num_layers == 1
    assert m.input_size == D and m.hidden_size == H
    # The weight mapping itself: torch stores (H, D) = Wx^T, (H, H) = Wh^T and two biases.
    assert m.weight_ih_l0.dtype == torch.float64 and m.weight_ih_l0.device.type == device
    np.testing.assert_array_equal(m.weight_ih_l0.detach().cpu().numpy(), Wx.T)
    np.testing.assert_array_equal(m.weight_hh_l0.detach().cpu().numpy(), Wh.T)
    np.testing.assert_array_equal(
        (m.bias_ih_l0 + m.bias_hh_l0).detach().cpu().numpy(), b)
    with torch.no_grad():
        out, hn = m(torch.tensor(x, device=device), torch.tensor(h0, device=device)[None])
    assert out.shape == (N, T, H) and hn.shape == (1, N, H)
    assert rel_error(out.cpu().numpy(), h) < 1e-10
    assert rel_error(hn[0].cpu().numpy(), h[:, -1]) < 1e-10


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("N,T,D,H", SHAPES)
def test_rnn_forward_torch_matches_rnn_forward(rng, device, N, T, D, H):
    from autograder.reference import rnn_forward_torch

    x, h0, Wx, Wh, b = make_params(rng, N, T, D, H)
    dh = rng.standard_normal((N, T, H))
    h, cache = rnn_forward(x, h0, Wx, Wh, b)
    grads = rnn_backward(dh, cache)
    leaves = torch_leaves(x, h0, Wx, Wh, b, device=device)
    th = rnn_forward_torch(*leaves)
    assert isinstance(th, torch.Tensor) and th.shape == (N, T, H)
    assert th.device.type == device and th.dtype == torch.float64
    assert rel_error(th.detach().cpu().numpy(), h) < 1e-10
    th.backward(torch.tensor(dh, device=device))  # differentiable, same gradients
    for name, leaf, g in zip(PARAM_NAMES, leaves, grads):
        assert rel_error(leaf.grad.cpu().numpy(), g) < TOL, name


# ----------------------------------------------------------------------------- bptt_grad_norms

@pytest.mark.parametrize("N,T,D,H", SHAPES)
def test_bptt_grad_norms_match_torch(rng, N, T, D, H):
    x, h0, Wx, Wh, b = make_params(rng, N, T, D, H)
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
    x, h0, Wx, _, b = make_params(rng, N, T, D, H)
    Wh = orthogonal((H, H), rng=2) * 0.1
    _, cache = rnn_forward(x, h0, Wx, Wh, b)
    norms = bptt_grad_norms(rng.standard_normal((N, H)), cache)
    assert np.all(np.diff(norms) > 0), "norms must shrink going backward in time"
    assert norms[0] < 1e-6 * norms[-1]


# ----------------------------------------------------------------------------- bad input

def _step_args(rng, N=2, D=3, H=4):
    return dict(x=rng.standard_normal((N, D)), h_prev=rng.standard_normal((N, H)),
                Wx=rng.standard_normal((D, H)), Wh=rng.standard_normal((H, H)),
                b=rng.standard_normal(H))


def _seq_args(rng, N=2, T=3, D=3, H=4):
    return dict(x=rng.standard_normal((N, T, D)), h0=rng.standard_normal((N, H)),
                Wx=rng.standard_normal((D, H)), Wh=rng.standard_normal((H, H)),
                b=rng.standard_normal(H))


def _bad_variants(args, first):
    """(argument name, bad value, label, expected regex) for every argument: wrong shape, wrong
    rank, float32, list.

    The first argument that mentions a dimension defines it, so a size that disagrees with
    another argument is ambiguous (x with a wrong D disagrees with Wx): there either of the two
    names is accepted. Wrong rank, dtype and type can only be blamed on the argument itself.
    """
    blame = {"x": ("x", "h_prev" if first == "step" else "h0", "Wx"),
             "h_prev": ("h_prev", "Wx"), "h0": ("h0", "Wx")}
    out = []
    for name, a in args.items():
        pattern = "|".join(names(n) for n in blame.get(name, (name,)))
        wrong = np.zeros(a.shape[:-1] + (a.shape[-1] + 1,))
        out += [(name, wrong, "shape", pattern),
                (name, a[..., None], "rank", names(name)),
                (name, a[0], "rank-1", names(name)),
                (name, a.astype(np.float32), "float32", names(name)),
                (name, a.tolist(), "list", names(name))]
        if a.ndim >= 2:
            out.append((name, np.zeros((a.shape[0] + 1,) + a.shape[1:]), "shape0", pattern))
    return out


_STEP_CASES = _bad_variants(_step_args(np.random.default_rng(0)), "step")
_SEQ_CASES = _bad_variants(_seq_args(np.random.default_rng(0)), "seq")


@pytest.mark.parametrize("name,bad,label,pattern", _STEP_CASES,
                         ids=[f"{c[0]}-{c[2]}" for c in _STEP_CASES])
def test_rnn_step_forward_bad_input(rng, name, bad, label, pattern):
    args = _step_args(rng)
    args[name] = bad
    with pytest.raises(ValueError, match=pattern):
        rnn_step_forward(**args)


@pytest.mark.parametrize("name,bad,label,pattern", _SEQ_CASES,
                         ids=[f"{c[0]}-{c[2]}" for c in _SEQ_CASES])
def test_rnn_forward_bad_input(rng, name, bad, label, pattern):
    args = _seq_args(rng)
    args[name] = bad
    with pytest.raises(ValueError, match=pattern):
        rnn_forward(**args)


def _bad_grads(shape):
    wrong = shape[:-1] + (shape[-1] + 1,)
    return [np.zeros(wrong), np.zeros(shape + (1,)), np.zeros(shape, dtype=np.float32),
            np.zeros(shape).tolist(), np.zeros(shape[1:])]


@pytest.mark.parametrize("i", range(5))
def test_backward_functions_bad_upstream_gradient(rng, i):
    args = _step_args(rng)
    _, cache = rnn_step_forward(**args)
    with pytest.raises(ValueError, match=names("dh_next")):
        rnn_step_backward(_bad_grads((2, 4))[i], cache)
    _, cache = rnn_forward(**_seq_args(rng))
    with pytest.raises(ValueError, match=names("dh")):
        rnn_backward(_bad_grads((2, 3, 4))[i], cache)
    with pytest.raises(ValueError, match=names("dh_T")):
        bptt_grad_norms(_bad_grads((2, 4))[i], cache)


# ----------------------------------------------------------------------------- no in-place

def test_no_input_modified_in_place(rng):
    args = _step_args(rng)
    before = {k: v.copy() for k, v in args.items()}
    h_next, cache = rnn_step_forward(**args)
    h_next_copy = h_next.copy()
    dnext = rng.standard_normal(h_next.shape)
    dnext_copy = dnext.copy()
    rnn_step_backward(dnext, cache)
    for k in args:
        np.testing.assert_array_equal(args[k], before[k], err_msg=k)
    np.testing.assert_array_equal(dnext, dnext_copy)
    np.testing.assert_array_equal(h_next, h_next_copy)

    args = _seq_args(rng)
    before = {k: v.copy() for k, v in args.items()}
    h, cache = rnn_forward(**args)
    h_copy = h.copy()
    dh = rng.standard_normal(h.shape)
    dh_copy = dh.copy()
    g1 = rnn_backward(dh, cache)
    dh_T = rng.standard_normal(h[:, -1].shape)
    dh_T_copy = dh_T.copy()
    bptt_grad_norms(dh_T, cache)
    g2 = rnn_backward(dh, cache)  # the cache is still intact: same result twice
    for k in args:
        np.testing.assert_array_equal(args[k], before[k], err_msg=k)
    np.testing.assert_array_equal(dh, dh_copy)
    np.testing.assert_array_equal(dh_T, dh_T_copy)
    np.testing.assert_array_equal(h, h_copy)
    for a, c in zip(g1, g2):
        np.testing.assert_array_equal(a, c)
