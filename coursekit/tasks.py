"""Synthetic sequence tasks used by the book's experiments and the exercises' experiments.

Every generator takes a numpy Generator so that a figure in the book is the same on every
build. Arrays are float64 and batch first unless stated.
"""
from __future__ import annotations

import numpy as np

from ._args import positive_int, real


def toy_timeseries(n_steps, rng, t_end=5.0):
    """The course's toy series: two sinusoids with a random phase and a little uniform noise.

    y(t) = 0.5 sin(2 pi (t + m)) + cos(1.5 pi (t + m / 4)) + u, with t on a grid of
    n_steps + 1 points over [0, t_end], m ~ U(0, 10) drawn once per series and noise
    u ~ U(-0.1, 0.1) drawn for every point. The first sinusoid's period is 1, i.e.
    n_steps / t_end steps: a larger t_end packs more periods into the same number of steps.
    Returns (xs (n_steps,), y_next float): the series and the value that follows it.
    """
    n_steps = positive_int("n_steps", n_steps)
    t_end = real("t_end", t_end, low=0.0, strict_low=True)
    m = rng.uniform(0, 10)
    t = np.linspace(0, t_end, n_steps + 1)
    ys = 0.5 * np.sin(2 * np.pi * (t + m)) + np.cos(1.5 * np.pi * (t + m / 4)) + rng.uniform(-0.1, 0.1, t.shape)
    return ys[:-1], float(ys[-1])


def toy_timeseries_batch(batch_size, n_steps, rng):
    """A batch of toy series for many-to-one regression.

    Returns (x (B, n_steps, 1), y (B, 1)): predict the next value from the whole series.
    """
    batch_size = positive_int("batch_size", batch_size)
    pairs = [toy_timeseries(n_steps, rng) for _ in range(batch_size)]
    x = np.stack([p[0] for p in pairs])[:, :, None]
    y = np.array([[p[1]] for p in pairs])
    return x, y


def adding_problem(batch_size, T, rng):
    """The adding problem (Hochreiter & Schmidhuber 1997): sum the two marked numbers.

    Each input step is (value, marker): values ~ U(0, 1); exactly two markers are 1, one in
    the first half and one in the second half, so the answer depends on inputs up to T steps
    before the end. A model that ignores the input scores MSE ~ 0.167 by always answering 1.
    Returns (x (B, T, 2), y (B, 1)).
    """
    B = positive_int("batch_size", batch_size)
    T = positive_int("T", T)
    if T < 2:
        raise ValueError(f"T: expected at least 2 steps, got {T}")
    values = rng.uniform(0, 1, size=(B, T))
    first = rng.integers(0, T // 2, size=B)
    second = rng.integers(T // 2, T, size=B)
    markers = np.zeros((B, T))
    markers[np.arange(B), first] = 1.0
    markers[np.arange(B), second] = 1.0
    x = np.stack([values, markers], axis=2)
    y = (values * markers).sum(axis=1, keepdims=True)
    return x, y


def copy_task(batch_size, n_symbols, n_copy, delay, rng):
    """The copy task: remember a short sequence of symbols across a long blank delay.

    Input: n_copy random symbols in [1, n_symbols], then delay - 1 blanks (0), a delimiter
    (n_symbols + 1), and n_copy more blanks during which the model must output the symbols;
    the target is blank (0) everywhere except those last n_copy steps. A memoryless baseline that predicts the
    blank at every step and a uniform guess on the copy steps has cross-entropy
    n_copy log(n_symbols) / T per step.
    Returns (x (B, T) int64, y (B, T) int64) with T = 2 n_copy + delay; vocabulary size n_symbols + 2.
    """
    B = positive_int("batch_size", batch_size)
    S = positive_int("n_symbols", n_symbols)
    C = positive_int("n_copy", n_copy)
    delay = positive_int("delay", delay)
    T = 2 * C + delay
    symbols = rng.integers(1, S + 1, size=(B, C))
    x = np.zeros((B, T), dtype=np.int64)
    y = np.zeros((B, T), dtype=np.int64)
    x[:, :C] = symbols
    x[:, C + delay - 1] = S + 1
    y[:, -C:] = symbols
    return x, y
