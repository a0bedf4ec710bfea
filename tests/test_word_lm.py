"""Tests of autograder.reference.word_lm: the embedding, the temporal affine map and the
gradient of a tied embedding, each backward checked numerically and against torch autograd."""
import numpy as np
import pytest
import torch

from autograder.reference import (embedding_backward, embedding_forward, temporal_affine_backward,
                                  temporal_affine_forward, tied_embedding_backward)
from coursekit.gradcheck import numerical_gradient, rel_error
from helpers import (assert_backward_matches_autograd, assert_unchanged, autograd_grads,
                     names_arg, readonly)

SHAPES = [(1, 1, 1, 1), (1, 4, 3, 2), (3, 1, 5, 4), (2, 5, 6, 3)]  # N, T, V, D


@pytest.mark.parametrize("N, T, V, D", SHAPES)
def test_embedding_is_a_row_lookup_and_repeated_ids_add_up(rng, N, T, V, D):
    x, W = rng.integers(0, V, (N, T)), rng.standard_normal((V, D))
    x[0, 0] = x[-1, -1]  # at least one id repeats when N * T > 1
    out, cache = embedding_forward(x, W)
    assert out.shape == (N, T, D) and out.dtype == np.float64
    np.testing.assert_array_equal(out, np.eye(V)[x] @ W)
    dout = rng.standard_normal((N, T, D))
    dW = embedding_backward(dout, cache)
    np.testing.assert_allclose(dW, np.eye(V)[x].reshape(N * T, V).T @ dout.reshape(N * T, D),
                               rtol=1e-12, atol=1e-12)
    want = autograd_grads(lambda W: W[torch.as_tensor(x)], {"W": W}, dout)["W"]
    np.testing.assert_allclose(dW, want, rtol=1e-12, atol=1e-12)


def test_embedding_gradient_of_one_word_everywhere(rng):
    x, W = np.full((3, 4), 2), rng.standard_normal((5, 2))
    dout = rng.standard_normal((3, 4, 2))
    dW = embedding_backward(dout, embedding_forward(x, W)[1])
    np.testing.assert_allclose(dW[2], dout.sum(axis=(0, 1)), rtol=1e-12)
    assert not np.any(dW[[0, 1, 3, 4]])


@pytest.mark.parametrize("N, T, V, D", SHAPES)
def test_temporal_affine_matches_autograd(rng, N, T, V, D):
    args = {"x": rng.standard_normal((N, T, D)), "w": rng.standard_normal((D, V)),
            "b": rng.standard_normal(V)}
    assert_backward_matches_autograd(temporal_affine_forward, temporal_affine_backward,
                                     lambda x, w, b: x @ w + b, args, rng)


@pytest.mark.parametrize("N, T, V, D", SHAPES)
def test_tied_gradient_is_both_uses_of_W(rng, N, T, V, D):
    x = rng.integers(0, V, (N, T))
    W, h, b = rng.standard_normal((V, D)), rng.standard_normal((N, T, D)), rng.standard_normal(V)
    dembed, dscores = rng.standard_normal((N, T, D)), rng.standard_normal((N, T, V))
    inputs = readonly(dembed, dscores, x, h, W)
    saved = [a.copy() for a in inputs]
    dW = tied_embedding_backward(*inputs)
    assert_unchanged(saved, inputs)
    # torch.tensor copies: the inputs were made read-only above
    want = autograd_grads(lambda W: (W[torch.tensor(x)], torch.tensor(h) @ W.T + torch.tensor(b)),
                          {"W": W}, (dembed.copy(), dscores.copy()))["W"]
    np.testing.assert_allclose(dW, want, rtol=1e-10, atol=1e-12)
    # the same as the two backward functions added (the read-out's dw is (D, V))
    two = (embedding_backward(dembed, embedding_forward(x, W)[1])
           + temporal_affine_backward(dscores, temporal_affine_forward(h, W.T, b)[1])[1].T)
    np.testing.assert_allclose(dW, two, rtol=1e-12, atol=1e-12)


def test_embedding_backward_numerically(rng):
    x, W = np.array([[0, 2, 2], [1, 0, 2]]), rng.standard_normal((3, 4))
    dout = rng.standard_normal((2, 3, 4))
    num = numerical_gradient(lambda: embedding_forward(x, W)[0], W, dout)
    assert rel_error(embedding_backward(dout, embedding_forward(x, W)[1]), num) < 1e-8


@pytest.mark.parametrize("call, name", [
    (lambda: embedding_forward(np.array([[0, 3]]), np.zeros((3, 2))), "x"),
    (lambda: embedding_forward(np.array([[0.0, 1.0]]), np.zeros((3, 2))), "x"),
    (lambda: embedding_forward(np.array([0, 1]), np.zeros((3, 2))), "x"),
    (lambda: embedding_forward(np.array([[0, 1]]), np.zeros((3, 2), dtype=np.float32)), "W"),
    (lambda: embedding_backward(np.zeros((1, 2, 3)), (np.array([[0, 1]]), np.zeros((3, 2)))),
     "dout"),
    (lambda: temporal_affine_forward(np.zeros((2, 3, 4)), np.zeros((5, 2)), np.zeros(2)), "w"),
    (lambda: temporal_affine_forward(np.zeros((2, 3, 4)), np.zeros((4, 2)), np.zeros(3)), "b"),
    (lambda: temporal_affine_backward(np.zeros((2, 3, 3)), (np.zeros((2, 3, 4)), np.zeros((4, 2)))),
     "dout"),
    (lambda: tied_embedding_backward(np.zeros((1, 2, 3)), np.zeros((1, 2, 5)), np.array([[0, 4]]),
                                     np.zeros((1, 2, 3)), np.zeros((4, 3))), "dscores"),
    (lambda: tied_embedding_backward(np.zeros((1, 2, 3)), np.zeros((1, 2, 4)), np.array([[0, 4]]),
                                     np.zeros((1, 2, 3)), np.zeros((4, 3))), "x"),
    (lambda: tied_embedding_backward(np.zeros((1, 2, 3)), np.zeros((1, 2, 4)), np.array([[0, 1]]),
                                     np.zeros((1, 2, 2)), np.zeros((4, 3))), "h"),
])
def test_bad_input_names_its_argument(call, name):
    with pytest.raises(ValueError, match=names_arg(name)):
        call()
