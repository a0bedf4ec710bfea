"""Tests of the NumPy LSTM reference (autograder.reference.lstm) and its PyTorch counterparts.

Covers: numerical and torch.autograd gradient checks of every backward, forward equality with
nn.LSTM (weight mapping included) on every device, step == one step of the sequence, sequence
backward == chained step backwards, the i, f, g, o gate order, lstm_param_count, argument
validation and the absence of side effects on the inputs; the peephole step (Graves's form)
against finite differences, autograd and, with zero peepholes, the plain step.
"""
from functools import partial

import numpy as np
import pytest
import torch

from autograder.reference import (lstm_backward, lstm_forward, lstm_param_count,
                                  lstm_peephole_step_backward, lstm_peephole_step_forward,
                                  lstm_step_backward, lstm_step_forward)
from conftest import DEVICES
from coursekit.gradcheck import rel_error
from helpers import (BAD_LABELS, assert_backward_matches_autograd, assert_backward_numerical,
                     assert_no_side_effects, assert_rejects, autograd_grads, bad_cases,
                     lstm_step_args, names_arg, recurrent_blame, to_np)

# (N, T, D, H); the step tests ignore T.
SHAPES = [(1, 1, 1, 1), (2, 3, 4, 5), (3, 7, 2, 1), (1, 5, 3, 6)]
SHAPE_IDS = ["x".join(map(str, s)) for s in SHAPES]
SMALL = N0, T0, D0, H0 = 2, 3, 4, 5  # the argument-checking tests
TOL = 1e-6  # max relative error allowed between two float64 gradients
SEQ_GRADS = ["x", "h0", "Wx", "Wh", "b"]  # lstm_backward returns no gradient of c0
# "seq_no_c0": lstm_forward with c0 left out (None, zeros)
KINDS = ["step", "seq", "seq_no_c0"]
FORWARD = {"step": lstm_step_forward, "seq": lstm_forward, "seq_no_c0": lstm_forward}
BACKWARD = {"step": lstm_step_backward, "seq": lstm_backward, "seq_no_c0": lstm_backward}
GRAD_NAMES = {"step": None, "seq": SEQ_GRADS, "seq_no_c0": SEQ_GRADS}


# ----------------------------------------------------------------------------- helpers
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


def make_args(rng, kind, N, T, D, H, scale=0.5):
    """Keyword arguments of the function FORWARD[kind]."""
    if kind == "step":
        return lstm_step_args(rng, N, D, H, scale)
    return make_seq(rng, N, T, D, H, scale, with_c0=kind == "seq")


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


TORCH = {"step": torch_lstm_step, "seq": torch_lstm_seq, "seq_no_c0": torch_lstm_seq}


# ----------------------------------------------------------------------------- backward
@pytest.mark.parametrize("kind", ["step", "seq"])
@pytest.mark.parametrize("N,T,D,H", SHAPES, ids=SHAPE_IDS)
def test_backward_numerical(rng, kind, N, T, D, H):
    """Of both outputs of the step, so that dc_next is checked too."""
    p = make_args(rng, kind, N, T, D, H)
    assert FORWARD[kind](**p)[0].shape == p["x"].shape[:-1] + (H,)
    assert_backward_numerical(FORWARD[kind], BACKWARD[kind], p, rng, GRAD_NAMES[kind], tol=TOL)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("N,T,D,H", SHAPES, ids=SHAPE_IDS)
def test_backward_matches_autograd(rng, kind, N, T, D, H):
    p = make_args(rng, kind, N, T, D, H)
    assert_backward_matches_autograd(FORWARD[kind], BACKWARD[kind], TORCH[kind], p, rng,
                                     GRAD_NAMES[kind], tol=TOL)


def test_step_backward_dc_next_alone(rng):
    """With dh_next = 0 the gradient flows only through c_next: dc_prev = f * dc_next."""
    p = lstm_step_args(rng, 3, 4, 5)
    dc = rng.standard_normal((3, 5))
    _, _, cache = lstm_step_forward(**p)
    out = lstm_step_backward(np.zeros((3, 5)), dc, cache)
    ref = autograd_grads(torch_lstm_step, p, [np.zeros((3, 5)), dc])
    for name, g in zip(p, out):
        assert rel_error(g, ref[name]) < TOL, name
    a_f = p["x"] @ p["Wx"][:, 5:10] + p["h_prev"] @ p["Wh"][:, 5:10] + p["b"][5:10]
    np.testing.assert_allclose(out[2], dc / (1 + np.exp(-a_f)), rtol=1e-12)
    # the output gate gets no gradient when h_next does not reach the loss
    np.testing.assert_array_equal(out[5][15:], 0.0)


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
    p = lstm_step_args(rng, N, D, H)
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
    for name, a, b in zip(SEQ_GRADS, lstm_backward(dh, cache),
                          [dx, dh_carry, dWx, dWh, db]):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12, err_msg=name)


# ----------------------------------------------------------------------------- gate order
def test_gate_order_forget_open_input_closed(rng):
    """Only f's bias block large positive, only i's large negative: c_next = c_prev."""
    N, D, H = 3, 4, 5
    p = lstm_step_args(rng, N, D, H, scale=0.1)
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
    p = lstm_step_args(rng, N, D, H, scale=1.0)
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
    for name, g in zip(SEQ_GRADS, lstm_backward(to_np(dh), cache)):
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
BLAME = {"step": recurrent_blame("h_prev", next_with_H="c_prev"), "seq": recurrent_blame("h0")}
BAD_FORWARD = [case for kind in BLAME
               for case in bad_cases(make_args(np.random.default_rng(1), kind, *SMALL), BLAME[kind], kind)]


