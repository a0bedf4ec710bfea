"""A hostile class against the walls between processes, graded by ``autograder grade`` as an
instructor runs it: a subprocess, two submissions at a time, its terminal a pseudo-terminal
the kernels would love to write on. Every attack of walls.py gets its pinned verdict, and
reaches nothing: no other kernel, no grader, no gradebook, no terminal; no point it did not
earn; nothing of it alive, stored or mounted after the run; no string that stops the class;
no text of its own in the feedback; no script in the notebooks the instructor opens. The
grading process stays within its memory bound whatever a kernel sends it.

Skipped, with the reason, on a machine that lacks one of the walls (the README says which);
CI has them all. A class graded into PostgreSQL over its local socket (the gradebook the
issue's attack rewrote) is tested at the end, where a server is at hand.
"""
import glob
import json
import os
import pty
import re
import select
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

from autograder import checks
from autograder.cli import main
from autograder.grading import kernel as kernel_mod
from autograder.grading.child import GRADER_MEMORY

from . import walls

MISSING = kernel_mod.missing_walls()
pytestmark = pytest.mark.skipif(bool(MISSING), reason="walls missing on this machine: " + "; ".join(
    f"{w} ({why})" for w, why in MISSING))

A = walls.A
CELL_TIMEOUT, NOTEBOOK_TIMEOUT, MEMORY_MIB = 60, 240, 3072
KERNEL_UIDS = range(200000, 300000)  # kernel._kernel_uid
KEYS = ("41475348", "41475349", "4147514d", "41475345")  # the attacks' System V IPC keys


def _ipc_keys():
    keys = set()
    for kind in ("shm", "msg", "sem"):
        try:
            rows = Path(f"/proc/sysvipc/{kind}").read_text().splitlines()[1:]
        except OSError:
            continue
        keys |= {f"{int(r.split()[0]):08x}" for r in rows if r.split()}
    return keys


def _groups():
    """The kernels' cgroups that exist now."""
    from autograder.grading import cgroups

    version, bases = cgroups.bases()
    return {str(p) for base in (bases.values() if version else ()) for p in base.iterdir()
            if p.name.startswith(cgroups.PREFIX)}


