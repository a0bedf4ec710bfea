"""Grading on a Dask cluster: a real ``dask scheduler`` and two ``dask worker`` processes on
localhost grade a class, one worker is killed (SIGKILL) while it grades, and every grade is
still present once, equal to the single-machine result.
"""
import json
import os
import signal
import subprocess
import sys
import time

import pytest
import sqlalchemy as sa

from autograder.cli import main

from test_grading_durability import N_STUDENTS, grade_cmd, gradebook, make_class, make_course
from test_grading_durability import quiet_run  # noqa: F401  (the single-machine result)

distributed = pytest.importorskip("distributed", reason="the 'distributed' package (Dask) is "
                                  "not installed: pip install 'autograder[grading]'")
psutil = pytest.importorskip("psutil")


def graded_so_far(course):
    try:
        return len(gradebook(course)[0])
    except sa.exc.DBAPIError:  # no table yet, or the grader is writing
        return 0


@pytest.fixture
def dask_cluster(tmp_path):
    """A scheduler and two single-thread workers ("w0", "w1"), each its own process (no
    nanny, so that killing one is the loss of a worker); yields (scheduler file, client,
    {name: Popen})."""
    from distributed import Client

    sched = tmp_path / "scheduler.json"
    logs = tmp_path / "logs"
    logs.mkdir()
    procs = {}

    def start(name, module, *args):
        log = open(logs / f"{name}.log", "w")
        procs[name] = subprocess.Popen(
            [sys.executable, "-m", f"distributed.cli.{module}", "--scheduler-file", str(sched),
             "--no-dashboard", *args], stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True, cwd=tmp_path)

    start("scheduler", "dask_scheduler", "--host", "127.0.0.1", "--port", "0")
    deadline = time.monotonic() + 60
    while not sched.is_file() and time.monotonic() < deadline:
        time.sleep(0.2)
    for name in ("w0", "w1"):
        start(name, "dask_worker", "--name", name, "--nthreads", "1", "--no-nanny",
              "--host", "127.0.0.1", "--memory-limit", "0")
    client = Client(scheduler_file=str(sched), timeout=60)
    try:
        client.wait_for_workers(2, timeout=120)
        yield sched, client, procs
    finally:
        client.close()
        for p in procs.values():
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()


def busy_worker(client):
    """(name, address) of a worker that is running a task now, or None."""
    info = client.scheduler_info(n_workers=-1)["workers"]
    for addr, keys in sorted(client.processing().items(), key=lambda kv: info[kv[0]]["name"]):
        if keys:
            return info[addr]["name"], addr
    return None


