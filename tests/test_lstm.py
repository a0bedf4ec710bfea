"""Tests of the NumPy LSTM reference (autograder.reference.lstm) and its PyTorch counterparts.

Covers: numerical and torch.autograd gradient checks of every backward, forward equality with
nn.LSTM (weight mapping included) on every device, step == one step of the sequence, sequence
backward == chained step backwards, the i, f, g, o gate order, lstm_param_count, argument
validation and the absence of side effects on the inputs.
"""
import copy
import re

import numpy as np
import pytest
import torch

from autograder.gradcheck import numerical_gradient, rel_error
from autograder.reference import (lstm_backward, lstm_forward, lstm_param_count,
                                  lstm_step_backward, lstm_step_forward)
from conftest import DEVICES

# (N, T, D, H); the step tests ignore T.
SHAPES = [(1, 1, 1, 1), (2, 3, 4, 5), (3, 7, 2, 1), (1, 5, 3, 6)]
SHAPE_IDS = ["x".join(map(str, s)) for s in SHAPES]
TOL = 1e-6  # max relative error allowed between two float64 gradients


# ----------------------------------------------------------------------------- helpers
def make_step(rng, N, D, H, scale=0.5):
    """Random inputs of lstm_step_forward; weights scaled so no gate saturates."""
    return dict(
        x=rng.standard_normal((N, D)),
        h_prev=rng.standard_normal((N, H)),
        c_prev=rng.standard_normal((N, H)),
        Wx=scale * rng.standard_normal((D, 4 * H)),
        Wh=scale * rng.standard_normal((H, 4 * H)),
        b=scale * rng.standard_normal(4 * H),
    )


def make_seq(rng, N, T, D, H, scale=0.5, with_c0=True):
    """Random inputs of lstm_forward (c0 given unless with_c0 is False)."""
    p = dict(
        x=rng.standard_normal((N, T, D)),
        h0=rng.standard_normal((N, H)),
        Wx=scale * rng.standard_normal((D, 4 * H)),
        Wh=scale * rng.standard_normal((H, 4 * H)),
        b=scale * rng.standard_normal(4 * H),
    )
    if with_c0:
        p["c0"] = rng.standard_normal((N, H))
    return p


def torch_lstm_step(x, h_prev, c_prev, Wx, Wh, b):
    """The LSTM step written with plain torch ops (independent of the code under test)."""
    H = h_prev.shape[1]
    a = x @ Wx + h_prev @ Wh + b
    i = torch.sigmoid(a[:, :H])
    f = torch.sigmoid(a[:, H:2 * H])
    g = torch.tanh(a[:, 2 * H:3 * H])
    o = torch.sigmoid(a[:, 3 * H:])
    c_next = f * c_prev + i * g
    return o * torch.tanh(c_next), c_next


def torch_lstm_seq(x, h0, Wx, Wh, b, c0=None):
    h, c = h0, torch.zeros_like(h0) if c0 is None else c0
    hs = []
    for t in range(x.shape[1]):
        h, c = torch_lstm_step(x[:, t], h, c, Wx, Wh, b)
        hs.append(h)
    return torch.stack(hs, dim=1)


def autograd_grads(fn, arrays, upstream):
    """Gradients of sum_k <fn(**arrays)[k], upstream[k]> w.r.t. every array, via torch.autograd."""
    ts = {k: torch.tensor(v, dtype=torch.float64, requires_grad=True) for k, v in arrays.items()}
    outs = fn(**ts)
    if isinstance(outs, torch.Tensor):
        outs = (outs,)
    loss = sum((o * torch.as_tensor(u)).sum() for o, u in zip(outs, upstream))
    grads = torch.autograd.grad(loss, list(ts.values()))
    return {k: g.numpy() for k, g in zip(ts, grads)}


def to_np(t):
    return t.detach().cpu().numpy()


def names_arg(name):
    """Regex matching ``name`` as a whole identifier (so 'x' does not match 'Wx')."""
    return rf"(?<![\w.]){re.escape(name)}(?!\w)"


