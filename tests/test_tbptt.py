"""Tests of stateful batching (tbptt_batches) and the truncated RNN backward."""
import numpy as np
import pytest
import torch

from autograder.reference import rnn_backward, rnn_forward, tbptt_batches, truncated_rnn_backward
from coursekit.gradcheck import rel_error
from helpers import assert_no_side_effects, names_arg, rnn_params

SHAPES = [(1, 1, 1, 1), (2, 3, 4, 5), (3, 7, 2, 1), (1, 5, 3, 6), (2, 9, 3, 4)]  # (N, T, D, H)
NAMES = ("x", "h0", "Wx", "Wh", "b")


# ----------------------------------------------------------------------------- tbptt_batches

@pytest.mark.parametrize("L,B,S,K", [(16001, 16, 200, 5), (101, 4, 5, 5), (21, 4, 5, 1),
                                     (30, 4, 5, 1), (41, 4, 5, 2), (7, 1, 1, 6), (10, 3, 1, 3)])
def test_tbptt_batches_shapes_1d(L, B, S, K):
    series = np.arange(L, dtype=np.float64)
    xs, ys = tbptt_batches(series, B, S)
    assert xs.shape == ys.shape == (K, B, S, 1)
    assert xs.dtype == ys.dtype == np.float64


def test_tbptt_batches_seed_example(rng):
    """16 streams of 1000 steps, cut into 5 chunks of 200: (5, 16, 200, 1)."""
    series = rng.standard_normal(16001)
    xs, ys = tbptt_batches(series, 16, 200)
    assert xs.shape == ys.shape == (5, 16, 200, 1)
    streams = series[:16000].reshape(16, 1000)
    for b in (0, 7, 15):
        np.testing.assert_array_equal(xs[:, b, :, 0].reshape(-1), streams[b])
        np.testing.assert_array_equal(ys[:, b, :, 0].reshape(-1), series[1 + 1000 * b: 1001 + 1000 * b])


@pytest.mark.parametrize("L,D,B,S", [(61, 3, 4, 5), (50, 2, 3, 4), (9, 5, 2, 4)])
def test_tbptt_batches_2d_layout(rng, L, D, B, S):
    series = rng.standard_normal((L, D))
    xs, ys = tbptt_batches(series, B, S)
    K = (L - 1) // (B * S)
    assert xs.shape == ys.shape == (K, B, S, D)
    for k in range(K):
        for b in range(B):
            start = b * K * S + k * S  # stream b is the b-th contiguous block of K*S values
            np.testing.assert_array_equal(xs[k, b], series[start:start + S])
            np.testing.assert_array_equal(ys[k, b], series[start + 1:start + S + 1])


def test_tbptt_batches_continuity_and_targets():
    L, B, S = 123, 3, 7
    series = np.arange(L, dtype=np.float64) * 10.0  # value = 10 * position in the series
    xs, ys = tbptt_batches(series, B, S)
    K = xs.shape[0]
    assert K == (L - 1) // (B * S) == 5
    pos = xs[..., 0] / 10
    # ys is always the value following xs in the series
    np.testing.assert_array_equal(ys[..., 0], series[(pos + 1).astype(int)])
    # within a chunk, consecutive positions
    np.testing.assert_array_equal(np.diff(pos, axis=2), 1.0)
    for k in range(K - 1):
        for b in range(B):
            assert xs[k + 1, b, 0, 0] == ys[k, b, -1, 0]
            after_last = series[int(xs[k, b, -1, 0] / 10) + 1]
            assert xs[k + 1, b, 0, 0] == after_last
    # streams are disjoint and in order; the tail beyond K*B*S (+1 target) is dropped
    np.testing.assert_array_equal(np.sort(pos.reshape(-1)), np.arange(K * B * S))
    assert ys.max() == series[K * B * S]


def test_tbptt_batches_does_not_alias_or_modify_input(rng):
    series = rng.standard_normal((45, 2))
    copy = series.copy()
    xs, ys = tbptt_batches(series, 2, 4)
    np.testing.assert_array_equal(series, copy)
    assert not np.shares_memory(xs, series) and not np.shares_memory(ys, series)
    xs[...] = 0.0
    np.testing.assert_array_equal(series, copy)


