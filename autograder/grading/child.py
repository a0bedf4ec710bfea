"""The grader's process for one submission: python -m autograder.grading.child JOB.

It runs no student code. It starts the student's kernel in a sandbox (``kernel.Kernel``),
sends it the notebook's cells one by one, and for each course test cell runs the hidden
check *here*, asking the kernel for values over a socket (``coursekit.serve``) and judging
them in this process. The verdicts it writes (``verdicts.json``, with the executed notebook
and ``status.json``) are the grade; they are saved after every cell, atomically, so that
whatever the parent has to kill, the cells judged so far still count.

JOB is a JSON file: {"notebook", "out_dir", "work", "chan", "cell_timeout", "hidden",
"sandbox"}.
"""
from __future__ import annotations

import ctypes
import json
import os
import socket
import sys
import time
from pathlib import Path

import nbformat

SERVE = "__import__('coursekit.serve', fromlist=['serve']).serve({path!r})"


def _save_json(path, data):
    tmp = path.with_suffix(".partial")
    tmp.write_text(json.dumps(data))
    os.replace(tmp, path)


def course_check(cell):
    """(assignment, grade_id) when ``cell`` is a course test cell whose hidden check runs
    here; the grader marked it when it restored the cell from the source."""
    mark = cell.get("metadata", {}).get("autograder", {}).get("check")
    return tuple(mark) if isinstance(mark, list) and len(mark) == 2 else None


def hidden_check(kernel, assignment, grade_id, timeout):
    """Run the check ``grade_id`` against the kernel's namespace; (passed, message)."""
    from autograder.checks import CheckFailed, get_check
    from autograder.checks.core import SocketLink, Student

    check = get_check(assignment, grade_id)
    path = kernel.new_socket_path()
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(1)
    deadline = time.monotonic() + timeout
    msg_id = kernel.client.execute(SERVE.format(path=path), silent=True, store_history=False,
                                   allow_stdin=False, stop_on_error=False)
    server.settimeout(min(30.0, timeout))
    try:
        conn, _ = server.accept()
    except OSError:
        conn = None
    finally:
        server.close()
    if conn is None:
        kernel.wait(msg_id, time.monotonic() + 5.0)
        return False, ("the hidden test could not reach the notebook's kernel (did a cell "
                       "change how the kernel runs code?)")
    link = SocketLink(conn, deadline)
    try:
        check.run(Student(link, assignment, forbid=check.forbid))
        passed, message = True, ""
    except CheckFailed as e:
        passed, message = False, str(e)
    except Exception as e:  # values our comparisons could not use: not a pass
        passed, message = False, (f"the hidden test could not use what your code returned "
                                  f"({type(e).__name__}: {str(e)[:200]})")
    finally:
        link.close()
        conn.close()
    run = kernel.wait(msg_id, max(deadline, time.monotonic() + 10.0))
    if passed and run.status == "dead":
        passed, message = False, "the kernel died during the hidden test"
    return passed, message


def _verdict_output(passed, message, function):
    if passed:
        return nbformat.v4.new_output("stream", name="stdout",
                                      text=f"hidden tests of {function}: passed\n")
    return nbformat.v4.new_output("error", ename="CheckFailed", evalue=message, traceback=[])


def main(job_path):
    job = json.loads(Path(job_path).read_text())
    out_dir = Path(job["out_dir"])
    nb = nbformat.read(job["notebook"], as_version=4)
    timeout = float(job["cell_timeout"])
    from autograder.grading.kernel import Kernel, Sandbox
    from coursekit.notebook import is_test_cell, nbgrader_meta

    # orphans of the kernel (a fork bomb's children) are re-parented here, where the
    # parent's kill of this process tree finds them
    try:
        ctypes.CDLL(None).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
    except (OSError, AttributeError):
        pass
    verdicts, status = {}, {"stopped": "", "walls": {}}

    def save():
        nbformat.write(nb, str(out_dir / "executed.partial"))
        os.replace(out_dir / "executed.partial", out_dir / "executed.ipynb")
        _save_json(out_dir / "verdicts.json", verdicts)
        _save_json(out_dir / "status.json", status)

    save()
    kernel = Kernel(job["work"], job["chan"], hidden=job.get("hidden", []),
                    sandbox=Sandbox(**job.get("sandbox", {})))
    try:
        kernel.start()
    except RuntimeError as e:
        status["stopped"] = str(e)
        save()
        kernel.kill()
        return
    status["walls"] = kernel.walls
    try:
        for index, cell in enumerate(nb.cells):
            if cell.cell_type != "code":
                continue
            gid = nbgrader_meta(cell).get("grade_id")
            mark = course_check(cell)
            if mark is not None:
                passed, message = hidden_check(kernel, mark[0], mark[1], timeout)
                verdicts[gid] = {"passed": passed, "message": message}
                cell.outputs = [_verdict_output(passed, message, gid.removeprefix("test_"))]
            else:
                run = kernel.execute(cell.source, timeout)
                cell.outputs = run.outputs
                if run.status in ("timeout", "hung"):
                    cell.outputs.append(nbformat.v4.new_output(
                        "error", ename="TimeoutError", traceback=[],
                        evalue=f"the cell ran for more than {timeout:g} s and was interrupted"))
                if is_test_cell(cell):
                    message = {"ok": "", "timeout": f"TimeoutError: the cell ran for more "
                               f"than {timeout:g} s", "hung": f"TimeoutError: the cell ran for "
                               f"more than {timeout:g} s", "dead": "the kernel died in this cell"
                               }.get(run.status, f"{run.ename}: {run.evalue}".strip(": "))
                    verdicts[gid] = {"passed": run.status == "ok", "message": message}
            cell.execution_count = index + 1
            if mark is None and run.status == "hung":
                kernel.kill()
                status["stopped"] = (f"cell {index + 1} ran past the time limit of {timeout:g} s "
                                     "and ignored the interrupt")
            elif not kernel.alive():
                status["stopped"] = (f"the notebook used more than {kernel.sandbox.memory >> 20} MiB "
                                     f"of memory (cell {index + 1})" if kernel.memory_exceeded
                                     else f"the kernel died while running cell {index + 1}")
            save()
            if status["stopped"]:
                break
    finally:
        kernel.kill()
        save()


if __name__ == "__main__":
    main(sys.argv[1])
