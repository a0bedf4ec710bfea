"""Tests of orthogonal initialization and gradient clipping against their torch counterparts."""
import numpy as np
import pytest
import torch

from autograder.reference import clip_grad_norm, clip_grad_value, orthogonal
from coursekit.gradcheck import rel_error
from helpers import assert_unchanged, names_arg

ORTHO_SHAPES = [(5, 5), (3, 7), (7, 3), (4, 2, 3), (3, 2, 2, 2), (1, 4), (4, 1), (1, 1)]


def _check_orthogonal(W2, gain, atol=1e-12):
    rows, cols = W2.shape
    if rows <= cols:
        np.testing.assert_allclose(W2 @ W2.T, gain**2 * np.eye(rows), atol=atol)
    else:
        np.testing.assert_allclose(W2.T @ W2, gain**2 * np.eye(cols), atol=atol)
    np.testing.assert_allclose(np.linalg.svd(W2, compute_uv=False), abs(gain), rtol=1e-12)


# ----------------------------------------------------------------------------- orthogonal

@pytest.mark.parametrize("shape", ORTHO_SHAPES)
@pytest.mark.parametrize("gain", [1.0, 2.0])
def test_orthogonal_is_orthogonal(shape, gain):
    W = orthogonal(shape, gain=gain, rng=0)
    assert isinstance(W, np.ndarray) and W.shape == shape and W.dtype == np.float64
    _check_orthogonal(W.reshape(shape[0], -1), gain)  # flattened like torch: rows x rest


@pytest.mark.parametrize("shape", ORTHO_SHAPES)
def test_torch_orthogonal_has_the_same_properties(shape):
    """torch.nn.init.orthogonal_ on a same-shape tensor: the same (semi-)orthogonality and the
    same singular values (all equal to gain) as ours."""
    torch.manual_seed(0)
    t = torch.nn.init.orthogonal_(torch.empty(shape, dtype=torch.float64), gain=2.0)
    Wt = t.numpy().reshape(shape[0], -1)
    W = orthogonal(shape, gain=2.0, rng=0).reshape(shape[0], -1)
    _check_orthogonal(Wt, 2.0)
    _check_orthogonal(W, 2.0)
    np.testing.assert_allclose(np.linalg.svd(W, compute_uv=False),
                               np.linalg.svd(Wt, compute_uv=False), rtol=1e-12)
    rows, cols = W.shape
    side = W @ W.T if rows <= cols else W.T @ W
    side_t = Wt @ Wt.T if rows <= cols else Wt.T @ Wt
    np.testing.assert_allclose(side, side_t, atol=1e-12)


def test_orthogonal_seeding():
    shape = (6, 4)
    a, b = orthogonal(shape, rng=123), orthogonal(shape, rng=123)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, orthogonal(shape, rng=124))
    # Generators: same seed, same matrix; a generator advances, so two draws differ.
    g1, g2 = np.random.default_rng(7), np.random.default_rng(7)
    first = orthogonal(shape, rng=g1)
    np.testing.assert_array_equal(first, orthogonal(shape, rng=g2))
    assert not np.allclose(first, orthogonal(shape, rng=g1))
    np.testing.assert_array_equal(orthogonal(shape, rng=np.int64(5)), orthogonal(shape, rng=5))
    # No seed: a fresh random matrix each time, still orthogonal.
    n1, n2 = orthogonal(shape), orthogonal(shape)
    assert not np.allclose(n1, n2)
    _check_orthogonal(n1, 1.0)


def _stats(samples):
    """Statistics of Haar-distributed 3x3 orthogonal matrices: E[W00] = 0, E[W00^2] = 1/3,
    E[trace] = 0, E[trace^2] = 1, E[det] = 0 (det = +1 and -1 equally often)."""
    S = np.stack(samples)
    tr = np.trace(S, axis1=1, axis2=2)
    return dict(w00=S[:, 0, 0].mean(), w00sq=(S[:, 0, 0] ** 2).mean(), diag=np.mean(
        np.diagonal(S, axis1=1, axis2=2)), tr=tr.mean(), tr2=(tr**2).mean(),
        det=np.linalg.det(S).mean())


