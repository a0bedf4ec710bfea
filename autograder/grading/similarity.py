"""Which submissions share their code: every pair of students, and each student against the
solutions, compared on the graded functions only.

The solutions of an open course are public, so copying (from a classmate or from the
solutions) is the integrity risk that remains. The comparison is copydetect's (MOSS-style
winnowing over Pygments tokens): names are replaced by their token kind before k-grams are
fingerprinted, so renaming identifiers does not hide a copy, and a fingerprint matches
wherever it is, so reordering functions or statements does not either. What the released
notebook already holds (signatures, docstrings, the ``raise NotImplementedError()`` stubs)
is boilerplate and never counts.

The report is our own page (the student's code escaped, the matching parts highlighted, no
script and nothing fetched), so opening it runs nothing a student wrote.
"""
from __future__ import annotations

import html
import io
from dataclasses import dataclass
from itertools import combinations

from coursekit.notebook import nbgrader_meta

from . import notebooks, submissions
from .outcomes import UsageError

SOLUTION = "(the solutions)"
K = 25  # tokens per fingerprinted k-gram: copydetect's default
WINDOW = 1  # winnowing window: every k-gram is a fingerprint (small files, exact overlap)


@dataclass
class Pair:
    """Two submissions and how much of each one's code is found in the other (0 to 1);
    ``a_html`` and ``b_html`` are their code, escaped, the shared parts highlighted."""
    a: str
    b: str
    a_share: float
    b_share: float
    a_html: str
    b_html: str

    @property
    def share(self):
        return max(self.a_share, self.b_share)


def answer_ids(source):
    """The grade_ids of the graded functions' answer cells (solution, not graded, code, with
    a test cell ``test_<grade_id>``) in notebook order; every answer cell when no test cell
    is named that way (an assignment of the instructor's own)."""
    answers = [nbgrader_meta(c)["grade_id"] for c in source.cells
               if c.cell_type == "code" and nbgrader_meta(c).get("solution")
               and not nbgrader_meta(c).get("grade")]
    tests = {gid for gid, _ in notebooks.test_cells(source)}
    graded = [gid for gid in answers if f"test_{gid}" in tests]
    return graded or answers


def answers(nb, ids, solution=False):
    """The code of the answer cells ``ids`` of ``nb`` (found by grade_id), one after another;
    a cell the notebook lacks is empty."""
    cells = notebooks.cells_by_id(nb)
    parts = []
    for gid in ids:
        cell = cells.get(gid)
        if cell is None:
            code = ""
        elif solution:
            code = notebooks.solution_code(cell)
        else:  # a submission as read_submission reads it: its lines may still be a list
            code = "".join(map(str, cell.source)) if isinstance(cell.source, list) else str(cell.source)
        parts.append(f"# {gid}\n{code}\n")
    return "\n".join(parts)


def _fingerprint(name, code, boilerplate=()):
    from copydetect import CodeFingerprint

    return CodeFingerprint(f"{name}.py", K, WINDOW, boilerplate=list(boilerplate),
                           fp=io.StringIO(code))


def compare(codes, boilerplate=""):
    """Every pair of ``codes`` (name -> Python source) compared; a list of Pair, most
    similar first. ``boilerplate``: code whose fingerprints never count (the release)."""
    from copydetect import compare_files
    from copydetect.utils import highlight_overlap

    common = _fingerprint("boilerplate", boilerplate).hashes if boilerplate.strip() else ()
    prints = {name: _fingerprint(name, code, common) for name, code in codes.items()}
    pairs = []
    for a, b in combinations(sorted(prints), 2):
        fa, fb = prints[a], prints[b]
        if not fa.hashes or not fb.hashes:  # nothing of its own to compare
            pairs.append(Pair(a, b, 0.0, 0.0, html.escape(fa.raw_code), html.escape(fb.raw_code)))
            continue
        _, (sa, sb), (slices_a, slices_b) = compare_files(fa, fb)
        ha = highlight_overlap(fa.raw_code, slices_a, "<mark>", "</mark>", escape_html=True)[0] \
            if slices_a.shape[-1] else html.escape(fa.raw_code)
        hb = highlight_overlap(fb.raw_code, slices_b, "<mark>", "</mark>", escape_html=True)[0] \
            if slices_b.shape[-1] else html.escape(fb.raw_code)
        pairs.append(Pair(a, b, float(sa), float(sb), ha, hb))
    return sorted(pairs, key=lambda p: (-p.share, p.a, p.b))


