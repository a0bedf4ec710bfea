"""Grading one submission: restore the instructor's cells, execute with limits, score.

The submitted notebook is never trusted for what it says about grading: every locked cell
(the setup cell, the test cells with their hidden tests) is put back from the source
notebook by grade_id, with the source's metadata, so a deleted, edited, retyped or re-tagged
test cell changes nothing; a test cell missing from the submission is added back. The
notebook then runs through the grader's process for it (``child``), which starts the
student's kernel in a sandbox (``kernel``, ``sandbox``) in an empty folder, under a time
limit per cell and per notebook; whatever happens to either process, the submission gets a
result. A course test cell is graded by its hidden check alone, judged in the grader's
process on plain data from the kernel; an instructor's own test cell scores its points when
it raised no error (output on stderr, such as a PyTorch warning, costs nothing).
"""
from __future__ import annotations

import copy
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from coursekit.expect import Failure
from coursekit.notebook import CELL_TIMEOUT, is_test_cell, nbgrader_meta

from . import clean
from .cgroups import Cgroup
from .kernel import fork, kill_session, kill_tree, thread_env
from .outcomes import Status

NOTEBOOK_TIMEOUT = 900  # seconds for a whole submission


@dataclass
class Limits:
    """Time limits in seconds: per cell (the cell is interrupted) and per notebook (killed);
    the kernel's memory in bytes; ``threads``: what the numeric libraries of the kernel and
    the grading process start (``kernel.thread_env``; None: as the environment says).
    Configuration only: the warm parents of a run travel apart, as a ``Warm``, and the
    course's places, as a ``Private``."""
    cell_timeout: int = CELL_TIMEOUT
    notebook_timeout: int = NOTEBOOK_TIMEOUT
    memory: int = 6 << 30
    threads: int | None = None


@dataclass(frozen=True)
class Warm:
    """The addresses of a run's warm parents (``kernel.Zygote.wait()``): ``kernel``, which
    student kernels are forked from, and ``grader``, which grading processes are; a
    submission graded without them starts both cold."""
    kernel: dict | None = None
    grader: dict | None = None


@dataclass(frozen=True)
class Private:
    """The course's places, as the command knows them: ``course`` (its folder:
    solutions/, exercises/, submitted/, autograded/, feedback/), ``submissions`` (the folder
    the class's notebooks were found in), ``db_url`` (the gradebook). Travels with each
    submission to where it is graded, where ``hidden_paths`` makes them paths; '' for one
    the command does not have."""
    course: str = ""
    submissions: str = ""
    db_url: str = ""


def hidden_paths(private, job, inbox=None):
    """Every path a student's kernel must not read, the one place that makes them for
    every route (this machine, a cluster worker, a cold start): [path] (resolved, each
    once) of the course and the submissions of ``private`` (a Private), the gradebook's
    folder (a SQLite file's; none for a server), the grader's own package (the reference
    and the checks), ``job`` (the submission's folder for this run: its job.json, the
    verdicts, the kernel's sockets) and ``inbox`` (a cluster worker's folder of shipped
    notebooks, or None)."""
    from .records import db_paths

    paths = [private.course, private.submissions,
             *(db_paths(private.db_url) if private.db_url else ()),
             Path(__file__).resolve().parents[1], job, inbox]
    out = []
    for p in paths:
        if p is not None and str(p):
            resolved = str(Path(p).resolve())
            if resolved not in out:
                out.append(resolved)
    return out


@dataclass
class Result:
    """The grade of one submission. tests: grade_id -> {score, max_score, message}."""
    student: str
    status: Status
    reason: str = ""
    tests: dict = field(default_factory=dict)
    written: dict = field(default_factory=dict)  # grade_id -> max_score (graded by hand)
    seconds: float = 0.0
    executed: object = None  # the executed notebook (for formgrader), when there is one
    walls: dict = field(default_factory=dict)  # what the sandbox applied (kernel.Sandbox)
    compute: float = 0.0  # seconds the notebook's cells and hidden tests took
    grader_mib: float = 0.0  # the grading process's peak resident memory

    @property
    def score(self):
        return sum(t["score"] for t in self.tests.values())

    @property
    def max_score(self):
        return sum(t["max_score"] for t in self.tests.values())


_HIDDEN = re.compile(r"^[ \t]*### BEGIN HIDDEN TESTS[ \t]*\n(.*?)^[ \t]*### END HIDDEN TESTS",
                     re.M | re.S)


def graded_source(cell):
    """What a source test cell runs when grading.

    A course test cell ends with a hidden block that calls a registered check
    (``run_check``): that check is the grade, and the visible tests above it, which call
    the student's other functions as they are, stay in the student's notebook, where they
    help. Any other test cell (an instructor's own assignment) runs whole, as in nbgrader.
    """
    m = _HIDDEN.search(cell.source)
    if m and "run_check(" in m.group(1):
        return m.group(1)
    return cell.source


