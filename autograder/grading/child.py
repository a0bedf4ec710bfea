"""The grader's process for one submission: python -m autograder.grading.child JOB.

It runs no student code. It starts the student's kernel in a sandbox (``kernel.Kernel``),
sends it the notebook's cells one by one, and for each course test cell runs the hidden
check *here*, asking the kernel for values over a socket (``coursekit.serve``) and judging
them in this process. The verdicts it writes (``verdicts.json``, with the executed notebook
and ``status.json``) are the grade; they are saved after every cell, atomically, so that
whatever the parent has to kill, the cells judged so far still count.

A kernel that dies (``os._exit``, a kill, the memory limit) or ignores an interrupt is
restarted, the cells before the one that killed it are run again, and grading goes on
after that cell: a crash costs the tests that were running, not the rest of the notebook.

JOB is a JSON file: {"notebook", "out_dir", "work", "chan", "cell_timeout", "hidden",
"sandbox", "zygote"}. ``python -m autograder.grading.child --zygote`` is the warm parent
the grader forks these processes from (``kernel.Zygote``).
"""
from __future__ import annotations

import ctypes
import json
import os
import sys
import time
from pathlib import Path
from typing import NamedTuple

from autograder.grading import clean
from autograder.grading.outcomes import CellStatus, KernelState
from coursekit.expect import Failure

MAX_RESTARTS = 3
# what the grading process may allocate beyond what it holds when it starts: the checks need
# a few MiB; the limits on what a kernel may send (coursekit.wire.GRADER_LIMITS) and ask of
# the reference (checks.core.StandIns) keep it far below
GRADER_MEMORY = 1 << 30


def bound_memory(extra=GRADER_MEMORY):
    """Cap this process's data (heap and private writable mappings, RLIMIT_DATA) at what
    it holds now plus ``extra`` bytes: past it an allocation fails with MemoryError (which
    fails the test that caused it), instead of the machine running out of memory."""
    import resource

    try:
        with open("/proc/self/status") as f:
            data = next(int(line.split()[1]) << 10 for line in f if line.startswith("VmData:"))
        resource.setrlimit(resource.RLIMIT_DATA,
                           (data + extra, resource.getrlimit(resource.RLIMIT_DATA)[1]))
    except (OSError, ValueError, StopIteration):
        pass


def _save_json(path, data):
    tmp = path.with_suffix(".partial")
    tmp.write_text(json.dumps(data))
    os.replace(tmp, path)


def course_check(cell):
    """(assignment, grade_id) when ``cell`` is a course test cell whose hidden check runs
    here; the grader marked it when it restored the cell from the source."""
    mark = cell.get("metadata", {}).get("autograder", {}).get("check")
    return tuple(mark) if isinstance(mark, list) and len(mark) == 2 else None


class Verdict(NamedTuple):
    """What a hidden check found. ``message`` is the grader's own words (it goes to the
    gradebook and the feedback); ``detail``, the student's exception text if any, only to the
    executed notebook that the instructor reads; ``kind`` and ``hint`` say what the mistake
    was as values (the report counts mistakes by them)."""
    passed: bool
    message: str = ""
    detail: str = ""
    kind: Failure | None = None
    hint: str | None = None

    def record(self):
        """The verdict as verdicts.json holds it."""
        return {"passed": self.passed, "message": self.message,
                "kind": None if self.kind is None else str(self.kind), "hint": self.hint}


def hidden_check(kernel, assignment, grade_id, timeout, earlier=None):
    """Run the check ``grade_id`` against the kernel's namespace; returns a Verdict.

    ``earlier``: {grade_id: passed} of the hidden tests already run (a backward's test does
    not run a forward that failed its own again: ``checks.core.Student.cache_for``)."""
    from autograder.checks import CheckFailed, get_check
    from autograder.checks.core import KernelGone, SocketLink, Student

    check = get_check(assignment, grade_id)
    try:
        conn = kernel.connect()
    except OSError:
        return Verdict(False, "the hidden test could not reach the notebook's kernel", kind=Failure.KERNEL)
    link = SocketLink(conn, time.monotonic() + timeout, connect=kernel.connect)
    gone, detail, kind, hint = False, "", None, None
    try:
        check.run(Student(link, check, earlier))
        passed, message = True, ""
    except CheckFailed as e:
        passed, message, kind, hint = False, str(e), e.kind, e.hint
        detail = getattr(e, "detail", "")
        gone = isinstance(e, KernelGone)
    except Exception as e:  # values our comparisons could not use: not a pass
        passed, message, kind = False, ("the hidden test could not use what your code returned "
                                        f"({type(e).__name__})"), Failure.TYPE
        detail = f"{type(e).__name__}: {str(e)[:300]}"
    finally:
        link.close()
        conn.close()
    if gone:
        kernel.settle()  # a kernel going down is seen dead before the next cell runs
    if passed and not kernel.alive():
        passed, message, kind = False, "the kernel died during the hidden test", Failure.KERNEL
    return Verdict(passed, clean.text(message, 2000), clean.text(detail, 2000), kind,
                   None if hint is None else clean.text(hint, 500))


