"""The grading CLI end to end on a small synthetic assignment (fast: no torch in the kernel).

Covers what an instructor relies on: every student gets a recorded grade with a reason
(missing, unreadable, crashed, timed out), locked cells are restored from the source, the
JSON, CSV, feedback and report, re-grades that keep manual grades, and `check`.
"""
import csv
import json

import nbformat
import pytest

from autograder.cli import main

HIDDEN_MARK = "SECRET_HIDDEN_INPUT_12345"


def toy_source():
    """A two-function assignment with a written question, in the course's cell format."""
    def meta(gid, grade, solution, locked, points=None):
        m = {"grade": grade, "grade_id": gid, "locked": locked, "schema_version": 3,
             "solution": solution, "task": False}
        if points is not None:
            m["points"] = points
        return {"nbgrader": m}

    cells = [
        nbformat.v4.new_markdown_cell("# Toy\nImplement `double` and `square`."),
        nbformat.v4.new_code_cell("import math", metadata=meta("setup", False, False, True)),
        nbformat.v4.new_code_cell("def double(x):\n    ### BEGIN SOLUTION\n    return 2 * x\n"
                                  "    ### END SOLUTION", metadata=meta("double", False, True, False)),
        nbformat.v4.new_code_cell("assert double(2) == 4, 'double(2) should be 4'\n"
                                  "### BEGIN HIDDEN TESTS\n"
                                  f"assert double(7) == 14, 'wrong on a hidden case'  # {HIDDEN_MARK}\n"
                                  "### END HIDDEN TESTS",
                                  metadata=meta("test_double", True, False, True, 2)),
        nbformat.v4.new_code_cell("def square(x):\n    ### BEGIN SOLUTION\n    return x * x\n"
                                  "    ### END SOLUTION", metadata=meta("square", False, True, False)),
        nbformat.v4.new_code_cell("import sys\nprint('a warning', file=sys.stderr)\n"
                                  "assert square(3) == 9, 'square(3) should be 9'",
                                  metadata=meta("test_square", True, False, True, 1)),
        nbformat.v4.new_markdown_cell("Why?\n\n=== model answer ===",
                                      metadata=meta("written_why", True, True, False, 2)),
    ]
    return nbformat.v4.new_notebook(cells=cells, metadata={
        "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    root = tmp_path_factory.mktemp("course")
    (root / "solutions" / "toy").mkdir(parents=True)
    nbformat.write(toy_source(), str(root / "solutions" / "toy" / "toy.ipynb"))
    assert main(["release", "toy", "--course", str(root)]) == 0
    return root


def released(course):
    return nbformat.read(str(course / "exercises" / "toy" / "toy.ipynb"), as_version=4)


def answer(nb, gid, code):
    for c in nb.cells:
        if c.metadata.get("nbgrader", {}).get("grade_id") == gid:
            c.source = code
    return nb


def write(folder, name, nb_or_text):
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    if isinstance(nb_or_text, (str, bytes)):
        path.write_bytes(nb_or_text.encode() if isinstance(nb_or_text, str) else nb_or_text)
    else:
        nbformat.write(nb_or_text, str(path))
    return path


@pytest.fixture(scope="module")
def graded(course, tmp_path_factory):
    """Grade a class with one student per situation; returns (json, submissions folder)."""
    subs = tmp_path_factory.mktemp("subs")
    good = "def double(x):\n    return x + x"
    plots = ("import matplotlib.pyplot as plt\nplt.plot([1, 4, 9])\nplt.title('my plot')\nplt.show()\n"
             "plt.figure()\nplt.plot([1, 2])\n")  # one figure shown, one left for the cell's end
    write(subs / "ann", "whatever I called it.ipynb",
          answer(answer(released(course), "double", good), "square", plots + "def square(x):\n    return x ** 2"))
    write(subs / "ben", "toy.ipynb", answer(released(course), "double", good))  # square missing
    # hard-coded for the visible case, and the test cell emptied and the other one deleted
    tampered = answer(released(course), "double", "def double(x):\n    return 4 if x == 2 else 0")
    answer(tampered, "test_double", "pass  # the student emptied the test")
    tampered.cells = [c for c in tampered.cells
                      if c.metadata.get("nbgrader", {}).get("grade_id") != "test_square"]
    write(subs / "cat", "toy.ipynb", tampered)
    write(subs / "dan", "toy.ipynb", "{ this is not json")
    write(subs / "eve", "toy.ipynb", b"\xff\xfe not utf-8")
    (subs / "fay").mkdir()
    write(subs / "gus", "toy.ipynb", answer(released(course), "double",
                                            "import os\nos._exit(0)"))
    write(subs / "hal", "toy.ipynb", answer(answer(released(course), "double",
                                                   "while True:\n    pass"), "square",
                                            "def square(x):\n    return x * x"))
    bom = nbformat.writes(answer(released(course), "double", good))
    write(subs / "ivy" / "submitted" / "toy", "toy.ipynb", "\ufeff" + bom)
    write(subs / "jon", "a.ipynb", released(course))
    write(subs / "jon", "b.ipynb", released(course))
    out = subs.parent / "grades.json"
    assert main(["grade", "toy", str(subs), "--course", str(course), "--json", str(out),
                 "--cell-timeout", "5", "--quiet"]) == 0
    return json.loads(out.read_text()), subs


def test_the_kernels_share_the_cores_out(tmp_path, monkeypatch):
    """Two submissions at once: each kernel starts cores / 2 threads in its numeric libraries
    (side by side, a thread per core each would spin-wait), unless the environment says."""
    from autograder.grading import kernel

    (tmp_path / "solutions" / "toy").mkdir(parents=True)
    nbformat.write(toy_source(), str(tmp_path / "solutions" / "toy" / "toy.ipynb"))
    assert main(["release", "toy", "--course", str(tmp_path)]) == 0
    probe = ("import os, torch\nprint('threads', os.environ.get('OMP_NUM_THREADS'), "
             "os.environ.get('OPENBLAS_NUM_THREADS'), torch.get_num_threads())\n"
             "def double(x):\n    return x + x")
    for student in ("kim", "lee"):
        write(tmp_path / "subs" / student, "toy.ipynb", answer(released(tmp_path), "double", probe))

    def threads(student):
        nb = nbformat.read(str(tmp_path / "autograded" / student / "toy" / "toy.ipynb"), as_version=4)
        cell = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "double")
        return "".join(o.get("text", "") for o in cell.outputs)

    for k in kernel.THREAD_VARIABLES:
        monkeypatch.delenv(k, raising=False)
    assert main(["grade", "toy", str(tmp_path / "subs"), "--course", str(tmp_path),
                 "--jobs", "2", "--quiet"]) == 0
    n = kernel.threads_per_job(2)
    assert threads("kim") == threads("lee") == f"threads {n} {n} {n}\n"
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # the instructor's own setting stands
    assert main(["grade", "toy", str(tmp_path / "subs"), "--course", str(tmp_path),
                 "--jobs", "1", "--quiet"]) == 0
    assert threads("kim") == "threads 1 None 1\n"


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "2"])
def test_a_bad_thread_count_is_named(bad):
    from autograder.grading import kernel

    with pytest.raises(ValueError, match="threads: expected a positive int or None"):
        kernel.thread_env(bad)


