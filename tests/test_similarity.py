"""`autograder similarity`: copies are found through renaming and reordering, independent
work is not flagged, and the report runs nothing a student wrote."""
import re

import nbformat
import pytest

from autograder.cli import main
from autograder.grading import notebooks, similarity
from autograder.grading.course import Course
from solved import filled

RENAMES = [("dnext_h", "grad_h"), ("dnext_c", "grad_c"), ("next_h", "h_new"), ("next_c", "c_new"),
           ("prev_h", "h_old"), ("prev_c", "c_old"), ("cache", "memo"), ("gates", "acts"),
           ("Wx", "W_in"), ("Wh", "W_rec")]


def graded_cells(nb, assignment="lstm"):
    """The answer cells of the graded functions (what the report compares)."""
    ids = similarity.answer_ids(notebooks.read(notebooks.notebook_path(assignment)))
    return [c for c in nb.cells if notebooks.nbgrader_meta(c).get("grade_id") in ids]


def renamed(nb):
    """Every answer cell with its identifiers renamed."""
    for cell in nb.cells:
        if notebooks.nbgrader_meta(cell).get("solution") and cell.cell_type == "code":
            for old, new in RENAMES:
                cell.source = re.sub(rf"\b{old}\b", new, cell.source)
    return nb


def reordered(nb):
    """The answer cells' contents in reverse order: every function moved to another cell."""
    cells = graded_cells(nb)
    sources = [c.source for c in cells][::-1]
    for cell, src in zip(cells, sources):
        cell.source = "# moved here\n\n" + src
    return nb


_ASSIGN = re.compile(r"^(\s+)(\w+) = (.*)$")


def statements_reordered(nb):
    """Every answer cell's runs of independent one-line assignments (same indent, none reading
    another's target) in reverse order, and the identifiers renamed: what a student who
    copies and disguises the code does to it (the functions still compute the same)."""
    def reorder(code):
        out, run = [], []

        def flush():
            out.extend(run[::-1])
            run.clear()

        for line in code.split("\n"):
            m = _ASSIGN.match(line)
            if m and "#" not in line:
                if run and (_ASSIGN.match(run[0]).group(1) != m.group(1) or any(
                        re.search(rf"\b{_ASSIGN.match(r).group(2)}\b", m.group(3)) for r in run)):
                    flush()
                run.append(line)
            else:
                flush()
                out.append(line)
        flush()
        return "\n".join(out)

    for cell in graded_cells(nb):
        cell.source = reorder(cell.source)
    return renamed(nb)


def elsewhere(nb, assignment):
    """The released notebook's answer cells filled with another assignment's solutions, as
    far as they go: unrelated work (written independently)."""
    other = [c.source for c in graded_cells(filled(assignment), assignment)]
    cells = graded_cells(nb)
    for cell, src in zip(cells, other):
        cell.source = src
    return nb


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    folder = tmp_path_factory.mktemp("class")
    blank = nbformat.read(str(notebooks.ROOT / "exercises" / "lstm" / "lstm.ipynb"), as_version=4)
    mean = filled("lstm")
    for c in mean.cells:
        if notebooks.nbgrader_meta(c).get("grade_id") == "lstm_param_count":
            c.source = "# </pre><script>alert('x')</script>\n" + c.source
    class_ = {"ann": filled("lstm"), "ben": renamed(filled("lstm")), "cat": reordered(filled("lstm")),
              "hal": statements_reordered(filled("lstm")),
              "dan": blank, "eve": elsewhere(nbformat.read(str(notebooks.ROOT / "exercises" / "lstm" / "lstm.ipynb"), as_version=4), "gru"), "fay": mean}
    for student, nb in class_.items():
        (folder / student).mkdir()
        nbformat.write(nb, str(folder / student / "lstm.ipynb"))
    (folder / "gus").mkdir()
    (folder / "gus" / "lstm.ipynb").write_text("{ not a notebook")
    out = folder.parent / "similarity.html"
    assert main(["similarity", "lstm", str(folder), "--out", str(out), "--top", "30"]) == 0
    _, pairs = similarity.write(Course(notebooks.ROOT), "lstm", folder, folder.parent / "again.html")
    return out.read_text(), {frozenset((p.a, p.b)): p for p in pairs}


def test_renaming_and_reordering_do_not_hide_a_copy(report):
    _, pairs = report
    sol = similarity.SOLUTION
    for copy in ("ben", "cat", "fay"):
        assert pairs[frozenset(("ann", copy))].share >= 0.9, copy
        assert pairs[frozenset((sol, copy))].share >= 0.9, copy
    # statements moved and names changed: most of the code still matches, and the disguised
    # copy ranks above every pair of independent work
    ann, hal = (graded_cells(nb) for nb in (filled("lstm"), statements_reordered(filled("lstm"))))
    moved = sum(a.source.split("\n") != b.source.split("\n") for a, b in zip(ann, hal))
    assert moved >= 4  # the variant does move statements in most functions
    independent = max(p.share for k, p in pairs.items() if k & {"dan", "eve"})
    for other in ("ann", sol):
        assert pairs[frozenset((other, "hal"))].share >= 0.75 > 2 * independent, other


def test_independent_or_empty_work_is_not_flagged(report):
    _, pairs = report
    for other in ("ann", "ben", "cat", similarity.SOLUTION):
        assert pairs[frozenset(("eve", other))].share < 0.3  # another assignment's code
        assert pairs[frozenset(("dan", other))].share == 0  # the release: all boilerplate


def test_the_report_lists_the_copies_first_and_runs_nothing(report):
    page, pairs = report
    assert "<script>" not in page and "&lt;script&gt;" in page  # fay's comment, escaped
    assert "<mark>" in page and "gus" in page  # highlighted code; the unreadable one named
    first = page.index("<h2 id='pair-1'>")
    assert "dan" not in page[first:first + 200] and "eve" not in page[first:first + 200]
    assert page.count("<h2 id='pair-") == 28  # 8 compared (7 and the solutions): 28 pairs