# ----------------------------------------------------------------------------- step backward
@pytest.mark.parametrize("N,T,D,H", SHAPES, ids=SHAPE_IDS)
def test_step_backward_numerical(rng, N, T, D, H):
    p = make_step(rng, N, D, H)
    dh = rng.standard_normal((N, H))
    dc = rng.standard_normal((N, H))
    _, _, cache = lstm_step_forward(**p)
    grads = dict(zip(["x", "h_prev", "c_prev", "Wx", "Wh", "b"], lstm_step_backward(dh, dc, cache)))

    def f():  # both outputs, so that dc_next is checked too
        h, c, _ = lstm_step_forward(**p)
        return np.concatenate([h, c], axis=1)

    df = np.concatenate([dh, dc], axis=1)
    for name, g in grads.items():
        assert g.shape == p[name].shape, name
        num = numerical_gradient(f, p[name], df)
        assert rel_error(g, num) < TOL, name


@pytest.mark.parametrize("N,T,D,H", SHAPES, ids=SHAPE_IDS)
def test_step_backward_matches_autograd(rng, N, T, D, H):
    p = make_step(rng, N, D, H)
    dh = rng.standard_normal((N, H))
    dc = rng.standard_normal((N, H))
    h, c, cache = lstm_step_forward(**p)
    ref = autograd_grads(torch_lstm_step, p, [dh, dc])
    th, tc = torch_lstm_step(**{k: torch.tensor(v) for k, v in p.items()})
    assert rel_error(h, th.numpy()) < TOL
    assert rel_error(c, tc.numpy()) < TOL
    out = lstm_step_backward(dh, dc, cache)
    assert len(out) == 6
    for name, g in zip(["x", "h_prev", "c_prev", "Wx", "Wh", "b"], out):
        assert rel_error(g, ref[name]) < TOL, name


def test_step_backward_dc_next_alone(rng):
    """With dh_next = 0 the gradient flows only through c_next: dc_prev = f * dc_next."""
    p = make_step(rng, 3, 4, 5)
    dc = rng.standard_normal((3, 5))
    _, _, cache = lstm_step_forward(**p)
    out = lstm_step_backward(np.zeros((3, 5)), dc, cache)
    ref = autograd_grads(torch_lstm_step, p, [np.zeros((3, 5)), dc])
    for name, g in zip(["x", "h_prev", "c_prev", "Wx", "Wh", "b"], out):
        assert rel_error(g, ref[name]) < TOL, name
    a_f = p["x"] @ p["Wx"][:, 5:10] + p["h_prev"] @ p["Wh"][:, 5:10] + p["b"][5:10]
    np.testing.assert_allclose(out[2], dc / (1 + np.exp(-a_f)), rtol=1e-12)
    # the output gate gets no gradient when h_next does not reach the loss
    np.testing.assert_array_equal(out[5][15:], 0.0)


# ----------------------------------------------------------------------------- sequence backward
@pytest.mark.parametrize("N,T,D,H", SHAPES, ids=SHAPE_IDS)
def test_backward_numerical(rng, N, T, D, H):
    p = make_seq(rng, N, T, D, H)
    dh = rng.standard_normal((N, T, H))
    h, cache = lstm_forward(**p)
    assert h.shape == (N, T, H) and h.dtype == np.float64
    out = lstm_backward(dh, cache)
    assert len(out) == 5
    for name, g in zip(["x", "h0", "Wx", "Wh", "b"], out):
        assert g.shape == p[name].shape, name
        num = numerical_gradient(lambda: lstm_forward(**p)[0], p[name], dh)
        assert rel_error(g, num) < TOL, name


@pytest.mark.parametrize("with_c0", [True, False], ids=["c0", "no_c0"])
@pytest.mark.parametrize("N,T,D,H", SHAPES, ids=SHAPE_IDS)
def test_backward_matches_autograd(rng, N, T, D, H, with_c0):
    p = make_seq(rng, N, T, D, H, with_c0=with_c0)
    dh = rng.standard_normal((N, T, H))
    h, cache = lstm_forward(**p)
    th = torch_lstm_seq(**{k: torch.tensor(v) for k, v in p.items()})
    assert rel_error(h, th.numpy()) < TOL
    ref = autograd_grads(torch_lstm_seq, p, [dh])
    for name, g in zip(["x", "h0", "Wx", "Wh", "b"], lstm_backward(dh, cache)):
        assert rel_error(g, ref[name]) < TOL, name


def test_forward_c0_none_is_zeros(rng):
    p = make_seq(rng, 2, 4, 3, 5, with_c0=False)
    h_none, cache_none = lstm_forward(**p)
    h_zero, cache_zero = lstm_forward(**p, c0=np.zeros((2, 5)))
    np.testing.assert_array_equal(h_none, h_zero)
    dh = rng.standard_normal((2, 4, 5))
    for a, b in zip(lstm_backward(dh, cache_none), lstm_backward(dh, cache_zero)):
        np.testing.assert_array_equal(a, b)
    # and c0 matters when it is not zero
    h_c0, _ = lstm_forward(**p, c0=np.ones((2, 5)))
    assert not np.allclose(h_c0, h_none)