STYLE = """body{font-family:system-ui,sans-serif;max-width:80rem;margin:2rem auto;padding:0 1rem}
table{border-collapse:collapse}td,th{border-bottom:1px solid #ddd;padding:.3rem .6rem;text-align:left}
.code{display:grid;grid-template-columns:1fr 1fr;gap:1rem}pre{background:#f6f8fa;padding:.6rem;
overflow-x:auto;font-size:.8em}mark{background:#ffd7d5}"""


def page(assignment, pairs, top, skipped):
    """The report's HTML: the ``top`` most similar pairs, each with both codes side by side."""
    e = html.escape
    out = [f"<!doctype html><meta charset='utf-8'><title>Similarity: {e(assignment)}</title>",
           f"<style>{STYLE}</style>", f"<h1>{e(assignment)}: the most similar submissions</h1>",
           "<p>Each figure is the share of one submission's code (graded functions only, the "
           "released template left out) that is found in the other, as copydetect's winnowing "
           "sees it: renamed identifiers and reordered code still match. A high figure is a "
           "place to look, not a verdict.</p>"]
    if skipped:
        out.append("<p>Not compared (no readable notebook): " + e(", ".join(skipped)) + "</p>")
    out.append("<table><tr><th>#</th><th>submission</th><th>submission</th><th>shared</th></tr>")
    for i, p in enumerate(pairs[:top], 1):
        out.append(f"<tr><td><a href='#pair-{i}'>{i}</a></td><td>{e(p.a)} ({p.a_share:.0%})</td>"
                   f"<td>{e(p.b)} ({p.b_share:.0%})</td><td>{p.share:.0%}</td></tr>")
    out.append("</table>")
    for i, p in enumerate(pairs[:top], 1):
        out.append(f"<h2 id='pair-{i}'>{i}. {e(p.a)} and {e(p.b)}: {p.share:.0%}</h2>"
                   f"<div class='code'><div><h3>{e(p.a)} ({p.a_share:.0%} found in the other)</h3>"
                   f"<pre>{p.a_html}</pre></div><div><h3>{e(p.b)} ({p.b_share:.0%})</h3>"
                   f"<pre>{p.b_html}</pre></div></div>")
    return "\n".join(out) + "\n"


def write(course, assignment, folder, path=None, top=20):
    """Compare the submissions in ``folder`` (one sub-folder per student, as ``grade`` reads
    them) with each other and with the solutions; write the report (default
    ``reports/<assignment>-similarity.html``). Returns (path, pairs)."""
    from .runner import read_submission

    source = notebooks.read(course.source_notebook(assignment))
    ids = answer_ids(source)
    if not ids:
        raise UsageError(f"assignment: {assignment} has no answer cells to compare")
    release = course.release / assignment / f"{assignment}.ipynb"
    boilerplate = answers(notebooks.read(release), ids) if release.is_file() else ""
    codes, skipped = {SOLUTION: answers(source, ids, solution=True)}, []
    for sub in submissions.find(folder, assignment):
        try:
            codes[sub.student] = answers(read_submission(sub.notebook), ids)
        except (ValueError, TypeError):  # no notebook, or not one we can read
            skipped.append(sub.student)
    pairs = compare(codes, boilerplate)
    path = path or course.root / "reports" / f"{assignment}-similarity.html"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page(assignment, pairs, top, skipped), encoding="utf-8")
    return path, pairs
