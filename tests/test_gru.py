"""Tests of the NumPy GRU reference (autograder.reference.gru), PyTorch nn.GRU's convention.

Covers: numerical and torch.autograd gradient checks of both backwards, forward equality with
nn.GRU (weight mapping included) on every device, gru_forward_torch, step == one step of the
sequence, sequence backward == chained step backwards, the r, z, n gate order and which of n
and h the update gate weights, argument validation and the absence of side effects; the
reset-before step (Cho et al.) against finite differences and autograd, and equal to the
reset-after step where a scalar r moves through the product.
"""
from functools import partial

import numpy as np
import pytest
import torch

from autograder.reference import (gru_backward, gru_forward, gru_reset_before_step_backward,
                                  gru_reset_before_step_forward, gru_step_backward,
                                  gru_step_forward)
from conftest import DEVICES
from coursekit.gradcheck import rel_error
from helpers import (BAD_LABELS, assert_backward_matches_autograd, assert_backward_numerical,
                     assert_no_side_effects, assert_rejects, bad_cases, names_arg, recurrent_blame,
                     sigmoid, to_np)

# (N, T, D, H); the step tests ignore T.
SHAPES = [(1, 1, 1, 1), (2, 3, 4, 5), (3, 7, 2, 1), (1, 5, 3, 6)]
SHAPE_IDS = ["x".join(map(str, s)) for s in SHAPES]
SMALL = N0, T0, D0, H0 = 2, 3, 4, 5  # the argument-checking tests
TOL = 1e-6
SEQ_GRADS = ["x", "h0", "Wx", "Wh", "bx", "bh"]
KINDS = ["step", "seq"]
FORWARD = {"step": gru_step_forward, "seq": gru_forward}
BACKWARD = {"step": gru_step_backward, "seq": gru_backward}


# ----------------------------------------------------------------------------- helpers
def _params(rng, D, H, scale):
    return dict(
        Wx=scale * rng.standard_normal((D, 3 * H)),
        Wh=scale * rng.standard_normal((H, 3 * H)),
        bx=scale * rng.standard_normal(3 * H),
        bh=scale * rng.standard_normal(3 * H),
    )


def make_step(rng, N, D, H, scale=0.5):
    return dict(x=rng.standard_normal((N, D)), h_prev=rng.standard_normal((N, H)),
                **_params(rng, D, H, scale))


def make_seq(rng, N, T, D, H, scale=0.5):
    return dict(x=rng.standard_normal((N, T, D)), h0=rng.standard_normal((N, H)),
                **_params(rng, D, H, scale))


def make_args(rng, kind, N, T, D, H, scale=0.5):
    """Keyword arguments of gru_step_forward (kind "step") or gru_forward (kind "seq")."""
    return make_step(rng, N, D, H, scale) if kind == "step" else make_seq(rng, N, T, D, H, scale)


def torch_gru_step(x, h_prev, Wx, Wh, bx, bh):
    """nn.GRU's step written with plain torch ops (independent of the code under test)."""
    H = h_prev.shape[1]
    ax = x @ Wx + bx
    ah = h_prev @ Wh + bh
    r = torch.sigmoid(ax[:, :H] + ah[:, :H])
    z = torch.sigmoid(ax[:, H:2 * H] + ah[:, H:2 * H])
    n = torch.tanh(ax[:, 2 * H:] + r * ah[:, 2 * H:])
    return (1 - z) * n + z * h_prev


def torch_gru_seq(x, h0, Wx, Wh, bx, bh):
    h, hs = h0, []
    for t in range(x.shape[1]):
        h = torch_gru_step(x[:, t], h, Wx, Wh, bx, bh)
        hs.append(h)
    return torch.stack(hs, dim=1)


TORCH = {"step": torch_gru_step, "seq": torch_gru_seq}


# ----------------------------------------------------------------------------- backward
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("N,T,D,H", SHAPES, ids=SHAPE_IDS)
def test_backward_numerical(rng, kind, N, T, D, H):
    p = make_args(rng, kind, N, T, D, H)
    assert FORWARD[kind](**p)[0].shape == p["x"].shape[:-1] + (H,)
    assert_backward_numerical(FORWARD[kind], BACKWARD[kind], p, rng, tol=TOL)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("N,T,D,H", SHAPES, ids=SHAPE_IDS)
