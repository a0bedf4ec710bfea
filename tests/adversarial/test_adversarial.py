"""Every adversarial submission of cheats.py, graded in one run per assignment through
`autograder grade`, gets its pinned verdict; the run finishes within its limits, every
student has a recorded grade with a reason where one is due, nothing secret was readable,
and the feedback shows no hidden test.
"""
import json
import shutil
import sqlite3
import time

import pytest

from autograder import checks
from autograder.cli import main
from autograder.grading import notebooks

from . import cheats

ROOT = notebooks.ROOT
ASSIGNMENTS = ("rnn_bptt", "lstm")
CELL_TIMEOUT, NOTEBOOK_TIMEOUT, MEMORY_MIB = 10, 150, 3072
# a cheat in a solution cell: the cell defines the target, then stops the kernel or
# raises; the definition survives unless the kernel itself went down
EXIT_IN_CELL = {"sys_exit": "full", "raise_systemexit": "full", "raise_keyboardinterrupt": "full",
                "os_exit": "target zero", "kill_self": "target zero"}


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    root = tmp_path_factory.mktemp("adversarial-course")
    for a in ASSIGNMENTS:
        shutil.copytree(ROOT / "solutions" / a, root / "solutions" / a)
    assert main(["release", "--course", str(root)]) == 0
    return root


@pytest.fixture(scope="module")
def graded(course, tmp_path_factory):
    """{assignment: (expected, json results, wall seconds, class folder)}."""
    out = {}
    for a in ASSIGNMENTS:
        folder = tmp_path_factory.mktemp(f"class-{a}")
        expected = cheats.build_class(folder, a)
        js = folder.parent / f"{a}-results.json"
        start = time.monotonic()
        assert main(["grade", a, str(folder), "--course", str(course), "--json", str(js),
                     "--cell-timeout", str(CELL_TIMEOUT), "--timeout", str(NOTEBOOK_TIMEOUT),
                     "--memory", str(MEMORY_MIB), "--quiet"]) == 0
        out[a] = (expected, json.loads(js.read_text()), time.monotonic() - start, folder)
    return out


def _points(a):
    return {gid: c.points for gid, c in checks.load(a)[a].checks.items()}


def _want(a, verdict, student):
    """grade_id -> score the verdict asks for."""
    points = _points(a)
    if verdict == "exit in cell":
        verdict = EXIT_IN_CELL[student.removesuffix("_in_answer_cell")]
    zero = {"target zero": {f"test_{cheats.TARGET[a]}"}, "full": set(), "zero": set(points),
            "backward zero": {f"test_{cheats.BACKWARD[a]}"}}[verdict]
    return {gid: 0.0 if gid in zero else float(p) for gid, p in points.items()}


@pytest.mark.parametrize("a", ASSIGNMENTS)
def test_every_cheat_gets_its_pinned_verdict(graded, a):
    expected, results, _, _ = graded[a]
    assert set(results) == set(expected), "every student folder has a recorded grade"
    wrong = {}
    for student, verdict in expected.items():
        got = {gid: t["score"] for gid, t in results[student]["tests"].items()}
        if got != _want(a, verdict, student):
            wrong[student] = (verdict, got, results[student]["status"], results[student]["reason"])
    assert not wrong


@pytest.mark.parametrize("a", ASSIGNMENTS)
def test_a_failed_run_always_says_why(graded, a):
    expected, results, _, _ = graded[a]
    for student, verdict in expected.items():
        r = results[student]
        if verdict == "zero":
            assert r["status"] in ("missing", "unreadable") and r["reason"], student
        if student.endswith(("os_exit_at_top", "kill_self_at_top", "ignores_sigint")):
            assert "restarted" in r["reason"], (student, r["reason"])
    if a == "rnn_bptt":  # the one assignment that carries the 200 MB notebook
        assert "MiB" in results["notebook_200mb"]["reason"], results["notebook_200mb"]


@pytest.mark.parametrize("a", ASSIGNMENTS)
def test_the_run_stays_within_its_limits(graded, a):
    expected, results, seconds, _ = graded[a]
    jobs = 2
    assert seconds < len(expected) * NOTEBOOK_TIMEOUT / jobs
    # far less in practice: the slowest abuse is bounded by a few cell limits
    assert seconds < 60 + len(expected) * 12


def test_nothing_secret_was_readable(graded, course):
    import nbformat

    for a in ASSIGNMENTS:
        walls = graded[a][1]["reads_secrets"]["walls"]
        if not walls.get("landlock"):
            pytest.skip("no Landlock on this kernel: files the grading user can read are "
                        "readable by the student's kernel (README, Security model)")
        assert walls.get("network namespace") and walls.get("memory")
        assert walls.get("processes") or walls.get("cgroup")  # RLIMIT_NPROC, or pids.max
        assert walls.get("warm start")  # forked from the zygote
        path = course / "autograded" / "reads_secrets" / a / f"{a}.ipynb"
        nb = nbformat.read(str(path), as_version=4)
        lines = [o.get("text", "") for c in nb.cells for o in c.get("outputs", [])
                 if o.get("output_type") == "stream"]
        report = next(json.loads(t.split("SECRETS ", 1)[1].splitlines()[0])
                      for t in lines if "SECRETS " in t)
        assert report["wrote"] == []
        assert report["modules"] == []  # a warm kernel holds no grader code in memory
        for p in report["found"]:
            assert not any(s in p for s in ("solutions", "gradebook", "autograded", "class-",
                                            "job.json", "/checks/", "/io/")), p
    db = sqlite3.connect(course / "gradebook.db")
    assert max(s for (s,) in db.execute("select auto_score from grade where auto_score is not null")) <= 3


def test_feedback_shows_no_hidden_test(graded, course):
    for a in ASSIGNMENTS:
        assert main(["feedback", a, "--course", str(course)]) == 0
        for page in (course / "feedback").rglob("*.html"):
            text = page.read_text()
            for secret in ("run_check", "HIDDEN TESTS", "rng_for", "SECRETS"):
                assert secret not in text, (page, secret)


def test_what_the_grader_did_to_a_cell_is_said(graded, course):
    """A defused fork bomb is in the reason; output past the budget ends with a note, and so
    does a cell whose message the grader refused (test_sandbox: the later cells keep theirs)."""
    import nbformat

    results = graded["rnn_bptt"][1]
    assert "started too many processes; they were killed" in results["fork_bomb"]["reason"]
    path = course / "autograded" / "million_lines" / "rnn_bptt" / "rnn_bptt.ipynb"
    nb = nbformat.read(str(path), as_version=4)
    texts = [o.get("text", "") for c in nb.cells for o in c.get("outputs", [])
             if o.get("output_type") == "stream"]
    printed = sum(t.count("\n") for t in texts)
    assert any("[the grader cut the rest of this cell's output]" in t for t in texts)
    # what fits the budget (1 MiB) is kept, in whole lines, however the kernel flushed them
    assert (1 << 20) // 60 < printed <= (1 << 20) // 21
    path = course / "autograded" / "one_huge_message" / "rnn_bptt" / "rnn_bptt.ipynb"
    nb = nbformat.read(str(path), as_version=4)
    assert any("[the grader refused an output of this cell over its size limit (16 MiB)]"
               in o.get("text", "") for c in nb.cells for o in c.get("outputs", []))
