"""Hidden checks, one per autograded test cell (grade_id ``test_<function>``).

A hidden test cell in a solution notebook is a single call::

    from autograder.checks import run_check
    run_check("lstm", "test_lstm_step_forward", globals())

which raises ``CheckFailed`` (an AssertionError) with a message for the student when the
function is wrong. The logic of every check lives in this package, one module per
assignment, so that the grader can run the same checks outside the student's kernel.
"""
from importlib import import_module

from coursekit.expect import CheckFailed

from .core import ASSIGNMENTS, Check, Student

MODULES = ("rnn_bptt", "init_clip", "tbptt", "lstm", "gru", "word2vec", "char_rnn", "word_lm")


def load(assignment=None):
    """Import the check modules (all, or one assignment's) and return the registry."""
    for name in MODULES if assignment is None else (assignment,):
        if name not in MODULES:
            raise ValueError(f"assignment: expected one of {', '.join(MODULES)}, got {name!r}")
        import_module(f"{__name__}.{name}")
    return ASSIGNMENTS


def get_check(assignment, grade_id):
    """The registered Check for ``grade_id`` of ``assignment`` (ValueError when unknown)."""
    checks = load(assignment)[assignment].checks
    if grade_id not in checks:
        raise ValueError(f"grade_id: {assignment} has no check {grade_id!r}; "
                         f"known: {', '.join(checks)}")
    return checks[grade_id]


def run_check(assignment, grade_id, namespace):
    """Run the hidden check ``grade_id`` on the functions defined in ``namespace``.

    Raises CheckFailed with a message for the student on the first wrong case; prints one
    line when every case passes.
    """
    c = get_check(assignment, grade_id)
    c.run(Student(namespace, c))
    print(f"hidden tests of {c.function}: passed")


__all__ = ["ASSIGNMENTS", "Check", "CheckFailed", "MODULES", "Student", "get_check", "load",
           "run_check"]