# ----------------------------------------------------------------------------- steps vs sequence
@pytest.mark.parametrize("N,T,D,H", SHAPES, ids=SHAPE_IDS)
def test_step_is_one_step_of_sequence(rng, N, T, D, H):
    p = make_step(rng, N, D, H)
    h1, c1, step_cache = lstm_step_forward(**p)
    hs, seq_cache = lstm_forward(p["x"][:, None], p["h_prev"], p["Wx"], p["Wh"], p["b"], c0=p["c_prev"])
    np.testing.assert_allclose(hs[:, 0], h1, rtol=1e-13, atol=1e-15)
    dh = rng.standard_normal((N, H))
    dx, dh0, dWx, dWh, db = lstm_backward(dh[:, None], seq_cache)
    sdx, sdh, _, sdWx, sdWh, sdb = lstm_step_backward(dh, np.zeros((N, H)), step_cache)
    for a, b in [(dx[:, 0], sdx), (dh0, sdh), (dWx, sdWx), (dWh, sdWh), (db, sdb)]:
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("N,T,D,H", SHAPES, ids=SHAPE_IDS)
def test_sequence_equals_chained_steps(rng, N, T, D, H):
    p = make_seq(rng, N, T, D, H)
    dh = rng.standard_normal((N, T, H))
    h_seq, cache = lstm_forward(**p)
    # forward, one step at a time
    h, c, caches, hs = p["h0"], p["c0"], [], []
    for t in range(T):
        h, c, step_cache = lstm_step_forward(p["x"][:, t], h, c, p["Wx"], p["Wh"], p["b"])
        caches.append(step_cache)
        hs.append(h)
    np.testing.assert_allclose(h_seq, np.stack(hs, axis=1), rtol=1e-12, atol=1e-14)
    # backward, chaining the step backwards from t = T-1 down to 0
    dx = np.zeros_like(p["x"])
    dWx, dWh, db = np.zeros_like(p["Wx"]), np.zeros_like(p["Wh"]), np.zeros_like(p["b"])
    dh_carry, dc_carry = np.zeros((N, H)), np.zeros((N, H))
    for t in reversed(range(T)):
        dx[:, t], dh_carry, dc_carry, gWx, gWh, gb = lstm_step_backward(
            dh[:, t] + dh_carry, dc_carry, caches[t])
        dWx += gWx
        dWh += gWh
        db += gb
    for name, a, b in zip(["x", "h0", "Wx", "Wh", "b"], lstm_backward(dh, cache),
                          [dx, dh_carry, dWx, dWh, db]):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12, err_msg=name)


# ----------------------------------------------------------------------------- gate order
def test_gate_order_forget_open_input_closed(rng):
    """Only f's bias block large positive, only i's large negative: c_next = c_prev."""
    N, D, H = 3, 4, 5
    p = make_step(rng, N, D, H, scale=0.1)
    p["b"] = np.zeros(4 * H)
    p["b"][:H] = -40.0         # i closed
    p["b"][H:2 * H] = 40.0     # f open
    h, c, _ = lstm_step_forward(**p)
    np.testing.assert_allclose(c, p["c_prev"], rtol=1e-12, atol=1e-12)
    # and h_next = o * tanh(c_prev) with o from the last block
    a_o = p["x"] @ p["Wx"][:, 3 * H:] + p["h_prev"] @ p["Wh"][:, 3 * H:]
    np.testing.assert_allclose(h, np.tanh(p["c_prev"]) / (1 + np.exp(-a_o)), rtol=1e-10)


def test_gate_order_input_open_forget_closed(rng):
    """i open, f closed: c_next = tanh(a_g) from the third block (tanh, so it can be negative)."""
    N, D, H = 3, 4, 5
    p = make_step(rng, N, D, H, scale=1.0)
    p["b"] = np.zeros(4 * H)
    p["b"][:H] = 40.0
    p["b"][H:2 * H] = -40.0
    p["b"][3 * H:] = 40.0       # o open: h_next = tanh(c_next)
    h, c, _ = lstm_step_forward(**p)
    a_g = p["x"] @ p["Wx"][:, 2 * H:3 * H] + p["h_prev"] @ p["Wh"][:, 2 * H:3 * H]
    np.testing.assert_allclose(c, np.tanh(a_g), rtol=1e-10, atol=1e-12)
    assert (c < 0).any()
    np.testing.assert_allclose(h, np.tanh(np.tanh(a_g)), rtol=1e-10, atol=1e-12)
    p["b"][3 * H:] = -40.0      # o closed: h_next = 0
    h, _, _ = lstm_step_forward(**p)
    np.testing.assert_allclose(h, 0.0, atol=1e-12)


