"""The hidden checks against the solution notebooks and against simulated student mistakes.

Runs the answer cells of each solution notebook in-process (no kernel, no experiments):
- the solutions pass every check of their assignment;
- every mistake in tests/mistakes/<assignment>.py, a text replacement in one answer cell,
  fails the check of that function and no other (each function is graded on its own), or,
  for a cache holding the wrong arrays, the checks of the functions that read it, saying
  that they were tested with the student's own cache;
- every function has at least three mistakes, and the notebook's test cells match the
  registry (grade_id test_<function>, the same points, the hidden block is one run_check call).
"""
import importlib.util
from pathlib import Path

import pytest

from autograder import checks
from autograder.checks import CheckFailed, Student
from coursekit.expect import Failure
from autograder.grading import notebooks
from solved import solution_namespace

MISTAKE_DIR = Path(__file__).parent / "mistakes"
REGISTRY = checks.load()
READY = [a for a in checks.MODULES if notebooks.notebook_path(a).is_file()]


def mistakes(assignment):
    """(function, description, old, new, failing): ``failing`` is the functions whose checks
    the mistake fails (its own unless the entry lists others)."""
    path = MISTAKE_DIR / f"{assignment}.py"
    if not path.is_file():
        return []
    spec = importlib.util.spec_from_file_location(f"mistakes_{assignment}", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return [(f, d, old, new, tuple(rest[0]) if rest else (f,))
            for f, d, old, new, *rest in mod.MISTAKES]


def verdicts(assignment, replace=None):
    """grade_id -> None (passed) or the CheckFailed, for every check of the assignment."""
    a = REGISTRY[assignment]
    ns = solution_namespace(assignment, a.functions, replace)
    out = {}
    for grade_id, c in a.checks.items():
        try:
            c.run(Student(ns, c))
            out[grade_id] = None
        except CheckFailed as e:
            out[grade_id] = e
    return out


@pytest.mark.parametrize("assignment", READY)
def test_solution_passes_every_check(assignment):
    failed = {g: str(m) for g, m in verdicts(assignment).items() if m}
    assert not failed


@pytest.mark.parametrize("assignment", READY)
def test_test_cells_match_the_registry(assignment):
    nb = notebooks.read(notebooks.notebook_path(assignment))
    cells = notebooks.cells_by_id(nb)
    assert "setup" in cells and notebooks.nbgrader_meta(cells["setup"]).get("locked")
    registered = REGISTRY[assignment].checks
    in_notebook = dict(notebooks.test_cells(nb))
    assert set(registered) <= set(in_notebook)
    for grade_id, c in registered.items():
        assert in_notebook[grade_id] == c.points >= 1
        assert c.function in cells, f"no answer cell with grade_id {c.function}"
        hidden = cells[grade_id].source.split("### BEGIN HIDDEN TESTS")[1].split("### END HIDDEN TESTS")[0]
        assert hidden.strip() == ("from autograder.checks import run_check\n"
                                  f'run_check("{assignment}", "{grade_id}", globals())')


@pytest.mark.parametrize("assignment", READY)
def test_every_function_has_three_mistakes(assignment):
    counts = {f: 0 for f in REGISTRY[assignment].functions}
    for function, *_ in mistakes(assignment):
        counts[function] += 1
    assert all(n >= 3 for n in counts.values()), counts


def _cases():
    """Every mistake of every assignment; all but the first of each function are marked
    slow (``make check`` runs one mistake per function, ``make test`` all of them)."""
    cases, seen = [], set()
    for a in READY:
        for m in mistakes(a):
            first = (a, m[0]) not in seen
            seen.add((a, m[0]))
            cases.append(pytest.param(a, *m, id=f"{a}-{m[0]}-{m[1]}",
                                      marks=() if first else pytest.mark.slow))
    return cases


MISTAKE_CASES = _cases()


@pytest.mark.parametrize("assignment, function, description, old, new, failing", MISTAKE_CASES)
def test_a_mistake_costs_only_its_function(assignment, function, description, old, new, failing):
    v = verdicts(assignment, {function: (old, new)})
    failed = {g for g, m in v.items() if m}
    assert failed == {f"test_{f}" for f in failing}, {g: str(v[g]) for g in failed}
    for f in failing:
        # the mistake is named as values (the instructor's report counts mistakes by them)
        e = v[f"test_{f}"]
        assert e.kind is not Failure.OTHER and e.hint, (e.kind, str(e))
        assert f"hint: {e.hint}" in str(e)  # the student reads the same hint
        if f != function:  # a cache mistake: the reader was given the student's own cache
            assert f"with the cache your own {function} returned" in str(e)