def test_backward_matches_autograd(rng, kind, N, T, D, H):
    p = make_args(rng, kind, N, T, D, H)
    assert_backward_matches_autograd(FORWARD[kind], BACKWARD[kind], TORCH[kind], p, rng, tol=TOL)


# ----------------------------------------------------------------------------- steps vs sequence
@pytest.mark.parametrize("N,T,D,H", SHAPES, ids=SHAPE_IDS)
def test_step_is_one_step_of_sequence(rng, N, T, D, H):
    p = make_step(rng, N, D, H)
    h1, step_cache = gru_step_forward(**p)
    hs, seq_cache = gru_forward(p["x"][:, None], p["h_prev"], p["Wx"], p["Wh"], p["bx"], p["bh"])
    np.testing.assert_allclose(hs[:, 0], h1, rtol=1e-13, atol=1e-15)
    dh = rng.standard_normal((N, H))
    seq = gru_backward(dh[:, None], seq_cache)
    step = gru_step_backward(dh, step_cache)
    np.testing.assert_allclose(seq[0][:, 0], step[0], rtol=1e-12, atol=1e-14)
    for name, a, b in zip(SEQ_GRADS[1:], seq[1:], step[1:]):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14, err_msg=name)


@pytest.mark.parametrize("N,T,D,H", SHAPES, ids=SHAPE_IDS)
def test_sequence_equals_chained_steps(rng, N, T, D, H):
    p = make_seq(rng, N, T, D, H)
    w = {k: p[k] for k in ("Wx", "Wh", "bx", "bh")}
    dh = rng.standard_normal((N, T, H))
    h_seq, cache = gru_forward(**p)
    h, caches, hs = p["h0"], [], []
    for t in range(T):
        h, step_cache = gru_step_forward(p["x"][:, t], h, **w)
        caches.append(step_cache)
        hs.append(h)
    np.testing.assert_allclose(h_seq, np.stack(hs, axis=1), rtol=1e-12, atol=1e-14)
    dx = np.zeros_like(p["x"])
    acc = {k: np.zeros_like(v) for k, v in w.items()}
    dh_carry = np.zeros((N, H))
    for t in reversed(range(T)):
        dx[:, t], dh_carry, *gw = gru_step_backward(dh[:, t] + dh_carry, caches[t])
        for k, g in zip(acc, gw):
            acc[k] += g
    expected = [dx, dh_carry, acc["Wx"], acc["Wh"], acc["bx"], acc["bh"]]
    for name, a, b in zip(SEQ_GRADS, gru_backward(dh, cache), expected):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12, err_msg=name)


# ----------------------------------------------------------------------------- gate order
def _blocks(p, H):
    """Pre-activations of r, z, n's input part and n's hidden part, from the raw weights."""
    ax = p["x"] @ p["Wx"] + p["bx"]
    ah = p["h_prev"] @ p["Wh"] + p["bh"]
    return ax[:, :H] + ah[:, :H], ax[:, H:2 * H] + ah[:, H:2 * H], ax[:, 2 * H:], ah[:, 2 * H:]


def test_update_gate_one_keeps_state(rng):
    """z ~ 1 (large bias in the second block only): h_next = h_prev."""
    N, D, H = 3, 4, 5
    p = make_step(rng, N, D, H, scale=0.1)
    p["bx"][H:2 * H] = 40.0
    h, _ = gru_step_forward(**p)
    np.testing.assert_allclose(h, p["h_prev"], rtol=1e-12, atol=1e-12)


def test_update_gate_zero_takes_candidate(rng):
    """z ~ 0: h_next = n = tanh(ax_n + r * ah_n), so z weights h_prev, not the candidate."""
    N, D, H = 3, 4, 5
    p = make_step(rng, N, D, H, scale=1.0)
    p["bh"][H:2 * H] = -40.0
    h, _ = gru_step_forward(**p)
    a_r, _, ax_n, ah_n = _blocks(p, H)
    n = np.tanh(ax_n + sigmoid(a_r) * ah_n)
    np.testing.assert_allclose(h, n, rtol=1e-10, atol=1e-12)
    assert not np.allclose(h, p["h_prev"], atol=1e-2)


