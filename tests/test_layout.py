"""The README's layout table is the tree: one row per folder, and the walls it states hold.

A newcomer reads the table to find their way; a folder it does not name, or a row for a folder
that is gone, sends them the wrong way. The book's experiment library and the grader are two
products: the grader must import nothing of the library.
"""
import ast
import re
import subprocess
from pathlib import Path

import pytest

from autograder.grading import notebooks

ROOT = Path(__file__).resolve().parents[1]
#: folders whose sub-folders are the assignments, not parts of the code
PER_ASSIGNMENT = ("solutions", "exercises")
#: the only modules at the top of the autograder package: everything else is in a sub-package
TOP_MODULES = {"__init__.py", "cli.py"}
GRADER = ("checks", "grading", "reference")


def _layout_rows():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("\n## Layout\n", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    return [re.match(r"\| `([^`]+)`", row).group(1) for row in rows]


def _folders():
    """Folders of the working tree that hold a file git tracks or would track (not ignored)."""
    files = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"],
                           cwd=ROOT, check=True, capture_output=True, text=True).stdout.split()
    folders = set()
    for f in files:
        if not (ROOT / f).exists():  # deleted in the working tree, not yet committed
            continue
        parts = Path(f).parts[:-1]
        for depth in (1, 2):
            if len(parts) >= depth and not (depth == 2 and parts[0] in PER_ASSIGNMENT):
                folders.add("/".join(parts[:depth]) + "/")
    return folders


def test_every_folder_has_one_row_and_every_row_a_folder():
    rows = _layout_rows()
    assert len(rows) == len(set(rows)), f"a folder has two rows: {rows}"
    missing = sorted(_folders() - set(rows))
    gone = sorted(r for r in rows if not (ROOT / r).is_dir())
    assert not missing, f"folders the README's layout table does not name: {missing}"
    assert not gone, f"rows of the README's layout table for folders that do not exist: {gone}"


def test_the_assignment_folders_match():
    for folder in PER_ASSIGNMENT:
        found = sorted(p.name for p in (ROOT / folder).iterdir() if p.is_dir())
        assert found == notebooks.assignments(), f"{folder}/ holds {found}"


def test_the_package_top_holds_only_the_entry_point():
    loose = sorted(p.name for p in (ROOT / "autograder").glob("*.py"))
    assert set(loose) == TOP_MODULES, (
        f"autograder/ holds modules outside its sub-packages: {sorted(set(loose) - TOP_MODULES)}")


def _imports(path, package=None):
    """Absolute names of the modules ``path`` imports, relative imports resolved against
    ``package`` (by default the package ``path`` lies in)."""
    package = package or ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.rsplit(".", node.level - 1)[0] if node.level else ""
            module = ".".join(x for x in (base, node.module or "") if x)
            names.add(module)
            names.update(f"{module}.{a.name}" for a in node.names)
    return names


@pytest.mark.parametrize("sub", GRADER)
def test_the_grader_imports_nothing_of_the_books_library(sub):
    for path in sorted((ROOT / "autograder" / sub).rglob("*.py")):
        bad = sorted(n for n in _imports(path) if n == "autograder.lab" or n.startswith("autograder.lab."))
        assert not bad, f"{path.relative_to(ROOT)} imports the book's library: {bad}"


def test_the_import_scan_sees_every_form(tmp_path):
    # the scan above must not pass because it misses a form of import
    src = tmp_path / "probe.py"
    src.write_text("from ..lab import models\nfrom . import core\nimport autograder.lab.data\n"
                   "def f():\n    from autograder.lab.word2vec import train_skipgram\n")
    found = _imports(src, package="autograder.checks")
    assert {"autograder.lab", "autograder.lab.models", "autograder.checks.core",
            "autograder.lab.data", "autograder.lab.word2vec"} <= found
