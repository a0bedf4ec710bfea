"""Nothing lost: a grader killed (SIGKILL) half-way and run again, and two graders started
on the same gradebook at once, leave every grade present once, equal to a quiet run.
"""
import json
import os
import signal
import subprocess
import sys
import time

import nbformat
import pytest
import sqlalchemy as sa

from autograder.cli import main

from test_grading_cli import answer, released, toy_source

N_STUDENTS = 10


def make_course(root):
    (root / "solutions" / "toy").mkdir(parents=True)
    nbformat.write(toy_source(), str(root / "solutions" / "toy" / "toy.ipynb"))
    assert main(["release", "toy", "--course", str(root)]) == 0
    return root


def make_class(course, folder):
    """Ten students: right, half right, wrong, and one that sleeps (so a run takes a while)."""
    for i in range(N_STUDENTS):
        nb = released(course)
        answer(nb, "double", "def double(x):\n    return 2 * x" if i % 3 else
               "def double(x):\n    return x")
        answer(nb, "square", "def square(x):\n    import time; time.sleep(0.5)\n    return x * x"
               if i % 2 else "def square(x):\n    return x + x")
        (folder / f"s{i:02d}").mkdir(parents=True)
        nbformat.write(nb, str(folder / f"s{i:02d}" / "toy.ipynb"))
    return folder


def grade_cmd(course, folder, out, *extra, jobs=2):
    return [sys.executable, "-m", "autograder.cli", "grade", "toy", str(folder), "--course",
            str(course), "--json", str(out), "--quiet", *(["--jobs", str(jobs)] if jobs else []),
            *extra]


def gradebook(course, db_url=None):
    """(rows of our results table, nbgrader's grade rows, submissions per student) of the
    course's gradebook (``db_url``: another one, such as a PostgreSQL database)."""
    eng = sa.create_engine(db_url or f"sqlite:///{course / 'gradebook.db'}",
                           poolclass=sa.pool.NullPool)
    with eng.connect() as db:
        run = lambda q: [tuple(r) for r in db.execute(sa.text(q))]  # noqa: E731
        ours = run("select student, score, status from autograder_results "
                   "where assignment = 'toy' order by student")
        grades = run(
            "select s.student_id, c.name, g.auto_score from grade g "
            "join submitted_notebook n on g.notebook_id = n.id "
            "join submitted_assignment s on n.assignment_id = s.id "
            "join base_cell c on g.cell_id = c.id order by 1, 2")
        subs = run("select student_id, count(*) from submitted_assignment group by 1 order by 1")
    eng.dispose()
    return ours, grades, subs


@pytest.fixture(scope="module")
def quiet_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("quiet")
    course = make_course(root / "course")
    folder = make_class(course, root / "class")
    subprocess.run(grade_cmd(course, folder, root / "r.json"), check=True, timeout=600)
    return gradebook(course), json.loads((root / "r.json").read_text())


def test_a_grader_killed_half_way_loses_and_doubles_nothing(quiet_run, tmp_path):
    course = make_course(tmp_path / "course")
    folder = make_class(course, tmp_path / "class")
    proc = subprocess.Popen(grade_cmd(course, folder, tmp_path / "a.json"), start_new_session=True)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:  # kill it once a few grades are in
        time.sleep(0.5)
        try:
            done = len(gradebook(course)[0])
        except sa.exc.OperationalError:
            done = 0
        if done >= 3:
            break
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    partial = len(gradebook(course)[0])
    assert 3 <= partial < N_STUDENTS
    time.sleep(1.0)  # the kernels and grading processes died with the grader
    leftovers = subprocess.run(["pgrep", "-f", str(tmp_path)], capture_output=True, text=True)
    assert leftovers.stdout.strip() == "", "processes of the killed run are still alive"
    subprocess.run(grade_cmd(course, folder, tmp_path / "b.json", "--resume"), check=True,
                   timeout=600)
    ours, grades, subs = gradebook(course)
    (q_ours, q_grades, q_subs), _ = quiet_run
    assert ours == q_ours and grades == q_grades
    assert subs == q_subs and all(n == 1 for _, n in subs)
    resumed = json.loads((tmp_path / "b.json").read_text())
    assert len(resumed) == N_STUDENTS - partial  # only those left were graded again


def test_two_graders_at_once_agree_and_never_see_a_locked_database(quiet_run, tmp_path):
    course = make_course(tmp_path / "course")
    folder = make_class(course, tmp_path / "class")
    procs = [subprocess.Popen(grade_cmd(course, folder, tmp_path / f"{k}.json"),
                              stderr=subprocess.PIPE, text=True) for k in "ab"]
    errs = [p.communicate(timeout=600)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], errs
    assert not any("locked" in e for e in errs), errs
    a, b = (json.loads((tmp_path / f"{k}.json").read_text()) for k in "ab")
    _, quiet = quiet_run
    strip = lambda r: {s: (v["score"], v["status"]) for s, v in r.items()}  # noqa: E731
    assert strip(a) == strip(b) == strip(quiet)
    ours, grades, subs = gradebook(course)
    assert (ours, grades) == quiet_run[0][:2]
    assert all(n == 1 for _, n in subs)
