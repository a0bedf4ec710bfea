"""The policy of autograder.checks.core and the messages of coursekit.expect, directly.

The mistakes in tests/mistakes exercise these through real notebooks; here each rule is
pinned on its own: delegation to the reference, to torch's recurrent layers or to autograd
scores 0, isolation swaps the other graded functions and puts them back, an in-place write
or a crash is a failed test with a message, seeds are fixed per course.
"""
import io

import numpy as np
import pytest

from autograder.checks import CheckFailed, run_check
from autograder.checks.core import seed_for
from autograder.grading.classroom import Progress
from coursekit.expect import diagnose, expect_array, expect_close, expect_float

GOOD_STEP = """
import numpy as np
def rnn_step_forward(x, h_prev, Wx, Wh, b):
    h_next = np.tanh(x @ Wx + h_prev @ Wh + b)
    return h_next, (x, h_prev, Wx, Wh, h_next)
"""
FORWARD_VIA_STEP = """
def rnn_forward(x, h0, Wx, Wh, b):
    h = np.zeros((x.shape[0], x.shape[1], h0.shape[1])); hp = h0
    for t in range(x.shape[1]):
        hp, _ = rnn_step_forward(x[:, t], hp, Wx, Wh, b)
        h[:, t] = hp
    return h, (x, h0, Wx, Wh, h)
"""


def namespace(code):
    ns = {"__name__": "__main__"}
    exec(compile(code, "<student>", "exec"), ns)
    return ns


def verdict(ns, grade_id):
    try:
        run_check("rnn_bptt", grade_id, ns)
        return None
    except CheckFailed as e:
        return str(e)


def test_a_correct_function_passes():
    assert verdict(namespace(GOOD_STEP), "test_rnn_step_forward") is None


@pytest.mark.parametrize("body, culprit", [
    ("from autograder.reference import rnn_step_forward as ref\n"
     "def rnn_step_forward(*a):\n    return ref(*a)", "autograder.reference"),
    ("import torch\n"
     "def rnn_step_forward(x, h_prev, Wx, Wh, b):\n"
     "    m = torch.nn.RNN(x.shape[1], h_prev.shape[1], batch_first=True, dtype=torch.float64)\n"
     "    out, _ = m(torch.tensor(x[:, None]), torch.tensor(h_prev[None]))\n"
     "    h = np.tanh(x @ Wx + h_prev @ Wh + b)\n"
     "    return h, (x, h_prev, Wx, Wh, h)", "torch.nn.RNN/LSTM/GRU"),
    ("import torch\n"
     "def rnn_step_forward(x, h_prev, Wx, Wh, b):\n"
     "    t = torch.tensor(x, requires_grad=True)\n"
     "    torch.autograd.grad(t.sum(), t)\n"
     "    h = np.tanh(x @ Wx + h_prev @ Wh + b)\n"
     "    return h, (x, h_prev, Wx, Wh, h)", "torch.autograd.grad"),
])
def test_delegation_scores_zero_even_when_the_values_are_right(body, culprit):
    message = verdict(namespace("import numpy as np\n" + body), "test_rnn_step_forward")
    assert message and f"calls {culprit}" in message and "scores 0" in message


def test_isolation_grades_a_function_on_its_own_and_restores_the_namespace():
    broken = GOOD_STEP.replace("np.tanh(", "np.sin(")
    ns = namespace(broken + FORWARD_VIA_STEP)
    own_step = ns["rnn_step_forward"]
    assert verdict(ns, "test_rnn_step_forward")  # the broken step fails its own test
    assert verdict(ns, "test_rnn_forward") is None  # and costs rnn_forward nothing
    assert ns["rnn_step_forward"] is own_step


def test_an_in_place_write_fails_with_the_argument_named():
    ns = namespace(GOOD_STEP.replace("h_next = np.tanh(x @ Wx + h_prev @ Wh + b)",
                                     "h_prev += 0.0 * h_prev + 1e-3\n"
                                     "    h_next = np.tanh(x @ Wx + h_prev @ Wh + b)"))
    assert "modified its argument h_prev in place" in verdict(ns, "test_rnn_step_forward")


@pytest.mark.parametrize("body, words", [
    ("def rnn_step_forward(*a):\n    raise NotImplementedError()", "replace the `raise NotImplementedError()`"),
    ("def rnn_step_forward(*a):\n    raise NotImplementedError", "replace the `raise NotImplementedError()`"),
    # a NotImplementedError with words (a library's) is what the code raised, not the template
    ("def rnn_step_forward(*a):\n    raise NotImplementedError('sparse input')", "raised NotImplementedError"),
    ("def rnn_step_forward(x, *a):\n    return x[99]", "raised IndexError"),
    ("def rnn_step_forward(*a):\n    return 1.0", "expected a tuple of 2"),
    ("rnn_step_forward = 3", "should be a function"),
    ("", "rnn_step_forward is not defined"),
])
def test_broken_submissions_fail_with_a_message_not_a_crash(body, words):
    assert words in verdict(namespace(body), "test_rnn_step_forward")


def test_seeds_are_fixed_per_check_and_changed_by_the_course(monkeypatch):
    a, b = seed_for("test_rnn_forward"), seed_for("test_rnn_backward")
    assert a == seed_for("test_rnn_forward") and a != b
    monkeypatch.setenv("AUTOGRADER_SEED", "spring-term")
    assert seed_for("test_rnn_forward") != a


