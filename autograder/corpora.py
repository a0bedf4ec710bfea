"""Text corpora and evaluation sets: the texts live in coursekit, the test sets in gensim's wheel.

The word-similarity and analogy sets are read from the ``gensim`` wheel's test data (LGPL-2.1
code; the files are the published evaluation sets), so nothing downloads. The texts
(Shakespeare, the Korean constitution) and the tokenizer are re-exported from
``coursekit.corpora``, which students receive with the exercises.
"""
from __future__ import annotations

from importlib import resources

from coursekit.corpora import (build_vocab, korean_constitution_text, markdown_play_to_text,
                               shakespeare_plays, shakespeare_text, tokenize_words)

__all__ = ["build_vocab", "korean_constitution_text", "markdown_play_to_text", "shakespeare_plays",
           "shakespeare_text", "tokenize_words", "wordsim353", "simlex999", "analogy_questions"]


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
