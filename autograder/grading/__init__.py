"""The grader: sandboxed kernels, hidden checks run outside them, the gradebook, and what the
instructor reads (feedback, export, report). ``README.md`` here draws the path."""
from pathlib import Path

# a Jupyter data folder of nbconvert templates the course's nbgrader_config.py puts first
TEMPLATES = Path(__file__).with_name("templates")
