"""Run a course notebook and read its test cells: what ``python -m coursekit check`` does.

A student's check runs the notebook in a plain local kernel with the visible tests only.
The grader does not use this ``execute``: it runs each cell in a sandboxed kernel and the
hidden tests in its own process (``autograder/grading/child.py``), so its verdicts can
differ where the hidden tests find what the visible ones do not.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

CELL_TIMEOUT = 120  # seconds; room for the longest solution cell (an experiment) on a loaded machine


def nbgrader_meta(cell):
    """The nbgrader metadata of a cell ({} for a cell without)."""
    return cell.get("metadata", {}).get("nbgrader", {})


def is_test_cell(cell):
    """An autograded test cell: nbgrader grade cell that is code and not an answer."""
    m = nbgrader_meta(cell)
    return cell.get("cell_type") == "code" and bool(m.get("grade")) and not m.get("solution")


def execute(nb, cwd, cell_timeout=CELL_TIMEOUT):
    """Execute every code cell of ``nb`` in a fresh python3 kernel, in place, errors allowed.

    A cell that runs past ``cell_timeout`` seconds is interrupted and gets a TimeoutError
    output; a dead kernel stops the run (the remaining cells keep no outputs).
    Returns None, or a sentence saying why the run stopped early.
    """
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import DeadKernelError

    client = NotebookClient(
        nb, timeout=cell_timeout, allow_errors=True, kernel_name="python3",
        interrupt_on_timeout=True, record_timing=False,
        error_on_timeout={"ename": "TimeoutError",
                          "evalue": f"the cell ran for more than {cell_timeout} s and was interrupted",
                          "traceback": []},
        resources={"metadata": {"path": str(cwd)}})
    stopped = None
    # the kernel's own chatter (transport warnings) is not the student's output
    with client.setup_kernel(cwd=str(cwd), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL):
        for index, cell in enumerate(nb.cells):
            if cell.cell_type != "code":
                continue
            try:
                client.execute_cell(cell, index)
            except DeadKernelError:
                stopped = f"the kernel died while running cell {index + 1}"
                cell.outputs = [nbformat.v4.new_output(
                    "error", ename="DeadKernelError", evalue=stopped, traceback=[])]
            if stopped:
                break
    return stopped


def outcome(cell):
    """(passed, message) of an executed test cell; message is '' when it passed."""
    if cell.get("execution_count") is None and not cell.get("outputs"):
        return False, "not run"
    for out in cell.get("outputs", []):
        if out.get("output_type") == "error":
            name, value = out.get("ename", "Error"), (out.get("evalue") or "").strip()
            if name == "NotImplementedError" and not value:
                value = "a function this test calls is not implemented yet"
            return False, f"{name}: {value}" if value else f"{name} (a test assertion failed)"
    return True, ""


def report(nb):
    """Rows (grade_id, points, passed, first line of the message) for the test cells."""
    rows = []
    for cell in nb.cells:
        if is_test_cell(cell):
            m = nbgrader_meta(cell)
            passed, message = outcome(cell)
            rows.append((m["grade_id"], float(m.get("points", 0)), passed,
                         message.splitlines()[0] if message else ""))
    return rows


def check(path, cell_timeout=CELL_TIMEOUT, out=None):
    """Execute the notebook at ``path`` and print a table of its (visible) tests.

    Returns 0 when every test cell passed, 1 otherwise, 2 when the file cannot be read.
    The notebook on disk is not changed.
    """
    import nbformat

    path, out = Path(path), out or sys.stdout
    try:
        nb = nbformat.read(str(path), as_version=4)
    except Exception as e:  # any unreadable file is reported, not raised
        print(f"{path}: cannot read the notebook ({type(e).__name__}: {e})", file=out)
        return 2
    stopped = execute(nb, path.resolve().parent, cell_timeout)
    rows = report(nb)
    if not rows:
        print(f"{path}: no test cells found (is this a course notebook?)", file=out)
        return 1
    width = max(len(r[0]) for r in rows)
    print(f"{'test':<{width}}  points  result", file=out)
    for grade_id, points, passed, message in rows:
        result = "passed" if passed else f"FAILED  {message}"
        print(f"{grade_id:<{width}}  {points:>6g}  {result}", file=out)
    n_ok = sum(r[2] for r in rows)
    print(f"{n_ok} of {len(rows)} tests passed" + (f" ({stopped})" if stopped else "")
          + ("; visible tests only: the hidden tests run when your instructor grades."
             if n_ok == len(rows) else ""), file=out)
    return 0 if n_ok == len(rows) else 1


def main(argv=None):
    """``python -m coursekit check NOTEBOOK``: returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m coursekit",
                                     description="Tools for the course's notebooks.")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("check", help="run a notebook and list which of its tests pass")
    p.add_argument("notebook")
    p.add_argument("--cell-timeout", type=int, default=CELL_TIMEOUT, metavar="SECONDS")
    args = parser.parse_args(argv)
    os.environ.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")
    return check(args.notebook, args.cell_timeout)
