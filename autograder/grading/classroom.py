"""Grading a whole class: every student graded, in parallel, every grade recorded.

Submissions run in child processes (``runner``), several at once, on this machine or on the
workers of a Dask cluster (``cluster``); only this process writes the gradebook, one student
at a time as results arrive, so a crash of one submission, of its child process or of a
worker never costs another student a grade, nor gives one two.
"""
from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import sys
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

import nbformat

from . import course as course_mod
from coursekit.notebook import nbgrader_meta

from . import cgroups, clean, cluster, kernel, records, runner, submissions
from .outcomes import Status


class Progress:
    """A one-line progress bar on stderr: count, rate and time left."""

    def __init__(self, total, stream=sys.stderr, width=28):
        self.total, self.stream, self.width = total, stream, width
        self.done, self.start = 0, time.monotonic()
        self.live = stream.isatty()

    def step(self, label=""):
        """One more submission done (``label``: whose); redraws the bar."""
        self.done += 1
        elapsed = time.monotonic() - self.start
        rate = self.done / elapsed if elapsed > 0 else 0.0
        eta = (self.total - self.done) / rate if rate > 0 else 0.0
        filled = int(self.width * self.done / max(self.total, 1))
        line = (f"[{'#' * filled}{'.' * (self.width - filled)}] {self.done}/{self.total} "
                f"{rate:.2f}/s, {eta:.0f} s left  {label[:30]}")
        if self.live:
            self.stream.write("\r" + line.ljust(100))
            if self.done == self.total:
                self.stream.write("\n")
        else:
            self.stream.write(line + "\n")
        self.stream.flush()


def _mtime(path):
    import datetime as dt

    return dt.datetime.fromtimestamp(path.stat().st_mtime, dt.timezone.utc).replace(tzinfo=None)


def grade_class(course, assignment, folder, jobs=None, limits=None, progress=True, resume=False,
                scheduler=None):
    """Grade every student folder in ``folder``; returns the list of runner.Result.

    ``jobs``: submissions graded at once on this machine (default: all cores); each one's
    kernel and grading process start cores / jobs threads (``kernel.threads_per_job``) unless
    ``limits.threads`` or the environment (``kernel.THREAD_VARIABLES``) says otherwise.
    ``scheduler``: the address of a Dask scheduler (``cluster.connect``); the submissions
    then run on its workers, and ``jobs`` is theirs to decide.
    ``resume``: skip the students already graded (by an interrupted run) whose notebook has
    not changed since.

    Records each result in the course's gradebook as it arrives (this process alone writes
    it) and writes the executed notebook to ``autograded/<student>/<assignment>/``
    (formgrader reads it for the written answers).
    """
    source_path = course.source_notebook(assignment)
    source = nbformat.read(str(source_path), as_version=4)
    found = submissions.find(folder, assignment)
    client = cluster.connect(scheduler) if scheduler else None  # a bad address fails first
    limits = limits or runner.Limits()
    with contextlib.ExitStack() as stack:
        if client is not None:
            stack.enter_context(client)
        else:  # started now, the warm parents' imports overlap the registration
            jobs = jobs or os.cpu_count() or 1
            if limits.threads is None and not kernel.thread_env(None):
                # the cores shared out among the kernels, unless the environment says
                limits = dataclasses.replace(limits, threads=kernel.threads_per_job(jobs))
            zygotes = kernel.start_zygotes(stack, limits.threads)
            say_missing_walls()
            cgroups.sweep()
        with records.lock(course.db_url):
            course_mod.register(course, assignment)
        if resume:  # after an interrupted run: only who has no grade newer than the notebook
            done = records.graded_students(course.db_url, assignment)
            found = [s for s in found if s.student not in done or
                     (s.notebook is not None and _mtime(s.notebook) > done[s.student])]
        private = runner.Private(str(course.root), str(Path(folder).resolve()), course.db_url)
        bar = Progress(len(found)) if progress and found else None
        results = []
        if client is not None:
            arriving = cluster.grade_all(client, source, found, limits, private)
        else:
            warm = runner.Warm(*(z.wait() for z in zygotes))
            arriving = _grade_here(stack, source, found, limits, warm, private, jobs)
        # what the instructor wrote, as the source has it: locked cells, and Markdown cells
        # a student left as released (only the rest is sanitized: see clean.inert)
        locked = {nbgrader_meta(c)["grade_id"] for c in source.cells if runner.is_locked(c)}
        released = {c.source for c in source.cells if c.cell_type == "markdown"}
        by_student = {s.student: s for s in found}
        try:
            for sub, result in arriving:
                if isinstance(result, BaseException):  # a bug of ours, or every worker lost
                    result = runner.zero(source, sub.student, Status.CRASHED, _failure(result))
                _store(course, assignment, source_path, locked, released, result,
                       by_student.get(result.student))
                results.append(result)
                if bar:
                    bar.step(result.student)
        finally:
            runner.wait_for_removals()
    return sorted(results, key=lambda r: r.student)


def say_missing_walls(stream=sys.stderr):
    """Say, at the start of a run, which walls this machine cannot put up around a kernel
    (each student's ``walls`` then records what stood for them)."""
    missing = kernel.missing_walls()
    if missing:
        stream.write("walls missing on this machine (see the README's Security model):\n")
        for wall, why in missing:
            stream.write(f"  - {wall}: {why}\n")
        stream.flush()
    return missing


NBGRADER_TIME = "%Y-%m-%d %H:%M:%S.%f UTC"  # nbgrader's timestamp.txt (utils.parse_utc reads it)


