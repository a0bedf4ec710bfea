"""autograder.lab.word_lm: the word stream, the Kneser-Ney baseline and the word-level LSTM (chapter 12)."""
import math

import numpy as np
import pytest
import torch

from autograder.lab import char_lm
from autograder.lab.word_lm import (EOS, UNK, KneserNey, WordLM, load, parameter_count, sample,
                                    shakespeare_words, word_tokens)
from tests.conftest import DEVICES


def test_word_tokens_end_every_nonempty_line_with_eos():
    assert word_tokens("To be, or not to be:\n\nThat IS the question.\n") == \
        ["to", "be", "or", "not", "to", "be", EOS, "that", "is", "the", "question", EOS]
    assert word_tokens("\n \n") == []


@pytest.fixture(scope="module")
def small():
    return shakespeare_words(["macbeth"], ["the-tempest"], vocab_size=500,
                             train_plays=["hamlet", "othello"])


def test_the_corpus_keeps_the_most_frequent_training_words_and_maps_the_rest_to_unk(small):
    assert len(small.words) == 500 and small.words[-1] == UNK and len(set(small.words)) == 500
    index = small.index
    # ids follow training frequency: <eos> (one per line of verse) outnumbers every word
    assert small.words[:2] == [EOS, "the"]
    counts = np.bincount(small.train, minlength=500)[:-1]  # <unk>, last, is outside the order
    assert np.all(np.diff(counts) <= 0)
    for split in (small.train, small.valid, small.test):
        assert split.dtype == np.int64 and split.min() >= 0 and split.max() < 500
    unk = index[UNK]
    assert small.oov["train"] == pytest.approx(np.mean(small.train == unk))
    # held-out plays have words the training plays never showed: more of them become <unk>
    assert small.oov["valid"] > small.oov["train"] > 0
    assert small.decode(small.train[:8]).count("\n") == int(np.sum(small.train[:8] == index[EOS]))


@pytest.mark.parametrize("kwargs, match", [
    (dict(valid_plays=["nope"], test_plays=["hamlet"]), "valid_plays"),
    (dict(valid_plays=["hamlet"], test_plays=["hamlet"]), "test_plays"),
    (dict(valid_plays=["hamlet"], test_plays=[]), "test_plays"),
    (dict(valid_plays=["hamlet"], test_plays=["macbeth"], vocab_size=1), "vocab_size"),
    (dict(valid_plays=["hamlet"], test_plays=["macbeth"], train_plays=["macbeth"]), "train_plays"),
])
def test_bad_splits_are_refused_naming_the_argument(kwargs, match):
    with pytest.raises(ValueError, match=match):
        shakespeare_words(**kwargs)


@pytest.mark.parametrize("order", [1, 2, 3, 4])
def test_kneser_ney_is_a_distribution_for_seen_and_unseen_histories(order):
    rng = np.random.default_rng(0)
    V = 12
    ids = rng.integers(0, V - 2, size=400)  # the last two words never occur
    kn = KneserNey(order).fit(ids, V)
    histories = [tuple(ids[10:13]), (V - 1, V - 2, V - 1), (), (int(ids[5]),)]
    for h in histories:
        p = np.array([kn.prob(h, w) for w in range(V)])
        assert np.all(p > 0)
        assert p.sum() == pytest.approx(1.0, abs=1e-12)


def test_kneser_ney_continuation_counts_and_perplexity():
    # "b" follows only "a", but often: as a *continuation* it is rarer than "c", which follows
    # four different words
    a, b, c, d, e = range(5)
    ids = np.array([a, b, a, b, a, b, a, b, c, d, c, e, c, a, c], dtype=np.int64)
    kn = KneserNey(2).fit(ids, 5)
    assert kn.counts[1][(b,)] == 1 and kn.counts[1][(c,)] == 4
    assert kn.prob((e,), b) < kn.prob((e,), c)  # unseen history (e, .): the continuation unigram
    assert kn.prob((a,), b) > 0.5
    assert kn.perplexity(ids) < 5  # better than uniform on its own training text
    uni = KneserNey(1).fit(ids, 5)
    assert uni.nll(ids) == pytest.approx(-np.mean([math.log(uni.prob((), w)) for w in ids[1:]]))


@pytest.mark.parametrize("bad, match", [
    (dict(order=0), "order"), (dict(ids=np.array([0.5, 1.0])), "ids"),
    (dict(ids=np.array([0, 7])), "ids"), (dict(vocab_size=0), "vocab_size"),
])
def test_kneser_ney_refuses_bad_input(bad, match):
    args = dict(order=2, ids=np.array([0, 1, 2, 1]), vocab_size=3) | bad
    with pytest.raises(ValueError, match=match):
        KneserNey(args["order"]).fit(args["ids"], args["vocab_size"])


