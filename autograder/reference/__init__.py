"""Reference implementations of the course: NumPy (float64, batch first) and PyTorch.

Every graded exercise is checked against these. NumPy functions are imported eagerly; the
PyTorch names (LSTMCellFunction and the *_torch / *_module_from_weights helpers) are loaded
on first use so that ``import autograder.reference`` does not pay for importing torch.
"""
from .charlm import perplexity, sample_next, temporal_softmax_loss
from .clipping import clip_grad_norm, clip_grad_value
from .gru import (gru_backward, gru_forward, gru_reset_before_step_backward,
                  gru_reset_before_step_forward, gru_step_backward, gru_step_forward)
from .init import orthogonal
from .lstm import (lstm_backward, lstm_forward, lstm_param_count, lstm_peephole_step_backward,
                   lstm_peephole_step_forward, lstm_step_backward, lstm_step_forward, sigmoid)
from .rnn import bptt_grad_norms, rnn_backward, rnn_forward, rnn_step_backward, rnn_step_forward
from .tbptt import tbptt_batches, truncated_rnn_backward
from .word2vec import (analogy, cbow_loss_and_gradient, cbow_windows, cosine_similarity,
                       most_similar, naive_softmax_loss_and_gradient, nce_loss_and_gradient,
                       neg_sampling_loss_and_gradient, noise_distribution, skipgram_pairs)
from .word_lm import (embedding_backward, embedding_forward, temporal_affine_backward,
                      temporal_affine_forward, tied_embedding_backward)

_TORCH_NAMES = (
    "LSTMCellFunction", "rnn_forward_torch", "lstm_forward_torch", "gru_forward_torch",
    "rnn_module_from_weights", "lstm_module_from_weights", "gru_module_from_weights",
)

__all__ = [
    "rnn_step_forward", "rnn_step_backward", "rnn_forward", "rnn_backward", "bptt_grad_norms",
    "orthogonal", "clip_grad_norm", "clip_grad_value",
    "tbptt_batches", "truncated_rnn_backward",
    "lstm_step_forward", "lstm_step_backward", "lstm_forward", "lstm_backward",
    "lstm_param_count", "sigmoid", "lstm_peephole_step_forward", "lstm_peephole_step_backward",
    "gru_step_forward", "gru_step_backward", "gru_forward", "gru_backward",
    "gru_reset_before_step_forward", "gru_reset_before_step_backward",
    "skipgram_pairs", "cbow_windows", "naive_softmax_loss_and_gradient",
    "neg_sampling_loss_and_gradient", "nce_loss_and_gradient", "cbow_loss_and_gradient",
    "noise_distribution", "cosine_similarity",
    "most_similar", "analogy",
    "temporal_softmax_loss", "perplexity", "sample_next",
    "embedding_forward", "embedding_backward", "temporal_affine_forward",
    "temporal_affine_backward", "tied_embedding_backward",
    *_TORCH_NAMES,
]


def __getattr__(name):
    if name in _TORCH_NAMES:
        from . import torch_models

        return getattr(torch_models, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
