"""The instructor's term in nbgrader's own tools: a class of four `lstm` submissions graded
by `autograder grade`, then
the formgrader of a real Jupyter server started in the course folder, and nbgrader's own
commands (generate_feedback, autograde) run from it as an instructor would type them. Every
test runs twice: on a SQLite gradebook in the course folder, and on a PostgreSQL server
(named by db_url in the course's nbgrader_config.py and by --db on the command line).

What must hold (issue: the instructor's term, end to end): the formgrader counts and lists
the submissions with their times and names; a fresh server logs no exchange or root
warning; the grading page loads MathJax from this server, not a CDN; nbgrader's
generate_feedback writes the very page `autograder feedback` writes; nbgrader's autograde
(the formgrader's Autograde button) grades in the sandbox, as `autograder grade` does.
"""
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest

from autograder.cli import main
from solved import filled
from test_grading_cli import answer, write
from test_grading_postgres import pg_server  # noqa: F401 (the PostgreSQL server fixture)

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
TOKEN = "formgrader-test"


def released(course):
    return nbformat.read(str(course / "exercises" / "lstm" / "lstm.ipynb"), as_version=4)


MATH_ANSWER = "The forget gate's bias starts the cell open: $\\prod_t f_t \\approx 1$ at first."


DB = {}  # course folder -> the URL of its gradebook


