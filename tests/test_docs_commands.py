"""Every command the README and the instructor's guide tell a user to type runs here, exactly
as written, from where they say: the root of a fresh copy of the repository, with its
``.venv`` inside (the layout ``make test`` leaves), as the instructor would after cloning.

The rule, for the suite: each ```bash block of README.md and book/instructors.md is either
run verbatim by a test of this file, or named in ``RUN_ELSEWHERE`` with the file that runs
it as written (``make book`` by tests/conftest.py for tests/test_book.py, ``make test`` by
.ci/run); the first test fails when a block is in neither. (Once the instructor commands gave every student 0
when run from the repository root, and no test saw it: every test graded from a course copy
elsewhere.)
"""
import json
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

from solved import filled

ROOT = Path(__file__).resolve().parents[1]
DOCS = (ROOT / "README.md", ROOT / "book" / "instructors.md")
# blocks that another part of the suite runs as written: (first line, the file that runs it)
RUN_ELSEWHERE = {
    "make book": ("tests/conftest.py", '["make", "book"]'),  # for tests/test_book.py
    "make test": (".ci/run", "make test"),
}


def shell_blocks(path):
    """The ```bash blocks of a Markdown file, as written."""
    return re.findall(r"^```bash\n(.*?)^```", Path(path).read_text(), re.M | re.S)


def _commands(block):
    return [line.split("#")[0].strip() for line in block.splitlines()
            if line.split("#")[0].strip()]


RUN_HERE = {}  # block text -> name of the test that runs it


def runs(*blocks):
    """Mark a test as running ``blocks`` (found by a line they contain) verbatim."""
    def mark(test):
        for needle in blocks:
            found = [b for p in DOCS for b in shell_blocks(p) if needle in b]
            assert found, f"no block of the docs contains {needle!r}"
            for b in found:
                RUN_HERE[b] = test.__name__
        return test
    return mark


def test_every_documented_command_is_run_as_written():
    """Each block is run verbatim here, or made of commands that are, to the letter,
    commands of a block run here (the guide gives the README's commands one at a time), or
    run as written elsewhere (RUN_ELSEWHERE)."""
    ran = {c for block in RUN_HERE for c in _commands(block)}
    missing = []
    for path in DOCS:
        for block in shell_blocks(path):
            if block in RUN_HERE or (_commands(block) and set(_commands(block)) <= ran):
                continue
            first = _commands(block)[:1]
            elsewhere = RUN_ELSEWHERE.get(" ".join(first[0].split()[:2])) if first else None
            if elsewhere is None:
                missing.append((path.name, block))
                continue
            for command in _commands(block):
                name = " ".join(command.split()[:2])
                where, text = RUN_ELSEWHERE.get(name, (None, None))
                if where is None or text not in (ROOT / where).read_text():
                    missing.append((path.name, command))
    assert not missing, "documented commands no test runs as written: " + repr(missing)


# ----------------------------------------------------------------------------- a fresh copy
def _relocated_venv(src, dst):
    """``src`` (the running virtualenv) as ``dst``: its files hard-linked (no copy of the
    packages), its scripts pointed at ``dst``'s Python, this project installed in it anew
    (editable, from the copy): what ``make test`` leaves in a fresh clone, in seconds."""
    try:
        subprocess.run(["cp", "-al", str(src), str(dst)], check=True, capture_output=True)
    except subprocess.CalledProcessError:  # another file system: a real copy
        shutil.copytree(src, dst, symlinks=True)
    site = next(dst.glob("lib/python*/site-packages"))
    for p in [*site.glob("__editable__*autograder*"), *site.glob("autograder-*.dist-info")]:
        shutil.rmtree(p) if p.is_dir() else p.unlink()
    old = f"#!{src}/bin/python".encode()
    for script in (dst / "bin").iterdir():
        if script.is_symlink() or not script.is_file():
            continue
        data = script.read_bytes()
        if data.startswith(old):
            script.unlink()  # a hard link: the original stays as it is
            script.write_bytes(f"#!{dst}/bin/python".encode() + data[len(old):])
            script.chmod(0o755)
    subprocess.run([str(dst / "bin" / "python"), "-m", "pip", "install", "-q", "--no-deps",
                    "--no-build-isolation", "--no-index", "-e", str(dst.parent)],
                   check=True, capture_output=True)
    (dst / ".installed-stamp").touch()


@pytest.fixture(scope="module")
def fresh(tmp_path_factory):
    """The root of a fresh copy of the repository (tracked and new files, as a clone with
    the working tree's changes), with ``.venv`` inside, and a class of two ``lstm``
    submissions in ``submissions/``: an honest one and the blank release."""
    root = tmp_path_factory.mktemp("fresh") / "course"
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                            cwd=ROOT, capture_output=True, check=True).stdout.decode()
    for rel in filter(None, listed.split("\0")):
        if (ROOT / rel).is_file():
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / rel, root / rel)
    _relocated_venv(Path(sys.prefix), root / ".venv")
    for student, nb in (("honest", filled("lstm")),
                        ("blank", nbformat.read(str(ROOT / "exercises/lstm/lstm.ipynb"), 4))):
        (root / "submissions" / student).mkdir(parents=True)
        nbformat.write(nb, str(root / "submissions" / student / "lstm.ipynb"))
    return root