def test_every_student_gets_a_grade_with_a_reason(graded):
    g, _ = graded
    assert sorted(g) == ["ann", "ben", "cat", "dan", "eve", "fay", "gus", "hal", "ivy", "jon"]
    assert g["ann"]["score"] == 3 and g["ann"]["status"] == "graded"
    assert g["ivy"]["score"] == 2  # nbgrader's layout and a UTF-8 BOM
    assert g["ben"]["tests"] == {"test_double": {"score": 2, "max_score": 2},
                                 "test_square": {"score": 0, "max_score": 1}}
    for s, status, words in [("dan", "unreadable", "JSON"), ("eve", "unreadable", "UTF-8"),
                             ("fay", "missing", "no notebook"),
                             # the kernel is restarted and the rest of the notebook graded
                             ("gus", "graded", "kernel died in cell 3; the kernel was restarted"),
                             ("jon", "missing", "several notebooks")]:
        assert g[s]["score"] == 0 and g[s]["status"] == status and words in g[s]["reason"], s


def test_the_executed_notebook_shows_the_students_figures(course, graded):
    """The formgrader shows what autograded/ holds: a cell's figures are PNG outputs there."""
    import base64

    nb = nbformat.read(str(course / "autograded" / "ann" / "toy" / "toy.ipynb"), as_version=4)
    cell = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "square")
    pngs = [o.data["image/png"] for o in cell.outputs if "image/png" in o.get("data", {})]
    assert len(pngs) == 2, cell.outputs
    for png in pngs:
        raw = base64.b64decode(png)
        assert raw.startswith(b"\x89PNG") and 1000 < len(raw) < (1 << 20)


