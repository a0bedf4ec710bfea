"""The ``autograder`` command: release, grade, feedback, export, report, similarity and check.

    autograder release [ASSIGNMENT]              regenerate exercises/ and the student bundle
    autograder grade ASSIGNMENT SUBMISSIONS      grade a folder of student folders
    autograder feedback ASSIGNMENT               per-student HTML feedback
    autograder export [--to FILE] [--canvas | --moodle]   a CSV of grades (for an LMS)
    autograder report ASSIGNMENT                 the class's results, for the instructor
    autograder similarity ASSIGNMENT SUBMISSIONS which submissions share their code
    autograder check NOTEBOOK                    what a student runs before submitting

Every command works on a course folder (``--course``, default: the nearest folder above the
working directory that holds solutions/) and its gradebook (``--db``, default
``gradebook.db`` in the course folder; any SQLAlchemy URL).
"""
from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from pathlib import Path

from .grading import course as course_mod
from .grading.lms import Layout
from .grading.outcomes import UsageError


def _course(args):
    return course_mod.Course(course_mod.find_course(args.course), getattr(args, "db", "") or "")


def cmd_release(args):
    from .grading import bundle

    course = _course(args)
    names = [args.assignment] if args.assignment else course.assignments()
    for name in names:
        out = course_mod.release(course, name)
        print(f"released {name} -> {out.relative_to(course.root)}")
    path = bundle.write(course, Path(args.bundle) if args.bundle else None)
    print(f"student bundle -> {path}")
    return 0


def cmd_grade(args):
    from .grading import classroom, runner

    if args.jobs is not None and args.jobs < 1:
        raise UsageError(f"--jobs: expected a positive number, got {args.jobs}")
    if args.jobs is not None and args.scheduler:
        raise UsageError("--jobs: grading on a cluster (--scheduler), the workers' threads "
                         "decide how many submissions run at once")
    course = _course(args)
    limits = runner.Limits(cell_timeout=args.cell_timeout, notebook_timeout=args.timeout,
                           memory=args.memory << 20)
    start = time.monotonic()
    results = classroom.grade_class(course, args.assignment, args.submissions, jobs=args.jobs,
                                    limits=limits, progress=not args.quiet, resume=args.resume,
                                    scheduler=args.scheduler)
    print(classroom.table(results, wall=time.monotonic() - start))
    if args.json:
        from .grading import records

        doc = classroom.to_json(results, records.standings(course.db_url, args.assignment))
        Path(args.json).write_text(json.dumps(doc, indent=2) + "\n")
    return 0


def cmd_feedback(args):
    from .grading import feedback

    course = _course(args)
    paths = feedback.write_all(course, args.assignment)
    print(f"wrote {len(paths)} feedback pages under {course.root / 'feedback'}")
    return 0


