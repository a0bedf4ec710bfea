"""Grading on a Dask distributed cluster (``autograder grade ... --scheduler ADDRESS``).

The coordinating process (the one the instructor started) reads each submission, sends its
bytes to the cluster as one task, and records each result in the gradebook as it comes back;
workers never see the gradebook, the course folder or the other submissions. On a worker a
task is the same ``runner.grade`` as on one machine: the submission runs in a fresh,
sandboxed grading process and kernel of its own, forked from the worker's warm zygotes
(started once per worker by the ``WarmStarts`` plugin). The same code runs on a LocalCluster,
under dask-jobqueue (Slurm, PBS) or dask-kubernetes: the workers only need this package
installed, the same version as the coordinator.

A worker that dies mid-task loses nothing: the scheduler gives the task to another worker,
and since only the coordinator writes, a result arrives, and is recorded, once per student.
A submission that kills every worker it lands on (``distributed.scheduler.allowed-failures``,
3 by default) is recorded as crashed, with that reason.
"""
from __future__ import annotations

import contextlib
import tempfile
import uuid
from pathlib import Path

import nbformat

from . import kernel, runner, submissions
from .outcomes import UsageError

PLUGIN = "autograder-warm-starts"


def connect(address):
    """A ``distributed.Client`` on the scheduler at ``address`` (``tcp://host:port``, or a
    scheduler file written by ``dask scheduler --scheduler-file``); UsageError if none
    answers within Dask's ``distributed.comm.timeouts.connect`` (30 s by default). A
    scheduler file that does not exist yet is waited for as long (a script may start the
    scheduler and the grader one after the other)."""
    import time

    try:
        import dask
        from dask.utils import parse_timedelta
        from distributed import Client
    except ImportError:
        raise UsageError("--scheduler: the 'distributed' package is not installed "
                         "(pip install 'autograder[grading]')") from None
    wait = parse_timedelta(dask.config.get("distributed.comm.timeouts.connect"), "s")
    path = Path(address)
    try:
        if path.suffix == ".json" or path.is_file():
            deadline = time.monotonic() + wait
            while not path.is_file() and time.monotonic() < deadline:
                time.sleep(0.1)
            if not path.is_file():
                raise UsageError(f"--scheduler: no scheduler file at {address} (waited "
                                 f"{wait:g} s for one)")
            return Client(scheduler_file=str(path))
        if "://" not in address and ":" not in address:
            raise UsageError(f"--scheduler: expected an address like tcp://host:8786 or a "
                             f"scheduler file, got {address!r}")
        return Client(address)
    except UsageError:
        raise
    except (OSError, TimeoutError, ValueError) as e:  # ValueError: an address Dask cannot parse
        raise UsageError(f"--scheduler: cannot reach a Dask scheduler at {address} "
                         f"({type(e).__name__}: {e})") from None


def _plugin_class():
    from distributed.diagnostics.plugin import WorkerPlugin

    class WarmStarts(WorkerPlugin):
        """On each worker: the two zygotes of ``kernel`` and an inbox for submissions.

        Started from the worker's event loop, whose thread lives as long as the worker
        (a zygote dies with the thread that started it), and gone with the worker."""
        idempotent = True  # a second grader on the same cluster shares them
        name = PLUGIN

        def setup(self, worker):
            self.stack = contextlib.ExitStack()
            self.zygote, self.grader = (z.wait() for z in kernel.start_zygotes(self.stack))
            self.inbox = self.stack.enter_context(tempfile.TemporaryDirectory(prefix="inbox-"))

        def teardown(self, worker):
            self.stack.close()

    return WarmStarts


def grade_task(source_text, student, name, data, limits, private=runner.Private()):
    """On a worker: grade the notebook ``data`` (bytes, the file ``name``) of ``student``,
    its kernel reading nothing of the course's places ``private`` (a ``runner.Private``) nor
    of the worker's inbox; returns the runner.Result with ``executed`` as notebook JSON text
    (or None)."""
    from distributed import get_worker

    plugin = get_worker().plugins.get(PLUGIN)  # the worker's warm parents and inbox
    inbox = Path(plugin.inbox if plugin else tempfile.gettempdir()) / uuid.uuid4().hex
    inbox.mkdir()
    try:
        path = inbox / Path(name).name
        path.write_bytes(data)
        result = runner.grade(nbformat.reads(source_text, as_version=4),
                              submissions.Submission(student, path), limits,
                              runner.Warm(plugin.zygote, plugin.grader) if plugin else runner.Warm(),
                              private, inbox=inbox.parent)
    finally:
        for p in inbox.iterdir():
            p.unlink()
        inbox.rmdir()
    if result.executed is not None:
        result.executed = nbformat.writes(result.executed)
    return result


def grade_all(client, source, found, limits, private=runner.Private()):
    """Send every Submission of ``found`` to the cluster of ``client`` (``private``: the
    course's places, a ``runner.Private``); yields (submission, Result or the exception
    that stands for it) as they complete.

    A submission with no readable notebook is graded here (it needs no kernel)."""
    from distributed import as_completed

    client.register_plugin(_plugin_class()(), name=PLUGIN)
    shipped = client.scatter(nbformat.writes(source), broadcast=False, hash=True)
    futures, local = {}, []
    for sub in found:
        try:
            data = sub.notebook.read_bytes() if sub.notebook is not None and \
                sub.notebook.stat().st_size <= runner.MAX_NOTEBOOK_BYTES else None
        except OSError:
            data = None
        if data is None:  # missing, too large or unreadable: runner.grade says which
            local.append(sub)
            continue
        fut = client.submit(grade_task, shipped, sub.student, sub.notebook.name, data, limits,
                            private, key=f"grade-{sub.student}-{uuid.uuid4().hex[:8]}",
                            pure=False, retries=1)
        futures[fut] = sub
    for sub in local:
        yield sub, runner.grade(source, sub, limits, private=private)
    for fut in as_completed(futures):
        sub = futures.pop(fut)
        try:
            result = fut.result()
        except Exception as e:  # KilledWorker, or a bug of ours: the caller records a zero
            yield sub, e
            continue
        if result.executed is not None:
            result.executed = nbformat.reads(result.executed, as_version=4)
        yield sub, result