def test_locked_cells_are_restored_from_the_source(graded):
    g, _ = graded
    assert g["cat"]["tests"]["test_double"]["score"] == 0  # the emptied test ran in full
    assert g["cat"]["tests"]["test_square"]["max_score"] == 1  # the deleted test came back


def test_a_course_test_cell_shows_the_instructor_what_the_student_saw():
    """In the graded notebook (what the formgrader shows), a course test cell holds the
    visible tests the student saw, a line saying which part is the grade, and the call of the
    hidden check; the check's inputs are not in the notebook, and no hidden-block marker is."""
    from pathlib import Path

    from autograder.grading.child import course_check
    from autograder.grading.runner import GRADED_BY_CHECK, prepare

    root = Path(__file__).resolve().parents[1]
    source = nbformat.read(str(root / "solutions" / "lstm" / "lstm.ipynb"), as_version=4)
    student = nbformat.read(str(root / "exercises" / "lstm" / "lstm.ipynb"), as_version=4)
    student.cells = [c for c in student.cells  # a student who deleted a test cell
                     if c.metadata.get("nbgrader", {}).get("grade_id") != "test_lstm_forward"]
    nb = prepare(source, student)
    tests = {c.metadata["nbgrader"]["grade_id"]: c for c in nb.cells
             if c.metadata.get("nbgrader", {}).get("grade_id", "").startswith("test_")}
    assert set(tests) >= {"test_lstm_param_count", "test_lstm_forward"}
    cell = tests["test_lstm_param_count"]
    visible = next(c for c in student.cells
                   if c.metadata.get("nbgrader", {}).get("grade_id") == "test_lstm_param_count")
    assert cell.source.startswith(visible.source.rstrip())
    assert cell.source.endswith(GRADED_BY_CHECK + "from autograder.checks import run_check\n"
                                "run_check(\"lstm\", \"test_lstm_param_count\", globals())\n")
    assert course_check(cell) == ("lstm", "test_lstm_param_count")
    for c in tests.values():
        assert "HIDDEN TESTS" not in c.source and course_check(c) is not None, c.source


def test_an_endless_cell_costs_only_its_own_tests(graded):
    g, _ = graded
    assert g["hal"]["tests"]["test_double"]["score"] == 0
    assert g["hal"]["tests"]["test_square"]["score"] == 1


def test_export_feedback_and_report(course, graded):
    out = course / "grades.csv"
    assert main(["export", "--course", str(course), "--to", str(out)]) == 0
    rows = {r["student"]: r for r in csv.DictReader(out.open())}
    assert rows["ann"]["score"] == "3.0" and rows["ann"]["max_score"] == "5.0"
    assert rows["dan"]["status"] == "unreadable"
    assert main(["feedback", "toy", "--course", str(course)]) == 0
    page = (course / "feedback" / "cat" / "toy" / "toy.html").read_text()
    assert "wrong on a hidden case" in page and HIDDEN_MARK not in page and "double(7)" not in page
    assert "written answer" in page
    assert main(["report", "toy", "--course", str(course)]) == 0
    report = (course / "reports" / "toy.html").read_text()
    assert report.count("data:image/png;base64,") == 2 and "test_double" in report
    # the toy's tests are plain asserts: a failed one is of kind "other", with an example
    assert "<td>test_double</td><td>3 / 10</td><td><b>other</b><br><small>e.g. " in report


