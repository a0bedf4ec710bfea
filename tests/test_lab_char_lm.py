"""Tests of autograder.lab.char_lm: the character vocabulary, stateful TBPTT training,
evaluation against the NumPy reference, sampling, and argument checks."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch.optim.optimizer import register_optimizer_step_pre_hook

from autograder.lab.char_lm import (CharVocab, evaluate, hidden_trace, sample, surprisal,
                                    train, unigram_bpc)
from autograder.lab.models import SequenceModel
from autograder.reference import temporal_softmax_loss
from conftest import DEVICES
from helpers import names_arg

PERIODIC = "abcabd" * 400            # after "ab" comes c or d in turn: the character 3 steps back decides


@pytest.fixture(autouse=True)
def one_thread():
    """These models are tiny: a second intra-op thread only adds overhead (and, on a busy
    machine, much waiting), so the tests run with one and restore the setting afterwards."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def small_model(V, H=16, seed=0, device="cpu"):
    torch.manual_seed(seed)
    return SequenceModel("lstm", 8, H, V, vocab_size=V).to(device)


# ----------------------------------------------------------------------------- vocabulary
def test_vocab_round_trip_and_order():
    text = "To be, or not to be:\nthat is the question.\n"
    vocab = CharVocab.from_text(text)
    assert vocab.chars == sorted(set(text)) and len(vocab) == len(set(text))
    ids = vocab.encode(text)
    assert ids.dtype == np.int64 and ids.shape == (len(text),)
    assert vocab.decode(ids) == text
    assert vocab.decode(ids.tolist()) == text
    assert vocab.decode([]) == ""
    assert vocab.unknown_id is None


def test_vocab_round_trip_hangul():
    text = "대한민국은 민주공화국이다.\n"
    vocab = CharVocab.from_text(text)
    assert vocab.decode(vocab.encode(text)) == text
    assert len(vocab) == len(set(text))


def test_vocab_unknown_maps_unseen_and_rare_characters():
    vocab = CharVocab.from_text("aaabbc", min_count=2, unknown="?")
    assert vocab.chars == ["?", "a", "b"] and vocab.unknown_id == 0
    np.testing.assert_array_equal(vocab.encode("abcz"), [1, 2, 0, 0])
    assert vocab.decode(vocab.encode("abcz")) == "ab??"


def test_vocab_without_unknown_rejects_unseen_character():
    vocab = CharVocab.from_text("abc")
    with pytest.raises(ValueError, match=names_arg("text")) as err:
        vocab.encode("abz")
    assert "'z'" in str(err.value) and "position 2" in str(err.value)


@pytest.mark.parametrize("kwargs,name", [
    (dict(text=""), "text"),
    (dict(text=b"abc"), "text"),
    (dict(text="abc", min_count=0), "min_count"),
    (dict(text="abc", min_count=1.5), "min_count"),
    (dict(text="aab", min_count=2), "unknown"),          # 'b' would be lost without an unknown
    (dict(text="abc", unknown="a"), "unknown"),
    (dict(text="abc", unknown="??"), "unknown"),
])
def test_vocab_bad_arguments(kwargs, name):
    with pytest.raises(ValueError, match=names_arg(name)):
        CharVocab.from_text(**kwargs)


def test_vocab_constructor_bad_arguments():
    with pytest.raises(ValueError, match=names_arg("chars")):
        CharVocab(["a", "a"])
    with pytest.raises(ValueError, match=names_arg("chars")):
        CharVocab(["ab"])
    vocab = CharVocab("ab")
    with pytest.raises(ValueError, match=names_arg("ids")):
        vocab.decode([0, 2])
    with pytest.raises(ValueError, match=names_arg("ids")):
        vocab.decode(np.array([0.0, 1.0]))
    with pytest.raises(ValueError, match=names_arg("text")):
        vocab.encode(["a"])


# ----------------------------------------------------------------------------- training
def uniform_nll(V):
    return math.log(V)


@pytest.mark.parametrize("device", DEVICES)
def test_training_on_periodic_text_beats_uniform(device):
    vocab = CharVocab.from_text(PERIODIC)
    ids = vocab.encode(PERIODIC)
    model = small_model(len(vocab), device=device)
    hist = train(model, ids, steps=100, batch_size=8, seq_len=16, lr=2e-2, clip_norm=1.0)
    assert len(hist.loss) == len(hist.grad_norm) == 100
    # uniform over 4 symbols is log 4 = 1.39 nats; the next character is determined by the last 3
    assert hist.loss[0] > 0.9 * uniform_nll(len(vocab))
    assert np.mean(hist.loss[-10:]) < 0.1 * uniform_nll(len(vocab))
    assert evaluate(model, ids, batch_size=4, seq_len=32)["bpc"] < 0.2
    # greedy continuation reproduces the period, including the c/d alternation
    assert sample(model, vocab, "abcab", 13, temperature=0, rng=0) == "dabcabdabcabd"
    assert all(math.isfinite(g) for g in hist.grad_norm)


