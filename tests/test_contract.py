"""The names, import behaviour and documentation that the book, notebooks and grader rely on."""
import inspect
import subprocess
import sys

import numpy as np
import pytest

import autograder.reference as ref
from helpers import assert_unchanged

CONTRACT = """
rnn_step_forward rnn_step_backward rnn_forward rnn_backward bptt_grad_norms
orthogonal clip_grad_norm clip_grad_value tbptt_batches truncated_rnn_backward
lstm_step_forward lstm_step_backward lstm_forward lstm_backward lstm_param_count
lstm_peephole_step_forward lstm_peephole_step_backward
gru_step_forward gru_step_backward gru_forward gru_backward
gru_reset_before_step_forward gru_reset_before_step_backward
skipgram_pairs cbow_windows naive_softmax_loss_and_gradient neg_sampling_loss_and_gradient
noise_distribution cosine_similarity most_similar analogy
temporal_softmax_loss perplexity sample_next
embedding_forward embedding_backward temporal_affine_forward temporal_affine_backward
tied_embedding_backward
LSTMCellFunction rnn_forward_torch lstm_forward_torch gru_forward_torch
rnn_module_from_weights lstm_module_from_weights gru_module_from_weights
""".split()

SIGNATURES = {
    "rnn_step_forward": "(x, h_prev, Wx, Wh, b)",
    "rnn_step_backward": "(dh_next, cache)",
    "rnn_forward": "(x, h0, Wx, Wh, b)",
    "rnn_backward": "(dh, cache)",
    "bptt_grad_norms": "(dh_T, cache)",
    "orthogonal": "(shape, gain=1.0, rng=None)",
    "clip_grad_norm": "(grads, max_norm)",
    "clip_grad_value": "(grads, clip_value)",
    "tbptt_batches": "(series, batch_size, seq_len)",
    "truncated_rnn_backward": "(dh, cache, k)",
    "lstm_step_forward": "(x, h_prev, c_prev, Wx, Wh, b)",
    "lstm_step_backward": "(dh_next, dc_next, cache)",
    "lstm_forward": "(x, h0, Wx, Wh, b, c0=None)",
    "lstm_backward": "(dh, cache)",
    "lstm_param_count": "(input_size, hidden_size)",
    "lstm_peephole_step_forward": "(x, h_prev, c_prev, Wx, Wh, b, p)",
    "lstm_peephole_step_backward": "(dh_next, dc_next, cache)",
    "gru_step_forward": "(x, h_prev, Wx, Wh, bx, bh)",
    "gru_step_backward": "(dh_next, cache)",
    "gru_forward": "(x, h0, Wx, Wh, bx, bh)",
    "gru_backward": "(dh, cache)",
    "gru_reset_before_step_forward": "(x, h_prev, Wx, Wh, bx, bh)",
    "gru_reset_before_step_backward": "(dh_next, cache)",
    "skipgram_pairs": "(token_ids, window)",
    "cbow_windows": "(token_ids, window)",
    "naive_softmax_loss_and_gradient": "(center_vec, outside_idx, outside_vectors)",
    "neg_sampling_loss_and_gradient": "(center_vec, outside_idx, outside_vectors, neg_indices)",
    "noise_distribution": "(counts, power=0.75)",
    "cosine_similarity": "(a, b)",
    "most_similar": "(query_vec, embeddings, k, exclude=())",
    "analogy": "(a, b, c, embeddings)",
    "temporal_softmax_loss": "(logits, targets, mask=None)",
    "perplexity": "(mean_nll)",
    "sample_next": "(logits, temperature, rng)",
    "embedding_forward": "(x, W)",
    "embedding_backward": "(dout, cache)",
    "temporal_affine_forward": "(x, w, b)",
    "temporal_affine_backward": "(dout, cache)",
    "tied_embedding_backward": "(dembed, dscores, x, h, W)",
}


@pytest.mark.parametrize("name", CONTRACT)
def test_every_contract_name_is_importable_and_documented(name):
    obj = getattr(ref, name)
    assert obj.__doc__ and len(obj.__doc__.strip()) > 40, f"{name} needs a docstring"
    assert name in ref.__all__


@pytest.mark.parametrize("name,signature", SIGNATURES.items())
def test_signatures_match_the_contract(name, signature):
    assert str(inspect.signature(getattr(ref, name))) == signature


def test_importing_the_numpy_reference_does_not_import_torch():
    code = "import sys, autograder.reference; assert 'torch' not in sys.modules, 'torch imported eagerly'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_unknown_attribute_is_an_attribute_error():
    with pytest.raises(AttributeError):
        ref.no_such_function  # noqa: B018


def test_lstm_cell_function_is_an_autograd_function():
    import torch

    assert issubclass(ref.LSTMCellFunction, torch.autograd.Function)


def test_sequence_functions_return_float64_and_leave_inputs_untouched(rng):
    N, T, D, H = 2, 3, 4, 5
    for G, fwd, bwd, extra in (
        (1, ref.rnn_forward, ref.rnn_backward, 0),
        (4, ref.lstm_forward, ref.lstm_backward, 0),
        (3, ref.gru_forward, ref.gru_backward, 1),
    ):
        args = [rng.standard_normal(s) for s in [(N, T, D), (N, H), (D, G * H), (H, G * H), (G * H,)]
                + [(G * H,)] * extra]
        before = [a.copy() for a in args]
        h, cache = fwd(*args)
        dh = rng.standard_normal(h.shape)
        dh_before = dh.copy()
        grads = bwd(dh, cache)
        assert h.dtype == np.float64 and all(g.dtype == np.float64 for g in grads)
        assert [g.shape for g in grads] == [a.shape for a in args], fwd.__name__
        assert_unchanged(before + [dh_before], args + [dh])
