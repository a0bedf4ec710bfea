"""Tests of the chapter-5 experiment helpers: the delayed-recall task and the stateful trainer."""
import numpy as np
import pytest
import torch

from autograder.lab.data import delayed_recall
from autograder.lab.models import SequenceModel
from autograder.lab.truncated_bptt import evaluate_stateful, masked_mse, train_stateful
from autograder.reference import rnn_forward, truncated_rnn_backward
from autograder.reference.torch_models import rnn_module_from_weights
from helpers import names_arg


# ----------------------------------------------------------------------------- delayed_recall

@pytest.mark.parametrize("B,T,L", [(1, 5, 1), (3, 20, 4), (2, 7, 7), (2, 6, 9)])
def test_delayed_recall_targets_are_the_lagged_inputs(B, T, L):
    x, y, mask = delayed_recall(B, T, L, np.random.default_rng(0))
    assert x.shape == y.shape == (B, T, 1) and mask.shape == (B, T)
    assert x.dtype == y.dtype == np.float64 and mask.dtype == bool
    assert set(np.unique(x)) <= {-1.0, 1.0}
    for t in range(T):
        if t >= L:
            assert mask[:, t].all()
            np.testing.assert_array_equal(y[:, t], x[:, t - L])
        else:
            assert not mask[:, t].any()
            np.testing.assert_array_equal(y[:, t], 0.0)


def test_delayed_recall_is_seeded_and_balanced():
    a = delayed_recall(4, 50, 3, np.random.default_rng(5))
    b = delayed_recall(4, 50, 3, np.random.default_rng(5))
    for u, w in zip(a, b):
        np.testing.assert_array_equal(u, w)
    x, _, _ = delayed_recall(64, 500, 3, np.random.default_rng(1))
    assert abs(x.mean()) < 0.02  # +1 and -1 equally likely: predicting 0 scores MSE 1


@pytest.mark.parametrize("bad", [0, -2, 1.5, None, True])
def test_delayed_recall_bad_ints(bad):
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match=names_arg("batch_size")):
        delayed_recall(bad, 10, 2, rng)
    with pytest.raises(ValueError, match=names_arg("length")):
        delayed_recall(2, bad, 2, rng)
    with pytest.raises(ValueError, match=names_arg("lag")):
        delayed_recall(2, 10, bad, rng)


@pytest.mark.parametrize("bad", [None, True, 1.5, "0", np.random.RandomState(0)])
def test_delayed_recall_bad_rng(bad):
    with pytest.raises(ValueError, match=names_arg("rng")):
        delayed_recall(2, 10, 2, bad)


def test_delayed_recall_takes_an_int_seed_as_its_generator():
    for a, b in zip(delayed_recall(2, 10, 2, 7), delayed_recall(2, 10, 2, np.random.default_rng(7))):
        np.testing.assert_array_equal(a, b)


# ----------------------------------------------------------------------------- masked_mse

def test_masked_mse_counts_only_masked_positions():
    out = torch.tensor([[[1.0], [5.0], [3.0]]])
    y = torch.tensor([[[0.0], [0.0], [1.0]]])
    mask = torch.tensor([[True, False, True]])
    assert float(masked_mse(out, y, mask)) == pytest.approx((1.0 + 4.0) / 2)
    empty = masked_mse(out, y, torch.zeros_like(mask))
    assert float(empty) == 0.0


# ----------------------------------------------------------------------------- train_stateful

def _ref_weights(rng, D, H):
    return rng.standard_normal((D, H)) * 0.5, rng.standard_normal((H, H)) * 0.4, rng.standard_normal(H) * 0.1


class _RNNOnly(torch.nn.Module):
    """forward(x, state) -> (h, state): the hidden states themselves are the output."""

    def __init__(self, Wx, Wh, b):
        super().__init__()
        self.rnn = rnn_module_from_weights(Wx, Wh, b)

    def forward(self, x, state=None):
        if state is not None:
            state = state.unsqueeze(0)
        h, s = self.rnn(x, state)
        return h, s[0]