def formgrader_sets(db, student, grade_id, score, comment=None):
    """What the formgrader's grade and comment handlers do when the instructor types a score
    (nbgrader.server_extensions.formgrader.apihandlers.GradeHandler.put)."""
    from nbgrader.api import Gradebook

    with Gradebook(db) as gb:
        grade = gb.find_grade(grade_id, "toy", "toy", student)
        grade.manual_score = score
        grade.needs_manual_grade = score is None and grade.auto_score is None
        if comment is not None:
            gb.find_comment(grade_id, "toy", "toy", student).manual_comment = comment
        gb.db.commit()


def figures(course, db, json_path):
    """Every figure of ann's and ben's grades, as each place shows it."""
    from nbgrader.api import Gradebook

    assert main(["export", "--course", str(course), "--to", str(course / "grades.csv")]) == 0
    rows = {r["student"]: r for r in csv.DictReader((course / "grades.csv").open())}
    assert main(["feedback", "toy", "--course", str(course)]) == 0
    pages = {s: (course / "feedback" / s / "toy" / "toy.html").read_text() for s in ("ann", "ben")}
    with Gradebook(db) as gb:  # what the formgrader shows: nbgrader's own figures
        formgrader = {s: (gb.find_submission("toy", s).score, gb.find_submission("toy", s).needs_manual_grade,
                          gb.find_grade("test_square", "toy", "toy", s).score) for s in ("ann", "ben")}
    return rows, pages, formgrader, json.loads(json_path.read_text())


def test_the_instructors_grades_stand_and_every_figure_agrees(course, graded):
    """The rule: an override stands until the instructor removes it; a re-grade changes only
    autograded scores. Formgrader, export, feedback, report and --json agree on every figure."""
    _, subs = graded
    db = f"sqlite:///{course / 'gradebook.db'}"
    formgrader_sets(db, "ann", "written_why", 1.5, comment="Right: $\\sigma'(x) \\le 1/4$, so it *vanishes*.")
    formgrader_sets(db, "ben", "test_square", 1.0)  # ben's square was missing: the instructor gives the point
    out = course / "regrade.json"
    assert main(["grade", "toy", str(subs), "--course", str(course), "--cell-timeout", "5",
                 "--quiet", "--json", str(out)]) == 0
    rows, pages, fg, doc = figures(course, db, out)

    # ann: 3 / 3 on the tests, 1.5 / 2 written: 4.5 / 5 everywhere
    assert fg["ann"][:2] == (4.5, False)
    assert (rows["ann"]["score"], rows["ann"]["tests_score"], rows["ann"]["written_score"]) == ("4.5", "3.0", "1.5")
    assert rows["ann"]["needs_manual_grade"] == "False" and rows["ann"]["max_score"] == "5.0"
    assert doc["ann"]["total"] == 4.5 and doc["ann"]["max_total"] == 5
    assert doc["ann"]["written"] == {"written_why": {"score": 1.5, "max_score": 2.0}}
    assert "<b id='total'>4.5 / 5</b>" in pages["ann"] and "<td>1.5 / 2</td>" in pages["ann"]
    assert "<math" in pages["ann"] and "<em>vanishes</em>" in pages["ann"]  # the comment, math as MathML
    assert "<script" not in pages["ann"].lower()

    # ben: the override stands after the re-grade, counted once, never flagged for review again
    assert fg["ben"] == (3.0, True, 1.0)  # 2 + 1 on the tests; the written answer is pending
    assert (rows["ben"]["score"], rows["ben"]["tests_score"], rows["ben"]["written_score"]) == ("3.0", "3.0", "")
    assert rows["ben"]["overridden"] == "test_square" and rows["ben"]["needs_manual_grade"] == "True"
    assert doc["ben"]["score"] == 3 and doc["ben"]["total"] == 3
    assert doc["ben"]["tests"]["test_square"] == {"score": 1.0, "max_score": 1.0, "auto_score": 0.0,
                                                  "overridden": True}
    assert "<b id='total'>3 / 5 so far</b>" in pages["ben"] and "points set by the instructor" in pages["ben"]
    assert "not graded yet" in pages["ben"]
    from nbgrader.api import Gradebook

    with Gradebook(db) as gb:
        assert not gb.find_grade("test_square", "toy", "toy", "ben").needs_manual_grade
        assert len(gb.find_assignment("toy").submissions) == 10  # updated, not doubled
    assert main(["report", "toy", "--course", str(course)]) == 0
    report = (course / "reports" / "toy.html").read_text()
    assert "<td>test_square</td><td>3 / 10</td>" in report  # ben's overridden test counts as passed

    # the instructor removes the override: the autograded score is back, everywhere
    formgrader_sets(db, "ben", "test_square", None)
    rows, pages, fg, _ = figures(course, db, out)
    assert fg["ben"] == (2.0, True, 0.0) and rows["ben"]["overridden"] == ""
    assert "<b id='total'>2 / 5 so far</b>" in pages["ben"]