def test_orthogonal_distribution_matches_torch():
    """The sign fix by R's diagonal makes the result Haar-distributed; without it the QR sign
    convention biases it (e.g. W[0, 0] < 0 always and det constant). torch does the same fix,
    so both sets of statistics sit at the Haar values."""
    n = 3000
    rng = np.random.default_rng(0)
    ours = _stats([orthogonal((3, 3), rng=rng) for _ in range(n)])
    torch.manual_seed(0)
    theirs = _stats([torch.nn.init.orthogonal_(torch.empty(3, 3, dtype=torch.float64)).numpy()
                     for _ in range(n)])
    haar = dict(w00=0.0, w00sq=1 / 3, diag=0.0, tr=0.0, tr2=1.0, det=0.0)
    tol = dict(w00=0.05, w00sq=0.03, diag=0.04, tr=0.08, tr2=0.1, det=0.08)
    for key in haar:
        assert abs(ours[key] - haar[key]) < tol[key], (key, ours[key])
        assert abs(theirs[key] - haar[key]) < tol[key], (key, theirs[key])
        assert abs(ours[key] - theirs[key]) < 2 * tol[key], key


def test_orthogonal_1x1_sign_is_random():
    """A 1x1 orthogonal matrix is +-1 with probability 1/2 each (a plain QR always gives +1)."""
    rng = np.random.default_rng(1)
    vals = np.array([orthogonal((1, 1), rng=rng)[0, 0] for _ in range(2000)])
    np.testing.assert_array_equal(np.abs(vals), 1.0)
    assert abs(vals.mean()) < 0.1
    torch.manual_seed(1)
    tvals = np.array([torch.nn.init.orthogonal_(torch.empty(1, 1, dtype=torch.float64)).item()
                      for _ in range(2000)])
    assert abs(tvals.mean()) < 0.1


def test_orthogonal_wide_rows_are_uniform():
    """rows < cols is handled by transposing: rows are orthonormal and every entry has
    E[W_ij^2] = 1/cols (like torch)."""
    rng = np.random.default_rng(3)
    S = np.stack([orthogonal((2, 5), rng=rng) for _ in range(2000)])
    np.testing.assert_allclose((S**2).mean(axis=0), 1 / 5, atol=0.03)
    assert np.abs(S.mean(axis=0)).max() < 0.05


@pytest.mark.parametrize("shape", [(5,), (), 5, (0, 3), (3, 0), (2.5, 3), (3, "4"), (3, -1),
                                   (3, True), "33", None, np.zeros((3, 3))])
def test_orthogonal_bad_shape(shape):
    with pytest.raises(ValueError, match=names_arg("shape")):
        orthogonal(shape)


def test_orthogonal_bad_rng_and_gain():
    with pytest.raises(ValueError, match=names_arg("rng")):
        orthogonal((3, 3), rng="seed")
    with pytest.raises(ValueError, match=names_arg("rng")):
        orthogonal((3, 3), rng=2.5)
    with pytest.raises(ValueError, match=names_arg("gain")):
        orthogonal((3, 3), gain="2")
    with pytest.raises(ValueError, match=names_arg("gain")):
        orthogonal((3, 3), gain=float("nan"))


# ----------------------------------------------------------------------------- clipping

def make_grads(rng, scale=1.0):
    return {"W": rng.standard_normal((3, 4)) * scale, "b": rng.standard_normal(4) * scale,
            "U": rng.standard_normal((2, 3, 2)) * scale, "s": np.array(1.5 * scale),
            "v": rng.standard_normal(1) * scale}


def _torch_params(grads):
    params = []
    for g in grads.values():
        p = torch.nn.Parameter(torch.zeros(g.shape, dtype=torch.float64))
        p.grad = torch.tensor(g)
        params.append(p)
    return params


def _assert_new_and_untouched(grads, before, out):
    assert set(out) == set(grads)
    assert_unchanged(before, grads)
    for k in grads:
        assert isinstance(out[k], np.ndarray), k
        assert out[k].shape == grads[k].shape and out[k].dtype == np.float64, k
        assert out[k] is not grads[k] and not np.shares_memory(out[k], grads[k]), k


