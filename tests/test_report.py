"""The instructor's report counts mistakes by the verdicts' typed kind and hint, not by text."""
from autograder.grading import report
from autograder.grading.outcomes import Status
from coursekit.expect import Failure


def row(status=Status.GRADED, **tests):
    return {"status": status, "score": 0.0, "max_score": 2.0, "tests": tests}


def failed(message, kind, hint=None):
    return {"score": 0.0, "max_score": 2.0, "message": message, "kind": kind, "hint": hint}


def test_the_same_mistake_on_different_cases_counts_once():
    bias = "add the bias b"
    rows = [
        row(test_f=failed("f: h (N=1, H=3) has the right shape (1, 3) but the wrong values", "wrong values", bias)),
        row(test_f=failed("f: h (N=4, H=2) has the right shape (4, 2) but the wrong values", "wrong values", bias)),
        row(test_f=failed("f: h (N=4, H=2) has the right shape (4, 2) but the wrong values", "wrong values",
                          "the axes look reversed")),
        row(test_f=failed("f: expected shape (4, 2), got (2, 4)", "wrong shape")),
        row(test_f={"score": 0.0, "max_score": 2.0, "message": "graded before kinds were recorded"}),
        row(test_f={"score": 2.0, "max_score": 2.0, "message": ""}),
        row(Status.MISSING, test_f=failed("no notebook", "not run")),  # says nothing of f
    ]
    scores, per_test = report.summarize(rows)
    passed, total, counts, examples = per_test["test_f"]
    assert (passed, total) == (1, 7)
    assert counts == {report.Mistake(Failure.VALUES, bias): 2,
                      report.Mistake(Failure.VALUES, "the axes look reversed"): 1,
                      report.Mistake(Failure.SHAPE, None): 1,
                      report.Mistake(Failure.OTHER, None): 1}
    assert examples[report.Mistake(Failure.VALUES, bias)].startswith("f: h (N=1, H=3)")
    html = report.describe(report.Mistake(Failure.VALUES, "<b>"), "x < y")
    assert "<b>wrong values</b>: &lt;b&gt;" in html and "x &lt; y" in html


def test_a_messages_words_play_no_part():
    """Two messages that differ only in words the old regex kept apart, and two that a
    regex would have merged, are told apart by kind and hint alone."""
    rows = [row(t=failed("f: wrong on case A", "wrong values", "h")),
            row(t=failed("f: something else entirely", "wrong values", "h")),
            row(t=failed("f: wrong on case A", "wrong dtype", "h"))]
    _, per_test = report.summarize(rows)
    counts = per_test["t"][2]
    assert counts == {report.Mistake(Failure.VALUES, "h"): 2, report.Mistake(Failure.DTYPE, "h"): 1}