def cli(course, *args):
    """An `autograder` command on ``course`` and its gradebook; its exit status."""
    return main([*args, "--course", str(course), "--db", DB[course]])


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def course(request, tmp_path_factory):
    """A course folder (the repository's solutions of lstm and its nbgrader_config.py) and a
    graded class of four: kim (everything right, a written answer of her own with math and
    the peephole derivation as the model answer gives it), lee (one
    mistake: lstm_param_count forgets the bias), choi (lstm_forward ignores c0) and park
    (the release as it was handed out)."""
    root = tmp_path_factory.mktemp("course")
    (root / "solutions").mkdir()
    shutil.copytree(REPO / "solutions" / "lstm", root / "solutions" / "lstm")
    shutil.copy(REPO / "nbgrader_config.py", root)
    DB[root] = f"sqlite:///{root / 'gradebook.db'}"
    if request.param == "postgresql":
        import uuid

        import sqlalchemy as sa

        server = request.getfixturevalue("pg_server")
        name = f"formgrader_{uuid.uuid4().hex[:10]}"
        admin = sa.create_engine(server, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        admin.dispose()
        DB[root] = sa.engine.make_url(server).set(database=name).render_as_string(hide_password=False)
        with open(root / "nbgrader_config.py", "a") as f:  # as the guide tells the instructor
            f.write(f"\nc.CourseDirectory.db_url = {DB[root]!r}\n")
    assert cli(root, "release", "lstm") == 0
    subs = root / "submissions"
    write(subs / "kim", "lstm.ipynb", answer(filled("lstm"), "written_highway", MATH_ANSWER))
    write(subs / "lee", "lstm.ipynb", filled("lstm", {"lstm_param_count": (
        "4 * (D * H + H * H + H)", "4 * (D * H + H * H)")}))
    write(subs / "choi", "lstm.ipynb", filled("lstm", {"lstm_forward": (
        "if c0 is None:\n        c0 = np.zeros((N, H))", "c0 = np.zeros((N, H))")}))
    write(subs / "park", "lstm.ipynb", released(root))
    os.utime(subs / "lee" / "lstm.ipynb", (1_700_000_000, 1_700_000_000))  # submitted 2023-11-14
    assert cli(root, "grade", "lstm", str(subs), "--quiet", "--json", str(root / "grades.json")) == 0
    if request.param == "postgresql":
        assert not (root / "gradebook.db").exists()  # it all went to the server
    return root


def run(course, *cmd):
    """An instructor's command, typed in the course folder."""
    out = subprocess.run([str(BIN / cmd[0]), *cmd[1:]], cwd=course, capture_output=True, text=True,
                         env={**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"},
                         timeout=600)
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout + out.stderr


@pytest.fixture(scope="module")
def server(course):
    """`jupyter lab` started in the course folder, as the instructor's guide says."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = open(course / "server.log", "w")
    proc = subprocess.Popen([str(BIN / "jupyter"), "lab", "--no-browser", "--allow-root",
                             f"--port={port}", "--ip=127.0.0.1", f"--IdentityProvider.token={TOKEN}"],
                            cwd=course, stdout=log, stderr=subprocess.STDOUT,
                            env={**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"})
    url = f"http://127.0.0.1:{port}"
    for _ in range(120):
        try:
            get(url, "/api/status")
            break
        except OSError:
            time.sleep(0.5)
    else:
        proc.kill()
        pytest.fail((course / "server.log").read_text())
    yield url
    proc.terminate()
    proc.wait(30)
    log.close()


def get(url, path):
    req = urllib.request.Request(url + path, headers={"Authorization": f"token {TOKEN}"})
    with urllib.request.urlopen(req, timeout=60) as r:
        return r.read().decode()


def test_the_formgrader_counts_and_lists_the_submissions(course, server):
    lstm = next(a for a in json.loads(get(server, "/formgrader/api/assignments")) if a["name"] == "lstm")
    assert lstm["num_submissions"] == 4  # nbgrader counts submitted/<student>/lstm/ on disk
    subs = {s["student"]: s for s in json.loads(get(server, "/formgrader/api/submissions/lstm"))}
    assert set(subs) == {"kim", "lee", "choi", "park"}
    assert subs["lee"]["display_timestamp"].startswith("2023-11-14 22:13:20")  # the file's time
    assert (subs["kim"]["last_name"], subs["kim"]["first_name"]) == ("kim", "")  # not "None, None"
    assert (subs["kim"]["score"], subs["lee"]["score"], subs["choi"]["score"], subs["park"]["score"]) == \
        (18, 17, 16, 0)  # the tests' 18 points; the two written questions (4) not graded yet
    assert (course / "submitted" / "lee" / "lstm" / "timestamp.txt").read_text().startswith(
        "2023-11-14 22:13:20")


def test_a_fresh_server_in_the_course_starts_clean(course, server):
    page = get(server, "/formgrader/manage_assignments")
    assert "alert-warning" not in page and "alert-danger" not in page  # no exchange banner
    get(server, "/formgrader/gradebook/lstm/lstm")
    log = (course / "server.log").read_text()
    assert "Unwritable directory" not in log and "is not absolute" not in log, log
    assert (course / "exchange").is_dir()


def test_the_grading_page_loads_mathjax_from_this_server(course, server):
    notebooks = json.loads(get(server, "/formgrader/api/submitted_notebooks/lstm/lstm"))
    kim = next(n for n in notebooks if n["student"] == "kim")
    page = get(server, f"/formgrader/submissions/{kim['id']}/?index=0")
    assert "cdnjs" not in page and '<script src="/static/jupyter_server_mathjax/MathJax.js' in page
    assert "MathJax.Hub" in get(server, "/static/jupyter_server_mathjax/MathJax.js")
    assert "data:image/png;base64," in page  # kim's plot, in the page the instructor grades on


def test_nbgrader_generate_feedback_writes_the_same_page(course):
    assert cli(course, "feedback", "lstm") == 0
    ours = {s: (course / "feedback" / s / "lstm" / "lstm.html").read_bytes() for s in ("kim", "lee", "choi", "park")}
    shutil.rmtree(course / "feedback")
    run(course, "nbgrader", "generate_feedback", "lstm", "--force")
    theirs = {s: (course / "feedback" / s / "lstm" / "lstm.html").read_bytes() for s in ours}
    assert theirs == ours
    assert b"written answer" in ours["kim"] and b"cdn" not in ours["kim"]


def test_nbgrader_autograde_grades_in_the_sandbox(course):
    """The formgrader's Autograde button runs nbgrader autograde: it must grade as
    `autograder grade` does (the hidden checks outside the kernel, the same verdicts)."""
    from nbgrader.api import Gradebook

    from autograder.grading import records

    db = DB[course]
    before = json.loads((course / "grades.json").read_text())["lee"]["tests"]
    stamps = records.graded_students(db, "lstm")
    graded_at = stamps["lee"]
    run(course, "nbgrader", "autograde", "lstm", "--student", "lee", "--force")
    assert records.graded_students(db, "lstm")["lee"] > graded_at  # our grader ran, in its sandbox
    with Gradebook(db) as gb:
        grades = {g: gb.find_grade(g, "lstm", "lstm", "lee").auto_score for g in before}
    assert grades == {g: t["score"] for g, t in before.items()}
    nb = nbformat.read(str(course / "autograded" / "lee" / "lstm" / "lstm.ipynb"), as_version=4)
    texts = [o.get("text", "") + "".join(o.get("traceback", [])) for c in nb.cells
             if c.cell_type == "code" for o in c.outputs]
    assert any("hidden tests of lstm_param_count: failed" in t for t in texts)  # lee's mistake
    assert records.graded_students(db, "lstm")["kim"] == stamps["kim"]  # only lee was graded again
    with Gradebook(db) as gb:  # a re-grade keeps the time lee submitted at
        assert str(gb.find_submission("lstm", "lee").timestamp).startswith("2023-11-14 22:13:20")


# ----------------------------------------------------------------------------- in a browser
SHOTS = Path(os.environ.get("AUTOGRADER_SCREENSHOTS", "")) if os.environ.get("AUTOGRADER_SCREENSHOTS") else None


class Steps:
    """Screenshots of each step: into $AUTOGRADER_SCREENSHOTS when set (the guide's images,
    scripts/formgrader_screenshots.sh), and into the test's folder, kept when it fails."""

    def __init__(self, page, folder):
        self.page, self.folder, self.n = page, folder, 0

    def shot(self, name, near=None):
        """A screenshot of the page, scrolled to the element ``near`` (a selector) if given."""
        if near:
            self.page.locator(near).scroll_into_view_if_needed()
        self.n += 1
        for d in filter(None, (self.folder, SHOTS)):
            d.mkdir(parents=True, exist_ok=True)
            self.page.screenshot(path=str(d / f"formgrader-{self.n}-{name}.png"), full_page=False)


@pytest.fixture
def steps(browser, tmp_path, request):
    """A browser page with its Steps; when the test fails, the page as it was then is
    one more screenshot, and the folder of them all is printed with the failure."""
    from conftest import FAILED

    page = browser.new_page(viewport={"width": 1280, "height": 900})
    st = Steps(page, tmp_path / "screenshots")
    yield st
    if request.node.stash.get(FAILED, False):
        st.shot("failed")
        print(f"screenshots of every step, the failure last: {st.folder}")
    page.close()


def open_class(page):
    """Manual Grading > lstm > lstm by the formgrader's links, the students' names shown."""
    page.click("text=Manual Grading")
    page.click("#main-table a:text-is('lstm')")  # the assignment
    page.click("#main-table a:text-is('lstm')")  # its notebook
    page.wait_for_selector("text=Submission #1")
    page.click("#toggle_names")  # the formgrader hides them by default


def open_submission(page, student):
    """A student's submission, by its link on the class page."""
    page.locator("#main-table tr", has_text=student).locator("a.name-shown").click()
    page.wait_for_url("**/formgrader/submissions/**")


def submission_id(server, student):
    nbs = json.loads(get(server, "/formgrader/api/submitted_notebooks/lstm/lstm"))
    return next(n["id"] for n in nbs if n["student"] == student)


def typed(page, selector, value):
    """Type a value in a formgrader field and leave it, as an instructor does; returns when
    the formgrader has saved it (its PUT answered)."""
    with page.expect_response(lambda r: r.request.method == "PUT" and "/formgrader/api/" in r.url) as resp:
        page.fill(selector, value)
        page.press(selector, "Tab")
    assert resp.value.ok, resp.value.status


def test_the_term_in_the_formgrader(course, server, steps):
    """Through the formgrader's pages only: the class with its scores, a submission with the
    student's plot and rendered math, a failed test's message, both written answers graded
    with a comment, a test's score overridden, feedback generated with the button; then export,
    feedback, --json and the formgrader agree on every figure."""
    page = steps.page
    offline = []
    page.on("request", lambda r: offline.append(r.url) if not r.url.startswith(server)
            and not r.url.startswith(("data:", "about:")) else None)
    page.goto(f"{server}/formgrader?token={TOKEN}")

    open_class(page)
    steps.shot("class")
    body = page.inner_text("body")
    assert "kim" in body and "lee" in body and "None" not in body  # no roster yet: the ids
    listed = {s["student"]: s for s in json.loads(get(server, "/formgrader/api/submitted_notebooks/lstm/lstm"))}
    for s, sub in listed.items():  # overall, code and written score, as the page shows them
        row = page.locator("tbody tr", has_text=s).inner_text()
        assert f"{sub['score']:g} / 22" in row and f"{sub['code_score']:g} / 18" in row and "0 / 4" in row, row

    open_submission(page, "kim")
    page.wait_for_function("window.MathJax && MathJax.loaded === true", timeout=60_000)
    assert page.locator("img[src^='data:image/png']").count() >= 1  # kim's plot
    # kim's written answer, its math typeset by the MathJax this server serves
    page.wait_for_function("document.querySelector('script[type^=\"math/tex\"]') && "
                           "!document.querySelector('.MathJax_Processing')", timeout=60_000)
    answer = page.locator(".nbgrader_cell", has_text="starts the cell open")
    rendered = answer.locator(".MathJax").first.inner_text()
    assert "\u2248" in rendered and "Error" not in rendered, rendered  # a typeset "approximately"
    typed(page, "#written_highway", "1.5")
    typed(page, "#written_highway-comment", "Right, and with $b_f = 3$, $\\sigma(3) \\approx 0.95$: "
                                             "say why that *keeps* the path open.")
    steps.shot("written-answer-graded", near="#written_highway-comment")
    # the second written question: kim's derivation, its display math typeset too
    derivation = page.locator(".nbgrader_cell", has_text="The last term is the peephole's")
    shown = derivation.locator(".MathJax_Display")
    assert shown.count() == 2 and "Error" not in derivation.inner_text(), derivation.inner_text()
    typed(page, "#written_peephole_derivation", "2")
    typed(page, "#written_peephole_derivation-comment",
          "Complete: the term $\\delta a^o \\odot p^o$ in $\\delta c_t$ is the one most answers leave out.")

    open_class(page)
    open_submission(page, "lee")
    page.wait_for_function("window.MathJax && MathJax.loaded === true", timeout=60_000)
    shown = page.inner_text("#notebook")
    assert "hidden tests of lstm_param_count: failed" in shown  # and why, with the hint:
    assert "hint: each gate has a bias vector of H entries too" in shown
    assert 'expect_equal("lstm_param_count(50, 100)", n, 60400' in shown  # the visible tests
    typed(page, "#test_lstm_param_count", "1")  # the instructor gives lee the point
    steps.shot("test-overridden", near="#test_lstm_param_count")

    page.go_back()  # from the grading page to the class page, whose menu leads on
    page.click("text=Manage Assignments")
    page.wait_for_selector(".generate-feedback a")
    with page.expect_response(lambda r: "generate_feedback" in r.url, timeout=300_000) as resp:
        page.click(".generate-feedback a")
    assert resp.value.ok and json.loads(resp.value.text())["success"], resp.value.text()[-2000:]
    page.wait_for_selector("#success-modal", state="visible")
    steps.shot("feedback-generated")
    assert not offline, offline  # nothing fetched from outside this server

    pages = {s: (course / "feedback" / s / "lstm" / "lstm.html").read_text() for s in ("kim", "lee")}
    assert "<b id='total'>21.5 / 22</b>" in pages["kim"] and "<math" in pages["kim"]
    assert "<td>written_peephole_derivation</td><td>2 / 2</td>" in pages["kim"]
    assert "points set by the instructor" in pages["lee"]
    page.goto((course / "feedback" / "kim" / "lstm" / "lstm.html").as_uri())  # as the student opens it
    assert page.locator("math").count() == 4 and "21.5 / 22" in page.inner_text("#total")  # 2 + 2 comments'
    steps.shot("feedback-page")
    assert cli(course, "export", "--to", str(course / "grades.csv")) == 0
    import csv

    rows = {r["student"]: r for r in csv.DictReader((course / "grades.csv").open())}
    subs = {s["student"]: s for s in json.loads(get(server, "/formgrader/api/submissions/lstm"))}
    for s in ("kim", "lee", "choi", "park"):
        assert float(rows[s]["score"]) == subs[s]["score"], s
    assert (rows["kim"]["written_score"], rows["lee"]["overridden"]) == ("3.5", "test_lstm_param_count")
    out = course / "after.json"
    assert cli(course, "grade", "lstm", str(course / "submissions"), "--quiet",
               "--cell-timeout", "30", "--json", str(out)) == 0
    doc = json.loads(out.read_text())
    for s in ("kim", "lee", "choi", "park"):
        assert doc[s]["total"] == subs[s]["score"] == float(rows[s]["score"]), s

    # after the re-grade, `autograder feedback` writes the very pages the button wrote
    button = {s: (course / "feedback" / s / "lstm" / "lstm.html").read_bytes() for s in subs}
    assert cli(course, "feedback", "lstm") == 0
    assert {s: (course / "feedback" / s / "lstm" / "lstm.html").read_bytes() for s in subs} == button
    # and every figure of every student agrees: each grade in the formgrader, its line in the
    # feedback page, in --json and in the export's parts
    for s in subs:
        grades = json.loads(get(server, f"/formgrader/api/grades?submission_id={submission_id(server, s)}"))
        fb = button[s].decode()
        lines = dict(re.findall(r"<tr id='(\w+)'><td>\w+</td><td>([^<]*)</td>", fb))
        assert set(lines) == {g["name"] for g in grades}, s
        parts = {"tests": 0.0, "written": 0.0}
        for g in grades:
            score = g["auto_score"] if g["manual_score"] is None else g["manual_score"]
            part = "tests" if g["name"].startswith("test_") else "written"
            assert (doc[s][part][g["name"]]["score"], doc[s][part][g["name"]]["max_score"]) == \
                (score, g["max_score"]), (s, g)
            assert lines[g["name"]] == ("not graded yet" if score is None else
                                        f"{score:g} / {g['max_score']:g}"), (s, g)
            parts[part] += score or 0.0
        assert float(rows[s]["tests_score"]) == parts["tests"] == doc[s]["score"], s
        assert rows[s]["written_score"] == ("" if s != "kim" else f"{parts['written']:g}"), s
        pending = " so far" if s != "kim" else ""
        assert f"<b id='total'>{subs[s]['score']:g} / 22{pending}</b>" in fb, s


def test_the_autograde_button_grades_in_the_sandbox(course, server, steps):
    """Manage Submissions lists the class; its Autograde button (nbgrader's autograde, run
    inside the Jupyter server) grades one student again as `autograder grade` does, and
    the instructor's grades of the term stand."""
    from autograder.grading import records

    db = DB[course]
    before = records.graded_students(db, "lstm")
    listed = json.loads(get(server, "/formgrader/api/submissions/lstm"))
    was = {s["student"]: s["score"] for s in listed}
    submitted_at = {s["student"]: s["timestamp"] for s in listed}
    page = steps.page
    page.goto(f"{server}/formgrader?token={TOKEN}")
    page.click("text=Manage Assignments")
    page.click("a[href$='/manage_submissions/lstm']")  # the number of submissions
    row = page.locator("tbody tr", has_text="choi")
    row.wait_for()
    assert page.locator("tbody tr").count() == 4
    with page.expect_response(lambda r: r.url.endswith("/lstm/choi/autograde"), timeout=300_000) as resp:
        row.locator(".autograde a").click()
    assert resp.value.ok and json.loads(resp.value.text())["success"], resp.value.text()[-3000:]
    page.wait_for_selector("#success-modal", state="visible")
    steps.shot("autograde-button")
    after = records.graded_students(db, "lstm")
    assert after["choi"] > before["choi"]  # our grader ran, in its sandbox
    assert {s: after[s] for s in ("kim", "lee", "park")} == {s: before[s] for s in ("kim", "lee", "park")}
    listed = json.loads(get(server, "/formgrader/api/submissions/lstm"))
    now = {s["student"]: s["score"] for s in listed}
    assert now == was and now["choi"] == 16
    assert {s["student"]: s["timestamp"] for s in listed} == submitted_at  # times kept
    nb = nbformat.read(str(course / "autograded" / "choi" / "lstm" / "lstm.ipynb"), as_version=4)
    assert any("hidden tests of lstm_forward: failed" in "".join(o.get("traceback", []))
               for c in nb.cells if c.cell_type == "code" for o in c.outputs)


def test_a_roster_from_the_lms_names_the_class_and_the_export_fits_the_lms(course, server):
    """nbgrader's own roster import, typed in the course folder: the names then appear in the
    formgrader and the export, and the LMS layouts carry them (a pending grade left blank)."""
    import csv

    (course / "roster.csv").write_text("id,first_name,last_name,email,lms_user_id\n"
                                       "kim,Minji,Kim,minji.kim@uni.example,1001\n"
                                       "lee,Jae,Lee,jae.lee@uni.example,1002\n")
    run(course, "nbgrader", "db", "student", "import", "roster.csv")
    people = {s["id"]: s for s in json.loads(get(server, "/formgrader/api/students"))}
    assert (people["kim"]["last_name"], people["kim"]["first_name"]) == ("Kim", "Minji")
    assert cli(course, "export", "--to", str(course / "grades.csv")) == 0
    rows = {r["student"]: r for r in csv.DictReader((course / "grades.csv").open())}
    assert (rows["lee"]["first_name"], rows["lee"]["email"]) == ("Jae", "jae.lee@uni.example")
    assert (rows["park"]["first_name"], rows["park"]["last_name"]) == ("", "")  # not on the roster

    assert cli(course, "export", "--canvas", "--to", str(course / "canvas.csv")) == 0
    canvas = list(csv.reader((course / "canvas.csv").open()))
    assert canvas[0] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", "lstm"]
    assert canvas[1] == ["Points Possible", "", "", "", "", "22"]
    by_login = {r[3]: r for r in canvas[2:]}
    assert by_login["kim"][:2] == ["Kim, Minji", "1001"]
    assert by_login["park"][0] == "park"  # not on the roster: the id
    assert (by_login["kim"][5], by_login["lee"][5]) == ("21.5", "")  # graded by hand / pending
    final = {s: not (r["needs_manual_grade"] == "True") for s, r in rows.items()}
    for s, r in by_login.items():  # a final grade is the export's score; a pending one blank
        assert r[5] == (f"{float(rows[s]['score']):g}" if final[s] else ""), s

    assert cli(course, "export", "--moodle", "--to", str(course / "moodle.csv")) == 0
    moodle = list(csv.reader((course / "moodle.csv").open()))
    assert moodle[0] == ["Username", "Email address", "First name", "Last name", "lstm"]
    assert {r[0]: r[1:4] for r in moodle[1:]}["kim"] == ["minji.kim@uni.example", "Minji", "Kim"]
    assert {r[0]: r[1:4] for r in moodle[1:]}["park"] == ["", "", ""]
    assert {r[0]: r[4] for r in moodle[1:]} == {s: r[5] for s, r in by_login.items()}
