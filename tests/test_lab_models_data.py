"""The shared code the chapters call: coursekit's tasks and corpora, the lab's models and data."""
import numpy as np
import pytest
import torch

from autograder.lab import data
from autograder.lab.models import (CarriedState, SequenceModel, carried_state_scores, detach_state,
                                   draw_continuation, fit, global_grad_norm, init_recurrent_)
from coursekit import corpora, tasks


# ------------------------------------------------------------------ tasks
def test_toy_timeseries_shapes_and_determinism():
    x1, y1 = tasks.toy_timeseries(50, np.random.default_rng(3))
    x2, y2 = tasks.toy_timeseries(50, np.random.default_rng(3))
    assert x1.shape == (50,) and isinstance(y1, float)
    np.testing.assert_array_equal(x1, x2)
    assert y1 == y2
    assert np.abs(x1).max() < 1.5 + 0.1 + 1e-9  # 0.5 sin + cos + noise
    xb, yb = tasks.toy_timeseries_batch(4, 20, np.random.default_rng(0))
    assert xb.shape == (4, 20, 1) and yb.shape == (4, 1)


def test_toy_timeseries_t_end_stretches_the_time_axis():
    """t is on a grid of n_steps + 1 points over [0, t_end]: 200 steps over [0, 10] start with
    the same times as 100 steps over [0, 5], so they agree up to the noise (|u| <= 0.1 each);
    200 steps over the default [0, 5] do not."""
    short, _ = tasks.toy_timeseries(100, np.random.default_rng(0))
    long, _ = tasks.toy_timeseries(200, np.random.default_rng(0), t_end=10.0)
    squeezed, _ = tasks.toy_timeseries(200, np.random.default_rng(0))
    assert np.abs(long[:100] - short).max() <= 0.2
    assert np.abs(squeezed[:100] - short).max() > 0.2
    for bad in (0, -1.0, float("nan"), "5"):
        with pytest.raises(ValueError, match="^t_end"):
            tasks.toy_timeseries(10, np.random.default_rng(0), t_end=bad)


def test_adding_problem_targets_are_the_marked_sums():
    x, y = tasks.adding_problem(32, 40, np.random.default_rng(1))
    assert x.shape == (32, 40, 2) and y.shape == (32, 1)
    markers = x[:, :, 1]
    assert np.all(markers.sum(axis=1) == 2)
    assert np.all(markers[:, :20].sum(axis=1) == 1) and np.all(markers[:, 20:].sum(axis=1) == 1)
    np.testing.assert_allclose(y[:, 0], (x[:, :, 0] * markers).sum(axis=1))
    with pytest.raises(ValueError, match="^T"):
        tasks.adding_problem(2, 1, np.random.default_rng(0))


def test_copy_task_layout():
    x, y = tasks.copy_task(5, n_symbols=8, n_copy=3, delay=10, rng=np.random.default_rng(2))
    assert x.shape == y.shape == (5, 16)
    np.testing.assert_array_equal(y[:, -3:], x[:, :3])
    assert np.all(y[:, :-3] == 0)
    assert np.all(x[:, 12] == 9) and np.all(x[:, 3:12] == 0) and np.all(x[:, 13:] == 0)
    assert x[:, :3].min() >= 1 and x[:, :3].max() <= 8


# ------------------------------------------------------------------ corpora
def test_shakespeare_plays_and_text():
    plays = corpora.shakespeare_plays()
    assert len(plays) == 38 and "hamlet" in plays
    text = corpora.shakespeare_text(("hamlet",))
    assert text.startswith("Hamlet") and "BERNARDO:\nWho's there?" in text
    assert "**" not in text and "_Enter" not in text  # markup and stage directions removed
    with pytest.raises(ValueError, match="^plays"):
        corpora.shakespeare_text(("no-such-play",))


def test_markdown_play_conversion():
    md = "# Title\n\n## ACT I\n\n_Enter A_\n\n**A**  \nHello *there*,  \nfriend.\n"
    assert corpora.markdown_play_to_text(md) == "Title\n\nACT I\n\nA:\nHello there,\nfriend.\n"


def test_korean_constitution_and_tokenizer():
    text = corpora.korean_constitution_text()
    assert text.startswith("대한민국헌법") and "\r" not in text and len(text) > 15000
    assert corpora.tokenize_words("Don't stop, 대한민국 1987!") == ["don't", "stop", "대한민국", "1987"]


def test_build_vocab_orders_by_frequency_and_filters():
    words, w2i, counts = corpora.build_vocab("b a c a b a d".split(), min_count=2)
    assert words == ["a", "b"] and w2i == {"a": 0, "b": 1}
    np.testing.assert_array_equal(counts, [3, 2])
    assert corpora.build_vocab("b a c".split(), max_size=2)[0] == ["a", "b"]


