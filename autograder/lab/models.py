"""Small PyTorch sequence models and a training loop for the book's experiments.

Device-agnostic: pass ``device="cuda"`` where there is one. The recurrent layers are
PyTorch's own (nn.RNN / nn.LSTM / nn.GRU); the references in ``autograder.reference`` are
proved equal to them in tests/, so experiments run at PyTorch's speed.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from ..reference import _validate as v
from ..reference.charlm import sample_next
from ..reference.init import orthogonal
from ..reference.tbptt import tbptt_batches

CELLS = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}
GATES = {"rnn": 1, "lstm": 4, "gru": 3}
SCHEMES = ("default", "normal", "orthogonal", "identity")
OPTIMIZERS = {"adam": torch.optim.Adam, "sgd": torch.optim.SGD}


def init_recurrent_(layer, scheme, std=1.0, gain=1.0, seed=0):
    """Re-initialize the recurrent matrices W_hh of a torch RNN/LSTM/GRU layer in place.

    scheme:
    - "default": leave PyTorch's U(-1/sqrt(H), 1/sqrt(H))
    - "normal": N(0, std^2) entries (std=1 reproduces the exploding setting of chapter 4)
    - "orthogonal": one orthogonal (H, H) block per gate, times gain (autograder.reference.orthogonal)
    - "identity": identity per gate times gain, with zero biases (IRNN, Le et al. 2015)
    """
    v.one_of("scheme", scheme, SCHEMES)
    cell = type(layer).__name__.lower()
    G = GATES[cell]
    rng = v.generator("seed", seed)
    with torch.no_grad():
        for name, p in layer.named_parameters():
            if not name.startswith("weight_hh"):
                if scheme == "identity" and name.startswith("bias"):
                    p.zero_()
                continue
            H = p.shape[1]
            if scheme == "default":
                continue
            if scheme == "normal":
                w = rng.normal(0.0, std, size=(G * H, H))
            elif scheme == "orthogonal":
                w = np.concatenate([orthogonal((H, H), gain=gain, rng=rng) for _ in range(G)])
            else:  # identity
                w = np.concatenate([gain * np.eye(H)] * G)
            p.copy_(torch.as_tensor(w, dtype=p.dtype))
    return layer


class SequenceModel(nn.Module):
    """A recurrent layer (rnn / lstm / gru) followed by a linear read-out at every step.

    Inputs to forward: x (N, T, D) float, or (N, T) int64 token ids when ``vocab_size`` is set
    (an embedding is applied first); state is None or the layer's state.
    Returns (y (N, T, O), state); use y[:, -1] for many-to-one tasks.
    """

    def __init__(self, cell, input_size, hidden_size, output_size, vocab_size=None, num_layers=1,
                 dropout=0.0):
        super().__init__()
        v.one_of("cell", cell, sorted(CELLS))
        self.cell = cell
        self.embed = nn.Embedding(vocab_size, input_size) if vocab_size else None
        self.rnn = CELLS[cell](input_size, hidden_size, num_layers=num_layers, batch_first=True,
                               dropout=dropout if num_layers > 1 else 0.0)
        self.head = nn.Linear(hidden_size, output_size)

    def forward(self, x, state=None):
        if self.embed is not None:
            x = self.embed(x)
        h, state = self.rnn(x, state)
        return self.head(h), state


def detach_state(state):
    """Cut the graph at a chunk boundary (truncated BPTT): same values, no history."""
    if state is None:
        return None
    if isinstance(state, tuple):
        return tuple(s.detach() for s in state)
    return state.detach()


def global_grad_norm(parameters):
    """L2 norm of all gradients together (the quantity that clip_grad_norm_ compares)."""
    norms = [p.grad.detach().norm() for p in parameters if p.grad is not None]
    return float(torch.linalg.vector_norm(torch.stack(norms))) if norms else 0.0


@dataclass
class History:
    """What a training run (``fit``) recorded.

    - loss, grad_norm: one entry per update, the loss and the global gradient norm before
      clipping; a run that diverged ends with the non-finite entry that stopped it
    - val_step, val: the scores an evaluation hook added (``after_step``), with the number of
      updates made when each was taken (char_lm.train records bits per character there)
    """
    loss: list = field(default_factory=list)
    grad_norm: list = field(default_factory=list)
    val_step: list = field(default_factory=list)
    val: list = field(default_factory=list)

    def diverged(self):
        """True when a loss or a gradient norm became inf or nan."""
        return any(not math.isfinite(v) for v in self.loss + self.grad_norm)


class CarriedState:
    """The loss of stateful truncated BPTT, as a ``loss_fn`` for ``fit``.

    Every call runs one chunk of long streams from the state the previous chunk left, detached
    (``detach_state``), so the backward pass of a chunk stops at its first step while its
    forward pass starts where the streams were. The state restarts at zero every ``period``
    calls, where a new pass over the streams begins.

    - chunk_loss: callable (out, *targets) -> scalar tensor, with out the model's output on
      the chunk (B, S, O)
    - period: chunks per pass over the streams
    Called as loss_fn(model, x, *targets) with x (B, S, ...) the chunk's input.
    """

    def __init__(self, chunk_loss, period):
        self.chunk_loss = v.function("chunk_loss", chunk_loss, signature="(out, *targets) -> loss")
        self.period = v.positive_int("period", period)
        self.state = None
        self.calls = 0

    def __call__(self, model, x, *targets):
        # [carried-state] (chapter 10 shows the lines between these markers)
        if self.calls % self.period == 0:
            self.state = None               # a new pass over the streams starts from zero state
        self.calls += 1
        out, state = model(x, self.state)
        self.state = detach_state(state)    # the truncation: the next chunk gets these values, not their graph
        return self.chunk_loss(out, *targets)
        # [/carried-state]


def fit(model, batches, loss_fn, steps, lr=1e-3, clip_norm=None, clip_value=None,
        optimizer="adam", stop_on_nan=True, after_step=None):
    """Train ``model`` for ``steps`` updates and return a History: the one loop of the book.

    - batches: callable step -> tuple of tensors on the model's device (step from 0)
    - loss_fn: callable (model, *batch) -> scalar loss tensor (``CarriedState`` for stateful
      truncated BPTT)
    - clip_norm / clip_value: torch.nn.utils.clip_grad_norm_ / clip_grad_value_ when given
    - optimizer: "adam" or "sgd"
    - stop_on_nan: stop at the first non-finite loss or gradient norm, before the update
      spoils the weights (the rest of the run would be nan too)
    - after_step: callable (updates, model, history) called after every update, e.g. to score
      held-out data; the model is put back in training mode afterwards
    """
    v.one_of("optimizer", optimizer, OPTIMIZERS)
    steps = v.positive_int("steps", steps)
    v.function("batches", batches, signature="step -> batch")
    v.function("loss_fn", loss_fn, signature="(model, *batch) -> loss")
    v.function("after_step", after_step, allow_none=True, signature="(updates, model, history)")
    params = [p for p in model.parameters() if p.requires_grad]
    opt = OPTIMIZERS[optimizer](params, lr=lr)
    hist = History()
    model.train()
    # [train-loop] (chapter 10 shows the lines between these markers)
    for step in range(steps):
        loss = loss_fn(model, *batches(step))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        hist.loss.append(float(loss.detach()))
        hist.grad_norm.append(global_grad_norm(params))  # before clipping
        if stop_on_nan and not (math.isfinite(hist.loss[-1]) and math.isfinite(hist.grad_norm[-1])):
            break
        if clip_norm is not None:
            torch.nn.utils.clip_grad_norm_(params, clip_norm)
        if clip_value is not None:
            torch.nn.utils.clip_grad_value_(params, clip_value)
        opt.step()
        if after_step is not None:
            after_step(step + 1, model, hist)
            model.train()
    # [/train-loop]
    return hist


def last_step_mse(model, x, y):
    """Mean squared error of the read-out at the last step: model(x)[0][:, -1] (B, 1) vs y (B, 1)."""
    return nn.functional.mse_loss(model(x)[0][:, -1], y)


@torch.no_grad()
def draw_continuation(model, x, n, temperature, rng):
    """Read the prime ``x`` (1, T) of token ids, then draw ``n`` ids one at a time, each by
    ``reference.sample_next`` from the last step's logits and fed back with the carried
    state. ``model`` maps (ids, state) to (logits (1, T, V), state), as SequenceModel's
    language models do; it runs in eval mode, its mode restored after. ``n``: a positive int;
    ``temperature``: >= 0 (0 is argmax); ``rng``: a numpy Generator or an int seed (one
    generator for all n draws).
    Returns the list of the n drawn ids (the prime excluded)."""
    n = v.positive_int("n", n)
    temperature = v.real("temperature", temperature, low=0.0)
    rng = v.generator("rng", rng)
    was_training = model.training
    model.eval()
    logits, state = model(x)
    out = []
    for _ in range(n):
        out.append(sample_next(logits[0, -1].double().cpu().numpy(), temperature, rng))
        logits, state = model(torch.tensor([[out[-1]]], device=x.device), state)
    model.train(was_training)
    return out


@torch.no_grad()
def carried_state_scores(model, ids, batch_size, seq_len, score):
    """Score a held-out token stream chunk by chunk, read as stateful truncated BPTT reads it.

    ``ids`` (L,), of any integer dtype, is cut by ``reference.tbptt_batches`` into
    ``batch_size`` streams and K chunks of ``seq_len`` steps; the model reads chunk after chunk
    from zero state with the state carried over (as in training), in eval mode, its mode
    restored after. ``model`` maps (ids (B, S), state) to (logits (B, S, V), state), as
    SequenceModel's language models do. ``score(logits (B, S, V), y (B, S))``, with y the next
    ids as an int64 tensor on the model's device, gives a chunk's score (e.g. its summed or
    mean loss).
    Returns (scores, count): the list of the K chunks' scores in order, and the number
    K * batch_size * seq_len of tokens scored.
    """
    B = v.positive_int("batch_size", batch_size)
    S = v.positive_int("seq_len", seq_len)
    v.chunkable("ids", v.token_ids("ids", ids, min_len=2), B, S)
    v.function("score", score, signature="(logits, y) -> float")
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    xs, ys = (torch.as_tensor(a[..., 0], device=device)  # (K, B, S) each
              for a in tbptt_batches(ids.astype(np.int64, copy=False), B, S))
    state, scores = None, []
    for x, y in zip(xs, ys):
        logits, state = model(x, state)
        scores.append(score(logits, y))
    model.train(was_training)
    return scores, int(ys.numel())
