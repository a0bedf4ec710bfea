"""The one set of argument checks (autograder.reference._validate) and the callers that share it.

Every public function of the references and the book's library checks its arguments through
these helpers, so a bad argument reads the same everywhere: the argument's name first, then
what was expected and what came.
"""
import numpy as np
import pytest
import torch

from autograder.lab.models import SequenceModel, fit, init_recurrent_
from autograder.lab.truncated_bptt import train_stateful
from autograder.reference import _validate as v
from autograder.reference import orthogonal, sample_next
from helpers import names_arg


# ----------------------------------------------------------------------------- generator
@pytest.mark.parametrize("seed", [0, 7, np.int64(7)])
def test_an_int_seed_is_the_generator_it_seeds(seed):
    assert v.generator("rng", seed).random() == np.random.default_rng(int(seed)).random()


def test_a_generator_is_used_as_is_and_none_only_when_allowed():
    g = np.random.default_rng(3)
    assert v.generator("rng", g) is g
    assert isinstance(v.generator("rng", None, allow_none=True), np.random.Generator)
    with pytest.raises(ValueError, match=names_arg("rng") + ".*an int seed or a numpy Generator"):
        v.generator("rng", None)


@pytest.mark.parametrize("bad", [True, np.bool_(False), 1.0, "3", np.random.RandomState(0),
                                 torch.Generator()])
def test_generator_refuses_what_is_not_a_seed(bad):
    with pytest.raises(ValueError, match=names_arg("rng")):
        v.generator("rng", bad)


def test_every_seeded_function_reads_an_int_seed_the_same_way():
    # orthogonal (the reference), sample_next (the reference) and delayed_recall (the lab)
    # once parsed "int seed or Generator" three ways; now an int s means default_rng(s)
    from autograder.lab.data import delayed_recall

    np.testing.assert_array_equal(orthogonal((4, 4), rng=5),
                                  orthogonal((4, 4), rng=np.random.default_rng(5)))
    logits = np.linspace(-1, 1, 7)
    assert sample_next(logits, 1.0, 9) == sample_next(logits, 1.0, np.random.default_rng(9))
    np.testing.assert_array_equal(delayed_recall(2, 8, 2, 4)[0],
                                  delayed_recall(2, 8, 2, np.random.default_rng(4))[0])
    for call in (lambda: orthogonal((4, 4), rng=True), lambda: sample_next(logits, 1.0, True),
                 lambda: delayed_recall(2, 8, 2, True)):
        with pytest.raises(ValueError, match=names_arg("rng")):
            call()


# ----------------------------------------------------------------------------- torch_generator
@pytest.mark.parametrize("seed", [0, 7, np.int64(7), -3])
def test_an_int_seed_is_the_torch_generator_it_seeds(seed):
    assert torch.equal(torch.rand(3, generator=v.torch_generator("seed", seed)),
                       torch.rand(3, generator=torch.Generator().manual_seed(int(seed))))


def test_a_cpu_torch_generator_is_used_as_is():
    g = torch.Generator()
    assert v.torch_generator("seed", g) is g


@pytest.mark.parametrize("bad", [True, np.bool_(True), 1.0, "3", None, np.random.default_rng(0)])
def test_torch_generator_refuses_what_is_not_a_seed(bad):
    with pytest.raises(ValueError, match=names_arg("seed") + ".*an int seed or a CPU torch.Generator"):
        v.torch_generator("seed", bad)


# ----------------------------------------------------------------------------- integer, probability
def test_integer_returns_an_int_at_least_low():
    assert v.integer("seed", np.int64(4)) == 4 and type(v.integer("seed", np.int64(4))) is int
    assert v.integer("seed", -2) == -2 and v.integer("seed", 0, low=0) == 0
    with pytest.raises(ValueError, match=names_arg("seed") + ".*an integer >= 0, got -1"):
        v.integer("seed", -1, low=0)


@pytest.mark.parametrize("bad", [True, np.bool_(False), 1.0, "1", None])
def test_integer_refuses_bools_and_non_integers(bad):
    with pytest.raises(ValueError, match=names_arg("seed") + ".*expected an integer"):
        v.integer("seed", bad)


def test_probability_is_a_float_in_zero_one():
    assert v.probability("p", 0) == 0.0 and v.probability("p", np.float32(0.25)) == 0.25
    for bad in (1, 1.0, -0.1, float("nan"), True, "0.5", None):
        with pytest.raises(ValueError, match=names_arg("p")):
            v.probability("p", bad)


# ----------------------------------------------------------------------------- function
def test_function_returns_a_callable_and_none_only_when_allowed():
    assert v.function("score", len) is len
    assert v.function("callback", None, allow_none=True) is None
    with pytest.raises(ValueError, match=names_arg("callback") + r": expected a callable \(step, model\) "
                       r"or None, got int$"):
        v.function("callback", 3, allow_none=True, signature="(step, model)")
    with pytest.raises(ValueError, match=names_arg("score") + ": expected a callable, got NoneType$"):
        v.function("score", None)


