"""The drawing of the grading path (``autograder/grading/README.md``) cannot go stale silently.

Every file it names exists; every dotted name (``runner.grade``, ``kernel.Run.status``) and
every class or constant (``CellStatus``, ``MESSAGE_LIMIT``) it gives resolves to something
in the code; the fields its channels table lists for ``verdicts.json`` and ``status.json``
are the ones ``child.py`` writes, no more and no fewer.
"""
import ast
import dataclasses
import glob
import importlib
import inspect
import pkgutil
import re
import textwrap
from pathlib import Path

import pytest

import autograder.grading

ROOT = Path(__file__).resolve().parents[1]
GRADING = ROOT / "autograder" / "grading"
README = (GRADING / "README.md").read_text()
SPANS = re.findall(r"`([^`\n]+)`", README)
MERMAID = "\n".join(re.findall(r"```mermaid\n(.*?)```", README, re.S))
# the modules a bare class or constant of the page may live in
HOMES = [f"autograder.grading.{m.name}" for m in pkgutil.iter_modules(autograder.grading.__path__)] \
    + ["autograder.checks", "autograder.checks.core", "coursekit.expect", "coursekit.wire",
       "coursekit.serve", "socket"]
FILE = re.compile(r"[\w./*<>-]+\.(?:py|j2)\b")
DOTTED = re.compile(r"^[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+$")
CONSTANT = re.compile(r"^(?:[A-Z][a-z]\w*|[A-Z][A-Z0-9_]+)$")  # CellStatus, MESSAGE_LIMIT


def _files():
    found = {f for text in (*SPANS, MERMAID) for f in FILE.findall(text)}
    return sorted(f for f in found if "<" not in f)


def _dotted():
    spans = {s for s in SPANS if DOTTED.match(s)}
    spans |= {m for m in re.findall(r"\b[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+", MERMAID)}
    return sorted(s for s in spans if not re.search(r"\.(py|json|ipynb|txt|j2|md)$", s))


@pytest.mark.parametrize("name", _files())
def test_every_file_the_page_names_exists(name):
    bases = (GRADING, ROOT, ROOT / "autograder")
    assert any(glob.glob(str(base / name)) for base in bases), \
        f"the grading README names {name}, which is not in {', '.join(map(str, bases))}"


def _module(prefix):
    for candidate in (f"autograder.grading.{prefix}", f"autograder.{prefix}", prefix,
                      f"coursekit.{prefix}"):
        try:
            return importlib.import_module(candidate)
        except ImportError:
            continue
    return None


def _has(obj, name):
    """Whether ``obj`` has ``name``: an attribute, a dataclass field, an annotated field, or
    (of a class) an attribute its methods set on ``self``."""
    if hasattr(obj, name):
        return True
    if isinstance(obj, type):
        if dataclasses.is_dataclass(obj) and name in {f.name for f in dataclasses.fields(obj)}:
            return True
        if any(name in getattr(k, "__annotations__", {}) for k in obj.__mro__):
            return True
        try:
            tree = ast.parse(textwrap.dedent(inspect.getsource(obj)))
        except (OSError, TypeError):
            return False
        return any(isinstance(n, ast.Attribute) and isinstance(n.ctx, ast.Store)
                   and n.attr == name and isinstance(n.value, ast.Name) and n.value.id == "self"
                   for n in ast.walk(tree))
    return False


def _resolve(dotted):
    """Whether ``dotted`` names a module's attribute (a module, then attributes), or an
    attribute of a class or constant that lives in one of HOMES."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        mod = _module(".".join(parts[:cut]))
        if mod is None:
            continue
        obj = mod
        for part in parts[cut:]:
            if not _has(obj, part):
                break
            obj = getattr(obj, part, None)
        else:
            return True
    for home in HOMES:
        obj = importlib.import_module(home)
        for part in parts:
            if not _has(obj, part):
                break
            obj = getattr(obj, part, None)
        else:
            return True
    return False


@pytest.mark.parametrize("name", _dotted())
def test_every_dotted_name_the_page_gives_exists(name):
    assert _resolve(name), f"the grading README names {name}, which the code does not have"


@pytest.mark.parametrize("name", sorted({s for s in SPANS if CONSTANT.match(s)}))
def test_every_class_or_constant_the_page_gives_exists(name):
    assert any(hasattr(importlib.import_module(h), name) for h in HOMES), \
        f"the grading README names {name}, which no module of the grading path has"


def _row(channel):
    return next(line for line in README.splitlines() if line.startswith(f"| {channel}"))


def _written(tree, cls, attr=None, method=None):
    """The str keys ``cls`` writes: of ``self.<attr>`` (a dict literal assigned to it,
    its subscripts assigned) or of the dict ``method`` returns."""
    keys = set()
    node = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == cls)
    for n in ast.walk(node):
        if attr is not None:
            target = lambda t: isinstance(t, ast.Attribute) and t.attr == attr  # noqa: E731
            if isinstance(n, ast.Assign) and any(target(t) for t in n.targets) and \
                    isinstance(n.value, ast.Dict):
                keys |= {k.value for k in n.value.keys if isinstance(k, ast.Constant)}
            if isinstance(n, ast.Subscript) and target(n.value) and \
                    isinstance(n.ctx, ast.Store) and isinstance(n.slice, ast.Constant):
                keys.add(n.slice.value)
        if method is not None and isinstance(n, ast.FunctionDef) and n.name == method:
            for r in ast.walk(n):
                if isinstance(r, ast.Return) and isinstance(r.value, ast.Dict):
                    keys |= {k.value for k in r.value.keys if isinstance(k, ast.Constant)}
    return keys


def test_the_channels_table_lists_what_the_grading_process_writes():
    row = _row("JSON files")
    verdicts = re.search(r"`verdicts\.json` \(([^)]*)\)", row).group(1)
    status = re.search(r"`status\.json` \(([^)]*)\)", row).group(1)
    listed = lambda text: set(re.findall(r"`([a-z_]+)`", text))  # noqa: E731
    tree = ast.parse((GRADING / "child.py").read_text())
    assert listed(verdicts) == _written(tree, "Verdict", method="record")
    assert listed(status) == _written(tree, "Grading", attr="status")