def test_gate_order_in_sequence_keeps_cell(rng):
    """Forget open, input closed over T steps: the cell keeps c0, so h_t = o_t * tanh(c0)."""
    p = make_seq(rng, 2, 6, 3, 4, scale=0.1)
    H = 4
    p["b"] = np.zeros(4 * H)
    p["b"][:H], p["b"][H:2 * H], p["b"][3 * H:] = -40.0, 40.0, 40.0
    h, _ = lstm_forward(**p)
    np.testing.assert_allclose(h, np.broadcast_to(np.tanh(p["c0"])[:, None], h.shape), rtol=1e-10)


# ----------------------------------------------------------------------------- torch and nn.LSTM
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("N,T,D,H", SHAPES, ids=SHAPE_IDS)
def test_forward_matches_nn_lstm(rng, device, N, T, D, H):
    from autograder.reference import lstm_module_from_weights

    p = make_seq(rng, N, T, D, H, scale=1.0)
    m = lstm_module_from_weights(p["Wx"], p["Wh"], p["b"], device=device)
    assert isinstance(m, torch.nn.LSTM) and m.batch_first
    assert (m.input_size, m.hidden_size, m.num_layers) == (D, H, 1)
    for param in m.parameters():
        assert param.dtype == torch.float64 and param.device.type == device
    np.testing.assert_array_equal(to_np(m.weight_ih_l0), p["Wx"].T)
    np.testing.assert_array_equal(to_np(m.weight_hh_l0), p["Wh"].T)
    np.testing.assert_array_equal(to_np(m.bias_ih_l0), p["b"])
    np.testing.assert_array_equal(to_np(m.bias_hh_l0), np.zeros(4 * H))
    x, h0, c0 = (torch.tensor(p[k], device=device) for k in ("x", "h0", "c0"))
    with torch.no_grad():
        out, (hn, cn) = m(x, (h0[None], c0[None]))
    h, cache = lstm_forward(**p)
    assert rel_error(h, to_np(out)) < TOL
    assert rel_error(h[:, -1], to_np(hn[0])) < TOL
    # final cell state, by chaining the steps
    hh, cc = p["h0"], p["c0"]
    for t in range(T):
        hh, cc, _ = lstm_step_forward(p["x"][:, t], hh, cc, p["Wx"], p["Wh"], p["b"])
    assert rel_error(cc, to_np(cn[0])) < TOL


def test_module_from_weights_dtype_float32(rng):
    from autograder.reference import lstm_module_from_weights

    p = make_seq(rng, 2, 3, 4, 5)
    m = lstm_module_from_weights(p["Wx"], p["Wh"], p["b"], dtype=torch.float32)
    assert all(q.dtype == torch.float32 for q in m.parameters())
    np.testing.assert_allclose(to_np(m.weight_ih_l0), p["Wx"].T, rtol=1e-7)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("with_c0", [True, False], ids=["c0", "no_c0"])
