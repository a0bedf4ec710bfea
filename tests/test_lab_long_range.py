"""Tests of autograder.lab.long_range (the experiment helpers of chapter 8)."""
import time

import numpy as np
import pytest
import torch

from autograder.lab.data import adding_tensors
from autograder.lab.long_range import (MODELS, StepLSTM, input_grad_norms, make_adding_model,
                                       marked_value_sensitivity, run_jobs, smooth, train_adding)
from autograder.lab.models import last_step_mse
from autograder.reference import LSTMCellFunction


@pytest.mark.parametrize("name", list(MODELS))
def test_make_adding_model_builds_every_contestant(name):
    m = make_adding_model(name, 6, seed=1)
    x, _ = adding_tensors(3, 7, np.random.default_rng(0))
    y, _ = m(x)
    assert y.shape == (3, 7, 1) and m.cell == MODELS[name][0]


def test_make_adding_model_is_seeded_and_orthogonal():
    a, b = make_adding_model("rnn-orth", 8, seed=3), make_adding_model("rnn-orth", 8, seed=3)
    for p, q in zip(a.parameters(), b.parameters()):
        assert torch.equal(p, q)
    W = a.rnn.weight_hh_l0.detach().double()
    torch.testing.assert_close(W @ W.T, torch.eye(8, dtype=torch.float64), atol=1e-6, rtol=0)


def test_forget_bias_sets_the_sum_of_both_biases():
    H = 5
    m = make_adding_model("lstm", H, forget_bias=1.0)
    total = (m.rnn.bias_ih_l0 + m.rnn.bias_hh_l0).detach()
    torch.testing.assert_close(total[H:2 * H], torch.ones(H))
    with pytest.raises(ValueError, match="^forget_bias"):
        make_adding_model("gru", H, forget_bias=1.0)
    with pytest.raises(ValueError, match="^name"):
        make_adding_model("transformer", H)


def test_adding_tensors_and_loss():
    x, y = adding_tensors(4, 10, np.random.default_rng(0))
    assert x.shape == (4, 10, 2) and y.shape == (4, 1) and x.dtype == torch.float32
    torch.testing.assert_close(y[:, 0], (x[:, :, 0] * x[:, :, 1]).sum(1))
    m = make_adding_model("gru", 4)
    expected = ((m(x)[0][:, -1] - y) ** 2).mean()
    torch.testing.assert_close(last_step_mse(m, x, y), expected)


def test_input_grad_norms_matches_autograd_by_hand():
    m = make_adding_model("lstm", 4, seed=2).double()
    x, _ = adding_tensors(3, 6, np.random.default_rng(1))
    x = x.double()
    got = input_grad_norms(m, x)
    assert got.shape == (6,)
    assert all(p.grad is None for p in m.parameters())  # leaves no gradients behind
    per_seq = []
    for b in range(3):
        xb = x[b:b + 1].clone().requires_grad_(True)
        m(xb)[0][0, -1, 0].backward()
        per_seq.append(xb.grad[0].norm(dim=1) ** 2)
    expected = torch.stack(per_seq).mean(0).sqrt().numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-10)


def test_marked_value_sensitivity_matches_finite_differences():
    m = make_adding_model("gru", 5, seed=0).double()
    x, _ = adding_tensors(2, 8, np.random.default_rng(4))
    x = x.double()
    got = marked_value_sensitivity(m, x)
    assert got.shape == (2, 2)
    eps = 1e-6
    for b in range(2):
        pos = torch.nonzero(x[b, :, 1] > 0.5)[:, 0]
        for k, t in enumerate(pos):
            xp, xm = x.clone(), x.clone()
            xp[b, t, 0] += eps
            xm[b, t, 0] -= eps
            with torch.no_grad():
                fd = (m(xp)[0][b, -1, 0] - m(xm)[0][b, -1, 0]) / (2 * eps)
            assert abs(got[b, k] - float(fd)) < 1e-6
    bad = x.clone()
    bad[0, :, 1] = 0.0
    with pytest.raises(ValueError, match="^x"):
        marked_value_sensitivity(m, bad)


def test_train_adding_is_deterministic_and_returns_a_loadable_state():
    kw = dict(name="rnn", T=6, hidden_size=4, batch_size=8, steps=5, test_size=20, seed=0)
    t0 = time.process_time()
    r1 = train_adding(**kw)
    spent = time.process_time() - t0
    r2 = train_adding(**kw)
    assert len(r1["loss"]) == 5 and len(r1["grad_norm"]) == 5
    assert r1["loss"] == r2["loss"] and r1["test_mse"] == r2["test_mse"]
    assert 0.0 < r1["test_baseline"] < 1.0
    assert 0.0 < r1["seconds"] <= spent  # the CPU time of the training, within the call's
    m = make_adding_model("rnn", 4)
    m.load_state_dict(r1["state"])


def test_models_at_one_length_see_the_same_batches():
    """The batch generator depends on (seed, T) only, so two cells get identical data."""
    a = train_adding("rnn", 5, hidden_size=3, batch_size=4, steps=1, test_size=10)
    b = train_adding("gru", 5, hidden_size=3, batch_size=4, steps=1, test_size=10)
    assert a["test_baseline"] == b["test_baseline"]


def _square(v):
    return v * v


def test_run_jobs_in_process_and_in_workers():
    jobs = [dict(v=i) for i in range(4)]
    assert run_jobs(_square, jobs, workers=1) == [0, 1, 4, 9]
    assert run_jobs(_square, jobs, workers=2) == [0, 1, 4, 9]


def test_smooth_is_a_trailing_mean():
    v = np.arange(10.0)
    out = smooth(v, window=3)
    expected = [np.mean(v[max(0, i - 2):i + 1]) for i in range(10)]
    np.testing.assert_allclose(out, expected)


def test_step_lstm_matches_nn_lstm_forward_and_backward():
    torch.manual_seed(0)
    ref = make_adding_model("lstm", 6, seed=5, forget_bias=1.0).double()
    step = StepLSTM.from_sequence_model(ref, LSTMCellFunction.apply).double()
    x, y = adding_tensors(3, 9, np.random.default_rng(2))
    x, y = x.double(), y.double()
    out_ref, (h_ref, c_ref) = ref(x)
    out_step, (h_step, c_step) = step(x)
    torch.testing.assert_close(out_step, out_ref)
    torch.testing.assert_close(h_step, h_ref[0])
    torch.testing.assert_close(c_step, c_ref[0])
    last_step_mse(ref, x, y).backward()
    last_step_mse(step, x, y).backward()
    torch.testing.assert_close(step.Wh.grad, ref.rnn.weight_hh_l0.grad.T)
    torch.testing.assert_close(step.Wx.grad, ref.rnn.weight_ih_l0.grad.T)
    torch.testing.assert_close(step.b.grad, ref.rnn.bias_ih_l0.grad)