def cmd_export(args):
    from .grading import records

    course = _course(args)
    rows = records.export_rows(course.db_url)
    out = open(args.to, "w", newline="") if args.to else sys.stdout
    if args.layout is None:
        fields = ["student", "assignment", "score", "max_score", "tests_score", "written_score",
                  "extra_credit", "needs_manual_grade", "overridden", "status", "reason",
                  "first_name", "last_name", "email", "lms_user_id"]
        writer = csv.DictWriter(out, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
        n = len(rows)
    else:
        from .grading import lms

        header, body = lms.table(rows, args.layout)
        writer = csv.writer(out)
        writer.writerow(header)
        writer.writerows(body)
        n = len(body)
        if lms.pending(rows):
            print(f"{lms.pending(rows)} grades left blank: written answers not graded yet",
                  file=sys.stderr)
    if args.to:
        out.close()
        print(f"wrote {n} rows to {args.to}")
    return 0


def cmd_similarity(args):
    from .grading import similarity

    course = _course(args)
    path, pairs = similarity.write(course, args.assignment, args.submissions,
                                   Path(args.out) if args.out else None, args.top)
    for p in pairs[:min(5, args.top)]:
        print(f"{p.share:4.0%}  {p.a} ~ {p.b}")
    print(f"similarity report -> {path}")
    return 0


def cmd_report(args):
    from .grading import report

    course = _course(args)
    path = report.write(course, args.assignment, Path(args.out) if args.out else None)
    print(f"report -> {path}")
    return 0


def cmd_check(args):
    from coursekit.notebook import check

    return check(args.notebook, args.cell_timeout)


def parser():
    """The argument parser of ``autograder`` and its subcommands."""
    p = argparse.ArgumentParser(prog="autograder", description=__doc__.split("\n\n")[0])
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--course", metavar="DIR", help="the course folder (holds solutions/)")
    common.add_argument("--db", metavar="URL", help="SQLAlchemy URL of the gradebook "
                        "(default: sqlite:///COURSE/gradebook.db)")
    sub = p.add_subparsers(dest="command", required=True)

    def add(name, help):
        return sub.add_parser(name, help=help, parents=[common])

    r = add("release", help="regenerate exercises/ from solutions/ and the student bundle")
    r.add_argument("assignment", nargs="?")
    r.add_argument("--bundle", metavar="ZIP", help="where to write the bundle (default dist/)")
    r.set_defaults(fn=cmd_release)

    g = add("grade", help="grade every student folder in SUBMISSIONS")
    g.add_argument("assignment")
    g.add_argument("submissions")
    g.add_argument("--json", metavar="FILE", help="also write the scores as JSON")
    g.add_argument("--jobs", type=int, help="submissions graded at once on this machine "
                   "(default: all cores)")
    g.add_argument("--scheduler", metavar="ADDRESS",
                   help="grade on a Dask cluster: its scheduler (tcp://host:8786) or scheduler "
                        "file; this process still writes the gradebook")
    g.add_argument("--timeout", type=int, default=900, metavar="SECONDS",
                   help="time limit per submission (default 900)")
    g.add_argument("--cell-timeout", type=int, default=120, metavar="SECONDS",
                   help="time limit per cell (default 120)")
    g.add_argument("--memory", type=int, default=6144, metavar="MIB",
                   help="memory limit of a student's kernel (default 6144)")
    g.add_argument("--resume", action="store_true",
                   help="skip students already graded whose notebook has not changed since "
                        "(after an interrupted run)")
    g.add_argument("--quiet", action="store_true", help="no progress bar")
    g.set_defaults(fn=cmd_grade)

    f = add("feedback", help="write per-student HTML feedback")
    f.add_argument("assignment")
    f.set_defaults(fn=cmd_feedback)

    e = add("export", help="a CSV of grades, one row per student and assignment")
    e.add_argument("--to", metavar="FILE", help="write here instead of standard output")
    layout = e.add_mutually_exclusive_group()
    layout.add_argument("--canvas", dest="layout", action="store_const", const=Layout.CANVAS,
                        help="one row per student, laid out for Canvas's gradebook import")
    layout.add_argument("--moodle", dest="layout", action="store_const", const=Layout.MOODLE,
                        help="one row per student, laid out for Moodle's CSV grade import")
    e.set_defaults(fn=cmd_export, layout=None)

    rp = add("report", help="an HTML report of the class's results")
    rp.add_argument("assignment")
    rp.add_argument("--out", metavar="FILE")
    rp.set_defaults(fn=cmd_report)

    sm = add("similarity", help="an HTML report of the submissions whose graded functions "
             "share code with each other or with the solutions")
    sm.add_argument("assignment")
    sm.add_argument("submissions")
    sm.add_argument("--out", metavar="FILE")
    sm.add_argument("--top", type=int, default=20, metavar="N", help="pairs shown (default 20)")
    sm.set_defaults(fn=cmd_similarity)

    c = add("check", help="run a notebook and list which visible tests pass")
    c.add_argument("notebook")
    c.add_argument("--cell-timeout", type=int, default=120, metavar="SECONDS")
    c.set_defaults(fn=cmd_check)
    return p


def main(argv=None):
    """Run ``autograder`` with ``argv``; returns the exit status (2 for bad arguments)."""
    args = parser().parse_args(argv)
    try:
        return args.fn(args)
    except UsageError as e:  # a mistake of the user: one line, no traceback
        print(f"autograder {args.command}: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