# ----------------------------------------------------------------------------- token_ids, chunkable
def test_token_ids_accepts_a_1d_integer_array_in_range_untouched():
    ids = np.array([0, 3, 2], dtype=np.int32)
    assert v.token_ids("ids", ids, 4) is ids and v.token_ids("ids", ids) is ids
    assert v.token_ids("ids", np.zeros(0, dtype=np.int64), min_len=0).size == 0


@pytest.mark.parametrize("bad, why", [
    ([0, 1], "expected a 1-D integer numpy array of token ids, got list"),
    (np.array([0.0, 1.0]), "got float64 array"),
    (np.zeros((2, 2), dtype=np.int64), r"got int64 array of shape \(2, 2\)"),
    (np.array([True, False]), "got bool array"),
    (np.array([1]), "expected at least 2 ids, got 1"),
    (np.array([0, 4]), r"expected indices in \[0, 4\), got values in \[0, 4\]"),
    (np.array([-1, 2]), r"expected indices in \[0, 4\)"),
])
def test_token_ids_refuses_naming_the_argument(bad, why):
    with pytest.raises(ValueError, match=names_arg("token_ids") + f".*{why}"):
        v.token_ids("token_ids", bad, 4, min_len=2)


def test_token_ids_without_a_size_still_refuses_negative_ids():
    with pytest.raises(ValueError, match=names_arg("ids") + r": expected ids >= 0, got values in \[-2, 5\]"):
        v.token_ids("ids", np.array([5, -2]))


def test_chunkable_needs_one_chunk_and_its_targets():
    ids = np.arange(7)
    assert v.chunkable("ids", ids, 2, 3) is ids  # 2 * 3 inputs and one more target
    with pytest.raises(ValueError, match=names_arg("val_ids") + r": 6 values are too few for "
                       r"eval_batch_size=2 and eval_seq_len=3 \(needs at least 7\); pass a smaller "
                       "eval_batch_size or eval_seq_len"):
        v.chunkable("val_ids", ids[:6], 2, 3, names=("eval_batch_size", "eval_seq_len"))


# ----------------------------------------------------------------------------- tensor
def test_tensor_binds_and_checks_symbolic_dimensions():
    dims = {}
    x = torch.zeros(3, 5)
    assert v.tensor("x", x, ("N", "D"), dims) is x
    v.tensor("Wx", torch.zeros(5, 8), ("D", "4H"), dims, like=x)
    assert dims["N"] == 3 and dims["D"] == 5 and dims["H"] == 2
    with pytest.raises(ValueError, match=r"^Wh: expected shape \(H, 4H\) = \(2, 8\), got \(3, 8\)"):
        v.tensor("Wh", torch.zeros(3, 8), ("H", "4H"), dims, like=x)


@pytest.mark.parametrize("bad, why", [
    (np.zeros((3, 5)), "expected a torch.Tensor"),
    (torch.zeros(3, 5, dtype=torch.int64), "floating-point"),
    (torch.zeros(3, 5, dtype=torch.float64), "like the first argument"),
    (torch.zeros(3), "expected 2-D shape"),
])
def test_tensor_refuses(bad, why):
    with pytest.raises(ValueError, match=names_arg("h") + f".*{why}"):
        v.tensor("h", bad, ("N", "D"), {}, like=torch.zeros(1, dtype=torch.float32))


# ----------------------------------------------------------------------------- one_of
def test_one_of_compares_type_and_value():
    assert v.one_of("mode", "fixed", ("none", "fixed")) == "fixed"
    for bad in ("Fixed", 1, None, ["fixed"]):
        with pytest.raises(ValueError, match=names_arg("mode") + ".*expected one of 'none', 'fixed'"):
            v.one_of("mode", bad, ("none", "fixed"))
    with pytest.raises(ValueError, match=names_arg("flag")):
        v.one_of("flag", 1, (True, False))  # 1 == True, but it is not a bool


# ----------------------------------------------------------------------------- callers
def _tiny_model():
    return SequenceModel("rnn", 1, 3, 1)


def test_fit_and_train_stateful_refuse_an_unknown_optimizer():
    # they used to train with SGD for anything but "adam"
    x, y = torch.zeros(2, 4, 1), torch.zeros(2, 4, 1)
    loss = lambda m, a, b: ((m(a)[0] - b) ** 2).mean()  # noqa: E731
    with pytest.raises(ValueError, match=names_arg("optimizer") + ".*'adam', 'sgd'.*'adagrad'"):
        fit(_tiny_model(), lambda step: (x, y), loss, 1, optimizer="adagrad")
    with pytest.raises(ValueError, match=names_arg("optimizer")):
        train_stateful(_tiny_model(), x, y, 2, optimizer="Adam")


def test_init_recurrent_refuses_an_unknown_scheme_before_touching_the_layer():
    layer = torch.nn.RNN(1, 4, batch_first=True)
    before = {k: t.clone() for k, t in layer.state_dict().items()}
    with pytest.raises(ValueError, match=names_arg("scheme")):
        init_recurrent_(layer, "xavier")
    for k, t in layer.state_dict().items():
        assert torch.equal(t, before[k]), f"{k} changed by a refused call"