def is_locked(cell):
    """A cell the instructor owns: locked, or a test cell (graded and not an answer)."""
    m = nbgrader_meta(cell)
    return bool(m.get("locked")) or (bool(m.get("grade")) and not m.get("solution"))


_RUN_CHECK = re.compile(r"run_check\(\s*[\"'](\w+)[\"']\s*,\s*[\"'](\w+)[\"']")

GRADED_BY_CHECK = ("# The grade is the hidden check below, which the grader ran outside the student's\n"
                   "# kernel; the visible tests above are the ones the student saw (not run here).\n")


def _restored(source_cell):
    """A locked source cell as the graded notebook holds it. A course test cell is marked
    with its check (``child.course_check`` runs it) and shows the instructor the visible
    tests the student saw, then the call of the check (its inputs live in
    ``autograder.checks``, not in the notebook)."""
    cell = copy.deepcopy(source_cell)
    if is_test_cell(cell):
        hidden = graded_source(cell)
        m = _RUN_CHECK.search(hidden) if hidden != cell.source else None
        if m:
            visible = _HIDDEN.sub("", cell.source).rstrip()
            cell.source = (visible + "\n\n" if visible else "") + GRADED_BY_CHECK + hidden.strip() + "\n"
            cell.metadata["autograder"] = {"check": [m.group(1), m.group(2)]}
        else:
            cell.source = hidden
    return cell


def prepare(source, submitted):
    """The notebook to execute: the submission with every locked source cell restored.

    ``source`` is the solution notebook (it holds the hidden tests), ``submitted`` the
    student's. Student cells are kept in their order; a cell whose grade_id belongs to a
    locked source cell is replaced by that cell; a second cell claiming a grade_id already
    seen is dropped; locked source cells the student removed are inserted after the cell
    that precedes them in the source.
    """
    locked = {nbgrader_meta(c)["grade_id"]: c for c in source.cells if is_locked(c)}
    answers = {nbgrader_meta(c)["grade_id"]: c for c in source.cells
               if "grade_id" in nbgrader_meta(c) and not is_locked(c)}
    cells, seen = [], set()
    for cell in submitted.cells:
        gid = nbgrader_meta(cell).get("grade_id")
        if gid in seen:
            continue
        if gid in locked:
            cell = _restored(locked[gid])
        elif gid in answers:
            # keep the student's text, with the source's metadata and cell type
            src = answers[gid]
            cell = nbformat.v4.new_code_cell(cell.source) if src.cell_type == "code" \
                else nbformat.v4.new_markdown_cell(cell.source)
            cell.metadata = copy.deepcopy(src.metadata)
        else:
            cell = copy.deepcopy(cell)
            if cell.cell_type == "code":
                cell.metadata.pop("tags", None)  # skip-execution would hide nothing we grade
        if gid:
            seen.add(gid)
        cells.append(cell)
    order = [nbgrader_meta(c).get("grade_id") for c in source.cells]
    for i, gid in enumerate(order):
        if gid in locked and gid not in seen:
            before = [g for g in order[:i] if g in seen]
            pos = next((k + 1 for k in range(len(cells) - 1, -1, -1)
                        if before and nbgrader_meta(cells[k]).get("grade_id") == before[-1]), len(cells))
            cells.insert(pos, _restored(locked[gid]))
            seen.add(gid)
    nb = nbformat.v4.new_notebook(cells=cells, metadata=copy.deepcopy(source.metadata))
    for c in nb.cells:
        if c.cell_type == "code":  # code cells have no attachments in nbformat 4
            c.outputs, c.execution_count = [], None
            c.pop("attachments", None)
    return nb


def score(source, verdicts, result):
    """Fill result.tests and result.written from the verdicts the grader's process wrote
    (grade_id -> {passed, message, kind, hint}); a test without a verdict did not run.

    Each test gets score, max_score, message and, when it failed, kind (a ``Failure`` value)
    and hint (None, or the advice the check gave)."""
    for cell in source.cells:
        m = nbgrader_meta(cell)
        if not m.get("grade"):
            continue
        gid, points = m["grade_id"], float(m.get("points", 0))
        if is_test_cell(cell):
            v = verdicts.get(gid)
            if isinstance(v, dict):  # it ran: its verdict
                passed, message = v.get("passed") is True, clean.text(v.get("message", ""), 2000)
                if not passed and not message:
                    message = "the test failed"
                kind, hint = _failure(v.get("kind")), v.get("hint")
                hint = clean.text(hint, 500) if isinstance(hint, str) and hint else None
            else:  # the run stopped before it
                passed, message = False, f"not run: {result.reason}" if result.reason else "not run"
                kind, hint = Failure.NOT_RUN, None
            result.tests[gid] = {"score": points if passed else 0.0, "max_score": points,
                                 "message": message}
            if not passed:
                result.tests[gid].update(kind=str(kind), hint=hint)
        else:
            result.written[gid] = points


