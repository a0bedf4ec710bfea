"""Writing grades: nbgrader's gradebook, plus one table of our own for reasons and messages.

Autograded scores go where nbgrader keeps them (``Grade.auto_score``), so formgrader,
``nbgrader export`` and manual grading of the written answers work as usual. The table
``autograder_results`` (same database) keeps what nbgrader has no column for: the status
of the run, its reason, and each test's failure message.

The rule for what the instructor sets in the formgrader: a manual score stands until the
instructor removes it. A re-grade writes autograded scores only; it never touches a manual
score (of a written answer, or one that overrides a test) and never flags an overridden
test for review again. ``standing`` reads the grade as it stands (the gradebook's scores,
overrides and comments, with our messages), and every figure the instructor and the
students see (export, feedback, report, ``grade --json``) is made from it, so they agree
with the formgrader and with each other.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import json
import warnings
from dataclasses import dataclass, field

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


def record(db_url, assignment, notebook, result, timestamp=None):
    """Store ``result`` (a runner.Result) for ``assignment`` in the gradebook: updated in
    place on a re-grade, under the gradebook's lock. ``timestamp`` (naive UTC): when the
    student's notebook was submitted, the submission's time in the formgrader."""
    with lock(db_url):
        _record(db_url, assignment, notebook, result, timestamp)


def graded_students(db_url, assignment):
    """{student: graded_at} of the results stored for ``assignment``."""
    eng = engine(db_url)
    q = sa.select(RESULTS.c.student, RESULTS.c.graded_at).where(RESULTS.c.assignment == assignment)
    with eng.connect() as conn:
        out = {r.student: r.graded_at for r in conn.execute(q)}
    eng.dispose()
    return out


def _record(db_url, assignment, notebook, result, timestamp):
    from nbgrader.api import Gradebook, MissingEntry

    # nbgrader's add_submission triggers SQLAlchemy autoflush warnings that mean nothing here
    warnings.filterwarnings("ignore", category=sa.exc.SAWarning, module="nbgrader")
    with Gradebook(db_url) as gb:
        student = gb.update_or_create_student(result.student)
        if student.first_name is None and student.last_name is None:
            # no roster names (nbgrader db student import sets them): the formgrader, which
            # shows "last, first", shows the id rather than "None, None"
            student.last_name, student.first_name = result.student, ""
        try:
            sub = gb.find_submission(assignment, result.student)
        except MissingEntry:
            sub = gb.add_submission(assignment, result.student)
        if timestamp is not None:
            sub.timestamp = timestamp
        for gid, t in result.tests.items():
            grade = gb.find_grade(gid, notebook, assignment, result.student)
            grade.auto_score = t["score"]
            grade.needs_manual_grade = False  # an override (manual_score) stands as it is
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


@dataclass
class TestStanding:
    """One test as it stands: ``score`` is the instructor's override when there is one,
    else the autograded score; message, kind and hint are the autograder's."""
    score: float
    max_score: float
    auto_score: float | None
    overridden: bool
    message: str = ""
    kind: str | None = None
    hint: str | None = None


@dataclass
class WrittenStanding:
    """One written answer: its manual score (None while pending) and the instructor's comment."""
    score: float | None
    max_score: float
    comment: str = ""


@dataclass
class Standing:
    """A student's grade of one assignment as it stands in the gradebook.

    score = tests_score + the graded written answers + extra_credit, which is nbgrader's
    total (the formgrader's); written_score is None while an answer is pending.
    """
    student: str
    assignment: str
    status: str
    reason: str
    tests: dict = field(default_factory=dict)      # grade_id -> TestStanding
    written: dict = field(default_factory=dict)    # grade_id -> WrittenStanding
    extra_credit: float = 0.0
    score: float = 0.0                             # nbgrader's total

    @property
    def tests_score(self):
        return sum(t.score for t in self.tests.values())

    @property
    def tests_max(self):
        return sum(t.max_score for t in self.tests.values())

    @property
    def written_max(self):
        return sum(w.max_score for w in self.written.values())

    @property
    def pending(self):
        """The written answers not graded yet."""
        return [g for g, w in self.written.items() if w.score is None]

    @property
    def written_score(self):
        return None if self.pending else sum(w.score for w in self.written.values())

    @property
    def max_score(self):
        return self.tests_max + self.written_max

    @property
    def overridden(self):
        return [g for g, t in self.tests.items() if t.overridden]


