"""nbgrader's Autograde, routed through this grader (the course's nbgrader_config.py).

The formgrader's per-student Autograde button (and ``nbgrader autograde``) would run a
student's notebook in a kernel of the instructor's, with the hidden tests beside it. The
course replaces nbgrader's preprocessors with ``GradeInSandbox``: it grades the submitted
notebook as ``autograder grade`` does (the sandboxed kernel, the hidden checks in the
grader's process, the gradebook written by the grader alone, an instructor's overrides
kept) and hands nbgrader the executed notebook to write to ``autograded/``.
"""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from nbconvert.preprocessors import Preprocessor
from traitlets import Bool


class GradeInSandbox(Preprocessor):
    """Grade the submission nbgrader is converting with ``classroom.grade_class``."""

    enabled = Bool(True)  # nbconvert's preprocessors are off unless enabled

    def preprocess(self, nb, resources):
        import nbformat
        from nbgrader.coursedir import CourseDirectory

        from .classroom import grade_class
        from .course import Course

        info = resources["nbgrader"]
        student, assignment, name = info["student"], info["assignment"], info["notebook"]
        course = Course(CourseDirectory(config=self.config).root, db_url=info["db_url"])
        submitted = course.root / "submitted" / student / assignment / f"{name}.ipynb"
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp) / student
            folder.mkdir()
            shutil.copy2(submitted, folder / submitted.name)
            stamp = submitted.parent / "timestamp.txt"  # the submission's time: kept, not now
            if stamp.is_file():
                shutil.copy2(stamp, folder / stamp.name)
            grade_class(course, assignment, tmp, progress=False)
        executed = course.autograded(student, assignment) / submitted.name
        return nbformat.read(str(executed), as_version=nbformat.NO_CONVERT), resources