def _failure(value):
    """The Failure a verdict file names; OTHER for anything else (the file is the grading
    process's, but a bad value must not stop the class's grading)."""
    try:
        return Failure(value)
    except ValueError:
        return Failure.OTHER


def zero(source, student, status, reason):
    """A recorded 0 for every test, with the reason (no notebook, unreadable, ...)."""
    result = Result(student, status, reason)
    for cell in source.cells:
        m = nbgrader_meta(cell)
        if m.get("grade"):
            points = float(m.get("points", 0))
            if is_test_cell(cell):
                result.tests[m["grade_id"]] = {"score": 0.0, "max_score": points,
                                               "message": reason, "kind": str(Failure.NOT_RUN),
                                               "hint": None}
            else:
                result.written[m["grade_id"]] = points
    return result


NBGRADER_SCHEMA = 3  # nbgrader.nbgraderformat.SCHEMA_VERSION
MAX_NOTEBOOK_BYTES = 100 << 20  # a course notebook with its figures is a few MB


def read_submission(path, max_bytes=MAX_NOTEBOOK_BYTES):
    """The submitted notebook, or raise ValueError saying why it cannot be graded."""
    try:
        size = Path(path).stat().st_size
        if size > max_bytes:
            raise ValueError(f"the notebook is {size / 2**20:.0f} MiB, more than the "
                             f"{max_bytes >> 20} MiB a submission may have (clear the outputs, "
                             "Kernel > Restart & Clear Output, and submit again)")
        raw = Path(path).read_bytes()
        text = raw.decode("utf-8-sig")  # a BOM is harmless
    except UnicodeDecodeError as e:
        raise ValueError(f"the notebook is not UTF-8 text ({e.reason} at byte {e.start})") from None
    except OSError as e:
        raise ValueError(f"the notebook cannot be read ({e.strerror})") from None
    try:
        # a lone surrogate (valid JSON, "\ud800") could be neither executed nor written
        nb = nbformat.from_dict(clean.unicode_tree(json.loads(text)))
        nb = nbformat.convert(nb, 4)
    except Exception as e:
        raise ValueError(f"the notebook is not valid notebook JSON ({type(e).__name__}: "
                         f"{str(e).splitlines()[0][:200] if str(e) else ''})") from None
    if not isinstance(nb.get("cells"), list):
        raise ValueError("the notebook has no cells")
    for cell in nb.cells:  # as nbgrader: a format from the future is not guessed at
        version = nbgrader_meta(cell).get("schema_version", 0)
        if isinstance(version, int) and version > NBGRADER_SCHEMA:
            raise ValueError(f"a cell's nbgrader metadata has schema version {version}, newer "
                             f"than the {NBGRADER_SCHEMA} nbgrader and this grader know (was "
                             "the notebook edited with another tool?)")
    return nb


@dataclass
class Execution:
    """What ``execute`` brings back: the executed notebook (or None), the verdicts, why the
    run stopped early (words for people, or ''), the sandbox's walls, incidents, the
    compute seconds (the cells' and hidden tests'), whether it ran past the notebook's time
    limit, the grading process's peak memory, and ``finished``: whether every cell ran, the
    grading process ending as it should (what ``grade`` decides the Status on)."""
    executed: object
    verdicts: dict
    problem: str
    walls: dict
    incidents: list
    compute: float
    timed_out: bool = False
    grader_mib: float = 0.0
    finished: bool = False


def _run_child(job, limits, warm):
    """Run the grading process on ``job`` (forked from ``warm.grader`` when there is one);
    returns (why it failed, for people, or ''; whether it ran past the notebook's time
    limit; whether it failed: error.txt)."""
    forked = fork(warm.grader, job=str(job)) if warm.grader else None
    if forked is None:
        cmd = [sys.executable, "-m", "autograder.grading.child", str(job)]
        forked = subprocess.Popen(cmd, cwd=job.parent, stdin=subprocess.DEVNULL,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                  start_new_session=True,
                                  env={**os.environ, **thread_env(limits.threads)})
    problem, timed_out, failed = "", False, False
    try:
        forked.wait(timeout=limits.notebook_timeout)
    except subprocess.TimeoutExpired:
        problem = f"the notebook ran past the time limit of {limits.notebook_timeout} s"
        timed_out = True
    finally:
        kill_tree(forked.pid)
    error = job.parent / "error.txt"
    if not timed_out and error.is_file():
        problem = f"the grading process failed ({clean.text(error.read_text()[:200])})"
        failed = True
    return problem, timed_out, failed