@pytest.mark.parametrize("N,T,D,H", SHAPES, ids=SHAPE_IDS)
def test_lstm_forward_torch_matches_numpy(rng, device, N, T, D, H, with_c0):
    from autograder.reference import lstm_forward_torch

    p = make_seq(rng, N, T, D, H, scale=1.0, with_c0=with_c0)
    ts = {k: torch.tensor(v, device=device) for k, v in p.items()}
    out = lstm_forward_torch(**ts)
    assert out.shape == (N, T, H) and out.dtype == torch.float64 and out.device.type == device
    assert rel_error(lstm_forward(**p)[0], to_np(out)) < TOL


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("N,T,D,H", SHAPES, ids=SHAPE_IDS)
def test_lstm_forward_torch_grads_match_nn_lstm(rng, device, N, T, D, H):
    """Gradients through LSTMCellFunction (hand-written backward) == nn.LSTM's autograd."""
    from autograder.reference import lstm_forward_torch, lstm_module_from_weights

    p = make_seq(rng, N, T, D, H)
    dh = torch.tensor(rng.standard_normal((N, T, H)), device=device)
    ts = {k: torch.tensor(v, device=device, requires_grad=True) for k, v in p.items()}
    (lstm_forward_torch(**ts) * dh).sum().backward()

    m = lstm_module_from_weights(p["Wx"], p["Wh"], p["b"], device=device)
    x, h0, c0 = (torch.tensor(p[k], device=device, requires_grad=True) for k in ("x", "h0", "c0"))
    out, _ = m(x, (h0[None], c0[None]))
    (out * dh).sum().backward()

    pairs = {
        "x": x.grad, "h0": h0.grad, "c0": c0.grad,
        "Wx": m.weight_ih_l0.grad.T, "Wh": m.weight_hh_l0.grad.T, "b": m.bias_ih_l0.grad,
    }
    for name, g in pairs.items():
        assert rel_error(to_np(ts[name].grad), to_np(g)) < TOL, name
    assert rel_error(to_np(ts["b"].grad), to_np(m.bias_hh_l0.grad)) < TOL
    # and the NumPy backward agrees with nn.LSTM as well
    h, cache = lstm_forward(**p)
    for name, g in zip(["x", "h0", "Wx", "Wh", "b"], lstm_backward(to_np(dh), cache)):
        assert rel_error(g, to_np(pairs[name])) < TOL, name


# ----------------------------------------------------------------------------- lstm_param_count
def test_param_count_value():
    assert lstm_param_count(50, 100) == 60_400
    assert lstm_param_count(1, 1) == 12
    assert type(lstm_param_count(np.int64(3), 4)) is int


@pytest.mark.parametrize("D,H", [(1, 1), (50, 100), (3, 7), (128, 64), (7, 2)])
def test_param_count_matches_nn_lstm(D, H):
    n_torch = sum(q.numel() for q in torch.nn.LSTM(D, H).parameters())
    assert lstm_param_count(D, H) == n_torch - 4 * H


@pytest.mark.parametrize("bad", [0, -1, 2.5, True, "3", None, np.float64(2.0)])
@pytest.mark.parametrize("which", ["input_size", "hidden_size"])
def test_param_count_rejects_bad_sizes(bad, which):
    args = {"input_size": 3, "hidden_size": 4, which: bad}
    with pytest.raises(ValueError, match=names_arg(which)):
        lstm_param_count(args["input_size"], args["hidden_size"])


# ----------------------------------------------------------------------------- validation
N0, T0, D0, H0 = 2, 3, 4, 5


def _step_args(rng):
    return make_step(rng, N0, D0, H0)


def _seq_args(rng):
    return make_seq(rng, N0, T0, D0, H0)


def _bad_values(name, value, first):
    """(label, bad value) pairs for one array argument."""
    bad = [
        ("rank+1", value[None]),
        ("float32", value.astype(np.float32)),
        ("int", value.astype(np.int64)),
        ("list", value.tolist()),
    ]
    if value.ndim > 1:
        bad.append(("rank-1", value[0]))
    if first:  # the first argument binds its dimensions: only an empty axis is a wrong shape
        bad.append(("empty", value[:0]))
    else:     # its first axis was bound by an earlier argument
        bad.append(("shape", np.concatenate([value, value[:1]], axis=0)))
    return bad


def _cases(builder, order):
    out = []
    rng = np.random.default_rng(1)
    args = builder(rng)
    for k, name in enumerate(order):
        for label, _ in _bad_values(name, args[name], first=k == 0):
            out.append(pytest.param(name, label, id=f"{name}-{label}"))
    return out


STEP_ORDER = ["x", "h_prev", "c_prev", "Wx", "Wh", "b"]
SEQ_ORDER = ["x", "h0", "Wx", "Wh", "b", "c0"]


@pytest.mark.parametrize("name,label", _cases(_step_args, STEP_ORDER))
def test_step_forward_rejects_bad_input(rng, name, label):
    args = _step_args(rng)
    args[name] = dict(_bad_values(name, args[name], first=name == "x"))[label]
    with pytest.raises(ValueError, match=names_arg(name)):
        lstm_step_forward(**args)


@pytest.mark.parametrize("name,label", _cases(_seq_args, SEQ_ORDER))
def test_forward_rejects_bad_input(rng, name, label):
    args = _seq_args(rng)
    args[name] = dict(_bad_values(name, args[name], first=name == "x"))[label]
    with pytest.raises(ValueError, match=names_arg(name)):
        lstm_forward(**args)


