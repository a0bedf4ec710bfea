"""A course folder and nbgrader's view of it: where notebooks, grades and feedback live.

The course root holds ``solutions/`` (nbgrader's source directory) and ``exercises/`` (its
release directory); grading writes ``autograded/<student>/<assignment>/``, ``feedback/``
and, unless ``--db`` says otherwise, the gradebook ``gradebook.db`` next to them.
"""
from __future__ import annotations

import contextlib
import logging
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from autograder.grading import notebooks

from .outcomes import UsageError

COURSE_ID = "default_course"


@dataclass
class Course:
    """A course folder (``root``) and the SQLAlchemy URL of its gradebook (``db_url``)."""
    root: Path
    db_url: str = ""

    def __post_init__(self):
        self.root = Path(self.root).resolve()
        if not self.db_url:
            self.db_url = f"sqlite:///{self.root / 'gradebook.db'}"

    @property
    def source(self):
        return self.root / "solutions"

    @property
    def release(self):
        return self.root / "exercises"

    def assignments(self):
        return notebooks.assignments(self.source)

    def source_notebook(self, assignment):
        """The solution notebook of ``assignment`` (UsageError naming the known ones)."""
        path = notebooks.notebook_path(assignment, self.source)
        if not path.is_file():
            known = ", ".join(self.assignments()) or "none"
            raise UsageError(f"assignment: no notebook {path.relative_to(self.root)} "
                             f"(assignments in {self.source}: {known})")
        return path

    def autograded(self, student, assignment):
        return self.root / "autograded" / student / assignment

    def feedback(self, student, assignment):
        return self.root / "feedback" / student / assignment


def find_course(path=None):
    """The course at ``path``, or the nearest folder above the working directory that holds
    solutions/, or the course that ships with this package."""
    if path is not None:
        root = Path(path)
        if not (root / "solutions").is_dir():
            raise UsageError(f"course: {root} has no solutions/ folder")
        return root
    here = Path.cwd().resolve()
    for p in (here, *here.parents):
        if (p / "solutions").is_dir():
            return p
    return notebooks.ROOT


def _nbgrader_config(course, release_dir, db_url):
    from traitlets.config import Config

    c = Config()
    c.CourseDirectory.root = str(course.root)
    c.CourseDirectory.source_directory = "solutions"
    c.CourseDirectory.release_directory = str(release_dir)
    c.CourseDirectory.db_url = db_url
    # nbgrader's default course id, '', is never created as a course row: SQLite does not
    # mind the dangling key, PostgreSQL refuses it. The id the Gradebook API uses by default:
    c.CourseDirectory.course_id = COURSE_ID
    c.CourseDirectory.ignore = [".ipynb_checkpoints", "*.pyc", "__pycache__", "README.md"]
    c.Exchange.root = tempfile.gettempdir()  # never used; the default may be unwritable
    return c


def _venv_on_path():
    """nbgrader runs the ``alembic`` command of its own environment: find it on PATH even
    when this environment was not activated."""
    bin_dir = str(Path(sys.executable).parent)
    if bin_dir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = bin_dir + os.pathsep + os.environ.get("PATH", "")


def generate(course, assignment, release_dir, db_url):
    """nbgrader generate_assignment: release ``assignment`` into ``release_dir/assignment``
    and record its cells in the gradebook at ``db_url``. Raises RuntimeError on failure."""
    from nbgrader.apps import NbGraderAPI

    course.source_notebook(assignment)
    _venv_on_path()
    api = NbGraderAPI(config=_nbgrader_config(course, release_dir, db_url))
    api.log.setLevel(logging.ERROR)
    result = api.generate_assignment(assignment, force=True, create=True)
    if not result["success"]:
        raise RuntimeError(f"nbgrader generate_assignment {assignment} failed:\n{result['log']}"
                           f"{result.get('error', '')}")


def register(course, assignment, db_url=None):
    """Make sure the gradebook knows ``assignment`` (its notebooks, grade cells, points)."""
    with tempfile.TemporaryDirectory() as tmp:
        generate(course, assignment, Path(tmp) / "release", db_url or course.db_url)


def release(course, assignment):
    """Regenerate ``exercises/<assignment>/`` from ``solutions/<assignment>/``.

    The gradebook used for the release is a throw-away one, so releasing never touches the
    course's grades. The released notebook is normalized (no outputs, stable cell ids) so
    that a release with no change in the source changes no file.
    """
    with tempfile.TemporaryDirectory() as tmp:
        generate(course, assignment, Path(tmp) / "release", f"sqlite:///{Path(tmp) / 'gb.db'}")
        out = course.release / assignment
        with contextlib.suppress(FileNotFoundError):
            shutil.rmtree(out)
        shutil.copytree(Path(tmp) / "release" / assignment, out)
    notebooks.normalize(out / f"{assignment}.ipynb")
    return out
