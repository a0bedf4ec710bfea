# nbgrader's view of this course (the formgrader and the nbgrader commands read it):
# solutions/ is the source folder, exercises/ the release folder. A fresh `jupyter lab` in
# this folder starts clean: the course root is absolute, the exchange is a folder of the
# course (created here), and every page works offline.
import os

here = os.path.dirname(os.path.abspath(__file__))
c = get_config()  # noqa: F821 (nbgrader provides it)
c.CourseDirectory.root = here
c.CourseDirectory.course_id = "default_course"  # as autograder; PostgreSQL needs a real course row
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "exercises"
c.CourseDirectory.ignore = [".ipynb_checkpoints", "*.pyc", "__pycache__", "README.md"]

# the exchange (release/collect between accounts on one server) lives in the course, so the
# formgrader finds it writable; this course hands out dist/course-exercises.zip instead
c.Exchange.root = os.path.join(here, "exchange")
os.makedirs(c.Exchange.root, exist_ok=True)

# one feedback page, whichever route writes it: `nbgrader generate_feedback` and the
# formgrader's Generate Feedback button write the page `autograder feedback` writes
c.GenerateFeedback.exporter_class = "autograder.grading.feedback.FeedbackExporter"

# The formgrader's grading page loads MathJax with nbconvert's macro, whose default is a CDN.
# nbconvert looks for a template's files in the Jupyter data folders (JUPYTER_PATH first),
# ahead of the base templates, and the formgrader renders when the first page is asked for,
# after this file is read: so the course's folder of templates goes in front, and its
# formgrade/mathjax.html.j2 loads the MathJax that jupyter-server-mathjax serves.
from autograder.grading import TEMPLATES  # noqa: E402 (this file is nbgrader's config)

os.environ["JUPYTER_PATH"] = os.pathsep.join(
    [str(TEMPLATES)] + [p for p in os.environ.get("JUPYTER_PATH", "").split(os.pathsep)
                        if p and p != str(TEMPLATES)])

# nbgrader's Autograde (the formgrader's Autograde button, `nbgrader autograde`) grades as
# `autograder grade` does: in the sandbox, with the hidden checks outside the kernel
c.Autograde.sanitize_preprocessors = ["autograder.grading.nbgrader_hooks.GradeInSandbox"]
c.Autograde.autograde_preprocessors = []