def test_forward_rejects_bad_wx_gate_axis(rng):
    args = _seq_args(rng)
    args["Wx"] = args["Wx"][:, :-1]  # 4H - 1 columns
    with pytest.raises(ValueError, match=names_arg("Wx")):
        lstm_forward(**args)
    args = _step_args(rng)
    args["Wh"] = args["Wh"][:, :-4]  # 4(H-1) columns: divisible by 4 but disagrees with h_prev
    with pytest.raises(ValueError, match=names_arg("Wh")):
        lstm_step_forward(**args)


@pytest.mark.parametrize("which", ["dh_next", "dc_next"])
@pytest.mark.parametrize("label", ["shape", "rank+1", "rank-1", "float32", "int", "list"])
def test_step_backward_rejects_bad_input(rng, which, label):
    _, _, cache = lstm_step_forward(**_step_args(rng))
    ups = {"dh_next": rng.standard_normal((N0, H0)), "dc_next": rng.standard_normal((N0, H0))}
    ups[which] = dict(_bad_values(which, ups[which], first=False))[label]
    with pytest.raises(ValueError, match=names_arg(which)):
        lstm_step_backward(ups["dh_next"], ups["dc_next"], cache)
    # the transposed shape (H, N) is wrong too
    ups[which] = rng.standard_normal((H0, N0))
    with pytest.raises(ValueError, match=names_arg(which)):
        lstm_step_backward(ups["dh_next"], ups["dc_next"], cache)


@pytest.mark.parametrize("label", ["shape", "rank+1", "rank-1", "float32", "int", "list"])
def test_backward_rejects_bad_input(rng, label):
    _, cache = lstm_forward(**_seq_args(rng))
    dh = dict(_bad_values("dh", rng.standard_normal((N0, T0, H0)), first=False))[label]
    with pytest.raises(ValueError, match=names_arg("dh")):
        lstm_backward(dh, cache)
    with pytest.raises(ValueError, match=names_arg("dh")):
        lstm_backward(rng.standard_normal((N0, T0 + 1, H0)), cache)


# ----------------------------------------------------------------------------- no side effects
def _assert_same(before, after):
    for k in before:
        np.testing.assert_array_equal(after[k], before[k], err_msg=k)


def test_step_functions_do_not_modify_inputs(rng):
    args = _step_args(rng)
    saved = copy.deepcopy(args)
    h, c, cache = lstm_step_forward(**args)
    _assert_same(saved, args)
    for out in (h, c):
        assert not any(np.shares_memory(out, a) for a in args.values())
    ups = {"dh": rng.standard_normal((N0, H0)), "dc": rng.standard_normal((N0, H0))}
    ups_saved, cache_saved = copy.deepcopy(ups), copy.deepcopy(cache)
    g1 = lstm_step_backward(ups["dh"], ups["dc"], cache)
    _assert_same(saved, args)
    _assert_same(ups_saved, ups)
    for a, b in zip(cache, cache_saved):
        np.testing.assert_array_equal(a, b)
    g2 = lstm_step_backward(ups["dh"], ups["dc"], cache)  # a second call gives the same
    for a, b in zip(g1, g2):
        np.testing.assert_array_equal(a, b)
    for g in g1:
        assert not any(np.shares_memory(g, a) for a in list(args.values()) + list(ups.values()))


@pytest.mark.parametrize("with_c0", [True, False], ids=["c0", "no_c0"])
def test_sequence_functions_do_not_modify_inputs(rng, with_c0):
    args = make_seq(rng, N0, T0, D0, H0, with_c0=with_c0)
    saved = copy.deepcopy(args)
    h, cache = lstm_forward(**args)
    _assert_same(saved, args)
    assert not any(np.shares_memory(h, a) for a in args.values())
    dh = rng.standard_normal((N0, T0, H0))
    dh_saved, h_saved = dh.copy(), h.copy()
    cache_saved = copy.deepcopy(cache)
    g1 = lstm_backward(dh, cache)
    _assert_same(saved, args)
    np.testing.assert_array_equal(dh, dh_saved)
    np.testing.assert_array_equal(h, h_saved)
    for a, b in zip(cache, cache_saved):
        np.testing.assert_array_equal(a, b)
    g2 = lstm_backward(dh, cache)
    for a, b in zip(g1, g2):
        np.testing.assert_array_equal(a, b)
    # a second forward gives the same result
    np.testing.assert_array_equal(lstm_forward(**args)[0], h)