def _submitted_at(notebook):
    """When ``notebook`` was submitted: the timestamp.txt nbgrader's collect left beside it,
    else its modification time (naive UTC)."""
    stamp = notebook.parent / "timestamp.txt"
    if stamp.is_file():
        from nbgrader.utils import parse_utc

        try:
            return parse_utc(stamp.read_text(encoding="utf-8", errors="replace").strip()).replace(tzinfo=None)
        except (ValueError, OverflowError, TypeError):
            pass  # a student's file: not a time we can read
    return _mtime(notebook)


def _replace(path, write):
    """``write(path)`` after removing what is there: nbgrader leaves its files read-only."""
    path.unlink(missing_ok=True)
    write(path)


def _store(course, assignment, source_path, locked, released, result, sub=None):
    """Write the executed notebook (made inert: the instructor opens it in a browser), the
    submitted copy nbgrader looks for, and record the result. Nothing in one student's
    results can stop the run: a write that fails is recorded with its reason, and a result
    the gradebook refuses is recorded again without its messages."""
    stamp = None
    if sub is not None and sub.notebook is not None:
        try:
            stamp = _submitted_at(sub.notebook)
            dest = course.root / "submitted" / result.student / assignment
            if sub.notebook.resolve() != (dest / source_path.name).resolve():
                dest.mkdir(parents=True, exist_ok=True)
                _replace(dest / source_path.name, lambda p: shutil.copy2(sub.notebook, p))
            _replace(dest / "timestamp.txt", lambda p: p.write_text(stamp.strftime(NBGRADER_TIME) + "\n"))
        except Exception as e:  # noqa: BLE001 - the grade is still recorded
            result.reason = "; ".join(filter(None, [result.reason, "the submitted copy could "
                                                    f"not be saved ({type(e).__name__})"]))
    if result.executed is not None:
        try:
            out = course.autograded(result.student, assignment)
            out.mkdir(parents=True, exist_ok=True)
            nb = clean.inert(result.executed,
                             trusted=lambda c: nbgrader_meta(c).get("grade_id") in locked
                             or c.source in released)
            _replace(out / source_path.name, lambda p: nbformat.write(nb, str(p)))
        except Exception as e:  # noqa: BLE001 - whatever it was, the grade is still recorded
            result.reason = "; ".join(filter(None, [result.reason, "the executed notebook "
                                                    f"could not be saved ({type(e).__name__})"]))
    try:
        records.record(course.db_url, assignment, source_path.stem, result, stamp)
    except Exception as e:  # noqa: BLE001
        bare = dataclasses.replace(
            result, reason=clean.text(f"{result.reason}; the gradebook refused this result's "
                                      f"messages ({type(e).__name__})", 500),
            tests={g: {**t, "message": ""} for g, t in result.tests.items()})
        records.record(course.db_url, assignment, source_path.stem, bare, stamp)


def _grade_here(stack, source, found, limits, warm, private, jobs):
    """Grade on this machine, ``jobs`` at once, from the warm parents ``warm``, the kernels
    reading nothing of the course's places ``private`` (a ``runner.Private``); yields
    (submission, Result or exception) as they complete."""
    pool = stack.enter_context(ThreadPoolExecutor(max_workers=jobs))
    futures = {pool.submit(runner.grade, source, sub, limits, warm, private): sub
               for sub in found}
    for fut in as_completed(futures):
        try:
            yield futures[fut], fut.result()
        except Exception as e:
            yield futures[fut], e


def _failure(e):
    """Why a submission has no result, for its recorded zero."""
    if type(e).__name__ == "KilledWorker":
        return ("every cluster worker that ran this submission died (the submission may "
                "exhaust a worker's memory); grade it alone to see why")
    return f"the grader failed on this submission ({type(e).__name__}: {e})"


def table(results, wall=None):
    """A plain-text table of the scores, one line per student, then a summary line."""
    if not results:
        return "no student folders found"
    w = max(7, *(len(r.student) for r in results))
    lines = [f"{'student':<{w}}  {'score':>11}  status"]
    for r in results:
        note = r.status + (f": {r.reason}" if r.reason else "")
        lines.append(f"{r.student:<{w}}  {r.score:>5g} / {r.max_score:<3g}  {note[:90]}")
    n_err = sum(r.status != Status.GRADED for r in results)
    secs = sum(r.seconds for r in results)
    lines.append(f"{len(results)} graded ({n_err} with a problem), "
                 f"{secs / len(results):.1f} s per submission"
                 + (f", {wall:.0f} s in all ({len(results) / wall:.2f} per second)" if wall else ""))
    return "\n".join(lines)


def to_json(results, standings=None):
    """The --json document: student -> score, max_score, status, reason, walls (what the
    sandbox applied to the kernel), tests, and, from the grade as it stands in the gradebook
    (``records.standings``, when given), total and max_total (with the written answers),
    written, and each test's override: the figures of the formgrader and the export."""
    out = {}
    for r in results:
        doc = {"score": r.score, "max_score": r.max_score, "status": r.status,
               "reason": r.reason, "walls": r.walls, "seconds": round(r.seconds, 3),
               "compute_seconds": round(r.compute, 3), "grader_mib": round(r.grader_mib, 1),
               "tests": {g: {"score": t["score"], "max_score": t["max_score"]}
                         for g, t in r.tests.items()}}
        st = (standings or {}).get(r.student)
        if st is not None:
            doc["score"] = st.tests_score
            doc["tests"] = {g: {"score": t.score, "max_score": t.max_score,
                                **({"auto_score": t.auto_score, "overridden": True}
                                   if t.overridden else {})} for g, t in st.tests.items()}
            doc["written"] = {g: {"score": w.score, "max_score": w.max_score}
                              for g, w in st.written.items()}
            doc["total"], doc["max_total"] = st.score, st.max_score
        out[r.student] = doc
    return out