def standings(db_url, assignment):
    """{student: Standing} of every submission of ``assignment`` in the gradebook."""
    from nbgrader.api import Gradebook, MissingEntry

    ours = {r["student"]: r for r in results(db_url, assignment)}
    out = {}
    with Gradebook(db_url) as gb:
        try:
            subs = gb.find_assignment(assignment).submissions
        except MissingEntry:
            return {}
        for sub in sorted(subs, key=lambda s: s.student.id):
            mine = ours.get(sub.student.id, {})
            st = Standing(sub.student.id, assignment, mine.get("status", Status.BY_NBGRADER),
                          mine.get("reason", ""), score=float(sub.score))
            comments = {c.name: c.comment or "" for nb in sub.notebooks for c in nb.comments}
            for nb in sub.notebooks:
                for g in sorted(nb.grades, key=lambda g: g.name):
                    st.extra_credit += g.extra_credit or 0.0
                    if g.cell.cell_type == "markdown":
                        st.written[g.name] = WrittenStanding(g.manual_score, g.max_score,
                                                             comments.get(g.name, ""))
                        continue
                    t = mine.get("tests", {}).get(g.name, {})
                    overridden = g.manual_score is not None
                    st.tests[g.name] = TestStanding(
                        g.manual_score if overridden else (g.auto_score or 0.0), g.max_score,
                        g.auto_score, overridden, t.get("message", ""), t.get("kind"), t.get("hint"))
            order = {g: i for i, g in enumerate(mine.get("tests", {}))}  # the notebook's order
            st.tests = dict(sorted(st.tests.items(), key=lambda kv: order.get(kv[0], len(order))))
            out[st.student] = st
    return out


def _roster_names(student):
    """first_name and last_name of a gradebook student as a roster gave them: empty for a
    student with no roster names (``_record`` stores the id as the last name so that the
    formgrader shows it, not "None, None")."""
    first, last = student.first_name or "", student.last_name or ""
    if not first and last == student.id:
        last = ""
    return dict(first_name=first, last_name=last)


def export_rows(db_url):
    """One row per student and assignment of the gradebook: the total (nbgrader's, with the
    instructor's grades), the tests' part (overrides included), the written part (empty while
    an answer is pending), extra credit, the overridden tests, and our status and reason.
    score = tests_score + written_score + extra_credit whenever nothing is pending."""
    from nbgrader.api import Gradebook

    rows = []
    with Gradebook(db_url) as gb:
        names = sorted(a.name for a in gb.assignments)
        people = {s.id: dict(**_roster_names(s), email=s.email or "", lms_user_id=s.lms_user_id or "")
                  for s in gb.students}
        students = sorted(people)
        max_scores = {a.name: a.max_score for a in gb.assignments}
    for a in names:
        stand = standings(db_url, a)
        for s in students:
            st = stand.get(s)
            if st is None:
                rows.append(dict(student=s, **people[s], assignment=a, score=0.0, max_score=max_scores[a],
                                 tests_score=0.0, written_score="", extra_credit=0.0,
                                 needs_manual_grade=False, overridden="",
                                 status=Status.NOT_SUBMITTED, reason=""))
                continue
            rows.append(dict(student=s, **people[s], assignment=a, score=st.score, max_score=st.max_score,
                             tests_score=st.tests_score,
                             written_score="" if st.written_score is None else st.written_score,
                             extra_credit=st.extra_credit, needs_manual_grade=bool(st.pending),
                             overridden=" ".join(st.overridden), status=st.status,
                             reason=st.reason))
    return rows