def test_evaluation_sets_load():
    assert len(data.wordsim353()) == 353 and len(data.simlex999()) == 999
    a, b, s = data.wordsim353()[0]
    assert a == a.lower() and 0 <= s <= 10
    q = data.analogy_questions()
    assert sum(map(len, q.values())) == 19544 and all(len(t) == 4 for t in q["family"])


# ------------------------------------------------------------------ models
@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_init_recurrent_schemes(cell):
    H = 6
    model = SequenceModel(cell, 3, H, 1)
    G = {"rnn": 1, "lstm": 4, "gru": 3}[cell]
    init_recurrent_(model.rnn, "orthogonal", gain=2.0)
    W = model.rnn.weight_hh_l0.detach().double().numpy()
    for k in range(G):
        block = W[k * H:(k + 1) * H]
        np.testing.assert_allclose(block @ block.T, 4 * np.eye(H), atol=1e-5)
    init_recurrent_(model.rnn, "identity")
    np.testing.assert_array_equal(model.rnn.weight_hh_l0.detach().numpy(), np.concatenate([np.eye(H)] * G))
    assert float(model.rnn.bias_hh_l0.detach().abs().sum()) == 0.0
    init_recurrent_(model.rnn, "normal", std=0.5, seed=1)
    assert 0.3 < float(model.rnn.weight_hh_l0.detach().std()) < 0.7
    with pytest.raises(ValueError, match="^scheme"):
        init_recurrent_(model.rnn, "glorious")


def test_sequence_model_shapes_and_token_input():
    m = SequenceModel("lstm", 4, 5, 7, vocab_size=11)
    y, (h, c) = m(torch.randint(0, 11, (2, 9)))
    assert y.shape == (2, 9, 7) and h.shape == c.shape == (1, 2, 5)
    with pytest.raises(ValueError, match="^cell"):
        SequenceModel("transformer", 1, 1, 1)


def test_detach_state_keeps_values_and_cuts_the_graph():
    h = torch.ones(2, requires_grad=True) * 3
    for s in (detach_state(h), detach_state((h, h))[1]):
        assert not s.requires_grad and torch.equal(s, h.detach())
    assert detach_state(None) is None


def test_fit_learns_and_clips_and_stops_on_divergence():
    torch.manual_seed(0)
    rng = np.random.default_rng(0)

    def batches(step):
        x, y = tasks.toy_timeseries_batch(16, 20, rng)
        return torch.tensor(x, dtype=torch.float32), torch.tensor(y, dtype=torch.float32)

    loss = lambda m, x, y: torch.nn.functional.mse_loss(m(x)[0][:, -1], y)  # noqa: E731
    model = SequenceModel("gru", 1, 16, 1)
    hist = fit(model, batches, loss, 150, lr=1e-2, clip_norm=1.0)
    assert len(hist.loss) == 150 and not hist.diverged()
    assert np.mean(hist.loss[-20:]) < 0.5 * np.mean(hist.loss[:5])
    assert global_grad_norm(model.parameters()) == pytest.approx(
        float(torch.linalg.vector_norm(torch.cat([p.grad.flatten() for p in model.parameters()]))))

    # clipping happened: one plain SGD step with lr = 1 moves the weights by the clipped
    # gradient, whose norm is clip_norm (each entry at most clip_value), however large the
    # norm fit recorded before clipping
    x, y = batches(0)
    for kw, bound in (({"clip_norm": 1e-3}, lambda d: float(torch.linalg.vector_norm(d))),
                      ({"clip_value": 1e-4}, lambda d: float(d.abs().max()))):
        m = SequenceModel("gru", 1, 16, 1)
        before = torch.cat([p.detach().flatten().clone() for p in m.parameters()])
        h = fit(m, lambda s: (x, y), loss, 1, lr=1.0, optimizer="sgd", **kw)
        moved = torch.cat([p.detach().flatten() for p in m.parameters()]) - before
        limit = next(iter(kw.values()))
        assert h.grad_norm[0] > 10 * limit, kw  # the gradient was far larger than the limit
        assert bound(moved) == pytest.approx(limit, rel=1e-3), kw

    bad = SequenceModel("rnn", 1, 200, 1)
    init_recurrent_(bad.rnn, "normal", std=1.0)
    hist = fit(bad, lambda s: (torch.ones(4, 50, 1) * 2, torch.zeros(4, 1)), loss, 20, lr=1e-3)
    assert hist.diverged() and len(hist.loss) < 20  # stopped at the first non-finite value