@pytest.mark.parametrize("max_norm", [0.5, 2.0, 1e3, 5])
def test_clip_grad_norm_matches_torch(rng, max_norm):
    grads = make_grads(rng)
    before = {k: g.copy() for k, g in grads.items()}
    total_ref = np.sqrt(sum(np.sum(g**2) for g in grads.values()))
    clipped, total = clip_grad_norm(grads, max_norm)
    _assert_new_and_untouched(grads, before, clipped)
    assert isinstance(total, float)

    params = _torch_params(grads)
    t_total = torch.nn.utils.clip_grad_norm_(params, max_norm)
    assert total == pytest.approx(t_total.item(), rel=1e-12)
    assert total == pytest.approx(total_ref, rel=1e-12)
    for (k, c), p in zip(clipped.items(), params):
        assert rel_error(c, p.grad.numpy()) < 1e-12, k

    new_norm = np.sqrt(sum(np.sum(c**2) for c in clipped.values()))
    if total > max_norm:
        assert new_norm == pytest.approx(max_norm, rel=1e-5)
        assert new_norm <= max_norm
        # the direction is kept: clipped = coef * grads, one coef for all
        coef = max_norm / (total + 1e-6)
        for k in grads:
            np.testing.assert_allclose(clipped[k], coef * grads[k], rtol=1e-12)
    else:
        assert new_norm == pytest.approx(total, rel=1e-12)
        for k in grads:
            np.testing.assert_array_equal(clipped[k], grads[k])


def test_clip_grad_norm_both_sides_of_threshold(rng):
    grads = make_grads(rng)
    total = np.sqrt(sum(np.sum(g**2) for g in grads.values()))
    below, t1 = clip_grad_norm(grads, total * 1.01)
    above, t2 = clip_grad_norm(grads, total * 0.5)
    assert t1 == t2 == pytest.approx(total)
    for k in grads:
        np.testing.assert_array_equal(below[k], grads[k])
        np.testing.assert_allclose(above[k], grads[k] * 0.5 * total / (total + 1e-6), rtol=1e-12)


def test_clip_grad_norm_output_can_be_clipped_again(rng):
    clipped, _ = clip_grad_norm(make_grads(rng, scale=10.0), 1.0)
    again, total = clip_grad_norm(clipped, 1.0)
    assert total == pytest.approx(1.0, rel=1e-5)
    assert clip_grad_value(again, 0.1).keys() == clipped.keys()


def test_clip_grad_norm_empty_and_zero():
    out, total = clip_grad_norm({}, 1.0)
    assert out == {} and total == 0.0
    g = {"a": np.zeros((2, 2))}
    out, total = clip_grad_norm(g, 1.0)
    assert total == 0.0
    np.testing.assert_array_equal(out["a"], 0.0)
    assert out["a"] is not g["a"]


@pytest.mark.parametrize("clip_value", [0.1, 0.7, 5.0, 1])
def test_clip_grad_value_matches_torch(rng, clip_value):
    grads = make_grads(rng, scale=2.0)
    before = {k: g.copy() for k, g in grads.items()}
    clipped = clip_grad_value(grads, clip_value)
    _assert_new_and_untouched(grads, before, clipped)
    params = _torch_params(grads)
    torch.nn.utils.clip_grad_value_(params, clip_value)
    for (k, c), p in zip(clipped.items(), params):
        np.testing.assert_array_equal(c, p.grad.numpy(), err_msg=k)
        assert np.abs(c).max() <= clip_value
    inside = {k: np.abs(g) <= clip_value for k, g in grads.items()}
    for k in grads:
        np.testing.assert_array_equal(clipped[k][inside[k]], grads[k][inside[k]])


BAD_GRADS = [[np.ones(3)], None, np.ones(3), {"a": np.ones(3, dtype=np.float32)},
             {"a": [1.0, 2.0]}, {"a": np.ones(3), "b": 2.0}, {"a": np.ones(3, dtype=np.int64)}]


@pytest.mark.parametrize("grads", BAD_GRADS)
def test_clip_bad_grads(grads):
    with pytest.raises(ValueError, match=names_arg("grads")):
        clip_grad_norm(grads, 1.0)
    with pytest.raises(ValueError, match=names_arg("grads")):
        clip_grad_value(grads, 1.0)


@pytest.mark.parametrize("bad", [0, 0.0, -1.0, float("nan"), "1", None, True])
def test_clip_bad_threshold(rng, bad):
    grads = make_grads(rng)
    with pytest.raises(ValueError, match=names_arg("max_norm")):
        clip_grad_norm(grads, bad)
    with pytest.raises(ValueError, match=names_arg("clip_value")):
        clip_grad_value(grads, bad)