def test_check_lists_the_visible_tests(course, graded, capsys):
    _, subs = graded
    assert main(["check", str(subs / "ben" / "toy.ipynb")]) == 1
    out = capsys.readouterr().out
    assert "test_double       2  passed" in out and "test_square       1  FAILED" in out


def test_bad_arguments_are_one_line_errors(course, capsys):
    assert main(["grade", "nope", str(course), "--course", str(course)]) == 2
    assert "assignment: no notebook" in capsys.readouterr().err


def test_only_a_usage_error_is_reported_as_one(course, monkeypatch, capsys):
    """A mistake of the user (UsageError) is one line and status 2; any other ValueError
    is a bug of ours and keeps its traceback (it was once reported as 'bad arguments')."""
    from autograder import cli

    def bug(args):
        raise ValueError("an internal inconsistency")

    monkeypatch.setattr(cli, "cmd_report", bug)
    with pytest.raises(ValueError, match="internal inconsistency"):
        cli.main(["report", "toy", "--course", str(course)])
    assert main(["grade", "toy", str(course / "no such folder"), "--course", str(course)]) == 2
    assert "submissions:" in capsys.readouterr().err


# ----------------------------------------------------------------------------- the path's fields
def test_what_a_kernel_must_not_read_is_made_in_one_place(tmp_path):
    """``runner.hidden_paths``: the course (solutions/, submitted/, autograded/, feedback/),
    the class's folder, the gradebook's folder, the grader's package (the checks and the
    reference), the job's folder and a worker's inbox, each resolved and once."""
    import dataclasses
    from pathlib import Path

    import autograder
    from autograder.grading import runner

    course, folder, db = tmp_path / "course", tmp_path / "class", tmp_path / "db"
    private = runner.Private(str(course), str(folder), f"sqlite:///{db / 'gradebook.db'}")
    package = str(Path(autograder.__file__).resolve().parent)
    job, inbox = tmp_path / "grade-1", tmp_path / "inbox"
    assert runner.hidden_paths(private, job, inbox) == [
        str(course), str(folder), str(db), package, str(job), str(inbox)]
    hidden = runner.hidden_paths(private, job)
    for place in (course / "solutions", course / "submitted", course / "autograded",
                  course / "feedback", db / "gradebook.db", Path(package) / "checks",
                  Path(package) / "reference", job / "io" / "job.json", job / "work"):
        assert any(str(place).startswith(h + "/") for h in hidden), place
    # a gradebook on a server has no folder; the course's own gradebook is in the course
    server = runner.Private(str(course), str(folder), "postgresql://grader@db/course")
    assert runner.hidden_paths(server, job) == [str(course), str(folder), package, str(job)]
    inside = runner.Private(str(course), str(course / "submitted"),
                            f"sqlite:///{course / 'gradebook.db'}")
    assert runner.hidden_paths(inside, job) == [str(course), str(course / "submitted"),
                                                package, str(job)]
    assert "hidden" not in {f.name for f in dataclasses.fields(runner.Limits)}  # configuration


