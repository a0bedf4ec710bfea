"""A gradebook on a real PostgreSQL server: two graders at once grade a class into it, and
every grade is present once, equal to the single-machine SQLite result.

The server: ``AUTOGRADER_TEST_POSTGRES`` (a URL whose role may create databases; ``.ci/run``
starts Debian's server and sets it), or else a throwaway server started here with the
``initdb`` of an installed PostgreSQL; skipped, saying why, where neither is possible.
"""
import json
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa

from test_grading_durability import grade_cmd, gradebook, make_class, make_course
from test_grading_durability import quiet_run  # noqa: F401  (the single-machine result)

pytest.importorskip("psycopg", reason="psycopg (3) is not installed: pip install 'autograder[grading]'")


def _initdb():
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"),
                      key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0)
    return versions[-1].parent if versions else None


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _throwaway_server(root):
    """Start a PostgreSQL server in ``root``; (url, stop) or (None, reason)."""
    bindir = _initdb()
    if bindir is None:
        return None, "no PostgreSQL server: set AUTOGRADER_TEST_POSTGRES or install postgresql"
    as_user = []
    if os.geteuid() == 0:  # the server refuses to run as root
        try:
            pw = pwd.getpwnam("postgres")
        except KeyError:
            return None, "running as root and there is no 'postgres' user to run a server as"
        as_user = ["runuser", "-u", "postgres", "--"]
        os.chown(root, pw.pw_uid, pw.pw_gid)
    data, port = root / "data", _free_port()
    init = subprocess.run(as_user + [str(bindir / "initdb"), "-D", str(data), "-U", "postgres",
                                     "--auth=trust", "-E", "UTF8"], capture_output=True, text=True)
    if init.returncode:
        return None, f"initdb failed: {init.stderr.strip()[-300:]}"
    server = subprocess.Popen(as_user + [str(bindir / "postgres"), "-D", str(data), "-p", str(port),
                                         "-k", str(root), "-c", "listen_addresses=127.0.0.1"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"postgresql://postgres@127.0.0.1:{port}/postgres"
    eng = sa.create_engine(url, poolclass=sa.pool.NullPool)
    for _ in range(100):
        try:
            with eng.connect():
                break
        except sa.exc.OperationalError:
            time.sleep(0.1)
    else:
        server.kill()
        return None, "the throwaway PostgreSQL server did not start"
    eng.dispose()

    def stop():
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
    return url, stop


@pytest.fixture(scope="module")
def pg_server():
    """The URL of a PostgreSQL server (its maintenance database) whose role may create
    databases."""
    url = os.environ.get("AUTOGRADER_TEST_POSTGRES")
    if url:
        yield url
        return
    # under /tmp itself: the server's user must be able to reach it (pytest's folders are 0700)
    root = Path(tempfile.mkdtemp(prefix="autograder-pg-"))
    url, stop = _throwaway_server(root)
    if url is None:
        shutil.rmtree(root, ignore_errors=True)
        pytest.skip(stop)
    yield url
    stop()
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def pg_db(pg_server):
    """A fresh database on the server, dropped afterwards; yields its URL."""
    name = f"autograder_test_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(pg_server, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = sa.engine.make_url(pg_server).set(database=name)
    yield url.render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def test_two_graders_at_once_into_postgresql(pg_server, pg_db, quiet_run, tmp_path):
    course = make_course(tmp_path / "course")
    folder = make_class(course, tmp_path / "class")
    procs = [subprocess.Popen(grade_cmd(course, folder, tmp_path / f"{k}.json", "--db", pg_db),
                              stderr=subprocess.PIPE, text=True) for k in "ab"]
    errs = [p.communicate(timeout=600)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], errs
    a, b = (json.loads((tmp_path / f"{k}.json").read_text()) for k in "ab")
    (q_ours, q_grades, q_subs), quiet = quiet_run
    strip = lambda r: {s: (v["score"], v["status"]) for s, v in r.items()}  # noqa: E731
    assert strip(a) == strip(b) == strip(quiet)
    ours, grades, subs = gradebook(course, pg_db)
    assert (ours, grades) == (q_ours, q_grades)
    assert subs == q_subs and all(n == 1 for _, n in subs)  # nobody's submission twice
    assert not (course / "gradebook.db").exists()  # it all went to the server