ENDED_EARLY = "the grading process ended before the notebook's last cell"
_REMOVALS = []  # cgroups of finished kernels being removed, off the submissions' clock
_REMOVER = None


def _stop_kernels(status):
    """Kill what is left of the kernels the grading process started (it may have been
    killed before it could): their cgroups, or their process trees and sessions. A cgroup
    is removed in the background, once its last process is gone (``wait_for_removals``)."""
    global _REMOVER
    from concurrent.futures import ThreadPoolExecutor

    for k in status.get("kernels", []):
        if not isinstance(k, dict) or not isinstance(k.get("pid"), int) or k["pid"] <= 1:
            continue
        group = Cgroup.from_json(k.get("cgroup"))
        if group is None:
            kill_tree(k["pid"])
            kill_session(k["pid"])
            continue
        group.kill(wait=0.0)
        if _REMOVER is None:
            _REMOVER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cgroup-removal")
        _REMOVALS.append(_REMOVER.submit(group.remove))


def wait_for_removals():
    """Wait until every kernel's cgroup scheduled for removal is removed."""
    while _REMOVALS:
        _REMOVALS.pop().result()


def execute(nb, limits, warm=Warm(), name="submission.ipynb", private=Private(), inbox=None):
    """Run ``nb`` through the grader's process (``child``), the student's code in a sandboxed
    kernel that reads nothing of ``hidden_paths(private, this job's folder, inbox)``;
    returns an Execution."""
    with tempfile.TemporaryDirectory(prefix="grade-") as tmp:
        work, chan, io_dir = Path(tmp) / "work", Path(tmp) / "chan", Path(tmp) / "io"
        for d in (work, chan, io_dir):
            d.mkdir()
        src = io_dir / name
        nbformat.write(nb, str(src))
        job = {"notebook": str(src), "out_dir": str(io_dir), "work": str(work), "chan": str(chan),
               "cell_timeout": limits.cell_timeout,
               "hidden": hidden_paths(private, tmp, inbox),
               "sandbox": {"memory": int(limits.memory), "threads": limits.threads},
               "zygote": warm.kernel}
        (io_dir / "job.json").write_text(json.dumps(job))
        problem, timed_out, failed = _run_child(io_dir / "job.json", limits, warm)
        try:
            executed = nbformat.read(str(io_dir / "executed.ipynb"), as_version=4)
        except Exception:  # none yet: the process did not get that far
            executed = None
        verdicts, status = _read_dict(io_dir / "verdicts.json"), _read_dict(io_dir / "status.json")
        _stop_kernels(status)  # forked by the zygote: not in our tree
        finished = status.get("finished") is True and not timed_out and not failed
        if not finished:
            problem = problem or clean.text(status.get("why_stopped") or "", 500)
        incidents = [clean.text(i, 300) for i in status.get("incidents", [])][:10]
        cells = status.get("cell_seconds")
        # the notebook's own compute: its cells and hidden tests (not the kernel's start)
        compute = sum(v for v in cells.values() if isinstance(v, (int, float))) \
            if isinstance(cells, dict) else 0.0
        peak = status.get("grader_kib")
        return Execution(executed, verdicts, problem, status.get("walls", {}), incidents, compute,
                         timed_out, peak / 1024 if isinstance(peak, (int, float)) else 0.0,
                         finished)


def _read_dict(path):
    """The JSON object in ``path`` ({} when there is none, or it is not an object)."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def grade(source, submission, limits=None, warm=Warm(), private=Private(), inbox=None):
    """Grade one ``Submission`` against the source notebook, from the warm parents ``warm``,
    its kernel reading nothing of ``hidden_paths(private, ..., inbox)``; always returns a
    Result."""
    limits = limits or Limits()
    start = time.monotonic()
    if submission.notebook is None:
        result = zero(source, submission.student, Status.MISSING, submission.problem)
    else:
        try:
            submitted = read_submission(submission.notebook)
        except ValueError as e:
            result = zero(source, submission.student, Status.UNREADABLE, str(e))
        else:
            run = execute(prepare(source, submitted), limits, warm, private=private,
                          inbox=inbox)
            if run.executed is None:
                result = zero(source, submission.student, Status.CRASHED,
                              run.problem or "no output")
            else:
                status = Status.TIMEOUT if run.timed_out else \
                    Status.GRADED if run.finished else Status.CRASHED
                problem = run.problem or ("" if run.finished else ENDED_EARLY)
                reason = "; ".join([problem] * bool(problem) + run.incidents)
                result = Result(submission.student, status, reason, executed=run.executed,
                                walls=run.walls, compute=run.compute, grader_mib=run.grader_mib)
                score(source, run.verdicts, result)
    result.seconds = time.monotonic() - start
    return result
