"""nbgrader's own autograde fixtures, graded by `nbgrader autograde` and by `autograder
grade` side by side: ours is never more generous, and it grades every student.

The fixtures ship in nbgrader's wheel (nbgrader/tests/apps/files). As in nbgrader's own
tests, the ``submitted-*`` notebooks are submissions of ``submitted-unchanged.ipynb``;
``test.ipynb`` is graded against itself (the instructor's solution) and against its
release; ``infinite-loop`` and ``timeout`` are their own sources.
"""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbgrader
import pytest

from autograder.cli import main
from autograder.grading.outcomes import Status

FILES = Path(nbgrader.__file__).parent / "tests" / "apps" / "files"
CASES = {  # assignment -> (source fixture, {student: submitted fixture})
    "ps1": ("submitted-unchanged.ipynb", {
        "unchanged": "submitted-unchanged.ipynb", "changed": "submitted-changed.ipynb",
        "cheat": "submitted-cheat-attempt.ipynb",
        "cheat_alt": "submitted-cheat-attempt-alternative.ipynb",
        "grade_cell_changed": "submitted-grade-cell-changed.ipynb",
        "locked_cell_changed": "submitted-locked-cell-changed.ipynb",
        "too_new": "too-new.ipynb"}),
    # the honest two again, in a class nbgrader grades to the end (too_new above stops
    # its run before them)
    "ps1_honest": ("submitted-unchanged.ipynb", {
        "unchanged": "submitted-unchanged.ipynb", "changed": "submitted-changed.ipynb"}),
    "squares": ("test.ipynb", {"instructor": "test.ipynb"}),
    "loop": ("infinite-loop.ipynb", {"loop": "infinite-loop.ipynb"}),
    "timeout": ("timeout.ipynb", {"slow": "timeout.ipynb"}),
}
TIMEOUT = 10


def nbgrader_scores(root, assignment, source, students):
    """{student: score or None (not graded)} from a real `nbgrader autograde` run."""
    from nbgrader.api import Gradebook, MissingEntry

    course = root / "nbgrader" / assignment
    (course / "source" / assignment).mkdir(parents=True)
    shutil.copy(FILES / source, course / "source" / assignment / "p1.ipynb")
    for f in ("jupyter.png", "data.txt"):
        shutil.copy(FILES / f, course / "source" / assignment / f)
    db = f"sqlite:///{course / 'gradebook.db'}"
    run = [sys.executable, "-m", "nbgrader"]
    common = [f"--CourseDirectory.root={course}", "--db", db]
    # nbgrader runs alembic from PATH to create its gradebook
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    subprocess.run(run + ["generate_assignment", assignment, *common], cwd=course,
                   capture_output=True, check=True, env=env)
    for student, fixture in students.items():
        d = course / "submitted" / student / assignment
        d.mkdir(parents=True)
        shutil.copy(FILES / fixture, d / "p1.ipynb")
    proc = subprocess.run(run + ["autograde", assignment, "--create", *common,
                                 f"--ExecutePreprocessor.timeout={TIMEOUT}",
                                 f"--Execute.timeout={TIMEOUT}"],
                          cwd=course, capture_output=True, text=True, timeout=600, env=env)
    out = {}
    with Gradebook(db) as gb:
        for student in students:
            try:
                out[student] = gb.find_submission_notebook("p1", assignment, student).score
            except MissingEntry:
                out[student] = None
    return out, proc.returncode


def our_scores(root, assignment, source, students):
    course = root / "ours"
    (course / "solutions" / assignment).mkdir(parents=True, exist_ok=True)
    shutil.copy(FILES / source, course / "solutions" / assignment / f"{assignment}.ipynb")
    for f in ("jupyter.png", "data.txt"):
        shutil.copy(FILES / f, course / "solutions" / assignment / f)
    assert main(["release", assignment, "--course", str(course)]) == 0
    subs = root / "subs" / assignment
    for student, fixture in students.items():
        (subs / student).mkdir(parents=True)
        shutil.copy(FILES / fixture, subs / student / f"{assignment}.ipynb")
    js = root / f"{assignment}.json"
    assert main(["grade", assignment, str(subs), "--course", str(course), "--json", str(js),
                 "--cell-timeout", str(TIMEOUT), "--quiet"]) == 0
    return json.loads(js.read_text())


@pytest.fixture(scope="module")
def side_by_side(tmp_path_factory):
    root = tmp_path_factory.mktemp("nbgrader-fixtures")
    rows = {}
    for assignment, (source, students) in CASES.items():
        theirs, rc = nbgrader_scores(root, assignment, source, students)
        ours = our_scores(root, assignment, source, students)
        for student in students:
            rows[(assignment, student)] = (theirs[student], ours[student], rc)
    print("\nassignment  student              nbgrader  autograder  (status: reason)")
    for (a, s), (t, o, rc) in rows.items():
        print(f"{a:<10}  {s:<20} {'-' if t is None else f'{t:g}':>8}  {o['score']:>10g}  "
              f"({o['status']}: {o['reason'][:60]})")
    return rows


def test_never_more_generous_than_nbgrader(side_by_side):
    # nbgrader grades every case but the one its run never reached (after too_new)
    ungraded = {key for key, (theirs, _, _) in side_by_side.items() if theirs is None}
    assert ungraded == {("ps1", "unchanged")}
    for key, (theirs, ours, _) in side_by_side.items():
        if key not in ungraded:
            assert ours["score"] <= theirs, (key, theirs, ours)


def test_every_student_is_graded_even_where_nbgrader_is_not(side_by_side):
    # nbgrader stops the whole run on the notebook whose metadata is too new, and leaves
    # the students after it without a grade; we refuse that notebook alone, saying why
    too_new = side_by_side[("ps1", "too_new")][1]
    assert too_new["status"] == "unreadable" and "schema version 10" in too_new["reason"]
    assert too_new["score"] == 0
    for (a, s), (theirs, ours, _) in side_by_side.items():
        if s != "too_new":  # an endless or slow cell costs its tests, not the grade's record
            assert ours["status"] == Status.GRADED, (a, s, ours)
    assert side_by_side[("ps1", "unchanged")][0] is None  # nbgrader's run never got to it


def test_the_honest_submissions_agree(side_by_side):
    for key in (("ps1_honest", "unchanged"), ("ps1_honest", "changed"),
                ("squares", "instructor")):
        theirs, ours, _ = side_by_side[key]
        assert theirs is not None, f"nbgrader did not grade {key}"
        assert ours["score"] == theirs, (key, theirs, ours)
    # and in the class where nbgrader stopped early, the same scores as in the whole one
    for s in ("unchanged", "changed"):
        assert side_by_side[("ps1", s)][1]["score"] == side_by_side[("ps1_honest", s)][1]["score"]
    assert side_by_side[("squares", "instructor")][1]["score"] == 3.0  # every test cell passes


def test_tampered_and_cheating_submissions_earn_nothing_extra(side_by_side):
    # the grade cell commented out, the locked cell changed, showtraceback patched away:
    # restored from the source, they score what the honest work earns
    unchanged = side_by_side[("ps1", "unchanged")][1]["score"]
    for s in ("grade_cell_changed", "locked_cell_changed", "cheat", "cheat_alt"):
        assert side_by_side[("ps1", s)][1]["score"] <= max(unchanged, 1.0), s
    loop = side_by_side[("loop", "loop")][1]
    assert (loop["status"], loop["score"]) == (Status.GRADED, 0)
