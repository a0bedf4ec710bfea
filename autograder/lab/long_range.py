"""Experiments of chapter 8 (long-range memory): four models on the adding problem.

Chapter 8 trains four small models on the adding problem at several sequence lengths under one
shared budget: ``make_adding_model`` builds them, ``train_adding`` trains one, ``run_jobs``
spreads independent runs over worker processes, ``input_grad_norms`` measures how much
gradient reaches each input step, ``marked_value_sensitivity`` how strongly a trained model
responds to each marked value, and ``StepLSTM`` runs any LSTM step function (for example the
reader's own ``LSTMCellFunction``) in place of ``nn.LSTM``.

Everything is seeded and batch first; tensors are float32 on the device the caller chooses.
"""
from __future__ import annotations

import concurrent.futures as cf
import multiprocessing as mp
import time

import numpy as np
import torch
from torch import nn

from ..reference import _validate as v
from .data import adding_tensors
from .models import SequenceModel, fit, init_recurrent_, last_step_mse

#: The four models of chapter 8: name -> (cell, recurrent initialization scheme).
MODELS = {
    "rnn": ("rnn", "default"),
    "rnn-orth": ("rnn", "orthogonal"),
    "lstm": ("lstm", "default"),
    "gru": ("gru", "default"),
}


def make_adding_model(name, hidden_size, seed=0, forget_bias=None):
    """A SequenceModel for the adding problem (input size 2, output size 1).

    - name: a key of MODELS ("rnn", "rnn-orth", "lstm", "gru")
    - hidden_size: H
    - seed: seeds torch's default initialization and the orthogonal matrices
    - forget_bias: for "lstm" only, when given, the forget-gate part of both biases is set so
      that their sum equals it (PyTorch splits the bias into b_ih + b_hh)
    Returns the model (on the CPU; move it with ``.to(device)``).
    """
    v.one_of("name", name, sorted(MODELS))
    cell, scheme = MODELS[name]
    torch.manual_seed(v.integer("seed", seed, low=0))  # init_recurrent_ seeds numpy with it too
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
    seed = v.integer("seed", seed, low=0)  # numpy's seed lists below take no negative entry
    T = v.positive_int("T", T)
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
        self.step_fn = v.function("step_fn", step_fn, signature="(x, h, c, Wx, Wh, b) -> (h_next, c_next)")
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