def _verdict_output(passed, message, detail, function):
    if passed:
        return {"output_type": "stream", "name": "stdout",
                "text": f"hidden tests of {function}: passed\n"}
    lines = [f"hidden tests of {function}: failed", *message.splitlines()]
    if detail:
        lines.append(f"  the notebook's own message (shown to the instructor only): {detail}")
    return {"output_type": "error", "ename": "CheckFailed", "evalue": message,
            "traceback": lines}


def _after(status, alive):
    """The kernel's state after a cell that ended with ``status`` (a CellStatus)."""
    if status is CellStatus.HUNG:
        return KernelState.HUNG
    return KernelState.DEAD if status is CellStatus.DEAD or not alive else KernelState.OK


def _source(cell):
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else str(src)


class Grading:
    """The state of one submission's grading: notebook, kernel, verdicts, incidents.

    ``verdicts`` (verdicts.json): {grade_id: ``Verdict.record()``}. ``status``
    (status.json): ``finished`` (bool: every cell ran; the runner decides on it),
    ``why_stopped`` (when not, the words for the instructor), ``walls`` (what the sandbox
    put up), ``incidents`` (texts), ``kernels`` ([{pid, cgroup}] started), ``kernel_seconds``
    (one per start), ``cell_seconds`` ({cell number: seconds} of the cells and hidden
    tests), ``grader_kib`` (this process's peak resident memory)."""

    def __init__(self, job):
        from autograder.grading.kernel import Sandbox

        self.job = job
        self.out_dir = Path(job["out_dir"])
        # written by the grader (runner.prepare), read as plain JSON: importing and
        # validating with nbformat would be much of this process's start
        self.nb = json.loads(Path(job["notebook"]).read_text())
        self.timeout = float(job["cell_timeout"])
        self.sandbox = Sandbox(**job.get("sandbox", {}))
        self.verdicts = {}
        self.status = {"finished": False, "why_stopped": "", "walls": {}, "incidents": [],
                       "kernel_seconds": [], "cell_seconds": {}}
        self.kernel, self.starts = None, 0
        self._saved = 0.0  # when the executed notebook was last written

    def save(self, notebook=True):
        """Write the verdicts and the status (after every cell: whatever happens next, the
        verdicts so far count), and the executed notebook when ``notebook``."""
        import resource

        self.status["grader_kib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        if notebook:
            _save_json(self.out_dir / "executed.ipynb", self.nb)
            self._saved = time.monotonic()
        _save_json(self.out_dir / "verdicts.json", self.verdicts)
        _save_json(self.out_dir / "status.json", self.status)

    def start_kernel(self):
        from autograder.grading.kernel import Kernel

        if self.kernel is not None:
            self.kernel.kill()
        self.starts += 1
        self.kernel = Kernel(self.job["work"], Path(self.job["chan"]) / f"k{self.starts}",
                             hidden=self.job.get("hidden", []), sandbox=self.sandbox,
                             zygote=self.job.get("zygote"))
        t = time.monotonic()
        try:
            self.kernel.start()
        finally:  # the parent kills it if we cannot (a forked kernel is not our child)
            if self.kernel.proc is not None:
                self.status["kernels"] = self.status.get("kernels", []) + [
                    {"pid": self.kernel.proc.pid,
                     "cgroup": self.kernel.cgroup.to_json() if self.kernel.cgroup else None}]
                self.save(notebook=False)
        self.status["walls"] = self.kernel.walls
        self.status["kernel_seconds"].append(round(time.monotonic() - t, 3))

    def run_cell(self, index, cell):
        """Run one code cell, recording its outputs and, for a test cell, its verdict;
        returns the kernel's state afterwards."""
        from coursekit.notebook import is_test_cell, nbgrader_meta

        gid = nbgrader_meta(cell).get("grade_id")
        mark = course_check(cell)
        if mark is not None:
            earlier = {g: v.get("passed") is True for g, v in self.verdicts.items()}
            verdict = hidden_check(self.kernel, mark[0], mark[1], self.timeout, earlier)
            self.verdicts[gid] = verdict.record()
            cell["outputs"] = [_verdict_output(verdict.passed, verdict.message, verdict.detail,
                                               gid.removeprefix("test_"))]
            cell["execution_count"] = index + 1  # it ran (here, not in the kernel): no "In [ ]"
            return KernelState.OK if self.kernel.alive() else KernelState.DEAD
        run = self.kernel.execute(_source(cell), self.timeout)
        cell["outputs"] = run.outputs
        cell["execution_count"] = index + 1
        late = f"the cell ran for more than {self.timeout:g} s"
        if run.status in (CellStatus.TIMEOUT, CellStatus.HUNG):
            cell["outputs"].append({"output_type": "error", "ename": "TimeoutError",
                                    "traceback": [f"TimeoutError: {late} and was interrupted"],
                                    "evalue": f"{late} and was interrupted"})
        if is_test_cell(cell):
            message = {CellStatus.OK: "", CellStatus.TIMEOUT: f"TimeoutError: {late}",
                       CellStatus.HUNG: f"TimeoutError: {late}",
                       CellStatus.DEAD: "the kernel died in this cell",
                       CellStatus.ERROR: clean.text(f"{run.ename}: {run.evalue}".strip(": "), 2000)
                       }[run.status]
            kind = {CellStatus.OK: None, CellStatus.TIMEOUT: Failure.TIMEOUT,
                    CellStatus.HUNG: Failure.TIMEOUT, CellStatus.DEAD: Failure.KERNEL,
                    CellStatus.ERROR: Failure.OTHER}[run.status]
            self.verdicts[gid] = Verdict(run.status is CellStatus.OK, message, kind=kind).record()
        return _after(run.status, self.kernel.alive())

    def replay_cell(self, cell):
        """Run one code cell of those before a crash again, recording nothing (a test cell's
        hidden check is not run again: its verdict stands); returns the kernel's state."""
        if course_check(cell) is not None:
            return KernelState.OK
        return _after(self.kernel.execute(_source(cell), self.timeout).status, True)

    def incident(self, index, state):
        k = self.kernel
        if state is KernelState.HUNG:
            return f"cell {index + 1} ignored the interrupt at the time limit"
        if k.ran_out_of_memory():
            return f"cell {index + 1} used more than {self.sandbox.memory >> 20} MiB of memory"
        return f"the kernel died in cell {index + 1}"

    def recover(self, index):
        """A fresh kernel with the cells before ``index`` run again; False if that fails."""
        try:
            self.start_kernel()
        except RuntimeError:
            return False
        for i, cell in enumerate(self.nb["cells"][:index]):
            if cell["cell_type"] == "code" and self.replay_cell(cell) is not KernelState.OK:
                return False
        return True

    def run(self):
        self.save()
        try:
            self.start_kernel()
        except RuntimeError as e:
            self.status["why_stopped"] = str(e)
            return
        restarts = 0
        for index, cell in enumerate(self.nb["cells"]):
            if cell["cell_type"] != "code":
                continue
            t = time.monotonic()
            state = self.run_cell(index, cell)
            self.status["cell_seconds"][str(index + 1)] = round(time.monotonic() - t, 3)
            # the kernel's watch appends from its thread: take what is there, keep what comes
            seen = len(self.kernel.defused)
            for what in self.kernel.defused[:seen]:
                self.status["incidents"].append(f"cell {index + 1} {what.value}; they were killed")
            del self.kernel.defused[:seen]
            if state is not KernelState.OK:
                what = self.incident(index, state)
                if restarts < MAX_RESTARTS and self.recover(index):
                    restarts += 1
                    self.status["incidents"].append(f"{what}; the kernel was restarted and "
                                                    f"cells 1-{index} run again")
                else:
                    self.status["why_stopped"] = what
                    self.save()
                    return
            # the notebook (outputs, for the instructor) at most every second; the
            # verdicts after every cell
            self.save(notebook=time.monotonic() - self._saved > 1.0)
        self.status["finished"] = True


def main(job_path):
    """Grade the job at ``job_path``; a failure of ours is written to error.txt beside it."""
    try:
        _main(job_path)
    except BaseException as e:
        (Path(job_path).parent / "error.txt").write_text(f"{type(e).__name__}: {str(e)[:200]}")
        raise


def zygote():
    """A warm parent for this module's processes (``kernel.Zygote``): torch, the checks
    and Jupyter's client imported once, one fork per submission."""
    from autograder import checks
    from autograder.grading import cgroups, kernel, kernel_zygote

    checks.load()
    kernel.machine_walls()  # probed once here, inherited by every grading process
    cgroups.support()
    try:
        import torch  # noqa: F401
    except ImportError:
        pass
    import jupyter_client  # noqa: F401
    import psutil  # noqa: F401
    import zmq  # noqa: F401

    def run(req):
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):  # the zygote's stdout is a pipe nobody reads any more
            os.dup2(null, fd)
        main(req["job"])

    kernel_zygote.fork_server(run, ctypes.CDLL(None).prctl)


def _main(job_path):
    job = json.loads(Path(job_path).read_text())
    # orphans of the kernel (a fork bomb's children) are re-parented here, where the
    # watchdog and the parent's kill of this process tree find them
    try:
        libc = ctypes.CDLL(None)
        libc.prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
        libc.prctl(1, 9, 0, 0, 0)  # PR_SET_PDEATHSIG: a killed grader takes us along
    except (OSError, AttributeError):
        pass
    bound_memory()
    grading = Grading(job)
    if "torch" not in sys.modules and any("torch" in _source(c) for c in grading.nb["cells"]):
        # the checks of a PyTorch notebook need torch here too: imported while the
        # kernel starts, on another core
        import threading

        threading.Thread(target=__import__, args=("torch",), daemon=True).start()
    try:
        grading.run()
    finally:
        grading.save()
        if grading.kernel is not None:  # the parent removes its cgroup once it is gone
            grading.kernel.kill(wait=False)


if __name__ == "__main__":
    if sys.argv[1] == "--zygote":
        zygote()
    else:
        main(sys.argv[1])