def _run_in_a_terminal(cmd, env, timeout):
    """Run ``cmd`` with a pseudo-terminal as its stdout and stderr; (exit code, bytes)."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=slave, stderr=slave, env=env)
    os.close(slave)
    out, deadline = b"", time.monotonic() + timeout
    while True:
        if time.monotonic() > deadline:
            proc.kill()
            break
        ready, _, _ = select.select([master], [], [], 1.0)
        if ready:
            try:
                chunk = os.read(master, 1 << 16)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            out += chunk
        elif proc.poll() is not None:
            break
    proc.wait(timeout=30)
    os.close(master)
    return proc.returncode, out


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    root = tmp_path_factory.mktemp("walls-course")
    shutil.copytree(Path(checks.__file__).resolve().parents[2] / "solutions" / A,
                    root / "solutions" / A)
    assert main(["release", A, "--course", str(root)]) == 0
    return root


@pytest.fixture(scope="module")
def run(course, tmp_path_factory):
    """The class graded once: {expected, results, notebooks, terminal, stderr, before, after}."""
    base = tmp_path_factory.mktemp("walls-class")
    folder, grader_tmp = base / "class", base / "grader-tmp"
    grader_tmp.mkdir()
    expected = {}
    for student, build, verdict, _ in walls.submissions():
        build(folder / student)
        expected[student] = verdict
    js = base / "results.json"
    env = {**os.environ, "TMPDIR": str(grader_tmp), "COLUMNS": "120"}
    before = {"ipc": _ipc_keys(), "free": shutil.disk_usage(grader_tmp).free,
              "shm": set(os.listdir("/dev/shm")), "groups": _groups()}
    autograder = str(Path(sys.executable).with_name("autograder"))
    start = time.monotonic()
    code, terminal = _run_in_a_terminal(
        [autograder, "grade", A, str(folder), "--course", str(course), "--json", str(js),
         "--jobs", "2", "--cell-timeout", str(CELL_TIMEOUT), "--timeout", str(NOTEBOOK_TIMEOUT),
         "--memory", str(MEMORY_MIB)], env, timeout=1500)
    seconds = time.monotonic() - start
    assert code == 0, terminal.decode(errors="replace")[-3000:]
    time.sleep(1.0)  # what the run killed is reaped
    after = {"ipc": _ipc_keys(), "free": shutil.disk_usage(grader_tmp).free,
             "shm": set(os.listdir("/dev/shm")), "tmp": sorted(os.listdir(grader_tmp)),
             "groups": _groups()}
    results = json.loads(js.read_text())
    notebooks = {}
    for student in results:
        p = course / "autograded" / student / A / f"{A}.ipynb"
        notebooks[student] = nbformat.read(str(p), as_version=4) if p.exists() else None
    return dict(expected=expected, results=results, notebooks=notebooks, terminal=terminal,
                before=before, after=after, seconds=seconds, folder=folder, course=course,
                started=time.time() - seconds - 2)


def _points():
    return {gid: float(c.points) for gid, c in checks.load(A)[A].checks.items()}


def _want(verdict):
    points = _points()
    if verdict == walls.FULL:
        return points
    if verdict == walls.ALL_ZERO:
        return {g: 0.0 for g in points}
    if verdict.startswith("only "):
        return {g: p if g == "test_" + verdict.removeprefix("only ") else 0.0
                for g, p in points.items()}
    zero = f"test_{walls.TARGET[A]}" if verdict == walls.TARGET_ZERO else \
        "test_" + verdict.removeprefix("zero of ")
    return {g: 0.0 if g == zero else p for g, p in points.items()}


def _probes(nb):
    """The PROBE reports an attack printed, as dicts."""
    found = []
    for cell in nb.cells if nb is not None else []:
        for out in cell.get("outputs", []):
            if out.get("output_type") == "stream":
                found += [json.loads(line[6:]) for line in out.get("text", "").splitlines()
                          if line.startswith("PROBE ")]
    return found


def _texts(nb):
    return "\n".join(json.dumps(c.get("outputs", [])) + c.source for c in nb.cells)


def test_every_attack_gets_its_pinned_verdict(run):
    results = run["results"]
    assert set(results) == set(run["expected"]) - {"k13_escape\x1b[2J\rid", "k13_bidi\u202eid"} | \
        {"k13_escape[2Jid", "k13_bidiid"}, "every student has a recorded grade, under a clean id"
    wrong = {}
    for student, verdict in run["expected"].items():
        r = results[student.replace("\x1b", "").replace("\r", "").replace("\u202e", "")]
        got = {g: t["score"] for g, t in r["tests"].items()}
        if got != _want(verdict):
            wrong[student] = (verdict, got, r["status"], r["reason"])
    assert not wrong


def test_no_attack_reached_anything(run):
    """What each attack found and connected to: nothing of another kernel, the grader, the
    gradebook or a terminal; the victim's secret appears in no other notebook."""
    reached = {}
    for student, nb in run["notebooks"].items():
        if student.startswith(("aa_victim",)):
            continue
        probes = _probes(nb)
        if student.startswith(("ab_k1", "k2_", "k3_", "k12_")) and not probes:
            reached[student] = "no report (the attack did not run?)"
        for p in probes:
            bad = {k: p[k] for k in ("found", "connected", "signalled") if p.get(k)}
            if student == "k12_terminals":
                bad.pop("found", None)  # its listing of /dev: checked below
            if bad:
                reached[student] = bad
        if nb is not None and walls.VICTIM_SECRET in _texts(nb):
            reached[student] = "the victim's secret"
    assert not reached
    victim = _texts(run["notebooks"]["aa_victim"])
    assert victim.count(walls.VICTIM_SECRET) >= 40  # it was there to be found, for 20 s


