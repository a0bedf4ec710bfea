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