@pytest.mark.parametrize("kind,name,label,pattern", BAD_FORWARD)
def test_forward_rejects_bad_input(rng, kind, name, label, pattern):
    assert_rejects(FORWARD[kind], make_args(rng, kind, *SMALL), name, label, pattern)


def test_forward_rejects_bad_wx_gate_axis(rng):
    args = make_args(rng, "seq", *SMALL)
    args["Wx"] = args["Wx"][:, :-1]  # 4H - 1 columns
    with pytest.raises(ValueError, match=names_arg("Wx")):
        lstm_forward(**args)
    args = make_args(rng, "step", *SMALL)
    args["Wh"] = args["Wh"][:, :-4]  # 4(H-1) columns: divisible by 4 but disagrees with h_prev
    with pytest.raises(ValueError, match=names_arg("Wh")):
        lstm_step_forward(**args)


UPSTREAM = {"step": ("dh_next", "dc_next"), "seq": ("dh",)}  # the backwards' gradient arguments


@pytest.mark.parametrize("label", BAD_LABELS)
@pytest.mark.parametrize("kind,name", [(k, n) for k in UPSTREAM for n in UPSTREAM[k]])
def test_backward_rejects_bad_input(rng, kind, name, label):
    *outs, cache = FORWARD[kind](**make_args(rng, kind, *SMALL))
    ups = {n: rng.standard_normal(o.shape) for n, o in zip(UPSTREAM[kind], outs, strict=True)}
    assert_rejects(partial(BACKWARD[kind], cache=cache), ups, name, label)


def test_backward_rejects_wrong_T(rng):
    _, cache = lstm_forward(**make_args(rng, "seq", *SMALL))
    with pytest.raises(ValueError, match=names_arg("dh")):
        lstm_backward(rng.standard_normal((N0, T0 + 1, H0)), cache)


# ----------------------------------------------------------------------------- no side effects
@pytest.mark.parametrize("kind", KINDS)
def test_functions_do_not_modify_inputs(rng, kind):
    assert_no_side_effects(FORWARD[kind], BACKWARD[kind], make_args(rng, kind, *SMALL), rng)


# ----------------------------------------------------------------------------- peephole LSTM
def peephole_args(rng, N, D, H, scale=0.5):
    """Keyword arguments of lstm_peephole_step_forward: the LSTM step's and p (3, H)."""
    return {**lstm_step_args(rng, N, D, H, scale), "p": scale * rng.standard_normal((3, H))}


def torch_peephole_step(x, h_prev, c_prev, Wx, Wh, b, p):
    """Graves's peephole step in plain torch ops: i, f read c_prev, o reads c_next."""
    H = h_prev.shape[1]
    a = x @ Wx + h_prev @ Wh + b
    i = torch.sigmoid(a[:, :H] + c_prev * p[0])
    f = torch.sigmoid(a[:, H:2 * H] + c_prev * p[1])
    c_next = f * c_prev + i * torch.tanh(a[:, 2 * H:3 * H])
    o = torch.sigmoid(a[:, 3 * H:] + c_next * p[2])
    return o * torch.tanh(c_next), c_next


@pytest.mark.parametrize("N,T,D,H", SHAPES, ids=SHAPE_IDS)
def test_peephole_backward_numerical_and_autograd(rng, N, T, D, H):
    p = peephole_args(rng, N, D, H)
    assert_backward_numerical(lstm_peephole_step_forward, lstm_peephole_step_backward, p, rng,
                              tol=TOL)
    assert_backward_matches_autograd(lstm_peephole_step_forward, lstm_peephole_step_backward,
                                     torch_peephole_step, p, rng, tol=TOL)


def test_peephole_zero_is_the_lstm_step(rng):
    p = peephole_args(rng, 3, 4, 5)
    p["p"] = np.zeros((3, 5))
    *out, cache = lstm_peephole_step_forward(**p)
    *plain, plain_cache = lstm_step_forward(**{k: v for k, v in p.items() if k != "p"})
    for a, b in zip(out, plain):
        np.testing.assert_allclose(a, b, rtol=1e-14, atol=1e-15)
    up = [rng.standard_normal((3, 5)) for _ in range(2)]
    for a, b in zip(lstm_peephole_step_backward(*up, cache), lstm_step_backward(*up, plain_cache)):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)


def test_peephole_output_gate_reads_the_new_cell(rng):
    """Zero weights and biases, p_o large: o = sigmoid(p_o * c_next), not of c_prev."""
    N, D, H = 2, 3, 4
    p = peephole_args(rng, N, D, H)
    p["Wx"][:], p["Wh"][:], p["b"][:] = 0.0, 0.0, 0.0
    p["p"] = np.stack([np.zeros(H), np.zeros(H), np.full(H, 2.0)])
    h, c, _ = lstm_peephole_step_forward(**p)
    np.testing.assert_allclose(c, 0.5 * p["c_prev"], rtol=1e-14)  # f = 1/2, g = 0
    np.testing.assert_allclose(h, np.tanh(c) / (1.0 + np.exp(-2.0 * c)), rtol=1e-12)


@pytest.mark.parametrize("label", BAD_LABELS)
def test_peephole_rejects_bad_p(rng, label):
    assert_rejects(lstm_peephole_step_forward, peephole_args(rng, N0, D0, H0), "p", label)


def test_peephole_functions_do_not_modify_inputs(rng):
    assert_no_side_effects(lstm_peephole_step_forward, lstm_peephole_step_backward,
                           peephole_args(rng, N0, D0, H0), rng)
