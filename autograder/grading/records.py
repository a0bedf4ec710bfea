"""Writing grades: nbgrader's gradebook, plus one table of our own for reasons and messages.

Autograded scores go where nbgrader keeps them (``Grade.auto_score``), so formgrader,
``nbgrader export`` and manual grading of the written answers work as usual; a re-grade
updates those rows in place and never touches a manual score. The table
``autograder_results`` (same database) keeps what nbgrader has no column for: the status
of the run, its reason, and each test's failure message, which the feedback and the report
are made from.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import json
import warnings

import sqlalchemy as sa

from . import clean
from .outcomes import Status

_META = sa.MetaData()
RESULTS = sa.Table(
    "autograder_results", _META,
    sa.Column("assignment", sa.String(128), primary_key=True),
    sa.Column("student", sa.String(128), primary_key=True),
    sa.Column("status", sa.String(32), nullable=False),
    sa.Column("reason", sa.Text, nullable=False, default=""),
    sa.Column("score", sa.Float, nullable=False),
    sa.Column("max_score", sa.Float, nullable=False),
    sa.Column("tests", sa.Text, nullable=False),  # JSON: grade_id -> {score, max_score, message}
    sa.Column("seconds", sa.Float, nullable=False),
    sa.Column("graded_at", sa.DateTime, nullable=False),
)


def db_paths(db_url):
    """The folder of a SQLite gradebook (its journal files live beside it); () for a server."""
    url = sa.engine.make_url(db_url)
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        from pathlib import Path

        return (str(Path(url.database).resolve().parent),)
    return ()


LOCK_KEY = 0x6175746F67726164  # "autograd": the advisory lock of the gradebook on PostgreSQL


@contextlib.contextmanager
def lock(db_url):
    """Exclusive access to the gradebook across processes, so that two graders at once
    never see 'database is locked' and nbgrader's find-then-add of a student or submission
    is atomic: a file lock beside a SQLite file, an advisory lock on PostgreSQL, none on
    other servers."""
    url = sa.engine.make_url(db_url)
    if url.get_backend_name() == "postgresql":
        eng = sa.create_engine(url, poolclass=sa.pool.NullPool)
        try:
            with eng.connect() as conn:
                conn.execute(sa.text("SELECT pg_advisory_lock(:k)"), {"k": LOCK_KEY})
                conn.commit()
                try:
                    yield
                finally:
                    conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": LOCK_KEY})
                    conn.commit()
        finally:
            eng.dispose()
        return
    folder = db_paths(db_url)
    if not folder:
        yield
        return
    import fcntl
    from pathlib import Path

    path = Path(url.database).resolve()
    with open(path.with_name(path.name + ".lock"), "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def engine(db_url):
    """A SQLAlchemy engine on ``db_url``, with the results table created if missing."""
    eng = sa.create_engine(db_url)
    _META.create_all(eng)
    return eng


def record(db_url, assignment, notebook, result):
    """Store ``result`` (a runner.Result) for ``assignment`` in the gradebook: updated in
    place on a re-grade, under the gradebook's lock."""
    with lock(db_url):
        _record(db_url, assignment, notebook, result)


def graded_students(db_url, assignment):
    """{student: graded_at} of the results stored for ``assignment``."""
    eng = engine(db_url)
    q = sa.select(RESULTS.c.student, RESULTS.c.graded_at).where(RESULTS.c.assignment == assignment)
    with eng.connect() as conn:
        out = {r.student: r.graded_at for r in conn.execute(q)}
    eng.dispose()
    return out


def _record(db_url, assignment, notebook, result):
    from nbgrader.api import Gradebook, MissingEntry

    # nbgrader's add_submission triggers SQLAlchemy autoflush warnings that mean nothing here
    warnings.filterwarnings("ignore", category=sa.exc.SAWarning, module="nbgrader")
    with Gradebook(db_url) as gb:
        gb.update_or_create_student(result.student)
        try:
            gb.find_submission(assignment, result.student)
        except MissingEntry:
            gb.add_submission(assignment, result.student)
        for gid, t in result.tests.items():
            grade = gb.find_grade(gid, notebook, assignment, result.student)
            grade.auto_score = t["score"]
            grade.needs_manual_grade = grade.manual_score is not None
        for gid in result.written:
            grade = gb.find_grade(gid, notebook, assignment, result.student)
            grade.auto_score = None
            grade.needs_manual_grade = grade.manual_score is None
        gb.db.commit()
    tests = {clean.text(g, 200): {**t, "message": clean.text(t.get("message", ""), 2000)}
             for g, t in result.tests.items()}
    row = dict(assignment=assignment, student=result.student, status=result.status,
               reason=clean.text(result.reason, 2000), score=result.score,
               max_score=result.max_score, tests=json.dumps(tests), seconds=result.seconds,
               graded_at=dt.datetime.now(dt.timezone.utc).replace(tzinfo=None))
    eng = engine(db_url)
    with eng.begin() as conn:
        conn.execute(RESULTS.delete().where((RESULTS.c.assignment == assignment)
                                            & (RESULTS.c.student == result.student)))
        conn.execute(RESULTS.insert().values(**row))
    eng.dispose()


def results(db_url, assignment=None):
    """Stored results as dicts (tests decoded), sorted by assignment and student."""
    eng = engine(db_url)
    q = sa.select(RESULTS).order_by(RESULTS.c.assignment, RESULTS.c.student)
    if assignment is not None:
        q = q.where(RESULTS.c.assignment == assignment)
    with eng.connect() as conn:
        rows = [dict(r._mapping) for r in conn.execute(q)]
    eng.dispose()
    for r in rows:
        r["tests"] = json.loads(r["tests"])
    return rows


def export_rows(db_url):
    """One row per student and assignment of the gradebook, with totals that include the
    manual grades of the written answers (nbgrader's scores) and our status and reason."""
    from nbgrader.api import Gradebook, MissingEntry

    ours = {(r["assignment"], r["student"]): r for r in results(db_url)}
    rows = []
    with Gradebook(db_url) as gb:
        for a in sorted(gb.assignments, key=lambda a: a.name):
            for s in sorted(gb.students, key=lambda s: s.id):
                mine = ours.get((a.name, s.id), {})
                try:
                    sub = gb.find_submission(a.name, s.id)
                except MissingEntry:
                    rows.append(dict(student=s.id, assignment=a.name, score=0.0,
                                     max_score=a.max_score, auto_score=0.0,
                                     written_score="", needs_manual_grade=False,
                                     status=Status.NOT_SUBMITTED, reason=""))
                    continue
                written = sum(g.score for nb in sub.notebooks for g in nb.grades
                              if g.cell.cell_type == "markdown" and g.manual_score is not None)
                rows.append(dict(student=s.id, assignment=a.name, score=sub.score,
                                 max_score=sub.max_score, auto_score=mine.get("score", sub.code_score),
                                 written_score=written, needs_manual_grade=sub.needs_manual_grade,
                                 status=mine.get("status", Status.BY_NBGRADER),
                                 reason=mine.get("reason", "")))
    return rows