def test_every_route_hides_what_hidden_paths_makes(course, tmp_path, monkeypatch):
    """The command hands ``runner.grade`` the course's places (a Private, Limits left as
    configured); ``execute`` writes hidden_paths' list into job.json, which a grading
    process started cold or forked warm reads alike; the grading process gives it to its
    Kernel unchanged, whose sandbox spec is made from it alone (``kernel.readable``). The
    cluster's route is in test_grading_cluster."""
    import dataclasses
    from pathlib import Path

    from autograder.grading import child, classroom, kernel, runner
    from autograder.grading.course import Course
    from autograder.grading.outcomes import Status

    # the command: the course's places travel as a Private; the Limits stay as given
    seen = []

    def fake_grade(source, sub, limits, warm, private):
        seen.append((limits, private))
        return runner.zero(source, sub.student, Status.MISSING, "not graded here")

    class Idle:
        def wait(self):
            return None

    monkeypatch.setattr(runner, "grade", fake_grade)
    monkeypatch.setattr(kernel, "start_zygotes", lambda stack, threads=None: (Idle(), Idle()))
    root = tmp_path / "course"
    (root / "solutions" / "toy").mkdir(parents=True)
    nbformat.write(toy_source(), str(root / "solutions" / "toy" / "toy.ipynb"))
    write(tmp_path / "class" / "kim", "toy.ipynb", released(course))
    limits = runner.Limits(threads=1)
    before = dataclasses.replace(limits)
    classroom.grade_class(Course(root), "toy", tmp_path / "class", jobs=1, limits=limits,
                          progress=False)
    assert limits == before and seen[0][0] == before
    assert seen[0][1] == runner.Private(str(root.resolve()), str((tmp_path / "class").resolve()),
                                        f"sqlite:///{root.resolve() / 'gradebook.db'}")

    # execute: job.json holds hidden_paths' list for this job's folder
    jobs = []

    def fake_child(job, limits, warm):
        jobs.append(json.loads(job.read_text()))
        return "", False, False

    monkeypatch.setattr(runner, "_run_child", fake_child)
    private = seen[0][1]
    runner.execute(toy_source(), runner.Limits(), private=private)
    job = jobs[0]
    assert job["hidden"] == runner.hidden_paths(private, Path(job["out_dir"]).parent)

    # the grading process: its Kernel gets the list as it is
    class NoKernel:
        def __init__(self, work, chan, hidden=(), sandbox=None, zygote=None):
            self.hidden, self.proc = list(hidden), None

        def start(self):
            raise RuntimeError("the kernel did not start")

    monkeypatch.setattr(kernel, "Kernel", NoKernel)
    nb_path = tmp_path / "job" / "submission.ipynb"
    nb_path.parent.mkdir()
    nbformat.write(toy_source(), str(nb_path))
    grading = child.Grading({**job, "notebook": str(nb_path), "out_dir": str(nb_path.parent)})
    grading.run()
    assert grading.kernel.hidden == job["hidden"]
    monkeypatch.undo()

    # the kernel's sandbox: what it may read is decided on that list alone
    asked = []
    monkeypatch.setattr(kernel, "readable", lambda hidden: asked.append(hidden) or ([], {}, []))
    k = kernel.Kernel(tmp_path / "work", tmp_path / "grade" / "chan" / "k1", hidden=job["hidden"])
    k.spec(None, [])
    assert asked == [job["hidden"]]