def test_training_records_validation_and_calls_back():
    vocab = CharVocab.from_text(PERIODIC)
    ids = vocab.encode(PERIODIC)
    model = small_model(len(vocab))
    seen = []
    hist = train(model, ids[:1200], steps=20, batch_size=4, seq_len=8, val_ids=ids[1200:],
                 eval_every=8, eval_batch_size=2, eval_seq_len=32, callback=lambda step, m: seen.append((step, m.training)),
                 callback_at=[0, 5, 20])
    assert hist.val_step == [8, 16, 20] and len(hist.val) == 3
    assert [s for s, _ in seen] == [0, 5, 20]
    assert hist.val[-1] == pytest.approx(evaluate(model, ids[1200:], 2, 32)["bpc"])


@pytest.mark.parametrize("clip", [None, 0.05])
def test_clipping_bounds_the_gradient_the_optimizer_sees(clip):
    """The recorded norm is measured before clipping; the optimizer steps with the clipped one."""
    vocab = CharVocab.from_text(PERIODIC)
    ids = vocab.encode(PERIODIC)
    model = small_model(len(vocab))
    seen = []

    def hook(opt, args, kwargs):
        grads = [p.grad for g in opt.param_groups for p in g["params"] if p.grad is not None]
        seen.append(float(torch.linalg.vector_norm(torch.stack([g.norm() for g in grads]))))

    handle = register_optimizer_step_pre_hook(hook)
    try:
        hist = train(model, ids, steps=20, batch_size=8, seq_len=16, lr=1e-2, clip_norm=clip)
    finally:
        handle.remove()
    assert len(seen) == 20
    if clip is None:
        np.testing.assert_allclose(seen, hist.grad_norm, rtol=1e-5)
    else:
        assert min(hist.grad_norm) > clip                 # every step needed clipping here
        np.testing.assert_allclose(seen, clip, rtol=1e-4)


def test_training_is_stateful_across_chunks():
    """Trained on chunks of 3 characters, the model still learns which of c/d follows 'ab'. That
    depends on the character 3 steps back, which for most positions lies in the previous chunk:
    only the state carried from chunk to chunk brings it in."""
    vocab = CharVocab.from_text(PERIODIC)
    ids = vocab.encode(PERIODIC)
    model = small_model(len(vocab))
    train(model, ids, steps=200, batch_size=8, seq_len=3, lr=2e-2, clip_norm=1.0)
    assert evaluate(model, ids, batch_size=4, seq_len=32)["bpc"] < 0.5


# ----------------------------------------------------------------------------- evaluation
def test_evaluate_matches_reference_loss_on_one_chunk():
    vocab = CharVocab.from_text(PERIODIC)
    ids = vocab.encode(PERIODIC)[:2 * 10 + 1]
    model = small_model(len(vocab))
    res = evaluate(model, ids, batch_size=2, seq_len=10)
    with torch.no_grad():
        x = torch.as_tensor(ids[:-1].reshape(2, 10))
        logits, _ = model(x)
    y = ids[1:].reshape(2, 10)
    ref, _ = temporal_softmax_loss(logits.double().numpy(), y)
    torch_loss = F.cross_entropy(logits.reshape(-1, len(vocab)), torch.as_tensor(y).reshape(-1))
    assert res["nll"] == pytest.approx(ref, rel=1e-12)
    assert res["nll"] == pytest.approx(float(torch_loss), rel=1e-5)
    assert res["bpc"] == pytest.approx(ref / math.log(2), rel=1e-12)
    assert res["perplexity"] == pytest.approx(math.exp(ref), rel=1e-12)
    assert res["chars"] == 20


def test_unigram_bpc_by_hand():
    train_ids = np.array([0, 0, 0, 1])
    eval_ids = np.array([0, 1])
    p = np.array([3 + 1, 1 + 1, 0 + 1]) / 7.0                          # add-one over V=3
    assert unigram_bpc(train_ids, eval_ids, 3) == pytest.approx(-np.log2(p[[0, 1]]).mean())
    with pytest.raises(ValueError, match=names_arg("eval_ids")):
        unigram_bpc(train_ids, np.array([3]), 3)


# ----------------------------------------------------------------------------- sampling
def test_sampling_is_deterministic_given_a_seed():
    vocab = CharVocab.from_text("the quick brown fox\n")
    model = small_model(len(vocab))
    a = sample(model, vocab, "the", 50, temperature=1.0, rng=7)
    b = sample(model, vocab, "the", 50, temperature=1.0, rng=np.random.default_rng(7))
    c = sample(model, vocab, "the", 50, temperature=1.0, rng=8)
    assert a == b and len(a) == 50 and set(a) <= set(vocab.chars)
    assert a != c
    # an int seed makes one generator for the whole sample, not the same draw at every step
    assert len(set(a)) > 3


