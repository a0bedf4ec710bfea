"""Shared fixtures: seeded generators, the torch device list (CUDA only when present),
Debian's Chromium driven by Playwright (the book's and the formgrader's browser tests), and
the book's build, started in the background as soon as a session selects a test that needs it."""
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from threadpoolctl import threadpool_limits

CHROMIUM = "/usr/bin/chromium"

# The book's chapters execute beside the tests, a process per core (scripts/execute_book.py),
# and the grader shares the cores out among its kernels: this process takes one thread too,
# since numeric libraries with a thread per core on an oversubscribed machine spin-wait
# (benchmarks/oversubscription.py)
threadpool_limits(1)
torch.set_num_threads(1)

CUDA_SKIP = pytest.mark.skipif(not torch.cuda.is_available(),
                               reason="no CUDA device on this machine (CI has none); CPU path tested")

DEVICES = ["cpu", pytest.param("cuda", marks=CUDA_SKIP)]


@pytest.fixture
def rng():
    return np.random.default_rng(0)


# What `make check` (pytest -m "not slow") leaves out, by file: the edit-test loop keeps the
# reference, the checks (one simulated mistake per graded function: the others are marked
# slow in test_assignment_checks.py), the wire, the CLI on a tiny class and the book's helpers.
SLOW = {
    "test_book.py": "builds the book and reads it in Chromium",
    "test_adversarial.py": "grades every assignment's hostile class",
    "test_walls.py": "grades a hostile class against the sandbox's walls",
    "test_docs_commands.py": "runs the README's commands in a fresh copy of the repository",
    "test_grading_cluster.py": "grades on a dask cluster",
    "test_grading_postgres.py": "grades into a PostgreSQL gradebook",
    "test_grading_durability.py": "kills and resumes graders mid-class",
    "test_nbgrader_fixtures.py": "runs nbgrader autograde side by side",
    "test_course_notebooks.py": "executes every solution notebook",
    "test_sandbox.py": "starts kernels cold and warm, wall by wall",
    "test_formgrader.py": "grades a class and starts a Jupyter server with the formgrader",
}


def pytest_collection_modifyitems(config, items):
    for item in items:
        why = SLOW.get(item.path.name)
        if why is not None:
            item.add_marker(pytest.mark.slow(reason=why))


ROOT = Path(__file__).resolve().parents[1]
BOOK_LOG = ROOT / "_build" / "make-book.log"
BOOK_BUILD = pytest.StashKey[subprocess.Popen]()
BOOK_SECONDS = pytest.StashKey[dict]()


def start_book_build(config):
    """`make book` in the background (once per session); its output goes to BOOK_LOG."""
    if BOOK_BUILD not in config.stash:
        BOOK_LOG.parent.mkdir(exist_ok=True)
        with open(BOOK_LOG, "w") as log:
            # its own process group, so that an early end of the session stops all of it
            build = subprocess.Popen(["make", "book"], cwd=ROOT, stdout=log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        config.stash[BOOK_BUILD], times = build, {"start": time.monotonic()}
        config.stash[BOOK_SECONDS] = times
        threading.Thread(target=lambda: (build.wait(), times.update(end=time.monotonic())),
                         daemon=True).start()
    return config.stash[BOOK_BUILD]


def pytest_terminal_summary(terminalreporter, config):
    """How long the book's build took beside the tests, chapter by chapter (a CI log
    keeps this; the cold build's time is a target of its own)."""
    times = config.stash.get(BOOK_SECONDS, None)
    if times is None or "end" not in times:
        return
    terminalreporter.section("the book's build (make book, beside the tests)")
    lines = [line for line in BOOK_LOG.read_text(errors="replace").splitlines()
             if line.startswith("execute_book:")]
    for line in lines:
        terminalreporter.write_line(line)
    terminalreporter.write_line(f"make book: {times['end'] - times['start']:.0f} s in all, "
                                f"exit status {config.stash[BOOK_BUILD].returncode}")


def pytest_collection_finish(session):
    """When the book's tests are selected (after -m and -k), its build starts now and they
    run last, so that the build (mostly the chapters' experiments) overlaps the other tests
    instead of adding to them."""
    book = [item for item in session.items if "built_book" in item.fixturenames]
    if book and not session.config.option.collectonly:
        session.items[:] = [item for item in session.items if item not in book] + book
        start_book_build(session.config)


def pytest_unconfigure(config):
    build = config.stash.get(BOOK_BUILD, None)
    if build is not None and build.poll() is None:  # the session ended before the book tests
        os.killpg(build.pid, signal.SIGTERM)
        build.wait()


FAILED = pytest.StashKey[bool]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """Records on the test item whether its call failed (``item.stash[FAILED]``), so that a
    fixture's teardown can keep what a failure needs (the browser tests' screenshots)."""
    report = yield
    if report.when == "call" and report.failed:
        item.stash[FAILED] = True
    return report


@pytest.fixture(scope="session")
def browser():
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing: .ci/run must install Debian's chromium")
        pytest.skip(f"{CHROMIUM} not installed (apt-get install chromium); CI runs these tests")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=[
            "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync"])
        yield b
        b.close()
