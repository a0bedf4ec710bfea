"""Experiments on long-range memory (chapter 8) and on regularizing recurrent state (chapter 11).

Chapter 8 trains four small models on the adding problem at several sequence lengths under one
shared budget: ``make_adding_model`` builds them, ``train_adding`` trains one, ``run_jobs``
spreads independent runs over worker processes, ``input_grad_norms`` measures how much
gradient reaches each input step, ``marked_value_sensitivity`` how strongly a trained model
responds to each marked value, and ``StepLSTM`` runs any LSTM step function (for example the
reader's own ``LSTMCellFunction``) in place of ``nn.LSTM``.

Chapter 11 runs a GRU cell step by step so that a dropout mask can be put on the state it carries
(``gru_states_with_state_dropout``, ``StateDropoutGRU``), measures how much of the first input a linear read-out can
still recover (``linear_recoverability``), and compares the statistics of a vanilla RNN's
pre-activations with and without layer normalization (``rnn_preactivation_stats``).

Everything is seeded and batch first; tensors are float32 on the device the caller chooses.
"""
from __future__ import annotations

import concurrent.futures as cf
import multiprocessing as mp
import time

import numpy as np
import torch
from torch import nn

from .seqmodels import SequenceModel, fit, init_recurrent_
from .tasks import adding_problem

#: The four models of chapter 8: name -> (cell, recurrent initialization scheme).
MODELS = {
    "rnn": ("rnn", "default"),
    "rnn-orth": ("rnn", "orthogonal"),
    "lstm": ("lstm", "default"),
    "gru": ("gru", "default"),
}


# ----------------------------------------------------------------------------- chapter 8
def make_adding_model(name, hidden_size, seed=0, forget_bias=None):
    """A SequenceModel for the adding problem (input size 2, output size 1).

    - name: a key of MODELS ("rnn", "rnn-orth", "lstm", "gru")
    - hidden_size: H
    - seed: seeds torch's default initialization and the orthogonal matrices
    - forget_bias: for "lstm" only, when given, the forget-gate part of both biases is set so
      that their sum equals it (PyTorch splits the bias into b_ih + b_hh)
    Returns the model (on the CPU; move it with ``.to(device)``).
    """
    if name not in MODELS:
        raise ValueError(f"name: expected one of {sorted(MODELS)}, got {name!r}")
    cell, scheme = MODELS[name]
    torch.manual_seed(seed)
    model = SequenceModel(cell, 2, hidden_size, 1)
    init_recurrent_(model.rnn, scheme, seed=seed)
    if forget_bias is not None:
        if cell != "lstm":
            raise ValueError(f"forget_bias: only an LSTM has a forget gate, got name={name!r}")
        H = hidden_size
        with torch.no_grad():  # gate order i, f, g, o
            model.rnn.bias_ih_l0[H:2 * H].fill_(forget_bias / 2)
            model.rnn.bias_hh_l0[H:2 * H].fill_(forget_bias / 2)
    return model


def adding_tensors(batch_size, T, rng, device="cpu"):
    """adding_problem as float32 tensors: x (B, T, 2), y (B, 1) on ``device``."""
    x, y = adding_problem(batch_size, T, rng)
    return (torch.as_tensor(x, dtype=torch.float32, device=device),
            torch.as_tensor(y, dtype=torch.float32, device=device))


def last_step_mse(model, x, y):
    """Mean squared error of the read-out at the last step: model(x)[0][:, -1] (B, 1) vs y (B, 1)."""
    return nn.functional.mse_loss(model(x)[0][:, -1], y)


def input_grad_norms(model, x):
    """How much gradient each input step receives from the last output.

    x (B, T, D) -> array (T,): for every step t, the root mean square over the batch of
    ||d yhat_b[T] / d x_b[t]|| (the norm over the D input features), where yhat_b[T] is the
    model's last-step output for sequence b (output size 1).
    Runs in the dtype of the model and x (use float64 to resolve values below 1e-38).
    """
    x = x.detach().clone().requires_grad_(True)
    model.zero_grad(set_to_none=True)
    model(x)[0][:, -1].sum().backward()
    g = x.grad.detach()
    model.zero_grad(set_to_none=True)
    return g.pow(2).sum(dim=2).mean(dim=0).sqrt().cpu().numpy()