def test_temperature_zero_is_argmax():
    vocab = CharVocab.from_text("abcdef")
    model = small_model(len(vocab), seed=3)
    greedy = sample(model, vocab, "ab", 20, temperature=0, rng=0)
    assert greedy == sample(model, vocab, "ab", 20, temperature=0.0, rng=123)   # rng is unused
    # step by step: feeding the text back, each character is the argmax of the previous logits
    with torch.no_grad():
        logits, _ = model(torch.as_tensor(vocab.encode("ab" + greedy))[None])
    np.testing.assert_array_equal(logits[0, 1:-1].argmax(-1).numpy(), vocab.encode(greedy))


def test_hidden_trace_matches_lstm_outputs():
    vocab = CharVocab.from_text(PERIODIC)
    ids = vocab.encode(PERIODIC[:30])
    model = small_model(len(vocab), H=16)
    h, c = hidden_trace(model, ids)
    assert h.shape == c.shape == (30, 16)
    with torch.no_grad():
        out, (hn, cn) = model.rnn(model.embed(torch.as_tensor(ids)[None]))
    np.testing.assert_allclose(h, out[0].double().numpy(), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(c[-1], cn[0, 0].double().numpy(), rtol=1e-6, atol=1e-6)


# ----------------------------------------------------------------------------- argument checks
def _setup():
    vocab = CharVocab.from_text(PERIODIC)
    return vocab, vocab.encode(PERIODIC), small_model(len(vocab))


@pytest.mark.parametrize("kwargs,name", [
    (dict(ids=[0, 1, 2]), "ids"),
    (dict(ids=np.zeros(100)), "ids"),
    (dict(ids=np.zeros((10, 10), dtype=np.int64)), "ids"),
    (dict(ids=np.full(100, -1)), "ids"),
    (dict(steps=0), "steps"),
    (dict(steps=2.5), "steps"),
    (dict(batch_size=0), "batch_size"),
    (dict(seq_len=-1), "seq_len"),
    (dict(lr=0.0), "lr"),
    (dict(clip_norm=-1.0), "clip_norm"),
    (dict(eval_every=5), "eval_every"),                   # without val_ids
    (dict(val_ids=np.zeros(5)), "val_ids"),
    (dict(callback=3), "callback"),
    (dict(callback=print, callback_at=[11]), "callback_at"),
    (dict(batch_size=100, seq_len=100), "ids"),          # text too short
    (dict(model=torch.nn.Linear(2, 2)), "model"),
])
def test_train_bad_arguments(kwargs, name):
    vocab, ids, model = _setup()
    args = dict(model=model, ids=ids, steps=10, batch_size=4, seq_len=8)
    args.update(kwargs)
    with pytest.raises(ValueError, match=names_arg(name)):
        train(**args)


def test_train_rejects_ids_beyond_the_model_vocabulary():
    vocab, ids, model = _setup()
    with pytest.raises(ValueError, match=names_arg("ids")):
        train(model, ids + len(vocab), steps=1, batch_size=4, seq_len=8)


@pytest.mark.parametrize("kwargs,name", [
    (dict(prime=""), "prime"),
    (dict(prime=5), "prime"),
    (dict(prime="xyz"), "text"),                          # not in a vocabulary without unknown
    (dict(n=0), "n"),
    (dict(temperature=-0.5), "temperature"),
    (dict(temperature="hot"), "temperature"),
    (dict(rng="seed"), "rng"),
    (dict(vocab="abcd"), "vocab"),
    (dict(vocab=CharVocab("abcdefg")), "vocab"),          # size differs from the model's
])
def test_sample_bad_arguments(kwargs, name):
    vocab, ids, model = _setup()
    args = dict(model=model, vocab=vocab, prime="ab", n=5, temperature=1.0, rng=0)
    args.update(kwargs)
    with pytest.raises(ValueError, match=names_arg(name)):
        sample(**args)


@pytest.mark.parametrize("kwargs,name", [
    (dict(ids=np.array([0, 1])), "ids"),                  # shorter than one chunk
    (dict(batch_size=0), "batch_size"),
    (dict(seq_len=1.0), "seq_len"),
])
def test_evaluate_bad_arguments(kwargs, name):
    vocab, ids, model = _setup()
    args = dict(model=model, ids=ids, batch_size=4, seq_len=8)
    args.update(kwargs)
    with pytest.raises(ValueError, match=names_arg(name)):
        evaluate(**args)


def test_surprisal_mean_is_the_bpc_of_one_stream():
    vocab = CharVocab.from_text(PERIODIC)
    ids = vocab.encode(PERIODIC[:65])
    model = small_model(len(vocab))
    bits = surprisal(model, ids)
    assert bits.shape == (64,) and bits.dtype == np.float64 and (bits > 0).all()
    assert bits.mean() == pytest.approx(evaluate(model, ids, batch_size=1, seq_len=64)["bpc"], rel=1e-5)
    with pytest.raises(ValueError, match=names_arg("ids")):
        surprisal(model, ids[:1])