def test_how_a_run_ended_is_read_from_typed_fields(tmp_path, monkeypatch):
    """The Status of a submission follows status.json's ``finished`` (and the time limit,
    and a failed grading process), never whether a text is empty; the words for the
    instructor are ``why_stopped``; the compute time is the sum of ``cell_seconds``."""
    from autograder.grading import child, kernel, runner
    from autograder.grading.submissions import Submission

    path = write(tmp_path / "kim", "toy.ipynb", toy_source())

    def graded(status, timed_out=False, failed=False):
        def fake_child(job, limits, warm):
            out = job.parent
            nbformat.write(toy_source(), str(out / "executed.ipynb"))
            (out / "verdicts.json").write_text(json.dumps(
                {"test_double": {"passed": True, "message": "", "kind": None, "hint": None}}))
            (out / "status.json").write_text(json.dumps(status))
            problem = "the notebook ran past the time limit of 9 s" if timed_out else \
                "the grading process failed (OSError: x)" if failed else ""
            return problem, timed_out, failed

        monkeypatch.setattr(runner, "_run_child", fake_child)
        return runner.grade(toy_source(), Submission("kim", path), runner.Limits())

    done = {"finished": True, "why_stopped": "", "cell_seconds": {"2": 1.5, "4": 0.25},
            "kernel_seconds": [9.0], "incidents": []}
    r = graded(done)
    assert (r.status, r.reason, r.compute) == ("graded", "", 1.75)
    assert r.tests["test_double"]["score"] == 2
    # a leftover text in an old field decides nothing
    assert graded({**done, "stopped": "the kernel died"}).status == "graded"
    r = graded({**done, "finished": False, "why_stopped": "the kernel died in cell 4"})
    assert (r.status, r.reason) == ("crashed", "the kernel died in cell 4")
    assert r.tests["test_square"]["message"] == "not run: the kernel died in cell 4"
    r = graded({**done, "finished": False, "why_stopped": ""})
    assert (r.status, r.reason) == ("crashed", runner.ENDED_EARLY)
    assert graded({**done, "finished": False}, timed_out=True).status == "timeout"
    assert graded(done, timed_out=True).status == "timeout"
    assert graded(done, failed=True).status == "crashed"

    # the grading process writes them: a kernel that cannot start stops it, with its words
    class NoKernel:
        def __init__(self, *args, **kwargs):
            self.proc = None

        def start(self):
            raise RuntimeError("the kernel did not start")

    monkeypatch.setattr(kernel, "Kernel", NoKernel)
    (tmp_path / "job").mkdir()
    grading = child.Grading({"notebook": str(path), "out_dir": str(tmp_path / "job"),
                             "work": str(tmp_path / "w"), "chan": str(tmp_path / "c"),
                             "cell_timeout": 5, "hidden": [], "sandbox": {}})
    grading.run()
    grading.save()
    status = json.loads((tmp_path / "job" / "status.json").read_text())
    assert status["finished"] is False and status["why_stopped"] == "the kernel did not start"
    assert status["cell_seconds"] == {} and "seconds" not in status


def test_what_the_formgrader_shows_of_a_cell_is_never_blank(course, graded):
    """Every error box of an executed notebook has its text in the traceback nbconvert draws
    (an endless cell's TimeoutError, a failed test), and every cell that ran has its number."""
    nb = nbformat.read(str(course / "autograded" / "hal" / "toy" / "toy.ipynb"), as_version=4)
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs
              if o.output_type == "error"]
    assert any(o.ename == "TimeoutError" for o in errors)
    for o in errors:
        assert "".join(o.traceback).strip(), o
    ran = [c for c in nb.cells if c.cell_type == "code" and c.outputs]
    assert ran and all(c.execution_count for c in ran)


def test_a_figure_over_the_output_budget_is_cut_with_a_note(tmp_path):
    """A figure counts against the cell's output budget (1 MiB) like any output: one larger
    than that is not in the executed notebook, and the cell says why; the grade stands."""
    root = tmp_path / "course"
    (root / "solutions" / "toy").mkdir(parents=True)
    nbformat.write(toy_source(), str(root / "solutions" / "toy" / "toy.ipynb"))
    assert main(["release", "toy", "--course", str(root)]) == 0
    big = ("import numpy as np\nimport matplotlib.pyplot as plt\n"
           "plt.figure(figsize=(12, 12), dpi=100)\n"
           "plt.imshow(np.random.default_rng(0).random((1200, 1200, 3)))\nplt.show()\n"
           "def square(x):\n    return x * x")
    subs = tmp_path / "subs"
    write(subs / "big", "toy.ipynb", answer(released(root), "square", big))
    out = tmp_path / "grades.json"
    assert main(["grade", "toy", str(subs), "--course", str(root), "--json", str(out),
                 "--quiet"]) == 0
    assert json.loads(out.read_text())["big"]["tests"]["test_square"]["score"] == 1
    nb = nbformat.read(str(root / "autograded" / "big" / "toy" / "toy.ipynb"), as_version=4)
    cell = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "square")
    pngs = [o for o in cell.outputs if "image/png" in o.get("data", {})]
    assert not pngs  # the 1200 x 1200 noise image is several times OUTPUT_BUDGET
    assert any("[the grader cut the rest of this cell's output]" in o.get("text", "") for o in cell.outputs)