def _bash(root, block, timeout=900, env_extra=None, **kw):
    """Run a documented block verbatim with bash in ``root``, ``.venv/bin`` on PATH (the
    guide says so; the README's block activates it itself)."""
    env = {**os.environ, "PATH": f"{root / '.venv' / 'bin'}{os.pathsep}{os.environ['PATH']}",
           **(env_extra or {})}
    for var in ("VIRTUAL_ENV", "MAKEFLAGS", "MFLAGS", "MAKELEVEL"):  # as a user types it,
        env.pop(var, None)  # not as a make inside `make test`
    return subprocess.run(["bash", "-c", block], cwd=root, env=env, capture_output=True,
                          text=True, timeout=timeout, **kw)


def _block(path, needle):
    (found,) = [b for b in shell_blocks(path) if needle in b]
    return found


def _check_the_class(root):
    grades = json.loads((root / "grades.json").read_text())
    assert {s: (r["score"], r["max_score"], r["status"]) for s, r in grades.items()} == \
        {"honest": (18.0, 18.0, "graded"), "blank": (0.0, 18.0, "graded")}
    assert all(r["walls"].get("landlock") is not None for r in grades.values())
    for student in ("honest", "blank"):
        assert (root / "feedback" / student / "lstm" / "lstm.html").is_file()
    rows = (root / "grades.csv").read_text().splitlines()
    assert rows[0].startswith("student,assignment,score") and len(rows) == 3
    assert (root / "reports" / "lstm.html").is_file()
    similarity = (root / "reports" / "lstm-similarity.html").read_text()
    assert "(the solutions) and honest: 100%" in similarity  # the honest one is the solution
    assert (root / "dist" / "course-exercises.zip").is_file()


@runs("autograder grade lstm submissions/ --json grades.json # one sub-folder per student")
def test_the_readmes_instructor_commands_from_the_root_of_a_fresh_clone(fresh):
    """The README's block, verbatim, from the repository root with .venv inside: the honest
    notebook gets full marks, the blank one 0 (they once both got 0 here)."""
    block = _block(ROOT / "README.md", "autograder grade lstm submissions/ --json")
    out = _bash(fresh, block)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "honest" in out.stdout and "18 / 18" in out.stdout
    _check_the_class(fresh)
    # nbgrader's route ran last: the page is the one feedback (total, tests, written answers)
    page = (fresh / "feedback" / "honest" / "lstm" / "lstm.html").read_text()
    assert "<b id='total'>18 / 22 so far</b>" in page and "not graded yet" in page
    # the release regenerated exercises/ with no change: it is in sync with solutions/
    assert (fresh / "exercises/lstm/lstm.ipynb").read_bytes() == \
        (ROOT / "exercises/lstm/lstm.ipynb").read_bytes()


def test_the_guides_commands_are_the_readmes():
    """The instructor's guide gives the README's instructor commands one block at a time, to
    be run where the README's are (the course root, .venv/bin on PATH): each of its commands
    is, to the letter, a command of the README's block, which the test above runs."""
    readme = _commands(_block(ROOT / "README.md", "autograder grade lstm submissions/ --json"))
    guide = ROOT / "book" / "instructors.md"
    for block in shell_blocks(guide):
        if block in RUN_HERE:  # a command of the guide alone, run verbatim by its own test
            continue
        for command in _commands(block):
            assert command in readme, f"the guide's {command!r} is not the README's"
    text = guide.read_text()
    assert "from the repository root" in text and "assume `.venv/bin` is on your `PATH`" in text


