"""The typed outcomes that cross the grader's processes and files.

Every decision about how grading goes on reads one of these fields, never the text of a
message: the messages are for people and may be reworded freely. Each is a ``StrEnum``, so
it is written into JSON files, the gradebook and ``--json`` as its plain value. And one
exception class: ``UsageError``, what the command reports as a mistake of its user.
"""
from __future__ import annotations

from enum import StrEnum


class Status(StrEnum):
    """How the grading of one submission ended (``Result.status``; the ``status`` of the
    gradebook's records and of ``--json``)."""
    GRADED = "graded"          # every cell ran (tests may have failed)
    TIMEOUT = "timeout"        # the notebook ran past its time limit; what ran counts
    CRASHED = "crashed"        # grading stopped early (a kernel that would not restart, ...)
    MISSING = "missing"        # no notebook in the student's folder
    UNREADABLE = "unreadable"  # a file that is not a notebook we can grade
    # only in the export: a student in the gradebook we hold no record of
    NOT_SUBMITTED = "not submitted"
    BY_NBGRADER = "graded by nbgrader"


class CellStatus(StrEnum):
    """How one cell ended in the kernel (``kernel.Run.status``)."""
    OK = "ok"
    ERROR = "error"      # it raised
    TIMEOUT = "timeout"  # interrupted at the time limit; the kernel goes on
    HUNG = "hung"        # the interrupt was ignored: the kernel is still busy
    DEAD = "dead"        # the kernel died


class KernelState(StrEnum):
    """The kernel after a cell (``child.Grading.run_cell``): usable, or to be restarted."""
    OK = "ok"
    DEAD = "dead"
    HUNG = "hung"


class Defused(StrEnum):
    """What the watch killed of a kernel's processes, the kernel itself going on."""
    PROCESSES = "started too many processes"
    MEMORY = "started processes that ran out of memory"


class UsageError(ValueError):
    """A command-line argument or setting is wrong; the message names it and says what was
    expected. ``autograder`` prints it as one line and exits with status 2; any other
    exception is a bug of ours and keeps its traceback."""