def test_tying_shares_one_matrix_and_saves_v_times_d_parameters():
    torch.manual_seed(0)
    tied, untied = WordLM(50, 8, 8, tie=True), WordLM(50, 8, 8, tie=False)
    assert tied.head.weight is tied.embed.weight
    assert parameter_count(untied) - parameter_count(tied) == 50 * 8
    assert float(tied.embed.weight.abs().max()) <= 0.1 and float(tied.head.bias.abs().max()) == 0
    assert float(untied.head.weight.abs().max()) <= 0.1


def test_dropout_masks_only_in_training_mode():
    torch.manual_seed(0)
    m = WordLM(30, 6, 6, num_layers=2, dropout=0.5, tie=True)
    x = torch.randint(0, 30, (2, 5))
    m.eval()
    assert torch.equal(m(x)[0], m(x)[0])
    m.train()
    assert not torch.equal(m(x)[0], m(x)[0])


@pytest.mark.parametrize("kwargs, match", [
    (dict(tie=True, hidden_size=7), "tie"), (dict(dropout=1.0), "dropout"),
    (dict(num_layers=0), "num_layers"), (dict(vocab_size=0), "vocab_size"),
])
def test_wordlm_refuses_bad_arguments(kwargs, match):
    args = dict(vocab_size=10, embed_size=6, hidden_size=6) | kwargs
    with pytest.raises(ValueError, match=match):
        WordLM(**args)


@pytest.mark.parametrize("device", DEVICES)
def test_a_short_run_learns_a_repeating_word_pattern(device):
    torch.manual_seed(0)
    ids = np.tile(np.array([3, 1, 4, 1, 5, 9, 2, 6], dtype=np.int64), 200)
    m = WordLM(10, 16, 16, num_layers=2, dropout=0.1, tie=True).to(device)
    before = char_lm.evaluate(m, ids, batch_size=4, seq_len=16)["perplexity"]
    # small tied embeddings start on the unigram plateau; a large step leaves it in time
    char_lm.train(m, ids, 150, batch_size=8, seq_len=16, lr=3e-2)
    after = char_lm.evaluate(m, ids, batch_size=4, seq_len=16)["perplexity"]
    assert before > 8 and after < 1.5


def test_the_training_script_writes_a_record_and_weights_that_agree(tmp_path):
    """scripts/train_word_lm.py, as chapter 12's files were made, on a few hundred words."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    from autograder.lab.word_lm import evaluate
    root = Path(__file__).resolve().parents[1]
    out = subprocess.run([sys.executable, "scripts/train_word_lm.py", "--out", str(tmp_path), "--epochs", "2",
                          "--configs", "tied-0.0", "untied-0.5", "--size", "4", "--train-words", "800",
                          "--batch-size", "4", "--seq-len", "20", "--device", "cpu"],
                         cwd=root, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    record = json.loads((tmp_path / "word_lm_runs.json").read_text())
    assert [r["name"] for r in record["runs"]] == ["tied-0.0", "untied-0.5"]
    assert record["train_words"] == 800 and record["vocab_size"] == 10_000
    for r in record["runs"]:
        assert r["epoch"] == [1, 2] and len(r["valid"]) == len(r["train"]) == len(r["seconds"]) == 2
        assert r["best_valid"] == min(r["valid"]) and r["best_epoch"] == r["epoch"][r["valid"].index(r["best_valid"])]
    saved = next(r for r in record["runs"] if r["name"] == record["saved"])
    assert saved["best_valid"] == min(r["best_valid"] for r in record["runs"])
    model = load(tmp_path / "word_lm.pt")
    assert model.tied == saved["tie"] and model.drop.p == saved["dropout"]
    corpus = shakespeare_words(["twelfth-night", "the-tempest"], ["hamlet", "macbeth"])
    # float16 weights: the score moves by far less than 1 %
    assert evaluate(model, corpus.valid)["perplexity"] == pytest.approx(saved["best_valid"], rel=0.01)
    bad = subprocess.run([sys.executable, "scripts/train_word_lm.py", "--epochs", "0"], cwd=root,
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "--epochs" in bad.stderr


def test_the_saved_chapter_12_weights_match_their_record():
    import json
    from pathlib import Path

    data = Path(__file__).resolve().parents[1] / "book" / "data"
    record = json.loads((data / "word_lm_runs.json").read_text())
    model = load(data / "word_lm.pt")
    saved = next(r for r in record["runs"] if r["name"] == record["saved"])
    assert model.tied == saved["tie"] and model.drop.p == saved["dropout"]
    assert parameter_count(model) == saved["parameters"]
    assert (data / "word_lm.pt").stat().st_size < 6_000_000  # float16, the tied matrix once


def test_sampling_is_seeded_and_refuses_a_foreign_corpus(small):
    torch.manual_seed(0)
    m = WordLM(len(small.words), 8, 8, tie=True)
    a = sample(m, small, "my lord", 12, 1.0, rng=3)
    assert a == sample(m, small, "my lord", 12, 1.0, rng=3) and len(a.split()) <= 12
    with pytest.raises(ValueError, match="corpus"):
        sample(WordLM(7, 4, 4), small, "my lord", 3)
    with pytest.raises(ValueError, match="prime"):
        sample(m, small, "  ,  ", 3)