def marked_value_sensitivity(model, x):
    """d yhat[T] / d (marked value) for the two marked values of adding-problem inputs.

    x (B, T, 2) adding-problem inputs (value, marker) -> array (B, 2): column 0 is the
    derivative of the last-step output with respect to the value at the first marker,
    column 1 at the second marker. A model that has solved the task has both close to 1
    (the target is their sum); a model that ignores a value has 0 there.
    """
    x = x.detach().clone().requires_grad_(True)
    model.zero_grad(set_to_none=True)
    model(x)[0][:, -1].sum().backward()
    g = x.grad.detach()[:, :, 0]
    model.zero_grad(set_to_none=True)
    marks = x.detach()[:, :, 1] > 0.5
    if not bool((marks.sum(dim=1) == 2).all()):
        raise ValueError("x: expected exactly two markers (x[..., 1] == 1) in every sequence")
    pos = torch.nonzero(marks)[:, 1].reshape(-1, 2)  # (B, 2) marker positions, in order
    return torch.gather(g, 1, pos).cpu().numpy()


def train_adding(name, T, hidden_size=32, batch_size=64, steps=1000, lr=1e-2, clip_norm=1.0,
                 seed=0, test_size=1000, forget_bias=None, device="cpu", threads=1):
    """Train one model of MODELS on the adding problem of length T with Adam.

    Every run of the same (T, seed) sees the same training batches and the same test set, so
    models are compared on identical data at an identical number of updates.
    Returns a dict: name, T, loss (list of ``steps`` training MSEs, before each update),
    grad_norm (list, before clipping), test_mse (float, on ``test_size`` fresh sequences after
    training), test_baseline (the MSE of the constant answer 1 on the same test sequences),
    seconds (CPU seconds this process spent), state (the trained model's state_dict,
    on the CPU: load it into ``make_adding_model(name, hidden_size)``).
    """
    if threads:
        torch.set_num_threads(threads)
    t0 = time.process_time()
    model = make_adding_model(name, hidden_size, seed=seed, forget_bias=forget_bias).to(device)
    train_rng = np.random.default_rng([seed, T, 1])
    batches = lambda step: adding_tensors(batch_size, T, train_rng, device)  # noqa: E731
    hist = fit(model, batches, last_step_mse, steps, lr=lr, clip_norm=clip_norm)
    model.eval()
    with torch.no_grad():
        x, y = adding_tensors(test_size, T, np.random.default_rng([seed, T, 2]), device)
        test_mse = float(last_step_mse(model, x, y))
        test_baseline = float(((y - 1.0) ** 2).mean())
    return {"name": name, "T": T, "loss": hist.loss, "grad_norm": hist.grad_norm,
            "test_mse": test_mse, "test_baseline": test_baseline, "seconds": time.process_time() - t0,
            "state": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}}


def _call(job):
    fn, kwargs = job
    return fn(**kwargs)


def run_jobs(fn, jobs, workers=2):
    """Run fn(**kwargs) for every kwargs dict in ``jobs``; returns the results in job order.

    With workers > 1 the jobs run in that many fresh ("spawn") processes, each single-threaded
    when fn accepts ``threads`` (train_adding does); fn must be importable (a module function).
    With workers == 1 they run here, one after the other.
    """
    jobs = list(jobs)
    if workers <= 1:
        return [fn(**kw) for kw in jobs]
    ctx = mp.get_context("spawn")
    with cf.ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
        return list(pool.map(_call, [(fn, kw) for kw in jobs]))


def smooth(values, window=50):
    """Trailing moving average: out[i] is the mean of values[max(0, i - window + 1) : i + 1]."""
    v = np.asarray(values, dtype=float)
    c = np.cumsum(np.insert(v, 0, 0.0))
    idx = np.arange(1, len(v) + 1)
    lo = np.maximum(0, idx - window)
    return (c[idx] - c[lo]) / (idx - lo)