def test_tbptt_stateful_training_equivalence(rng):
    """Carrying h from chunk k to chunk k+1 of each stream reproduces the hidden states of
    running the RNN over each whole stream at once."""
    L, Dm, B, S, H = 203, 2, 4, 6, 5
    series = rng.standard_normal((L, Dm))
    xs, _ = tbptt_batches(series, B, S)
    K = xs.shape[0]
    Wx = rng.standard_normal((Dm, H)) * 0.5
    Wh = rng.standard_normal((H, H)) * 0.5
    b = rng.standard_normal(H) * 0.5
    h0 = rng.standard_normal((B, H)) * 0.5

    whole = series[:K * B * S].reshape(B, K * S, Dm)  # the B contiguous streams
    h_full, _ = rnn_forward(whole, h0, Wx, Wh, b)
    h = h0
    for k in range(K):
        hk, _ = rnn_forward(xs[k], h, Wx, Wh, b)
        np.testing.assert_allclose(hk, h_full[:, k * S:(k + 1) * S], rtol=1e-12, atol=1e-14)
        h = hk[:, -1]
    # and not by accident: restarting from h0 at every chunk gives different states
    restarted, _ = rnn_forward(xs[1], h0, Wx, Wh, b)
    assert not np.allclose(restarted, h_full[:, S:2 * S])


@pytest.mark.parametrize("L,B,S", [(20, 4, 5), (21 - 1, 2, 10), (1, 1, 1), (5, 1, 5)])
def test_tbptt_batches_too_short(L, B, S):
    with pytest.raises(ValueError, match=names_arg("series")):
        tbptt_batches(np.zeros(L), B, S)


@pytest.mark.parametrize("series", [np.zeros(50, dtype=np.float32), list(range(50)),
                                    np.zeros((50, 2, 1)), np.zeros(()), np.zeros(0),
                                    np.zeros((50, 0)), np.arange(50) > 3])
def test_tbptt_batches_bad_series(series):
    with pytest.raises(ValueError, match=names_arg("series")):
        tbptt_batches(series, 2, 3)


@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.uint8])
def test_tbptt_batches_keeps_token_ids_integers(dtype):
    ids = (np.arange(103) % 50).astype(dtype)
    xs, ys = tbptt_batches(ids, 4, 5)
    fx, fy = tbptt_batches(ids.astype(np.float64), 4, 5)
    assert xs.dtype == ys.dtype == dtype and xs.shape == fx.shape == (5, 4, 5, 1)
    np.testing.assert_array_equal(xs, fx)
    np.testing.assert_array_equal(ys, fy)


@pytest.mark.parametrize("bad", [0, -1, 2.0, "2", None, True])
def test_tbptt_batches_bad_ints(bad):
    with pytest.raises(ValueError, match=names_arg("batch_size")):
        tbptt_batches(np.zeros(50), bad, 3)
    with pytest.raises(ValueError, match=names_arg("seq_len")):
        tbptt_batches(np.zeros(50), 2, bad)


# ----------------------------------------------------------------------------- truncated backward

def torch_truncated(x, h0, Wx, Wh, b, dh, k):
    """torch autograd with h.detach() at the chunk boundaries t = k, 2k, ..."""
    leaves = [torch.tensor(a, requires_grad=True) for a in (x, h0, Wx, Wh, b)]
    tx, h, tWx, tWh, tb = leaves
    hs = []
    for t in range(x.shape[1]):
        if t > 0 and t % k == 0:
            h = h.detach()
        h = torch.tanh(tx[:, t] @ tWx + h @ tWh + tb)
        hs.append(h)
    torch.stack(hs, dim=1).backward(torch.tensor(dh))
    return [leaf.grad.numpy() for leaf in leaves]


def chunked_reference(x, h0, Wx, Wh, b, dh, k):
    """Sum over chunks of rnn_backward on each chunk alone, each chunk's forward started from
    the previous chunk's final state (as a constant)."""
    T = x.shape[1]
    dx = np.zeros_like(x)
    dWx, dWh, db = np.zeros_like(Wx), np.zeros_like(Wh), np.zeros_like(b)
    h_start, dh0 = h0, None
    for s in range(0, T, k):
        e = min(s + k, T)
        hc, cache = rnn_forward(x[:, s:e].copy(), h_start, Wx, Wh, b)
        gx, gh, gWx, gWh, gb = rnn_backward(dh[:, s:e].copy(), cache)
        dx[:, s:e] = gx
        dWx += gWx
        dWh += gWh
        db += gb
        if s == 0:
            dh0 = gh
        h_start = hc[:, -1]
    return dx, dh0, dWx, dWh, db


@pytest.mark.parametrize("N,T,D,H", SHAPES)
def test_truncated_equals_full_when_k_at_least_T(rng, N, T, D, H):
    x, h0, Wx, Wh, b = rnn_params(rng, N, T, D, H)
    dh = rng.standard_normal((N, T, H))
    _, cache = rnn_forward(x, h0, Wx, Wh, b)
    full = rnn_backward(dh, cache)
    for k in (T, T + 1, 1000):
        for name, a, c in zip(NAMES, truncated_rnn_backward(dh, cache, k), full):
            assert a.shape == c.shape, name
            np.testing.assert_allclose(a, c, rtol=1e-13, atol=1e-15, err_msg=f"{name} k={k}")


