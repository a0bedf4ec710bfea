"""Tests of autograder.lab.gru_conventions: the four GRU conventions of chapter 7.

Covers: the PyTorch convention equals the reference gru_forward and nn.GRU; the two update
conventions are the same model with the sign of the update gate's weights flipped; the two
reset placements differ in general but agree when H = 1 with a zero hidden bias on n, or when
every unit has the same reset value; GRUVariant's shapes, gradients and initialization; and
argument validation.
"""
import numpy as np
import pytest
import torch

from autograder.lab.gru_conventions import GRUVariant, gru_variant_forward
from autograder.reference import gru_forward, gru_module_from_weights
from conftest import DEVICES


def make(rng, N=3, T=6, D=4, H=5, scale=0.8):
    return dict(
        x=rng.standard_normal((N, T, D)), h0=rng.standard_normal((N, H)),
        Wx=scale * rng.standard_normal((D, 3 * H)), Wh=scale * rng.standard_normal((H, 3 * H)),
        bx=scale * rng.standard_normal(3 * H), bh=scale * rng.standard_normal(3 * H),
    )


def flip_z(p):
    """The same model in the other update convention: negate the z block (H:2H) of every parameter."""
    H = p["h0"].shape[1]
    q = {k: v.copy() for k, v in p.items()}
    for k in ("Wx", "Wh", "bx", "bh"):
        q[k][..., H:2 * H] *= -1
    return q


def run(p, **kw):
    return gru_variant_forward(*(torch.tensor(p[k]) for k in ("x", "h0", "Wx", "Wh", "bx", "bh")), **kw).numpy()


def test_pytorch_convention_equals_reference(rng):
    p = make(rng)
    h_ref, _ = gru_forward(**p)
    np.testing.assert_allclose(run(p, reset="after", update="old"), h_ref, rtol=0, atol=1e-12)


@pytest.mark.parametrize("device", DEVICES)
def test_pytorch_convention_equals_nn_gru(rng, device):
    p = make(rng)
    m = gru_module_from_weights(p["Wx"], p["Wh"], p["bx"], p["bh"], device=device)
    with torch.no_grad():
        out, _ = m(torch.tensor(p["x"], device=device), torch.tensor(p["h0"], device=device)[None])
        mine = gru_variant_forward(*(torch.tensor(p[k], device=device)
                                     for k in ("x", "h0", "Wx", "Wh", "bx", "bh")))
    np.testing.assert_allclose(mine.cpu().numpy(), out.cpu().numpy(), rtol=0, atol=1e-12)


@pytest.mark.parametrize("reset", ["after", "before"])
def test_update_conventions_are_one_model(rng, reset):
    p = make(rng)
    a = run(p, reset=reset, update="old")
    b = run(flip_z(p), reset=reset, update="new")
    np.testing.assert_allclose(a, b, rtol=0, atol=1e-12)
    assert np.abs(run(p, reset=reset, update="new") - a).max() > 1e-2  # not without the flip


def test_reset_placements_differ_in_general(rng):
    p = make(rng)
    assert np.abs(run(p, reset="after") - run(p, reset="before")).max() > 1e-2


def test_reset_placements_agree_for_one_unit_without_hidden_bias(rng):
    p = make(rng, H=1)
    p["bh"][2] = 0.0  # bh_n: reset-after multiplies it by r, reset-before does not
    np.testing.assert_allclose(run(p, reset="after"), run(p, reset="before"), rtol=0, atol=1e-12)


def test_reset_placements_agree_when_reset_is_uniform(rng):
    p = make(rng)
    H = p["h0"].shape[1]
    p["Wx"][:, :H] = 0.0
    p["Wh"][:, :H] = 0.0
    p["bx"][:H], p["bh"][:H] = 0.3, 0.0  # every unit has r = sigmoid(0.3) at every step
    p["bh"][2 * H:] = 0.0
    np.testing.assert_allclose(run(p, reset="after"), run(p, reset="before"), rtol=0, atol=1e-12)


@pytest.mark.parametrize("reset", ["after", "before"])
@pytest.mark.parametrize("update", ["old", "new"])
def test_variant_module(reset, update):
    torch.manual_seed(0)
    m = GRUVariant(3, 4, reset=reset, update=update, dtype=torch.float64)
    assert m.Wx.shape == (3, 12) and m.Wh.shape == (4, 12) and m.bx.shape == m.bh.shape == (12,)
    for p in m.parameters():
        assert p.abs().max() <= 0.5  # uniform in +-1/sqrt(4)
    x = torch.randn(2, 5, 3, dtype=torch.float64)
    h = m(x)
    assert h.shape == (2, 5, 4)
    h.sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in m.parameters())
    assert torch.autograd.gradcheck(lambda x: m(x), (x.clone().requires_grad_(),))


def test_bad_arguments(rng):
    p = make(rng)
    with pytest.raises(ValueError, match="reset"):
        run(p, reset="middle")
    with pytest.raises(ValueError, match="update"):
        run(p, update="both")
    with pytest.raises(ValueError, match="Wh"):
        gru_variant_forward(p["x"], p["h0"], p["Wx"], p["Wh"][:, :-1], p["bx"], p["bh"])
    with pytest.raises(ValueError, match="x"):
        gru_variant_forward(p["x"][0], p["h0"], p["Wx"], p["Wh"], p["bx"], p["bh"])
    with pytest.raises(ValueError, match="reset"):
        GRUVariant(2, 3, reset="never")