def test_carried_state_carries_detaches_and_restarts_every_period():
    """Chunk j + 1 starts from chunk j's state values, without its graph; a new pass from zero."""

    class Recorder(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.ones(()))
            self.seen = []

        def forward(self, x, state):
            self.seen.append(None if state is None else (state.clone(), state.requires_grad))
            out = self.w * x.cumsum(1) + (0 if state is None else state[:, None])
            return out, out[:, -1]

    model = Recorder()
    x = torch.ones(2, 3, 1)
    loss = CarriedState(lambda out, y: ((out - y) ** 2).mean(), period=3)
    hist = fit(model, lambda step: (x, torch.zeros_like(x)), loss, 7, lr=0.0, optimizer="sgd")
    assert len(hist.loss) == 7
    starts = [s if s is None else float(s[0][0, 0]) for s in model.seen]
    assert starts == [None, 3.0, 6.0, None, 3.0, 6.0, None]  # carried, then a new pass
    assert not any(s[1] for s in model.seen if s is not None)  # detached: no graph crosses a chunk
    with pytest.raises(ValueError, match="period"):
        CarriedState(lambda out, y: out.sum(), period=0)


def test_fit_calls_after_step_with_the_history_in_training_mode():
    model = SequenceModel("rnn", 1, 4, 1)
    x, y = torch.ones(2, 5, 1), torch.zeros(2, 1)
    seen = []

    def hook(step, m, hist):
        seen.append((step, len(hist.loss), m.training))
        hist.val_step.append(step)
        hist.val.append(0.5)
        m.eval()  # as an evaluation does: fit puts the model back in training mode

    hist = fit(model, lambda s: (x, y), lambda m, x, y: (m(x)[0][:, -1] - y).pow(2).mean(), 3,
               after_step=hook)
    assert seen == [(1, 1, True), (2, 2, True), (3, 3, True)]
    assert hist.val_step == [1, 2, 3] and model.training
    with pytest.raises(ValueError, match="steps"):
        fit(model, lambda s: (x, y), lambda m, x, y: x.sum(), 0)


def test_draw_continuation_carries_the_state_and_restores_the_mode():
    """Greedy (temperature 0) drawing with the carried state gives what reading the whole
    sequence again at every step gives; the model's training mode comes back as it was."""
    torch.manual_seed(0)
    model = SequenceModel("lstm", 6, 8, 5, vocab_size=5, num_layers=2, dropout=0.5).train()
    prime = torch.tensor([[1, 3, 2]])
    drawn = draw_continuation(model, prime, 7, temperature=0.0, rng=0)
    assert model.training and len(drawn) == 7
    model.eval()
    seq = prime[0].tolist()
    with torch.no_grad():
        for _ in range(7):
            seq.append(int(model(torch.tensor([seq]))[0][0, -1].argmax()))
    assert drawn == seq[3:]


def test_carried_state_scores_equal_reading_each_stream_in_one_piece():
    """Chunk k of stream b is steps k*S .. (k+1)*S - 1 of the b-th contiguous K*S ids, read from
    the state the earlier chunks left: so each stream read in one call from zero state, scored
    over the same steps, gives every chunk's score; the tail is not scored."""
    torch.manual_seed(0)
    V, B, S = 7, 3, 5
    model = SequenceModel("lstm", 4, 6, V, vocab_size=V, num_layers=2, dropout=0.5).double().train()
    ids = np.random.default_rng(1).integers(0, V, size=B * S * 4 + 3).astype(np.int32)
    K = (len(ids) - 1) // (B * S)

    def summed_nll(logits, y):
        return float(torch.nn.functional.cross_entropy(logits.reshape(-1, V), y.reshape(-1),
                                                       reduction="sum"))

    scores, count = carried_state_scores(model, ids, B, S, summed_nll)
    assert model.training and count == K * B * S and len(scores) == K

    model.eval()
    expected = np.zeros(K)
    with torch.no_grad():
        for b in range(B):
            stream = torch.as_tensor(ids[b * K * S : (b + 1) * K * S + 1], dtype=torch.long)
            logits, _ = model(stream[None, :-1])
            nll = torch.nn.functional.cross_entropy(logits[0], stream[1:], reduction="none")
            expected += nll.reshape(K, S).sum(1).numpy()
    np.testing.assert_allclose(scores, expected, rtol=1e-12)


def test_carried_state_scores_refuse_bad_arguments_by_name():
    model = SequenceModel("rnn", 2, 3, 4, vocab_size=4)
    ids = np.arange(40) % 4
    score = lambda logits, y: 0.0  # noqa: E731
    for args, name in [((ids.astype(float), 2, 3, score), "ids"), ((ids[:6], 2, 3, score), "ids"),
                       ((ids, 0, 3, score), "batch_size"), ((ids, 2, True, score), "seq_len"),
                       ((ids, 2, 3, "sum"), "score")]:
        with pytest.raises(ValueError, match=f"^{name}:"):
            carried_state_scores(model, *args)