def test_epoch_pairs_reads_its_rng_like_the_others():
    # it used any object as a generator; now an int seed, a Generator, or None for seed 0
    from autograder.lab.word2vec import epoch_pairs

    ids = np.arange(30) % 7
    same = [epoch_pairs(ids, 3, rng=r) for r in (None, 0, np.random.default_rng(0))]
    for centers, contexts in same[1:]:
        np.testing.assert_array_equal(centers, same[0][0])
        np.testing.assert_array_equal(contexts, same[0][1])
    for bad in ("x", 1.5, True):
        with pytest.raises(ValueError, match=names_arg("rng")):
            epoch_pairs(ids, 3, rng=bad)


def test_a_tensor_is_described_by_dtype_and_shape():
    with pytest.raises(ValueError, match=r"^rng: .*got torch\.float32 tensor of shape \(2, 3\)$"):
        v.generator("rng", torch.zeros(2, 3))


def test_fit_refuses_what_is_not_callable_by_name():
    x, y = torch.zeros(2, 4, 1), torch.zeros(2, 1)
    loss = lambda m, a, b: m(a)[0].sum()  # noqa: E731
    for kwargs, name in [(dict(batches=None), "batches"), (dict(loss_fn="mse"), "loss_fn"),
                         (dict(after_step=1), "after_step")]:
        args = dict(batches=lambda step: (x, y), loss_fn=loss, after_step=None) | kwargs
        with pytest.raises(ValueError, match=names_arg(name) + ": expected a callable"):
            fit(_tiny_model(), steps=1, **args)


def test_the_lab_seeds_refuse_bools_and_non_integers_by_name():
    from autograder.lab.data import adding_tensors, remember_first_tensors
    from autograder.lab.long_range import make_adding_model, train_adding
    from autograder.lab.regularization import (StateDropoutGRU, gru_states_with_state_dropout,
                                               rnn_preactivation_stats)
    from autograder.lab.word2vec import SkipGramConfig

    cell, x = torch.nn.GRUCell(2, 3), torch.zeros(1, 4, 2)
    for call, name in [
        (lambda: train_adding("rnn", 4, steps=1, seed=True), "seed"),
        (lambda: train_adding("rnn", 4, steps=1, seed=-1), "seed"),
        (lambda: train_adding("rnn", 4.0, steps=1), "T"),
        (lambda: make_adding_model("rnn", 4, seed=1.5), "seed"),
        (lambda: SkipGramConfig(seed=True), "seed"),
        (lambda: SkipGramConfig(seed=-1), "seed"),
        (lambda: gru_states_with_state_dropout(cell, x, 0.1, "fixed", seed=True), "seed"),
        (lambda: gru_states_with_state_dropout(cell, x, 1.0, "fixed"), "p"),
        (lambda: StateDropoutGRU(2, 3, 1, seed="0"), "seed"),
        (lambda: StateDropoutGRU(2, 3, 1, mode="all"), "mode"),
        (lambda: rnn_preactivation_stats(3, 4, 1.0, False, seed=np.bool_(True)), "seed"),
        (lambda: rnn_preactivation_stats(3, 4, 1.0, False, activation="sigmoid"), "activation"),
        (lambda: adding_tensors(2, 4, rng=True), "rng"),
        (lambda: remember_first_tensors(2, 4, rng="0"), "rng"),
    ]:
        with pytest.raises(ValueError, match=names_arg(name)):
            call()


def test_an_int_seed_and_its_generator_give_the_same_task_batches():
    from autograder.lab.data import adding_tensors, remember_first_tensors

    for make in (adding_tensors, remember_first_tensors):
        for a, b in zip(make(3, 5, 4), make(3, 5, np.random.default_rng(4))):
            assert torch.equal(a, b)


def test_counts_are_checked_by_one_helper():
    """Word counts: the reference's noise distribution and the lab's subsampling (and so
    skip-gram training, which checks them the same way) refuse the same bad counts."""
    from autograder.lab.word2vec import subsample_keep_prob
    from autograder.reference import noise_distribution

    assert v.counts("counts", np.array([3, 0, 1])).dtype == np.float64
    for bad in (np.array([]), np.array([1.0, np.nan]), np.array([-1, 2]), np.zeros(3), [1, 2],
                np.ones((2, 2)), np.array(["a"])):
        for fn in (lambda c: v.counts("counts", c), noise_distribution,
                   lambda c: subsample_keep_prob(c, 1e-3)):
            with pytest.raises(ValueError, match=r"^counts: expected"):
                fn(bad)
    with pytest.raises(ValueError, match=r"^counts: expected shape \(4,\)"):
        v.counts("counts", np.ones(3), size=4)


def test_tbptt_batches_says_when_a_series_is_too_short():
    from autograder.reference import tbptt_batches

    with pytest.raises(ValueError, match=r"^series: 8 values are too few for batch_size=2 and seq_len=4"):
        tbptt_batches(np.arange(8), 2, 4)
    assert tbptt_batches(np.arange(9), 2, 4)[0].shape == (1, 2, 4, 1)
