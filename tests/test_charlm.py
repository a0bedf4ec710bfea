"""Tests of autograder.reference.charlm: the masked temporal softmax loss, perplexity and
temperature sampling."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from autograder.reference import perplexity, sample_next, temporal_softmax_loss
from coursekit.gradcheck import rel_error
from helpers import assert_numeric_match, assert_unchanged, names_arg, readonly, scalar_num_grad

CHI2_DF4_P001 = 18.467  # chi-square critical value, 4 degrees of freedom, p = 0.001


def random_mask(rng, N, T, p=0.6):
    mask = rng.random((N, T)) < p
    mask.flat[rng.integers(mask.size)] = True  # at least one counted step
    return mask


def torch_temporal(logits, targets, mask):
    """Mean cross-entropy over the unmasked steps, two ways, and its autograd gradient."""
    V = logits.shape[2]
    lt = torch.tensor(logits, requires_grad=True)
    flat, t = lt.reshape(-1, V), torch.as_tensor(targets.reshape(-1), dtype=torch.long)
    m = torch.as_tensor(mask.reshape(-1))
    loss = F.cross_entropy(flat[m], t[m], reduction="sum") / m.sum()
    loss.backward()
    loss_ignore = F.cross_entropy(flat.detach(), torch.where(m, t, torch.full_like(t, -100)),
                                  ignore_index=-100)
    return loss.item(), loss_ignore.item(), lt.grad.numpy()


# --------------------------------------------------------------------------- temporal softmax loss

SHAPES = [(1, 1, 1), (1, 1, 5), (2, 3, 4), (3, 1, 7), (4, 6, 2), (5, 8, 11)]


@pytest.mark.parametrize("N,T,V", SHAPES)
@pytest.mark.parametrize("use_mask", [False, True])
def test_temporal_softmax_matches_torch(N, T, V, use_mask, rng):
    for _ in range(3):
        logits = rng.normal(0, 2, (N, T, V))
        targets = rng.integers(0, V, (N, T))
        mask = random_mask(rng, N, T) if use_mask else None
        loss, dlogits = temporal_softmax_loss(logits, targets, mask)
        assert isinstance(loss, float)
        assert dlogits.shape == (N, T, V) and dlogits.dtype == np.float64
        full = np.ones((N, T), bool) if mask is None else mask
        t_loss, t_loss_ignore, t_grad = torch_temporal(logits, targets, full)
        assert loss == pytest.approx(t_loss, rel=1e-12, abs=1e-14)
        assert loss == pytest.approx(t_loss_ignore, rel=1e-12, abs=1e-14)
        assert rel_error(dlogits, t_grad) < 1e-9


@pytest.mark.parametrize("N,T,V", [(1, 1, 3), (2, 3, 4), (3, 2, 5)])
@pytest.mark.parametrize("use_mask", [False, True])
def test_temporal_softmax_numerical_gradient(N, T, V, use_mask, rng):
    logits = rng.normal(0, 1.5, (N, T, V))
    targets = rng.integers(0, V, (N, T))
    mask = random_mask(rng, N, T) if use_mask else None
    _, dlogits = temporal_softmax_loss(logits, targets, mask)
    assert_numeric_match(dlogits, scalar_num_grad(
        lambda: temporal_softmax_loss(logits, targets, mask)[0], logits))


def test_temporal_softmax_mean_over_unmasked_steps_by_hand(rng):
    N, T, V = 3, 4, 6
    logits = rng.normal(size=(N, T, V))
    targets = rng.integers(0, V, (N, T))
    mask = np.array([[1, 1, 0, 0], [1, 0, 0, 0], [1, 1, 1, 0]], bool)
    nll = [np.log(np.exp(logits[n, t]).sum()) - logits[n, t, targets[n, t]]
           for n in range(N) for t in range(T) if mask[n, t]]
    loss, dlogits = temporal_softmax_loss(logits, targets, mask)
    assert loss == pytest.approx(np.mean(nll), rel=1e-12)  # mean over 6 steps, not N=3 or N*T=12
    for n in range(N):
        for t in range(T):
            if mask[n, t]:
                p = np.exp(logits[n, t]) / np.exp(logits[n, t]).sum()
                p[targets[n, t]] -= 1
                np.testing.assert_allclose(dlogits[n, t], p / 6, rtol=1e-12, atol=1e-15)


def test_temporal_softmax_masked_steps(rng):
    N, T, V = 4, 5, 3
    logits = rng.normal(size=(N, T, V))
    targets = rng.integers(0, V, (N, T))
    mask = random_mask(rng, N, T, p=0.5)
    assert not mask.all()
    loss, dlogits = temporal_softmax_loss(logits, targets, mask)
    assert np.all(dlogits[~mask] == 0)  # exactly zero
    assert np.all(np.abs(dlogits[mask]).sum(axis=-1) > 0)
    # what sits at a masked step (logits or target) does not matter
    garbage = logits.copy()
    garbage[~mask] = rng.normal(0, 1e4, size=((~mask).sum(), V))
    other_targets = np.where(mask, targets, (targets + 1) % V)
    loss2, dlogits2 = temporal_softmax_loss(garbage, other_targets, mask)
    assert loss2 == pytest.approx(loss, rel=1e-14)
    np.testing.assert_array_equal(dlogits2[~mask], 0)
    np.testing.assert_allclose(dlogits2[mask], dlogits[mask], rtol=1e-14, atol=1e-17)
    # None is the all-True mask
    a = temporal_softmax_loss(logits, targets, None)
    b = temporal_softmax_loss(logits, targets, np.ones((N, T), bool))
    assert a[0] == b[0]
    np.testing.assert_array_equal(a[1], b[1])


def test_temporal_softmax_gradient_rows_sum_to_zero_and_shift_invariance(rng):
    N, T, V = 3, 4, 7
    logits = rng.normal(size=(N, T, V))
    targets = rng.integers(0, V, (N, T))
    loss, dlogits = temporal_softmax_loss(logits, targets)
    np.testing.assert_allclose(dlogits.sum(axis=2), 0, atol=1e-15)
    shifted = logits + rng.normal(0, 100, (N, T, 1))  # softmax ignores a per-step constant
    loss2, dlogits2 = temporal_softmax_loss(shifted, targets)
    assert loss2 == pytest.approx(loss, rel=1e-10)
    np.testing.assert_allclose(dlogits2, dlogits, rtol=1e-8, atol=1e-14)


@pytest.mark.parametrize("V", [1, 2, 26, 65])
def test_uniform_logits_give_log_v_and_perplexity_v(V):
    N, T = 2, 3
    targets = np.arange(N * T).reshape(N, T) % V
    for c in (0.0, 1e4, -1e4):
        loss, dlogits = temporal_softmax_loss(np.full((N, T, V), c), targets)
        assert loss == pytest.approx(math.log(V), abs=1e-12)
        assert perplexity(loss) == pytest.approx(V, rel=1e-12)
        assert np.all(np.isfinite(dlogits))


def test_temporal_softmax_stable_for_huge_logits():
    logits = np.array([[[1e4, -1e4, 0.0], [-1e4, 1e4, 1e4]]])
    targets = np.array([[1, 0]])
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        loss, dlogits = temporal_softmax_loss(logits, targets)
    assert np.isfinite(loss) and np.all(np.isfinite(dlogits))
    t_loss, _, t_grad = torch_temporal(logits, targets, np.ones((1, 2), bool))
    assert loss == pytest.approx(t_loss, rel=1e-12)
    assert loss == pytest.approx((2e4 + (2e4 + math.log(2))) / 2, rel=1e-12)
    np.testing.assert_allclose(dlogits, t_grad, rtol=1e-12, atol=1e-15)


def test_temporal_softmax_inputs_not_modified(rng):
    logits = rng.normal(size=(2, 3, 4))
    targets = rng.integers(0, 4, (2, 3))
    mask = np.array([[True, False, True], [False, True, True]])
    copies = [x.copy() for x in (logits, targets, mask)]
    readonly(logits, targets, mask)
    _, dlogits = temporal_softmax_loss(logits, targets, mask)
    _, dlogits_none = temporal_softmax_loss(logits, targets)
    assert_unchanged(copies, (logits, targets, mask))
    assert not np.shares_memory(dlogits, logits)
    assert dlogits.flags.writeable and not np.shares_memory(dlogits, dlogits_none)


def _tsl_args(**kw):
    args = dict(logits=np.zeros((2, 3, 4)), targets=np.zeros((2, 3), int), mask=np.ones((2, 3), bool))
    args.update(kw)
    return args


BAD_TSL = [
    (_tsl_args(logits=np.zeros((2, 3, 4)).tolist()), "logits"),
    (_tsl_args(logits=np.zeros((2, 3, 4), np.float32)), "logits"),
    (_tsl_args(logits=np.zeros((2, 3, 4), int)), "logits"),
    (_tsl_args(logits=np.zeros((6, 4))), "logits"),
    (_tsl_args(logits=np.zeros((1, 2, 3, 4))), "logits"),
    (_tsl_args(targets=np.zeros((2, 3)).tolist()), "targets"),
    (_tsl_args(targets=np.zeros((2, 3))), "targets"),
    (_tsl_args(targets=np.zeros((2, 4), int)), "targets"),
    (_tsl_args(targets=np.zeros((3, 3), int)), "targets"),
    (_tsl_args(targets=np.zeros(6, int)), "targets"),
    (_tsl_args(targets=np.full((2, 3), 4)), "targets"),
    (_tsl_args(targets=np.full((2, 3), -1)), "targets"),
    (_tsl_args(targets=np.array([[0, 1, 2], [3, 9, 0]])), "targets"),
    (_tsl_args(mask=np.zeros((2, 3), bool)), "mask"),
    (_tsl_args(mask=np.ones((2, 3), int)), "mask"),
    (_tsl_args(mask=np.ones((2, 3))), "mask"),
    (_tsl_args(mask=np.ones((3, 2), bool)), "mask"),
    (_tsl_args(mask=np.ones(6, bool)), "mask"),
    (_tsl_args(mask=[[True] * 3] * 2), "mask"),
]


@pytest.mark.parametrize("kwargs,name", BAD_TSL, ids=[f"{n}-{i}" for i, (_, n) in enumerate(BAD_TSL)])
def test_temporal_softmax_bad_input(kwargs, name):
    with pytest.raises(ValueError, match=names_arg(name)):
        temporal_softmax_loss(**kwargs)


# --------------------------------------------------------------------------- perplexity

def test_perplexity_is_exp():
    for x in (0.0, 0.1, 1.0, math.log(65), 4.2, np.float64(2.5), 3, np.float32(1.5)):
        assert perplexity(x) == pytest.approx(math.exp(float(x)), rel=1e-15)
        assert isinstance(perplexity(x), float)
    assert perplexity(0.0) == 1.0
    assert perplexity(math.log(2) * 3) == pytest.approx(8.0, rel=1e-15)  # 3 bits per char


def test_perplexity_of_a_diverged_model_is_inf_not_an_error():
    assert perplexity(1000.0) == math.inf
    assert perplexity(math.inf) == math.inf


@pytest.mark.parametrize("bad", ["1.0", None, float("nan"), [1.0], True, 1 + 2j])
def test_perplexity_bad_input(bad):
    with pytest.raises(ValueError, match=names_arg("mean_nll")):
        perplexity(bad)


# --------------------------------------------------------------------------- sampling

def softmax(z):
    e = np.exp(z - z.max())
    return e / e.sum()


def test_temperature_zero_is_argmax(rng):
    for V in (1, 2, 5, 40):
        for _ in range(5):
            logits = rng.normal(size=V)
            out = sample_next(logits, 0.0, rng)
            assert isinstance(out, int) and out == int(np.argmax(logits))
            assert sample_next(logits, 0, 123) == out  # int temperature, int seed
    assert sample_next(np.array([1.0, 3.0, 3.0, 0.0]), 0.0, rng) == 1  # ties: first maximum


def test_tiny_temperature_is_greedy():
    g = np.random.default_rng(3)
    logits = np.array([0.3, 1.0, 0.9, -2.0])
    assert all(sample_next(logits, 1e-3, g) == 1 for _ in range(200))


def test_seeded_reproducibility():
    logits = np.array([0.1, 0.5, -0.3, 1.2, 0.0, 0.7])
    g1, g2 = np.random.default_rng(11), np.random.default_rng(11)
    seq1 = [sample_next(logits, 1.0, g1) for _ in range(100)]
    seq2 = [sample_next(logits, 1.0, g2) for _ in range(100)]
    assert seq1 == seq2
    assert len(set(seq1)) > 1  # the generator advances between calls
    assert all(isinstance(s, int) and 0 <= s < 6 for s in seq1)
    for seed in (0, 5, 2**40):
        first = sample_next(logits, 0.8, seed)
        assert all(sample_next(logits, 0.8, seed) == first for _ in range(5))
        assert sample_next(logits, 0.8, np.int64(seed)) == first


def _chi2(counts, probs):
    expected = probs * counts.sum()
    return float(((counts - expected) ** 2 / expected).sum())


@pytest.mark.parametrize("temperature", [0.5, 1.0, 2.0])
def test_sample_frequencies_match_softmax(temperature):
    g = np.random.default_rng(2024)
    logits = np.array([0.5, -0.3, 1.2, 0.0, -1.0])
    n = 12000
    counts = np.bincount([sample_next(logits, temperature, g) for _ in range(n)], minlength=5)
    probs = softmax(logits / temperature)
    assert _chi2(counts, probs) < CHI2_DF4_P001
    # and clearly not the distribution of another temperature
    for other in {0.5, 1.0, 2.0} - {temperature}:
        assert _chi2(counts, softmax(logits / other)) > 5 * CHI2_DF4_P001
    np.testing.assert_allclose(counts / n, probs, atol=0.015)


def test_high_temperature_approaches_uniform():
    logits = np.array([2.0, -2.0, 0.5, 1.5, -1.0])
    g = np.random.default_rng(7)
    n = 12000
    counts = np.bincount([sample_next(logits, 1e4, g) for _ in range(n)], minlength=5)
    assert _chi2(counts, np.full(5, 0.2)) < CHI2_DF4_P001
    # while at temperature 1 the same logits are far from uniform
    counts1 = np.bincount([sample_next(logits, 1.0, g) for _ in range(2000)], minlength=5)
    assert _chi2(counts1, np.full(5, 0.2)) > 10 * CHI2_DF4_P001


def test_sample_next_stable_for_huge_logits():
    g = np.random.default_rng(0)
    logits = np.array([1e4, -1e4, 1e4 - 1.0])
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        draws = [sample_next(logits, 1.0, g) for _ in range(2000)]
    freq0 = draws.count(0) / len(draws)
    assert draws.count(1) == 0
    assert freq0 == pytest.approx(1 / (1 + math.exp(-1)), abs=0.04)


def test_sample_next_input_not_modified():
    (logits,) = readonly(np.array([0.2, 1.0, -0.5]))
    for t in (0.0, 0.5, 1.0, 3.0):
        sample_next(logits, t, 1)
    np.testing.assert_array_equal(logits, [0.2, 1.0, -0.5])


BAD_SAMPLE = [
    (dict(logits=[0.1, 0.2], temperature=1.0, rng=0), "logits"),
    (dict(logits=np.zeros((1, 3)), temperature=1.0, rng=0), "logits"),
    (dict(logits=np.zeros(3, np.float32), temperature=1.0, rng=0), "logits"),
    (dict(logits=np.zeros(3, int), temperature=1.0, rng=0), "logits"),
    (dict(logits=np.zeros(3), temperature=-0.5, rng=0), "temperature"),
    (dict(logits=np.zeros(3), temperature=-1e-12, rng=0), "temperature"),
    (dict(logits=np.zeros(3), temperature=float("nan"), rng=0), "temperature"),
    (dict(logits=np.zeros(3), temperature="hot", rng=0), "temperature"),
    (dict(logits=np.zeros(3), temperature=None, rng=0), "temperature"),
    (dict(logits=np.zeros(3), temperature=1.0, rng="seed"), "rng"),
    (dict(logits=np.zeros(3), temperature=1.0, rng=None), "rng"),
    (dict(logits=np.zeros(3), temperature=1.0, rng=1.5), "rng"),
    (dict(logits=np.zeros(3), temperature=1.0, rng=np.random.RandomState(0)), "rng"),
]


@pytest.mark.parametrize("kwargs,name", BAD_SAMPLE, ids=[f"{n}-{i}" for i, (_, n) in enumerate(BAD_SAMPLE)])
def test_sample_next_bad_input(kwargs, name):
    with pytest.raises(ValueError, match=names_arg(name)):
        sample_next(**kwargs)