def test_expect_helpers_diagnose_common_mistakes():
    w = np.arange(1.0, 10.0).reshape(3, 3)
    assert "transposed" in diagnose(w.T, w)
    assert "sign" in diagnose(-w, w)
    assert "times 0.5" in diagnose(0.5 * w, w)
    assert "all zeros" in diagnose(np.zeros_like(w), w)
    assert "nan or inf" in diagnose(w * np.nan, w)
    with pytest.raises(CheckFailed, match="got MyArray"):
        expect_array("h", w.view(type("MyArray", (np.ndarray,), {})), (3, 3))
    with pytest.raises(CheckFailed, match="got list"):
        expect_array("h", w.tolist(), (3, 3))
    with pytest.raises(CheckFailed, match="missing or extra transpose"):
        expect_array("dWx", np.zeros((2, 3)), (3, 2))
    with pytest.raises(CheckFailed, match="expected:") as e:
        expect_close("h", w + 1, w)
    assert "got:" in str(e.value)
    with pytest.raises(CheckFailed) as e:
        expect_close("h", w + 1, w, show=False)
    assert "expected:" not in str(e.value)  # hidden values stay hidden
    expect_float("perplexity", float("inf"), float("inf"))
    with pytest.raises(CheckFailed):
        expect_float("loss", float("nan"), 1.0)


def test_progress_reports_count_rate_and_time_left():
    out = io.StringIO()
    bar = Progress(2, stream=out)
    bar.step("ann")
    bar.step("ben")
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("[" + "#" * 14) and "1/2" in lines[0] and "/s" in lines[0]
    assert "2/2" in lines[1] and "0 s left" in lines[1]


def test_the_reference_answers_only_the_stand_ins_of_the_call_within_their_budget():
    """Over the socket, the kernel may ask for the reference of a function the call declares
    (rnn_forward: rnn_step_forward, once per step), as often as the budget says and on
    inputs no larger than the call's own; the function under test, any other function, one
    call too many or one on larger inputs gets an error back, never the reference's values,
    and the first refusal is recorded."""
    import socket
    import threading
    import time

    from autograder.checks.core import SocketLink, StandIns
    from coursekit import serve, wire

    ours, kernel = socket.socketpair()
    x, h = np.ones((2, 3)), np.zeros((2, 4))
    Wx, Wh, b = np.full((3, 4), 0.1), np.eye(4), np.zeros(4)
    big = np.ones((2, 3000))
    answers = []
    calls = [("rnn_step_forward", [x, h, Wx, Wh, b]), ("rnn_step_forward", [x, h, Wx, Wh, b]),
             ("rnn_forward", [x, h, Wx, Wh, b]), ("rnn_backward", [x, h, Wx, Wh, b]),
             ("rnn_step_forward", [x, h, Wx, Wh, b]), ("rnn_step_forward", [big, h, Wx, Wh, b])]

    def fake_kernel():
        serve.recv(kernel)  # the call of rnn_forward
        for name, args in calls:
            serve.send(kernel, wire.encode({"op": "reference", "name": name, "args": args,
                                            "kwargs": {}}))
            answers.append(wire.decode(serve.recv(kernel)))
        serve.send(kernel, wire.encode({"ok": True}))

    t = threading.Thread(target=fake_kernel)
    t.start()
    link = SocketLink(ours, time.monotonic() + 10)
    stand_ins = StandIns({"rnn_step_forward": 3}, 200)
    assert link.request({"op": "call", "name": "rnn_forward"}, stand_ins) == {"ok": True}
    t.join(5)
    ours.close(), kernel.close()
    for allowed in answers[:2] + answers[4:5]:
        assert np.allclose(allowed["value"][0], np.tanh(x @ Wx + h @ Wh + b))
    for refused, why in ((answers[2], "which this test does not allow"),
                         (answers[3], "which this test does not allow"),
                         (answers[5], "more than the 3 time(s) this test allows")):
        assert "value" not in refused and why in refused["error"], refused
    assert stand_ins.refused == ("rnn_forward", "which this test does not allow")
    larger = StandIns({"rnn_step_forward": 3}, 200)
    with pytest.raises(PermissionError, match="larger than those of the call"):
        larger.answer("rnn_step_forward", [big, h, Wx, Wh, b], {})


def test_suggest_layout_advises_and_never_raises(capsys):
    from coursekit.expect import suggest_layout
    x, w = np.arange(6.0).reshape(2, 3), np.ones((3, 4))
    names, checks = ("x", "w", "out"), {"x": x, "out": (2, 4)}
    assert suggest_layout("f", (x, w, x @ w), names, checks) is True
    assert capsys.readouterr().out == ""
    for own, differs in (({"x": x, "w": w}, "expected a tuple of 3"),
                         ((x, w), "got a tuple of 2"),
                         ((w, x, x @ w), "cache entry 0 (x): expected shape (2, 3)"),
                         ((x + 1, w, x @ w), "cache entry 0 (x) has the right shape"),
                         ((x, w, x), "cache entry 2 (out): expected shape (2, 4)"),
                         (None, "got NoneType")):
        assert suggest_layout("f", own, names, checks) is False
        out = capsys.readouterr().out
        assert out.startswith("note: f returns a cache in a layout of your own") and differs in out, out
        assert "grading passes your backward the cache your own forward returned" in out
        assert "numerical gradient check through your own forward and backward" in out
        assert "[1." not in out  # no values: the difference is named, not printed