@runs("jupyter lab                             # then Nbgrader > Formgrader in the menu")
def test_the_formgrader_from_the_root_of_a_fresh_clone(fresh, tmp_path):
    """The guide's `jupyter lab`, verbatim, in the course folder the README graded: the
    formgrader counts the class's submissions and its grading page loads MathJax from this
    server. (As root, a Jupyter config folder of the test's own allows it; no browser opens.)"""
    import urllib.request

    block = _block(ROOT / "book" / "instructors.md", "jupyter lab")
    conf = tmp_path / "jupyter-config"
    conf.mkdir()
    (conf / "jupyter_server_config.json").write_text(json.dumps(
        {"ServerApp": {"allow_root": True, "open_browser": False, "ip": "127.0.0.1"}}))
    env = {**os.environ, "PATH": f"{fresh / '.venv' / 'bin'}{os.pathsep}{os.environ['PATH']}",
           "JUPYTER_CONFIG_DIR": str(conf)}
    env.pop("VIRTUAL_ENV", None)
    proc = subprocess.Popen(["bash", "-c", block], cwd=fresh, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        url, seen, deadline = None, [], time.monotonic() + 120
        while url is None and time.monotonic() < deadline:
            ready, _, _ = select.select([proc.stdout], [], [], 1.0)
            line = proc.stdout.readline() if ready else ""
            seen.append(line)
            m = re.search(r"(http://127\.0\.0\.1:\d+)/lab\?token=(\w+)", line)
            if m:
                url, token = m.groups()
        assert url, "".join(seen)[-3000:]

        def get(path):
            req = urllib.request.Request(url + path, headers={"Authorization": f"token {token}"})
            with urllib.request.urlopen(req, timeout=60) as r:
                return r.read().decode()

        for _ in range(60):  # the URL is printed as the server starts listening
            try:
                get("/api/status")
                break
            except OSError:
                time.sleep(0.5)
        lstm = next(a for a in json.loads(get("/formgrader/api/assignments")) if a["name"] == "lstm")
        assert lstm["num_submissions"] == 2
        nbs = json.loads(get("/formgrader/api/submitted_notebooks/lstm/lstm"))
        blank = next(n for n in nbs if n["student"] == "blank")
        page = get(f"/formgrader/submissions/{blank['id']}/?index=0")
        assert "/static/jupyter_server_mathjax/MathJax.js" in page and "cdnjs" not in page
        assert "lstm_step_forward raised NotImplementedError" in page  # the failed test's message
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(30)
    log = "".join(seen)
    assert "Unwritable directory" not in log and "is not absolute" not in log


@runs("nbgrader db student import roster.csv")
def test_the_roster_and_the_lms_exports_from_the_root_of_a_fresh_clone(fresh):
    """The guide's roster and LMS block, verbatim, in the course the README graded: nbgrader
    imports the roster into the gradebook autograder wrote, and both LMS files carry it."""
    import csv

    (fresh / "roster.csv").write_text("id,first_name,last_name,email,lms_user_id\n"
                                      "honest,Ada,Lovelace,ada@uni.example,7\n"
                                      "blank,Charles,Babbage,charles@uni.example,8\n")
    out = _bash(fresh, _block(ROOT / "book" / "instructors.md", "nbgrader db student import"))
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    canvas = list(csv.reader((fresh / "canvas.csv").open()))
    assert canvas[0][-1] == "lstm" and canvas[1][-1] == "22"
    assert sorted(r[:4] for r in canvas[2:]) == [["Babbage, Charles", "8", "", "blank"],
                                                  ["Lovelace, Ada", "7", "", "honest"]]
    assert all(r[-1] == "" for r in canvas[2:])  # the written answers are not graded yet
    assert "2 grades left blank" in out.stderr
    moodle = list(csv.reader((fresh / "moodle.csv").open()))
    assert sorted(r[:4] for r in moodle[1:]) == [["blank", "charles@uni.example", "Charles", "Babbage"],
                                                 ["honest", "ada@uni.example", "Ada", "Lovelace"]]


@runs("make check   # every test but the slow ones")
def test_make_check_as_written(fresh):
    """The README's block, verbatim, from the root of the fresh copy, with pytest told (by
    PYTEST_ADDOPTS) to collect and not run: every test it selects runs in ``make test``
    anyway. What it selects: no test of a slow file, the CLI's tiny class, one mistake per
    graded function."""
    from conftest import SLOW

    from autograder import checks

    block = _block(ROOT / "README.md", "make check")
    # -v undoes the recipe's -q: pytest then prints the tree of what it collected
    out = _bash(fresh, block, env_extra={"PYTEST_ADDOPTS": "--collect-only -v"})
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert '-m "not slow"' in out.stdout.splitlines()[0]  # make echoes the recipe
    modules = re.findall(r"<Module (\S+)>", out.stdout)
    assert modules and not set(modules) & set(SLOW), modules
    assert "test_grading_cli.py" in modules and "test_typed_decisions.py" in modules
    mistakes = out.stdout.count("<Function test_a_mistake_costs_only_its_function[")
    assert mistakes == sum(len(a.functions) for a in checks.load().values())


@runs("dask scheduler --scheduler-file sched.json &")
def test_the_cluster_commands_as_written(fresh):
    """The README's cluster block, verbatim: a scheduler and a worker in the background,
    then the grade command; the class gets the same grades as on one machine."""
    block = _block(ROOT / "README.md", "dask scheduler --scheduler-file sched.json &")
    for f in ("grades.json", "sched.json"):
        (fresh / f).unlink(missing_ok=True)
    proc = subprocess.Popen(["bash", "-c", block + "\nwait"], cwd=fresh, start_new_session=True,
                            env={**os.environ, "PATH": f"{fresh / '.venv' / 'bin'}"
                                 f"{os.pathsep}{os.environ['PATH']}"},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline, out = time.monotonic() + 600, ""
        while time.monotonic() < deadline and not re.search(r"2 graded \(", out):
            ready, _, _ = select.select([proc.stdout], [], [], 1.0)
            if ready:
                chunk = os.read(proc.stdout.fileno(), 1 << 16).decode(errors="replace")
                if not chunk:
                    break
                out += chunk
            elif proc.poll() is not None:
                break
        assert re.search(r"honest\s+18 / 18", out) and re.search(r"blank\s+0 / 18", out), out[-3000:]
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
