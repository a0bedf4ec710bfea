"""Solved notebooks for tests and benchmarks: the student who did everything, or made one mistake.

Built from the course's own notebooks (``solutions/`` and ``exercises/``) with the readers of
``autograder.grading.notebooks``; nothing here ships with the grader.
"""
from __future__ import annotations

from autograder.grading.notebooks import (EXERCISES, SOLUTIONS, cells_by_id, notebook_path, read,
                                          solution_code)
from coursekit.notebook import nbgrader_meta


def mistaken(cell, replace=None):
    """The code of solution cell ``cell`` (``solution_code``), with a simulated mistake when
    ``replace`` (grade_id -> (old, new)) names the cell: the text old, which must be there,
    becomes new."""
    code = solution_code(cell)
    gid = nbgrader_meta(cell).get("grade_id")
    if replace and gid in replace:
        old, new = replace[gid]
        if old not in code:
            raise ValueError(f"replace[{gid!r}]: {old!r} is not in the answer cell of {gid}")
        code = code.replace(old, new)
    return code


def solution_namespace(assignment, functions, replace=None, root=SOLUTIONS):
    """Execute the setup cell and the answer cells of ``functions``; return the namespace.

    This is the student's namespace as the hidden checks see it, without a kernel and
    without the experiments. ``replace`` maps a function name to (old, new): a text
    replacement made in that answer cell first (a simulated mistake); the old text must be
    there.
    """
    cells = cells_by_id(read(notebook_path(assignment, root)))
    ns = {"__name__": "__main__"}
    exec(compile(cells["setup"].source, f"<{assignment}:setup>", "exec"), ns)
    for name in functions:
        code = mistaken(cells[name], replace)
        exec(compile(code, f"<{assignment}:{name}>", "exec"), ns)
    return ns


def filled(assignment, replace=None, root=SOLUTIONS, release=EXERCISES):
    """The released notebook with every answer cell filled in from the solution: what a
    student who solved everything submits. ``replace`` simulates mistakes as in
    ``solution_namespace``. (Tests and benchmarks build classes of submissions from it.)"""
    nb = read(notebook_path(assignment, release))
    solved = cells_by_id(read(notebook_path(assignment, root)))
    for cell in nb.cells:
        m = nbgrader_meta(cell)
        gid = m.get("grade_id")
        if m.get("solution") and gid in solved:
            cell.source = mistaken(solved[gid], replace)
    return nb