def test_a_kernel_sees_its_own_processes_devices_and_nothing_else(run):
    (ptrace,) = _probes(run["notebooks"]["ab_k1_ptrace_and_proc"])
    assert ptrace["pids"] == [1, 2]  # B and the kernel: no grader, no classmate
    (terminals,) = _probes(run["notebooks"]["k12_terminals"])
    assert terminals["found"] == [] and terminals["connected"] == []  # /dev: not even listed
    (nodes,) = _probes(run["notebooks"]["k12_mknod_and_mount"])
    assert nodes["connected"] == [] and nodes["nested_userns"] is False


def test_the_watches_count_every_process(run):
    results = run["results"]
    (sessions,) = _probes(run["notebooks"]["k6_sessions_600"])
    assert sessions["made"] < 600  # the cgroup's pids.max stopped the forks
    assert "started too many processes; they were killed" in results["k6_sessions_600"]["reason"]
    (hogs,) = _probes(run["notebooks"]["k6_memory_in_sessions"])
    assert hogs["alive"] < 3  # 3 x 1.1 GiB in a 3 GiB cgroup: not all of them
    assert "ran out of memory; they were killed" in results["k6_memory_in_sessions"]["reason"]
    reader = _probes(run["notebooks"]["k6_sysv_shm_zreader"])[0]
    assert reader["found"] == [] and reader["segments"]  # its own segment, never the maker's
    (posix,) = _probes(run["notebooks"]["k6_posix_shm_and_queues"])
    assert "/dev/shm/ag-posix-shm" in posix["made"]  # in the kernel's own /dev/shm


def test_nothing_outlives_the_run(run):
    """No process, cgroup, IPC object, shared-memory file, socket or folder of a kernel."""
    import psutil

    left = []
    for p in psutil.process_iter(["name", "uids", "cmdline", "create_time", "status"]):
        info = p.info
        if info["create_time"] < run["started"] or info["status"] == psutil.STATUS_ZOMBIE:
            continue  # older than the run, or gone (a zombie holds nothing, runs nothing)
        if info["name"] == "ag-lingerer" or "ag-lingerer" in " ".join(info["cmdline"] or ()) \
                or (info["uids"] and info["uids"].real in KERNEL_UIDS):
            left.append((p.pid, info["name"], info["cmdline"]))
    assert not left
    assert run["after"]["groups"] <= run["before"]["groups"]  # every kernel's cgroup removed
    assert not (run["after"]["ipc"] - run["before"]["ipc"]) & set(KEYS)
    assert not {f for f in run["after"]["shm"] - run["before"]["shm"] if f.startswith("ag-")}
    assert run["after"]["tmp"] == []  # every grading folder, with its sockets, removed
    assert run["results"]["zz_victim_after"]["score"] == 18  # graded after the lingerers


def test_the_disk_was_not_filled(run):
    used = run["before"]["free"] - run["after"]["free"]
    assert used < 200 << 20, f"{used >> 20} MiB of the disk used by the run"
    for name in ("k7_big_file_here", "k7_fill_dev_shm"):
        (probe,) = _probes(run["notebooks"][name])
        assert 0 < probe["mib"] <= 1024  # stopped at its quota
    (beside,) = _probes(run["notebooks"]["k7_write_beside_sockets"])
    assert beside["connected"] == []


def test_the_grading_process_stays_within_its_memory_bound(run):
    """Bombs sent to the grader (compressed members, lying headers, amplified references,
    floods of nodes, impossible lengths) and huge stand-in requests cost it little."""
    results = run["results"]
    base = results["aa_victim"]["grader_mib"]
    peaks = {s: r["grader_mib"] for s, r in results.items()}
    assert all(0 < m < base + (GRADER_MEMORY >> 20) for m in peaks.values()), peaks
    assert max(peaks.values()) < 512, peaks  # the figure the README gives
    for s in ("k9_deflate_bomb", "k9_header_lies", "k9_length_claim", "k4_forward_huge_stand_in",
              "k4_backward_asks_forward"):
        assert peaks[s] < base + 64, (s, peaks[s], base)


