"""Finding each student's notebook in a folder of submissions.

SUBMISSIONS holds one sub-folder per student, named by the student's id, with the
student's notebook somewhere inside: the layout of an LMS download
(``SUBMISSIONS/kim/whatever-I-called-it.ipynb``) and nbgrader's own
(``submitted/kim/lstm/lstm.ipynb``) both work.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from . import clean
from .outcomes import UsageError


@dataclass
class Submission:
    """One student folder: the notebook to grade, or None and the problem that prevents it."""
    student: str
    notebook: Path | None  # None when no usable notebook was found
    problem: str = ""  # why there is no notebook


def _notebooks(folder):
    """Every .ipynb below ``folder``, not following links and skipping checkpoints."""
    found = []
    for p in sorted(folder.rglob("*.ipynb")):
        rel = p.relative_to(folder)
        if ".ipynb_checkpoints" in rel.parts or any(part.startswith(".") for part in rel.parts):
            continue
        if p.is_symlink() or any((folder / Path(*rel.parts[:i])).is_symlink()
                                 for i in range(1, len(rel.parts))):
            continue  # a link may point outside the submission
        if p.is_file():
            found.append(p)
    return found


def find(submissions, assignment):
    """One Submission per student folder of ``submissions``, sorted by student id.

    The notebook is the only one in the folder; with several, the one named
    ``<assignment>.ipynb`` (or the only one inside a folder named like the assignment).
    """
    root = Path(submissions)
    if not root.is_dir():
        raise UsageError(f"submissions: {root} is not a folder")
    out, seen = [], {}
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        student = clean.ident(folder.name)  # no escape codes in a table, a path or a page
        if not student:
            raise UsageError(f"submissions: the folder {folder.name!r} has no usable student "
                             "id (only control or invisible characters); rename it")
        if student in seen:
            raise UsageError(f"submissions: the folders {seen[student]!r} and {folder.name!r} "
                             f"both read as the student id {student!r}; rename one")
        seen[student] = folder.name
        if folder.is_symlink():
            out.append(Submission(student, None, "the student folder is a link; not followed"))
            continue
        nbs = _notebooks(folder)
        if len(nbs) > 1:
            named = [p for p in nbs if p.name == f"{assignment}.ipynb"] or \
                    [p for p in nbs if assignment in p.relative_to(folder).parts[:-1]]
            if len(named) == 1:
                nbs = named
        if not nbs:
            out.append(Submission(student, None, "no notebook (.ipynb) in the submission"))
        elif len(nbs) > 1:
            names = ", ".join(str(p.relative_to(folder)) for p in nbs)
            out.append(Submission(student, None, f"several notebooks and none is named "
                                                 f"{assignment}.ipynb: {names}"))
        else:
            out.append(Submission(student, nbs[0]))
    return out