def test_reset_gate_acts_after_the_matmul(rng):
    """z ~ 0 and r ~ 0 (first block): n ignores h_prev and bh_n; r ~ 1: n uses both."""
    N, D, H = 3, 4, 5
    p = make_step(rng, N, D, H, scale=1.0)
    p["bx"][H:2 * H] = -40.0    # z closed
    p["bx"][:H] = -40.0         # r closed
    p["bh"][2 * H:] = 3.0       # a large hidden bias of n, multiplied by r
    h, _ = gru_step_forward(**p)
    np.testing.assert_allclose(h, np.tanh(p["x"] @ p["Wx"][:, 2 * H:] + p["bx"][2 * H:]),
                               rtol=1e-10, atol=1e-12)
    p["bx"][:H] = 40.0          # r open
    h, _ = gru_step_forward(**p)
    _, _, ax_n, ah_n = _blocks(p, H)
    np.testing.assert_allclose(h, np.tanh(ax_n + ah_n), rtol=1e-10, atol=1e-12)


def test_update_gate_in_sequence_keeps_state(rng):
    p = make_seq(rng, 2, 6, 3, 4, scale=0.1)
    p["bh"][4:8] = 40.0
    h, _ = gru_forward(**p)
    np.testing.assert_allclose(h, np.broadcast_to(p["h0"][:, None], h.shape), rtol=1e-11, atol=1e-11)


# ----------------------------------------------------------------------------- torch and nn.GRU
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("N,T,D,H", SHAPES, ids=SHAPE_IDS)
def test_forward_matches_nn_gru(rng, device, N, T, D, H):
    from autograder.reference import gru_module_from_weights

    p = make_seq(rng, N, T, D, H, scale=1.0)
    m = gru_module_from_weights(p["Wx"], p["Wh"], p["bx"], p["bh"], device=device)
    assert isinstance(m, torch.nn.GRU) and m.batch_first
    assert (m.input_size, m.hidden_size, m.num_layers) == (D, H, 1)
    for param in m.parameters():
        assert param.dtype == torch.float64 and param.device.type == device
    np.testing.assert_array_equal(to_np(m.weight_ih_l0), p["Wx"].T)
    np.testing.assert_array_equal(to_np(m.weight_hh_l0), p["Wh"].T)
    np.testing.assert_array_equal(to_np(m.bias_ih_l0), p["bx"])
    np.testing.assert_array_equal(to_np(m.bias_hh_l0), p["bh"])
    x, h0 = torch.tensor(p["x"], device=device), torch.tensor(p["h0"], device=device)
    with torch.no_grad():
        out, hn = m(x, h0[None])
    h, _ = gru_forward(**p)
    assert rel_error(h, to_np(out)) < TOL
    assert rel_error(h[:, -1], to_np(hn[0])) < TOL


def test_module_from_weights_dtype_float32(rng):
    from autograder.reference import gru_module_from_weights

    p = make_seq(rng, 2, 3, 4, 5)
    m = gru_module_from_weights(p["Wx"], p["Wh"], p["bx"], p["bh"], dtype=torch.float32)
    assert all(q.dtype == torch.float32 for q in m.parameters())
    np.testing.assert_allclose(to_np(m.bias_hh_l0), p["bh"], rtol=1e-7)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("N,T,D,H", SHAPES, ids=SHAPE_IDS)
def test_gru_forward_torch_matches_numpy_and_nn_gru(rng, device, N, T, D, H):
    from autograder.reference import gru_forward_torch, gru_module_from_weights

    p = make_seq(rng, N, T, D, H)
    dh = torch.tensor(rng.standard_normal((N, T, H)), device=device)
    ts = {k: torch.tensor(v, device=device, requires_grad=True) for k, v in p.items()}
    out = gru_forward_torch(**ts)
    assert out.shape == (N, T, H) and out.dtype == torch.float64 and out.device.type == device
    h, cache = gru_forward(**p)
    assert rel_error(h, to_np(out)) < TOL
    (out * dh).sum().backward()

    m = gru_module_from_weights(p["Wx"], p["Wh"], p["bx"], p["bh"], device=device)
    x = torch.tensor(p["x"], device=device, requires_grad=True)
    h0 = torch.tensor(p["h0"], device=device, requires_grad=True)
    (m(x, h0[None])[0] * dh).sum().backward()
    nn_grads = {"x": x.grad, "h0": h0.grad, "Wx": m.weight_ih_l0.grad.T,
                "Wh": m.weight_hh_l0.grad.T, "bx": m.bias_ih_l0.grad, "bh": m.bias_hh_l0.grad}
    for name in SEQ_GRADS:
        assert rel_error(to_np(ts[name].grad), to_np(nn_grads[name])) < TOL, name
    # and the NumPy backward agrees with nn.GRU as well
    for name, g in zip(SEQ_GRADS, gru_backward(to_np(dh), cache)):
        assert rel_error(g, to_np(nn_grads[name])) < TOL, name