def test_a_worker_killed_half_way_loses_and_doubles_nothing(quiet_run, dask_cluster, tmp_path):
    sched, client, procs = dask_cluster
    course = make_course(tmp_path / "course")
    folder = make_class(course, tmp_path / "class")
    grader = subprocess.Popen(grade_cmd(course, folder, tmp_path / "c.json", "--scheduler",
                                        str(sched), jobs=None),
                              stderr=subprocess.PIPE, text=True)
    deadline, killed = time.monotonic() + 300, None
    while time.monotonic() < deadline and grader.poll() is None:
        time.sleep(0.2)
        if graded_so_far(course) >= 3 and (busy := busy_worker(client)):
            name, _ = busy
            worker = psutil.Process(procs[name].pid)
            descendants = worker.children(recursive=True)  # its zygotes, graders, kernels
            os.killpg(procs[name].pid, signal.SIGKILL)
            procs[name].wait()
            killed = name
            break
    assert killed, "no worker was busy half-way through the class"
    _, err = grader.communicate(timeout=600)
    assert grader.returncode == 0, err
    assert graded_so_far(course) == N_STUDENTS

    (q_ours, q_grades, q_subs), quiet = quiet_run
    ours, grades, subs = gradebook(course)
    assert ours == q_ours and grades == q_grades  # every grade, equal to one machine's
    assert subs == q_subs and all(n == 1 for _, n in subs)  # once each
    strip = lambda r: {s: (v["score"], v["status"]) for s, v in r.items()}  # noqa: E731
    assert strip(json.loads((tmp_path / "c.json").read_text())) == strip(quiet)

    time.sleep(1.0)  # what the killed worker had started died with it
    alive = [p for p in descendants if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert not alive, f"processes of the killed worker are still running: {alive}"
    assert len(client.scheduler_info()["workers"]) == 1  # the other one did the rest


def test_an_unreachable_scheduler_is_one_clear_line(tmp_path, capsys):
    import dask

    course = make_course(tmp_path / "course")
    (tmp_path / "class").mkdir()
    with dask.config.set({"distributed.comm.timeouts.connect": "2s"}):
        code = main(["grade", "toy", str(tmp_path / "class"), "--course", str(course),
                     "--scheduler", "tcp://127.0.0.1:9", "--quiet"])
        err = capsys.readouterr().err
        assert code == 2
        assert "--scheduler: cannot reach a Dask scheduler at tcp://127.0.0.1:9" in err
        code = main(["grade", "toy", str(tmp_path / "class"), "--course", str(course),
                     "--scheduler", str(tmp_path / "nowhere.json")])
        assert code == 2 and "no scheduler file" in capsys.readouterr().err
    code = main(["grade", "toy", str(tmp_path / "class"), "--course", str(course),
                 "--scheduler", "tcp://127.0.0.1:9", "--jobs", "2"])
    assert code == 2 and "--jobs" in capsys.readouterr().err


def test_a_submission_without_a_result_gets_a_zero_that_says_why():
    from autograder.grading import classroom

    KilledWorker = type("KilledWorker", (Exception,), {})  # distributed.scheduler.KilledWorker
    assert "every cluster worker that ran this submission died" in classroom._failure(KilledWorker())
    assert classroom._failure(KeyError("x")) == \
        "the grader failed on this submission (KeyError: 'x')"
    from distributed.scheduler import KilledWorker as Real
    assert "every cluster worker" in classroom._failure(Real("grade-s01", "tcp://w0", 3))


def test_problem_folders_on_a_cluster_get_the_single_machine_grades(dask_cluster, tmp_path):
    """A folder without a notebook, a notebook that is not JSON and one that is not UTF-8
    are graded as on one machine (the first by the coordinator, the others by a worker):
    each has its zero and its reason, and the honest student beside them full marks."""
    sched, _, _ = dask_cluster
    course = make_course(tmp_path / "course")
    folder = make_class(course, tmp_path / "class")
    for s in ("s00", "s02", "s03"):  # s01 answered both questions right
        (folder / s / "toy.ipynb").unlink()
    (folder / "s02" / "toy.ipynb").write_text("{ not json")
    (folder / "s03" / "toy.ipynb").write_bytes(b'{"cells": "\xff\xfe"}')
    for s in ("s04", "s05", "s06", "s07", "s08", "s09"):
        for f in (folder / s).iterdir():
            f.unlink()
        (folder / s).rmdir()
    runs = {}
    for where, extra in (("here", ["--jobs", "1"]), ("cluster", ["--scheduler", str(sched)])):
        out = tmp_path / f"{where}.json"
        assert main(["grade", "toy", str(folder), "--course", str(course), "--json", str(out),
                     "--quiet", *extra]) == 0
        runs[where] = json.loads(out.read_text())
    strip = lambda r: {s: (v["score"], v["status"], v["reason"]) for s, v in r.items()}  # noqa: E731
    assert strip(runs["cluster"]) == strip(runs["here"])
    got = runs["cluster"]
    assert got["s01"]["status"] == "graded" and got["s01"]["score"] == got["s01"]["max_score"]
    assert got["s00"]["status"] == "missing" and got["s00"]["reason"]
    assert got["s02"]["status"] == "unreadable" and "not valid notebook JSON" in got["s02"]["reason"]
    assert got["s03"]["status"] == "unreadable" and "not UTF-8" in got["s03"]["reason"]


def test_jobs_below_one_is_refused(tmp_path, capsys):
    course = make_course(tmp_path / "course")
    (tmp_path / "class").mkdir()
    for jobs in ("0", "-2"):
        code = main(["grade", "toy", str(tmp_path / "class"), "--course", str(course),
                     "--jobs", jobs])
        assert code == 2
        assert f"--jobs: expected a positive number, got {jobs}" in capsys.readouterr().err


def test_a_worker_hides_what_hidden_paths_makes(tmp_path, monkeypatch):
    """On a worker, ``grade_task`` grades with the course's places the command sent (a
    ``runner.Private``) and the worker's inbox: job.json holds hidden_paths' list for them."""
    import tempfile
    import types
    from pathlib import Path

    import nbformat

    from autograder.grading import cluster, runner
    from test_grading_cli import toy_source

    jobs = []

    def fake_child(job, limits, warm):
        jobs.append(json.loads(job.read_text()))
        return "the grading process failed (stopped by the test)", False, True

    monkeypatch.setattr(runner, "_run_child", fake_child)
    monkeypatch.setattr(distributed, "get_worker", lambda: types.SimpleNamespace(plugins={}))
    private = runner.Private(str(tmp_path / "course"), str(tmp_path / "class"),
                             f"sqlite:///{tmp_path / 'course' / 'gradebook.db'}")
    source = nbformat.writes(toy_source())
    result = cluster.grade_task(source, "kim", "toy.ipynb", source.encode(), runner.Limits(),
                                private)
    assert result.status == "crashed" and "stopped by the test" in result.reason
    job = jobs[0]
    assert job["hidden"] == runner.hidden_paths(private, Path(job["out_dir"]).parent,
                                                tempfile.gettempdir())
    assert str(tmp_path / "course") in job["hidden"] and str(tmp_path / "class") in job["hidden"]
