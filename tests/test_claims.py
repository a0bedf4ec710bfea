"""The book says only what its runs show: every sentence about a result of a run is marked in
the chapter's source, and backed by a hidden cell that asserts it, so a change that makes the
claim false fails the strict build, naming the claim.

The convention: the prose carries ``<!-- claim: ID -->`` before the sentence or paragraph; a
code cell tagged ``remove-cell`` starts with ``# claim: ID`` and asserts what the prose says,
each assertion message starting with ``claim ID:``. This test checks that markers and cells
pair up one to one, and prints the count per chapter.
"""
import re
from pathlib import Path

import pytest

BOOK = Path(__file__).resolve().parents[1] / "book"
CHAPTERS = sorted(BOOK.glob("[0-9][0-9]_*.md"))
PROSE = re.compile(r"<!--\s*claim:\s*([\w-]+)\s*-->")
# the claims asserted so far: raise it with each claim added; it never falls
FLOOR = 108  # may only rise
CELL = re.compile(r"```\{code-cell\}[^\n]*\n((?:(?!```).*\n)*?)```", re.M)


def claims(path):
    """(ids marked in the prose, {id: cell source} of the claim cells) of one chapter."""
    text = path.read_text(encoding="utf-8")
    cells = {}
    for m in CELL.finditer(text):
        body = m.group(1)
        first = re.search(r"^# claim:\s*([\w-]+)", body, re.M)
        if first:
            cells[first.group(1)] = body
    return PROSE.findall(text), cells


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_every_marked_claim_is_asserted_in_a_hidden_cell(path):
    marked, cells = claims(path)
    assert len(marked) == len(set(marked)), f"a claim id is marked twice in {path.name}"
    assert set(marked) == set(cells), (f"{path.name}: prose markers without a cell "
                                       f"{set(marked) - set(cells)}, cells without a marker "
                                       f"{set(cells) - set(marked)}")
    for cid, body in cells.items():
        assert ":tags: [remove-cell]" in body or "tags: [remove-cell]" in body, cid
        asserts = re.findall(r"^\s*assert\b", body, re.M)
        assert asserts, f"claim {cid} asserts nothing"
        assert body.count(f'"claim {cid}:') >= len(asserts), \
            f"claim {cid}: every assertion's message must start with 'claim {cid}:'"


def test_the_count_of_asserted_claims_per_chapter(capsys):
    counts = {p.stem: len(claims(p)[1]) for p in CHAPTERS}
    with capsys.disabled():
        print("\nasserted claims per chapter:", counts)
    assert sum(counts.values()) >= FLOOR
