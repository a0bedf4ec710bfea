"""Per-student feedback: one HTML page per student with each test's score and message.

The page is made from the stored results, never from the executed notebook, so it holds
no test code (visible or hidden) and no hidden input: only the messages of the checks,
which never print hidden values.
"""
from __future__ import annotations

import html

from . import records
from .outcomes import Status

STYLE = """body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}
table{border-collapse:collapse;width:100%}td,th{border-bottom:1px solid #ddd;padding:.4rem;
text-align:left;vertical-align:top}pre{white-space:pre-wrap;margin:0;font-size:.9em}
.ok{color:#1a7f37}.bad{color:#cf222e}"""


def _manual_scores(db_url, assignment, student):
    """grade_id -> manual score of the written answers (None when not graded yet)."""
    from nbgrader.api import Gradebook, MissingEntry

    with Gradebook(db_url) as gb:
        try:
            sub = gb.find_submission(assignment, student)
        except MissingEntry:
            return {}
        return {g.name: g.manual_score for nb in sub.notebooks for g in nb.grades
                if g.cell.cell_type == "markdown"}


def page(assignment, row, written):
    """The feedback HTML of one stored result ``row`` (records.results)."""
    e = html.escape
    lines = [f"<!doctype html><meta charset='utf-8'><title>{e(assignment)}: {e(row['student'])}</title>",
             f"<style>{STYLE}</style>",
             f"<h1>{e(assignment)}: feedback for {e(row['student'])}</h1>",
             f"<p>Autograded score: <b>{row['score']:g} / {row['max_score']:g}</b>"]
    if row["status"] != Status.GRADED or row["reason"]:
        lines.append(f"<p class='bad'>{e(row['status'])}: {e(row['reason'])}</p>")
    lines.append("<table><tr><th>test</th><th>points</th><th>result</th></tr>")
    for gid, t in row["tests"].items():
        ok = t["score"] == t["max_score"]
        msg = "passed" if ok else (t["message"] or "failed")
        lines.append(f"<tr><td>{e(gid)}</td><td>{t['score']:g} / {t['max_score']:g}</td>"
                     f"<td class='{'ok' if ok else 'bad'}'><pre>{e(msg)}</pre></td></tr>")
    for gid, score in written.items():
        shown = "not graded yet" if score is None else f"{score:g}"
        lines.append(f"<tr><td>{e(gid)}</td><td>{e(shown)}</td><td>written answer, graded by hand</td></tr>")
    lines.append("</table>")
    return "\n".join(lines) + "\n"


def write_all(course, assignment):
    """Write feedback/<student>/<assignment>/<assignment>.html for every graded student."""
    course.source_notebook(assignment)
    paths = []
    for row in records.results(course.db_url, assignment):
        written = _manual_scores(course.db_url, assignment, row["student"])
        out = course.feedback(row["student"], assignment)
        out.mkdir(parents=True, exist_ok=True)
        path = out / f"{assignment}.html"
        path.write_text(page(assignment, row, written), encoding="utf-8")
        paths.append(path)
    return paths