def test_strings_stop_nothing(run, course):
    """Lone surrogates, NULs and escapes in outputs, messages and the file itself: every
    student is recorded, and the notebooks are written; a resumed run goes through too."""
    results = run["results"]
    assert all(r["status"] == "graded" for r in results.values()), \
        {s: r["reason"] for s, r in results.items() if r["status"] != "graded"}
    for s in ("k8_strings_in_outputs", "k8_surrogates_in_the_file", "k8_surrogate_exception"):
        assert run["notebooks"][s] is not None and "could not be saved" not in results[s]["reason"]
    text = _texts(run["notebooks"]["k8_strings_in_outputs"])
    assert "lone surrogates" in text and "\\u0000" not in text
    js = Path(run["course"]) / "resumed.json"
    assert main(["grade", A, str(run["folder"]), "--course", str(course), "--resume",
                 "--quiet", "--json", str(js)]) == 0


def test_feedback_holds_no_smuggled_text(run, course):
    """Exception texts and type names made of hidden inputs (or of anything the kernel
    read) reach neither the gradebook nor the students' feedback; the instructor's notebook
    keeps them, marked as the notebook's own."""
    assert main(["feedback", A, "--course", str(course)]) == 0
    pages = {p: p.read_text() for p in (course / "feedback").rglob("*.html")}
    assert pages and not [p for p, t in pages.items() if walls.LEAK in t]
    db = sqlite3.connect(course / "gradebook.db")
    stored = " ".join(r[0] + r[1] for r in db.execute("select tests, reason from autograder_results"))
    assert walls.LEAK not in stored
    for s in ("k11_exception_value", "k11_proc_in_exception"):
        msg = run["results"][s]["tests"]
        page = pages[course / "feedback" / s / A / f"{A}.html"]
        assert "raised ValueError" in page or "raised RuntimeError" in page, (s, msg)
        assert walls.LEAK in _texts(run["notebooks"][s])  # the instructor sees it, marked
    page = pages[course / "feedback" / "k11_exception_class_name" / A / f"{A}.html"]
    assert "an exception of a class defined in the notebook" in page


def test_the_terminal_shows_no_forged_line(run):
    """The kernels could not reach the instructor's terminal, and the ids it prints are
    clean: no escape code, no carriage return of theirs."""
    out = run["terminal"].decode("utf-8", errors="replace")
    assert "FORGED" not in out
    assert "\x1b" not in out
    table = out[out.index("student"):]
    assert "k13_escape[2Jid" in table and "k13_bidiid" in table and "\u202e" not in table


def _active(html):
    """The active parts of an HTML page: script-like elements, event handlers, and links
    or sources that run code (what a browser would act on, not what it shows as text)."""
    from html.parser import HTMLParser

    found = []

    class Finder(HTMLParser):
        def handle_starttag(self, tag, attrs):
            if tag in ("script", "iframe", "object", "embed", "svg", "math", "form", "base"):
                found.append(tag)
            for name, value in attrs:
                v = (value or "").strip().lower().replace("\t", "").replace("\n", "")
                if name.startswith("on") or (name in ("href", "src", "action", "formaction",
                                                      "xlink:href", "data") and
                                             v.startswith(("javascript:", "vbscript:", "data:"))):
                    found.append(f"{tag} {name}={value}")

    Finder().feed(html)
    return found


