"""Tests of autograder.lab.regularization (the experiment helpers of chapter 11) and its task."""
import numpy as np
import pytest
import torch
from torch import nn

from autograder.lab.data import remember_first_tensors
from autograder.lab.regularization import (MASK_MODES, StateDropoutGRU, gru_cell_from_layer,
                                           gru_step_reading,
                                           gru_states_with_state_dropout, linear_recoverability,
                                           rnn_preactivation_stats)


def test_remember_first_tensors():
    x, y = remember_first_tensors(5, 7, np.random.default_rng(0))
    assert x.shape == (5, 7, 2) and y.shape == (5, 1)
    torch.testing.assert_close(y[:, 0], x[:, 0, 0])
    assert torch.equal(x[:, :, 1].sum(1), torch.ones(5)) and torch.all(x[:, 0, 1] == 1)


def _gru_and_input(H=5, T=6, N=4, seed=0):
    torch.manual_seed(seed)
    gru = nn.GRU(2, H, batch_first=True).double()
    x = torch.randn(N, T, 2, dtype=torch.float64)
    return gru, x


def test_gru_cell_from_layer_and_unmasked_states_match_nn_gru():
    gru, x = _gru_and_input()
    cell = gru_cell_from_layer(gru).double()
    with torch.no_grad():
        expected, _ = gru(x)
        for mode in MASK_MODES:
            p = 0.0 if mode != "none" else 0.3  # p = 0 or mode none: no effect
            got = gru_states_with_state_dropout(cell, x, p, mode, seed=1)
            torch.testing.assert_close(got, expected)


def test_fixed_mask_is_the_same_at_every_step_and_fresh_masks_are_not():
    gru, x = _gru_and_input(H=16, T=8, N=3)
    cell = gru_cell_from_layer(gru).double()
    with torch.no_grad():
        fixed = gru_states_with_state_dropout(cell, x, 0.5, "fixed", seed=0)
        fresh = gru_states_with_state_dropout(cell, x, 0.5, "per_step", seed=0)
    zero_fixed = fixed == 0
    assert zero_fixed.any()
    assert torch.equal(zero_fixed, zero_fixed[:, :1].expand_as(zero_fixed))
    zero_fresh = fresh == 0
    assert not torch.equal(zero_fresh, zero_fresh[:, :1].expand_as(zero_fresh))
    with pytest.raises(ValueError, match="^mode"):
        gru_states_with_state_dropout(cell, x, 0.5, "sometimes")
    with pytest.raises(ValueError, match="^p"):
        gru_states_with_state_dropout(cell, x, 1.0, "fixed")


def test_gru_step_reading_its_own_state_is_the_cell():
    gru, x = _gru_and_input()
    cell = gru_cell_from_layer(gru).double()
    h = torch.randn(x.shape[0], 5, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(gru_step_reading(cell, x[:, 0], h, h), cell(x[:, 0], h))


def test_variational_mask_reaches_the_gates_but_never_rescales_the_state():
    """Gal and Ghahramani's placement: a unit dropped for the whole sequence still carries
    its value through z * h (no zero in the state, no 1/(1 - p) growth), and the gates read
    the masked state, so the states differ from the unmasked run."""
    gru, x = _gru_and_input(H=16, T=40, N=3)
    cell = gru_cell_from_layer(gru).double()
    with torch.no_grad():
        plain = gru_states_with_state_dropout(cell, x, 0.5, "none")
        gal = gru_states_with_state_dropout(cell, x, 0.5, "variational", seed=0)
        carried = gru_states_with_state_dropout(cell, x, 0.5, "fixed", seed=0)
    assert not torch.allclose(gal, plain)
    assert (gal == 0).sum() == 0 and gal.abs().max() < 1  # a convex mix of tanh values
    assert (carried == 0).any() and carried.abs().max() > 1  # the carried mask scales by 2


def test_state_dropout_gru_modes_and_update_bias():
    H = 4
    net = StateDropoutGRU(2, H, 1, p=0.5, mode="per_step", update_bias=2.0, seed=0).double()
    total = (net.cell.bias_ih + net.cell.bias_hh).detach()
    torch.testing.assert_close(total[H:2 * H], torch.full((H,), 2.0, dtype=torch.float64))
    x, _ = remember_first_tensors(3, 5, np.random.default_rng(0))
    x = x.double()
    net.eval()
    with torch.no_grad():
        y_eval, h_last = net(x)
        expected = gru_states_with_state_dropout(net.cell, x, 0.0, "none")
    torch.testing.assert_close(y_eval, net.head(expected))
    torch.testing.assert_close(h_last, expected[:, -1])
    net.train()
    with torch.no_grad():
        y_train, _ = net(x)
    assert not torch.allclose(y_train, y_eval)


def test_linear_recoverability():
    rng = np.random.default_rng(0)
    N, T, H = 400, 3, 4
    target = rng.standard_normal(N)
    h = rng.standard_normal((N, T, H))
    h[:, 0, 0] = 2.0 * target + 1.0  # step 1 holds the target exactly
    r2 = linear_recoverability(h, target, n_fit=200)
    assert r2.shape == (T,)
    assert r2[0] > 0.999 and abs(r2[1]) < 0.1 and abs(r2[2]) < 0.1
    r2_t = linear_recoverability(torch.as_tensor(h), target, n_fit=200)
    np.testing.assert_allclose(r2_t, r2)
    with pytest.raises(ValueError, match="^n_fit"):
        linear_recoverability(h, target, n_fit=N)


def test_rnn_preactivation_stats():
    H = 16
    s = rnn_preactivation_stats(12, H, 2.0, layer_norm=True, batch_size=32)
    assert s["std"].shape == (12,) and s["saturated"].shape == (12,)
    np.testing.assert_allclose(s["std"], np.sqrt(H / (H - 1)), rtol=1e-3)  # LN: unit spread
    big = rnn_preactivation_stats(30, H, 3.0, layer_norm=False, activation="relu", batch_size=32)
    assert big["std"][-1] > 100 * big["std"][0]  # a ReLU RNN with a large W_hh explodes
    with pytest.raises(ValueError, match="^activation"):
        rnn_preactivation_stats(5, H, 1.0, False, activation="gelu")