class StepLSTM(nn.Module):
    """An LSTM run one step at a time through a step function, with a linear read-out.

    Plug your own LSTM step into chapter 8's experiment: ``step_fn(x (N, D), h (N, H),
    c (N, H), Wx (D, 4H), Wh (H, 4H), b (4H,)) -> (h_next, c_next)``, gates in the order
    i, f, g, o (e.g. ``LSTMCellFunction.apply``). Parameters: Wx (D, 4H), Wh (H, 4H), b (4H,)
    and ``head`` (nn.Linear(H, O)).
    forward(x (N, T, D)) -> (y (N, T, O), (h_T, c_T)), like SequenceModel, so ``fit`` and
    ``last_step_mse`` work unchanged.
    """

    def __init__(self, input_size, hidden_size, output_size, step_fn):
        super().__init__()
        H = hidden_size
        self.step_fn = step_fn
        self.Wx = nn.Parameter(torch.zeros(input_size, 4 * H))
        self.Wh = nn.Parameter(torch.zeros(H, 4 * H))
        self.b = nn.Parameter(torch.zeros(4 * H))
        self.head = nn.Linear(H, output_size)

    @classmethod
    def from_sequence_model(cls, model, step_fn):
        """A StepLSTM with the weights of a one-layer LSTM SequenceModel (nn.LSTM's layout)."""
        lstm = model.rnn
        new = cls(lstm.input_size, lstm.hidden_size, model.head.out_features, step_fn)
        with torch.no_grad():
            new.Wx.copy_(lstm.weight_ih_l0.T)
            new.Wh.copy_(lstm.weight_hh_l0.T)
            new.b.copy_(lstm.bias_ih_l0 + lstm.bias_hh_l0)
            new.head.load_state_dict(model.head.state_dict())
        return new.to(lstm.weight_ih_l0.device)

    def forward(self, x, state=None):
        N, T, _ = x.shape
        H = self.Wh.shape[0]
        if state is None:
            h = x.new_zeros(N, H)
            c = x.new_zeros(N, H)
        else:
            h, c = state
        hs = []
        for t in range(T):
            h, c = self.step_fn(x[:, t], h, c, self.Wx, self.Wh, self.b)
            hs.append(h)
        return self.head(torch.stack(hs, dim=1)), (h, c)


# ----------------------------------------------------------------------------- chapter 11
def remember_first_tensors(batch_size, T, rng, device="cpu"):
    """A memory task: report at step T the value seen at step 1.

    Each input step is (value, marker): values ~ U(-1, 1), the marker is 1 at the first step
    and 0 elsewhere. Returns x (B, T, 2), y (B, 1) = x[:, 0, :1], float32 on ``device``.
    """
    values = rng.uniform(-1, 1, size=(batch_size, T))
    markers = np.zeros((batch_size, T))
    markers[:, 0] = 1.0
    x = np.stack([values, markers], axis=2)
    return (torch.as_tensor(x, dtype=torch.float32, device=device),
            torch.as_tensor(values[:, :1], dtype=torch.float32, device=device))


def gru_cell_from_layer(layer):
    """An nn.GRUCell holding the weights of a one-layer nn.GRU (same r, z, n layout)."""
    cell = nn.GRUCell(layer.input_size, layer.hidden_size).to(layer.weight_hh_l0.device)
    with torch.no_grad():
        cell.weight_ih.copy_(layer.weight_ih_l0)
        cell.weight_hh.copy_(layer.weight_hh_l0)
        cell.bias_ih.copy_(layer.bias_ih_l0)
        cell.bias_hh.copy_(layer.bias_hh_l0)
    return cell


def gru_states_with_state_dropout(cell, x, p, mode, seed=0):
    """Run a GRUCell over x with dropout on the hidden state it carries from step to step.

    - cell: nn.GRUCell with hidden size H
    - x: (N, T, D) tensor
    - p: drop probability; kept units are scaled by 1 / (1 - p) (inverted dropout)
    - mode: "none" (no mask), "per_step" (a fresh mask m_t at every step, the naive way) or
      "fixed" (one mask per sequence, reused at every step: variational dropout)
    - seed: an int, or a torch.Generator (on the CPU) that draws the masks
    The state passed to step t + 1 is m_t * h_t / (1 - p), where h_t = cell(x_t, previous state).
    Returns h (N, T, H): the masked states, i.e. what the next step and a read-out see.
    Differentiable with respect to the cell's parameters and x.
    """
    if mode not in ("none", "per_step", "fixed"):
        raise ValueError(f"mode: expected 'none', 'per_step' or 'fixed', got {mode!r}")
    if not 0.0 <= p < 1.0:
        raise ValueError(f"p: expected 0 <= p < 1, got {p!r}")
    N, T, _ = x.shape
    H = cell.hidden_size
    gen = seed if isinstance(seed, torch.Generator) else torch.Generator().manual_seed(seed)

    def draw():
        m = (torch.rand(N, H, generator=gen) >= p).to(x.dtype) / (1.0 - p)
        return m.to(x.device)

    fixed = draw() if mode == "fixed" else None
    h = torch.zeros(N, H, dtype=x.dtype, device=x.device)
    out = []
    for t in range(T):
        h = cell(x[:, t], h)
        if mode == "per_step":
            h = h * draw()
        elif mode == "fixed":
            h = h * fixed
        out.append(h)
    return torch.stack(out, dim=1)


