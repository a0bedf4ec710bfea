"""Reading the course's nbgrader notebooks: paths, cells by grade_id, solution code.

The solution notebook of assignment ``a`` is ``solutions/a/a.ipynb`` (nbgrader's source
directory) and its release is ``exercises/a/a.ipynb``. Cells carry nbgrader metadata:
- ``setup``: the locked code cell of imports every notebook starts with;
- ``<function>``: the autograded answer cell where the student writes ``function``;
- ``test_<function>``: its locked test cell (visible tests, then the hidden block);
- ``experiment_*`` (code) and ``written_*`` (markdown, graded by hand): the rest.
"""
from __future__ import annotations

import re
from pathlib import Path

import nbformat

from coursekit.notebook import nbgrader_meta

ROOT = Path(__file__).resolve().parents[2]
SOLUTIONS = ROOT / "solutions"
EXERCISES = ROOT / "exercises"
_SOLUTION_BLOCK = re.compile(r"^[ \t]*### (BEGIN|END) SOLUTION[ \t]*\n", re.M)


def assignments(root=SOLUTIONS):
    """Names of the assignments found in ``root`` (folders holding ``<name>.ipynb``), sorted."""
    return sorted(p.name for p in Path(root).iterdir() if (p / f"{p.name}.ipynb").is_file())


def notebook_path(assignment, root=SOLUTIONS):
    """``root/assignment/assignment.ipynb``."""
    return Path(root) / assignment / f"{assignment}.ipynb"


def read(path):
    """The notebook at ``path`` as an nbformat v4 NotebookNode."""
    return nbformat.read(str(path), as_version=4)


def cells_by_id(nb):
    """grade_id -> cell, for every cell with nbgrader metadata."""
    return {nbgrader_meta(c)["grade_id"]: c for c in nb.cells if "grade_id" in nbgrader_meta(c)}


def test_cells(nb):
    """The autograded test cells (grade, not solution, code) in notebook order: [(grade_id, points)]."""
    out = []
    for c in nb.cells:
        m = nbgrader_meta(c)
        if m.get("grade") and not m.get("solution") and c.cell_type == "code":
            out.append((m["grade_id"], float(m.get("points", 0))))
    return out


def solution_code(cell):
    """A solution cell's source with the BEGIN/END SOLUTION marker lines removed."""
    return _SOLUTION_BLOCK.sub("", cell.source)


def normalize(path):
    """Rewrite a notebook in the form committed here: no outputs, no execution counts, no
    jupytext or editor metadata, the python3 kernel; returns the notebook."""
    nb = read(path)
    nb.metadata = nbformat.from_dict({
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
    })
    for i, cell in enumerate(nb.cells):
        # stable ids keep diffs small: the grade_id where there is one, else the position
        cell.id = nbgrader_meta(cell).get("grade_id") or f"cell-{i}"
        keep = {k: cell.metadata[k] for k in ("nbgrader", "tags", "deletable", "editable")
                if k in cell.metadata}
        cell.metadata = nbformat.from_dict(keep)
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    nbformat.write(nb, str(path))
    return nb


if __name__ == "__main__":  # python -m autograder.grading.notebooks normalize NOTEBOOK...
    import sys

    if len(sys.argv) < 3 or sys.argv[1] != "normalize":
        sys.exit("usage: python -m autograder.grading.notebooks normalize NOTEBOOK...")
    for p in sys.argv[2:]:
        normalize(p)
