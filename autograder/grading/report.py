"""The instructor's report of one assignment: what the class got right and wrong.

One HTML page: the distribution of the tests' scores, the share of students who passed
each graded function, and each function's most common mistakes, so that the next lecture can
start from what the class got wrong. A mistake is the kind of failure and the hint the check
gave (typed fields of the verdict, never parsed from its message), so the same mistake on
different cases counts once.
"""
from __future__ import annotations

import base64
import collections
import html
import io
from typing import NamedTuple

from coursekit.expect import Failure

from . import records
from .outcomes import Status, UsageError


class Mistake(NamedTuple):
    """One kind of mistake of one function: the kind of failure and the check's hint (None
    when it gave none). ``example`` is the first line of one student's message, shown beside
    it; it plays no part in telling mistakes apart."""
    kind: Failure
    hint: str | None


def mistake(test):
    """The Mistake of a failed test record (``records.results`` rows' tests)."""
    try:
        kind = Failure(test.get("kind"))
    except ValueError:  # a result graded before verdicts carried their kind
        kind = Failure.OTHER
    hint = test.get("hint")
    return Mistake(kind, hint if isinstance(hint, str) and hint else None)


def summarize(rows):
    """(scores, per_test) where per_test[grade_id] = (passed, total, Counter of Mistakes,
    {Mistake: an example message's first line})."""
    scores = [r["score"] for r in rows]
    per_test = {}
    for r in rows:
        for gid, t in r["tests"].items():
            passed, total, counts, examples = per_test.get(gid, (0, 0, collections.Counter(), {}))
            ok = t["score"] == t["max_score"]
            if not ok and r["status"] == Status.GRADED:  # a missing notebook says nothing of a function
                m = mistake(t)
                counts[m] += 1
                examples.setdefault(m, (t.get("message") or "failed").splitlines()[0])
            per_test[gid] = (passed + ok, total + 1, counts, examples)
    return scores, per_test


def _row(st):
    """A ``records.Standing`` as the row summarize reads: the tests as they stand (an
    instructor's override counts), so the report's figures are the formgrader's."""
    return {"status": st.status, "reason": st.reason, "score": st.tests_score, "max_score": st.tests_max,
            "tests": {g: {"score": t.score, "max_score": t.max_score, "message": t.message,
                          "kind": t.kind, "hint": t.hint} for g, t in st.tests.items()}}


def describe(m, example):
    """HTML for one mistake: its kind, its hint and an example message."""
    e = html.escape
    text = f"<b>{e(str(m.kind))}</b>"
    if m.hint:
        text += f": {e(m.hint)}"
    return text + f"<br><small>e.g. {e(example)}</small>"


def _png(fig):
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    return base64.b64encode(buf.getvalue()).decode()


def figures(scores, per_test, max_score):
    """Two PNGs (base64): the score histogram and the pass share per test."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3))
    ax.hist(scores, bins=min(20, int(max_score) + 1 or 1), range=(0, max_score or 1), color="#4c72b0")
    ax.set_xlabel("score of the tests")
    ax.set_ylabel("students")
    hist = _png(fig)
    plt.close(fig)
    names = list(per_test)
    share = [100 * p / t for p, t, *_ in per_test.values()]
    fig, ax = plt.subplots(figsize=(6, 0.35 * len(names) + 1))
    ax.barh(names[::-1], share[::-1], color="#55a868")
    ax.set_xlim(0, 100)
    ax.set_xlabel("students who passed (%)")
    bars = _png(fig)
    plt.close(fig)
    return hist, bars


def _problems(rows):
    """One sentence on the submissions that could not be run normally, with their reasons."""
    bad = [r for r in rows if r["status"] != Status.GRADED]
    if not bad:
        return "Every submission ran normally."
    reasons = collections.Counter(f"{r['status']}: {r['reason']}" for r in bad)
    return (f"{len(bad)} submission{'s' if len(bad) > 1 else ''} could not be run normally and "
            "scored 0 where nothing ran: "
            + "; ".join(f"{html.escape(k)} ({n})" for k, n in reasons.most_common()) + ".")


def write(course, assignment, path=None):
    """Write the report (default ``reports/<assignment>.html`` in the course folder)."""
    course.source_notebook(assignment)
    rows = [_row(st) for st in records.standings(course.db_url, assignment).values()]
    if not rows:
        raise UsageError(f"assignment: no graded submissions of {assignment} in {course.db_url}")
    scores, per_test = summarize(rows)
    max_score = max(r["max_score"] for r in rows)
    hist, bars = figures(scores, per_test, max_score)
    e = html.escape
    out = [f"<!doctype html><meta charset='utf-8'><title>Report: {e(assignment)}</title>",
           "<style>body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto}"
           "td,th{border-bottom:1px solid #ddd;padding:.3rem;text-align:left;vertical-align:top}"
           "table{border-collapse:collapse;width:100%}</style>",
           f"<h1>{e(assignment)}: {len(rows)} submissions</h1>",
           f"<p>Mean score of the tests {sum(scores) / len(scores):.1f} of {max_score:g} "
           "(an instructor's override counts); "
           f"{_problems(rows)}</p>",
           f"<h2>Scores</h2><img alt='score histogram' src='data:image/png;base64,{hist}'>",
           f"<h2>Passed, per function</h2><img alt='pass share per test' src='data:image/png;base64,{bars}'>",
           "<h2>Most common failures</h2><table><tr><th>test</th><th>passed</th><th>most common mistakes (count)</th></tr>"]
    for gid, (passed, total, counts, examples) in per_test.items():
        common = "<br>".join(f"{describe(m, examples[m])} ({n})" for m, n in counts.most_common(3)) or "-"
        out.append(f"<tr><td>{e(gid)}</td><td>{passed} / {total}</td><td>{common}</td></tr>")
    out.append("</table>")
    path = path or course.root / "reports" / f"{assignment}.html"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(out) + "\n", encoding="utf-8")
    return path