@pytest.mark.parametrize("N,T,D,H", SHAPES)
@pytest.mark.parametrize("k", [1, 2, 3, 4])
def test_truncated_matches_chunks_and_torch_detach(rng, N, T, D, H, k):
    x, h0, Wx, Wh, b = rnn_params(rng, N, T, D, H)
    dh = rng.standard_normal((N, T, H))
    _, cache = rnn_forward(x, h0, Wx, Wh, b)
    got = truncated_rnn_backward(dh, cache, k)
    chunks = chunked_reference(x, h0, Wx, Wh, b, dh, k)
    autograd = torch_truncated(x, h0, Wx, Wh, b, dh, k)
    for name, g, c, t in zip(NAMES, got, chunks, autograd):
        assert g.shape == c.shape and g.dtype == np.float64, name
        assert rel_error(g, c) < 1e-10, f"{name} vs chunks"
        assert rel_error(g, t) < 1e-6, f"{name} vs torch"


def test_truncated_differs_from_full_when_k_below_T(rng):
    x, h0, Wx, Wh, b = rnn_params(rng, 2, 6, 3, 4)
    dh = rng.standard_normal((2, 6, 4))
    _, cache = rnn_forward(x, h0, Wx, Wh, b)
    full = rnn_backward(dh, cache)
    trunc = truncated_rnn_backward(dh, cache, 2)
    # dx and dh0 of the first chunk see less gradient; the last chunk's dx is unchanged
    assert not np.allclose(trunc[0][:, :4], full[0][:, :4])
    assert not np.allclose(trunc[1], full[1])
    assert not np.allclose(trunc[3], full[3])
    np.testing.assert_allclose(trunc[0][:, 4:], full[0][:, 4:], rtol=1e-13)


def test_truncated_k1_is_per_step_gradient(rng):
    """With k = 1 no gradient crosses any step: every step is its own chunk."""
    N, T, D, H = 2, 5, 3, 4
    x, h0, Wx, Wh, b = rnn_params(rng, N, T, D, H)
    dh = rng.standard_normal((N, T, H))
    h, cache = rnn_forward(x, h0, Wx, Wh, b)
    dx, dh0, dWx, dWh, db = truncated_rnn_backward(dh, cache, 1)
    da = dh * (1 - h**2)
    h_prev = np.concatenate([h0[:, None], h[:, :-1]], axis=1)
    np.testing.assert_allclose(dx, da @ Wx.T, rtol=1e-12)
    np.testing.assert_allclose(dh0, da[:, 0] @ Wh.T, rtol=1e-12)
    np.testing.assert_allclose(dWx, np.einsum("ntd,nth->dh", x, da), rtol=1e-12)
    np.testing.assert_allclose(dWh, np.einsum("ntg,nth->gh", h_prev, da), rtol=1e-12)
    np.testing.assert_allclose(db, da.sum(axis=(0, 1)), rtol=1e-12)


@pytest.mark.parametrize("k", [0, -1, -5, 2.0, "2", None, True])
def test_truncated_bad_k(rng, k):
    x, h0, Wx, Wh, b = rnn_params(rng, 2, 4, 3, 4)
    _, cache = rnn_forward(x, h0, Wx, Wh, b)
    with pytest.raises(ValueError, match=names_arg("k")):
        truncated_rnn_backward(np.zeros((2, 4, 4)), cache, k)


@pytest.mark.parametrize("dh", [np.zeros((2, 4, 5)), np.zeros((2, 4)), np.zeros((2, 4, 4), dtype=np.float32),
                                np.zeros((2, 4, 4)).tolist(), np.zeros((3, 4, 4)), np.zeros((2, 3, 4))])
def test_truncated_bad_dh(rng, dh):
    x, h0, Wx, Wh, b = rnn_params(rng, 2, 4, 3, 4)
    _, cache = rnn_forward(x, h0, Wx, Wh, b)
    with pytest.raises(ValueError, match=names_arg("dh")):
        truncated_rnn_backward(dh, cache, 2)


def test_truncated_does_not_modify_inputs(rng):
    assert_no_side_effects(rnn_forward, lambda dh, cache: truncated_rnn_backward(dh, cache, 3),
                           dict(zip(NAMES, rnn_params(rng, 2, 7, 3, 4))), rng)