def test_the_instructors_notebooks_hold_no_active_content(run):
    """What the formgrader renders (every output, and the Markdown cells through nbconvert's
    renderer, as its template does) holds nothing a browser would run; the code itself is
    shown as code, and the harmless rest is kept."""
    from nbconvert.filters.markdown_mistune import markdown2html_mistune

    for student in ("k13_active_outputs", "k13_markdown_scripts"):
        nb = run["notebooks"][student]
        pages = []
        for cell in nb.cells:
            if cell.cell_type == "markdown":
                pages.append(markdown2html_mistune(cell.source))
            for out in cell.get("outputs", []):
                data = out.get("data", {})
                bad = set(data) - {"text/plain", "text/html", "image/png", "image/jpeg",
                                   "text/latex", "application/json"}
                assert not bad, (student, bad)
                pages.append(data.get("text/html", ""))
        active = [a for page in pages for a in _active(page)]
        assert not active, (student, active)
        assert "bold" in "".join(pages) or "My answer" in "".join(pages)


def test_every_student_says_which_walls_stood(run):
    want = {"cgroup", "user namespace", "pid namespace", "mount namespace", "ipc namespace",
            "network namespace", "own /proc", "disk quota", "no capabilities", "warm start",
            "no nested namespaces"}
    for student, r in run["results"].items():
        walls_ = r["walls"]
        assert want <= {k for k, v in walls_.items() if v is True}, (student, walls_)
        assert walls_["landlock"] >= 6


# ----------------------------------------------------------------------------- PostgreSQL
def _local_postgres():
    """A PostgreSQL URL over the server's local Unix socket with the grader's own role (peer
    authentication: the setting the issue's attack used), or None."""
    url = os.environ.get("AUTOGRADER_TEST_POSTGRES_LOCAL")
    if url:
        return url
    sockets = glob.glob("/var/run/postgresql/.s.PGSQL.*")
    if not sockets or not shutil.which("psql"):
        return None
    port = sockets[0].rsplit(".", 1)[-1]
    url = f"postgresql:///postgres?host=/var/run/postgresql&port={port}"
    ok = subprocess.run(["psql", url, "-c", "select 1"], capture_output=True)
    return url if ok.returncode == 0 else None


def test_a_gradebook_on_postgresql_is_out_of_every_kernels_reach(course, tmp_path):
    url = _local_postgres()
    if url is None:
        pytest.skip("no PostgreSQL server with a local socket and a role for this user "
                    "(.ci/run sets one up)")
    import sqlalchemy as sa
    import uuid

    name = f"autograder_walls_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    db = re.sub(r"^(postgresql://[^/]*/)[^?]*", rf"\g<1>{name}", url)
    try:
        folder = tmp_path / "class"
        subs = {s: (b, v) for s, b, v, wall in walls.submissions()
                if wall == "the gradebook" or s == "zz_victim_after"}
        for s, (build, _) in subs.items():
            build(folder / s)
        js = tmp_path / "pg.json"
        assert main(["grade", A, str(folder), "--course", str(course), "--db", db, "--json",
                     str(js), "--quiet", "--cell-timeout", str(CELL_TIMEOUT)]) == 0
        results = json.loads(js.read_text())
        for s, (_, verdict) in subs.items():
            got = {g: t["score"] for g, t in results[s]["tests"].items()}
            assert got == _want(verdict), s
            nb = nbformat.read(str(course / "autograded" / s / A / f"{A}.ipynb"), as_version=4)
            for p in _probes(nb):
                assert not p["found"] and not p["connected"], (s, p)
        eng = sa.create_engine(db, poolclass=sa.pool.NullPool)
        with eng.connect() as conn:
            rows = conn.execute(sa.text(
                "select s.student_id, sum(g.auto_score) from grade g join submitted_notebook n "
                "on g.notebook_id = n.id join submitted_assignment s on n.assignment_id = s.id "
                "where g.auto_score is not null group by s.student_id")).all()
        eng.dispose()
        assert {s: float(v) for s, v in rows} == {s: r["score"] for s, r in results.items()}
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
