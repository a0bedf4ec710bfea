"""No control decision of the grader or the students' kit reads human text.

Messages (a check's failure, an exception's text, why a run stopped) are written for people
and may be reworded at any time; what the code does next must follow typed values (the
enums of ``autograder/grading/outcomes.py``, exception classes, fields). This scans the
source for comparisons that test a message's words, and for an outcome of grading chosen on
whether a message is empty.
"""
import ast
from pathlib import Path

import pytest

from autograder.grading import outcomes

ROOT = Path(__file__).resolve().parents[1]
SOURCES = sorted(p for d in ("autograder", "coursekit") for p in (ROOT / d).rglob("*.py"))
# names that hold text for people: a test of their words is a decision on text
TEXTUAL = ("message", "msg", "reason", "problem", "evalue", "stopped", "text", "detail", "note",
           "why", "label", "hint", "incident", "stdout", "stderr", "what")


def _text_key(key):
    """Whether a dict key names a text: "message", "why_stopped", "stop_reason" (not
    "msg_type", a field that types the message)."""
    if not (isinstance(key, ast.Constant) and isinstance(key.value, str)):
        return False
    words = key.value.lower().replace(" ", "_").split("_")
    return words[-1] not in ("type", "id", "kind", "count") and \
        any(w in TEXTUAL for w in words)


def _is_text(node):
    """Whether ``node`` evaluates to human text: str(e), e.args, or a name that holds one."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "str":
        return bool(node.args) and not isinstance(node.args[0], ast.Constant)
    if isinstance(node, ast.Attribute) and node.attr == "args":
        return True
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and \
            node.func.attr in ("get", "pop", "setdefault") and node.args:
        return _text_key(node.args[0])  # error.get("message", ""): a text field of a dict
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and \
            node.func.attr in ("strip", "lower", "upper", "casefold", "rstrip", "lstrip",
                               "split", "splitlines", "replace", "removeprefix"):
        return _is_text(node.func.value)  # message.lower() is the message's words still
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and \
            node.func.attr == "join" and len(node.args) == 1:
        return _is_text(node.args[0])  # "; ".join(incidents)
    if isinstance(node, ast.Subscript):  # msg["msg_type"] is a field; r["reason"], text
        key = node.slice
        if isinstance(key, ast.Constant) and isinstance(key.value, str):
            return _text_key(key)
        return _is_text(node.value)
    name = node.id if isinstance(node, ast.Name) else node.attr if isinstance(
        node, ast.Attribute) else None
    return name is not None and any(t in name.lower() for t in TEXTUAL)


def _words(node):
    """A string constant with words in it (not '', not a single character)."""
    return isinstance(node, ast.Constant) and isinstance(node.value, str) and len(node.value) > 1


# how grading goes on (outcomes.py) and what a mistake was (coursekit.expect.Failure): chosen
# on typed fields only, never on whether a text is empty (the untouched template's
# `raise NotImplementedError()` is a field the test server sets, not an empty message)
OUTCOMES = ("Status", "CellStatus", "KernelState", "Defused", "Failure")


def _truth_parts(test):
    """The operands whose truth ``test`` (an if's condition) reads."""
    if isinstance(test, ast.BoolOp):
        return [p for v in test.values for p in _truth_parts(v)]
    if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
        return _truth_parts(test.operand)
    if isinstance(test, ast.Call) and isinstance(test.func, ast.Name) and \
            test.func.id in ("bool", "len") and len(test.args) == 1:
        return _truth_parts(test.args[0])
    return [test]


def _names_an_outcome(nodes):
    return any(isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name)
               and n.value.id in OUTCOMES for node in nodes for n in ast.walk(node))


def text_decisions(tree):
    """(line, source) of every comparison of a message's text with words, and of every
    outcome of grading chosen on whether a text is empty."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.If, ast.IfExp)) and \
                any(_is_text(p) for p in _truth_parts(node.test)):
            branches = [*node.body, *node.orelse] if isinstance(node, ast.If) \
                else [node.body, node.orelse]
            if _names_an_outcome(branches):
                found.append((node.lineno, ast.unparse(node.test)))
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
    # the names that hold text, each one
    'm = re.search(r"N=(\\d+)", label)',
    'if "turned off" in why: pass',
    'if "died" in error.get("message", ""): pass',
    'ok = error["message"] == "no such function"',
    'if result.get("reason") != "no output": pass',
    'if "--probe" in hint: pass',
    'if "killed" in incident: pass',
    'if "Traceback" in out.stdout: pass',
    'if what.startswith("cell"): pass',
    'if "memory" in run.stderr.lower(): pass',
    'if stopped == "the kernel did not start": pass',
    'if "timeout" in " ".join(incidents): pass',
    'if "limit" in message.split(): pass',
    # an outcome chosen on whether a text is empty
    'status = Status.CRASHED if run.problem else Status.GRADED',
    'if run.problem:\n    status = Status.TIMEOUT if timed_out else Status.CRASHED',
    'state = KernelState.OK if not why else KernelState.DEAD',
    'if bool(status.get("stopped")): result.status = Status.CRASHED',
    'status = Status.GRADED if not status.get("why_stopped") else Status.CRASHED',
    'if "killed" in job["stop_reason"]: pass',
    'if error.get("not_implemented") and not str(error.get("message", "")).strip():\n'
    '    raise CheckFailed("not implemented", Failure.NOT_IMPLEMENTED)',
])
def test_the_scan_sees_the_decisions_it_forbids(code):
    """Each way of deciding on a message's words, or on whether it is empty, caught by the
    scan (the grader once used several of them)."""
    assert text_decisions(ast.parse(code))


@pytest.mark.parametrize("code", [
    'if not message: message = "the test failed"',
    'if run.status is CellStatus.HUNG: pass',
    'if e.exception != "OverflowError": raise',
    'if kind == "stream": pass',
    'if msg["msg_type"] == "execute_reply": pass',
    'status = Status.TIMEOUT if run.timed_out else Status.GRADED if run.finished else Status.CRASHED',
    'if not machine.namespaces: missing.append(("namespaces", machine.why["namespaces"]))',
    'reason = "; ".join([problem] * bool(problem) + incidents)',
    'if hint: lines.append(hint)',
    'if msg["header"]["msg_type"] == "error": pass',
    'finished = status.get("finished") is True',
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
