# nbgrader's view of this course (formgrader and the nbgrader commands read it):
# solutions/ is the source folder, exercises/ the release folder.
c = get_config()  # noqa: F821 (nbgrader provides it)
c.CourseDirectory.root = "."
c.CourseDirectory.course_id = "default_course"  # as autograder; PostgreSQL needs a real course row
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "exercises"
c.CourseDirectory.ignore = [".ipynb_checkpoints", "*.pyc", "__pycache__", "README.md"]