# ----------------------------------------------------------------------------- validation
BAD_FORWARD = [case for kind, state in (("step", "h_prev"), ("seq", "h0"))
               for case in bad_cases(make_args(np.random.default_rng(1), kind, *SMALL),
                                     recurrent_blame(state), kind)]


@pytest.mark.parametrize("kind,name,label,pattern", BAD_FORWARD)
def test_forward_rejects_bad_input(rng, kind, name, label, pattern):
    assert_rejects(FORWARD[kind], make_args(rng, kind, *SMALL), name, label, pattern)


@pytest.mark.parametrize("name", ["Wx", "Wh", "bx", "bh"])
def test_forward_rejects_wrong_gate_axis(rng, name):
    """A 4H (LSTM-sized) gate axis where 3H is expected."""
    args = make_args(rng, "seq", *SMALL)
    v = args[name]
    args[name] = np.concatenate([v, v[..., :H0]], axis=-1)
    with pytest.raises(ValueError, match=names_arg(name)):
        gru_forward(**args)


@pytest.mark.parametrize("label", BAD_LABELS)
@pytest.mark.parametrize("kind,name", [("step", "dh_next"), ("seq", "dh")])
def test_backward_rejects_bad_input(rng, kind, name, label):
    h, cache = FORWARD[kind](**make_args(rng, kind, *SMALL))
    assert_rejects(partial(BACKWARD[kind], cache=cache), {name: rng.standard_normal(h.shape)},
                   name, label)


def test_backward_rejects_wrong_T(rng):
    _, cache = gru_forward(**make_args(rng, "seq", *SMALL))
    with pytest.raises(ValueError, match=names_arg("dh")):
        gru_backward(rng.standard_normal((N0, T0 + 1, H0)), cache)


# ----------------------------------------------------------------------------- no side effects
@pytest.mark.parametrize("kind", KINDS)
def test_functions_do_not_modify_inputs(rng, kind):
    assert_no_side_effects(FORWARD[kind], BACKWARD[kind], make_args(rng, kind, *SMALL), rng)


# ----------------------------------------------------------------------------- reset before
def torch_reset_before_step(x, h_prev, Wx, Wh, bx, bh):
    """Cho et al.'s candidate in plain torch ops: n = tanh(x Wx_n + bx_n + (r * h) Wh_n + bh_n)."""
    H = h_prev.shape[1]
    ax, ah = x @ Wx + bx, h_prev @ Wh + bh
    r = torch.sigmoid(ax[:, :H] + ah[:, :H])
    z = torch.sigmoid(ax[:, H:2 * H] + ah[:, H:2 * H])
    n = torch.tanh(ax[:, 2 * H:] + (r * h_prev) @ Wh[:, 2 * H:] + bh[2 * H:])
    return (1 - z) * n + z * h_prev


@pytest.mark.parametrize("N,T,D,H", SHAPES, ids=SHAPE_IDS)
def test_reset_before_backward_numerical_and_autograd(rng, N, T, D, H):
    p = make_step(rng, N, D, H)
    assert_backward_numerical(gru_reset_before_step_forward, gru_reset_before_step_backward, p,
                              rng, tol=TOL)
    assert_backward_matches_autograd(gru_reset_before_step_forward,
                                     gru_reset_before_step_backward, torch_reset_before_step, p,
                                     rng, tol=TOL)


def test_reset_before_equals_after_for_one_unit_without_hidden_bias(rng):
    """H = 1, bh_n = 0: a scalar r moves through the product, so the two placements agree."""
    p = make_step(rng, 3, 4, 1)
    p["bh"][2:] = 0.0
    np.testing.assert_allclose(gru_reset_before_step_forward(**p)[0], gru_step_forward(**p)[0],
                               rtol=1e-12)
    p = make_step(rng, 3, 4, 5)
    assert np.abs(gru_reset_before_step_forward(**p)[0] - gru_step_forward(**p)[0]).max() > 1e-3


def test_reset_before_rejects_bad_input_and_modifies_nothing(rng):
    p = make_step(rng, N0, D0, H0)
    assert_rejects(gru_reset_before_step_forward, p, "Wh", "shape")
    assert_no_side_effects(gru_reset_before_step_forward, gru_reset_before_step_backward, p, rng)
