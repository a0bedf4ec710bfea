"""The instructor's term in nbgrader's own tools: a course graded by `autograder grade`, then
the formgrader of a real Jupyter server started in the course folder, and nbgrader's own
commands (generate_feedback, autograde) run from it as an instructor would type them.

What must hold (issue: the instructor's term, end to end): the formgrader counts and lists
the submissions with their times and names; a fresh server logs no exchange or root
warning; the grading page loads MathJax from this server, not a CDN; nbgrader's
generate_feedback writes the very page `autograder feedback` writes; nbgrader's autograde
(the formgrader's Autograde button) grades in the sandbox, as `autograder grade` does.
"""
import json
import os
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
from test_grading_cli import answer, toy_source, write

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
TOKEN = "formgrader-test"


def released(course):
    return nbformat.read(str(course / "exercises" / "toy" / "toy.ipynb"), as_version=4)


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    """A course folder with the repository's nbgrader_config.py and a graded class of three."""
    root = tmp_path_factory.mktemp("course")
    (root / "solutions" / "toy").mkdir(parents=True)
    nbformat.write(toy_source(), str(root / "solutions" / "toy" / "toy.ipynb"))
    shutil.copy(REPO / "nbgrader_config.py", root)
    assert main(["release", "toy", "--course", str(root)]) == 0
    subs = root / "submissions"
    good = "def double(x):\n    return x + x"
    plot = "import matplotlib.pyplot as plt\nplt.plot([1, 4, 9])\nplt.show()\n"
    write(subs / "kim", "toy.ipynb", answer(answer(released(root), "double", plot + good), "square",
                                            "def square(x):\n    return x * x"))
    write(subs / "lee", "toy.ipynb", answer(released(root), "double", good))
    write(subs / "park", "toy.ipynb", released(root))
    os.utime(subs / "lee" / "toy.ipynb", (1_700_000_000, 1_700_000_000))  # submitted 2023-11-14
    assert main(["grade", "toy", str(subs), "--course", str(root), "--cell-timeout", "30",
                 "--quiet", "--json", str(root / "grades.json")]) == 0
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
    toy = next(a for a in json.loads(get(server, "/formgrader/api/assignments")) if a["name"] == "toy")
    assert toy["num_submissions"] == 3  # nbgrader counts submitted/<student>/toy/ on disk
    subs = {s["student"]: s for s in json.loads(get(server, "/formgrader/api/submissions/toy"))}
    assert set(subs) == {"kim", "lee", "park"}
    assert subs["lee"]["display_timestamp"].startswith("2023-11-14 22:13:20")  # the file's time
    assert (subs["kim"]["last_name"], subs["kim"]["first_name"]) == ("kim", "")  # not "None, None"
    assert subs["kim"]["score"] == 3 and subs["park"]["score"] == 0
    assert (course / "submitted" / "lee" / "toy" / "timestamp.txt").read_text().startswith(
        "2023-11-14 22:13:20")


def test_a_fresh_server_in_the_course_starts_clean(course, server):
    get(server, "/formgrader/manage_assignments")
    get(server, "/formgrader/gradebook/toy/toy")
    log = (course / "server.log").read_text()
    assert "Unwritable directory" not in log and "is not absolute" not in log, log
    assert (course / "exchange").is_dir()


def test_the_grading_page_loads_mathjax_from_this_server(course, server):
    notebooks = json.loads(get(server, "/formgrader/api/submitted_notebooks/toy/toy"))
    kim = next(n for n in notebooks if n["student"] == "kim")
    page = get(server, f"/formgrader/submissions/{kim['id']}/?index=0")
    assert "cdnjs" not in page and '<script src="/static/jupyter_server_mathjax/MathJax.js' in page
    assert "MathJax.Hub" in get(server, "/static/jupyter_server_mathjax/MathJax.js")
    assert "data:image/png;base64," in page  # kim's plot, in the page the instructor grades on


def test_nbgrader_generate_feedback_writes_the_same_page(course):
    assert main(["feedback", "toy", "--course", str(course)]) == 0
    ours = {s: (course / "feedback" / s / "toy" / "toy.html").read_bytes() for s in ("kim", "lee", "park")}
    shutil.rmtree(course / "feedback")
    run(course, "nbgrader", "generate_feedback", "toy", "--force")
    theirs = {s: (course / "feedback" / s / "toy" / "toy.html").read_bytes() for s in ours}
    assert theirs == ours
    assert b"written answer" in ours["kim"] and b"cdn" not in ours["kim"]


def test_nbgrader_autograde_grades_in_the_sandbox(course):
    """The formgrader's Autograde button runs nbgrader autograde: it must grade as
    `autograder grade` does (the hidden checks outside the kernel, the same verdicts)."""
    from nbgrader.api import Gradebook

    from autograder.grading import records

    db = f"sqlite:///{course / 'gradebook.db'}"
    before = json.loads((course / "grades.json").read_text())["lee"]["tests"]
    stamps = records.graded_students(db, "toy")
    graded_at = stamps["lee"]
    run(course, "nbgrader", "autograde", "toy", "--student", "lee", "--force")
    assert records.graded_students(db, "toy")["lee"] > graded_at  # our grader ran, in its sandbox
    with Gradebook(db) as gb:
        grades = {g: gb.find_grade(g, "toy", "toy", "lee").auto_score for g in before}
    assert grades == {g: t["score"] for g, t in before.items()}
    nb = nbformat.read(str(course / "autograded" / "lee" / "toy" / "toy.ipynb"), as_version=4)
    texts = [o.get("text", "") + "".join(o.get("traceback", [])) for c in nb.cells
             if c.cell_type == "code" for o in c.outputs]
    assert any("NotImplementedError" in t for t in texts)  # lee left square as released
    assert records.graded_students(db, "toy")["kim"] == stamps["kim"]  # only lee was graded again
