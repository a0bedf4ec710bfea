"""The data of the book's experiments that students do not receive: evaluation sets and task batches.

- Word-vector evaluation sets (chapter 9), read from the ``gensim`` wheel's test data (LGPL-2.1
  code; the files are the published evaluation sets), so nothing downloads.
- Synthetic tasks as the experiments consume them: the adding problem as float32 tensors
  (chapters 8 and 11), remember-the-first-value (chapter 11) and delayed recall (chapter 5).

The texts (Shakespeare, the Korean constitution), the tokenizer and the NumPy tasks are in
``coursekit.corpora`` and ``coursekit.tasks``, which students receive with the exercises;
chapters import them from there.
"""
from __future__ import annotations

from importlib import resources

import numpy as np
import torch

from coursekit.tasks import adding_problem

from ..reference import _validate as v


def _gensim_test_file(name):
    return resources.files("gensim") / "test" / "test_data" / name


def _scored_pairs(name):
    rows = []
    for line in _gensim_test_file(name).read_text(encoding="utf-8").splitlines():
        if line.startswith("#") or not line.strip():
            continue
        a, b, score = line.split("\t")[:3]
        rows.append((a.lower(), b.lower(), float(score)))
    return rows


def wordsim353():
    """WordSim-353 (Finkelstein et al. 2002): list of (word1, word2, human score 0-10)."""
    return _scored_pairs("wordsim353.tsv")


def simlex999():
    """SimLex-999 (Hill et al. 2015): list of (word1, word2, similarity score 0-10)."""
    return _scored_pairs("simlex999.txt")


def analogy_questions():
    """Google analogy set (Mikolov et al. 2013): dict section -> list of (a, b, c, d), lower case."""
    sections, current = {}, None
    for line in _gensim_test_file("questions-words.txt").read_text(encoding="utf-8").splitlines():
        if line.startswith(":"):
            current = line[1:].strip()
            sections[current] = []
        elif line.strip():
            sections[current].append(tuple(line.lower().split()))
    return sections


# ----------------------------------------------------------------------------- tasks
def adding_tensors(batch_size, T, rng, device="cpu"):
    """adding_problem as float32 tensors: x (B, T, 2), y (B, 1) on ``device``.

    rng: a numpy Generator (consumed, so successive calls draw new batches) or an int seed.
    """
    x, y = adding_problem(batch_size, T, v.generator("rng", rng))
    return (torch.as_tensor(x, dtype=torch.float32, device=device),
            torch.as_tensor(y, dtype=torch.float32, device=device))


def remember_first_tensors(batch_size, T, rng, device="cpu"):
    """A memory task: report at step T the value seen at step 1.

    Each input step is (value, marker): values ~ U(-1, 1), the marker is 1 at the first step
    and 0 elsewhere; rng is a numpy Generator or an int seed.
    Returns x (B, T, 2), y (B, 1) = x[:, 0, :1], float32 on ``device``.
    """
    batch_size = v.positive_int("batch_size", batch_size)
    T = v.positive_int("T", T)
    values = v.generator("rng", rng).uniform(-1, 1, size=(batch_size, T))
    markers = np.zeros((batch_size, T))
    markers[:, 0] = 1.0
    x = np.stack([values, markers], axis=2)
    return (torch.as_tensor(x, dtype=torch.float32, device=device),
            torch.as_tensor(values[:, :1], dtype=torch.float32, device=device))


def delayed_recall(batch_size, length, lag, rng):
    """Random +-1 streams whose target at step t is the input at step t - lag.

    Inputs:
    - batch_size: number of independent streams B
    - length: number of steps T of each stream
    - lag: the delay L >= 1 (the length of the task's only dependency)
    - rng: a numpy Generator or an int seed
    Returns (x (B, T, 1), y (B, T, 1), mask (B, T)), float64 / float64 / bool: y[:, t] = x[:, t - lag]
    where mask[:, t] is True (t >= lag); the first ``lag`` targets have no input to recall, are 0
    and masked out. Predicting 0 everywhere scores a mean squared error of exactly 1.
    """
    B = v.positive_int("batch_size", batch_size)
    T = v.positive_int("length", length)
    L = v.positive_int("lag", lag)
    rng = v.generator("rng", rng)
    x = rng.choice(np.array([-1.0, 1.0]), size=(B, T, 1))
    y = np.zeros_like(x)
    y[:, L:] = x[:, :-L] if L < T else y[:, L:]
    mask = np.zeros((B, T), dtype=bool)
    mask[:, L:] = True
    return x, y, mask
