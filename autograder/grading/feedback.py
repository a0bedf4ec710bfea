"""Per-student feedback: one HTML page per student with everything of the grade as it stands.

Each test with its points (the instructor's override, when there is one, marked as such) and,
when it failed, the check's message; each written answer with its score out of its maximum
(or "not graded yet") and the instructor's comment; the total with the written part. The
page is made from ``records.standing`` (the gradebook, as the formgrader shows it, and the
autograder's messages), never from the executed notebook, so it holds no test code (visible
or hidden) and no hidden input. Math in the instructor's comments is rendered as MathML
when the page is written, so the page needs no script and no network.
"""
from __future__ import annotations

import html

from traitlets import default

from . import records
from .outcomes import Status

STYLE = """body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}
table{border-collapse:collapse;width:100%}td,th{border-bottom:1px solid #ddd;padding:.4rem;
text-align:left;vertical-align:top}pre{white-space:pre-wrap;margin:0;font-size:.9em}
.ok{color:#1a7f37}.bad{color:#cf222e}.note{color:#57606a;font-size:.9em}"""


def _points(score, max_score):
    return f"{score:g} / {max_score:g}"


def page(st):
    """The feedback HTML of one ``records.Standing``."""
    from .markup import comment_html

    e = html.escape
    pending = st.pending
    total = _points(st.score, st.max_score) + (" so far" if pending else "")
    lines = [f"<!doctype html><meta charset='utf-8'><title>{e(st.assignment)}: {e(st.student)}</title>",
             f"<style>{STYLE}</style>",
             f"<h1>{e(st.assignment)}: feedback for {e(st.student)}</h1>",
             f"<p>Score: <b id='total'>{total}</b> (tests {_points(st.tests_score, st.tests_max)}, "
             + ("written answers: " + (f"{_points(st.written_score, st.written_max)}" if not pending
                                       else f"{len(pending)} not graded yet") if st.written else "")
             + (f", extra credit {st.extra_credit:g}" if st.extra_credit else "") + ")</p>"]
    if st.status != Status.GRADED or st.reason:
        lines.append(f"<p class='bad'>{e(st.status)}: {e(st.reason)}</p>")
    lines.append("<table><tr><th>test</th><th>points</th><th>result</th></tr>")
    for gid, t in st.tests.items():
        ok = t.score == t.max_score
        msg = "passed" if t.auto_score == t.max_score else (t.message or "failed")
        note = (f"<div class='note'>points set by the instructor (the autograder gave "
                f"{t.auto_score or 0:g})</div>") if t.overridden else ""
        lines.append(f"<tr id='{e(gid)}'><td>{e(gid)}</td><td>{_points(t.score, t.max_score)}</td>"
                     f"<td class='{'ok' if ok else 'bad'}'><pre>{e(msg)}</pre>{note}</td></tr>")
    for gid, w in st.written.items():
        shown = "not graded yet" if w.score is None else _points(w.score, w.max_score)
        comment = comment_html(w.comment) if w.comment else ""
        lines.append(f"<tr id='{e(gid)}'><td>{e(gid)}</td><td>{e(shown)}</td>"
                     f"<td>written answer, graded by hand{comment}</td></tr>")
    lines.append("</table>")
    return "\n".join(lines) + "\n"


def _exporter_base():
    from nbconvert.exporters import Exporter

    return Exporter


class FeedbackExporter(_exporter_base()):
    """nbgrader's route to the same page: ``nbgrader generate_feedback`` and the formgrader's
    Generate Feedback button convert each autograded notebook with this exporter
    (``c.GenerateFeedback.exporter_class`` in the course's nbgrader_config.py), so whichever
    route the instructor takes writes the same ``feedback/<student>/<a>/<a>.html``."""

    export_from_notebook = None  # not offered in Jupyter's "export as" menu
    output_mimetype = "text/html"

    @default("file_extension")
    def _file_extension_default(self):
        return ".html"

    def from_notebook_node(self, nb, resources=None, **kw):
        """The page of the student and assignment nbgrader names in ``resources``."""
        resources = self._init_resources(resources)
        info = resources.get("nbgrader", {})
        st = records.standings(info["db_url"], info["assignment"]).get(info["student"])
        if st is None:
            raise ValueError(f"student: no grade of {info['student']!r} for {info['assignment']!r} "
                             "in the gradebook: grade the class first")
        return page(st), resources


def write_all(course, assignment):
    """Write feedback/<student>/<assignment>/<assignment>.html for every submission."""
    course.source_notebook(assignment)
    paths = []
    for st in records.standings(course.db_url, assignment).values():
        out = course.feedback(st.student, assignment)
        out.mkdir(parents=True, exist_ok=True)
        path = out / f"{assignment}.html"
        path.write_text(page(st), encoding="utf-8")
        paths.append(path)
    return paths
