"""The student bundle: the released notebooks and a wheel of coursekit, in one zip.

coursekit holds what the visible tests and the experiments need (assertions, numerical
gradients, synthetic tasks, the corpora) and nothing a student should not see: no
reference implementation, no hidden test. The wheel is written here by hand (a pure-Python
wheel is a zip with three metadata files), so making the bundle needs no build tool.
"""
from __future__ import annotations

import base64
import hashlib
import io
import zipfile
from pathlib import Path

import coursekit

VERSION = "0.1.0"
WHEEL_NAME = f"coursekit-{VERSION}-py3-none-any.whl"
REQUIRES = ("numpy", "matplotlib", "nbclient", "nbformat", "ipykernel")

README = """\
Exercises of "How recurrent networks learn, and why they fail"

1. Install the helpers the notebooks import (Python 3.11 or newer), in a virtual environment:
       python -m venv .venv && . .venv/bin/activate
       pip install {wheel} torch jupyterlab
2. Open a notebook (jupyter lab exercises/lstm/lstm.ipynb), implement the functions where
   it says YOUR CODE HERE, and run the cells: the visible tests tell you what is wrong.
3. Before you submit, run every cell from a fresh kernel, or:
       python -m coursekit check exercises/lstm/lstm.ipynb
   which lists the visible tests that pass. Your instructor's grader also runs hidden tests
   on fresh inputs, so make each function correct, not just the visible cases.
Submit the .ipynb file.
"""


def _record_line(name, data):
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def wheel_bytes():
    """A wheel of the installed coursekit package (its .py files and data)."""
    root = Path(coursekit.__file__).parent
    files = {}
    for p in sorted(root.rglob("*")):
        if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc":
            files[f"coursekit/{p.relative_to(root).as_posix()}"] = p.read_bytes()
    info = f"coursekit-{VERSION}.dist-info"
    files[f"{info}/METADATA"] = (
        "Metadata-Version: 2.1\nName: coursekit\nVersion: " + VERSION + "\n"
        "Summary: Helpers for the exercises of the course on recurrent networks\n"
        "License: MIT\nRequires-Python: >=3.11\n"
        + "".join(f"Requires-Dist: {r}\n" for r in REQUIRES)).encode()
    files[f"{info}/WHEEL"] = (b"Wheel-Version: 1.0\nGenerator: autograder.grading.bundle\n"
                              b"Root-Is-Purelib: true\nTag: py3-none-any\n")
    record = [_record_line(n, d) for n, d in files.items()] + [f"{info}/RECORD,,"]
    files[f"{info}/RECORD"] = ("\n".join(record) + "\n").encode()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in files.items():
            z.writestr(zipfile.ZipInfo(name, date_time=(2026, 1, 1, 0, 0, 0)), data)
    return buf.getvalue()


def write(course, path=None):
    """Write the bundle zip (default ``dist/course-exercises.zip`` in the course folder)."""
    path = Path(path or course.root / "dist" / "course-exercises.zip")
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("README.txt", README.format(wheel=WHEEL_NAME))
        z.writestr(WHEEL_NAME, wheel_bytes())
        for nb in sorted(course.release.glob("*/*.ipynb")):
            z.write(nb, f"exercises/{nb.parent.name}/{nb.name}")
    return path
