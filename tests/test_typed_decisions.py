"""No control decision of the grader or the students' kit reads human text.

Messages (a check's failure, an exception's text, why a run stopped) are written for people
and may be reworded at any time; what the code does next must follow typed values (the
enums of ``autograder/grading/outcomes.py``, exception classes, fields). This scans the
source for comparisons that test a message's words.
"""
import ast
from pathlib import Path

import pytest

from autograder.grading import outcomes

ROOT = Path(__file__).resolve().parents[1]
SOURCES = sorted(p for d in ("autograder", "coursekit") for p in (ROOT / d).rglob("*.py"))
# names that hold text for people: a test of their words is a decision on text
TEXTUAL = ("message", "msg", "reason", "problem", "evalue", "stopped", "text", "detail", "note")


def _is_text(node):
    """Whether ``node`` evaluates to human text: str(e), e.args, or a name that holds one."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "str":
        return bool(node.args) and not isinstance(node.args[0], ast.Constant)
    if isinstance(node, ast.Attribute) and node.attr == "args":
        return True
    if isinstance(node, ast.Subscript):  # msg["msg_type"] is a field; r["reason"], text
        key = node.slice
        if isinstance(key, ast.Constant) and isinstance(key.value, str):
            return key.value.lower() in TEXTUAL
        return _is_text(node.value)
    name = node.id if isinstance(node, ast.Name) else node.attr if isinstance(
        node, ast.Attribute) else None
    return name is not None and any(t in name.lower() for t in TEXTUAL)


def _words(node):
    """A string constant with words in it (not '', not a single character)."""
    return isinstance(node, ast.Constant) and isinstance(node.value, str) and len(node.value) > 1


def text_decisions(tree):
    """(line, source) of every comparison of a message's text with words."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare):
            sides = [node.left, *node.comparators]
            ops = node.ops
            if any(isinstance(op, (ast.In, ast.NotIn, ast.Eq, ast.NotEq)) for op in ops) and \
                    any(_words(s) for s in sides) and any(_is_text(s) for s in sides):
                found.append((node.lineno, ast.unparse(node)))
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and \
                node.func.attr in ("startswith", "endswith", "search", "match", "fullmatch") \
                and (_is_text(node.func.value) or any(_is_text(a) for a in node.args)):
            found.append((node.lineno, ast.unparse(node)))
    return found


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_decision_reads_message_text(path):
    found = text_decisions(ast.parse(path.read_text(), str(path)))
    assert not found, f"{path.relative_to(ROOT)} decides on the words of a message: {found}"


@pytest.mark.parametrize("code", [
    'if "in place" in str(e): pass',
    'if "stopped answering" in message: pass',
    'ok = message == "not run"',
    'status = "timeout" if "time limit" in problem else "crashed"',
    'if run.evalue.startswith("Timeout"): pass',
    'if "OverflowError" not in e.args[0]: pass',
    'if r["reason"] == "no notebook": pass',
])
def test_the_scan_sees_the_decisions_it_forbids(code):
    """Each way of deciding on words that the grader once used, caught by the scan."""
    assert text_decisions(ast.parse(code))


@pytest.mark.parametrize("code", [
    'if not message: message = "the test failed"',
    'if run.status is CellStatus.HUNG: pass',
    'if e.exception != "OverflowError": raise',
    'if kind == "stream": pass',
    'if msg["msg_type"] == "execute_reply": pass',
])
def test_the_scan_lets_typed_decisions_through(code):
    assert not text_decisions(ast.parse(code))


def test_the_outcomes_are_written_as_their_plain_values():
    """The enums cross processes through JSON and the gradebook as their values."""
    import json

    for enum in (outcomes.Status, outcomes.CellStatus, outcomes.KernelState, outcomes.Defused):
        for member in enum:
            assert json.loads(json.dumps({"s": member})) == {"s": member.value}
            assert f"{member}" == member.value and enum(member.value) is member