@pytest.mark.parametrize("T,k", [(12, 4), (10, 3), (9, 9), (9, 20)])
def test_one_chunk_update_uses_the_truncated_gradient(T, k):
    """With SGD and lr = 1, the first update equals minus the gradient of the first chunk's loss;
    a linear loss sum(h * dh) makes that gradient truncated_rnn_backward's dWh restricted to the
    first chunk (which has no earlier chunk to cut)."""
    rng = np.random.default_rng(0)
    N, D, H = 3, 2, 4
    Wx, Wh, b = _ref_weights(rng, D, H)
    x = rng.standard_normal((N, T, D))
    dh = rng.standard_normal((N, T, H))
    model = _RNNOnly(Wx, Wh, b)
    tx, tdh = torch.tensor(x), torch.tensor(dh)
    before = model.rnn.weight_hh_l0.detach().clone()
    linear = lambda out, y, mask: (out * y).sum()  # noqa: E731
    train_stateful(model, tx[:, :k], tdh[:, :k], k=k, lr=1.0, optimizer="sgd", loss_fn=linear)
    step = (before - model.rnn.weight_hh_l0.detach()).numpy().T  # = dWh of the first chunk
    _, cache = rnn_forward(x[:, :k], np.zeros((N, H)), Wx, Wh, b)
    expected = truncated_rnn_backward(dh[:, :k], cache, k)[3]
    np.testing.assert_allclose(step, expected, rtol=1e-10, atol=1e-12)


def test_chunked_gradients_sum_to_truncated_rnn_backward():
    """With lr = 0 nothing changes, so the per-chunk gradients of a linear loss add up to
    truncated_rnn_backward over the whole sequence: the state is carried (forward values are
    the whole sequence's) but detached (no gradient crosses a boundary)."""
    rng = np.random.default_rng(1)
    N, T, D, H, k = 2, 15, 3, 5, 4
    Wx, Wh, b = _ref_weights(rng, D, H)
    x = rng.standard_normal((N, T, D))
    dh = rng.standard_normal((N, T, H))
    model = _RNNOnly(Wx, Wh, b)
    total = torch.zeros_like(model.rnn.weight_hh_l0)
    grads = []

    def linear(out, y, mask):
        return (out * y).sum()

    # collect each chunk's gradient through a hook on the optimizer step (lr = 0: no change)
    hook = model.rnn.weight_hh_l0.register_hook(lambda g: grads.append(g.detach().clone()))
    train_stateful(model, torch.tensor(x), torch.tensor(dh), k=k, lr=0.0, optimizer="sgd", loss_fn=linear)
    hook.remove()
    assert len(grads) == -(-T // k)
    for g in grads:
        total += g
    _, cache = rnn_forward(x, np.zeros((N, H)), Wx, Wh, b)
    np.testing.assert_allclose(total.numpy().T, truncated_rnn_backward(dh, cache, k)[3], rtol=1e-10, atol=1e-12)


def test_train_stateful_history_and_carry():
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    x, y, mask = delayed_recall(4, 30, 2, rng)
    model = SequenceModel("rnn", 1, 8, 1).double()
    tx, ty, tm = torch.tensor(x), torch.tensor(y), torch.tensor(mask)
    hist = train_stateful(model, tx, ty, k=7, mask=tm, lr=0.0, optimizer="sgd", epochs=2)
    assert len(hist.loss) == len(hist.grad_norm) == 2 * 5  # chunks of 7, 7, 7, 7, 2 per epoch
    assert all(np.isfinite(hist.loss)) and not hist.diverged()
    # lr = 0: the chunk losses are those of the whole-stream forward pass, chunk by chunk,
    # which shows the state is carried from one chunk to the next
    with torch.no_grad():
        out, _ = model(tx)
    expected = [float(masked_mse(out[:, s:s + 7], ty[:, s:s + 7], tm[:, s:s + 7])) for s in range(0, 30, 7)]
    np.testing.assert_allclose(hist.loss[:5], expected, rtol=1e-12)
    np.testing.assert_allclose(hist.loss[5:], expected, rtol=1e-12)  # each epoch restarts from zero
    assert evaluate_stateful(model, tx, ty, tm) == pytest.approx(float(masked_mse(out, ty, tm)))


def test_train_stateful_learns_a_short_lag():
    """Lag 1 with chunks of 4: every chunk holds the dependency, so the loss drops fast."""
    torch.manual_seed(0)
    x, y, mask = delayed_recall(16, 4 * 150, 1, np.random.default_rng(0))
    model = SequenceModel("rnn", 1, 16, 1)
    f = lambda a: torch.tensor(a, dtype=torch.float32)  # noqa: E731
    train_stateful(model, f(x), f(y), k=4, mask=torch.tensor(mask), lr=1e-2)
    xt, yt, mt = delayed_recall(8, 200, 1, np.random.default_rng(1))
    assert evaluate_stateful(model, f(xt), f(yt), torch.tensor(mt)) < 0.1


def test_train_stateful_bad_args():
    model = SequenceModel("rnn", 1, 4, 1)
    x = torch.zeros(2, 10, 1)
    with pytest.raises(ValueError, match=names_arg("k")):
        train_stateful(model, x, x, k=0)
    with pytest.raises(ValueError, match=names_arg("x, y")):
        train_stateful(model, x, torch.zeros(2, 9, 1), k=3)
