"""The export in the column layouts that learning management systems import.

``records.export_rows`` has one row per student and assignment; an LMS wants one row per
student and one column per assignment. A grade that is not final (a written answer still to
be graded) is left blank, so an import never posts a partial grade (a blank cell changes
nothing in either system). The student's id in the course is the login the LMS knows, and the
roster imported into the gradebook (``nbgrader db student import``) gives the names, the
email and the LMS's own user id.

- Canvas (Grades > Import): the columns Student, ID, SIS User ID, SIS Login ID, Section,
  then one per assignment, and a "Points Possible" row first. Canvas matches a row by ID
  (its user id, the roster's lms_user_id) or SIS Login ID (the course id).
- Moodle (Grades > Import > CSV file): Username, Email address, First name, Last name, then
  one column per assignment; map "Username" to the user's username and each assignment's
  column to its grade item.
"""
from __future__ import annotations

import enum


class Layout(enum.StrEnum):
    """Which LMS's import the CSV is laid out for."""
    CANVAS = "canvas"
    MOODLE = "moodle"


def _wide(rows):
    """(assignments, students, people, grade, maximum) from export rows: grade[student][a]
    is the score, or "" while not final; maximum[a] the assignment's points."""
    assignments = sorted({r["assignment"] for r in rows})
    people, grade, maximum = {}, {}, {}
    for r in rows:
        people[r["student"]] = r
        final = not r["needs_manual_grade"]
        grade.setdefault(r["student"], {})[r["assignment"]] = f"{r['score']:g}" if final else ""
        maximum[r["assignment"]] = r["max_score"]
    return assignments, sorted(people), people, grade, maximum


def table(rows, layout):
    """(header, body rows) of the CSV in ``layout`` (a Layout) from ``records.export_rows``."""
    assignments, students, people, grade, maximum = _wide(rows)
    if layout is Layout.CANVAS:
        header = ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", *assignments]
        body = [["Points Possible", "", "", "", "", *(f"{maximum[a]:g}" for a in assignments)]]
        for s in students:
            p = people[s]
            name = ", ".join(x for x in (p["last_name"], p["first_name"]) if x) or s
            body.append([name, p["lms_user_id"], "", s, "", *(grade[s].get(a, "") for a in assignments)])
        return header, body
    header = ["Username", "Email address", "First name", "Last name", *assignments]
    body = [[s, people[s]["email"], people[s]["first_name"], people[s]["last_name"],
             *(grade[s].get(a, "") for a in assignments)] for s in students]
    return header, body


def pending(rows):
    """How many grades are left blank (not final)."""
    return sum(bool(r["needs_manual_grade"]) for r in rows)