class StateDropoutGRU(nn.Module):
    """A GRU with dropout on its carried state in training mode, and a linear read-out.

    GRUCell(input_size, hidden_size) run by ``gru_states_with_state_dropout`` with
    (p, mode) while ``self.training``, and without any mask in eval mode.
    ``update_bias`` (float or None) sets the z-gate part of both biases so that their sum
    equals it: a positive value makes the fresh cell keep its state (PyTorch's z is the kept
    fraction). The masks come from a torch.Generator seeded with ``seed``.
    forward(x (N, T, D)) -> (y (N, T, O), h_T (N, H)), like SequenceModel.
    """

    def __init__(self, input_size, hidden_size, output_size, p=0.0, mode="none",
                 update_bias=None, seed=0):
        super().__init__()
        torch.manual_seed(seed)
        self.cell = nn.GRUCell(input_size, hidden_size)
        self.head = nn.Linear(hidden_size, output_size)
        self.p, self.mode = p, mode
        self.gen = torch.Generator().manual_seed(seed)
        if update_bias is not None:
            H = hidden_size
            with torch.no_grad():  # gate order r, z, n
                self.cell.bias_ih[H:2 * H].fill_(update_bias / 2)
                self.cell.bias_hh[H:2 * H].fill_(update_bias / 2)

    def forward(self, x, state=None):
        mode = self.mode if self.training else "none"
        h = gru_states_with_state_dropout(self.cell, x, self.p, mode, seed=self.gen)
        return self.head(h), h[:, -1]


def linear_recoverability(h, target, n_fit, ridge=1e-3):
    """How much of ``target`` a linear read-out of ``h`` recovers: held-out R^2 per step.

    - h: (N, T, H) array or tensor of states; target: (N,) values
    - n_fit: the first n_fit sequences fit a ridge regression (with intercept) from h_t to the
      target, separately for every t; the other N - n_fit sequences score it
    Returns an array (T,) of R^2 = 1 - MSE / Var(target) on the held-out sequences (1: the
    target is fully recoverable, 0: no better than predicting its mean; can be slightly < 0).
    """
    h = h.detach().cpu().numpy() if isinstance(h, torch.Tensor) else np.asarray(h)
    y = np.asarray(target, dtype=float).reshape(-1)
    N, T, H = h.shape
    if not 0 < n_fit < N:
        raise ValueError(f"n_fit: expected 0 < n_fit < N = {N}, got {n_fit!r}")
    y_fit, y_test = y[:n_fit], y[n_fit:]
    r2 = np.empty(T)
    for t in range(T):
        A = np.concatenate([h[:, t].astype(float), np.ones((N, 1))], axis=1)
        A_fit = A[:n_fit]
        w = np.linalg.solve(A_fit.T @ A_fit + ridge * np.eye(H + 1), A_fit.T @ y_fit)
        r2[t] = 1.0 - np.mean((A[n_fit:] @ w - y_test) ** 2) / np.var(y_test)
    return r2


def rnn_preactivation_stats(T, hidden_size, gain, layer_norm, activation="tanh", batch_size=256,
                            seed=0):
    """Statistics of an untrained RNN's pre-activations over time, with or without layer norm.

    h_t = phi(a_t) with a_t = W_hh h_{t-1} + W_xh x_t, or, with layer_norm, h_t = phi(LN(a_t))
    where LN subtracts each example's mean over the H units and divides by their standard
    deviation (gain 1, bias 0, as LayerNorm is initialized). phi is tanh or ReLU;
    W_hh ~ N(0, gain^2 / H), W_xh ~ N(0, 1), x_t ~ N(0, 1) scalar, h_0 = 0.
    Returns a dict of arrays (T,): "std" (the standard deviation over the H units of what
    enters phi, averaged over the batch) and "saturated" (the fraction of units with
    |h_t| > 0.99: tanh's flat region; for ReLU the fraction of units above 0.99).
    """
    if activation not in ("tanh", "relu"):
        raise ValueError(f"activation: expected 'tanh' or 'relu', got {activation!r}")
    phi = torch.tanh if activation == "tanh" else torch.relu
    g = torch.Generator().manual_seed(seed)
    H = hidden_size
    W_hh = torch.randn(H, H, generator=g, dtype=torch.float64) * gain / np.sqrt(H)
    W_xh = torch.randn(1, H, generator=g, dtype=torch.float64)
    x = torch.randn(batch_size, T, 1, generator=g, dtype=torch.float64)
    h = torch.zeros(batch_size, H, dtype=torch.float64)
    std, sat = np.empty(T), np.empty(T)
    for t in range(T):
        a = h @ W_hh.T + x[:, t] @ W_xh
        if layer_norm:
            a = nn.functional.layer_norm(a, (H,))
        h = phi(a)
        std[t] = float(a.std(dim=1).mean())
        sat[t] = float((h.abs() > 0.99).double().mean())
    return {"std": std, "saturated": sat}
